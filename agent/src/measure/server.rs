//! Cheaper samples for asv `time_*` benchmarks (ARCHITECTURE §3): one harness process per
//! side (`asv_harness.py serve`) imports each benchmark's module once and forks a child per
//! sample, instead of a fresh interpreter that starts, imports the package and calibrates
//! `number` every time. Samples stay independent: each child starts from the same parent
//! state, pads its own heap by the pair's random amount, and exits. `number` is calibrated by
//! a benchmark's first sample (its warm-up) and reused on both sides for every later one.
//!
//! Forked children share their server's address-space layout (ASLR and the stack are fixed
//! at exec), so one server for a whole run would give every sample of a side the same
//! layout, and a layout bias would repeat in every pair, the very bias the fresh process per
//! sample randomises away. So the scheduler starts new servers every round ([`Servers::restart`]),
//! each with its own environment padding: the layout varies from pair to pair, as with fresh
//! processes, for the cost of two interpreter starts per round instead of two per benchmark.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde::Deserialize;

use crate::bench::{Benchmark, Measurement, SKIPPED, Side, SideEnv};
use crate::measure::runner;

/// How much longer than a sample's own timeout the agent waits for the server's answer
/// before it gives the server up (the server enforces the timeout on its child itself).
const GRACE: Duration = Duration::from_secs(10);

/// The sample servers of one comparison, started on first use, one per side.
#[derive(Debug)]
pub struct Servers {
    scratch: PathBuf,
    running: std::cell::RefCell<HashMap<Side, Server>>,
    /// The calibrated calls per repeat, by benchmark id.
    numbers: std::cell::RefCell<HashMap<String, u64>>,
}

impl Servers {
    /// Stops the running servers: the next sample of each side starts a new one, with a
    /// new address-space layout (called at the start of every round).
    pub fn restart(&self) {
        self.running.borrow_mut().clear();
    }
}

#[derive(Debug)]
struct Server {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
    stderr: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        runner::kill_group(pid);
        let _ = self.child.wait();
        runner::track_group(pid, false);
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    /// The id of the request answered.
    id: String,
    value: Option<f64>,
    number: Option<u64>,
    #[serde(default)]
    wall: f64,
    #[serde(default)]
    user: f64,
    #[serde(default)]
    sys: f64,
    #[serde(default)]
    maxrss: u64,
    skipped: Option<String>,
    error: Option<String>,
    timed_out: Option<f64>,
}

impl Servers {
    /// Servers whose stderr files go to `scratch`.
    pub fn new(scratch: &Path) -> Self {
        Self {
            scratch: scratch.to_owned(),
            running: Default::default(),
            numbers: Default::default(),
        }
    }

    /// Takes one sample of `bench` (an asv benchmark: `python harness run SUITE ID MODULE`)
    /// on `side`; `Err` carries a one-line reason, as [`crate::bench::Probe::measure`].
    pub fn measure(
        &self,
        bench: &Benchmark,
        side: &SideEnv,
        pad: usize,
        timeout: Duration,
    ) -> Result<Measurement, String> {
        let [python, harness, _run, suite, id, module] = bench.argv.as_slice() else {
            return Err(format!("{} is not an asv benchmark", bench.id));
        };
        let mut running = self.running.borrow_mut();
        let server = match running.entry(side.side) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                self.start(python, harness, suite, side, pad)
                    .map_err(|e| format!("failed to start the sample server: {e}"))?,
            ),
        };
        let request = serde_json::json!({
            "id": id,
            "module": module,
            "pad": pad,
            "number": self.numbers.borrow().get(&bench.id),
            "timeout": timeout.as_secs_f64(),
        });
        let asked = writeln!(server.stdin, "{request}").and_then(|_| server.stdin.flush());
        let answer = match asked {
            Ok(()) => server.answers.recv_timeout(timeout + GRACE).ok(),
            Err(_) => None,
        };
        let Some(line) = answer else {
            // Dead or stuck: its stderr says why; the next sample starts a new one.
            let server = running.remove(&side.side).expect("present");
            let tail = last_line(&server.stderr);
            drop(server);
            return Err(format!(
                "the sample server stopped answering{}",
                tail.map(|t| format!(": {t}")).unwrap_or_default()
            ));
        };
        let answer: Answer = match serde_json::from_str::<Answer>(&line) {
            Ok(answer) if answer.id == *id => answer,
            // Not this request's answer: the stream cannot be trusted any more.
            wrong => {
                running.remove(&side.side);
                return Err(format!(
                    "the sample server answered out of turn ({}), so it was restarted",
                    match wrong {
                        Ok(a) => format!("for {}", a.id),
                        Err(e) => e.to_string(),
                    }
                ));
            }
        };
        if let Some(reason) = answer.skipped {
            return Err(format!("{SKIPPED}{reason}"));
        }
        if let Some(error) = answer.error {
            return Err(error);
        }
        if let Some(wall) = answer.timed_out {
            return Err(format!("{}{wall:.1} s", crate::bench::TIMED_OUT));
        }
        let value = answer
            .value
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("the sample server answered {line:?}, without a value"))?;
        if let Some(number) = answer.number {
            self.numbers
                .borrow_mut()
                .entry(bench.id.clone())
                .or_insert(number);
        }
        Ok(Measurement {
            value,
            wall_s: answer.wall,
            user_s: answer.user,
            sys_s: answer.sys,
            max_rss_bytes: answer.maxrss,
        })
    }

    fn start(
        &self,
        python: &str,
        harness: &str,
        suite: &str,
        side: &SideEnv,
        pad: usize,
    ) -> std::io::Result<Server> {
        let (env, program) = runner::environment(python, &side.env, pad, &side.checkout)?;
        let stderr = self.scratch.join(format!("server-{}.stderr", side.side));
        let mut child = Command::new(program)
            .args([harness, "serve", suite])
            .current_dir(&side.checkout)
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .process_group(0)
            .spawn()?;
        runner::track_group(child.id() as libc::pid_t, true);
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (send, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Server {
            child,
            stdin,
            answers,
            stderr,
        })
    }
}

fn last_line(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    Some(line.chars().take(300).collect())
}
