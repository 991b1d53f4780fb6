//! Step b of ARCHITECTURE §1: one virtual environment per side and the project installed into
//! it. uv when it is on PATH (its cache kept between runs), plain venv + pip otherwise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bench::{Side, SideEnv};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::measure::runner::{ProcessRunner, RunSpec};
use crate::side_file;

/// An install can build wheels; give it far longer than a benchmark run.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A head's uv cache unused this long is removed by the next install.
const HEAD_CACHE_UNUSED: Duration = Duration::from_secs(14 * 24 * 3600);

/// The tools found for installing.
#[derive(Debug, Clone)]
pub struct Installer {
    /// Absolute path of the interpreter environments are created from.
    pub python: PathBuf,
    pub uv: Option<PathBuf>,
    /// uv's cache, kept on the host's disk between runs: the base side's. The head's install
    /// (its build backend is the pull request's code, and may write the cache it installs
    /// with) has one of its own, [`Installer::uv_cache_of`].
    pub uv_cache: PathBuf,
    /// The head's uv cache: one per repository and pull request ([`Installer::for_head`]),
    /// so what a head's code leaves in it reaches only that pull request's later runs.
    pub head_uv_cache: PathBuf,
    /// Whether the base side installs with the shared cache: only with the default install
    /// command. A bench.yml `install:` may be the head's (its bench.yml is the default
    /// config) and runs on the base side too, so it gets the head's cache there as well.
    pub base_shares_cache: bool,
}

impl Installer {
    /// Finds the interpreter `config` names and uv.
    pub fn find(config: &Config, cache: &Path) -> Result<Self> {
        let python = which(&config.python).ok_or_else(|| {
            Error::infra(
                "find the Python interpreter",
                format!("{:?} (bench.yml `python`) is not on PATH", config.python),
            )
        })?;
        trusted_interpreter(&python, cache)?;
        Ok(Self {
            python,
            // Non-interactive SSH sessions do not read shell profiles, so uv's standalone
            // installer's directory (~/.local/bin, as on the benchvm VM) is looked at too.
            uv: which("uv").or_else(|| {
                let p = home().join(".local/bin/uv");
                which(&p.display().to_string())
            }),
            uv_cache: cache.join("uv"),
            head_uv_cache: cache.join("uv-head").join("unnamed"),
            base_shares_cache: config.install.is_none(),
        })
    }

    /// The head's cache for `head` (the repository and what names the head: its pull
    /// request, else its branch or ref), in `uv-head/` beside the base side's; the others
    /// there that no install used for [`HEAD_CACHE_UNUSED`] are removed.
    pub fn for_head(mut self, head: &str) -> Result<Self> {
        self.head_uv_cache = head_uv_cache(self.uv_cache.parent().unwrap_or(Path::new(".")), head);
        let root = self
            .head_uv_cache
            .parent()
            .expect("uv-head/<key>")
            .to_owned();
        std::fs::create_dir_all(&self.head_uv_cache)
            .map_err(|e| Error::io("create", &self.head_uv_cache, e))?;
        // Marks it used (uv writes deeper down, which leaves this directory's time alone).
        let used = std::fs::File::open(&self.head_uv_cache)
            .and_then(|d| d.set_modified(std::time::SystemTime::now()));
        used.map_err(|e| Error::io("touch", &self.head_uv_cache, e))?;
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > HEAD_CACHE_UNUSED);
            if stale && entry.path() != self.head_uv_cache {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(self)
    }

    /// The uv cache `side` installs with: what a head's build backend leaves in its cache
    /// reaches neither the base side nor another head.
    pub fn uv_cache_of(&self, side: Side) -> PathBuf {
        match side {
            Side::Base if self.base_shares_cache => self.uv_cache.clone(),
            Side::Base | Side::Head => self.head_uv_cache.clone(),
        }
    }

    /// Whether `side`'s package cache already held something before this run.
    pub fn cache_warm(&self, side: Side) -> bool {
        let dir = if self.uv.is_some() {
            self.uv_cache_of(side)
        } else {
            home().join(".cache/pip")
        };
        dir.read_dir().is_ok_and(|mut d| d.next().is_some())
    }

    /// Creates `venv` and runs the install command in `checkout`; output goes to `log`.
    /// `tmp` becomes the side's TMPDIR. The install (which runs the project's build
    /// backend) may write only to the checkout, the venv, `tmp` and uv's cache; what the
    /// side runs afterwards only to the first three ([`crate::measure::confine`]).
    #[allow(clippy::too_many_arguments)]
    pub fn install<R: ProcessRunner>(
        &self,
        runner: &R,
        config: &Config,
        side: Side,
        checkout: &Path,
        venv: &Path,
        tmp: &Path,
        log: &Path,
    ) -> Result<SideEnv> {
        for dir in [venv, tmp] {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(|e| Error::io("remove", dir, e))?;
            }
            // The confinement's paths must exist before the venv is made in one of them.
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        }
        let writable = vec![checkout.to_owned(), venv.to_owned(), tmp.to_owned()];
        let mut install_writable = writable.clone();
        let uv_cache = self.uv_cache_of(side);
        if self.uv.is_some() {
            std::fs::create_dir_all(&uv_cache).map_err(|e| Error::io("create", &uv_cache, e))?;
            install_writable.push(uv_cache.clone());
        }
        let venv_str = venv.display().to_string();
        let python_str = self.python.display().to_string();
        let create: Vec<String> = match &self.uv {
            Some(uv) => vec![
                uv.display().to_string(),
                "venv".into(),
                "--quiet".into(),
                "--python".into(),
                python_str,
                venv_str,
            ],
            None => vec![python_str, "-m".into(), "venv".into(), venv_str],
        };
        let mut env = self.side_env(venv, &uv_cache);
        env.push(("TMPDIR".into(), tmp.display().to_string()));
        let run = |argv: Vec<String>, what: &str| -> Result<()> {
            let spec = RunSpec {
                argv,
                cwd: checkout.to_owned(),
                env: env.clone(),
                timeout: INSTALL_TIMEOUT,
                stdout: Some(log.to_owned()),
                stderr: Some(log.to_owned()),
                pad: 0,
                cpu: None,
                writable: Some(install_writable.clone()),
            };
            let action = format!("{what} for {side}");
            let outcome = runner
                .run(&spec)
                .map_err(|e| Error::infra(&action, format!("{:?}: {e}", spec.argv[0])))?;
            match outcome.failure() {
                None => Ok(()),
                Some(failure) => {
                    let tail = side_file::last_line(log).unwrap_or_default();
                    Err(Error::infra(
                        action,
                        format!("{failure}: {} (log: {})", tail.trim(), log.display()),
                    ))
                }
            }
        };
        run(create, "create the virtual environment")?;
        let install = match &config.install {
            Some(c) => c.argv.clone(),
            None if self.uv.is_some() => ["uv", "pip", "install", "--quiet", "."]
                .map(String::from)
                .to_vec(),
            None => ["python", "-m", "pip", "install", "--quiet", "."]
                .map(String::from)
                .to_vec(),
        };
        run(install, "install the project")?;
        Ok(SideEnv {
            side,
            checkout: checkout.to_owned(),
            env,
            writable: Some(writable),
        })
    }

    fn side_env(&self, venv: &Path, uv_cache: &Path) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_default();
        vec![
            (
                "PATH".into(),
                format!("{}:{path}", venv.join("bin").display()),
            ),
            ("VIRTUAL_ENV".into(), venv.display().to_string()),
            ("UV_CACHE_DIR".into(), uv_cache.display().to_string()),
            // Copies, not uv's default hard links into its cache: a side may write its venv,
            // and through a link it would write the cache every later run installs from.
            ("UV_LINK_MODE".into(), "copy".into()),
            // uv must not pick an interpreter other than the venv's.
            (
                "UV_PYTHON".into(),
                venv.join("bin/python").display().to_string(),
            ),
            // The caller's shell must not change what is measured: without bytecode
            // caching every run recompiles every module (CI images often set this), and a
            // PYTHONPATH could shadow the installed project. Empty means unset to Python.
            ("PYTHONDONTWRITEBYTECODE".into(), String::new()),
            ("PYTHONPATH".into(), String::new()),
        ]
    }
}

/// Refuses an interpreter a side's code could have written: bench.yml's `python` may be the
/// head's, and the interpreter runs unconfined (the coverage install) or with the shared uv
/// cache writable (the base side's venv). Anything under the agent's cache (runs, venvs, the
/// head's caches) or in a world-writable temporary place is refused, links resolved.
fn trusted_interpreter(python: &Path, cache: &Path) -> Result<()> {
    let real = python
        .canonicalize()
        .map_err(|e| Error::io("resolve", python, e))?;
    let cache = cache.canonicalize().unwrap_or_else(|_| cache.to_owned());
    let untrusted = ["/tmp", "/var/tmp", "/dev/shm", "/run"]
        .iter()
        .map(PathBuf::from)
        .chain(std::iter::once(cache))
        .find(|dir| real.starts_with(dir));
    match untrusted {
        Some(dir) => Err(Error::Usage(format!(
            "bench.yml `python`: {} is under {}, where benchmarked code may write; name an \
             interpreter installed on the host",
            python.display(),
            dir.display()
        ))),
        None => Ok(()),
    }
}

/// The head's uv cache for `head` (repository and name) in the agent's cache `cache`.
pub fn head_uv_cache(cache: &Path, head: &str) -> PathBuf {
    use sha1::{Digest, Sha1};
    let key = format!("{:x}", Sha1::digest(head.as_bytes()));
    cache.join("uv-head").join(&key[..16])
}

/// Finds an executable on PATH (or checks a path given with a slash).
pub fn which(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::runner::SystemRunner;

    #[test]
    fn each_head_installs_with_a_cache_of_its_own_and_stale_ones_go() {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config::parse("startup:\n  - {name: a, command: a}\n", "t").unwrap();
        let found = || Installer::find(&config, tmp.path()).unwrap();
        let a = found().for_head("repo perf/a").unwrap();
        let b = found().for_head("repo perf/b").unwrap();
        let a_again = found().for_head("repo perf/a").unwrap();
        assert_eq!(a.uv_cache_of(Side::Base), tmp.path().join("uv"));
        assert_eq!(a.uv_cache_of(Side::Base), b.uv_cache_of(Side::Base));
        assert_ne!(a.uv_cache_of(Side::Head), b.uv_cache_of(Side::Head));
        assert_eq!(a.uv_cache_of(Side::Head), a_again.uv_cache_of(Side::Head));
        assert_ne!(a.uv_cache_of(Side::Head), a.uv_cache_of(Side::Base));
        // b unused for longer than HEAD_CACHE_UNUSED: the next install removes it, not a.
        let old = std::time::SystemTime::now() - HEAD_CACHE_UNUSED - Duration::from_secs(60);
        std::fs::File::open(b.uv_cache_of(Side::Head))
            .unwrap()
            .set_modified(old)
            .unwrap();
        found().for_head("repo perf/c").unwrap();
        assert!(!b.uv_cache_of(Side::Head).exists());
        assert!(a.uv_cache_of(Side::Head).exists());
        // An install command (perhaps the head's bench.yml) runs on the base side too: the
        // shared cache is then nobody's to write.
        let custom = Config::parse(
            "install: pip install .\nstartup:\n  - {name: a, command: a}\n",
            "t",
        )
        .unwrap();
        let c = Installer::find(&custom, tmp.path())
            .unwrap()
            .for_head("repo perf/a")
            .unwrap();
        assert_eq!(c.uv_cache_of(Side::Base), a.uv_cache_of(Side::Head));
    }

    #[test]
    fn an_interpreter_where_benchmarked_code_may_write_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("cache");
        std::fs::create_dir_all(cache.join("uv-head/x")).unwrap();
        let planted = cache.join("uv-head/x/python3");
        std::fs::copy("/bin/sh", &planted).unwrap();
        let yml = format!(
            "python: {}\nstartup:\n  - {{name: a, command: a}}\n",
            planted.display()
        );
        let config = Config::parse(&yml, "t").unwrap();
        let err = Installer::find(&config, &cache).unwrap_err().to_string();
        assert!(err.contains("bench.yml `python`"), "{err}");
        // tempdir() is under /tmp: refused there too, whatever the cache.
        let err = Installer::find(&config, Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("under /tmp"), "{err}");
        // The host's interpreter is accepted.
        let host = Config::parse("startup:\n  - {name: a, command: a}\n", "t").unwrap();
        Installer::find(&host, &cache).unwrap();
    }

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("benchvm-no-such-tool").is_none());
        assert!(which("/bin/sh").is_some());
    }

    #[test]
    fn installs_a_tiny_project_into_a_fresh_venv() {
        let tmp = tempfile::tempdir().unwrap();
        let checkout = tmp.path().join("proj");
        std::fs::create_dir_all(checkout.join("tinypkg")).unwrap();
        std::fs::write(checkout.join("tinypkg/__init__.py"), "VALUE = 42\n").unwrap();
        std::fs::write(
            checkout.join("pyproject.toml"),
            "[project]\nname = \"tinypkg\"\nversion = \"0.1\"\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n",
        )
        .unwrap();
        let config = Config::parse("startup:\n  - {name: a, command: a}\n", "t").unwrap();
        let installer = Installer::find(&config, &crate::cache::default_dir()).unwrap();
        let venv = tmp.path().join("venv");
        let env = installer
            .install(
                &SystemRunner,
                &config,
                Side::Head,
                &checkout,
                &venv,
                &tmp.path().join("tmp"),
                &tmp.path().join("log"),
            )
            .unwrap();
        let out = std::process::Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import tinypkg, sys; print(tinypkg.VALUE, sys.prefix)",
            ])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("42 "), "{text}");
        assert!(
            env.env
                .iter()
                .any(|(k, v)| k == "VIRTUAL_ENV" && Path::new(v) == venv)
        );
    }

    #[test]
    fn without_uv_it_falls_back_to_venv_and_pip() {
        let tmp = tempfile::tempdir().unwrap();
        let checkout = tmp.path().join("proj");
        std::fs::create_dir_all(checkout.join("tinypkg")).unwrap();
        std::fs::write(checkout.join("tinypkg/__init__.py"), "VALUE = 7\n").unwrap();
        std::fs::write(
            checkout.join("pyproject.toml"),
            "[project]\nname = \"tinypkg\"\nversion = \"0.1\"\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n",
        )
        .unwrap();
        let config = Config::parse("startup:\n  - {name: a, command: a}\n", "t").unwrap();
        let mut installer = Installer::find(&config, tmp.path()).unwrap();
        installer.uv = None;
        let venv = tmp.path().join("venv");
        installer
            .install(
                &SystemRunner,
                &config,
                Side::Base,
                &checkout,
                &venv,
                &tmp.path().join("tmp"),
                &tmp.path().join("log"),
            )
            .unwrap();
        assert!(venv.join("bin/pip").exists(), "a plain venv has pip");
        assert!(!venv.join("bin/uv").exists());
        let out = std::process::Command::new(venv.join("bin/python"))
            .args(["-c", "import tinypkg; print(tinypkg.VALUE)"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
    }

    #[test]
    fn a_failing_install_names_the_side_and_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let config = Config::parse(
            "install: python -c 'raise SystemExit(\"broken build\")'\nstartup:\n  - {name: a, command: a}\n",
            "t",
        )
        .unwrap();
        let installer = Installer::find(&config, &crate::cache::default_dir()).unwrap();
        let err = installer
            .install(
                &SystemRunner,
                &config,
                Side::Base,
                tmp.path(),
                &tmp.path().join("v"),
                &tmp.path().join("t"),
                &tmp.path().join("log"),
            )
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("failed to install the project for base"),
            "{msg}"
        );
        assert!(
            msg.contains("broken build") && msg.contains("log: "),
            "{msg}"
        );
        assert_eq!(err.process_exit_code(), crate::exit::INFRA);
    }
}
