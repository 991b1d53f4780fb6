//! `benchvm run --ssh` end to end against a real sshd on loopback: the static agent is
//! uploaded (checksum verified), the local repository travels as a git bundle, progress is
//! streamed, the results directory comes back, a second run reuses the uploaded agent.

use std::process::Command;

use crate::support::agent::static_agent;
use crate::support::procs;
use crate::support::sshd::Sshd;
use crate::support::tiny::tiny_repo;

fn run(
    sshd: &Sshd,
    repo: &std::path::Path,
    results: &std::path::Path,
    host_key: &str,
) -> std::process::Output {
    command(sshd, repo, results, host_key).output().unwrap()
}

fn command(
    sshd: &Sshd,
    repo: &std::path::Path,
    results: &std::path::Path,
    host_key: &str,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_benchvm"));
    command
        .args([
            "run",
            "--ssh",
            "--ssh-host",
            "127.0.0.1",
            "--ssh-port",
            &sshd.port.to_string(),
        ])
        .args([
            "--ssh-user",
            &crate::support::sshd::whoami(),
            "--ssh-key",
            sshd.user_key().to_str().unwrap(),
        ])
        .args([
            "--ssh-host-key",
            host_key,
            "--agent-binary",
            static_agent().to_str().unwrap(),
        ])
        .args([
            "--repo",
            repo.to_str().unwrap(),
            "--base",
            "main",
            "--head",
            "perf/slow",
            "--rounds",
            "3",
        ])
        .args(["--results", results.to_str().unwrap(), "--markdown"]);
    command
}

#[test]
fn a_comparison_runs_over_ssh_and_its_results_come_back() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);

    let results = tmp.path().join("results");
    let out = run(&sshd, &repo, &results, &sshd.host_key());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("benchvm-agent [") && stderr.contains("round 3/3 done"),
        "progress streamed: {stderr}"
    );
    for file in [
        "report.json",
        "micro.json",
        "importtime.tsv",
        "summary.md",
        "comment.md",
    ] {
        assert!(results.join(file).is_file(), "{file} came back");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    // The agent saw commit ids from the bundle; the report keeps the names people gave.
    assert_eq!(report["base"]["ref"], "main");
    assert_eq!(report["head"]["ref"], "perf/slow");
    assert_eq!(report["base"]["commit"].as_str().unwrap().len(), 40);
    let spans: Vec<(String, serde_json::Value)> = report["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_owned(), s["cache"].clone()))
        .collect();
    assert!(
        spans.contains(&("upload agent".into(), "cold".into()))
            || spans.contains(&("upload agent".into(), "warm".into())),
        "{spans:?}"
    );
    for name in [
        "ssh connect",
        "upload code",
        "download results",
        "checkout",
        "measure",
    ] {
        assert!(
            spans.iter().any(|(n, _)| n == name),
            "span {name}: {spans:?}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("<!-- benchvm:comment -->") && stdout.contains("`perf/slow` vs `main`")
    );

    // Second run: the agent of the same hash is already there.
    let results2 = tmp.path().join("results2");
    let out = run(&sshd, &repo, &results2, &sshd.host_key());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results2.join("report.json")).unwrap())
            .unwrap();
    let upload = report["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "upload agent")
        .unwrap();
    assert_eq!(upload["cache"], "warm");
}

#[test]
fn a_wrong_pinned_host_key_stops_the_run_with_exit_code_3() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let results = tmp.path().join("results");
    let out = run(&sshd, &repo, &results, &other.host_key());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("refusing to connect"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!results.exists());
}

/// Two runs from checkouts of the same name, both uploaded while a third holds the host:
/// each must measure its own commits (a shared bundle path let the second upload replace the
/// first one's before its agent read it).
#[test]
fn two_runs_waiting_for_one_host_each_measure_their_own_commits() {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::mpsc;
    use std::time::Duration;
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let repos = [tmp.path().join("a/tinyrepo"), tmp.path().join("b/tinyrepo")];
    for (i, repo) in repos.iter().enumerate() {
        tiny_repo(repo);
        crate::support::tiny::sh(
            repo,
            &format!(
                "git checkout -q perf/slow && echo {i} > own && git add own && git commit -qm own{i}"
            ),
        );
    }
    let commit = |repo: &std::path::Path| {
        let out = Command::new("git")
            .args(["rev-parse", "perf/slow"])
            .current_dir(repo)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_ne!(commit(&repos[0]), commit(&repos[1]));

    // Hold the host (the agent's default cache on the ssh user's side) until both wait.
    let home = std::env::var("HOME").unwrap();
    let lock = std::path::Path::new(&home).join(".cache/benchvm/host.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let mut holder = procs::Killed(Command::new("python3")
        .args([
            "-c",
            "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
        ])
        .arg(&lock)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap());
    let (tx, rx) = mpsc::channel();
    let out = holder.stdout.take().unwrap();
    let held = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = held.send(("holder".to_owned(), line));
        }
    });
    // Other tests use this host too: the lock may take a while to get.
    let deadline = Duration::from_secs(900);
    let wait_for = |who: &str, needle: &str| {
        let t = std::time::Instant::now();
        loop {
            let left = deadline.saturating_sub(t.elapsed());
            match rx.recv_timeout(left) {
                Ok((w, line)) if w == who && line.contains(needle) => return,
                Ok(_) => {}
                Err(e) => panic!("{who} never said {needle:?}: {e}"),
            }
        }
    };
    wait_for("holder", "held");

    let mut runs = Vec::new();
    for (i, repo) in repos.iter().enumerate() {
        let results = tmp.path().join(format!("results{i}"));
        let mut child = procs::Killed(
            command(&sshd, repo, &results, &sshd.host_key())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let err = child.stderr.take().unwrap();
        let tx = tx.clone();
        let who = format!("run{i}");
        let log = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send((who.clone(), line));
            }
            all
        });
        wait_for(&format!("run{i}"), "waiting for the host lock");
        runs.push((child, log, results));
    }
    holder.stdin.take().unwrap().flush().unwrap();
    holder.wait().unwrap();

    for ((mut child, log, results), repo) in runs.into_iter().zip(&repos) {
        let t = std::time::Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if t.elapsed() > deadline {
                let _ = child.kill();
                panic!("the run did not end");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let log = log.join().unwrap();
        assert_eq!(status.code(), Some(0), "{log}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["head"]["commit"], commit(repo), "{log}");
    }
}

/// Issue 14 (docs/faults.md): the agent killed on an `--ssh` host (the OOM killer, an
/// operator) while its benchmark runs in a process group of its own: the run fails with
/// exit code 3, and the benchmark does not run on by itself.
#[test]
fn an_agent_killed_on_the_host_leaves_no_benchmark_running() {
    use std::time::{Duration, Instant};
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let marker = format!("benchvm-ssh-orphan-{}", std::process::id());
    let config = procs::slow_config(tmp.path(), &marker);
    let results = tmp.path().join("results");
    let mut run = procs::Killed(
        command(&sshd, &repo, &results, &sshd.host_key())
            .args(["--config", config.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = run.stderr.take().unwrap();
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let benchmark = || procs::pids(&marker).first().copied();
    // Other tests share this host's lock: the benchmark may take a while to start.
    let t = Instant::now();
    let pid = loop {
        if let Some(pid) = benchmark() {
            break pid;
        }
        assert!(
            t.elapsed() < Duration::from_secs(900),
            "the benchmark never started"
        );
        assert!(run.try_wait().unwrap().is_none(), "the run ended first");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Its agent: the nearest ancestor whose name is the uploaded agent's.
    let stat = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let mut agent = pid;
    loop {
        let text = stat(agent);
        let (comm, rest) = text
            .split_once(" (")
            .and_then(|(_, r)| r.rsplit_once(") "))
            .expect("a live ancestor");
        if comm.starts_with("benchvm-agent") {
            break;
        }
        agent = rest.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(agent > 1, "no agent above the benchmark");
    }
    // The running agent holds its run's lease (what another controller checks before it
    // deallocates a VM).
    let home = std::env::var("HOME").unwrap();
    let leases = std::path::Path::new(&home)
        .join(".benchvm/leases")
        .join(benchvm::host::ssh::lease_dir_name("127.0.0.1", sshd.port));
    // This run's: its name starts with the controller's pid (another test's sshd may have
    // had this port before, and a run killed there left its lease file).
    let lease = std::fs::read_dir(&leases)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{}-", run.id()))
        })
        .expect("this run's lease");
    let flock = |lease: &std::path::Path| {
        Command::new("flock")
            .args(["-n", "-E", "10"])
            .arg(lease)
            .arg("true")
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(
        flock(&lease),
        Some(10),
        "the lease is held while the agent runs"
    );
    assert_eq!(
        unsafe { libc::kill(agent as libc::pid_t, libc::SIGKILL) },
        0
    );

    let t = Instant::now();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the run did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("killed by signal 9"), "{log}");
    procs::wait_gone(
        &[&marker],
        Duration::from_secs(15),
        "the benchmark outlived its agent",
    );
    assert_eq!(flock(&lease), Some(0), "the lease is released");
    std::fs::remove_dir_all(&leases).unwrap();
}

/// Issue 14: a benchmark that leaves a process behind in a group of its own (the head's
/// code can): once the run is over, nothing of it runs on the host.
#[test]
fn a_process_the_benchmark_left_behind_is_gone_after_the_run() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("tinyrepo");
    tiny_repo(&repo);
    let marker = format!("benchvm-ssh-leftover-{}", std::process::id());
    let config = procs::leaving_config(tmp.path(), &marker);
    let results = tmp.path().join("results");
    let out = command(&sshd, &repo, &results, &sshd.host_key())
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = std::fs::read_to_string(results.join("report.json")).unwrap();
    assert!(report.contains("startup/leaves"), "the benchmark ran");
    procs::wait_gone(
        &[&marker],
        std::time::Duration::from_secs(15),
        "a process the benchmark started outlived the run",
    );
}
