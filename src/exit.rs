//! Exit statuses: one meaning each, as `qus --help` and the man page list them, so that a
//! script can tell "fix the command line or the config" from "try again later".

use std::process::ExitCode;

/// The command did what was asked (and `check`/`verify` found nothing to report).
pub(crate) const OK: u8 = 0;
/// It failed while working (mirror, daemon, registry, a test), or `check`/`verify`/`test`
/// found a difference or a failure.
pub(crate) const FAILED: u8 = 1;
/// The command line, the config or the lock file is wrong: nothing was attempted.
pub(crate) const USAGE: u8 = 2;

/// The text of the EXIT STATUS section of `qus --help` and of the man page.
pub(crate) const HELP: &str = "\
Exit status:
  0  success (check: the pins are the newest the mirror serves; verify: every tag matches)
  1  failure while working (mirror, daemon, registry, a guest program), or check/verify
     found a difference, or register failed for a target; build, assets and release
     still make all that needs no package they could not use, and name each one
  2  usage or configuration error: bad flags, an invalid config or lock file; nothing
     was attempted";

/// A mistake in what the user gave (a flag's value, what the config pins): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// The exit status of a command that ended with `err`.
pub(crate) fn status_of(err: &anyhow::Error) -> ExitCode {
    let usage = err.chain().any(|e| {
        e.is::<UsageError>()
            || e.is::<crate::config::ConfigError>()
            || e.is::<crate::plan::PlanError>()
            || e.is::<crate::config::lockfile::LockError>()
    });
    ExitCode::from(if usage { USAGE } else { FAILED })
}

/// `UsageError` as an anyhow error, for `?` at the edge.
pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

/// `err` and its causes on one line, each said once: a cause whose text the message
/// already carries (`cannot read config x: No such file…` over the io error) is not
/// repeated.
pub(crate) fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
