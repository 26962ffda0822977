//! `qus check` (the lookups are `maint::index`'s, the judgement `maint::check`'s).

use crate::config::lockfile;
use crate::config::Config;
use crate::maint::{check, index, need_mirror, pins, Wanted};
use crate::ui::progress::Progress;
use qus_source::debian_index::Expiry;
use std::path::Path;
use std::process::ExitCode;

/// `qus check`: exit 0 when every pin is the newest file the mirror serves, 1 when one is
/// not (or is not served itself).
pub(crate) async fn check_cmd(
    config: &Config,
    mirror: Option<String>,
    expiry: Expiry,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let pins = pins(config);
    let wanted: Vec<Wanted> = pins.iter().map(|(w, _)| w.clone()).collect();
    let mirror = need_mirror(mirror)?;
    let mut looked = index::lookup(&mirror, &wanted, expiry, progress).await?;
    // Whether each pinned file itself is served (most were asked about already).
    let asks: Vec<index::Ask> = pins
        .iter()
        .map(|(_, f)| index::Ask {
            file: &f.file,
            sha256: &f.sha256,
            size: f.size,
        })
        .collect();
    index::probe_files(&mirror, &asks, &mut looked.answers).await?;
    let rows = check::compare(&pins, &looked.choices(&wanted), &looked.answers)?;
    let outdated = rows.iter().filter(|r| r.status.needs_lock()).count();
    let unserved = rows
        .iter()
        .filter(|r| r.status == check::Status::NewerNotServed)
        .count();
    if json {
        crate::ui::output::out_json(&check::json(&rows))?;
    } else {
        crate::ui::output::out(&check::table(&rows))?;
        crate::ui::output::out(&check::newer_series_lines(&check::newer_series(&rows)))?;
    }
    if outdated == 0 {
        progress.step(format!(
            "all {} pins are the newest {mirror} serves{}",
            rows.len(),
            match unserved {
                0 => String::new(),
                n => format!(" ({n} with a newer file listed but not served)"),
            }
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        progress.step(format!(
            "{outdated} of {} pins are out of date or not served: run `qus lock`{}",
            rows.len(),
            config
                .lock
                .as_ref()
                .map(|l| format!(" (updates {l})"))
                .unwrap_or_else(|| format!(
                    " (writes {})",
                    lockfile::path_for(Some(Path::new(&config.origin))).display()
                ))
        ));
        Ok(ExitCode::from(check::OUTDATED))
    }
}
