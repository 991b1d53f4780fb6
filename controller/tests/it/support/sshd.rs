//! A real OpenSSH server on 127.0.0.1 for tests: fresh host and user keys in a temp dir,
//! a free port, killed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use benchvm::ssh_transport::SshTarget;

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn keygen(path: &Path) {
    keygen_of("ed25519", path);
}

fn keygen_of(kind: &str, path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "benchvm-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen is installed (openssh-client)")
        .success();
    assert!(ok);
}

impl Sshd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        // Host keys of every type, as a real server has: the client must ask for the type it
        // pinned (libssh2 prefers ECDSA, so an ed25519 pin failed against such a server).
        keygen_of("ecdsa", &d.join("host_key_ecdsa"));
        keygen_of("rsa", &d.join("host_key_rsa"));
        keygen(&d.join("user_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        // Bind port 0 to learn a free port, then hand it to sshd.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let user = whoami();
        let config = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key_ecdsa\nHostKey {d}/host_key\nHostKey {d}/host_key_rsa\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd.pid\nClientAliveInterval 2\nClientAliveCountMax 3\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nAllowUsers {user}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n",
            d = d.display()
        );
        // Sessions get the test process's TLS trust settings: this sandbox reaches package
        // indexes through a proxy with its own CA, which a real benchmark VM does not need.
        let trust: Vec<String> = [
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "PIP_CERT",
            "PIP_FIND_LINKS",
            "REQUESTS_CA_BUNDLE",
        ]
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.contains(' '))
                .map(|v| format!("{k}={v}"))
        })
        .collect();
        let config = if trust.is_empty() {
            config
        } else {
            format!("{config}SetEnv {}\n", trust.join(" "))
        };
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sshd is installed (openssh-server)");
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not start: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd { dir, port, child }
    }

    pub fn host_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host_key.pub"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The server's public host key of another type: `ecdsa` or `rsa`.
    pub fn host_key_of(&self, kind: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("host_key_{kind}.pub")))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub fn user_key(&self) -> PathBuf {
        self.dir.path().join("user_key")
    }

    pub fn target(&self) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            user: whoami(),
            key: self.user_key(),
            host_key: self.host_key(),
            connect_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(1),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
