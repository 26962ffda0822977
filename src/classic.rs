//! The classic builder path (`--builder dockerfile`): each image's Dockerfile rendered from
//! `Dockerfile.template`, built by the daemon's classic builder through bollard, and pushed
//! by the daemon. Kept beside the images qus writes itself: a test holds the two to the same
//! diffIDs, platform, entrypoint and labels, and the benchmark measures one against the
//! other. The builder stamps the build time into every config, so only layer diffIDs are
//! reproducible this way.
//!
//! What is compared with the registry is what the daemon publishes, whichever image store it
//! uses: with the classic store (overlay2, fuse-overlayfs …) an image ID is its config digest;
//! with the containerd store (Docker ≥ 24 option, default on new installs) it is the manifest
//! or index digest; and either store records the digest a push or pull saw in RepoDigests.
//! So a tag is "already there" when its HEAD digest is the image ID or one of its
//! RepoDigests, and only otherwise is its manifest read (one GET) to compare the config
//! digest. After a push, the digest the daemon reports pushing must be what the tag holds.

use crate::arch::Host;
use crate::engine::build_context::{self, ContextFolders};
use crate::engine::docker::{Daemon, PushStats};
use crate::image::entrypoint;
use crate::options::BuildOptions;
use crate::outcome::Built;
use crate::outcome::{ordered, BuiltImage, ImageStatus, PushStatus, PushedImage, Summary};
use crate::packages::prepare_narrowed;
use crate::packages::{Extracted, SourceOptions};
use crate::plan::{ImagePlan, Plan};
use crate::sink::registry::Registry;
use crate::ui::progress::Progress;
use anyhow::anyhow;
use futures::{StreamExt, TryStreamExt};
use qus_registry::{media, Client, Descriptor, ImageManifest, Reference};
use std::collections::{BTreeMap, HashMap};

/// Builds every image of `plan` that the daemon does not already have with the same inputs.
pub(crate) async fn build<'a>(
    daemon: &Daemon,
    plan: &'a Plan,
    src: &SourceOptions,
    opts: &BuildOptions,
    progress: &Progress,
) -> anyhow::Result<Built> {
    for line in plan.omissions() {
        progress.step(line);
    }
    // Phase 1: what is already built.
    let (unchanged, todo) =
        crate::sink::daemon::in_daemon(daemon, &plan.images, opts.force).await?;
    let mut done: BTreeMap<String, BuiltImage> = unchanged
        .into_iter()
        .filter_map(|b| {
            Some((
                plan.images
                    .iter()
                    .find(|i| i.reference == b.reference)?
                    .tag
                    .clone(),
                b,
            ))
        })
        .collect();
    if todo.is_empty() {
        progress.step("every image is up to date");
        return Ok(Built::up_to_date(plan, done.into_values().collect()));
    }

    // Phases 2 and 3: the packages those images need, verified and extracted; an image
    // whose package could not be used is left out.
    let (inputs, narrowed, shortfall) = prepare_narrowed(plan, &todo, src, progress).await?;
    let made = narrowed.plan;
    let todo: Vec<&'a ImagePlan> = todo
        .into_iter()
        .filter(|i| made.image(&i.tag).is_some())
        .collect();

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
            let files = context_folders(img, inputs)?;
            let from = match &img.base {
                Some(tag) => plan
                    .image(tag)
                    .map(|b| b.reference.clone())
                    .ok_or_else(|| anyhow!("{}: base image {tag} is not in the plan", img.tag))?,
                None => "scratch".to_string(),
            };
            let dockerfile = build_context::dockerfile(img, &from, entrypoint::command())?;
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
    Ok(Built {
        images: ordered(plan, done.into_values().collect()),
        made,
        shortfall,
    })
}

/// The build context's folders of `img`: each layer's files, from the extracted packages.
fn context_folders(img: &ImagePlan, inputs: &Extracted) -> anyhow::Result<ContextFolders> {
    let mut files = ContextFolders::new();
    for layer in &img.layers {
        let entries = match layer {
            crate::plan::LayerSpec::Entrypoint => {
                let bb = inputs
                    .busybox
                    .get(&img.host)
                    .ok_or_else(|| anyhow!("{}: no busybox extracted for {}", img.tag, img.host))?;
                entrypoint::layer(bb)
            }
            crate::plan::LayerSpec::Emulator { target } => {
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

/// The classic release: build through the daemon, push through the daemon, then the lists
/// through qus's client. The lists are of the family the daemon pushed (Docker schema 2 with
/// the classic store), whatever `--media-types` says.
pub(crate) async fn release(
    plan: &Plan,
    src: &SourceOptions,
    opts: &BuildOptions,
    reg: &Registry,
    skip_lists: bool,
    summary: &mut Summary,
    progress: &Progress,
) -> anyhow::Result<()> {
    let daemon = Daemon::connect(&opts.engine).await?;
    let built = build(&daemon, plan, src, opts, progress).await?;
    summary.images = built.images;
    summary.shortfall = built.shortfall;
    let made = built.made;
    // The builds may have outlived a helper's token: ask for credentials now.
    reg.refresh_credentials(progress).await;
    let creds = reg.client.push_credentials(reg.repo.registry());
    push(&daemon, reg, &creds, opts.jobs, summary, progress).await?;
    if skip_lists {
        return Ok(());
    }
    reg.refresh_credentials(progress).await;
    let known: HashMap<String, qus_registry::Descriptor> = summary
        .pushed
        .iter()
        .filter_map(|p| {
            let img = made.images.iter().find(|i| i.reference == p.reference)?;
            let digest = qus_registry::Digest::parse(&p.digest).ok()?;
            Some((
                img.tag.clone(),
                qus_registry::Descriptor::new(&p.media_type, p.size, digest),
            ))
        })
        .collect();
    let oci = !known.is_empty() && known.values().all(|d| d.media_type == media::OCI_MANIFEST);
    let family = if oci {
        crate::image::media::MediaTypes::Oci
    } else {
        crate::image::media::MediaTypes::Docker
    };
    let lists = crate::image::lists::lists(&made, &known, family)?;
    crate::sink::registry::put_lists(reg, &made, &lists, summary, progress).await
}

/// Pushes every built image, hosts side by side (they share no layers), each host's images
/// in plan order (pkg before full: full's emulator layers are then already there).
async fn push(
    daemon: &Daemon,
    reg: &Registry,
    creds: &qus_registry::PushCredentials,
    jobs: usize,
    summary: &mut Summary,
    progress: &Progress,
) -> anyhow::Result<()> {
    let images = summary.images.clone();
    let total = images.len();
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let pushed = std::sync::Mutex::new(Vec::new());
    let groups = by_host(images.iter().collect(), |b: &&BuiltImage| b.host);
    let result: anyhow::Result<Vec<()>> = futures::stream::iter(groups)
        .map(|group| {
            let (counter, pushed) = (&counter, &pushed);
            async move {
                for img in group {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let at = format!("[{n}/{total}]");
                    let p = push_one(daemon, reg, creds, img, &at, progress).await?;
                    pushed.lock().expect("no panics while holding it").push(p);
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(jobs.max(1))
        .try_collect()
        .await;
    let mut pushed = pushed.into_inner().unwrap_or_default();
    pushed.sort_by_key(|p| images.iter().position(|i| i.reference == p.reference));
    summary.pushed = pushed;
    result.map(|_| ())
}

async fn push_one(
    daemon: &Daemon,
    reg: &Registry,
    creds: &qus_registry::PushCredentials,
    img: &BuiltImage,
    counter: &str,
    progress: &Progress,
) -> anyhow::Result<PushedImage> {
    let client = &reg.client;
    let r = Reference::parse(&img.reference)?;
    let tag = r.tag().unwrap_or("latest").to_string();
    let repo = img
        .reference
        .strip_suffix(&format!(":{tag}"))
        .unwrap_or(&img.reference)
        .to_string();
    let local = daemon
        .inspect(&img.reference)
        .await?
        .ok_or_else(|| anyhow!("{}: the daemon no longer has the image", img.reference))?;
    let mut read_manifest = false;
    let present = match client.manifest_head(&r).await? {
        None => None,
        Some(head) => match identity(&local.id, &local.repo_digests, &head) {
            Identity::Same => Some(head),
            Identity::Different => None,
            Identity::ByConfig => {
                read_manifest = true;
                config_of(client, &r)
                    .await?
                    .filter(|(config, _)| *config == local.id)
                    .map(|(_, d)| d)
            }
        },
    };
    let (status, d) = match present {
        Some(d) => {
            progress.step(format!(
                "{counter} {} is already in the registry",
                img.reference
            ));
            (PushStatus::Present, d)
        }
        None => {
            progress.step(format!("{counter} pushing {}", img.reference));
            let stats: PushStats = daemon.push(&repo, &tag, Some(creds), progress).await?;
            progress.detail(format!(
                "{}: {} layers pushed, {} already there",
                img.reference, stats.pushed, stats.existing
            ));
            let head = client.manifest_head(&r).await?;
            let holds = match (&head, &stats.digest) {
                (None, _) => false,
                (Some(h), Some(pushed)) => h.digest.as_str() == pushed,
                // No digest line from this daemon: the image's own identity, reading the
                // manifest at most once per image and release.
                (Some(h), None) => match identity(&local.id, &local.repo_digests, h) {
                    Identity::Same => true,
                    Identity::Different => false,
                    Identity::ByConfig if read_manifest => true,
                    Identity::ByConfig => config_of(client, &r)
                        .await?
                        .is_some_and(|(config, _)| config == local.id),
                },
            };
            match head {
                Some(h) if holds => {
                    if media::is_list(&h.media_type) {
                        return Err(anyhow!(
                            "{}: the daemon pushed a multi-platform index ({}), as Docker's \
                             containerd image store does with attestations; qus's lists need \
                             single-image manifests: use the default builder (--builder qus)",
                            img.reference,
                            h.media_type
                        ));
                    }
                    (PushStatus::Pushed, h)
                }
                other => {
                    return Err(anyhow!(
                        "{}: after the push the registry's tag holds {}, not what the daemon \
                         pushed ({}); did another client write it meanwhile?",
                        img.reference,
                        other.map_or_else(|| "nothing".into(), |h| h.digest.to_string()),
                        stats.digest.as_deref().unwrap_or(&local.id)
                    ))
                }
            }
        }
    };
    Ok(PushedImage {
        reference: img.reference.clone(),
        digest: d.digest.to_string(),
        size: d.size,
        media_type: d.media_type,
        status,
    })
}

/// How a tag's manifest relates to a daemon image.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    /// The tag holds this image: its digest is the image ID (containerd store) or one the
    /// daemon recorded for it (RepoDigests).
    Same,
    /// The tag holds something else (a list, with the classic store).
    Different,
    /// Only the manifest's config digest can tell (classic store: ID = config digest).
    ByConfig,
}

/// Whether the manifest `head` describes is the daemon image `id` (with `repo_digests`),
/// without reading it when its digest alone tells. Pure.
fn identity(id: &str, repo_digests: &[String], head: &Descriptor) -> Identity {
    let digest = head.digest.as_str();
    let recorded = repo_digests
        .iter()
        .any(|d| d.rsplit_once('@').is_some_and(|(_, d)| d == digest));
    if id == digest || recorded {
        Identity::Same
    } else if media::is_list(&head.media_type) {
        Identity::Different
    } else {
        Identity::ByConfig
    }
}

/// The config digest the registry's manifest for `r` names and the manifest's descriptor
/// (one GET), or `None` when the tag is absent or is not a single-image manifest.
async fn config_of(client: &Client, r: &Reference) -> anyhow::Result<Option<(String, Descriptor)>> {
    let raw = match client.manifest_get(r).await {
        Ok(raw) => raw,
        Err(qus_registry::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(serde_json::from_slice::<ImageManifest>(&raw.bytes)
        .ok()
        .map(|m| (m.config.digest.to_string(), raw.descriptor())))
}

/// Groups items by host, keeping their order inside each group.
fn by_host<T>(items: Vec<T>, host: impl Fn(&T) -> Host) -> Vec<Vec<T>> {
    let mut groups: Vec<(Host, Vec<T>)> = Vec::new();
    for item in items {
        let h = host(&item);
        match groups.iter_mut().find(|(g, _)| *g == h) {
            Some((_, g)) => g.push(item),
            None => groups.push((h, vec![item])),
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qus_registry::Digest;

    fn head(hex: char, media_type: &str) -> Descriptor {
        Descriptor::new(
            media_type,
            1,
            Digest::parse(&format!("sha256:{}", hex.to_string().repeat(64))).unwrap(),
        )
    }

    #[test]
    fn the_identity_compared_is_the_one_each_image_store_gives() {
        let m = head('a', media::DOCKER_MANIFEST);
        let a = m.digest.to_string();
        let other = format!("sha256:{}", "b".repeat(64));
        // containerd store: the image ID is the manifest digest.
        assert_eq!(identity(&a, &[], &m), Identity::Same);
        // Either store, after a push or pull: RepoDigests names it.
        assert_eq!(
            identity(&other, &[format!("127.0.0.1:5000/qus@{a}")], &m),
            Identity::Same
        );
        // Classic store, nothing recorded: the config digest decides (one GET).
        assert_eq!(identity(&other, &[], &m), Identity::ByConfig);
        assert_eq!(
            identity(&other, &[format!("127.0.0.1:5000/qus@{other}")], &m),
            Identity::ByConfig
        );
        // A list is never a classic-store image.
        assert_eq!(
            identity(&other, &[], &head('c', media::OCI_INDEX)),
            Identity::Different
        );
    }
}
