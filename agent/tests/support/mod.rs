//! Shared by the agent's integration tests: shell steps with a fixed git identity, and
//! files written with their directories.

#![allow(dead_code)] // each test crate uses its own share

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
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `text` to `dir/rel`, creating the directories.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}
