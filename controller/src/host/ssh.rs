//! The ssh host: an existing machine reached over SSH with a pinned host key. The static
//! agent is uploaded once per version (kept under ~/.benchvm/bin by its SHA-256), each run
//! gets its own remote workspace, the agent's progress is streamed into the job log, and
//! the results directory is downloaded. ssh2 is blocking: every call runs in
//! `spawn_blocking`, never on the async runtime.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::host::{Host, bundle};
use crate::ssh_transport::{SshError, SshSession, SshTarget, Stream};
use benchvm_agent::job::Job;
use benchvm_agent::spans::{Cache, Timeline};

/// Everything the ssh host needs besides the job.
#[derive(Debug, Clone)]
pub struct SshHost {
    pub target: SshTarget,
    /// The statically linked agent to ship.
    pub agent: PathBuf,
    /// Bounds the whole remote comparison.
    pub timeout: Duration,
    /// On Azure VMs, arm the VM's dead-man switch (cloud-init/benchvm-deadman.sh) in this
    /// directory of the host.
    pub dead_man: Option<String>,
    /// This controller's run on the host ([`new_run_id`]): its directory
    /// (`~/.benchvm/runs/<id>`) and its lease (`~/.benchvm/leases/<host>/<id>`).
    pub run_id: String,
}

/// A run id for [`SshHost::run_id`]: this process and the time.
pub fn new_run_id() -> String {
    format!("{}-{}", std::process::id(), unix_now())
}

/// The directory of the leases of the runs on the host reached as `host`:`port`, under
/// `~/.benchvm/leases/`. Each run's agent holds an exclusive `flock` on its lease file for as
/// long as it runs (waiting for the host included), so a controller about to deallocate a
/// VM can tell whether another run still uses it. Keyed by the address, so that hosts which
/// share a home directory (the tests' sshds) keep their leases apart.
pub fn lease_dir_name(host: &str, port: u16) -> String {
    let digest = Sha256::digest(format!("{host}:{port}").as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl From<SshError> for Error {
    fn from(e: SshError) -> Self {
        Error::caused("talk to the host over ssh", e)
    }
}

/// Creates the run's directory and the agents' directory under the remote `home`. Every
/// remote path is quoted: a home with a space or a `;` stays one path.
fn mkdir_command(home: &str, run_dir: &str, lease_dir: &str) -> String {
    format!(
        "mkdir -p {} {} {}",
        super::quote(run_dir),
        super::quote(&format!("{home}/.benchvm/bin")),
        super::quote(lease_dir)
    )
}

fn remove_command(run_dir: &str, lease: &str) -> String {
    format!("rm -rf {} {}", super::quote(run_dir), super::quote(lease))
}

/// Exits 10 when a lease in `lease_dir` other than `own` is held by a running agent, 0 when
/// none is (or `flock` is missing: then no run holds one).
///
/// A lease counts only if a holder of its lock (`/proc/locks`, by inode) runs without
/// `no_new_privs`. A run's `flock(1)` does; benchmark code never can (the confinement sets it
/// and nothing clears it), and it can take the lock of a lease it may not write: `flock`
/// needs only a descriptor opened for reading. Without `/proc/locks` a held lease counts.
fn other_lease_command(lease_dir: &str, own: &str) -> String {
    format!(
        "d={}; own={}; command -v flock >/dev/null 2>&1 || exit 0; \
         for f in \"$d\"/*; do [ -f \"$f\" ] && [ \"$f\" != \"$own\" ] || continue; \
         flock -n -E 10 \"$f\" true; [ $? -eq 10 ] || continue; \
         [ -r /proc/locks ] && i=$(stat -c %i \"$f\") || exit 10; \
         for p in $(awk -v i=\"$i\" '$2 == \"FLOCK\" {{ n = split($6, a, \":\"); if (a[n] == i) print $5 }}' /proc/locks); do \
         grep -qs '^NoNewPrivs:[[:space:]]*0$' \"/proc/$p/status\" && exit 10; done; \
         done; exit 0",
        super::quote(lease_dir),
        super::quote(own)
    )
}

impl SshHost {
    fn lease_dir(&self, home: &str) -> String {
        format!(
            "{home}/.benchvm/leases/{}",
            lease_dir_name(&self.target.host, self.target.port)
        )
    }

    /// Whether another run's agent holds its lease on the host (is running or waiting for
    /// the host); `None` when that cannot be told within 10 s (a host that stopped
    /// answering, say), which a caller about to deallocate takes as "no".
    pub async fn another_run_holds_the_host(&self) -> Option<bool> {
        let host = self.clone();
        // A host that stopped answering mid-run must not hold up its deallocation for long.
        let check = blocking(move || {
            let session = SshSession::connect(&host.target)?;
            let home = capture(&session, "printf %s \"$HOME\"")?;
            let lease_dir = host.lease_dir(&home);
            let own = format!("{lease_dir}/{}", host.run_id);
            let command = other_lease_command(&lease_dir, &own);
            Ok(session.exec(&command, Duration::from_secs(10), &mut |_, _| {})?)
        });
        tokio::time::timeout(Duration::from_secs(10), check)
            .await
            .ok()?
            .ok()
            .and_then(|status| match status {
                0 => Some(false),
                10 => Some(true),
                _ => None,
            })
    }

    /// Connects, retrying until `deadline` (a VM's sshd answers a little after the VM
    /// reports running). A wrong or unreadable host key pin and a refused login fail at
    /// once: waiting will not fix them, and the VM bills while we wait (the login key is in
    /// place before sshd accepts connections: cloud-init writes it first).
    pub async fn wait_ready(&self, deadline: Duration) -> Result<()> {
        let target = self.target.clone();
        blocking(move || {
            let start = Instant::now();
            loop {
                match SshSession::connect(&target) {
                    Ok(_) => return Ok(()),
                    Err(
                        e @ (SshError::HostKeyMismatch { .. }
                        | SshError::BadHostKey(_)
                        | SshError::Auth { .. }),
                    ) => return Err(e.into()),
                    Err(e) if start.elapsed() >= deadline => {
                        return Err(Error::caused(
                            format!(
                                "reach {} over ssh within {:.0} s",
                                target.host,
                                deadline.as_secs_f64()
                            ),
                            e,
                        ));
                    }
                    Err(_) => std::thread::sleep(Duration::from_secs(2)),
                }
            }
        })
        .await
    }
}

#[async_trait::async_trait]
impl Host for SshHost {
    async fn run_agent(&self, job: &Job, timeline: &Timeline) -> Result<()> {
        let host = self.clone();
        let job = job.clone();
        let timeline = timeline.clone();
        blocking(move || host.run_blocking(&job, &timeline)).await
    }
}

impl SshHost {
    fn run_blocking(&self, job: &Job, timeline: &Timeline) -> Result<()> {
        let t = Instant::now();
        let session = SshSession::connect(&self.target)?;
        timeline.record("ssh connect", t, None);
        let home = capture(&session, "printf %s \"$HOME\"")?;
        let run_dir = format!("{home}/.benchvm/runs/{}", self.run_id);
        let lease_dir = self.lease_dir(&home);
        let lease = format!("{lease_dir}/{}", self.run_id);
        run_checked(&session, &mkdir_command(&home, &run_dir, &lease_dir))?;

        // The agent, once per version: its name carries its hash.
        let t = Instant::now();
        let sha = sha256_file(&self.agent)?;
        let remote_agent = super::remote_agent_path(&home, &sha);
        let present = capture(
            &session,
            &format!(
                "sha256sum {} 2>/dev/null || true",
                super::quote(&remote_agent)
            ),
        )?;
        let warm = present.split_whitespace().next() == Some(sha.as_str());
        if !warm {
            session.upload(&self.agent, &remote_agent, 0o755)?;
        }
        timeline.record("upload agent", t, Some(Cache::from_warm(warm)));

        // A local repository travels as a bundle of the two commits.
        let t = Instant::now();
        let mut remote_job = job.clone();
        if Path::new(&job.repo).exists() {
            let local = tempfile::Builder::new()
                .suffix(".bundle")
                .tempfile()
                .map_err(|e| Error::caused("create a temporary file", e))?;
            let b = bundle::create(Path::new(&job.repo), &job.base, job.head(), local.path())?;
            // The run's own bundle (a shared one is overwritten by a run that starts while
            // this one waits for the host); the mirror stays one per repository by name.
            let remote_bundle = format!("{run_dir}/repo.bundle");
            session.upload(local.path(), &remote_bundle, 0o644)?;
            remote_job.repo = remote_bundle;
            remote_job.mirror_name = Some(mirror_name(Path::new(&job.repo)));
            remote_job.base = b.base;
            remote_job.head = job.head.as_ref().map(|_| b.head);
            timeline.record("upload code", t, None);
        }
        remote_job.config = None;
        if let Some(config) = &job.config {
            let remote_config = format!("{run_dir}/bench.yml");
            session.upload(config, &remote_config, 0o644)?;
            remote_job.config = Some(PathBuf::from(remote_config));
        }
        if let Some(weights) = &job.options.shard_weights {
            let remote = format!("{run_dir}/shard-weights.json");
            session.upload(weights, &remote, 0o644)?;
            remote_job.options.shard_weights = Some(PathBuf::from(remote));
        }
        remote_job.options.cache = None;

        let remote_results = format!("{run_dir}/results");
        remote_job.options.results = Some(PathBuf::from(&remote_results));
        let args: Vec<String> = remote_job
            .to_argv()
            .iter()
            .map(|a| super::quote(a))
            .collect();
        // The heartbeat lets the agent notice when this controller is gone, stop its
        // benchmark and free the host instead of running on for hours.
        // Both ways: the agent's heartbeat lines tell it when this end is gone, our beats on
        // its stdin tell it when the connection died without closing.
        let silence = 4 * self.target.keepalive.as_secs() + 5;
        // The agent holds this run's lease while it runs (flock(1) keeps it until the agent
        // has exited, however it exits): another controller then leaves the VM running.
        // `-o`: the lock's descriptor is not passed on to the agent and its benchmarks, so
        // nothing they leave running can hold the lease after the run.
        let mut command = format!(
            "if command -v flock >/dev/null 2>&1; then set -- flock -o {}; else set --; fi; \
             \"$@\" {} {} --heartbeat-secs 5 --controller-silence {silence}",
            super::quote(&lease),
            super::quote(&remote_agent),
            args.join(" ")
        );
        if let Some(dir) = &self.dead_man {
            // Ten minutes without a heartbeat reaching us: the VM deallocates itself.
            command.push_str(&format!(
                " --dead-man-dir {} --dead-man-silence 600",
                super::quote(dir)
            ));
        }
        let status =
            session.exec_beating(&command, self.timeout, &mut |stream, line| match stream {
                // The agent's progress goes to stderr; show it live in the job log.
                Stream::Stderr if line == benchvm_agent::heartbeat::TAG => {}
                Stream::Stderr => eprintln!("{}", benchvm_agent::report::inert::line(line)),
                Stream::Stdout => {}
            })?;
        if status > 128 {
            // The shell's code for "killed by signal N"; the agent's own codes are 0-3.
            return Err(Error::infra(
                "run the agent on the host",
                format!("it was killed by signal {}", status - 128),
            ));
        }
        if status != 0 {
            let _ = session.exec(
                &remove_command(&run_dir, &lease),
                Duration::from_secs(60),
                &mut |_, _| {},
            );
            return Err(Error::Agent { code: status });
        }
        let t = Instant::now();
        session.download_dir(
            &remote_results,
            &job.results(),
            crate::ssh_transport::Limits::RESULTS,
        )?;
        timeline.record("download results", t, None);
        run_checked(&session, &remove_command(&run_dir, &lease))?;
        Ok(())
    }
}

/// The name a local repository's mirror has on the host: its directory name and a digest of
/// its path here, so two checkouts of the same name stay apart.
fn mirror_name(repo: &Path) -> String {
    let path = repo.canonicalize().unwrap_or_else(|_| repo.to_owned());
    let name = path
        .file_name()
        .map_or("repo".into(), |n| n.to_string_lossy().into_owned());
    let digest = Sha256::digest(path.display().to_string().as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{name}-{hex}")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::caused("run the ssh session", e))?
}

fn capture(session: &SshSession, command: &str) -> Result<String> {
    Ok(session.capture(command)?)
}

fn run_checked(session: &SshSession, command: &str) -> Result<()> {
    capture(session, command).map(|_| ())
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::caused(format!("read {}", path.display()), e))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remote home with a space and a `;` in it: the commands make and remove exactly the
    /// run's directories, under that home, and run nothing else.
    #[test]
    fn remote_paths_are_quoted_whatever_the_home() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("a b;touch pwned");
        std::fs::create_dir_all(&home).unwrap();
        let home = home.to_str().unwrap();
        let run_dir = format!("{home}/.benchvm/runs/1-2");
        let sh = |command: &str| benchvm_agent::test_support::sh(tmp.path(), command);
        let lease_dir = format!("{home}/.benchvm/leases/k");
        sh(&mkdir_command(home, &run_dir, &lease_dir));
        assert!(Path::new(&run_dir).is_dir());
        assert!(Path::new(&format!("{home}/.benchvm/bin")).is_dir());
        assert!(Path::new(&lease_dir).is_dir());
        let lease = format!("{lease_dir}/1-2");
        std::fs::write(&lease, "").unwrap();
        sh(&remove_command(&run_dir, &lease));
        assert!(!Path::new(&run_dir).exists());
        assert!(!Path::new(&lease).exists());
        let made: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            made.len(),
            1,
            "only the home, nothing split off it: {made:?}"
        );
    }

    /// The lease check counts other runs' held leases only: not its own, not a released
    /// one, and a path with a space stays one path.
    #[test]
    fn the_lease_check_counts_only_other_held_leases() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lea ses");
        std::fs::create_dir_all(&dir).unwrap();
        let dir_s = dir.to_str().unwrap();
        let own = format!("{dir_s}/own");
        let check = || {
            std::process::Command::new("sh")
                .args(["-c", &other_lease_command(dir_s, &own)])
                .status()
                .unwrap()
                .code()
        };
        // `setpriv --no-new-privs`: the holder is benchmark code (confined: no_new_privs).
        let hold_as = |name: &str, benchmark: bool| {
            let mut command = if benchmark {
                let mut c = std::process::Command::new("setpriv");
                c.args(["--no-new-privs", "flock"]);
                c
            } else {
                std::process::Command::new("flock")
            };
            let mut child = command
                .arg(dir.join(name))
                .args(["sh", "-c", "echo held; read _"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
                &mut line,
            )
            .unwrap();
            assert_eq!(line.trim(), "held");
            child
        };
        let hold = |name: &str| hold_as(name, false);
        assert_eq!(check(), Some(0), "no lease at all");
        let mut own_holder = hold("own");
        std::fs::write(dir.join("released"), "").unwrap();
        assert_eq!(check(), Some(0), "its own lease and a released one");
        // Issue 14: a process the benchmark left behind takes a lease's lock (a descriptor
        // opened for reading is enough) to keep every later run from deallocating the VM.
        let mut forged = hold_as("stale", true);
        assert_eq!(check(), Some(0), "a lease held by benchmark code is forged");
        let mut other = hold("other run");
        assert_eq!(check(), Some(10), "another run's held lease");
        for child in [&mut other, &mut own_holder, &mut forged] {
            drop(child.stdin.take());
            child.wait().unwrap();
        }
        assert_eq!(check(), Some(0), "released");
    }
}
