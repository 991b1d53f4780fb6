//! The statically linked agent that remote hosts receive.

use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-musl";

/// The static agent, built (or found up to date: cargo makes that a no-op) in a target
/// directory of its own, so the build never waits on the lock of the running `cargo test`
/// and never hands a test a stale binary.
pub fn static_agent() -> PathBuf {
    let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let dir = ws.join("target/static-agent");
    let ok = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "benchvm-agent",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&dir)
        .current_dir(&ws)
        .status()
        .unwrap()
        .success();
    assert!(
        ok,
        "building the static agent failed (rustup target add {TARGET})"
    );
    dir.join(TARGET).join("release/benchvm-agent")
}
