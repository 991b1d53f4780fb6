//! `benchvm cleanup`: the VM deallocated, whatever state it is in.

use benchvm_agent::exit;

use crate::cli::CleanupFlags;
use crate::commands::block_on;
use crate::error::Result;
use crate::timings::Timings;

pub fn cleanup(flags: &CleanupFlags) -> Result<i32> {
    let vm = flags.azure.vm()?;
    block_on(async {
        crate::host::azure::deallocate(&vm, !flags.no_wait, &Timings::new()).await?;
        let done = if flags.no_wait {
            "deallocation requested for"
        } else {
            "deallocated"
        };
        eprintln!("benchvm: {done} VM {}", vm.describe());
        Ok(exit::OK)
    })
}
