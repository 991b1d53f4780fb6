//! The SSH transport against a real sshd on loopback.

use std::time::{Duration, Instant};

use crate::support::sshd::Sshd;
use benchvm::ssh_transport::{Limits, SshError, SshSession, Stream, fingerprint};

#[test]
fn exec_streams_lines_in_order_and_returns_the_status() {
    let sshd = Sshd::start();
    let s = SshSession::connect(&sshd.target()).unwrap();
    let mut lines = Vec::new();
    let status = s
        .exec(
            "echo one; echo two >&2; echo three; exit 7",
            Duration::from_secs(20),
            &mut |st, l| lines.push((st, l.to_owned())),
        )
        .unwrap();
    assert_eq!(status, 7);
    let out: Vec<_> = lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, l)| l.as_str())
        .collect();
    assert_eq!(out, ["one", "three"]);
    assert!(lines.contains(&(Stream::Stderr, "two".into())));
    assert!(
        !lines.iter().any(|(_, l)| l.contains("__benchvm_pid")),
        "the pid line is internal"
    );
}

/// Issue 14: the server offers ECDSA, ed25519 and RSA host keys; a pin of any of them must
/// match (libssh2 picked its own preference, so only one type of pin ever worked).
#[test]
fn a_pin_of_any_host_key_type_is_the_key_the_server_is_asked_for() {
    let sshd = Sshd::start();
    for pin in [
        sshd.host_key(),
        sshd.host_key_of("ecdsa"),
        sshd.host_key_of("rsa"),
    ] {
        let mut target = sshd.target();
        target.host_key = pin.clone();
        let session =
            SshSession::connect(&target).unwrap_or_else(|e| panic!("pin {}: {e}", &pin[..20]));
        assert_eq!(session.capture("echo ok").unwrap().trim(), "ok");
    }
}

#[test]
fn a_different_host_key_is_refused_with_both_fingerprints() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let mut target = sshd.target();
    target.host_key = other.host_key();
    let err = SshSession::connect(&target).unwrap_err();
    assert!(matches!(err, SshError::HostKeyMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&fingerprint(&sshd.host_key()).unwrap()),
        "{msg}"
    );
    assert!(
        msg.contains(&fingerprint(&other.host_key()).unwrap()),
        "{msg}"
    );
    target.host_key = "not a key".into();
    assert!(matches!(
        SshSession::connect(&target).unwrap_err(),
        SshError::BadHostKey(_)
    ));
}

#[test]
fn fingerprints_match_ssh_keygen() {
    let sshd = Sshd::start();
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(sshd.dir.path().join("host_key.pub"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&fingerprint(&sshd.host_key()).unwrap()),
        "{text}"
    );
}

#[test]
fn a_wrong_user_key_is_an_authentication_error() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let mut target = sshd.target();
    target.key = other.user_key();
    let err = SshSession::connect(&target).unwrap_err();
    assert!(matches!(err, SshError::Auth { .. }), "{err}");
}

/// Issue 14: waiting for a VM's sshd retried a refused login until the start deadline (ten
/// minutes of a billed VM); it fails at once.
#[test]
fn waiting_for_a_host_gives_up_at_once_on_a_refused_login() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let mut target = sshd.target();
    target.key = other.user_key();
    let host = benchvm::host::ssh::SshHost {
        target,
        agent: "unused".into(),
        timeout: Duration::from_secs(60),
        dead_man: None,
        run_id: benchvm::host::ssh::new_run_id(),
    };
    let t = std::time::Instant::now();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime
        .block_on(host.wait_ready(Duration::from_secs(120)))
        .unwrap_err();
    assert!(err.to_string().contains("failed to authenticate"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
}

#[test]
fn megabytes_on_both_streams_do_not_deadlock() {
    let sshd = Sshd::start();
    let s = SshSession::connect(&sshd.target()).unwrap();
    let (mut out, mut err) = (0usize, 0usize);
    let cmd = "i=0; while [ $i -lt 20 ]; do head -c 100000 /dev/zero | tr '\\0' a | fold -w 99; head -c 100000 /dev/zero | tr '\\0' b | fold -w 99 >&2; i=$((i+1)); done";
    let status = s
        .exec(cmd, Duration::from_secs(60), &mut |st, l| match st {
            Stream::Stdout => out += l.len() + 1,
            Stream::Stderr => err += l.len() + 1,
        })
        .unwrap();
    assert_eq!(status, 0);
    assert!(out >= 2_000_000 && err >= 2_000_000, "{out} {err}");
}

#[test]
fn silence_longer_than_the_keepalive_is_fine() {
    let sshd = Sshd::start();
    let s = SshSession::connect(&sshd.target()).unwrap();
    let mut lines = Vec::new();
    let status = s
        .exec(
            // Longer than two keepalive intervals: only the keepalive replies keep it alive.
            "sleep 6; echo done",
            Duration::from_secs(30),
            &mut |_, l| lines.push(l.to_owned()),
        )
        .unwrap();
    assert_eq!((status, lines), (0, vec!["done".to_owned()]));
}

/// A network that stops delivering without closing anything (a NAT that forgot the
/// mapping): the command is not waited on forever, and a remote process that watches the
/// beats on its stdin (as the agent does) sees them stop and ends.
#[test]
fn a_connection_that_goes_dead_is_lost_within_two_keepalives() {
    let sshd = Sshd::start();
    let relay = crate::support::relay::Relay::start(sshd.port);
    let mut target = sshd.target();
    target.port = relay.port;
    let s = SshSession::connect(&target).unwrap();
    let tag = format!("benchvm-dead-conn-{}", std::process::id());
    // Lines only while the controller's beats arrive on stdin; a 4 s gap ends it.
    let cmd = format!("while timeout 4 head -c 1 >/dev/null; do echo {tag} >&2; done # {tag}");
    let mut seen = 0;
    let t = Instant::now();
    let err = s
        .exec_beating(&cmd, Duration::from_secs(120), &mut |_, line| {
            if line == tag {
                seen += 1;
                if seen == 3 {
                    relay.freeze();
                }
            }
        })
        .unwrap_err();
    assert!(matches!(err, SshError::ConnectionLost { .. }), "{err}");
    assert!(
        err.to_string().contains("lost the connection to 127.0.0.1"),
        "{err}"
    );
    // keepalive 1 s: the limit is 2 × 1 s + 2 s after the last byte.
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let gone = (0..60).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        let out = std::process::Command::new("pgrep")
            .args(["-f", &tag])
            .output()
            .unwrap();
        out.stdout.is_empty()
    });
    let left = std::process::Command::new("pgrep")
        .args(["-af", &tag])
        .output()
        .unwrap();
    let log = std::fs::read_to_string(sshd.dir.path().join("sshd.log")).unwrap_or_default();
    assert!(
        gone,
        "the remote command outlived the dead connection by 30 s: {} {log}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// libssh2 reports exit status 0 for a shell killed by a signal: that must not pass for
/// success, and what the shell started must not live on. (The command lets go of the
/// channel's pipes first: sshd keeps a channel open while anything holds them.)
#[test]
fn a_remote_shell_killed_by_a_signal_is_an_error_and_its_group_is_killed() {
    let sshd = Sshd::start();
    let s = SshSession::connect(&sshd.target()).unwrap();
    let marker = sshd.dir.path().join("survived");
    let cmd = format!(
        "exec </dev/null >/dev/null 2>&1; (sleep 3; touch {}) & sleep 0.5; kill -KILL $PPID; wait",
        marker.display()
    );
    let err = s
        .exec(&cmd, Duration::from_secs(30), &mut |_, _| {})
        .unwrap_err();
    assert!(
        matches!(&err, SshError::Signal { signal } if signal == "KILL"),
        "{err}"
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !marker.exists(),
        "a process of the killed command outlived it"
    );
}

/// Issue 14: a command killed by a signal inside the remote shell (the shell's status 137,
/// not an exit signal) leaves nothing behind, even what it ran in a process group of its
/// own, as the agent runs its benchmarks.
#[test]
fn a_killed_command_leaves_no_process_even_in_a_group_of_its_own() {
    let sshd = Sshd::start();
    let s = SshSession::connect(&sshd.target()).unwrap();
    let marker = format!("benchvm-own-group-{}", std::process::id());
    let running = || {
        !std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    };
    // `set -m`: the background job gets a process group of its own; then the shell that
    // started it is killed, as an agent killed by the OOM killer would be.
    let cmd = format!(
        "exec </dev/null >/dev/null 2>&1; sh -c 'set -m; python3 -c \"import time; time.sleep(60)\" {marker} & sleep 0.5; kill -KILL $$'"
    );
    let status = s
        .exec(&cmd, Duration::from_secs(30), &mut |_, _| {})
        .unwrap();
    assert_eq!(status, 137, "the shell reports the kill");
    let t = Instant::now();
    while running() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "a process in a group of its own outlived the killed command"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_timeout_kills_the_remote_process_group() {
    let sshd = Sshd::start();
    let s = SshSession::connect(&sshd.target()).unwrap();
    let marker = sshd.dir.path().join("survived");
    let cmd = format!("(sleep 3; touch {}) & sleep 60", marker.display());
    let t = Instant::now();
    let err = s
        .exec(&cmd, Duration::from_secs(1), &mut |_, _| {})
        .unwrap_err();
    assert!(matches!(err, SshError::Timeout { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !marker.exists(),
        "a process of the timed-out command outlived it"
    );
    // The session still works afterwards.
    assert_eq!(s.capture("echo ok").unwrap(), "ok");
}

#[test]
fn upload_checks_the_hash_and_keeps_the_mode_and_download_mirrors_a_tree() {
    let sshd = Sshd::start();
    let s = SshSession::connect(&sshd.target()).unwrap();
    let local = sshd.dir.path().join("payload");
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let remote = sshd.dir.path().join("remote/agent");
    std::fs::create_dir_all(remote.parent().unwrap()).unwrap();
    s.upload(&local, remote.to_str().unwrap(), 0o755).unwrap();
    assert_eq!(std::fs::read(&remote).unwrap(), data);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&remote).unwrap().permissions().mode() & 0o777,
        0o755
    );

    let tree = sshd.dir.path().join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::write(tree.join("top.json"), "{}").unwrap();
    std::fs::write(tree.join("a/b/deep.tsv"), "x\ty\n").unwrap();
    let dest = sshd.dir.path().join("copy");
    let n = s
        .download_dir(tree.to_str().unwrap(), &dest, Limits::RESULTS)
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        std::fs::read_to_string(dest.join("a/b/deep.tsv")).unwrap(),
        "x\ty\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("top.json")).unwrap(),
        "{}"
    );
}

/// Issue 15: the results tree is the head's to shape. A link on the host is not followed, a
/// link planted in the destination is replaced (its target untouched), a destination that is
/// a link is refused, and a tree over the limits is refused before its bytes are fetched.
#[test]
fn a_download_writes_only_new_files_within_its_limits() {
    use std::os::unix::fs::symlink;
    let sshd = Sshd::start();
    let s = SshSession::connect(&sshd.target()).unwrap();
    let d = sshd.dir.path();
    let tree = d.join("hostile");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("report.json"), "{}").unwrap();
    std::fs::write(d.join("secret"), "host secret").unwrap();
    symlink(d.join("secret"), tree.join("leak")).unwrap();

    let precious = d.join("precious");
    std::fs::write(&precious, "keep me").unwrap();
    let dest = d.join("dest");
    std::fs::create_dir_all(&dest).unwrap();
    symlink(&precious, dest.join("report.json")).unwrap();
    symlink(&precious, dest.join("report.partial")).unwrap();
    let n = s
        .download_dir(tree.to_str().unwrap(), &dest, Limits::RESULTS)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    assert!(
        !std::fs::symlink_metadata(dest.join("report.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("report.json")).unwrap(),
        "{}"
    );
    assert!(!dest.join("leak").exists(), "a link on the host came back");

    let linked = d.join("linked");
    symlink(d.join("elsewhere"), &linked).unwrap();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    assert!(
        s.download_dir(tree.to_str().unwrap(), &linked, Limits::RESULTS)
            .is_err()
    );
    assert!(!d.join("elsewhere/report.json").exists());

    for (limits, what) in [
        (
            Limits {
                files: 2,
                bytes: 1 << 20,
            },
            "files",
        ),
        (
            Limits {
                files: 100,
                bytes: 1000,
            },
            "bytes",
        ),
    ] {
        let big = d.join(format!("big-{what}"));
        std::fs::create_dir_all(&big).unwrap();
        for i in 0..3 {
            std::fs::write(big.join(format!("f{i}")), vec![b'x'; 600]).unwrap();
        }
        let err = s
            .download_dir(
                big.to_str().unwrap(),
                &d.join(format!("out-{what}")),
                limits,
            )
            .unwrap_err();
        assert!(matches!(err, SshError::TooLarge { .. }), "{what}: {err}");
    }
}

/// Two runs starting on one host upload the same agent to the same path at once (the
/// azure_run tests did, and failed with "no such file"): every upload succeeds and the
/// file is whole, with no temporary left behind.
#[test]
fn concurrent_uploads_of_one_file_to_one_path_all_succeed() {
    let sshd = Sshd::start();
    let local = sshd.dir.path().join("payload");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 17 % 253) as u8).collect();
    std::fs::write(&local, &data).unwrap();
    let dir = sshd.dir.path().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let remote = dir.join("agent");
    for _round in 0..3 {
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let s = SshSession::connect(&sshd.target()).unwrap();
                        s.upload(&local, remote.to_str().unwrap(), 0o755)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            r.unwrap();
        }
        assert_eq!(std::fs::read(&remote).unwrap(), data);
    }
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["agent"], "no temporary left behind");
}
