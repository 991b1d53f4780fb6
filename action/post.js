'use strict';
// The Action's post step (post-if: always(), so it also runs after a failure or a
// cancellation): `benchvm action-cleanup` deallocates the Azure VM; idempotent.
const { run, sha256File, log } = require('./lib.js');

(async () => {
  const binary = process.env.STATE_binary;
  if (!binary) {
    log('the main step never obtained benchvm, so no VM was started: nothing to clean up');
    return;
  }
  const expected = process.env.STATE_binary_sha256;
  let actual;
  try {
    actual = sha256File(binary);
  } catch (err) {
    actual = `unreadable (${err.message})`;
  }
  if (expected && actual !== expected) {
    log(`${binary} changed since the main step (sha256 ${actual}, was ${expected}); refusing to run it`);
    process.exitCode = 3;
    return;
  }
  process.exitCode = await run(binary, ['action-cleanup']);
})();
