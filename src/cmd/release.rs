//! `qus release`: every image of the plan in the registry, then the manifest lists
//! (`qus publish` writes the lists alone).
//!
//! The images are data qus computes (`crate::image`), so the release needs no daemon: HEAD
//! every tag first; an image whose tag already names the manifest this run would write
//! (known from the cache's memo, or computed) is left alone; the rest have their missing
//! blobs uploaded and their manifest PUT. Lists are written only over manifests known
//! present, and only when their bytes differ from what the tag holds, so a run with
//! nothing changed sends HEADs only, and a failure part-way leaves the previous lists in
//! place for the next run to finish.

use crate::attest::attach;
use crate::config::Config;
use crate::image::lists::{list_blobs, lists};
use crate::image::{self, Image, Store};
use crate::options::{BuildOptions, Builder, RegistryOptions, SupplyOptions};
use crate::outcome::{
    BuiltImage, ImageStatus, ListStatus, PushStatus, PushedImage, Summary, UploadStats,
};
use crate::packages::SourceOptions;
use crate::plan::{ImagePlan, Plan};
use crate::sink::registry::{put_lists, Registry, Uploads, HEADS_IN_FLIGHT};
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use futures::StreamExt;
use qus_registry::{
    Auth, Client, ClientConfig, CredentialSource, Descriptor, DockerConfigSource, ProtocolPolicy,
    Reference,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Which images' emulators a release runs before pushing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TestScope {
    /// Those of this machine's own host (the ones it runs without an emulator).
    Native,
    /// Every host's, foreign ones under this machine's emulators.
    All,
    /// None.
    None,
}

/// The switches of `qus release` that are not stage options.
#[derive(Debug, Clone)]
pub(crate) struct ReleaseFlags {
    /// Push only; the lists are another job's.
    pub skip_lists: bool,
    /// Also write every image and list into this OCI image layout.
    pub oci_layout: Option<PathBuf>,
    /// Write the layout only: no repository was named (`--oci-layout` without `--repo`,
    /// `QUS_REPO` or a config `repo` with a registry host), so no registry is contacted.
    pub layout_only: bool,
    /// The summary as JSON on stdout.
    pub json: bool,
    /// Which emulators run before the push.
    pub test: TestScope,
    /// The machine this runs on (`None`: not a qus host, nothing can be run).
    pub machine: Option<crate::arch::Host>,
    /// Emulators run at once.
    pub test_jobs: usize,
    /// SBOMs, provenances and signatures.
    pub supply: SupplyOptions,
    /// Repositories this run released to already: a registry holding one of them mounts
    /// the blobs from there instead of receiving them again.
    pub released: Vec<Reference>,
}

/// A client for the plan's repository, with credentials resolved and checked. The
/// credentials' source (the flags, or the Docker config and its helpers) stays with the
/// client, which asks it again after a 401 and when a push phase starts.
pub(crate) async fn connect_registry(
    plan: &Plan,
    opts: &RegistryOptions,
    progress: &Progress,
) -> anyhow::Result<Registry> {
    let repo = Reference::parse(&format!("{}:latest", plan.repo))
        .with_context(|| format!("--repo {}", plan.repo))?;
    let registry = repo.registry().to_string();
    let source: Arc<dyn CredentialSource> = match &opts.credentials {
        Some((user, password)) => Arc::new(Auth::basic(user.clone(), password.clone())),
        None => Arc::new(DockerConfigSource::new(opts.docker_config.clone())),
    };
    let config = ClientConfig {
        protocol: ProtocolPolicy {
            insecure: opts.insecure.clone(),
            ..ProtocolPolicy::default()
        },
        certs_dir: opts.certs_dir.clone(),
        timeouts: opts.timeouts,
        on_wait: Some({
            let progress = progress.clone();
            qus_registry::WaitNotice::new(move |line| progress.warn(line))
        }),
        ..ClientConfig::default()
    };
    let client = Client::new(config)?.with_credentials(&registry, source)?;
    // Fail on a wrong password or a missing registry now, not after an hour of building.
    client
        .ping(&repo)
        .await
        .with_context(|| format!("registry {registry}"))?;
    Ok(Registry {
        client,
        repo,
        mount_from: None,
    })
}

/// `qus release`: to the plan's registry, to each of several (one plan per `--repo`), or
/// with `flags.layout_only` to the OCI layout alone.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn release_cmd(
    plans: &[Plan],
    config: &Config,
    src: &SourceOptions,
    opts: &BuildOptions,
    registry: &RegistryOptions,
    flags: ReleaseFlags,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    if flags.layout_only && opts.builder == Builder::Dockerfile {
        return Err(crate::exit::usage(
            "--builder dockerfile pushes through the daemon: give --repo (or QUS_REPO)",
        ));
    }
    let [plan] = plans else {
        return release_each(plans, config, src, opts, registry, flags, progress).await;
    };
    let (summary, result) =
        release_one(plan, config, src, opts, registry, &flags, progress).await?;
    finish(summary, result, flags.json, progress)
}

/// One release to several registries, one after the other: the first computes the blobs
/// (the cache keeps them), each registry then gets what it lacks, its lists, SBOMs,
/// provenances and signatures; a registry that fails does not stop the others. A summary
/// line per registry, `--json` as `{"registries": [{"repo", "summary"}]}`; exit 1 naming
/// each registry that failed.
async fn release_each(
    plans: &[Plan],
    config: &Config,
    src: &SourceOptions,
    opts: &BuildOptions,
    registry: &RegistryOptions,
    mut flags: ReleaseFlags,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let json = flags.json;
    let mut outcomes: Vec<(String, Summary, Option<String>)> = Vec::new();
    for (n, plan) in plans.iter().enumerate() {
        progress.step(format!(
            "registry {} of {}: {}",
            n + 1,
            plans.len(),
            plan.repo
        ));
        let (mut summary, result) =
            match release_one(plan, config, src, opts, registry, &flags, progress).await {
                Ok(done) => done,
                Err(e) => (Summary::default(), Err(e)),
            };
        // The layout holds the same images whatever the registry: written once.
        flags.oci_layout = None;
        if result.is_ok() {
            if let Ok(r) = Reference::parse(&format!("{}:latest", plan.repo)) {
                flags.released.push(r);
            }
        }
        let failed = result
            .err()
            .map(|e| qus_registry::redact_userinfo(&format!("{e:#}")).into_owned());
        if let Some(why) = &failed {
            progress.error(format!("{}: {why}", plan.repo));
            summary.failed = Some(why.clone());
        }
        for line in summary.shortfall.lines("images") {
            progress.error(line);
        }
        report(&summary, false, progress)?;
        outcomes.push((plan.repo.clone(), summary, failed));
    }
    for (repo, s, failed) in &outcomes {
        progress.step(match failed {
            None => format!(
                "{repo}: done ({} images, {} lists)",
                s.pushed.len(),
                s.lists.len()
            ),
            Some(why) => format!("{repo}: FAILED: {why}"),
        });
    }
    if json {
        let registries: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(repo, s, _)| serde_json::json!({ "repo": repo, "summary": s }))
            .collect();
        crate::ui::output::out_json(&serde_json::json!({ "registries": registries }))?;
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, _, f)| f.is_some())
        .map(|(repo, _, _)| repo.as_str())
        .collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    Err(anyhow!(
        "{} of {} registries failed: {} (the others are complete)",
        failed.len(),
        outcomes.len(),
        failed.join(", ")
    ))
}

/// A release to `plan`'s registry (or the layout alone): the summary and how it ended;
/// `Err` when the registry could not even be reached.
async fn release_one(
    plan: &Plan,
    config: &Config,
    src: &SourceOptions,
    opts: &BuildOptions,
    registry: &RegistryOptions,
    flags: &ReleaseFlags,
    progress: &Progress,
) -> anyhow::Result<(Summary, anyhow::Result<()>)> {
    let reg = if flags.layout_only {
        progress.step(format!(
            "no --repo: writing the OCI layout {} only; no registry is contacted",
            flags
                .oci_layout
                .as_ref()
                .map_or(String::new(), |d| d.display().to_string())
        ));
        None
    } else {
        let mut reg = connect_registry(plan, registry, progress).await?;
        reg.mount_from = flags
            .released
            .iter()
            .find(|r| r.registry() == reg.repo.registry())
            .cloned();
        Some(reg)
    };
    let mut summary = Summary::default();
    let result = match (opts.builder, &reg) {
        (Builder::Dockerfile, Some(reg)) => {
            crate::classic::release(
                plan,
                src,
                opts,
                reg,
                flags.skip_lists,
                &mut summary,
                progress,
            )
            .await
        }
        _ => {
            release(
                plan,
                config,
                src,
                opts,
                reg.as_ref(),
                flags,
                &mut summary,
                progress,
            )
            .await
        }
    };
    // What is in the registry now gets its SBOM, provenance and signatures, whichever
    // builder made it; a layout alone gets none (they are registry artifacts).
    let result = match (result, &reg) {
        (Ok(()), Some(reg)) => supply(plan, reg, &flags.supply, &mut summary, progress).await,
        (Ok(()), None) => {
            if flags.supply.sign_key.is_some() {
                progress.warn("no --repo: nothing is signed (signatures go to a registry)");
            }
            Ok(())
        }
        (e, _) => e,
    };
    let result = result.and_then(|()| summary.shortfall.error("images").map_or(Ok(()), Err));
    Ok((summary, result))
}

/// Prints what was left out, the summary and (with `--json`) the summary as JSON; the
/// exit status of `result`.
pub(super) fn finish(
    mut summary: Summary,
    result: anyhow::Result<()>,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    if let Err(e) = &result {
        summary.failed = Some(qus_registry::redact_userinfo(&format!("{e:#}")).into_owned());
    }
    for line in summary.shortfall.lines("images") {
        progress.error(line);
    }
    report(&summary, json, progress)?;
    result.map(|()| ExitCode::SUCCESS)
}

/// Attaches the SBOM and provenance of every per-host image the release left in the
/// registry, then signs every image and list when a key is given.
async fn supply(
    plan: &Plan,
    reg: &Registry,
    opts: &SupplyOptions,
    summary: &mut Summary,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mut images: Vec<(&ImagePlan, Descriptor)> = Vec::new();
    for p in &summary.pushed {
        let Some(img) = plan.images.iter().find(|i| i.reference == p.reference) else {
            continue;
        };
        let digest = qus_registry::Digest::parse(&p.digest)
            .with_context(|| format!("{}: digest {}", p.reference, p.digest))?;
        images.push((img, Descriptor::new(&p.media_type, p.size, digest)));
    }
    let mut report = std::mem::take(&mut summary.supply);
    let attached = attach::attest(reg, plan, &images, &opts.context, &mut report, progress).await;
    summary.supply = report;
    attached?;
    let Some(key) = &opts.sign_key else {
        return Ok(());
    };
    let mut targets: Vec<(String, qus_registry::Digest)> = images
        .iter()
        .map(|(i, d)| (i.reference.clone(), d.digest.clone()))
        .collect();
    for l in &summary.lists {
        let digest = qus_registry::Digest::parse(&l.digest)
            .with_context(|| format!("{}: digest {}", l.reference, l.digest))?;
        targets.push((l.reference.clone(), digest));
    }
    let mut report = std::mem::take(&mut summary.supply);
    let signed = attach::sign_all(reg, key, &targets, &mut report, progress).await;
    summary.supply = report;
    signed
}

/// The release of images qus writes itself.
#[allow(clippy::too_many_arguments)]
async fn release(
    plan: &Plan,
    config: &Config,
    src: &SourceOptions,
    opts: &BuildOptions,
    reg: Option<&Registry>,
    flags: &ReleaseFlags,
    summary: &mut Summary,
    progress: &Progress,
) -> anyhow::Result<()> {
    let store = Store::open(&src.cache)?;
    let media = opts.media;
    for line in plan.omissions() {
        progress.step(line);
    }

    // What the registry holds, and what this run would write where the cache knows it.
    let tags: Vec<String> = plan.images.iter().map(|i| i.tag.clone()).collect();
    let heads = match reg {
        Some(reg) => reg.heads(&tags, HEADS_IN_FLIGHT).await?,
        None => HashMap::new(),
    };
    let mut present: HashMap<String, Descriptor> = HashMap::new();
    let mut todo: Vec<&ImagePlan> = Vec::new();
    for img in &plan.images {
        let memo = store.image(&image::memo_key(img, media));
        match (memo, heads.get(&img.tag)) {
            (Some(m), Some(h)) if !opts.force && m.digest == h.digest => {
                summary
                    .images
                    .push(BuiltImage::unchanged(img, m.config.to_string()));
                present.insert(img.tag.clone(), h.clone());
            }
            _ => todo.push(img),
        }
    }
    // A layout needs every image's blobs, not only the ones the registry lacks.
    let compute: Vec<&ImagePlan> = if flags.oci_layout.is_some() {
        plan.images.iter().collect()
    } else {
        todo.clone()
    };
    if reg.is_some() {
        progress.step(format!(
            "{} of {} images already in the registry as this run would write them",
            present.len(),
            plan.images.len()
        ));
    }
    // A package that cannot be used leaves out the images that need it, and the lists
    // over those; the rest is released.
    let (inputs, made) = if compute.is_empty() {
        (Default::default(), plan.clone())
    } else {
        let (inputs, narrowed, shortfall) =
            crate::packages::prepare_narrowed(plan, &compute, src, progress).await?;
        summary.shortfall = shortfall;
        (inputs, narrowed.plan)
    };
    let compute: Vec<&ImagePlan> = compute
        .into_iter()
        .filter(|i| made.image(&i.tag).is_some())
        .collect();
    let images = if compute.is_empty() {
        Vec::new()
    } else {
        image::write(&made, &compute, &inputs, &store, media, src.cpus, progress).await?
    };
    // An image computed now that the registry already holds exactly is unchanged: the
    // run's cache was empty, not the image new.
    for img in &images {
        if todo.iter().any(|t| t.tag == img.tag) {
            let mut b = BuiltImage::written(img);
            if heads.get(&img.tag).map(|h| &h.digest) == Some(&img.descriptor.digest) {
                b.status = ImageStatus::Unchanged;
            }
            summary.images.push(b);
        }
    }
    summary.images = crate::outcome::ordered(plan, std::mem::take(&mut summary.images));

    // Push what the registry does not have exactly, hosts side by side.
    let uploads = Uploads::default();
    let (mut to_push, there): (Vec<&Image>, Vec<&Image>) = images
        .iter()
        .filter(|i| todo.iter().any(|t| t.tag == i.tag))
        .partition(|i| heads.get(&i.tag).map(|h| &h.digest) != Some(&i.descriptor.digest));
    for img in there {
        present.insert(img.tag.clone(), img.descriptor.clone());
    }

    // The emulators about to be pushed run a guest program first (the very files the
    // layers are made of); an image holding one that fails is not pushed.
    summary.tests = test(plan, config, &to_push, &inputs, flags, src, progress).await?;
    let failed = failed_images(&summary.tests);
    to_push.retain(|i| !failed.contains_key(&i.tag));
    let Some(reg) = reg else {
        // The layout is the only destination, and it gets every image.
        if let Some(e) = not_pushed(&failed) {
            return Err(e);
        }
        let known = images
            .iter()
            .map(|i| (i.tag.clone(), i.descriptor.clone()))
            .collect();
        let lists = lists(&made, &known, media)?;
        return write_layout(flags, &images, &lists, &store, &made, summary, progress).await;
    };
    // Credentials asked for now: computing and testing the images may have outlived a
    // helper's token.
    if !to_push.is_empty() {
        reg.refresh_credentials(progress).await;
    }
    let total = to_push.len();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let pushed: Vec<anyhow::Result<&Image>> = futures::stream::iter(to_push)
        .map(|img| {
            let (store, uploads, counter) = (&store, &uploads, &counter);
            async move {
                let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                progress.step(format!("[{n}/{total}] pushing {}", img.reference));
                reg.push(img, store, uploads)
                    .await
                    .with_context(|| format!("pushing {}", img.reference))?;
                anyhow::Ok(img)
            }
        })
        .buffer_unordered(opts.jobs.max(1))
        .collect()
        .await;
    let mut written: HashMap<String, Descriptor> = HashMap::new();
    let mut first_error = None;
    for r in pushed {
        match r {
            Ok(img) => {
                written.insert(img.tag.clone(), img.descriptor.clone());
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    summary.uploads = UploadStats {
        blobs: uploads.sent.load(Ordering::Relaxed),
        bytes: uploads.bytes.load(Ordering::Relaxed),
        present: uploads.present.load(Ordering::Relaxed),
        mounted: uploads.mounted.load(Ordering::Relaxed),
    };
    for img in &plan.images {
        let (d, status) = match (written.get(&img.tag), present.get(&img.tag)) {
            (Some(d), _) => (d, PushStatus::Pushed),
            (None, Some(d)) => (d, PushStatus::Present),
            (None, None) => continue,
        };
        summary.pushed.push(PushedImage {
            reference: img.reference.clone(),
            digest: d.digest.to_string(),
            size: d.size,
            media_type: d.media_type.clone(),
            status,
        });
    }
    if let Some(e) = first_error {
        return Err(e);
    }

    if let Some(e) = not_pushed(&failed) {
        return Err(e);
    }
    let mut known = present;
    known.extend(written);
    let lists = lists(&made, &known, media)?;
    write_layout(flags, &images, &lists, &store, &made, summary, progress).await?;
    if flags.skip_lists {
        return Ok(());
    }
    reg.refresh_credentials(progress).await;
    put_lists(reg, &made, &lists, summary, progress).await
}

/// Why no list is published when an emulator failed its test (`None`: none failed).
fn not_pushed(failed: &HashMap<String, String>) -> Option<anyhow::Error> {
    if failed.is_empty() {
        return None;
    }
    let mut names: Vec<String> = failed
        .iter()
        .map(|(tag, why)| format!("{tag} ({why})"))
        .collect();
    names.sort();
    Some(anyhow!(
        "{} images were not pushed, and no list was published, because an emulator in \
         them failed its test: {}",
        names.len(),
        names.join("; ")
    ))
}

/// Writes `images` and `lists` into `--oci-layout`'s folder, when one is given.
async fn write_layout(
    flags: &ReleaseFlags,
    images: &[Image],
    lists: &[(&crate::plan::ManifestPlan, qus_registry::Index)],
    store: &Store,
    made: &Plan,
    summary: &mut Summary,
    progress: &Progress,
) -> anyhow::Result<()> {
    let Some(dir) = &flags.oci_layout else {
        return Ok(());
    };
    let bytes = list_blobs(lists);
    let (dir, images, store) = (dir.clone(), images.to_vec(), store.clone());
    let shown = dir.display().to_string();
    let mut report = tokio::task::spawn_blocking(move || {
        crate::sink::layout::write(&dir, &images, &bytes, &store)
    })
    .await??;
    progress.step(format!(
        "OCI layout {shown}: {} tags, {} blobs written, {} already there",
        report.tags, report.written, report.present
    ));
    let kept = std::mem::take(&mut report.lists_kept);
    summary.shortfall.kept_lists(made, "layout", kept);
    summary.layout = Some(report);
    Ok(())
}

/// Runs the emulators of `images` that `flags.test` covers; returns a row per emulator.
async fn test(
    plan: &Plan,
    config: &Config,
    images: &[&Image],
    inputs: &crate::packages::Extracted,
    flags: &ReleaseFlags,
    src: &SourceOptions,
    progress: &Progress,
) -> anyhow::Result<Vec<crate::emutest::Row>> {
    use crate::emutest::{Status, Subject};
    let Some(machine) = flags.machine else {
        if flags.test != TestScope::None {
            progress.warn("this machine is not a qus host: the emulators are not tested");
        }
        return Ok(Vec::new());
    };
    let covered = |h: crate::arch::Host| match flags.test {
        TestScope::None => false,
        TestScope::Native => machine.runs(h),
        TestScope::All => true,
    };
    let mut subjects: Vec<Subject> = Vec::new();
    for img in images {
        let Some(p) = plan.image(&img.tag) else {
            continue;
        };
        if !covered(p.host) {
            continue;
        }
        for t in &p.targets {
            if let Some(s) = subjects
                .iter_mut()
                .find(|s| s.host == p.host && s.source == p.source && &s.target == t)
            {
                s.images.push(p.tag.clone());
                continue;
            }
            let file = inputs
                .emulators
                .get(&(p.source.clone(), p.host))
                .and_then(|m| m.get(t))
                .ok_or_else(|| anyhow!("{}: qemu-{t} was not extracted", p.tag))?;
            subjects.push(Subject {
                host: p.host,
                source: p.source.clone(),
                qemu_version: p.qemu_version.clone(),
                target: t.clone(),
                path: file.path.clone(),
                images: vec![p.tag.clone()],
            });
        }
    }
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    let tools =
        crate::emutest::tools(config, src, machine, &subjects, flags.test_jobs, progress).await?;
    progress.step(format!(
        "testing {} emulators before the push ({})",
        subjects.len(),
        match flags.test {
            TestScope::All => "every host".to_string(),
            _ => format!("this machine's host, {machine}"),
        }
    ));
    let rows = crate::emutest::run_all(&subjects, &tools, config, progress).await;
    for r in &rows {
        if let Status::Failed { reason } = &r.status {
            progress.warn(format!(
                "qemu-{} of {} ({}) failed: {reason}",
                r.target, r.host, r.source
            ));
        }
    }
    let count = |f: fn(&Status) -> bool| rows.iter().filter(|r| f(&r.status)).count();
    let ran = count(|s| matches!(s, Status::Ran { .. }));
    let version = count(|s| matches!(s, Status::VersionOnly { .. }));
    let known = count(|s| matches!(s, Status::KnownFailure { .. }));
    progress.step(format!(
        "{} of {} emulators passed their test ({ran} ran a guest program, {version} printed their version){}",
        ran + version,
        rows.len(),
        if known > 0 { format!("; {known} failed as the config's known_failures say") } else { String::new() }
    ));
    Ok(rows)
}

/// The images holding an emulator that failed its test (they are not pushed), with why.
fn failed_images(rows: &[crate::emutest::Row]) -> HashMap<String, String> {
    let mut failed = HashMap::new();
    for r in rows {
        if let crate::emutest::Status::Failed { reason } = &r.status {
            for tag in &r.images {
                failed.insert(tag.clone(), format!("qemu-{}: {reason}", r.target));
            }
        }
    }
    failed
}

fn report(s: &Summary, json: bool, progress: &Progress) -> anyhow::Result<()> {
    let count = |st: PushStatus| s.pushed.iter().filter(|p| p.status == st).count();
    let written = s
        .lists
        .iter()
        .filter(|l| l.status == ListStatus::Written)
        .count();
    progress.step(format!(
        "summary: {} images ({} built), {} pushed, {} already present, {} blobs ({:.1} MB) \
         uploaded{}, {} lists written, {} unchanged{}",
        s.images.len(),
        s.images
            .iter()
            .filter(|i| i.status == ImageStatus::Built)
            .count(),
        count(PushStatus::Pushed),
        count(PushStatus::Present),
        s.uploads.blobs,
        s.uploads.bytes as f64 / 1e6,
        match s.uploads.mounted {
            0 => String::new(),
            n => format!(", {n} mounted from a repository released to before"),
        },
        written,
        s.lists.len() - written,
        s.failed
            .as_ref()
            .map(|f| format!("; FAILED: {f}"))
            .unwrap_or_default()
    ));
    if json {
        crate::ui::output::out_json(s)?;
    }
    Ok(())
}
