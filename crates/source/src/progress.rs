//! What a fetch reports while it works: how far each transfer is, and a transfer that
//! failed and is about to be tried again.

use std::fmt;
use std::time::Duration;

/// How far a transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The pool file name.
    pub file: String,
    /// Bytes done.
    pub done: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
    /// Set when the transfer failed and is about to be tried again.
    pub retry: Option<Retrying>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.retry {
            return write!(f, "{}: {r}", self.file);
        }
        match self.total {
            Some(t) if t > 0 => write!(
                f,
                "{}: {:.1}/{:.1} MB ({}%)",
                self.file,
                self.done as f64 / 1e6,
                t as f64 / 1e6,
                self.done * 100 / t
            ),
            _ => write!(f, "{}: {:.1} MB", self.file, self.done as f64 / 1e6),
        }
    }
}

/// A transfer that failed and is about to be tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrying {
    /// What went wrong, briefly: `connection reset after 59.7 MB`, `HTTP 503`.
    pub failure: String,
    /// Whether the next try asks only for the bytes still missing.
    pub resume: bool,
    /// The try that comes next (2 for the first retry).
    pub attempt: u32,
    /// Tries in all, at most.
    pub attempts: u32,
    /// The wait before it.
    pub wait: Duration,
}

impl fmt::Display for Retrying {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} in {:.1} s (attempt {} of {})",
            self.failure,
            if self.resume {
                "resuming"
            } else {
                "trying again"
            },
            self.wait.as_secs_f64(),
            self.attempt,
            self.attempts
        )
    }
}
