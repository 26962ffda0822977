//! What happened, as values the commands print (`--json`) and the stages hand each other:
//! per image (built or not), per push, per list, and a release's summary.

use crate::arch::Host;
use crate::image::Image;
use crate::packages::shortfall::Shortfall;
use crate::plan::{ImagePlan, Plan};
use serde::Serialize;

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

/// What happened to an image in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PushStatus {
    /// Written now.
    Pushed,
    /// The tag already named exactly this manifest.
    Present,
}

/// What happened to a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ListStatus {
    /// Written now.
    Written,
    /// The tag already held exactly this list.
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

/// One image in the registry, pushed now or already there.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PushedImage {
    /// `repo:tag`.
    pub reference: String,
    /// Manifest digest in the registry.
    pub digest: String,
    /// Manifest size.
    pub size: u64,
    /// Manifest media type.
    pub media_type: String,
    /// Whether it was written now.
    pub status: PushStatus,
}

/// One manifest list.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PublishedList {
    /// `repo:tag`.
    pub reference: String,
    /// Digest of the list.
    pub digest: String,
    /// Whether the list was written now.
    pub status: ListStatus,
    /// Platforms listed.
    pub platforms: Vec<String>,
}

/// What the blob uploads came to.
#[derive(Debug, Default, Serialize)]
pub(crate) struct UploadStats {
    /// Blobs sent.
    pub blobs: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Blobs the registry already had.
    pub present: u64,
    /// Blobs mounted from a repository of the same registry released to earlier in the run.
    pub mounted: u64,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    pub images: Vec<BuiltImage>,
    pub pushed: Vec<PushedImage>,
    pub lists: Vec<PublishedList>,
    pub uploads: UploadStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<LayoutReport>,
    pub supply: SupplyReport,
    /// The emulators tested before the push (`qus test`'s rows), when a test ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<crate::emutest::Row>,
    /// What the run could not do: packages it could not use, lists it did not write.
    #[serde(flatten)]
    pub shortfall: crate::packages::shortfall::Shortfall,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
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

/// Keeps the successes and returns the first failure, after every result is in.
pub(crate) fn collect<T>(results: Vec<anyhow::Result<T>>, into: &mut Vec<T>) -> anyhow::Result<()> {
    let mut first = None;
    for r in results {
        match r {
            Ok(v) => into.push(v),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// What a layout write did.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct LayoutReport {
    /// Blobs written now.
    pub written: usize,
    /// Blobs that were already there.
    pub present: usize,
    /// Tags in `index.json` after the write.
    pub tags: usize,
    /// Lists left as they were, each with the platforms this run's list would have lost
    /// (reported as the run's shortfall).
    #[serde(skip)]
    pub lists_kept: Vec<(String, Vec<String>)>,
}

/// What the supply-chain step did: SBOMs and provenances attached, signatures written.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct SupplyReport {
    /// Attestations (SBOM, provenance) pushed now.
    pub attestations_pushed: usize,
    /// Attestations already attached.
    pub attestations_present: usize,
    /// Whether the registry answered the referrers API (else the `sha256-<hex>` tags).
    pub referrers_api: bool,
    /// Signatures written now (images and lists).
    pub signatures_written: usize,
    /// Signatures already there.
    pub signatures_present: usize,
}

/// What a build did: each image made now or already there, the plan of what could be made
/// (the whole plan when every package was there), and what it could not do.
pub(crate) struct Built {
    /// The images in the daemon, in plan order.
    pub images: Vec<BuiltImage>,
    /// The plan without what was left out.
    pub made: Plan,
    /// What was left out, and why.
    pub shortfall: Shortfall,
}

impl Built {
    /// Nothing to make: every image is up to date.
    pub(crate) fn up_to_date(plan: &Plan, done: Vec<BuiltImage>) -> Built {
        Built {
            images: ordered(plan, done),
            made: plan.clone(),
            shortfall: Shortfall::default(),
        }
    }
}
