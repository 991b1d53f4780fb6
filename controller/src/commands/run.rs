//! `benchvm run` and `benchvm calibrate`: a comparison on a host.

use benchvm_agent::job::Job;

use crate::cli::{CalibrateFlags, RunFlags};
use crate::commands::{block_on, compare};
use crate::error::Result;
use crate::host;

pub fn run(flags: RunFlags) -> Result<i32> {
    let RunFlags { host, job, output } = flags;
    block_on(compare(host::from_flags(&host)?, job, &output))
}

/// An A/A comparison of the base with itself, whose floors the agent stores.
pub fn calibrate(flags: CalibrateFlags) -> Result<i32> {
    let CalibrateFlags {
        host,
        repo,
        base,
        config,
        options,
        output,
    } = flags;
    let job = Job {
        head: None,
        calibrate: true,
        config,
        options,
        ..Job::new(repo, base, "")
    };
    block_on(compare(host::from_flags(&host)?, job, &output))
}
