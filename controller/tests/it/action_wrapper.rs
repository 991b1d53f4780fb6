//! The Action's node wrapper (action/*.js) run by a real node: it fetches the release
//! assets of its ref and checks them against the checksums its own source keeps
//! (action/release-sums; a mismatch is refused, a release it keeps no checksums for, a
//! missing or a stalled release fall back to building from source), passes a cancel signal
//! on to benchvm, and its post step runs `benchvm action-cleanup`.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::http::serve_in_thread;

const REF: &str = "v9.9.9";

/// A stand-in for benchvm: logs its arguments and an input, waits to be signalled.
const STAND_IN: &str = r#"#!/bin/sh
echo "args: $*" >> "$WRAPPER_LOG"
if [ "$1" = action-cleanup ]; then exit 0; fi
echo "backend=$INPUT_BACKEND" >> "$WRAPPER_LOG"
trap 'echo got TERM >> "$WRAPPER_LOG"; exit 143' TERM
touch "$WRAPPER_LOG.started"
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
"#;

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

fn action_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../action")
}

/// A release server for `benchvm/benchvm` at tag `tag`; `sums` is its SHA256SUMS (None:
/// no release), `commit` its COMMIT asset.
fn release_server_at(tag: &str, sums: Option<String>, commit: Option<&str>) -> String {
    let files: HashMap<String, String> = [
        ("benchvm-x86_64-linux", Some(STAND_IN.to_owned())),
        ("benchvm-agent-x86_64-linux", Some("agent".to_owned())),
        ("COMMIT", commit.map(|c| format!("{c}\n"))),
        ("SHA256SUMS", sums),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((format!("/benchvm/benchvm/releases/download/{tag}/{k}"), v?)))
    .collect();
    let addr = serve_in_thread(move |req| match files.get(&req.path) {
        Some(body) => (200, vec![], body.clone()),
        None => (404, vec![], "Not Found".into()),
    });
    format!("http://{addr}")
}

fn release_server(sums: Option<String>) -> String {
    release_server_at(REF, sums, None)
}

fn good_sums() -> String {
    format!(
        "{}  benchvm-agent-x86_64-linux\n{}  benchvm-x86_64-linux\n",
        sha256(b"agent"),
        sha256(STAND_IN.as_bytes())
    )
}

fn sums_with_commit(commit: &str) -> String {
    format!(
        "{}{}  COMMIT\n",
        good_sums(),
        sha256(format!("{commit}\n").as_bytes())
    )
}

/// `sums` (a SHA256SUMS) as the lines action/release-sums keeps for `tag`.
fn pinned(tag: &str, sums: &str) -> String {
    sums.lines()
        .map(|l| {
            let (hash, asset) = l.split_once("  ").unwrap();
            format!("{hash}  {tag}/{asset}\n")
        })
        .collect()
}

struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Self {
        Runner {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn node(&self, script: &str, server: &str, extra: &[(&str, String)]) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(action_dir().join(script));
        for (k, _) in std::env::vars() {
            if k.starts_with("GITHUB_")
                || k.starts_with("INPUT_")
                || k.starts_with("STATE_")
                || k.starts_with("RUNNER_")
                || k == "BENCHVM_BINARY"
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUNNER_TEMP", self.dir.path())
            .env("GITHUB_STATE", self.path("state"))
            .env("GITHUB_SERVER_URL", server)
            .env("GITHUB_ACTION_REPOSITORY", "benchvm/benchvm")
            .env("GITHUB_ACTION_REF", REF)
            .env("INPUT_BACKEND", "local")
            .env("WRAPPER_LOG", self.path("log"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// An action source in the runner's directory: a Cargo.toml of `version` and
    /// action/release-sums holding `sums`.
    fn source(&self, version: &str, sums: &str) -> String {
        let source = self.path("action-source");
        std::fs::create_dir_all(source.join("action")).unwrap();
        std::fs::write(
            source.join("Cargo.toml"),
            format!("[workspace.package]\nversion = \"{version}\"\n"),
        )
        .unwrap();
        std::fs::write(source.join("action/release-sums"), sums).unwrap();
        source.display().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("log")).unwrap_or_default()
    }

    fn wait_started(&self) {
        let started = self.path("log.started");
        let t = Instant::now();
        while !started.exists() {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "benchvm never started: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_release_is_verified_cancel_signals_reach_benchvm_and_the_post_step_cleans_up() {
    let runner = Runner::new();
    let server = release_server(Some(good_sums()));
    let source = runner.source("9.9.9", &pinned(REF, &good_sums()));
    let main = runner
        .node(
            "main.js",
            &server,
            &[("GITHUB_ACTION_PATH", source.clone())],
        )
        .spawn()
        .unwrap();
    runner.wait_started();
    // The runner cancels a job by signalling the step's process: node.
    unsafe { libc::kill(main.id() as i32, libc::SIGTERM) };
    let out = main.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(143),
        "benchvm's own exit code: {stderr}"
    );
    let log = runner.log();
    assert!(
        log.contains("args: action\n") && log.contains("backend=local"),
        "{log}"
    );
    assert!(log.contains("got TERM"), "the signal was passed on: {log}");
    assert!(stderr.contains("checksums verified"), "{stderr}");

    let dir = runner.path(&format!("benchvm-{REF}"));
    for name in ["benchvm", "benchvm-agent"] {
        let mode = std::fs::metadata(dir.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o755, 0o755, "{name} is executable");
    }
    let state = std::fs::read_to_string(runner.path("state")).unwrap();
    let binary = dir.join("benchvm").display().to_string();
    let hash = sha256(STAND_IN.as_bytes());
    assert_eq!(
        state.trim(),
        format!("binary={binary}\nbinary_sha256={hash}")
    );

    let post = |runner: &Runner| {
        runner
            .node(
                "post.js",
                &server,
                &[
                    ("STATE_binary", binary.clone()),
                    ("STATE_binary_sha256", hash.clone()),
                    ("GITHUB_ACTION_PATH", source.clone()),
                ],
            )
            .output()
            .unwrap()
    };
    // Something that ran in between (benchmarked code, on the local backend) replaced the
    // binary: the post step, which has the job's credentials, does not run it.
    std::fs::write(
        &binary,
        "#!/bin/sh\necho \"tampered $*\" >> \"$WRAPPER_LOG\"\n",
    )
    .unwrap();
    let tampered = post(&runner);
    let stderr = String::from_utf8_lossy(&tampered.stderr);
    assert_eq!(tampered.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("changed since the main step") && !runner.log().contains("tampered"),
        "{stderr}"
    );
    std::fs::write(&binary, STAND_IN).unwrap();
    let post = post(&runner);
    assert_eq!(
        post.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&post.stderr)
    );
    assert!(
        runner.log().contains("args: action-cleanup"),
        "{}",
        runner.log()
    );
}

#[test]
fn an_asset_that_does_not_match_its_checksum_is_never_run() {
    let runner = Runner::new();
    // The release's own SHA256SUMS matches its (replaced) assets; the repository's does not.
    let bad = good_sums().replace(&sha256(STAND_IN.as_bytes()), &sha256(b"something else"));
    let source = runner.source("9.9.9", &pinned(REF, &bad));
    let out = runner
        .node(
            "main.js",
            &release_server(Some(good_sums())),
            &[("GITHUB_ACTION_PATH", source)],
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("refusing to run it"), "{stderr}");
    assert!(!runner.path(&format!("benchvm-{REF}/benchvm")).exists());
    assert_eq!(runner.log(), "", "nothing ran");
}

#[test]
fn without_a_release_the_binaries_are_built_from_the_action_source() {
    let runner = Runner::new();
    // A stand-in cargo that "builds" by writing the outputs where cargo would.
    let bin = runner.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let source = runner.path("source");
    std::fs::create_dir_all(&source).unwrap();
    let stand_in = runner.path("stand-in");
    std::fs::write(&stand_in, STAND_IN).unwrap();
    let cargo = format!(
        "#!/bin/sh\necho \"cargo $* in $PWD\" >> \"$WRAPPER_LOG\"\nmkdir -p target/release target/x86_64-unknown-linux-musl/release\ncp {} target/release/benchvm\necho agent > target/x86_64-unknown-linux-musl/release/benchvm-agent\nchmod +x target/release/benchvm\n",
        stand_in.display()
    );
    std::fs::write(bin.join("cargo"), cargo).unwrap();
    std::fs::set_permissions(bin.join("cargo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let main = runner
        .node(
            "main.js",
            &release_server(None),
            &[
                ("PATH", path),
                ("GITHUB_ACTION_PATH", source.display().to_string()),
            ],
        )
        .spawn()
        .unwrap();
    runner.wait_started();
    unsafe { libc::kill(main.id() as i32, libc::SIGINT) };
    let out = main.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("building from source"), "{stderr}");
    let log = runner.log();
    let source = source.display().to_string();
    assert!(
        log.contains(&format!(
            "cargo build --release --locked -p benchvm in {source}"
        )),
        "{log}"
    );
    assert!(
        log.contains("--target x86_64-unknown-linux-musl -p benchvm-agent"),
        "{log}"
    );
    assert!(log.contains("args: action\n"), "{log}");
    // SIGINT is passed on too; the stand-in does not trap it, so it dies of it.
    assert_eq!(out.status.code(), Some(130), "{stderr}");
}

#[test]
fn a_post_step_after_a_failed_download_has_nothing_to_clean() {
    let runner = Runner::new();
    let out = runner
        .node("post.js", "http://127.0.0.1:9", &[])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to clean up"));
}

/// The action pinned by commit SHA: the release named by its Cargo.toml version is used
/// only when its COMMIT asset is that commit; otherwise it is built from source.
#[test]
fn a_commit_pinned_action_uses_the_release_built_from_that_commit() {
    let sha = "3d3c42e5aac5ba805825da76410c181273ba90b1";
    let version = env!("CARGO_PKG_VERSION");
    let tag = format!("v{version}");

    let runner = Runner::new();
    let server = release_server_at(&tag, Some(sums_with_commit(sha)), Some(sha));
    let pinned_source = runner.source(version, &pinned(&tag, &sums_with_commit(sha)));
    let main = runner
        .node(
            "main.js",
            &server,
            &[
                ("GITHUB_ACTION_REF", sha.to_owned()),
                ("GITHUB_ACTION_PATH", pinned_source),
            ],
        )
        .spawn()
        .unwrap();
    runner.wait_started();
    unsafe { libc::kill(main.id() as i32, libc::SIGTERM) };
    let out = main.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("using the {tag} release"))
            && stderr.contains("built from this commit"),
        "{stderr}"
    );

    // The same version released from another commit is not this ref's build.
    let runner = Runner::new();
    let other = "1111111111111111111111111111111111111111";
    let server = release_server_at(&tag, Some(sums_with_commit(other)), Some(other));
    let path = failing_cargo(&runner);
    let out = runner
        .node(
            "main.js",
            &server,
            &[
                ("GITHUB_ACTION_REF", sha.to_owned()),
                (
                    "GITHUB_ACTION_PATH",
                    runner.path("src").display().to_string(),
                ),
                ("PATH", path.clone()),
            ],
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // No Cargo.toml at that source path: no version, so straight to building (which fails here).
    assert!(stderr.contains("building from source"), "{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");

    let runner = Runner::new();
    let pinned_source = runner.source(version, &pinned(&tag, &sums_with_commit(other)));
    let out = runner
        .node(
            "main.js",
            &server,
            &[
                ("GITHUB_ACTION_REF", sha.to_owned()),
                ("GITHUB_ACTION_PATH", pinned_source),
                ("PATH", path.clone()),
            ],
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("was built from {other}, not from {sha}"))
            && stderr.contains("building from source"),
        "{stderr}"
    );
}

/// A `cargo` on PATH that logs its arguments and fails: a build from source is seen, and
/// ends the step with exit 3.
fn failing_cargo(runner: &Runner) -> String {
    let bin = runner.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("cargo"),
        "#!/bin/sh\necho \"cargo $*\" >> \"$WRAPPER_LOG\"\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("cargo"), std::fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

/// A release whose own SHA256SUMS matches its assets is still not run when the action's
/// source keeps no checksums for its tag: the release's files are not the authority.
#[test]
fn a_release_the_repository_keeps_no_checksums_for_is_never_run() {
    let runner = Runner::new();
    let source = runner.source("9.9.9", "# no releases yet\n");
    let out = runner
        .node(
            "main.js",
            &release_server(Some(good_sums())),
            &[
                ("GITHUB_ACTION_PATH", source),
                ("PATH", failing_cargo(&runner)),
            ],
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("action/release-sums of this action has no checksum for v9.9.9/")
            && stderr.contains("building from source"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let log = runner.log();
    assert!(
        log.contains("cargo build") && !log.contains("args:"),
        "{log}"
    );
}

/// A release server that accepts the connection and never answers: the download gives up
/// at its timeout and the step builds from source, instead of waiting out the job.
#[test]
fn a_stalled_download_gives_up_at_its_timeout() {
    let runner = Runner::new();
    // The kernel completes the handshake; nothing ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", silent.local_addr().unwrap());
    let source = runner.source("9.9.9", &pinned(REF, &good_sums()));
    let started = Instant::now();
    let mut child = runner
        .node(
            "main.js",
            &server,
            &[
                ("GITHUB_ACTION_PATH", source),
                ("PATH", failing_cargo(&runner)),
                ("BENCHVM_DOWNLOAD_TIMEOUT_MS", "500".into()),
            ],
        )
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the download never gave up");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("timeout") && stderr.contains("building from source"),
        "{stderr}"
    );
    assert_eq!(status.code(), Some(3), "{stderr}");
    drop(silent);
}
