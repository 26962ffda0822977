//! The maintainers' loop: `qus lock`, `qus check`, `qus report`.

use crate::cli::{CheckArgs, LockArgs, ReportArgs};
use crate::plan::Plan;
use crate::progress::Progress;
use std::path::Path;
use std::process::ExitCode;

/// `qus lock`.
pub async fn lock_cmd(_config: Option<&Path>, _a: &LockArgs, _p: &Progress) -> anyhow::Result<ExitCode> {
    anyhow::bail!("qus lock is not implemented yet")
}

/// `qus check`.
pub async fn check_cmd(_config: Option<&Path>, _a: &CheckArgs, _p: &Progress) -> anyhow::Result<ExitCode> {
    anyhow::bail!("qus check is not implemented yet")
}

/// `qus report`.
pub fn report_cmd(_plan: &Plan, _a: &ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("qus report is not implemented yet")
}
