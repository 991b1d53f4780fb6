//! A confined run ([`benchvm_agent::measure::confine`]) against the writes and reads a pull
//! request's code would try; each probe is harmless if it succeeds (an append of nothing, a
//! new file in a directory this test owns), so a broken confinement fails the test and
//! changes nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

use benchvm_agent::measure::confine;
use benchvm_agent::measure::runner::{Captured, SystemRunner, capture};

/// Runs `script` with sh, confined to writing beneath `writable`.
fn confined(cwd: &Path, writable: Vec<PathBuf>, script: &str) -> Captured {
    capture(
        &SystemRunner,
        vec!["sh".into(), "-c".into(), script.into()],
        cwd,
        &[],
        Duration::from_secs(30),
        Some(writable),
    )
    .expect("sh starts")
}

/// `sh -c` snippet: runs `what` and prints `label ok` or `label refused`.
fn probe(label: &str, what: &str) -> String {
    format!("if {what} 2>/dev/null; then echo '{label} ok'; else echo '{label} refused'; fi\n")
}

#[test]
fn a_confined_run_writes_only_beneath_its_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let allowed = tmp.path().join("checkout");
    let outside = tmp.path().join("home");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(outside.join(".ssh")).unwrap();
    let keys = outside.join(".ssh/authorized_keys");
    std::fs::write(&keys, "ssh-ed25519 AAAA the-owner\n").unwrap();
    std::fs::write(allowed.join("moved"), "x").unwrap();
    let script = [
        probe(
            "write-own",
            &format!("echo x > '{}/new'", allowed.display()),
        ),
        probe("append-keys", &format!("printf '' >> '{}'", keys.display())),
        probe(
            "create-outside",
            &format!("echo x > '{}/new'", outside.display()),
        ),
        probe(
            "mkdir-outside",
            &format!("mkdir '{}/dir'", outside.display()),
        ),
        probe("remove-outside", &format!("rm -f '{}'", keys.display())),
        probe(
            "move-out",
            &format!(
                "mv '{}/moved' '{}/moved'",
                allowed.display(),
                outside.display()
            ),
        ),
        probe(
            "symlink-outside",
            &format!("ln -s /etc/passwd '{}/link'", outside.display()),
        ),
        probe("dev-null", "echo x > /dev/null"),
        probe("tmp", "echo x > /tmp/benchvm-confine-probe-$$"),
    ]
    .concat();
    let out = confined(&allowed, vec![allowed.clone()], &script);
    assert!(out.outcome.success(), "{out:?}");
    for expected in [
        "write-own ok",
        "append-keys refused",
        "create-outside refused",
        "mkdir-outside refused",
        "remove-outside refused",
        "move-out refused",
        "symlink-outside refused",
        "dev-null ok",
        "tmp refused",
    ] {
        assert!(out.stdout.contains(expected), "{expected}:\n{}", out.stdout);
    }
    assert_eq!(
        std::fs::read_to_string(&keys).unwrap(),
        "ssh-ed25519 AAAA the-owner\n"
    );
    assert!(allowed.join("new").exists() && !outside.join("new").exists());
}

#[test]
fn a_confined_run_cannot_read_the_agents_environment_or_gain_privileges() {
    let tmp = tempfile::tempdir().unwrap();
    // The test process stands for the agent (and beyond it the controller): its
    // environment holds the job's secrets on a runner.
    let me = std::process::id();
    let script = [
        probe("environ", &format!("cat /proc/{me}/environ > /dev/null")),
        probe(
            "grandchild-environ",
            &format!("sh -c 'cat /proc/{me}/environ' > /dev/null"),
        ),
        probe("own-environ", "cat /proc/self/environ > /dev/null"),
        "grep -E 'NoNewPrivs|CapEff|CapPrm' /proc/self/status\n".into(),
    ]
    .concat();
    let out = confined(tmp.path(), vec![tmp.path().to_owned()], &script);
    assert!(out.outcome.success(), "{out:?}");
    for expected in [
        "environ refused",
        "grandchild-environ refused",
        "own-environ ok",
        // Not even root keeps a capability (CAP_SYS_ADMIN would read any environment).
        "CapEff:\t0000000000000000",
        "CapPrm:\t0000000000000000",
    ] {
        assert!(out.stdout.contains(expected), "{expected}:\n{}", out.stdout);
    }
    // Set-user-ID programs (sudo) run without their privileges.
    assert!(
        out.stdout.contains("NoNewPrivs:\t1"),
        "no_new_privs is not set:\n{}",
        out.stdout
    );
    // The same probe unconfined reads it: the refusal above is the confinement's.
    let free = capture(
        &SystemRunner,
        vec![
            "sh".into(),
            "-c".into(),
            probe("environ", &format!("cat /proc/{me}/environ > /dev/null")),
        ],
        tmp.path(),
        &[],
        Duration::from_secs(30),
        None,
    )
    .unwrap();
    assert!(free.stdout.contains("environ ok"), "{}", free.stdout);
}

#[test]
fn a_confined_run_cannot_signal_or_reach_an_abstract_socket_outside_itself() {
    let abi = confine::abi().expect("Landlock");
    if abi < 6 {
        // Signal scoping came with ABI 6 (Linux 6.12); older kernels do not offer it, and
        // the confinement does not claim it there (untrusted-code.md says so).
        eprintln!("Landlock ABI {abi}: no signal scoping to test");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let me = std::process::id();
    // An abstract UNIX socket of the agent's (D-Bus and others listen on such).
    use std::os::linux::net::SocketAddrExt;
    let name = format!("benchvm-confine-{me}");
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind_addr(&address).unwrap();
    let connect = format!(
        "if python3 -c \"import socket; socket.socket(socket.AF_UNIX).connect('\\0{name}')\" 2>/dev/null; then echo 'abstract-socket ok'; else echo 'abstract-socket refused'; fi\n"
    );
    let script = [
        probe("signal-agent", &format!("kill -0 {me}")),
        probe("signal-self", "kill -0 $$"),
        connect.clone(),
    ]
    .concat();
    let out = confined(tmp.path(), vec![tmp.path().to_owned()], &script);
    for expected in [
        "signal-agent refused",
        "signal-self ok",
        "abstract-socket refused",
    ] {
        assert!(out.stdout.contains(expected), "{expected}:\n{}", out.stdout);
    }
    // Unconfined, the same connection is made: the refusal is the confinement's.
    let free = capture(
        &SystemRunner,
        vec!["sh".into(), "-c".into(), connect],
        tmp.path(),
        &[],
        Duration::from_secs(30),
        None,
    )
    .unwrap();
    assert!(
        free.stdout.contains("abstract-socket ok"),
        "{}",
        free.stdout
    );
}
