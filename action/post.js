'use strict';
// The Action's post step (post-if: always(), so it also runs after a failure or a
// cancellation): `benchvm action-cleanup` deallocates the Azure VM; idempotent.
const { run, log } = require('./lib.js');

(async () => {
  const binary = process.env.STATE_binary;
  if (!binary) {
    log('the main step never obtained benchvm, so no VM was started: nothing to clean up');
    return;
  }
  process.exitCode = await run(binary, ['action-cleanup']);
})();
