//! A registry as a place images are written to, through qus's own client: HEAD before
//! anything, each blob uploaded once however many images share it, the manifest PUT by tag,
//! lists PUT only over manifests known present and never over a list with a platform they
//! lack. No daemon is involved.

use crate::image::media::MediaTypes;
use crate::image::{Image, Layer, Store};
use crate::outcome::{collect, ListStatus, PublishedList, Summary};
use crate::plan::Plan;
use crate::ui::progress::Progress;
use anyhow::Context as _;
use bytes::Bytes;
use futures::StreamExt;
use qus_registry::{Client, Descriptor, Digest, Index, Outcome, Reference};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Blob uploads of one run: each digest is sent (or found present) once, whatever number
/// of images and tasks need it.
#[derive(Default)]
pub(crate) struct Uploads {
    cells: Mutex<HashMap<Digest, Arc<tokio::sync::OnceCell<bool>>>>,
    /// Blobs sent.
    pub sent: AtomicU64,
    /// Bytes sent.
    pub bytes: AtomicU64,
    /// Blobs the registry already had.
    pub present: AtomicU64,
    /// Blobs mounted from another repository of the same registry (no bytes sent).
    pub mounted: AtomicU64,
}

/// A registry repository images are pushed to.
pub(crate) struct Registry {
    /// The client, with credentials.
    pub client: Client,
    /// The repository (any tag).
    pub repo: Reference,
    /// A repository of the same registry that this run already released to: its blobs are
    /// mounted from there rather than sent again.
    pub mount_from: Option<Reference>,
}

impl Registry {
    /// Asks the credential source again (Docker config, helper): call it when a push phase
    /// starts, since the credentials read at start may have expired. A source that fails
    /// now leaves the credentials read before in place (they may still be good; a 401 asks
    /// again and then fails for real), with a warning.
    pub(crate) async fn refresh_credentials(&self, progress: &Progress) {
        if let Err(e) = self.client.refresh_credentials(self.repo.registry()).await {
            progress.step(format!(
                "warning: could not read the credentials again ({e}); keeping the ones read before"
            ));
        }
    }

    /// The reference of `tag` in this repository.
    pub(crate) fn tag(&self, tag: &str) -> anyhow::Result<Reference> {
        Ok(self.repo.with_tag(tag)?)
    }

    /// What each tag points at now, `jobs` HEADs at a time.
    pub(crate) async fn heads(
        &self,
        tags: &[String],
        jobs: usize,
    ) -> anyhow::Result<HashMap<String, Descriptor>> {
        let results: Vec<anyhow::Result<(String, Option<Descriptor>)>> =
            futures::stream::iter(tags)
                .map(|t| async move {
                    let r = self.tag(t)?;
                    Ok((t.clone(), self.client.manifest_head(&r).await?))
                })
                .buffer_unordered(jobs.max(1))
                .collect()
                .await;
        let mut out = HashMap::new();
        for r in results {
            if let (t, Some(d)) = r? {
                out.insert(t, d);
            }
        }
        Ok(out)
    }

    /// Uploads what the registry lacks of `image`, then its manifest under its tag.
    pub(crate) async fn push(
        &self,
        image: &Image,
        store: &Store,
        uploads: &Uploads,
    ) -> anyhow::Result<()> {
        let mut blobs: Vec<(Digest, &'static str, Source)> = image
            .layers
            .iter()
            .map(|l| {
                (
                    l.memo.digest.clone(),
                    image.media.layer(),
                    Source::Layer(l.clone()),
                )
            })
            .collect();
        blobs.push((
            image.config_digest.clone(),
            image.media.config(),
            Source::Bytes(Bytes::from(image.config.clone())),
        ));
        let results: Vec<anyhow::Result<()>> = futures::stream::iter(blobs)
            .map(|(digest, media, source)| self.blob(digest, media, source, store, uploads))
            .buffer_unordered(4)
            .collect()
            .await;
        for r in results {
            r?;
        }
        let at = self.tag(&image.tag)?;
        self.client
            .put_manifest(
                &at,
                Bytes::from(image.manifest.clone()),
                &image.descriptor.media_type,
            )
            .await
            .map_err(|e| media_hint(e.into(), image.media))?;
        Ok(())
    }

    async fn blob(
        &self,
        digest: Digest,
        media: &'static str,
        source: Source,
        store: &Store,
        uploads: &Uploads,
    ) -> anyhow::Result<()> {
        let cell = {
            let mut cells = uploads.cells.lock().expect("no panics while holding it");
            cells.entry(digest.clone()).or_default().clone()
        };
        cell.get_or_try_init(|| async {
            if let Some(from) = &self.mount_from {
                if self.client.mount_blob(&self.repo, &digest, from).await? {
                    uploads.mounted.fetch_add(1, Ordering::Relaxed);
                    return anyhow::Ok(false);
                }
            }
            let bytes = match source {
                Source::Bytes(b) => b,
                Source::Layer(layer) => {
                    let store = store.clone();
                    let bytes =
                        tokio::task::spawn_blocking(move || crate::image::blob(&store, &layer))
                            .await??;
                    Bytes::from(bytes)
                }
            };
            let len = bytes.len() as u64;
            let up = self.client.upload_blob(&self.repo, media, bytes).await?;
            if up.skipped {
                uploads.present.fetch_add(1, Ordering::Relaxed);
            } else {
                uploads.sent.fetch_add(1, Ordering::Relaxed);
                uploads.bytes.fetch_add(len, Ordering::Relaxed);
            }
            anyhow::Ok(!up.skipped)
        })
        .await?;
        Ok(())
    }

    /// Writes `index` under `tag` unless the tag already holds it, or holds a list with a
    /// platform `index` lacks: that list is left as it was (a list never loses a platform
    /// by a run that could not make it; remove the tag first to shrink a list on purpose).
    pub(crate) async fn put_list(&self, tag: &str, index: &Index) -> anyhow::Result<ListPut> {
        let at = self.tag(tag)?;
        let digest = index.digest();
        if let Some(current) = self.client.manifest_head(&at).await? {
            if current.digest == digest {
                return Ok(ListPut::Done(digest, ListStatus::Unchanged));
            }
            if qus_registry::media::is_list(&current.media_type) {
                let raw = self.client.manifest_get(&at).await?;
                let old: Index = serde_json::from_slice(&raw.bytes)
                    .map_err(|e| anyhow::anyhow!("{at}: the list there is not a list: {e}"))?;
                let lost = crate::image::lists::lost_platforms(&old, index);
                if !lost.is_empty() {
                    return Ok(ListPut::Kept(lost.iter().map(|p| p.to_string()).collect()));
                }
            }
        }
        let media = if index.media_type == qus_registry::media::OCI_INDEX {
            MediaTypes::Oci
        } else {
            MediaTypes::Docker
        };
        let outcome = self
            .client
            .put_index(&at, index)
            .await
            .map_err(|e| media_hint(e.into(), media))?;
        Ok(match outcome {
            Outcome::Written { digest } => ListPut::Done(digest, ListStatus::Written),
            Outcome::Unchanged { digest } => ListPut::Done(digest, ListStatus::Unchanged),
        })
    }
}

/// What [`Registry::put_list`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListPut {
    /// The tag holds the list now (written, or already there).
    Done(Digest, ListStatus),
    /// The tag holds a list with these platforms, which the new one lacks: left as it was.
    Kept(Vec<String>),
}

/// A registry's refusal of a media type, with the flag that picks the other family.
pub(crate) fn media_hint(e: anyhow::Error, media: MediaTypes) -> anyhow::Error {
    let refused = e
        .downcast_ref::<qus_registry::Error>()
        .is_some_and(|e| matches!(e, qus_registry::Error::MediaTypeRefused { .. }));
    if !refused {
        return e;
    }
    let other = match media {
        MediaTypes::Oci => MediaTypes::Docker,
        MediaTypes::Docker => MediaTypes::Oci,
    };
    e.context(format!(
        "the registry refused the {} media types: release with --media-types {}",
        media.name(),
        other.name()
    ))
}

/// Where a blob's bytes come from.
enum Source {
    /// A layer's compressed blob in the store, verified on read.
    Layer(Arc<Layer>),
    /// In memory (configs).
    Bytes(Bytes),
}

/// Writes `lists` (of `plan`) to the registry, a few at a time: each one written or already
/// there goes into `summary.lists`, each one left as it was (it would have lost a platform)
/// into the shortfall. Every list is tried; the first error is returned after.
pub(crate) async fn put_lists(
    reg: &Registry,
    plan: &Plan,
    lists: &[(&crate::plan::ManifestPlan, qus_registry::Index)],
    summary: &mut Summary,
    progress: &Progress,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<(String, ListPut)>> = futures::stream::iter(lists)
        .map(|(m, index)| async move {
            let put = reg
                .put_list(&m.tag, index)
                .await
                .with_context(|| format!("publishing {}", m.reference))?;
            let n = index.manifests.len();
            progress.step(match &put {
                ListPut::Done(_, status) => format!("{} {status} ({n} platforms)", m.reference),
                ListPut::Kept(lost) => format!(
                    "{} left as it was: it has {}, which this run's list would not",
                    m.reference,
                    lost.join(", ")
                ),
            });
            Ok((m.tag.clone(), put))
        })
        .buffered(LISTS_IN_FLIGHT)
        .collect()
        .await;
    let mut done = Vec::new();
    let outcome = collect(results, &mut done);
    let mut kept = Vec::new();
    for (tag, put) in done {
        let Some(m) = plan.manifests.iter().find(|m| m.tag == tag) else {
            continue;
        };
        match put {
            ListPut::Done(digest, status) => summary.lists.push(PublishedList {
                reference: m.reference.clone(),
                digest: digest.to_string(),
                status,
                platforms: m.entries.iter().map(|e| e.platform.to_string()).collect(),
            }),
            ListPut::Kept(lost) => kept.push((tag, lost)),
        }
    }
    summary.shortfall.kept_lists(plan, "registry", kept);
    outcome
}

/// Lists written at once.
pub(crate) const LISTS_IN_FLIGHT: usize = 8;

/// Tags asked at once.
pub(crate) const HEADS_IN_FLIGHT: usize = 16;
