//! The statically linked agent that remote hosts receive.

use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-musl";

/// The static agent (.ci/run builds it; built into a separate target dir when absent).
pub fn static_agent() -> PathBuf {
    let ws = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let prebuilt = ws.join("target").join(TARGET).join("release/benchvm-agent");
    if prebuilt.is_file() {
        return prebuilt;
    }
    let dir = ws.join("target/static-agent-test");
    let ok = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
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
