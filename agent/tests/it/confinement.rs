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

/// Runs `script` with sh as `uid` (the agent's own when `None`), under `ruleset`; its
/// stdout. A deadline of 30 s.
fn run_under(ruleset: &confine::Ruleset, uid: Option<u32>, cwd: &Path, script: &str) -> String {
    use std::process::{Command, Stdio};
    let mut command = Command::new("sh");
    command
        .args(["-c", script])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        command.uid(uid).gid(uid);
        // The change of user made the child undumpable, which leaves its /proc/self files
        // root's and its user namespace's maps unwritable; an agent started as its user
        // is dumpable, as this restores.
        // SAFETY: prctl is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    ruleset.apply_to(&mut command);
    let mut child = command.spawn().expect("sh starts in the namespace");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the confined sh outlived 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    stdout
}

/// The home a confined run sees is read-only but for its own writable paths, its
/// `/dev/shm` is its own, and nothing of this reaches the host's mounts. Run as the agent
/// (root here) and as an unprivileged user (as on the VM, where the bench user owns its
/// home and could `chmod` it).
#[test]
fn a_confined_run_cannot_change_modes_in_the_home_or_leave_anything_in_dev_shm() {
    assert!(
        confine::mount_namespace(),
        "this kernel gives no mount namespace: the rows of untrusted-code.md that rely on it cannot be tested"
    );
    for uid in [None, Some(65534u32)] {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let checkout = home.join(".cache/benchvm/checkout");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::create_dir_all(&checkout).unwrap();
        std::fs::write(
            home.join(".ssh/authorized_keys"),
            "ssh-ed25519 AAAA owner\n",
        )
        .unwrap();
        std::fs::write(checkout.join("own"), "x").unwrap();
        if let Some(uid) = uid {
            for entry in walk(tmp.path()) {
                std::os::unix::fs::chown(&entry, Some(uid), Some(uid)).unwrap();
            }
        }
        let tag = format!(
            "benchvm-shm-probe-{}-{}",
            std::process::id(),
            uid.unwrap_or(0)
        );
        // A mount the host has beneath the home (a tmpfs), taken away when the test ends.
        let beneath = home.join("mounted");
        std::fs::create_dir_all(&beneath).unwrap();
        let _mounted = Mounted::tmpfs(&beneath, uid);
        let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        // A System V shared-memory key of this test's own.
        let sysv_key =
            0x6276_0000 + (std::process::id() % 0x8000) as i32 * 2 + uid.map_or(0, |_| 1);
        let host_file = Path::new("/dev/shm").join(format!("{tag}-host"));
        std::fs::write(&host_file, "the host's").unwrap();
        // A socket where a user's systemd and D-Bus listen (`systemd-run --user` would
        // start a process outside the confinement).
        let run_user = Path::new("/run/user");
        let user_socket = run_user.join(format!("{tag}.sock"));
        let _listener = run_user
            .is_dir()
            .then(|| std::os::unix::net::UnixListener::bind(&user_socket).unwrap());
        if run_user.is_dir() {
            // Anyone may connect, so only the namespace can refuse the unprivileged run.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&user_socket, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let same_mode = |p: &Path| format!("chmod \"$(stat -c %a '{0}')\" '{0}'", p.display());
        let script = [
            probe("chmod-home", &same_mode(&home)),
            probe("chmod-ssh", &same_mode(&home.join(".ssh"))),
            probe("chmod-keys", &same_mode(&home.join(".ssh/authorized_keys"))),
            probe("chmod-own", &same_mode(&checkout.join("own"))),
            probe(
                "write-own",
                &format!("echo x > '{}/new'", checkout.display()),
            ),
            // `..` from the working directory, which was entered before the mounts.
            probe("chmod-parent", &same_mode(Path::new(".."))),
            probe("chmod-mounted", &same_mode(&beneath)),
            probe(
                "sysv-shm",
                &format!(
                    "python3 -c \"import ctypes, sys; sys.exit(ctypes.CDLL(None).shmget({sysv_key}, 4096, 0o1600) < 0)\""
                ),
            ),
            probe("nested-userns", "unshare -U true"),
            probe("shm-write", &format!("echo x > /dev/shm/{tag}")),
            probe(
                "shm-host-visible",
                &format!("test -e '{}'", host_file.display()),
            ),
            probe(
                "run-user-socket",
                &format!(
                    "python3 -c \"import socket; socket.socket(socket.AF_UNIX).connect('{}')\"",
                    user_socket.display()
                ),
            ),
        ]
        .concat();
        let ruleset = confine::Ruleset::protecting(
            std::slice::from_ref(&checkout),
            std::slice::from_ref(&home),
        )
        .unwrap();
        let out = run_under(&ruleset, uid, &checkout, &script);
        let _ = std::fs::remove_file(&host_file);
        let _ = std::fs::remove_file(&user_socket);
        let leaked = Path::new("/dev/shm").join(&tag);
        let leaked_exists = leaked.exists();
        let _ = std::fs::remove_file(&leaked);
        let sysv_left = std::fs::read_to_string("/proc/sysvipc/shm")
            .unwrap()
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().next() == Some(&sysv_key.to_string()));
        if sysv_left {
            let _ = std::process::Command::new("ipcrm")
                .args(["-M", &sysv_key.to_string()])
                .status();
        }
        assert!(
            !sysv_left,
            "as {uid:?}: the run's System V segment outlived it"
        );
        let mut expected = vec![
            "chmod-parent refused",
            "chmod-mounted refused",
            "sysv-shm ok",
            // The agent's user namespace allows none below it.
            "nested-userns refused",
            "chmod-home refused",
            "chmod-ssh refused",
            "chmod-keys refused",
            "chmod-own ok",
            "write-own ok",
            "shm-write ok",
            "shm-host-visible refused",
        ];
        if Path::new("/run/user").is_dir() {
            expected.push("run-user-socket refused");
        }
        for line in expected {
            assert!(out.contains(line), "as {uid:?}: {line}:\n{out}");
        }
        assert!(checkout.join("new").exists(), "as {uid:?}");
        assert!(
            !leaked_exists,
            "as {uid:?}: the run's /dev/shm file reached the host's"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(
            mounts, mounts_before,
            "as {uid:?}: a mount of the namespace reached the host"
        );
    }
}

/// A tmpfs mounted on the host for a test, unmounted (lazily) when dropped.
struct Mounted(PathBuf);

impl Mounted {
    /// Mounts it at `dir`, owned by `uid` (root's when `None`).
    fn tmpfs(dir: &Path, uid: Option<u32>) -> Self {
        let owner = uid.unwrap_or(0);
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size=1m,uid={owner},gid={owner}"),
            ])
            .arg("benchvm-test")
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs at {}", dir.display());
        Self(dir.to_owned())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Every path beneath `root`, itself included.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut paths = vec![root.to_owned()];
    if root.is_dir() {
        for entry in std::fs::read_dir(root).unwrap() {
            paths.extend(walk(&entry.unwrap().path()));
        }
    }
    paths
}
