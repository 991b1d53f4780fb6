//! The layers of ARCHITECTURE §2 turned into a flat list of [`Benchmark`]s: startup commands,
//! micro-benchmarks (an ASV-style suite through [`asv`], or commands that print JSON),
//! integration runs and memory runs. `python -X importtime` is parsed by [`importtime`].

pub mod asv;
pub mod importtime;

use crate::bench::{Benchmark, Layer, Metric};
use crate::config::Config;

/// The benchmarks `config` declares, except the ASV suite (discovered per checkout).
pub fn from_config(config: &Config) -> Vec<Benchmark> {
    let mut out = Vec::new();
    for c in &config.startup {
        out.push(Benchmark::new(
            Layer::Startup,
            &c.name,
            Metric::WallTime,
            "s",
            c.argv.clone(),
        ));
    }
    for c in &config.micro.commands {
        out.push(Benchmark::new(
            Layer::Micro,
            &c.name,
            Metric::Reported,
            "s",
            c.argv.clone(),
        ));
    }
    for i in &config.integration {
        let c = &i.run;
        out.push(Benchmark::new(
            Layer::Integration,
            &c.name,
            Metric::WallTime,
            "s",
            c.argv.clone(),
        ));
    }
    for c in &config.memory {
        out.push(Benchmark::new(
            Layer::Memory,
            &c.name,
            Metric::PeakRss,
            "bytes",
            c.argv.clone(),
        ));
    }
    out
}
