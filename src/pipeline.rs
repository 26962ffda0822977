//! `qus build`: the plan's images, from pinned packages into the local daemon.
//!
//! In phases, so that bad input stops everything before the first build and no tag is ever
//! left half-built: (1) ask the daemon which images are already there with the same inputs,
//! (2) fetch and verify every package the rest need, (3) extract every emulator and busybox,
//! (4) build, each image as soon as its base is there. The builder only tags an image
//! when its build succeeded.

use crate::arch::Host;
use crate::assets::{asset_name, write_assets, AssetSpec};
use crate::cli::{AssetsArgs, BuildArgs, SourceArgs};
use crate::config::Distro;
use crate::context::{self, LayerFiles};
use crate::docker::Daemon;
use crate::entrypoint;
use crate::plan::{ImagePlan, PackagePlan, Plan, Role};
use crate::progress::Progress;
use anyhow::{anyhow, Context as _};
use futures::StreamExt;
use qus_source::{Cache, EmulatorRequest, FetchOptions, Fetcher, FileRequest, Limits, Origin};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// What happened to one image.
#[derive(Debug, Clone, Serialize)]
pub struct BuiltImage {
    /// `repo:tag`.
    pub reference: String,
    /// Image ID (config digest).
    pub id: String,
    /// Host.
    pub host: Host,
    /// Platform.
    pub platform: String,
    /// `built`, or `unchanged` when the daemon had it with the same inputs.
    pub status: &'static str,
    /// Layer diffIDs.
    pub layers: Vec<String>,
}

/// The files extracted for a plan, by package.
#[derive(Debug, Default)]
pub struct Extracted {
    /// busybox by host.
    pub busybox: BTreeMap<Host, PathBuf>,
    /// Emulators by (source, host), then target.
    pub emulators: BTreeMap<(String, Host), BTreeMap<String, PathBuf>>,
}

/// `qus build`.
pub async fn build_cmd(
    plan: &Plan,
    a: &BuildArgs,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect().await?;
    let built = build_all(&daemon, plan, a, progress).await?;
    report(&built, a.json, progress)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the summary (stderr) and, with `--json`, the images (stdout).
pub fn report(built: &[BuiltImage], json: bool, progress: &Progress) -> anyhow::Result<()> {
    let n = built.iter().filter(|b| b.status == "built").count();
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
pub async fn build_all<'a>(
    daemon: &Daemon,
    plan: &'a Plan,
    a: &BuildArgs,
    progress: &Progress,
) -> anyhow::Result<Vec<BuiltImage>> {
    for s in &plan.skipped {
        progress.step(format!("skipping {s}"));
    }
    // Phase 1: what is already built.
    let mut todo: Vec<&'a ImagePlan> = Vec::new();
    let mut done: BTreeMap<String, BuiltImage> = BTreeMap::new();
    for img in &plan.images {
        let current = if a.force {
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
                        status: "unchanged",
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
    let inputs = prepare(&needed, &a.source, progress).await?;

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
                .build(img, &dockerfile, &files, plan.epoch, a.no_cache, progress)
                .await?;
            anyhow::Ok(BuiltImage {
                reference: img.reference.clone(),
                id: info.id,
                host: img.host,
                platform: img.platform.to_string(),
                status: "built",
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
        while running.len() < a.jobs.max(1) {
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

/// Where the packages of `distro` come from, as the flags and environment say: `--debs DIR`
/// for every distro, else the distro's mirror.
pub fn origin(src: &SourceArgs, distro: Distro) -> anyhow::Result<Origin> {
    if let Some(dir) = &src.debs {
        if !dir.is_dir() {
            return Err(anyhow!("--debs {}: not a folder", dir.display()));
        }
        return Ok(Origin::local_dir(dir.clone()));
    }
    let url = match distro {
        Distro::Debian => {
            let env = std::env::var("QUS_MIRROR").ok();
            crate::mirror::resolve(
                src.mirror.as_deref(),
                env.as_deref(),
                std::path::Path::new("/"),
            )
            .ok_or_else(|| {
                anyhow!(
                    "no Debian mirror configured: pass --mirror URL, set QUS_MIRROR, \
                     or give the packages with --debs DIR"
                )
            })?
        }
        // Fedora's mirrors are never in apt's sources: only the flag or the environment.
        Distro::Fedora => src
            .fedora_mirror
            .clone()
            .or_else(|| std::env::var("QUS_FEDORA_MIRROR").ok())
            .filter(|m| !m.trim().is_empty())
            .ok_or_else(|| {
                anyhow!(
                    "no Fedora mirror configured: pass --fedora-mirror URL, set \
                     QUS_FEDORA_MIRROR, or give the packages with --debs DIR"
                )
            })?,
    };
    Ok(Origin::mirror(&url)?)
}

/// The cache folder named by the flags (or the default one).
fn cache_root(src: &SourceArgs) -> anyhow::Result<PathBuf> {
    Ok(match &src.cache {
        Some(c) => c.clone(),
        None => Cache::default_root()?,
    })
}

/// Opens the cache named by the flags (or the default one).
pub fn open_cache(src: &SourceArgs, progress: &Progress) -> anyhow::Result<Cache> {
    let p = progress.clone();
    Ok(Cache::open(cache_root(src)?)?.on_lock_wait(move |lock| {
        p.step(format!(
            "waiting for another qus using the cache ({})",
            lock.display()
        ))
    }))
}

/// Fetches, verifies and extracts `packages`; any failure stops everything before a build.
pub async fn prepare(
    packages: &[&PackagePlan],
    src: &SourceArgs,
    progress: &Progress,
) -> anyhow::Result<Extracted> {
    let mut origins: BTreeMap<Distro, Origin> = BTreeMap::new();
    for p in packages {
        if let std::collections::btree_map::Entry::Vacant(e) = origins.entry(p.distro) {
            e.insert(origin(src, p.distro)?);
        }
    }
    let cache = open_cache(src, progress)?;
    let fetcher = Fetcher::new(cache.clone(), FetchOptions::default())?;
    let mut verified = Vec::new();
    for p in packages {
        let pkg = qus_source::PackageRef::new(&p.file, &p.sha256, p.size)
            .with_context(|| format!("{} for {}", p.package, p.host))?;
        let bar = progress.bytes(pkg.file_name(), p.size);
        let v = fetcher
            .fetch(&pkg, &origins[&p.distro], &|x| bar.set(x.done))
            .await
            .with_context(|| format!("{} {} for {}", p.package, p.version, p.host))?;
        progress.step(format!(
            "{} {} ({:.1} MB, sha256 verified{})",
            if v.from_cache { "cached" } else { "fetched" },
            pkg.file_name(),
            v.size as f64 / 1e6,
            if v.from_cache { ", from cache" } else { "" }
        ));
        verified.push(((*p).clone(), v));
    }
    // Extraction is CPU-bound decompression (and each xz decoder holds its own buffers):
    // one blocking task per package, as many at once as there are CPUs.
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(cpus));
    let mut tasks = Vec::new();
    for (p, v) in verified {
        let cache = cache.clone();
        let slot = slots.clone().acquire_owned().await?;
        tasks.push(tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let limits = Limits::default();
            let what = format!("{} for {} ({})", p.file, p.host, p.host.debian());
            match &p.role {
                Role::Busybox => cache
                    .extract_file(&v, &FileRequest::busybox(p.host.debian()), &limits)
                    .map(|f| (p.clone(), vec![("busybox".to_string(), f.path)]))
                    .with_context(|| what.clone()),
                Role::Qemu { .. } => {
                    let req = EmulatorRequest::new(p.host.debian()).targets(p.targets.clone());
                    cache
                        .extract_emulators(&v, &req, &limits)
                        .map(|x| {
                            (
                                p.clone(),
                                x.emulators
                                    .into_iter()
                                    .map(|e| (e.target, e.path))
                                    .collect(),
                            )
                        })
                        .with_context(|| what.clone())
                }
            }
        }));
    }
    let mut out = Extracted::default();
    let mut first_err = None;
    for t in tasks {
        match t.await.context("extraction task panicked")? {
            Ok((p, files)) => match &p.role {
                Role::Busybox => {
                    if let Some((_, path)) = files.into_iter().next() {
                        out.busybox.insert(p.host, path);
                    }
                }
                Role::Qemu { source } => {
                    let m: BTreeMap<String, PathBuf> = files.into_iter().collect();
                    for t in &p.targets {
                        if !m.contains_key(t) {
                            return Err(anyhow!(
                                "{} for {}: qemu-{t} was requested but not extracted",
                                p.file,
                                p.host
                            ));
                        }
                    }
                    // Fedora: several rpms fill one host's emulators.
                    out.emulators
                        .entry((source.clone(), p.host))
                        .or_default()
                        .extend(m);
                }
            },
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    progress.step(format!(
        "extracted {} emulators and {} busybox",
        out.emulators.values().map(|m| m.len()).sum::<usize>(),
        out.busybox.len()
    ));
    Ok(out)
}

/// `qus assets`: one `qemu-T-static_H.tgz` per host × target of one source, and SHA256SUMS.
pub async fn assets_cmd(
    plan: &Plan,
    a: &AssetsArgs,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let qemu: Vec<&PackagePlan> = plan
        .packages
        .iter()
        .filter(|p| matches!(p.role, Role::Qemu { .. }))
        .collect();
    let sources: std::collections::BTreeSet<&str> = qemu
        .iter()
        .filter_map(|p| match &p.role {
            Role::Qemu { source } => Some(source.as_str()),
            Role::Busybox => None,
        })
        .collect();
    if sources.len() > 1 {
        return Err(anyhow!(
            "assets are per QEMU version: pick one with --sources (the plan has {})",
            sources.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let inputs = prepare(&qemu, &a.source, progress).await?;
    let mut specs = Vec::new();
    for ((_, host), emus) in &inputs.emulators {
        for (target, path) in emus {
            specs.push(AssetSpec {
                name: asset_name(host.name(), target),
                emulator: path.clone(),
                member: format!("qemu-{target}-static"),
            });
        }
    }
    let out = a.out.clone();
    let epoch = plan.epoch;
    let memo = cache_root(&a.source)?.join("assets");
    progress.step(format!(
        "writing {} assets to {}",
        specs.len(),
        a.out.display()
    ));
    let written =
        tokio::task::spawn_blocking(move || write_assets(&out, &specs, epoch, Some(&memo)))
            .await
            .context("writing assets")?
            .with_context(|| format!("writing assets to {}", a.out.display()))?;
    let unchanged = written.iter().filter(|x| x.status == "unchanged").count();
    progress.step(format!(
        "{} assets ({} written, {unchanged} unchanged) and SHA256SUMS in {}",
        written.len(),
        written.len() - unchanged,
        a.out.display()
    ));
    if a.json {
        crate::output::out_json(&serde_json::json!({ "assets": written }))?;
    }
    Ok(ExitCode::SUCCESS)
}
