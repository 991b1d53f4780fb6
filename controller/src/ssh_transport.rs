//! SSH transport on ssh2 (libssh2). Blocking by nature: callers run it inside
//! `spawn_blocking`, never on the async runtime.
//!
//! Three traps of ssh2 are handled here rather than left to callers:
//! - stdout and stderr share one channel window: reading one stream while the remote side
//!   blocks writing the other deadlocks, so both are read in one non-blocking loop;
//! - a long silent benchmark must not look like a dead connection, and a dead connection
//!   must not hang the run: keepalives ask the host for a reply while we wait, so a live
//!   host is heard from at least once an interval however silent the command; two
//!   intervals without a byte is [`SshError::ConnectionLost`]. Besides that the only
//!   deadline is the caller's whole-command timeout;
//! - closing a channel does not stop the remote process: commands start in their own
//!   session (setsid) and report their pid first, so a timeout can kill the whole group.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use sha2::{Digest, Sha256};
use ssh2::{Channel, MethodType, OpenFlags, OpenType, Session, Sftp};

/// Where and as whom to connect, and the one host key to accept.
#[derive(Debug, Clone)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key file (OpenSSH format, no passphrase).
    pub key: PathBuf,
    /// The pinned host public key, one line: `ssh-ed25519 AAAA… [comment]`.
    pub host_key: String,
    pub connect_timeout: Duration,
    pub keepalive: Duration,
}

/// Which remote stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("failed to connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error(
        "the host key of {host} is {got}, but {expected} is pinned: refusing to connect (if the host was rebuilt, pin its new key)"
    )]
    HostKeyMismatch {
        host: String,
        expected: String,
        got: String,
    },
    #[error("the pinned host key is not a public key line (\"ssh-ed25519 AAAA…\"): {0}")]
    BadHostKey(String),
    #[error("failed to authenticate as {user} with {}: {detail}", key.display())]
    Auth {
        user: String,
        key: PathBuf,
        detail: String,
    },
    #[error("ssh: {0}")]
    Ssh(#[from] ssh2::Error),
    #[error("ssh i/o: {0}")]
    Io(#[from] io::Error),
    #[error("the remote command ran longer than {secs} s and was killed")]
    Timeout { secs: u64 },
    #[error("the upload of {path} arrived corrupted (sha256 {remote} on the host, {local} here)")]
    ChecksumMismatch {
        path: String,
        local: String,
        remote: String,
    },
    #[error(
        "lost the connection to {host}: nothing heard for {silent_secs} s, through {keepalives} keepalives"
    )]
    ConnectionLost {
        host: String,
        silent_secs: u64,
        keepalives: u32,
    },
    #[error("refusing to download {path}: the tree is over {files} files or {bytes} bytes")]
    TooLarge {
        path: String,
        files: u64,
        bytes: u64,
    },
    #[error("the remote command was killed by signal {signal}")]
    Signal { signal: String },
    #[error("remote command {command:?} failed with exit status {status}")]
    Remote { command: String, status: i32 },
}

/// OpenSSH's fingerprint of a public key line: `SHA256:<base64, no padding>`.
pub fn fingerprint(public_key_line: &str) -> Result<String, SshError> {
    Ok(fingerprint_of(&key_blob(public_key_line)?))
}

fn key_blob(line: &str) -> Result<Vec<u8>, SshError> {
    Ok(pinned_key(line)?.1)
}

/// The host-key algorithms that yield a key of this type: the server must be asked for
/// the pinned key's own type, or it sends whichever it prefers and the pin never matches.
fn host_key_methods(kind: &str) -> &str {
    match kind {
        "ssh-rsa" => "rsa-sha2-512,rsa-sha2-256,ssh-rsa",
        other => other,
    }
}

/// A public key line's type and key blob.
fn pinned_key(line: &str) -> Result<(&str, Vec<u8>), SshError> {
    let mut parts = line.split_whitespace();
    let (Some(kind), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(SshError::BadHostKey(
            "expected a key type and a base64 key".into(),
        ));
    };
    if !kind.starts_with("ssh-") && !kind.starts_with("ecdsa-") {
        return Err(SshError::BadHostKey(format!("unknown key type {kind:?}")));
    }
    let blob = STANDARD
        .decode(b64)
        .map_err(|e| SshError::BadHostKey(format!("the key is not base64: {e}")))?;
    Ok((kind, blob))
}

fn fingerprint_of(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// An authenticated session to a host whose key matched the pinned one.
pub struct SshSession {
    session: Session,
    tcp: TcpStream,
    keepalive: Duration,
    host: String,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession").finish_non_exhaustive()
    }
}

/// How long one wait for socket activity lasts before keepalive and deadline checks.
const TICK_MS: i32 = 200;

/// What any one blocking libssh2 call (a channel open, an SFTP write) may take.
const BLOCKING_TIMEOUT_MS: u32 = 120_000;

/// What any one libssh2 call may block for while cleaning up after a failed command.
const CLEANUP_TIMEOUT_MS: u32 = 10_000;

impl SshSession {
    /// Connects, checks the host key against the pinned one before authenticating, then
    /// authenticates with the key file.
    pub fn connect(target: &SshTarget) -> Result<Self, SshError> {
        let (kind, pinned) = pinned_key(&target.host_key)?;
        let addr = format!("{}:{}", target.host, target.port);
        let connect_err = |source| SshError::Connect {
            addr: addr.clone(),
            source,
        };
        let sockaddr = addr
            .to_socket_addrs()
            .map_err(connect_err)?
            .next()
            .ok_or_else(|| connect_err(io::Error::new(io::ErrorKind::NotFound, "no address")))?;
        let tcp =
            TcpStream::connect_timeout(&sockaddr, target.connect_timeout).map_err(connect_err)?;
        let mut session = Session::new()?;
        session.set_tcp_stream(tcp.try_clone()?);
        session.set_timeout(target.connect_timeout.as_millis().min(u32::MAX as u128) as u32);
        session.method_pref(MethodType::HostKey, host_key_methods(kind))?;
        session.handshake()?;
        let (got, _) = session
            .host_key()
            .ok_or_else(|| SshError::BadHostKey("the server sent no host key".into()))?;
        if got != pinned.as_slice() {
            return Err(SshError::HostKeyMismatch {
                host: target.host.clone(),
                expected: fingerprint_of(&pinned),
                got: fingerprint_of(got),
            });
        }
        session
            .userauth_pubkey_file(&target.user, None, &target.key, None)
            .map_err(|e| SshError::Auth {
                user: target.user.clone(),
                key: target.key.clone(),
                detail: e.message().to_owned(),
            })?;
        // Commands are pumped without blocking, under our own deadlines; this bounds only
        // the blocking calls (opening channels, SFTP transfers) on a connection that died.
        session.set_timeout(BLOCKING_TIMEOUT_MS);
        Ok(Self {
            session,
            tcp,
            keepalive: target.keepalive,
            host: target.host.clone(),
        })
    }

    /// Runs `command` with the remote shell, calling `on_line` for every complete line of
    /// either stream as it arrives; returns the exit status. After `timeout` the remote
    /// command's session is killed and [`SshError::Timeout`] returned; so it is when the
    /// command was killed by a signal.
    pub fn exec(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<i32, SshError> {
        self.exec_with(command, timeout, false, on_line)
    }

    /// [`SshSession::exec`], also writing a newline to the command's stdin every keepalive
    /// interval: a beat the agent watches (`--controller-silence`) to stop by itself when
    /// the connection died without closing.
    pub fn exec_beating(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<i32, SshError> {
        self.exec_with(command, timeout, true, on_line)
    }

    fn exec_with(
        &self,
        command: &str,
        timeout: Duration,
        beat: bool,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<i32, SshError> {
        // The command runs in a session of its own, whose id (its pid) is announced first
        // on stderr, so that a timeout can kill the whole session from a second channel. An
        // asynchronous command's stdin is /dev/null unless redirected: `<&0` keeps ours.
        let wrapped = format!(
            "setsid sh -c {} <&0 & echo \"{PID_TAG}$!\" >&2; wait $!",
            crate::host::quote(command)
        );
        let mut channel = self.blocking(|s| s.channel_session())?;
        self.blocking_on(&mut channel, |c| c.exec(&wrapped))?;
        // Keepalives (with a reply asked for) only while a command runs: they keep NATs and
        // sshd's ClientAlive check happy during silence, and their replies prove the host
        // alive. libssh2 also cuts every blocking call short at the next keepalive, so
        // they are off whenever we block.
        self.session.set_blocking(false);
        self.session
            .set_keepalive(true, self.keepalive.as_secs().max(1) as u32);
        let result = self.pump(&mut channel, timeout, beat, on_line);
        self.session.set_keepalive(true, 0);
        self.session.set_blocking(true);
        match result {
            Ok(pid) => {
                channel.wait_close()?;
                // A shell killed by a signal has no exit status (libssh2 then says 0).
                if let Some(signal) = channel.exit_signal()?.exit_signal {
                    // What it started may live on in its own session.
                    if let Some(pid) = pid {
                        let _ = self.kill_session(pid);
                    }
                    return Err(SshError::Signal { signal });
                }
                let status = channel.exit_status()?;
                // A command killed by a signal (the shell's 128 + N), or the agent's run
                // whatever its end: what it started in process groups of its own (the
                // agent's benchmarks, anything the benchmarked code left behind) must not
                // outlive it.
                if (beat || status > 128)
                    && let Some(pid) = pid
                {
                    let _ = self.kill_session(pid);
                }
                Ok(status)
            }
            Err((e, pid)) => {
                // From here on no call may block for long: the connection may be dead
                // (libssh2 then gives up after this timeout instead of never).
                self.session.set_timeout(CLEANUP_TIMEOUT_MS);
                if matches!(e, SshError::ConnectionLost { .. }) {
                    // Nothing more can be said to this host; closing the socket makes every
                    // later libssh2 call (and the drops) fail at once instead of waiting.
                    let _ = self.tcp.shutdown(std::net::Shutdown::Both);
                    return Err(e);
                }
                if let Some(pid) = pid {
                    let _ = self.kill_session(pid);
                }
                let _ = channel.close();
                Err(e)
            }
        }
    }

    fn pump(
        &self,
        channel: &mut Channel,
        timeout: Duration,
        beat: bool,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<Option<u32>, (SshError, Option<u32>)> {
        let start = Instant::now();
        let mut pid = None;
        let mut bufs = [Vec::new(), Vec::new()];
        let mut chunk = [0u8; 32 * 1024];
        let mut last_keepalive = Instant::now();
        let mut last_heard = Instant::now();
        let mut keepalives = 0;
        // A live host answers every keepalive; allow for one lost to scheduling.
        let silence_limit = 2 * self.keepalive + Duration::from_secs(2);
        loop {
            let mut progressed = false;
            for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                let read = match stream {
                    Stream::Stdout => channel.read(&mut chunk),
                    Stream::Stderr => channel.stderr().read(&mut chunk),
                };
                match read {
                    Ok(0) => {}
                    Ok(n) => {
                        progressed = true;
                        bufs[i].extend_from_slice(&chunk[..n]);
                        emit_lines(&mut bufs[i], stream, &mut pid, on_line);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err((e.into(), pid)),
                }
            }
            if !progressed && channel.eof() {
                for (i, stream) in [Stream::Stdout, Stream::Stderr].into_iter().enumerate() {
                    if !bufs[i].is_empty() {
                        bufs[i].push(b'\n');
                        emit_lines(&mut bufs[i], stream, &mut pid, on_line);
                    }
                }
                return Ok(pid);
            }
            if start.elapsed() >= timeout {
                return Err((
                    SshError::Timeout {
                        secs: timeout.as_secs(),
                    },
                    pid,
                ));
            }
            if progressed {
                last_heard = Instant::now();
            } else {
                if last_heard.elapsed() > silence_limit {
                    return Err((
                        SshError::ConnectionLost {
                            host: self.host.clone(),
                            silent_secs: last_heard.elapsed().as_secs(),
                            keepalives,
                        },
                        pid,
                    ));
                }
                if last_keepalive.elapsed() >= self.keepalive {
                    let _ = self.session.keepalive_send();
                    if beat {
                        // Non-blocking: a full window only delays the beat.
                        let _ = channel.write(b"\n");
                    }
                    keepalives += 1;
                    last_keepalive = Instant::now();
                }
                if self.wait_socket() {
                    last_heard = Instant::now();
                }
            }
        }
    }

    /// Sleeps until the socket is readable or a tick passes; true when the host sent
    /// something (a keepalive reply counts: libssh2 consumes it on the next read).
    fn wait_socket(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.tcp.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, TICK_MS) };
        ready > 0 && pfd.revents & libc::POLLIN != 0
    }

    /// Stops every process of the command's session `sid` (its pid: the command runs under
    /// `setsid`), in whatever process group: the agent runs each benchmark in a group of its
    /// own, which a group kill misses when the agent itself is gone. TERM first (a live
    /// agent then stops its benchmark itself), then STOP and KILL, repeated until the session
    /// is empty (a process that keeps forking is frozen before it is killed). The session is
    /// left by nothing but `setsid`, which the wrapper's own process does not call again.
    fn kill_session(&self, sid: u32) -> Result<(), SshError> {
        let mut channel = self.session.channel_session()?;
        channel.exec(&format!(
            "s={sid}; [ \"$s\" -gt 1 ] || exit 0; \
             alive() {{ pgrep -s $s >/dev/null 2>&1 || kill -0 -- -$s 2>/dev/null; }}; \
             pkill -TERM -s $s 2>/dev/null; kill -TERM -- -$s 2>/dev/null; \
             for _ in 1 2 3 4 5 6 7 8 9 10; do alive || exit 0; sleep 0.5; done; \
             for _ in $(seq 50); do pkill -STOP -s $s 2>/dev/null; pkill -KILL -s $s 2>/dev/null; \
             kill -KILL -- -$s 2>/dev/null; alive || exit 0; sleep 0.1; done; true"
        ))?;
        let mut sink = String::new();
        let _ = channel.read_to_string(&mut sink);
        channel.wait_close()?;
        Ok(())
    }

    fn blocking<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, ssh2::Error>,
    ) -> Result<T, SshError> {
        self.session.set_blocking(true);
        Ok(f(&self.session)?)
    }

    fn blocking_on(
        &self,
        channel: &mut Channel,
        f: impl FnOnce(&mut Channel) -> Result<(), ssh2::Error>,
    ) -> Result<(), SshError> {
        self.session.set_blocking(true);
        Ok(f(channel)?)
    }

    /// Runs a short command and returns its stdout; a non-zero status is an error.
    pub fn capture(&self, command: &str) -> Result<String, SshError> {
        let mut out = String::new();
        let status = self.exec(command, Duration::from_secs(120), &mut |stream, line| {
            if stream == Stream::Stdout {
                out.push_str(line);
                out.push('\n');
            }
        })?;
        if status != 0 {
            return Err(SshError::Remote {
                command: command.to_owned(),
                status,
            });
        }
        Ok(out.trim_end().to_owned())
    }

    fn sftp(&self) -> Result<Sftp, SshError> {
        self.session.set_blocking(true);
        Ok(self.session.sftp()?)
    }

    /// Uploads `local` to `remote_path` with `mode` (written under a temporary name of its
    /// own and renamed into place with `mv -f`, one atomic rename(2)), then checks the far
    /// side's SHA-256. Two controllers uploading the same file at once never see it missing.
    pub fn upload(&self, local: &Path, remote_path: &str, mode: i32) -> Result<(), SshError> {
        let bytes = std::fs::read(local)?;
        let sftp = self.sftp()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let tmp = format!("{remote_path}.partial-{}-{nanos}", std::process::id());
        {
            let mut file = sftp.open_mode(
                Path::new(&tmp),
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                mode,
                OpenType::File,
            )?;
            file.write_all(&bytes)?;
        }
        drop(sftp);
        // Checked under its own name, before it takes the real one: a file that arrived
        // corrupted never replaces a good one.
        let local_sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let remote = self.capture(&format!("sha256sum {}", crate::host::quote(&tmp)))?;
        let remote_sha = remote
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        if remote_sha != local_sha {
            let _ = self.capture(&format!("rm -f {}", crate::host::quote(&tmp)));
            return Err(SshError::ChecksumMismatch {
                path: remote_path.to_owned(),
                local: local_sha,
                remote: remote_sha,
            });
        }
        // SFTP v3 (OpenSSH) cannot rename over an existing file; the shell's mv can, atomically.
        self.capture(&format!(
            "mv -f {} {}",
            crate::host::quote(&tmp),
            crate::host::quote(remote_path)
        ))?;
        Ok(())
    }

    /// Downloads one file, written locally under a temporary name and renamed.
    pub fn download_file(&self, remote_path: &str, local: &Path) -> Result<(), SshError> {
        let sftp = self.sftp()?;
        download(
            &sftp,
            Path::new(remote_path),
            local,
            &mut Budget::new(Limits::RESULTS),
        )
    }

    /// Downloads a remote directory tree into `local_dir` within `limits`; returns the
    /// number of files. What the host wrote there is the head's to shape: only regular
    /// files and directories come back, each file is created new here (never through a
    /// link), and a tree over the limits is refused before its bytes are fetched.
    pub fn download_dir(
        &self,
        remote_dir: &str,
        local_dir: &Path,
        limits: Limits,
    ) -> Result<u64, SshError> {
        let sftp = self.sftp()?;
        download_tree(
            &sftp,
            Path::new(remote_dir),
            local_dir,
            &mut Budget::new(limits),
        )
    }
}

/// How much a download may bring back.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub files: u64,
    pub bytes: u64,
}

impl Limits {
    /// A results directory: a report, logs, a survey database; far below these.
    pub const RESULTS: Limits = Limits {
        files: 10_000,
        bytes: 1 << 30,
    };
}

struct Budget {
    limits: Limits,
    files: u64,
    bytes: u64,
}

impl Budget {
    fn new(limits: Limits) -> Self {
        Budget {
            limits,
            files: 0,
            bytes: 0,
        }
    }

    fn take(&mut self, remote: &Path, size: u64) -> Result<(), SshError> {
        self.files += 1;
        self.bytes += size;
        if self.files > self.limits.files || self.bytes > self.limits.bytes {
            return Err(SshError::TooLarge {
                path: remote.display().to_string(),
                files: self.limits.files,
                bytes: self.limits.bytes,
            });
        }
        Ok(())
    }
}

const PID_TAG: &str = "__benchvm_pid ";

fn emit_lines(
    buf: &mut Vec<u8>,
    stream: Stream,
    pid: &mut Option<u32>,
    on_line: &mut dyn FnMut(Stream, &str),
) {
    while let Some(end) = buf.iter().position(|&b| b == b'\n') {
        let line: Vec<u8> = buf.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line[..line.len() - 1]);
        let text = text.trim_end_matches('\r');
        match text.strip_prefix(PID_TAG) {
            Some(p) if stream == Stream::Stderr && pid.is_none() => *pid = p.trim().parse().ok(),
            _ => on_line(stream, text),
        }
    }
}

fn download(sftp: &Sftp, remote: &Path, local: &Path, budget: &mut Budget) -> Result<(), SshError> {
    let size = sftp.stat(remote)?.size.unwrap_or(0);
    budget.take(remote, size)?;
    let mut bytes = Vec::new();
    // The size may grow while we read: read no more than the budget has left, plus one
    // byte to notice.
    let left = budget.limits.bytes.saturating_sub(budget.bytes - size);
    sftp.open(remote)?
        .take(left.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > left {
        return Err(SshError::TooLarge {
            path: remote.display().to_string(),
            files: budget.limits.files,
            bytes: budget.limits.bytes,
        });
    }
    budget.bytes = budget.bytes - size + bytes.len() as u64;
    if let Some(parent) = local.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = local.with_extension("partial");
    // A new file: an existing one, or a link planted under this name, is refused (and a
    // stale temporary file of ours is removed first; remove_file never follows a link).
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    file.write_all(&bytes)?;
    drop(file);
    // rename(2) replaces a link at `local` itself, never its target.
    std::fs::rename(&tmp, local)?;
    Ok(())
}

fn download_tree(
    sftp: &Sftp,
    remote: &Path,
    local: &Path,
    budget: &mut Budget,
) -> Result<u64, SshError> {
    make_dir(local)?;
    let mut files = 0;
    for (path, stat) in sftp.readdir(remote)? {
        let Some(name) = path.file_name() else {
            continue;
        };
        if stat.is_dir() {
            files += download_tree(sftp, &path, &local.join(name), budget)?;
        } else if stat.is_file() {
            download(sftp, &path, &local.join(name), budget)?;
            files += 1;
        }
    }
    Ok(files)
}

/// Creates `dir` (and its parents) and refuses a symbolic link in its place: files written
/// into it must land in it.
fn make_dir(dir: &Path) -> Result<(), SshError> {
    std::fs::create_dir_all(dir)?;
    if std::fs::symlink_metadata(dir)?.file_type().is_symlink() {
        return Err(SshError::Io(io::Error::other(format!(
            "{} is a symbolic link; refusing to write through it",
            dir.display()
        ))));
    }
    Ok(())
}
