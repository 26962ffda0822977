//! `qus plan`: every image and manifest list the selection implies, as a table or JSON.

use crate::plan::Plan;
use crate::ui::table;
use std::process::ExitCode;

/// `qus plan`.
pub(crate) fn plan_cmd(plan: &Plan, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        crate::ui::output::out_json(plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    crate::ui::output::out(&plan_table(plan))?;
    Ok(ExitCode::SUCCESS)
}

/// The human-readable plan.
fn plan_table(plan: &Plan) -> String {
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
                    i.targets.join(",")
                },
            ]
        })
        .collect();
    let mut out = table::render(&["IMAGE", "PLATFORM", "KIND", "TARGETS"], &rows);
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
    out.push_str(&table::render(&["MANIFEST LIST", "PLATFORMS"], &rows));
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
