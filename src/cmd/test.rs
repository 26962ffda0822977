//! `qus test`: the emulators of the plan's images in the daemon, each run once (images that
//! share a layer share its test), read out of the images through the engine.

use crate::arch::Host;
use crate::config::Config;
use crate::emutest::{tools, Row, Status, Subject};
use crate::engine::docker::Daemon;
use crate::engine::Engine;
use crate::packages::SourceOptions;
use crate::plan::{LayerSpec, Plan};
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::ExitCode;

/// Exit status when an emulator failed.
const FAILED: u8 = 1;

/// `qus test`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn test_cmd(
    plan: &Plan,
    config: &Config,
    src: &SourceOptions,
    engine: &Engine,
    machine: Option<Host>,
    jobs: usize,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let machine = machine.ok_or_else(|| {
        anyhow!("this machine's architecture is not a qus host: qus test cannot run emulators here")
    })?;
    let daemon = Daemon::connect(engine).await?;
    let work = tempfile::tempdir().context("creating a work folder")?;

    // Which emulator layers the images in the daemon hold: a layer's test counts for every
    // image that has it.
    let mut subjects: BTreeMap<String, Subject> = BTreeMap::new();
    let mut from: BTreeMap<String, (String, String)> = BTreeMap::new(); // diffID → (image, target)
    let mut missing = Vec::new();
    for img in &plan.images {
        let Some(info) = daemon.inspect(&img.reference).await? else {
            missing.push(img.reference.clone());
            continue;
        };
        let stack = plan.stack(img);
        if info.layers.len() != stack.len() {
            return Err(anyhow!(
                "{}: the daemon's image has {} layers, the plan {}: rebuild it with qus build",
                img.reference,
                info.layers.len(),
                stack.len()
            ));
        }
        for (layer, diff_id) in stack.iter().zip(&info.layers) {
            let LayerSpec::Emulator { target } = layer else {
                continue;
            };
            subjects
                .entry(diff_id.clone())
                .or_insert_with(|| Subject {
                    host: img.host,
                    source: img.source.clone(),
                    qemu_version: img.qemu_version.clone(),
                    target: target.clone(),
                    path: Default::default(),
                    images: Vec::new(),
                })
                .images
                .push(img.tag.clone());
            from.entry(diff_id.clone())
                .or_insert_with(|| (img.reference.clone(), target.clone()));
        }
    }
    if subjects.is_empty() {
        return Err(anyhow!(
            "none of the plan's {} images with emulators is in the daemon: run `qus build` \
             with the same flags first",
            plan.images.len()
        ));
    }
    if !missing.is_empty() {
        progress.warn(format!(
            "{} images of the plan are not in the daemon and are not tested (first: {})",
            missing.len(),
            missing[0]
        ));
    }

    // Each emulator out of one image that has it.
    let mut by_image: BTreeMap<&str, Vec<(&String, &String)>> = BTreeMap::new();
    for (diff_id, (image, target)) in &from {
        by_image.entry(image).or_default().push((diff_id, target));
    }
    progress.step(format!(
        "reading {} emulators out of {} images",
        subjects.len(),
        by_image.len()
    ));
    for (image, wanted) in by_image {
        let img = plan
            .images
            .iter()
            .find(|i| i.reference == image)
            .expect("the image came from the plan");
        let paths: Vec<String> = wanted
            .iter()
            .map(|(_, t)| {
                format!(
                    "/{}/qemu-{t}-static",
                    crate::image::entrypoint::EMULATOR_DIR
                )
            })
            .collect();
        let files = daemon.copy_out(image, &img.platform, &paths).await?;
        for ((diff_id, target), bytes) in wanted.into_iter().zip(files) {
            let dir = work.path().join(diff_id.trim_start_matches("sha256:"));
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("qemu-{target}-static"));
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&bytes)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o755))?;
            subjects.get_mut(diff_id).expect("listed above").path = path;
        }
    }
    let subjects: Vec<Subject> = subjects.into_values().collect();
    let tools = tools(config, src, machine, &subjects, jobs, progress).await?;
    progress.step(format!("running {} emulators", subjects.len()));
    let rows = crate::emutest::run_all(&subjects, &tools, config, progress).await;
    report(&rows, json)?;
    Ok(exit(&rows))
}

/// Prints the table (or JSON) on stdout.
pub(crate) fn report(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        crate::ui::output::out_json(&serde_json::json!({ "emulators": rows }))?;
    } else {
        crate::ui::output::out(&crate::emutest::table(rows))?;
    }
    Ok(())
}

/// 0 when every emulator ran, 1 when one failed.
pub(crate) fn exit(rows: &[Row]) -> ExitCode {
    if rows
        .iter()
        .any(|r| matches!(r.status, Status::Failed { .. }))
    {
        ExitCode::from(FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
