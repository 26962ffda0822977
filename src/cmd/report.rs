//! `qus report` (the table is `maint::report`'s).

use crate::maint::report;
use crate::plan::Plan;
use std::process::ExitCode;

/// `qus report`: which emulator each planned package provides for which host.
pub(crate) fn report_cmd(plan: &Plan, json: bool) -> anyhow::Result<ExitCode> {
    let r = report::report(plan);
    if json {
        crate::ui::output::out_json(&r)?;
    } else {
        crate::ui::output::out(&report::markdown(&r))?;
    }
    Ok(ExitCode::SUCCESS)
}
