'use strict';
// The Action's main step: obtain benchvm, remember where for the post step, run
// `benchvm action` (it reads the INPUT_* variables).
const { obtain, run, saveState, log } = require('./lib.js');

(async () => {
  let binary;
  try {
    binary = await obtain();
  } catch (err) {
    log(`cannot obtain benchvm: ${err.message}`);
    process.exitCode = 3;
    return;
  }
  saveState('binary', binary);
  process.exitCode = await run(binary, ['action']);
})();
