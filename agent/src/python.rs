//! Probes of a Python environment: its version line, and the hash that says whether a
//! stored survey still describes it.

use std::path::Path;
use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::bench::SideEnv;
use crate::error::{Error, Result};
use crate::measure::runner::{ProcessRunner, RunSpec, SystemRunner, capture};
use crate::side_file::{self, Links};

/// How long an interpreter may take to describe itself.
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

/// Prints what the environment hash covers: the interpreter build, every installed
/// distribution's name and version, and the code that runs at every interpreter start
/// without being a distribution (`.pth` files, `sitecustomize`, `usercustomize`).
const ENVIRONMENT_PROBE: &str = r#"import glob, importlib.util, os, site, sys, importlib.metadata as m
print(sys.version)
print(sorted((d.metadata['Name'] or '', d.version) for d in m.distributions()))
dirs = list(site.getsitepackages()) + [site.getusersitepackages()]
for pth in sorted(p for d in dirs for p in glob.glob(os.path.join(d, '*.pth'))):
    print(pth, open(pth, 'rb').read())
for name in ('sitecustomize', 'usercustomize'):
    spec = importlib.util.find_spec(name)
    if spec and spec.origin and os.path.isfile(spec.origin):
        print(name, open(spec.origin, 'rb').read())
"#;

/// Interpreter build, every installed package version and the lock files of the checkout
/// at `root`: any change means everything runs.
pub fn environment_hash(python: &Path, root: &Path) -> Result<String> {
    let mut h = Sha1::new();
    let argv = vec![
        python.display().to_string(),
        "-c".into(),
        ENVIRONMENT_PROBE.into(),
    ];
    // From the caller's directory, as before: a checkout's own `*.egg-info` must not count.
    let cwd = std::env::current_dir().map_err(|e| Error::io("read", ".", e))?;
    // The side's interpreter runs whatever its venv's `.pth` files say (the head's code):
    // confined, with nothing to write.
    let out = capture(&SystemRunner, argv, &cwd, &[], PROBE_TIMEOUT, Some(vec![]))
        .map_err(|e| Error::caused(format!("run {}", python.display()), e))?;
    if let Some(failure) = out.outcome.failure() {
        if out.outcome.timed_out || out.outcome.status.code().is_none() {
            // Stopped (the agent was, or the deadline passed): not the interpreter's fault.
            return Err(Error::infra(format!("run {}", python.display()), failure));
        }
        let said = out.stderr.trim();
        return Err(Error::Usage(format!(
            "--python {}: {}",
            python.display(),
            if said.is_empty() { &failure } else { said }
        )));
    }
    h.update(out.stdout.as_bytes());
    for lock in ["uv.lock", "poetry.lock", "Pipfile.lock", "requirements.txt"] {
        // A lock file that cannot be read (a link to a device, a FIFO, too large) counts
        // as a change: everything runs.
        match side_file::read(&root.join(lock), side_file::LARGE, Links::Follow) {
            Ok(bytes) => {
                h.update(lock.as_bytes());
                h.update(&bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => h.update(format!("{lock} {e} {}", std::process::id()).as_bytes()),
        }
    }
    Ok(format!("{:x}", h.finalize()))
}

/// `python --version` of a side's environment, as the comment shows it (none if it fails).
pub fn version<R: ProcessRunner>(runner: &R, side: &SideEnv, scratch: &Path) -> Option<String> {
    let out = scratch.join("python-version");
    let spec = RunSpec {
        argv: vec!["python".into(), "--version".into()],
        cwd: side.checkout.clone(),
        env: side.env.clone(),
        timeout: std::time::Duration::from_secs(30),
        stdout: Some(out.clone()),
        stderr: None,
        pad: 0,
        cpu: None,
        writable: side.writable.clone(),
    };
    runner.run(&spec).ok().filter(|o| o.success())?;
    side_file::read_text(&out, side_file::SMALL, Links::Refuse)
        .ok()
        .map(|s| s.trim().to_owned())
}
