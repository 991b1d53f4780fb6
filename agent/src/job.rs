//! The comparison job, declared once (ARCHITECTURE §2, "the Job"). The agent's `compare`
//! parses it, the controller's `run`, `calibrate` and `demo` parse the same flags (or build
//! one from the Action's inputs), and [`Job::to_argv`] turns it back into the agent's
//! arguments. Adding a flag to a comparison means adding a field here and reading it where
//! it is used: the controller passes it on without knowing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::shard::Shard;

/// What to compare, and how.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct Job {
    /// The repository: a git URL or a local path.
    #[arg(long, default_value = ".")]
    pub repo: String,
    /// The ref to compare against (branch, tag or commit).
    #[arg(long)]
    pub base: String,
    /// The ref under test.
    #[arg(
        long,
        required_unless_present = "calibrate",
        conflicts_with = "calibrate"
    )]
    pub head: Option<String>,
    /// Measure the host's noise floor instead: an A/A comparison of --base against itself,
    /// whose floors are stored in the cache and raise δ for noisy benchmarks in later runs.
    #[arg(long)]
    pub calibrate: bool,
    /// bench.yml to use [default: the head checkout's bench.yml, else its asv.conf.json].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Keep the repository's mirror under this name instead of one derived from --repo
    /// (a controller's per-run bundle).
    #[arg(long, hide = true)]
    pub mirror_name: Option<String>,
    /// Keep the head's uv cache under this name (a pull request, a branch) instead of the
    /// head ref's: a head's code may write its cache, which then serves only this name's
    /// later runs (install.rs `for_head`).
    #[arg(long, hide = true)]
    pub head_cache: Option<String>,
    #[command(flatten)]
    pub options: JobOptions,
}

/// The flags every comparison takes, the demo's included.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct JobOptions {
    /// The results directory [default: results/<head>-<unix time>].
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Persistent cache for git mirrors and uv [default: $BENCHVM_CACHE or ~/.cache/benchvm].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// RNG seed for the pair order and shuffles (overrides sampling.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run exactly this many rounds (overrides sampling.min_rounds and max_rounds).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..))]
    pub rounds: Option<u32>,
    /// Minutes to wait for another run to release the host before failing (exit 3;
    /// fractions allowed).
    #[arg(long, default_value_t = 60.0, value_parser = positive_minutes)]
    pub lock_timeout_minutes: f64,
    /// Measure only share I of N of the benchmarks, e.g. 2/3 (`benchvm merge` joins them).
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Balance the shards by the durations in this file: an earlier report.json (a merged
    /// one, say), or a JSON object of benchmark id → seconds.
    #[arg(long, requires = "shard")]
    pub shard_weights: Option<PathBuf>,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            results: None,
            cache: None,
            seed: None,
            rounds: None,
            lock_timeout_minutes: 60.0,
            shard: None,
            shard_weights: None,
        }
    }
}

fn positive_minutes(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(m) if m > 0.0 && Duration::try_from_secs_f64(m * 60.0).is_ok() => Ok(m),
        _ => Err(format!("{text:?} is not a positive number of minutes")),
    }
}

impl Job {
    /// A comparison of `head` with `base` in `repo`, with default options.
    pub fn new(repo: impl Into<String>, base: impl Into<String>, head: impl Into<String>) -> Job {
        Job {
            repo: repo.into(),
            base: base.into(),
            head: Some(head.into()),
            calibrate: false,
            config: None,
            mirror_name: None,
            head_cache: None,
            options: JobOptions::default(),
        }
    }

    /// The ref under test: `base` itself when calibrating.
    pub fn head(&self) -> &str {
        self.head.as_deref().unwrap_or(&self.base)
    }

    /// The results directory. Without `--results` the default names the current second, so
    /// a caller that needs the same directory twice fixes it first with [`Job::fix_results`].
    pub fn results(&self) -> PathBuf {
        self.options
            .results
            .clone()
            .unwrap_or_else(|| default_results(self.head()))
    }

    /// Fixes the results directory (the default, if none was given) and returns it.
    pub fn fix_results(&mut self) -> PathBuf {
        let results = self.results();
        self.options.results = Some(results.clone());
        results
    }

    /// The persistent cache directory.
    pub fn cache(&self) -> PathBuf {
        self.options
            .cache
            .clone()
            .unwrap_or_else(crate::cache::default_dir)
    }

    pub fn lock_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.options.lock_timeout_minutes * 60.0)
    }

    /// `--shard-weights`, read: benchmark id → seconds (none without the flag).
    pub fn shard_weights(&self) -> Result<BTreeMap<String, f64>> {
        match &self.options.shard_weights {
            Some(path) => read_weights(path),
            None => Ok(BTreeMap::new()),
        }
    }

    /// The agent's arguments for this job: `compare` and its flags, which parse back into
    /// an equal job.
    pub fn to_argv(&self) -> Vec<String> {
        let mut args = vec![
            "compare".to_owned(),
            "--repo".into(),
            self.repo.clone(),
            "--base".into(),
            self.base.clone(),
        ];
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                args.push(format!("--{name}"));
                args.push(value);
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        flag("head", self.head.clone());
        flag("config", path(&self.config));
        flag("mirror-name", self.mirror_name.clone());
        flag("head-cache", self.head_cache.clone());
        let o = &self.options;
        flag("results", path(&o.results));
        flag("cache", path(&o.cache));
        flag("seed", o.seed.map(|s| s.to_string()));
        flag("rounds", o.rounds.map(|r| r.to_string()));
        flag(
            "lock-timeout-minutes",
            Some(o.lock_timeout_minutes.to_string()),
        );
        flag("shard", o.shard.map(|s| s.to_string()));
        flag("shard-weights", path(&o.shard_weights));
        if self.calibrate {
            args.push("--calibrate".into());
        }
        args
    }
}

/// `--shard-weights`: a report.json (its per-benchmark durations) or an object of
/// benchmark id → seconds.
fn read_weights(path: &Path) -> Result<BTreeMap<String, f64>> {
    let bad = |what: String| Error::Usage(format!("--shard-weights: {} {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    if let Ok(weights) = serde_json::from_str::<BTreeMap<String, f64>>(&text) {
        return Ok(weights);
    }
    let report: crate::report::Report = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "is neither a report.json nor a JSON object of benchmark id to seconds: {e}"
        ))
    })?;
    Ok(crate::shard::weights_from(&report))
}

/// `results/<head>-<unix time>`, the seed's layout.
pub fn default_results(head: &str) -> PathBuf {
    let slug: String = head
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("results").join(format!("{slug}-{now}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, Parser};

    #[derive(Debug, Parser)]
    struct Parsed {
        #[command(flatten)]
        job: Job,
    }

    fn parse(argv: &[String]) -> Job {
        let argv = std::iter::once("agent").chain(argv.iter().skip(1).map(String::as_str));
        Parsed::try_parse_from(argv).expect("parses").job
    }

    /// A value each flag accepts; a flag added to the Job without one here fails the test,
    /// which is the point: its round trip must be checked.
    fn sample_value(id: &str) -> &'static str {
        match id {
            "seed" => "7",
            "rounds" => "12",
            "lock_timeout_minutes" => "0.25",
            "shard" => "2/3",
            _ => "some value",
        }
    }

    #[test]
    fn every_flag_of_the_job_survives_to_argv_and_back() {
        let command = Job::augment_args(clap::Command::new("agent"));
        let mut argv = vec!["compare".to_owned()];
        for arg in command.get_arguments() {
            let long = arg.get_long().expect("every job flag is long");
            if long == "calibrate" {
                continue; // conflicts with --head; checked below
            }
            argv.push(format!("--{long}"));
            if arg.get_action().takes_values() {
                argv.push(sample_value(arg.get_id().as_str()).to_owned());
            }
        }
        let job = parse(&argv);
        let again = parse(&job.to_argv());
        assert_eq!(again, job);
        // Every flag was given a non-default value, so each one is carried by to_argv.
        let defaults = parse(&[
            "compare".into(),
            "--base".into(),
            "b".into(),
            "--head".into(),
            "h".into(),
        ]);
        for arg in command
            .get_arguments()
            .filter(|a| a.get_long() != Some("calibrate"))
        {
            let long = format!("--{}", arg.get_long().unwrap());
            assert!(job.to_argv().contains(&long), "{long} is not in to_argv");
        }
        assert_ne!(job.options, defaults.options);

        let mut calibrate = Job::new(".", "main", "main");
        calibrate.head = None;
        calibrate.calibrate = true;
        assert_eq!(parse(&calibrate.to_argv()), calibrate);
        assert_eq!(calibrate.head(), "main");
    }

    #[test]
    fn a_lock_timeout_must_be_a_positive_number_of_minutes() {
        for bad in ["0", "-1", "NaN", "inf", "soon"] {
            let flag = format!("--lock-timeout-minutes={bad}");
            let argv = ["agent", "--base", "b", "--head", "h", &flag];
            let err = Parsed::try_parse_from(argv).unwrap_err().to_string();
            assert!(err.contains("lock-timeout-minutes"), "{bad}: {err}");
        }
        let mut job = Job::new(".", "b", "h");
        job.options.lock_timeout_minutes = 0.5;
        assert_eq!(job.lock_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn shard_weights_come_from_a_report_or_a_plain_object_and_anything_else_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("weights.json");
        std::fs::write(&plain, r#"{"micro/a": 1.5, "micro/b": 0.5}"#).unwrap();
        let mut job = Job::new(".", "b", "h");
        job.options.shard = Some("1/2".parse().unwrap());
        job.options.shard_weights = Some(plain);
        assert_eq!(job.shard_weights().unwrap()["micro/a"], 1.5);

        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "[1, 2]").unwrap();
        job.options.shard_weights = Some(junk.clone());
        let err = job.shard_weights().unwrap_err().to_string();
        assert!(
            err.starts_with("--shard-weights: ") && err.contains("junk.json"),
            "{err}"
        );
        assert_eq!(
            job.shard_weights().unwrap_err().process_exit_code(),
            crate::exit::USAGE
        );
    }
}
