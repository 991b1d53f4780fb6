//! Knowing that the controller is still there. A remote agent whose controller vanished
//! (the CI job was killed, the network dropped) would otherwise run on for hours and keep
//! the host locked. With a heartbeat, the agent writes a tagged line to stderr every few
//! seconds; the controller drops those lines. When such a write fails, the pipe to the
//! controller is gone: the agent kills the benchmark it is running and exits.

use std::io::Write;
use std::time::Duration;

use crate::exit;
use crate::measure::runner;

/// The line the controller filters out of the progress stream.
pub const TAG: &str = "benchvm-agent:heartbeat";

/// Starts the heartbeat thread.
pub fn start(every: Duration) {
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(every);
            line(TAG);
        }
    });
}

/// Writes one line to stderr; if the controller's end of the pipe is gone, stops the
/// benchmark in progress and exits (the host lock is released with the process).
pub fn line(text: &str) {
    let mut err = std::io::stderr().lock();
    if writeln!(err, "{text}").and_then(|_| err.flush()).is_err() {
        runner::kill_current();
        // Nobody is listening any more; the exit code is for logs on the host.
        std::process::exit(exit::INFRA);
    }
}
