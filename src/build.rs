//! `qus build`: the plan's images, from pinned packages into the local daemon.
//!
//! In phases, so that bad input stops everything before the first image is made and no tag
//! is ever left half-written: (1) ask the daemon which images it already has with the same
//! inputs, (2) fetch and verify every package the rest need and extract their emulators and
//! busybox, (3) compute the images (`crate::image`), (4) load them into the daemon in one
//! stream and check that each tag names the config qus computed. `--builder dockerfile`
//! builds them with the classic builder instead (`crate::classic`).

use crate::arch::Host;
use crate::docker::Daemon;
use crate::image::{self, Image, Store};
use crate::options::{BuildOptions, Builder, SourceOptions};
use crate::plan::{ImagePlan, Plan};
use crate::progress::Progress;
use serde::Serialize;
use std::process::ExitCode;

/// What happened to one image.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BuiltImage {
    /// `repo:tag`.
    pub reference: String,
    /// Image ID (config digest).
    pub id: String,
    /// Host.
    pub host: Host,
    /// Platform.
    pub platform: String,
    /// Whether it was built now.
    pub status: ImageStatus,
    /// Layer diffIDs (empty when the image was not computed this run).
    pub layers: Vec<String>,
}

/// What happened to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ImageStatus {
    /// Made now.
    Built,
    /// Already where it was going, with the same inputs.
    Unchanged,
}

impl BuiltImage {
    /// An image that was already there.
    pub(crate) fn unchanged(img: &ImagePlan, id: String) -> BuiltImage {
        BuiltImage {
            reference: img.reference.clone(),
            id,
            host: img.host,
            platform: img.platform.to_string(),
            status: ImageStatus::Unchanged,
            layers: Vec::new(),
        }
    }

    /// An image computed this run.
    pub(crate) fn written(img: &Image) -> BuiltImage {
        BuiltImage {
            reference: img.reference.clone(),
            id: img.config_digest.to_string(),
            host: img.host,
            platform: img.platform.to_string(),
            status: ImageStatus::Built,
            layers: img
                .layers
                .iter()
                .map(|l| l.memo.diff_id.to_string())
                .collect(),
        }
    }
}

/// `qus build`.
pub(crate) async fn build_cmd(
    plan: &Plan,
    src: &SourceOptions,
    opts: &BuildOptions,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect().await?;
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
    for s in &plan.skipped {
        progress.step(format!("skipping {s}"));
    }
    let mut done: Vec<BuiltImage> = Vec::new();
    let mut todo: Vec<&ImagePlan> = Vec::new();
    for img in &plan.images {
        let current = if opts.force {
            None
        } else {
            daemon.inspect(&img.reference).await?
        };
        match current {
            Some(info)
                if info.labels.get("qus.inputs") == Some(&img.inputs)
                    && info.platform == img.platform =>
            {
                done.push(BuiltImage::unchanged(img, info.id));
            }
            _ => todo.push(img),
        }
    }
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
        let lists = crate::release::layout_lists(plan, &images, opts.media)?;
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

/// `done` in plan order.
pub(crate) fn ordered(plan: &Plan, mut done: Vec<BuiltImage>) -> Vec<BuiltImage> {
    let pos = |b: &BuiltImage| {
        plan.images
            .iter()
            .position(|i| i.reference == b.reference)
            .unwrap_or(usize::MAX)
    };
    done.sort_by_key(pos);
    done
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
