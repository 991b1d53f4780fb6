//! `benchvm demo` (the README's first command) and `benchvm fixture-repo`.

use std::path::Path;

use benchvm_agent::exit;
use benchvm_agent::job::Job;

use crate::cli::DemoFlags;
use crate::commands::{block_on, compare};
use crate::error::Result;
use crate::fixture;
use crate::host;

/// Builds the fixture repository in the cache and compares its perf branch with main here.
pub fn demo(flags: DemoFlags) -> Result<i32> {
    let cache = flags
        .options
        .cache
        .clone()
        .unwrap_or_else(benchvm_agent::cache::default_dir);
    let repo = cache.join("demo").join("textkit");
    eprintln!(
        "benchvm: building the fixture repository at {}",
        repo.display()
    );
    fixture::build(&repo)?;
    let job = Job {
        options: flags.options,
        ..Job::new(
            repo.display().to_string(),
            fixture::BASE_BRANCH,
            fixture::HEAD_BRANCH,
        )
    };
    block_on(compare(
        std::sync::Arc::new(host::local::LocalHost {
            timeout: std::time::Duration::from_secs_f64(host::DEFAULT_TIMEOUT_MINUTES * 60.0),
        }),
        job,
        &flags.output,
    ))
}

pub fn fixture_repo(dir: &Path) -> Result<i32> {
    fixture::build(dir)?;
    println!("{}", dir.display());
    Ok(exit::OK)
}
