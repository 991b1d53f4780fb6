//! The VM's metadata guard (cloud-init/benchvm-imds-guard.sh): once it ran, only root reaches
//! the instance metadata address, so the code a pull request benchmarks (the bench user)
//! cannot take the VM's managed-identity token. Checked for real, with iptables, in a network
//! namespace of the test's own: the address, a stand-in metadata server and the rule exist
//! only there.

use std::path::PathBuf;
use std::process::Command;

use crate::support::cloud;

fn guard() -> PathBuf {
    cloud::file("benchvm-imds-guard.sh")
}

/// In a namespace: a server on 169.254.169.254, reached by root and by an unprivileged user
/// (uid 65534) before and after the guard ran (twice), and the guard's rules counted.
const SCENARIO: &str = r#"
set -eu
guard=$1
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
python3 -m http.server --bind 169.254.169.254 8080 >/dev/null 2>&1 &
server=$!
trap 'kill $server' EXIT
# A TCP connection with bash alone: the unprivileged user may not be able to run this
# machine's python3 (a pyenv shim under /root, say).
PROBE='exec 3<>/dev/tcp/169.254.169.254/8080 && echo reached'
reach() { timeout 10 "$@" /bin/bash -c "$PROBE" 2>/dev/null || echo refused; }
nobody="setpriv --reuid=65534 --regid=65534 --clear-groups --"
for _ in $(seq 100); do [ "$(reach)" = reached ] && break; sleep 0.1; done
echo "before root=$(reach) nobody=$(reach $nobody)"
sh "$guard"
sh "$guard"
echo "after root=$(reach) nobody=$(reach $nobody)"
echo "rules=$(iptables -S OUTPUT | grep -c 169.254.169.254)"
"#;

#[test]
fn once_the_guard_ran_only_root_reaches_the_metadata_service() {
    let tmp = tempfile::tempdir().unwrap();
    // A network namespace needs root: CI's runner user gets it through sudo, as
    // scripts/prerequisites does.
    let mut command = if unsafe { libc::geteuid() } == 0 {
        Command::new("timeout")
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "timeout"]);
        sudo
    };
    let out = command
        .args(["120", "unshare", "--net", "sh", "-c", SCENARIO, "sh"])
        .arg(guard())
        .current_dir(tmp.path())
        .output()
        .expect("timeout and unshare (util-linux, coreutils) run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "before root=reached nobody=reached",
            "after root=reached nobody=refused",
            "rules=1",
        ],
        "{stderr}"
    );
}

#[test]
fn the_cloud_config_installs_the_guard_before_sshd_at_every_boot() {
    let config = cloud::config();
    assert_eq!(
        cloud::written(&config, "/usr/local/sbin/benchvm-imds-guard"),
        std::fs::read_to_string(guard()).unwrap(),
        "the embedded copy is the tested script"
    );
    let unit = cloud::written(&config, "/etc/systemd/system/benchvm-imds-guard.service");
    assert!(unit.contains("Before=ssh.service") && unit.contains("WantedBy=multi-user.target"));
    assert!(
        cloud::list(&config, "runcmd")
            .contains(&"systemctl enable --now benchvm-imds-guard.service")
    );
    assert!(cloud::list(&config, "packages").contains(&"iptables"));
    // No user manager whose bus would start processes outside the confinement.
    assert!(cloud::list(&config, "runcmd").contains(&"systemctl mask user@.service"));
}

#[test]
fn the_cloud_config_lets_the_uploaded_agent_make_a_user_namespace() {
    let config = cloud::config();
    let profile = cloud::written(&config, "/etc/apparmor.d/benchvm-agent");
    let attachment = profile
        .lines()
        .find_map(|l| l.trim().strip_prefix("profile benchvm-agent "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a profile line naming the binaries it attaches to");
    // Where the controller puts the agent for the bench user (host/ssh.rs).
    let uploaded = benchvm::host::remote_agent_path("/home/bench", &"ab".repeat(20));
    let prefix = attachment.strip_suffix('*').expect("a trailing glob");
    assert!(
        uploaded.starts_with(prefix) && !prefix.contains('*'),
        "{attachment} does not attach to {uploaded}"
    );
    assert!(profile.contains("userns,") && profile.contains("flags=(unconfined)"));
    assert!(cloud::list(&config, "runcmd").contains(
        &"apparmor_parser -r /etc/apparmor.d/benchvm-agent || sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
    ));
}
