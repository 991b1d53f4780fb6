//! Helpers for the tests of both crates (unit and integration): shell steps with a fixed
//! git identity, and files written with their directories. Compiled only for tests (the
//! `test-support` feature, which both crates turn on as a dev-dependency): not in the binaries.

use std::path::Path;
use std::process::Command;

/// Runs `script` with `sh -c` in `dir`; fails the test with its stderr when it fails.
pub fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@t")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@t")
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `text` to `dir/rel`, creating the directories.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("a file in a directory")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}
