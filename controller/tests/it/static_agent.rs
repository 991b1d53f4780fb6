//! The agent shipped to benchmark hosts must run on any x86-64 Linux: statically linked,
//! no dynamic dependencies (checked with `file` and `ldd`, the way a person would).

use std::process::Command;

use crate::support::agent::static_agent;

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

    // Alone in an empty directory, with an empty environment: nothing beside it is needed.
    let alone = tempfile::tempdir().unwrap();
    let copy = alone.path().join("benchvm-agent");
    std::fs::copy(&agent, &copy).unwrap();
    assert_eq!(std::fs::read_dir(alone.path()).unwrap().count(), 1);
    let version = Command::new(&copy)
        .arg("--version")
        .current_dir(alone.path())
        .env_clear()
        .output()
        .unwrap();
    assert!(version.status.success(), "{version:?}");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("benchvm-agent "));
    // And it does real work there: time a command the way startup benchmarks are timed.
    let timed = Command::new(&copy)
        .args(["time", "--runs", "3", "--", "/bin/true"])
        .current_dir(alone.path())
        .env_clear()
        .output()
        .unwrap();
    assert!(timed.status.success(), "{timed:?}");
}
