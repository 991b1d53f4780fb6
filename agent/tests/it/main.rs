//! The agent's integration tests, one binary (one link) with shared support: real git,
//! Python, uv, coverage.py, asv_runner and SQLite.

mod support;

mod asv_suites;
mod confinement;
mod controller_beats;
mod local_loop;
mod local_loop_signals;
mod recall;
mod render_snapshots;
mod replay;
mod selective_compare;
mod stats_golden;
mod survey_interrupted;
