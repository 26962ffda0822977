//! `qus build`: the plan's images, from pinned packages into the local daemon.
//!
//! In phases, so that bad input stops everything before the first build and no tag is ever
//! left half-built: (1) ask the daemon which images are already there with the same inputs,
//! (2) fetch and verify every package the rest need, (3) extract every emulator and busybox,
//! (4) build, each image as soon as its base is there. The builder only tags an image
//! when its build succeeded.

use crate::arch::Host;
use crate::context::{self, LayerFiles};
use crate::docker::Daemon;
use crate::entrypoint;
use crate::options::{BuildOptions, SourceOptions};
use crate::packages::{prepare, Extracted};
use crate::plan::{ImagePlan, PackagePlan, Plan, Role};
use crate::progress::Progress;
use anyhow::anyhow;
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
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
    /// Layer diffIDs.
    pub layers: Vec<String>,
}

/// What happened to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ImageStatus {
    /// Built now.
    Built,
    /// The daemon had it with the same inputs.
    Unchanged,
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
    let built = build_all(&daemon, plan, src, opts, progress).await?;
    report(&built, json, progress)?;
    Ok(ExitCode::SUCCESS)
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

/// Builds every image of `plan` that the daemon does not already have with the same inputs.
pub(crate) async fn build_all<'a>(
    daemon: &Daemon,
    plan: &'a Plan,
    src: &SourceOptions,
    opts: &BuildOptions,
    progress: &Progress,
) -> anyhow::Result<Vec<BuiltImage>> {
    for s in &plan.skipped {
        progress.step(format!("skipping {s}"));
    }
    // Phase 1: what is already built.
    let mut todo: Vec<&'a ImagePlan> = Vec::new();
    let mut done: BTreeMap<String, BuiltImage> = BTreeMap::new();
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
                done.insert(
                    img.tag.clone(),
                    BuiltImage {
                        reference: img.reference.clone(),
                        id: info.id,
                        host: img.host,
                        platform: img.platform.to_string(),
                        status: ImageStatus::Unchanged,
                        layers: info.layers,
                    },
                );
            }
            _ => todo.push(img),
        }
    }
    if todo.is_empty() {
        progress.step("every image is up to date");
        return Ok(ordered(plan, done));
    }

    // Phases 2 and 3: the packages those images need, verified and extracted.
    let needed: Vec<&PackagePlan> = plan
        .packages
        .iter()
        .filter(|p| {
            todo.iter().any(|i| {
                i.host == p.host
                    && match &p.role {
                        Role::Busybox => i.layers.contains(&crate::plan::Layer::Register),
                        Role::Qemu { source } => &i.source == source && !i.targets.is_empty(),
                    }
            })
        })
        .collect();
    let inputs = prepare(&needed, src, progress).await?;

    // Phase 4: build. The classic builder spends most of a build waiting (a container and a
    // commit per step, on a clock shared by every build), not computing, so builds overlap.
    let total = todo.len();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let build_one = |img: &'a ImagePlan| {
        let (inputs, counter) = (&inputs, &counter);
        async move {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.step(format!("[{n}/{total}] building {}", img.reference));
            let _spinner = progress.spinner(&format!("building {}", img.reference));
            let files = layer_files(img, inputs)?;
            let from = match &img.base {
                Some(tag) => plan
                    .image(tag)
                    .map(|b| b.reference.clone())
                    .ok_or_else(|| anyhow!("{}: base image {tag} is not in the plan", img.tag))?,
                None => "scratch".to_string(),
            };
            let dockerfile = context::dockerfile(img, &from, entrypoint::command())?;
            let info = daemon
                .build(
                    img,
                    &dockerfile,
                    &files,
                    plan.epoch,
                    opts.no_cache,
                    progress,
                )
                .await?;
            anyhow::Ok(BuiltImage {
                reference: img.reference.clone(),
                id: info.id,
                host: img.host,
                platform: img.platform.to_string(),
                status: ImageStatus::Built,
                layers: info.layers,
            })
        }
    };
    // An image starts as soon as its base is built (or was already there): `register` and
    // `pkg` at once, then each single-target image on its `register` and `full` on its
    // `pkg`, up to `--jobs` builds in flight.
    let mut waiting: Vec<&'a ImagePlan> = Vec::new();
    let mut ready: std::collections::VecDeque<&'a ImagePlan> = Default::default();
    for img in todo.iter().copied() {
        let base_pending = img
            .base
            .as_ref()
            .is_some_and(|b| todo.iter().any(|t| &t.tag == b));
        if base_pending {
            waiting.push(img);
        } else {
            ready.push_back(img);
        }
    }
    let mut running = futures::stream::FuturesUnordered::new();
    loop {
        while running.len() < opts.jobs.max(1) {
            let Some(img) = ready.pop_front() else { break };
            running.push(async move { (img, build_one(img).await) });
        }
        let Some((img, result)) = running.next().await else {
            break;
        };
        done.insert(img.tag.clone(), result?);
        let (now, later): (Vec<_>, Vec<_>) = waiting
            .into_iter()
            .partition(|w| w.base.as_deref() == Some(img.tag.as_str()));
        waiting = later;
        // Ahead of the other hosts' roots: they finish the chain this build started.
        for w in now.into_iter().rev() {
            ready.push_front(w);
        }
    }
    if let Some(w) = waiting.first() {
        return Err(anyhow!(
            "{}: its base {} was never built; this is a bug in the plan",
            w.tag,
            w.base.as_deref().unwrap_or("?")
        ));
    }
    Ok(ordered(plan, done))
}

fn ordered(plan: &Plan, mut done: BTreeMap<String, BuiltImage>) -> Vec<BuiltImage> {
    plan.images
        .iter()
        .filter_map(|i| done.remove(&i.tag))
        .collect()
}

fn layer_files(img: &ImagePlan, inputs: &Extracted) -> anyhow::Result<LayerFiles> {
    let mut files = LayerFiles::new();
    for layer in &img.layers {
        let entries = match layer {
            crate::plan::Layer::Register => {
                let bb = inputs
                    .busybox
                    .get(&img.host)
                    .ok_or_else(|| anyhow!("{}: no busybox extracted for {}", img.tag, img.host))?;
                entrypoint::layer(bb)
            }
            crate::plan::Layer::Emulator { target } => {
                let path = inputs
                    .emulators
                    .get(&(img.source.clone(), img.host))
                    .and_then(|m| m.get(target))
                    .ok_or_else(|| {
                        anyhow!(
                            "{}: qemu-{target} was not extracted for {}",
                            img.tag,
                            img.host
                        )
                    })?;
                entrypoint::emulator_layer(target, path)
            }
        };
        files.insert(layer.dir_name(), entries);
    }
    Ok(files)
}
