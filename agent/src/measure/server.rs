//! Cheaper samples for asv `time_*` benchmarks (ARCHITECTURE §3): one harness process per
//! side (`asv_harness.py serve`) imports each benchmark's module once and forks a child per
//! sample, instead of a fresh interpreter that starts, imports the package and calibrates
//! `number` every time. Samples stay independent: each child starts from the same parent
//! state and exits. `number` is calibrated by a benchmark's first sample (its warm-up) and
//! reused on both sides for every later one.
//!
//! Forked children share their server's address-space layout (ASLR and the stack are fixed
//! at exec), so one server for a whole run would give every sample of a side the same
//! layout, and a layout bias would repeat in every pair, the very bias the fresh process per
//! sample randomises away. So the scheduler starts new servers every round ([`Servers::restart`]),
//! each with its own environment and heap padding: the layout varies from pair to pair, as
//! with fresh processes, for the cost of two interpreter starts per round instead of two per
//! benchmark, and those starts run beside the previous round's pairs, on another CPU.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::bench::{Benchmark, Measurement, SKIPPED, Side, SideEnv};
use crate::measure::runner;
use crate::side_file;

/// The blocks a lockstep sample's calls are timed in (fewer when `number` is smaller).
pub const LOCKSTEP_BLOCKS: u32 = 20;

/// The longest answer line read from a server; anything longer ends it.
const MAX_LINE: usize = 1 << 20;

/// How much longer than a sample's own timeout the agent waits for the server's answer
/// before it gives the server up (the server enforces the timeout on its child itself).
const GRACE: Duration = Duration::from_secs(10);

/// The sample servers of one comparison, started on first use, one per side.
#[derive(Debug)]
pub struct Servers {
    scratch: PathBuf,
    running: std::cell::RefCell<HashMap<Side, Server>>,
    /// The next round's servers, started ahead ([`Servers::restart`]).
    spares: std::cell::RefCell<HashMap<Side, Spare>>,
    /// How each side's server starts.
    recipes: std::cell::RefCell<HashMap<Side, Recipe>>,
    /// Servers started so far: each one's stderr file has its own number.
    started: std::cell::Cell<u32>,
    /// The calibrated calls per repeat, by benchmark id.
    numbers: std::cell::RefCell<HashMap<String, u64>>,
    /// The CPU the servers (and so every child they fork) run on.
    cpu: Option<usize>,
    /// Pairs run in lockstep, in at most this many blocks per sample ([`Servers::measure_pair`]).
    lockstep: Option<u32>,
}

impl Servers {
    /// Stops the running servers (called at the start of every round): each side's next
    /// sample goes to a new one, with a new address-space layout. Those are the spares
    /// started at the previous restart, if they have said within `wait` that they have
    /// imported what they were given: they started and imported on the other CPUs while
    /// that round's pairs ran, so the interpreter starts are off the pairs' path
    /// (docs/perf/vs-asv.md), and waiting for them here costs the samples nothing. They are
    /// then moved onto the sampling CPU. A side without a ready spare starts its server on
    /// first use, as before. Spares for the next round start now, padded by `pads` (base,
    /// head), to import `ahead` (its served benchmarks); there are none when `ahead` is
    /// empty, when samples are not pinned to a CPU, or when the sampling CPU is the only one.
    pub fn restart(&self, pads: [usize; 2], ahead: &[&Benchmark], wait: Duration) {
        let mut running = self.running.borrow_mut();
        running.clear();
        let by = Instant::now() + wait;
        for (side, spare) in self.spares.borrow_mut().drain() {
            let Spare { mut server, list } = spare;
            let ready = server
                .answers
                .recv_timeout(by.saturating_duration_since(Instant::now()))
                .ok()
                .and_then(|line| serde_json::from_str::<Answer>(&line).ok())
                .is_some_and(|answer| answer.preloaded.is_some());
            let _ = std::fs::remove_file(list);
            let alive = matches!(server.child.try_wait(), Ok(None));
            let placed = self
                .cpu
                .is_some_and(|cpu| runner::move_to(server.child.id() as libc::pid_t, cpu).is_ok());
            if ready && alive && placed {
                running.insert(side, server);
            }
        }
        let wanted: Vec<[&str; 2]> = ahead
            .iter()
            .filter(|b| b.served)
            .filter_map(|b| match b.argv.as_slice() {
                [_, _, _, _, id, module] => Some([id.as_str(), module.as_str()]),
                _ => None,
            })
            .collect();
        let aside = self.aside_cpus();
        if wanted.is_empty() || aside.is_empty() {
            return;
        }
        let recipes = self.recipes.borrow();
        let mut spares = self.spares.borrow_mut();
        for (side, recipe) in recipes.iter() {
            let pad = pads[usize::from(*side == Side::Head)];
            let Ok(mut server) = self.start(recipe, pad, Place::Aside(&aside)) else {
                continue;
            };
            // The list goes by file: a line longer than the pipe holds would block here until
            // the spare reads it, and forever if its start hangs.
            let list = self
                .scratch
                .join(format!("preload-{}.json", self.started.get()));
            let Some(path) = list.to_str() else {
                continue;
            };
            let told = std::fs::write(&list, serde_json::to_vec(&wanted).expect("strings"))
                .and_then(|_| {
                    let line = serde_json::json!({ "preload": path });
                    writeln!(server.stdin, "{line}").and_then(|_| server.stdin.flush())
                });
            if told.is_ok() {
                spares.insert(*side, Spare { server, list });
            } else {
                let _ = std::fs::remove_file(&list);
            }
        }
    }

    /// The CPUs a spare starts on: all but the sampling one; none when samples are not
    /// pinned.
    fn aside_cpus(&self) -> Vec<usize> {
        let Some(cpu) = self.cpu else {
            return Vec::new();
        };
        let mut cpus = runner::allowed_cpus().unwrap_or_default();
        cpus.retain(|&c| c != cpu);
        cpus
    }
}

/// A server started ahead of its round, and the file that lists what it imports.
#[derive(Debug)]
struct Spare {
    server: Server,
    list: PathBuf,
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
        let _ = std::fs::remove_file(&self.stderr);
    }
}

/// How a side's server is started (from the first request of that side).
#[derive(Debug, Clone)]
struct Recipe {
    python: String,
    harness: String,
    suite: String,
    side: SideEnv,
}

/// Where a server runs.
#[derive(Debug, Clone, Copy)]
enum Place<'a> {
    /// On the sampling CPU (or anywhere, when samples are not pinned).
    Sampling,
    /// On these CPUs, all but the sampling one: a spare that starts while the round's pairs
    /// run.
    Aside(&'a [usize]),
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
    /// Lockstep: the child is set up and will time this many blocks.
    ready: Option<u32>,
    /// Lockstep: the child has timed a block.
    done: Option<u32>,
    /// A spare has imported what it was given ([`Servers::restart`]).
    preloaded: Option<u32>,
}

/// What a server said about a sample.
enum Said {
    Ready(u32),
    Done,
    Final(Result<Measurement, String>),
    /// Nothing within the wait (`timed_out`), or the server is gone; it has been given up.
    Silent {
        timed_out: bool,
        why: String,
    },
}

impl Said {
    /// What a lockstep side that said this, where its turn called for something else, ends
    /// with: silence within its time is a timeout, anything out of place restarts the server.
    fn into_final(
        self,
        running: &mut HashMap<Side, Server>,
        side: Side,
        timeout: Duration,
    ) -> Result<Measurement, String> {
        match self {
            Said::Final(result) => result,
            Said::Silent {
                timed_out: true, ..
            } => Err(format!(
                "{}{:.1} s",
                crate::bench::TIMED_OUT,
                timeout.as_secs_f64()
            )),
            Said::Silent { why, .. } => Err(why),
            Said::Ready(_) | Said::Done => {
                running.remove(&side);
                Err("the sample server answered out of turn, so it was restarted".into())
            }
        }
    }
}

/// Where one side of a lockstep pair is.
enum Turns {
    Asked,
    Active { left: u32, spent: Duration },
    Ended(Result<Measurement, String>),
}

impl Servers {
    /// Servers whose stderr files go to `scratch`, confined to `cpu` if given.
    pub fn new(scratch: &Path, cpu: Option<usize>) -> Self {
        Self {
            scratch: scratch.to_owned(),
            running: Default::default(),
            spares: Default::default(),
            recipes: Default::default(),
            started: Default::default(),
            numbers: Default::default(),
            cpu,
            lockstep: None,
        }
    }

    /// Pairs of samples take turns in at most `blocks` blocks each (`None`: one after the
    /// other).
    pub fn with_lockstep(self, blocks: Option<u32>) -> Self {
        Self {
            lockstep: blocks,
            ..self
        }
    }

    /// The blocks per sample of a lockstep pair, if pairs run in lockstep.
    pub fn lockstep(&self) -> Option<u32> {
        self.lockstep
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
        let mut running = self.running.borrow_mut();
        self.ask(&mut running, bench, side, pad, timeout, None)?;
        match self.hear(&mut running, bench, side.side, timeout + GRACE) {
            Said::Final(result) => result,
            Said::Silent { why, .. } => Err(why),
            Said::Ready(_) | Said::Done => {
                running.remove(&side.side);
                Err("the sample server answered out of turn, so it was restarted".into())
            }
        }
    }

    /// One pair of samples of `bench` in lockstep: both sides' children set up, then take
    /// turns timing blocks of the calibrated `number` calls (first, second, second, first,
    /// ...), so the two samples share the CPU's speed of the moment (docs/perf/noise-sources.md).
    /// The results are in the order of `runs`. `None` when the benchmark has no calibrated
    /// `number` yet (its warm-up calibrates it): then the pair is sampled one after the other.
    /// A side that fails, or runs out of time, ends the pair; the other side is then sampled
    /// alone, so the pair reads as a sequential one would. A side's time: twice `timeout` for
    /// its setup (both sides set up at once, on one CPU when pinned), `timeout` for its own
    /// blocks (the other side's turns do not count), and `timeout` for its teardown.
    pub fn measure_pair(
        &self,
        bench: &Benchmark,
        runs: [(&SideEnv, usize); 2],
        timeout: Duration,
        blocks: u32,
    ) -> Option<[Result<Measurement, String>; 2]> {
        self.numbers.borrow().get(&bench.id)?;
        let mut running = self.running.borrow_mut();
        let mut state = runs.map(|(side, pad)| {
            // The child's own limit only backs the agent's up: setup, its blocks, the other
            // side's blocks and teardown.
            match self.ask(
                &mut running,
                bench,
                side,
                pad,
                5 * timeout + GRACE,
                Some(blocks),
            ) {
                Ok(()) => Turns::Asked,
                Err(e) => Turns::Ended(Err(e)),
            }
        });
        let setup_by = Instant::now() + 2 * timeout;
        for (j, (side, _)) in runs.iter().enumerate() {
            // Once the first side has failed, the second is not judged: it is sampled alone.
            let other_failed = j == 1 && matches!(state[0], Turns::Ended(Err(_)));
            if matches!(state[j], Turns::Asked) && !other_failed {
                let left = setup_by.saturating_duration_since(Instant::now());
                state[j] = match self.hear(&mut running, bench, side.side, left) {
                    Said::Ready(n) => Turns::Active {
                        left: n,
                        spent: Duration::ZERO,
                    },
                    said => Turns::Ended(said.into_final(&mut running, side.side, timeout)),
                };
            }
        }
        let mut turn = 0;
        while state.iter().all(|s| matches!(s, Turns::Active { .. }))
            && state
                .iter()
                .any(|s| matches!(s, Turns::Active { left, .. } if *left > 0))
        {
            let order = if turn % 2 == 0 { [0, 1] } else { [1, 0] };
            turn += 1;
            for j in order {
                let Turns::Active { left, spent } = state[j] else {
                    break;
                };
                if left == 0 {
                    continue;
                }
                let side = runs[j].0.side;
                let went = Instant::now();
                let told = running
                    .get_mut(&side)
                    .map(|server| writeln!(server.stdin, "go").and_then(|_| server.stdin.flush()));
                if !matches!(told, Some(Ok(()))) {
                    running.remove(&side);
                    state[j] = Turns::Ended(Err("the sample server stopped answering".into()));
                    break;
                }
                let budget = timeout.saturating_sub(spent);
                state[j] = match self.hear(&mut running, bench, side, budget) {
                    Said::Done => Turns::Active {
                        left: left - 1,
                        spent: spent + went.elapsed(),
                    },
                    said => Turns::Ended(said.into_final(&mut running, side, timeout)),
                };
                if matches!(state[j], Turns::Ended(_)) {
                    break;
                }
            }
        }
        let finished = state.iter().all(|s| !matches!(s, Turns::Ended(Err(_))));
        let mut results = Vec::with_capacity(2);
        for (j, (side, pad)) in runs.iter().enumerate() {
            let turns = std::mem::replace(&mut state[j], Turns::Asked);
            let result = match turns {
                Turns::Ended(result) => result,
                Turns::Active { left: 0, .. } if finished => {
                    match self.hear(&mut running, bench, side.side, timeout + GRACE) {
                        Said::Final(result) => result,
                        said => said.into_final(&mut running, side.side, timeout),
                    }
                }
                Turns::Active { .. } | Turns::Asked => {
                    // The other side failed: end this one's turns, then sample it alone.
                    self.stop(&mut running, bench, side.side);
                    drop(running);
                    let alone = self.measure(bench, side, *pad, timeout);
                    running = self.running.borrow_mut();
                    alone
                }
            };
            results.push(result);
        }
        results.try_into().ok()
    }

    /// Sends `bench`'s request to `side`'s server, starting the server if it is not running.
    fn ask(
        &self,
        running: &mut HashMap<Side, Server>,
        bench: &Benchmark,
        side: &SideEnv,
        pad: usize,
        timeout: Duration,
        lockstep: Option<u32>,
    ) -> Result<(), String> {
        let [python, harness, _run, suite, id, module] = bench.argv.as_slice() else {
            return Err(format!("{} is not an asv benchmark", bench.id));
        };
        let mut recipes = self.recipes.borrow_mut();
        let recipe = recipes.entry(side.side).or_insert_with(|| Recipe {
            python: python.clone(),
            harness: harness.clone(),
            suite: suite.clone(),
            side: side.clone(),
        });
        let server = match running.entry(side.side) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                self.start(recipe, pad, Place::Sampling)
                    .map_err(|e| format!("failed to start the sample server: {e}"))?,
            ),
        };
        let request = serde_json::json!({
            "id": id,
            "module": module,
            "number": self.numbers.borrow().get(&bench.id),
            "timeout": timeout.as_secs_f64(),
            "lockstep": lockstep,
        });
        let asked = writeln!(server.stdin, "{request}").and_then(|_| server.stdin.flush());
        if asked.is_err() {
            running.remove(&side.side);
            return Err("the sample server stopped answering".into());
        }
        Ok(())
    }

    /// The next thing `side`'s server says about `bench`'s sample, within `wait`. A server
    /// that is silent or answers out of turn is given up (the next sample starts a new one).
    fn hear(
        &self,
        running: &mut HashMap<Side, Server>,
        bench: &Benchmark,
        side: Side,
        wait: Duration,
    ) -> Said {
        let Some(server) = running.get_mut(&side) else {
            return Said::Silent {
                timed_out: false,
                why: "the sample server stopped answering".into(),
            };
        };
        let line = match server.answers.recv_timeout(wait) {
            Ok(line) => line,
            Err(e) => {
                // Dead or stuck: its stderr says why.
                let server = running.remove(&side).expect("present");
                let tail = side_file::last_line(&server.stderr);
                drop(server);
                return Said::Silent {
                    timed_out: e == mpsc::RecvTimeoutError::Timeout,
                    why: format!(
                        "the sample server stopped answering{}",
                        tail.map(|t| format!(": {t}")).unwrap_or_default()
                    ),
                };
            }
        };
        let id = &bench.argv[4];
        let answer: Answer = match serde_json::from_str::<Answer>(&line) {
            Ok(answer) if answer.id == *id => answer,
            // Not this request's answer: the stream cannot be trusted any more.
            wrong => {
                running.remove(&side);
                return Said::Final(Err(format!(
                    "the sample server answered out of turn ({}), so it was restarted",
                    match wrong {
                        Ok(a) => format!("for {}", a.id),
                        Err(e) => format!("{e}: {:?}", line.chars().take(80).collect::<String>()),
                    }
                )));
            }
        };
        if let Some(blocks) = answer.ready {
            return Said::Ready(blocks);
        }
        if answer.done.is_some() {
            return Said::Done;
        }
        Said::Final(self.outcome(bench, answer, &line))
    }

    /// Ends a lockstep child's turns early and waits for its answer, which is discarded.
    fn stop(&self, running: &mut HashMap<Side, Server>, bench: &Benchmark, side: Side) {
        let Some(server) = running.get_mut(&side) else {
            return;
        };
        if writeln!(server.stdin, "stop")
            .and_then(|_| server.stdin.flush())
            .is_err()
        {
            running.remove(&side);
            return;
        }
        loop {
            match self.hear(running, bench, side, GRACE) {
                Said::Ready(_) | Said::Done => continue,
                Said::Final(_) | Said::Silent { .. } => return,
            }
        }
    }

    /// A final answer as a measurement or a one-line reason; records a calibrated `number`.
    fn outcome(
        &self,
        bench: &Benchmark,
        answer: Answer,
        line: &str,
    ) -> Result<Measurement, String> {
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

    fn start(&self, recipe: &Recipe, pad: usize, place: Place<'_>) -> std::io::Result<Server> {
        let side = &recipe.side;
        let (env, program) = runner::environment(&recipe.python, &side.env, pad, &side.checkout)?;
        let n = self.started.get() + 1;
        self.started.set(n);
        let stderr = self
            .scratch
            .join(format!("server-{}-{n}.stderr", side.side));
        let mut command = Command::new(program);
        command
            .args([recipe.harness.as_str(), "serve", recipe.suite.as_str()])
            .current_dir(&side.checkout)
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?)
            .process_group(0);
        match (place, self.cpu) {
            (Place::Sampling, Some(cpu)) => runner::pin(&mut command, cpu),
            (Place::Aside(cpus), Some(_)) => runner::pin_to(&mut command, cpus),
            (_, None) => {}
        }
        // It runs the side's code: confined as its other runs are (kept until the spawn).
        let ruleset = super::confine::confine(&mut command, side.writable.as_deref())?;
        let mut child = command.spawn()?;
        drop(ruleset);
        runner::track_group(child.id() as libc::pid_t, true);
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (send, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                let read = (&mut reader)
                    .take(MAX_LINE as u64 + 1)
                    .read_until(b'\n', &mut line);
                if !matches!(read, Ok(n) if n > 0) {
                    break;
                }
                if line.len() > MAX_LINE {
                    // A lockstep child (the benchmark's code) can write to this stream: an
                    // endless line must not grow the agent's memory. It ends the server.
                    let _ = send.send(format!("an answer line longer than {MAX_LINE} bytes"));
                    break;
                }
                let line = String::from_utf8_lossy(&line);
                if send
                    .send(line.trim_end_matches(['\n', '\r']).to_owned())
                    .is_err()
                {
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
