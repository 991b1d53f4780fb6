//! The controller's integration tests, one binary (one link) with shared support: real
//! git, Python, uv, sshd and node; the Azure ARM and GitHub REST APIs served by fakes on
//! loopback that speak their wire formats.

mod support;

mod action_inputs;
mod action_run;
mod action_wrapper;
mod azure_run;
mod azure_vm;
mod deadman;
mod github_readout;
mod local_run;
mod shard_run;
mod ssh_run;
mod ssh_transport;
mod static_agent;
mod untrusted_head;
mod vm_guard;
mod workflows;
