//! `qus plan`: every image and manifest list the selection implies, as a table or JSON.

use crate::plan::Plan;
use crate::ui::table;
use std::process::ExitCode;

/// `qus plan`.
pub(crate) fn plan_cmd(plan: &Plan, json: bool, wide: bool) -> anyhow::Result<ExitCode> {
    if json {
        crate::ui::output::out_json(plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::ui::output::out(&plan_table(plan, (!wide).then_some(WIDTH)))?;
    Ok(ExitCode::SUCCESS)
}

/// The width the table fits in unless `--wide`: long lists wrap under their column.
const WIDTH: usize = 100;

/// The human-readable plan, fitted into `width` columns if given.
fn plan_table(plan: &Plan, width: Option<usize>) -> String {
    let render = |header: &[&str], rows: &[Vec<String>]| match width {
        Some(w) => table::render_fitted(header, rows, w),
        None => table::render(header, rows),
    };
    let rows: Vec<Vec<String>> = plan
        .images
        .iter()
        .map(|i| {
            vec![
                i.reference.clone(),
                i.platform.to_string(),
                i.kind.name().to_string(),
                if i.targets.is_empty() {
                    "-".into()
                } else {
                    i.targets.join(", ")
                },
            ]
        })
        .collect();
    let mut out = render(&["IMAGE", "PLATFORM", "KIND", "TARGETS"], &rows);
    out.push('\n');
    let rows: Vec<Vec<String>> = plan
        .manifests
        .iter()
        .map(|m| {
            vec![
                m.reference.clone(),
                m.entries
                    .iter()
                    .map(|e| e.platform.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    out.push_str(&render(&["MANIFEST LIST", "PLATFORMS"], &rows));
    for s in &plan.skipped {
        out.push_str(&format!("skipped: {s}\n"));
    }
    for n in &plan.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&format!(
        "{} images, {} manifest lists\n",
        plan.images.len(),
        plan.manifests.len()
    ));
    out
}
