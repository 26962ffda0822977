//! `qus build`: the plan's images, from pinned packages into the local daemon.
//!
//! In phases, so that bad input stops everything before the first image is made and no tag
//! is ever left half-written: (1) ask the daemon which images it already has with the same
//! inputs, (2) fetch and verify every package the rest need and extract their emulators and
//! busybox, (3) compute the images (`crate::image`), (4) load them into the daemon in one
//! stream and check that each tag names the config qus computed. `--builder dockerfile`
//! builds them with the classic builder instead (`crate::classic`).

use crate::docker::Daemon;
use crate::image::{self, Image, Store};
use crate::options::{BuildOptions, Builder, SourceOptions};
use crate::outcome::{ordered, BuiltImage, ImageStatus};
use crate::plan::{ImagePlan, Plan};
use crate::progress::Progress;
use std::process::ExitCode;

/// `qus build`.
pub(crate) async fn build_cmd(
    plan: &Plan,
    src: &SourceOptions,
    opts: &BuildOptions,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect(&opts.engine).await?;
    let built = match opts.builder {
        Builder::Qus => build(&daemon, plan, src, opts, progress).await?,
        Builder::Dockerfile => crate::classic::build(&daemon, plan, src, opts, progress).await?,
    };
    report(&built, json, progress)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes every image of `plan` the daemon does not already have with the same inputs
/// (and, with `--oci-layout`, every image and list into the layout).
async fn build(
    daemon: &Daemon,
    plan: &Plan,
    src: &SourceOptions,
    opts: &BuildOptions,
    progress: &Progress,
) -> anyhow::Result<Vec<BuiltImage>> {
    for line in plan.omissions() {
        progress.step(line);
    }
    let (mut done, todo) = crate::sink::daemon::in_daemon(daemon, plan, opts.force).await?;
    let compute: Vec<&ImagePlan> = if opts.oci_layout.is_some() {
        plan.images.iter().collect()
    } else {
        todo.clone()
    };
    if compute.is_empty() {
        progress.step("every image is up to date");
        return Ok(ordered(plan, done));
    }
    let store = Store::open(&src.cache)?;
    let inputs = crate::packages::prepare(&plan.packages_for(&compute), src, progress).await?;
    let images = image::write(plan, &compute, &inputs, &store, opts.media, progress).await?;
    if let Some(dir) = &opts.oci_layout {
        let lists = crate::lists::layout_lists(plan, &images, opts.media)?;
        let (d, imgs, st) = (dir.clone(), images.clone(), store.clone());
        let report =
            tokio::task::spawn_blocking(move || crate::sink::layout::write(&d, &imgs, &lists, &st))
                .await??;
        progress.step(format!(
            "OCI layout {}: {} tags, {} blobs written, {} already there",
            dir.display(),
            report.tags,
            report.written,
            report.present
        ));
    }
    let load: Vec<Image> = images
        .into_iter()
        .filter(|i| todo.iter().any(|t| t.tag == i.tag))
        .collect();
    let loaded = crate::sink::daemon::load(daemon, load, progress).await?;
    done.extend(loaded.iter().map(BuiltImage::written));
    Ok(ordered(plan, done))
}

/// Prints the summary (stderr) and, with `--json`, the images (stdout).
pub(crate) fn report(built: &[BuiltImage], json: bool, progress: &Progress) -> anyhow::Result<()> {
    let n = built
        .iter()
        .filter(|b| b.status == ImageStatus::Built)
        .count();
    progress.step(format!(
        "{} images: {n} built, {} unchanged",
        built.len(),
        built.len() - n
    ));
    if json {
        crate::output::out_json(&serde_json::json!({ "images": built }))?;
    }
    Ok(())
}
