//! `benchvm cleanup`: the VM deallocated, whatever state it is in.

use benchvm_agent::exit;

use crate::cli::CleanupFlags;
use crate::commands::block_on;
use crate::error::Result;
use benchvm_agent::spans::Timeline;

pub fn cleanup(flags: &CleanupFlags) -> Result<i32> {
    let vm = flags.azure.vm()?;
    block_on(async {
        crate::host::azure::deallocate(&vm, !flags.no_wait, &Timeline::new()).await?;
        let done = if flags.no_wait {
            "deallocation requested for"
        } else {
            "deallocated"
        };
        eprintln!("benchvm: {done} VM {}", vm.describe());
        Ok(exit::OK)
    })
}
