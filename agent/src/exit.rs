//! Exit codes shared by `benchvm-agent` and `benchvm`; the README documents the same table.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | the run completed (no regression, or regressions were not asked to fail) |
//! | 1 | a regression was found and `fail_on_regression` is set |
//! | 2 | usage or configuration error (bad flag, bad `bench.yml`, unknown ref) |
//! | 3 | infrastructure failure (git, Python, install, host, SSH, GitHub), or every benchmark failed |

/// The run completed.
pub const OK: i32 = 0;
/// A regression was found and the run was asked to fail on it.
pub const REGRESSION: i32 = 1;
/// A usage or configuration error: the input has to change before a retry can work.
pub const USAGE: i32 = 2;
/// An infrastructure failure: the input may be fine, the environment was not.
pub const INFRA: i32 = 3;
