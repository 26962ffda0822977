//! `qus release`: build, push every image through the daemon, then publish the manifest
//! lists through the registry API.
//!
//! The registry is the judge, not the push stream: before a push, an image whose manifest
//! in the registry already names the local image's config is skipped (nothing uploaded,
//! nothing rewritten); after a push, the manifest is read back and its config digest must
//! be the local image ID. Lists are published only when every image pushed and verified, so
//! a failure part-way leaves the previous lists in place, and re-running finishes the job.

use crate::arch::Host;
use crate::build::{build_all, BuiltImage, ImageStatus};
use crate::docker::{Daemon, PushStats};
use crate::options::{BuildOptions, RegistryOptions, SourceOptions};
use crate::plan::Plan;
use crate::progress::Progress;
use anyhow::{anyhow, Context as _};
use futures::{StreamExt, TryStreamExt};
use qus_registry::{
    resolve_auth, Auth, Client, ClientConfig, Digest, ImageManifest, IndexEntry, ListKind, Outcome,
    ProtocolPolicy, Reference,
};
use serde::Serialize;
use std::process::ExitCode;

/// One pushed (or already present) image.
#[derive(Debug, Clone, Serialize)]
pub struct PushedImage {
    /// `repo:tag`.
    pub reference: String,
    /// Manifest digest in the registry.
    pub digest: String,
    /// Manifest size.
    pub size: u64,
    /// Manifest media type.
    pub media_type: String,
    /// Whether it was uploaded now.
    pub status: PushStatus,
    /// Layer counts from the push.
    pub layers: PushStats,
}

/// One manifest list.
#[derive(Debug, Clone, Serialize)]
pub struct PublishedList {
    /// `repo:tag`.
    pub reference: String,
    /// Digest of the list.
    pub digest: String,
    /// Whether the list was written now.
    pub status: ListStatus,
    /// Platforms listed.
    pub platforms: Vec<String>,
}

/// What happened to an image in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PushStatus {
    /// Uploaded now.
    Pushed,
    /// The registry already had it.
    Present,
}

/// What happened to a manifest list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ListStatus {
    /// Written now.
    Written,
    /// The registry already held exactly this list.
    Unchanged,
}

impl std::fmt::Display for ListStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListStatus::Written => "written",
            ListStatus::Unchanged => "unchanged",
        })
    }
}

/// The switches of `qus release` that are not stage options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReleaseFlags {
    /// Push only; the lists are another job's.
    pub skip_lists: bool,
    /// The summary as JSON on stdout.
    pub json: bool,
}

#[derive(Debug, Default, Serialize)]
struct Summary {
    images: Vec<BuiltImage>,
    pushed: Vec<PushedImage>,
    lists: Vec<PublishedList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
}

/// A registry client for the plan's repository, with credentials resolved and checked.
pub struct Registry {
    /// The client.
    pub client: Client,
    /// What the daemon's push needs.
    pub push_credentials: qus_registry::PushCredentials,
}

/// Resolves credentials for the plan's registry and checks that it answers and accepts them.
pub(crate) async fn connect_registry(
    plan: &Plan,
    opts: &RegistryOptions,
) -> anyhow::Result<Registry> {
    let probe = Reference::parse(&format!("{}:latest", plan.repo))
        .with_context(|| format!("--repo {}", plan.repo))?;
    let registry = probe.registry().to_string();
    let explicit = opts
        .credentials
        .as_ref()
        .map(|(user, password)| Auth::basic(user.clone(), password.clone()));
    let auth = resolve_auth(&registry, explicit)?;
    let push_credentials = auth.push_credentials(&registry);
    let config = ClientConfig {
        protocol: ProtocolPolicy {
            insecure: opts.insecure.clone(),
            ..ProtocolPolicy::default()
        },
        ..ClientConfig::default()
    };
    let client = Client::new(config)?.with_auth(&registry, auth);
    // Fail on a wrong password or a missing registry now, not after an hour of building.
    client
        .ping(&probe)
        .await
        .with_context(|| format!("registry {registry}"))?;
    Ok(Registry {
        client,
        push_credentials,
    })
}

/// `qus release`.
pub(crate) async fn release_cmd(
    plan: &Plan,
    src: &SourceOptions,
    opts: &BuildOptions,
    registry: &RegistryOptions,
    flags: ReleaseFlags,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let reg = connect_registry(plan, registry).await?;
    let daemon = Daemon::connect().await?;
    let mut summary = Summary {
        images: build_all(&daemon, plan, src, opts, progress).await?,
        ..Summary::default()
    };
    let mut result = push(&daemon, &reg, opts.jobs, &mut summary, progress).await;
    if result.is_ok() && !flags.skip_lists {
        let digests: Vec<(String, String)> = summary
            .pushed
            .iter()
            .map(|p| (p.reference.clone(), p.digest.clone()))
            .collect();
        result = publish_lists(&reg.client, plan, &digests, &mut summary.lists, progress).await;
    }
    if let Err(e) = &result {
        summary.failed = Some(format!("{e:#}"));
    }
    report(&summary, flags.json, progress)?;
    result.map(|()| ExitCode::SUCCESS)
}

/// `qus publish`: the lists over per-host images already in the registry.
pub(crate) async fn publish_cmd(
    plan: &Plan,
    registry: &RegistryOptions,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let reg = connect_registry(plan, registry).await?;
    let mut digests = Vec::new();
    for img in &plan.images {
        let r = Reference::parse(&img.reference)?;
        if let Some(d) = reg.client.manifest_head(&r).await? {
            digests.push((img.reference.clone(), d.digest.to_string()));
        }
    }
    let mut summary = Summary::default();
    let result = publish_lists(&reg.client, plan, &digests, &mut summary.lists, progress).await;
    if let Err(e) = &result {
        summary.failed = Some(format!("{e:#}"));
    }
    report(&summary, json, progress)?;
    result.map(|()| ExitCode::SUCCESS)
}

/// Pushes every built image, hosts side by side (they share no layers), each host's images
/// in plan order (pkg before full: full's emulator layers are then already there).
async fn push(
    daemon: &Daemon,
    reg: &Registry,
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
                    let p = push_one(daemon, reg, img, &format!("[{n}/{total}]"), progress).await?;
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
    let remote = remote_image(client, &r).await?;
    let (status, layers, d) = match remote {
        Some((config, d)) if config == img.id => {
            progress.step(format!(
                "{counter} {} is already in the registry",
                img.reference
            ));
            (PushStatus::Present, PushStats::default(), d)
        }
        _ => {
            progress.step(format!("{counter} pushing {}", img.reference));
            let stats = daemon
                .push(&repo, &tag, Some(&reg.push_credentials), progress)
                .await?;
            match remote_image(client, &r).await? {
                Some((c, d)) if c == img.id => (PushStatus::Pushed, stats, d),
                other => {
                    return Err(anyhow!(
                        "{}: after the push the registry's manifest names config {}, not the \
                         local image {}",
                        img.reference,
                        other.map_or_else(|| "nothing".into(), |(c, _)| c),
                        img.id
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
        layers,
    })
}

/// Publishes every list of the plan over the per-host manifests in `digests`
/// (reference → manifest digest), a few at a time (each is a handful of small requests).
/// A list whose entry is missing fails, naming it, and nothing is written for it; the
/// other lists are still published, and the first failure is returned.
async fn publish_lists(
    client: &Client,
    plan: &Plan,
    digests: &[(String, String)],
    lists: &mut Vec<PublishedList>,
    progress: &Progress,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<PublishedList>> = futures::stream::iter(&plan.manifests)
        .map(|m| publish_list(client, plan, m, digests, progress))
        .buffered(LISTS_IN_FLIGHT)
        .collect()
        .await;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(l) => lists.push(l),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

const LISTS_IN_FLIGHT: usize = 8;

async fn publish_list(
    client: &Client,
    plan: &Plan,
    m: &crate::plan::ManifestPlan,
    digests: &[(String, String)],
    progress: &Progress,
) -> anyhow::Result<PublishedList> {
    let target = Reference::parse(&m.reference)?;
    let mut entries = Vec::new();
    for e in &m.entries {
        let want = plan.image(&e.tag).map(|i| i.reference.as_str());
        let digest = digests
            .iter()
            .find(|(r, _)| Some(r.as_str()) == want)
            .map(|(_, d)| d)
            .ok_or_else(|| {
                anyhow!(
                    "{}: its entry {} is not in the registry; push it first",
                    m.reference,
                    want.unwrap_or(&e.tag)
                )
            })?;
        let digest = Digest::parse(digest).map_err(|x| anyhow!("{x}"))?;
        entries.push(IndexEntry::new(digest, e.platform.clone()));
    }
    let outcome = client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .with_context(|| format!("publishing {}", m.reference))?;
    let status = match outcome {
        Outcome::Written { .. } => ListStatus::Written,
        Outcome::Unchanged { .. } => ListStatus::Unchanged,
    };
    progress.step(format!(
        "{} {status} ({} platforms)",
        m.reference,
        entries.len()
    ));
    Ok(PublishedList {
        reference: m.reference.clone(),
        digest: outcome.digest().to_string(),
        status,
        platforms: m.entries.iter().map(|e| e.platform.to_string()).collect(),
    })
}

/// The config digest the registry's manifest for `r` names and the manifest's descriptor,
/// or `None` when the tag is absent or is not a single-image manifest.
async fn remote_image(
    client: &Client,
    r: &Reference,
) -> anyhow::Result<Option<(String, qus_registry::Descriptor)>> {
    if client.manifest_head(r).await?.is_none() {
        return Ok(None);
    }
    let raw = client.manifest_get(r).await?;
    Ok(serde_json::from_slice::<ImageManifest>(&raw.bytes)
        .ok()
        .map(|m| (m.config.digest.to_string(), raw.descriptor())))
}

fn report(s: &Summary, json: bool, progress: &Progress) -> anyhow::Result<()> {
    let count = |st: PushStatus| s.pushed.iter().filter(|p| p.status == st).count();
    let written = s
        .lists
        .iter()
        .filter(|l| l.status == ListStatus::Written)
        .count();
    progress.step(format!(
        "summary: {} images ({} built), {} pushed, {} already present, {} lists written, {} unchanged{}",
        s.images.len(),
        s.images
            .iter()
            .filter(|i| i.status == ImageStatus::Built)
            .count(),
        count(PushStatus::Pushed),
        count(PushStatus::Present),
        written,
        s.lists.len() - written,
        s.failed.as_ref().map(|f| format!("; FAILED: {f}")).unwrap_or_default()
    ));
    if json {
        crate::output::out_json(s)?;
    }
    Ok(())
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
