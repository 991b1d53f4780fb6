'use strict';
// The Action's main step: obtain benchvm, remember where and its checksum for the post
// step, run `benchvm action` (it reads the INPUT_* variables).
const { obtain, run, saveState, sha256File, log } = require('./lib.js');

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
  // The post step runs this file again, with the job's credentials: it must be the same file
  // (benchmarked code on the local backend can write where the runner user can).
  saveState('binary_sha256', sha256File(binary));
  process.exitCode = await run(binary, ['action']);
})();
