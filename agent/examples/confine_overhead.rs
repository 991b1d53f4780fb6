//! What the confinement costs a timed run: `cargo run --release -p benchvm-agent --example
//! confine_overhead [PAIRS] [-- COMMAND…]` times COMMAND (default `python3 -c pass`) through
//! the ProcessRunner PAIRS times (default 200) unconfined and confined, in pairs of random
//! order, and prints both medians and the median of the paired differences
//! (docs/perf/confinement.md).

use std::time::Duration;

use benchvm_agent::measure::runner::{ProcessRunner, RunSpec, SystemRunner};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (pairs, command) = match args.iter().position(|a| a == "--") {
        Some(i) => (args[..i].first().cloned(), args[i + 1..].to_vec()),
        None => (args.first().cloned(), vec![]),
    };
    let pairs: usize = pairs.map_or(200, |p| p.parse().expect("PAIRS is a number"));
    let argv = if command.is_empty() {
        ["python3", "-c", "pass"].map(String::from).to_vec()
    } else {
        command
    };
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let spec = |writable: Option<Vec<std::path::PathBuf>>| RunSpec {
        argv: argv.clone(),
        cwd: scratch.path().to_owned(),
        env: vec![],
        timeout: Duration::from_secs(60),
        stdout: None,
        stderr: None,
        pad: 0,
        cpu: None,
        writable,
    };
    let free = spec(None);
    let confined = spec(Some(vec![scratch.path().to_owned()]));
    let time = |s: &RunSpec| {
        let out = SystemRunner.run(s).expect("the command starts");
        assert!(out.success(), "{:?} failed", s.argv);
        out.wall.as_secs_f64() * 1e3
    };
    let (mut a, mut b, mut d) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pairs {
        let (x, y) = if rand::random::<bool>() {
            let x = time(&free);
            (x, time(&confined))
        } else {
            let y = time(&confined);
            (time(&free), y)
        };
        a.push(x);
        b.push(y);
        d.push(y - x);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "{pairs} pairs of {:?}: unconfined median {:.3} ms, confined median {:.3} ms, \
         median paired difference {:+.3} ms",
        argv.join(" "),
        median(&mut a),
        median(&mut b),
        median(&mut d)
    );
}
