//! The VM's provisioning file, cloud-init/benchvm.yaml, as the tests read it.

use std::path::PathBuf;

/// A file under `cloud-init/`.
pub fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cloud-init")
        .join(name)
}

/// benchvm.yaml, parsed.
pub fn config() -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(file("benchvm.yaml")).unwrap()).unwrap()
}

/// The content cloud-init writes to `path` on the VM.
pub fn written(config: &serde_yaml::Value, path: &str) -> String {
    config["write_files"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} is written"))["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The strings of a top-level list (`runcmd`, `packages`).
pub fn list<'a>(config: &'a serde_yaml::Value, key: &str) -> Vec<&'a str> {
    config[key]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect()
}
