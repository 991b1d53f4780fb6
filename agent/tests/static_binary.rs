//! The agent shipped to benchmark hosts must run on any x86-64 Linux: statically linked,
//! no dynamic dependencies (checked with `file` and `ldd`, the way a person would).

use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "x86_64-unknown-linux-musl";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The release musl agent; built into a target directory of its own when absent, so the
/// build never waits on the lock of the `cargo test` that runs this.
fn static_agent() -> PathBuf {
    let prebuilt = workspace()
        .join("target")
        .join(TARGET)
        .join("release/benchvm-agent");
    if prebuilt.is_file() {
        return prebuilt;
    }
    let dir = workspace().join("target/static-agent-test");
    let status = Command::new(env!("CARGO"))
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
        .current_dir(workspace())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "building the static agent failed: is the {TARGET} target installed (rustup target add {TARGET})?"
    );
    dir.join(TARGET).join("release/benchvm-agent")
}

#[test]
fn the_agent_is_statically_linked_and_runs() {
    let agent = static_agent();
    let file = Command::new("file").arg(&agent).output().unwrap();
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "{file}"
    );
    assert!(!file.contains("dynamically linked"), "{file}");

    let ldd = Command::new("ldd").arg(&agent).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        text.contains("statically linked") || text.contains("not a dynamic executable"),
        "{text}"
    );
    assert!(
        !text.contains("=>"),
        "no shared library is resolved: {text}"
    );

    let version = Command::new(&agent).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("benchvm-agent "));
}
