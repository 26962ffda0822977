//! `qus build`: the plan's images, from pinned packages into the local daemon.
//!
//! In phases, so that bad input stops everything before the first image is made and no tag
//! is ever left half-written: (1) ask the daemon which images it already has with the same
//! inputs, (2) fetch and verify every package the rest need and extract their emulators and
//! busybox, (3) compute the images (`crate::image`), (4) load them into the daemon in one
//! stream and check that each tag names the config qus computed. `--builder dockerfile`
//! builds them with the classic builder instead (`crate::classic`).
//!
//! A package that cannot be used (not served, not the pinned bytes, not a usable package)
//! leaves out only the images that need it (`crate::plan::narrow`): the rest are made, and
//! the run ends with exit 1 and a line per package (`crate::packages::shortfall`). An image
//! left out gets no tag, and a list over one is not written to the layout (one already
//! there stays).

use crate::engine::docker::Daemon;
use crate::image::{self, Image, Store};
use crate::options::{BuildOptions, Builder, LoadScope};
use crate::outcome::{ordered, Built, BuiltImage, ImageStatus};
use crate::packages::shortfall::Shortfall;
use crate::packages::{prepare_narrowed, SourceOptions};
use crate::plan::{ImagePlan, Plan};
use crate::ui::progress::Progress;
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
    match built.shortfall.error("images") {
        Some(e) => Err(e),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Writes every image of `plan` the daemon does not already have with the same inputs
/// (and, with `--oci-layout`, every image and list into the layout).
async fn build(
    daemon: &Daemon,
    plan: &Plan,
    src: &SourceOptions,
    opts: &BuildOptions,
    progress: &Progress,
) -> anyhow::Result<Built> {
    for line in plan.omissions() {
        progress.step(line);
    }
    let loaded = plan.images.iter().filter(|i| opts.load.loads(i.host));
    let (mut done, todo) = crate::sink::daemon::in_daemon(daemon, loaded, opts.force).await?;
    if let Some(line) = load_note(plan, &opts.load) {
        progress.step(line);
    }
    let compute: Vec<&ImagePlan> = if opts.oci_layout.is_some() {
        plan.images.iter().collect()
    } else {
        todo.clone()
    };
    if compute.is_empty() {
        progress.step("every image is up to date");
        return Ok(Built::up_to_date(plan, done));
    }
    let store = Store::open(&src.cache)?;
    let (inputs, narrowed, mut shortfall) = prepare_narrowed(plan, &compute, src, progress).await?;
    let made = narrowed.plan;
    let compute: Vec<&ImagePlan> = compute
        .into_iter()
        .filter(|i| made.image(&i.tag).is_some())
        .collect();
    let images = image::write(
        &made, &compute, &inputs, &store, opts.media, src.cpus, progress,
    )
    .await?;
    if let Some(dir) = &opts.oci_layout {
        let lists = crate::image::lists::layout_lists(&made, &images, opts.media)?;
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
        shortfall.kept_lists(&made, "layout", report.lists_kept);
    }
    let load: Vec<Image> = images
        .into_iter()
        .filter(|i| todo.iter().any(|t| t.tag == i.tag))
        .collect();
    let loaded = crate::sink::daemon::load(daemon, load, progress).await?;
    done.extend(loaded.iter().map(BuiltImage::written));
    Ok(Built {
        images: ordered(plan, done),
        made,
        shortfall,
    })
}

/// Pure: what `--load` leaves out of the daemon, said once before the work.
fn load_note(plan: &Plan, load: &LoadScope) -> Option<String> {
    let LoadScope::Hosts(hosts) = load else {
        return None;
    };
    let out = plan.images.iter().filter(|i| !load.loads(i.host)).count();
    if out == 0 {
        return None;
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name()).collect();
    Some(if names.is_empty() {
        format!("--load none: the {out} images go to the OCI layout only")
    } else {
        format!(
            "--load native: only the images of {} (this machine runs them without an \
             emulator) go into the daemon; the other {out} go to the OCI layout only \
             (--load all loads every one)",
            names.join(" and ")
        )
    })
}

/// Prints the summary and what was left out (stderr) and, with `--json`, the images and
/// the shortfall (stdout).
pub(crate) fn report(built: &Built, json: bool, progress: &Progress) -> anyhow::Result<()> {
    let images = &built.images;
    let n = images
        .iter()
        .filter(|b| b.status == ImageStatus::Built)
        .count();
    for line in built.shortfall.lines("images") {
        progress.error(line);
    }
    progress.step(format!(
        "{} images: {n} built, {} unchanged",
        images.len(),
        images.len() - n
    ));
    if json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            images: &'a [BuiltImage],
            #[serde(flatten)]
            shortfall: &'a Shortfall,
        }
        crate::ui::output::out_json(&Out {
            images,
            shortfall: &built.shortfall,
        })?;
    }
    Ok(())
}
