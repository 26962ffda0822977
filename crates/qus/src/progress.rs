//! Progress for long work, on stderr so that stdout stays clean for `--json`.
//!
//! Plain lines, one per event: they read well in CI logs and in a terminal alike.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where progress goes.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    quiet: Arc<AtomicBool>,
    verbose: bool,
}

impl Progress {
    /// `quiet` drops everything but warnings; `verbose` adds the builder's own output.
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        Progress {
            quiet: Arc::new(AtomicBool::new(quiet)),
            verbose,
        }
    }

    /// A progress line: `qus: <msg>`.
    pub fn step(&self, msg: impl AsRef<str>) {
        if !self.quiet.load(Ordering::Relaxed) {
            line(msg.as_ref());
        }
    }

    /// Detail only shown with `--verbose` (the builder's stream, per-layer push status).
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose && !self.quiet.load(Ordering::Relaxed) {
            let m = msg.as_ref().trim_end();
            if !m.is_empty() {
                line(&format!("  {m}"));
            }
        }
    }

    /// Something the user should know even with `--quiet`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        line(&format!("warning: {}", msg.as_ref()));
    }
}

fn line(msg: &str) {
    let mut e = std::io::stderr().lock();
    // A closed stderr is no reason to fail a build.
    let _ = writeln!(e, "qus: {msg}");
}
