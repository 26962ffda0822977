//! Images as data (go-containerregistry's shape): every image of a plan is computed here —
//! layer tars, compressed blobs, config, manifest — and the daemon, a registry and an OCI
//! layout are places the result is written to (`crate::sink`). The same pins give the same
//! bytes on every machine, so the same digests.

mod config;
pub(crate) mod entrypoint;
pub(crate) mod files;
pub(crate) mod gzip;
mod layer;
pub(crate) mod lists;
pub(crate) mod media;
pub(crate) mod store;
mod tar;

pub(crate) use layer::{blob, Layer, LayerError};
pub(crate) use media::MediaTypes;
pub(crate) use store::{ImageMemo, Store};

use crate::arch::Platform;
use crate::image::files::Entry;
use crate::packages::Extracted;
use crate::plan::{self, ImagePlan, Plan};
use crate::ui::progress::Progress;
use qus_registry::{Descriptor, Digest, ImageManifest};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An image, computed: everything a sink needs to write it.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    /// The tag (`amd64-d10.0-aarch64`).
    pub tag: String,
    /// `repo:tag`.
    pub reference: String,
    /// The host it runs on.
    pub host: crate::arch::Host,
    /// Its platform.
    pub platform: Platform,
    /// Its layers, base first (shared with the other images that have them).
    pub layers: Vec<Arc<Layer>>,
    /// The config bytes.
    pub config: Vec<u8>,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// The manifest's descriptor (its digest is what a registry tag points at).
    pub descriptor: Descriptor,
    /// The config's digest: the daemon's image ID.
    pub config_digest: Digest,
    /// The media types it is written with.
    pub media: MediaTypes,
}

impl Image {
    /// What the image memo records of it.
    pub(crate) fn memo(&self) -> ImageMemo {
        ImageMemo {
            digest: self.descriptor.digest.clone(),
            size: self.descriptor.size,
            media_type: self.descriptor.media_type.clone(),
            config: self.config_digest.clone(),
        }
    }
}

/// An image that could not be computed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    /// A file the plan needs was not extracted (a bug in the caller).
    #[error("{tag}: {what} was not extracted")]
    Missing {
        /// Image tag.
        tag: String,
        /// What is missing.
        what: String,
    },
    /// A layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The cache failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A worker thread died.
    #[error("computing layers: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The key of an image's memo: its inputs and the media types it is written with.
pub(crate) fn memo_key(image: &ImagePlan, media: MediaTypes) -> String {
    let inputs = image.inputs.trim_start_matches("sha256:");
    format!("{inputs}-{}", media.name())
}

/// Which layer of the plan, as a value that tells layers apart across images.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LayerId {
    Entrypoint(crate::arch::Host),
    Emulator(String, crate::arch::Host, String),
}

/// Every layer an image is made of, base first, with what tells it apart from other
/// images' layers (a base is always of the same host and source).
fn stack<'a>(plan: &'a Plan, image: &'a ImagePlan) -> Vec<(LayerId, &'a plan::LayerSpec)> {
    plan.stack(image)
        .into_iter()
        .map(|l| {
            let id = match l {
                plan::LayerSpec::Entrypoint => LayerId::Entrypoint(image.host),
                plan::LayerSpec::Emulator { target } => {
                    LayerId::Emulator(image.source.clone(), image.host, target.clone())
                }
            };
            (id, l)
        })
        .collect()
}

/// The files of one layer of `image`.
fn layer_files(
    image: &ImagePlan,
    layer: &plan::LayerSpec,
    inputs: &Extracted,
) -> Result<(String, Vec<Entry>), ImageError> {
    let missing = |what: String| ImageError::Missing {
        tag: image.tag.clone(),
        what,
    };
    Ok(match layer {
        plan::LayerSpec::Entrypoint => {
            let bb = inputs
                .busybox
                .get(&image.host)
                .ok_or_else(|| missing(format!("busybox for {}", image.host)))?;
            (
                format!("register layer for {}", image.host),
                entrypoint::layer(bb),
            )
        }
        plan::LayerSpec::Emulator { target } => {
            let file = inputs
                .emulators
                .get(&(image.source.clone(), image.host))
                .and_then(|m| m.get(target))
                .ok_or_else(|| missing(format!("qemu-{target} for {}", image.host)))?;
            (
                format!("qemu-{target} for {} ({})", image.host, image.source),
                entrypoint::emulator_layer(target, file),
            )
        }
    })
}

/// Computes `images` (of `plan`) from the extracted files: each distinct layer once, `cpus`
/// at a time, then each config and manifest.
pub(crate) async fn write(
    plan: &Plan,
    images: &[&ImagePlan],
    inputs: &Extracted,
    store: &Store,
    media: MediaTypes,
    cpus: usize,
    progress: &Progress,
) -> Result<Vec<Image>, ImageError> {
    // Distinct layers first: `full`, `pkg` and the single-target images share them.
    let mut wanted: BTreeMap<LayerId, (String, Vec<Entry>)> = BTreeMap::new();
    for image in images {
        for (id, l) in stack(plan, image) {
            if let std::collections::btree_map::Entry::Vacant(e) = wanted.entry(id) {
                e.insert(layer_files(image, l, inputs)?);
            }
        }
    }
    let total = wanted.len();
    let bar = progress.bytes("layers", Some(total as u64));
    let slots = Arc::new(tokio::sync::Semaphore::new(cpus));
    let mut tasks = Vec::new();
    for (id, (what, entries)) in wanted {
        let (store, slots) = (store.clone(), slots.clone());
        let epoch = plan.epoch;
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let layer =
                tokio::task::spawn_blocking(move || layer::prepare(&store, &what, entries, epoch))
                    .await??;
            Ok::<_, ImageError>((id, Arc::new(layer)))
        }));
    }
    let mut layers: BTreeMap<LayerId, Arc<Layer>> = BTreeMap::new();
    for (n, t) in tasks.into_iter().enumerate() {
        let (id, layer) = t.await??;
        bar.set(n as u64 + 1);
        layers.insert(id, layer);
    }
    drop(bar);
    progress.step(format!("{total} layers ready"));

    let mut out = Vec::with_capacity(images.len());
    for image in images {
        let stacked: Vec<Arc<Layer>> = stack(plan, image)
            .into_iter()
            .map(|(id, _)| layers[&id].clone())
            .collect();
        let diff_ids: Vec<(&Digest, &str)> = stacked
            .iter()
            .map(|l| (&l.memo.diff_id, l.what.as_str()))
            .collect();
        let config = config::config_json(image, &diff_ids, entrypoint::command(), plan.epoch);
        let config_desc = Descriptor::of(media.config(), &config);
        let manifest = ImageManifest::new(
            media.manifest(),
            config_desc.clone(),
            stacked
                .iter()
                .map(|l| Descriptor::new(media.layer(), l.memo.size, l.memo.digest.clone()))
                .collect(),
        )
        .to_bytes();
        let descriptor = Descriptor::of(media.manifest(), &manifest);
        let img = Image {
            tag: image.tag.clone(),
            reference: image.reference.clone(),
            host: image.host,
            platform: image.platform.clone(),
            layers: stacked,
            config_digest: config_desc.digest.clone(),
            config,
            manifest,
            descriptor,
            media,
        };
        store.set_image(&memo_key(image, media), &img.memo())?;
        out.push(img);
    }
    Ok(out)
}
