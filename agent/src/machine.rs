//! Facts about the machine a run measured on, read where Linux exposes them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: Option<String>,
    pub cores: usize,
    pub kernel: Option<String>,
    pub os: Option<String>,
    pub memory_bytes: Option<u64>,
    /// `scaling_governor` of cpu0, where cpufreq is exposed (often not on VMs).
    pub governor: Option<String>,
    /// The Landlock ABI the benchmarked code was confined with (crate::measure::confine);
    /// `None`: this kernel has none, and nothing confined it.
    #[serde(default)]
    pub landlock_abi: Option<u32>,
    /// Whether each confined process also had a mount namespace of its own (a read-only
    /// home and cache, a private `/dev/shm`: crate::measure::confine::mount_namespace).
    #[serde(default)]
    pub mount_namespace: bool,
}

impl Machine {
    pub fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).ok();
        let cpu_model = read("/proc/cpuinfo").and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        });
        let memory_bytes = read("/proc/meminfo").and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
        let os = read("/etc/os-release").and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        });
        Machine {
            hostname: read("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").map(|k| k.trim().to_owned()),
            os,
            memory_bytes,
            governor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
                .map(|g| g.trim().to_owned()),
            landlock_abi: crate::measure::confine::abi(),
            mount_namespace: crate::measure::confine::mount_namespace(),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_machine() {
        let m = super::Machine::read();
        assert!(m.cores >= 1);
        assert!(m.kernel.is_some());
        assert!(m.memory_bytes.unwrap() > 100 << 20);
    }
}
