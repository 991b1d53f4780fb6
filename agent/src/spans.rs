//! The pipeline measures itself: every phase is a timed span with a cold/warm flag.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Whether the caches a phase relies on were there before it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cache {
    Cold,
    Warm,
}

impl Cache {
    pub fn from_warm(warm: bool) -> Self {
        if warm { Cache::Warm } else { Cache::Cold }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub name: String,
    /// Seconds from the start of the run.
    pub start_s: f64,
    pub duration_s: f64,
    pub cache: Option<Cache>,
}

/// Collects spans relative to one start instant.
#[derive(Debug)]
pub struct Timeline {
    origin: Instant,
    pub spans: Vec<Span>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Timeline {
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            spans: Vec::new(),
        }
    }

    /// Records a span that started at `start` and ends now.
    pub fn record(&mut self, name: &str, start: Instant, cache: Option<Cache>) {
        self.spans.push(Span {
            name: name.to_owned(),
            start_s: start.duration_since(self.origin).as_secs_f64(),
            duration_s: start.elapsed().as_secs_f64(),
            cache,
        });
    }
}
