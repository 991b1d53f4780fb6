//! The pipeline measures itself: every phase is a timed span with a cold/warm flag.

use std::sync::{Arc, Mutex};
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

/// Collects spans relative to one start instant, from any thread: the agent's phases and
/// the controller's own (VM start, SSH, upload, download, deallocation) are both kept in
/// one. Clones share the spans.
#[derive(Debug, Clone)]
pub struct Timeline {
    origin: Instant,
    spans: Arc<Mutex<Vec<Span>>>,
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
            spans: Arc::default(),
        }
    }

    /// Records a span that started at `start` and ends now.
    pub fn record(&self, name: &str, start: Instant, cache: Option<Cache>) {
        self.push(Span {
            name: name.to_owned(),
            start_s: self.offset(start),
            duration_s: start.elapsed().as_secs_f64(),
            cache,
        });
    }

    /// Adds a span measured otherwise (a part of another one, say).
    pub fn push(&self, span: Span) {
        self.spans.lock().expect("timeline lock").push(span);
    }

    /// Seconds from the timeline's start to `at`.
    pub fn offset(&self, at: Instant) -> f64 {
        at.duration_since(self.origin).as_secs_f64()
    }

    /// The spans so far, in the order they were recorded.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("timeline lock").clone()
    }
}
