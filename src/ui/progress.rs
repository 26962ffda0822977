//! Progress for long work, on stderr so that stdout stays clean for `--json`.
//!
//! On a terminal, bars (indicatif) for downloads and pushes and a spinner for builds; in CI
//! logs and pipes, plain lines, one per event, that read well after the fact. `--quiet`
//! keeps only warnings. `--progress` (buildx's spelling) overrides the guess: `plain` for a
//! terminal recorded as a log, `tty` for a pseudo-terminal the guess cannot see.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

/// `--progress`: how progress is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Bars when stderr is a terminal, else plain lines.
    #[default]
    Auto,
    /// A line per step, never a bar or a control character.
    Plain,
    /// Bars, whatever stderr is.
    Tty,
}

/// Where progress goes. Cheap to clone; clones share the terminal.
#[derive(Debug, Clone)]
pub struct Progress {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    quiet: bool,
    verbose: bool,
    tty: bool,
    bars: indicatif::MultiProgress,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new(false, false)
    }
}

impl Progress {
    /// `quiet` drops everything but warnings; `verbose` adds the builder's own output.
    /// Bars are drawn only when stderr is a terminal.
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        Progress::with_mode(quiet, verbose, Mode::Auto)
    }

    /// As [`Progress::new`], drawn as `mode` says.
    pub fn with_mode(quiet: bool, verbose: bool, mode: Mode) -> Progress {
        let tty = !quiet
            && match mode {
                Mode::Auto => std::io::stderr().is_terminal(),
                Mode::Plain => false,
                Mode::Tty => true,
            };
        let bars = indicatif::MultiProgress::with_draw_target(match (tty, mode) {
            // indicatif hides its stderr target when stderr is no terminal; a term-like
            // target is drawn wherever it points.
            (true, Mode::Tty) => ProgressDrawTarget::term_like(Box::new(console::Term::stderr())),
            (true, _) => ProgressDrawTarget::stderr(),
            (false, _) => ProgressDrawTarget::hidden(),
        });
        Progress {
            inner: Arc::new(Inner {
                quiet,
                verbose,
                tty,
                bars,
            }),
        }
    }

    /// A progress line: `qus: <msg>`.
    pub fn step(&self, msg: impl AsRef<str>) {
        if !self.inner.quiet {
            self.line(&format!("qus: {}", msg.as_ref()));
        }
    }

    /// Detail only shown with `--verbose` (the builder's stream, per-layer push status).
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.inner.verbose && !self.inner.quiet {
            let m = msg.as_ref().trim_end();
            if !m.is_empty() {
                self.line(&format!("qus:   {m}"));
            }
        }
    }

    /// Something the user should know even with `--quiet`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.line(&format!("qus: warning: {}", msg.as_ref()));
    }

    /// Something that failed, even with `--quiet`: `qus: error: <msg>`.
    pub fn error(&self, msg: impl AsRef<str>) {
        self.line(&format!("qus: error: {}", msg.as_ref()));
    }

    /// A bar for `total` bytes (a download, a push); hidden unless stderr is a terminal.
    pub fn bytes(&self, label: &str, total: Option<u64>) -> Bar {
        if !self.inner.tty {
            return Bar(None);
        }
        let pb = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template(
                    "{msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        pb.set_message(label.to_string());
        Bar(Some(self.inner.bars.add(pb)))
    }

    /// A spinner for work without a size (a build); hidden unless stderr is a terminal.
    pub fn spinner(&self, label: &str) -> Bar {
        if !self.inner.tty {
            return Bar(None);
        }
        let pb = ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        pb.set_message(label.to_string());
        pb.enable_steady_tick(Duration::from_millis(120));
        Bar(Some(self.inner.bars.add(pb)))
    }

    fn line(&self, text: &str) {
        if self.inner.tty {
            // Printed above the bars, which are redrawn below.
            self.inner.bars.println(text).ok();
        } else {
            // A closed stderr is no reason to fail a build.
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }
}

/// A bar or spinner; does nothing when progress is not drawn.
#[derive(Debug)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// Sets the position (bytes done).
    pub fn set(&self, done: u64) {
        if let Some(b) = &self.0 {
            b.set_position(done);
        }
    }

    /// Updates the label.
    pub fn message(&self, msg: &str) {
        if let Some(b) = &self.0 {
            b.set_message(msg.to_string());
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_decide_bars_whatever_stderr_is() {
        // Under `cargo test` stderr is captured, not a terminal.
        assert!(!Progress::with_mode(false, false, Mode::Plain).inner.tty);
        assert!(Progress::with_mode(false, false, Mode::Tty).inner.tty);
        assert!(
            !Progress::with_mode(true, false, Mode::Tty).inner.tty,
            "--quiet wins"
        );
        let auto = Progress::with_mode(false, false, Mode::Auto).inner.tty;
        assert_eq!(auto, std::io::stderr().is_terminal());
        // A bar exists only when drawn.
        assert!(Progress::with_mode(false, false, Mode::Plain)
            .bytes("x", Some(1))
            .0
            .is_none());
        assert!(Progress::with_mode(false, false, Mode::Tty)
            .bytes("x", Some(1))
            .0
            .is_some());
    }
}
