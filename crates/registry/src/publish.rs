//! Publishing a multi-platform list under a tag, safely and idempotently.
//!
//! The order of work is the guarantee: (1) every entry is resolved to a digest in
//! the target repository and verified present (HEAD); (2) each entry's declared
//! platform is checked against its image config; (3) the list is built
//! deterministically; (4) if the tag already points at exactly these bytes nothing
//! is written; (5) otherwise one PUT. A failure in (1)–(3) therefore leaves the
//! registry untouched (the previous list stays in place), and re-running after any
//! failure converges on the same digest.

use std::fmt;

use bytes::Bytes;
use futures::future::try_join_all;
use serde::Deserialize;

use crate::client::Client;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{config_platform, Descriptor, Index, Platform};
use crate::media::{self, ListKind};
use crate::reference::Reference;

/// Where a list entry's manifest comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A tag or digest reference in the target repository.
    Reference(Reference),
    /// A manifest digest in the target repository.
    Digest(Digest),
}

impl From<Reference> for Source {
    fn from(r: Reference) -> Source {
        Source::Reference(r)
    }
}

impl From<Digest> for Source {
    fn from(d: Digest) -> Source {
        Source::Digest(d)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Reference(r) => write!(f, "{r}"),
            Source::Digest(d) => write!(f, "{d}"),
        }
    }
}

/// One entry of a list to publish: a manifest and the platform it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The manifest.
    pub source: Source,
    /// The platform written in the list (must agree with the image config).
    pub platform: Platform,
}

impl IndexEntry {
    /// An entry.
    pub fn new(source: impl Into<Source>, platform: Platform) -> IndexEntry {
        IndexEntry {
            source: source.into(),
            platform,
        }
    }
}

/// What [`Client::publish_index`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The tag already pointed at exactly this list; nothing was written.
    Unchanged {
        /// The list's digest.
        digest: Digest,
    },
    /// The list was written (the tag was new or pointed elsewhere).
    Written {
        /// The list's digest.
        digest: Digest,
    },
}

impl Outcome {
    /// The list's digest, written or not.
    pub fn digest(&self) -> &Digest {
        match self {
            Outcome::Unchanged { digest } | Outcome::Written { digest } => digest,
        }
    }
}

/// A list ready to write: the verified entries and its deterministic bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedIndex {
    /// The list.
    pub index: Index,
    /// Its bytes (what is written).
    pub bytes: Bytes,
    /// Digest of `bytes`.
    pub digest: Digest,
}

/// Only the part of an image manifest that platform verification reads.
#[derive(Deserialize)]
struct ConfigRef {
    config: Descriptor,
}

impl Client {
    /// Verifies every entry and builds the list, without writing anything.
    pub async fn prepare_index(
        &self,
        target: &Reference,
        entries: &[IndexEntry],
        kind: ListKind,
    ) -> Result<PreparedIndex> {
        let target_text = target.to_string();
        if target.tag().is_none() || target.digest().is_some() {
            return Err(Error::InvalidReference {
                input: target_text,
                reason: "a list is published under a tag, without digest".into(),
            });
        }
        if entries.is_empty() {
            return Err(Error::InvalidEntry {
                target: target_text,
                entry: "(none)".into(),
                reason: "a list needs at least one entry".into(),
            });
        }
        let descriptors = try_join_all(entries.iter().map(|e| self.locate(target, e))).await?;
        try_join_all(
            entries
                .iter()
                .zip(&descriptors)
                .map(|(e, d)| self.check_platform(target, e, d)),
        )
        .await?;
        let index = entries
            .iter()
            .zip(descriptors)
            .fold(Index::empty(kind), |index, (e, d)| {
                index.append(d, e.platform.clone())
            });
        if let Some(platform) = index.duplicate_platform() {
            return Err(Error::InvalidEntry {
                target: target_text,
                entry: platform.to_string(),
                reason: "two entries are for the same platform".into(),
            });
        }
        let bytes = Bytes::from(index.to_bytes());
        let digest = Digest::sha256(&bytes);
        Ok(PreparedIndex {
            index,
            bytes,
            digest,
        })
    }

    /// Publishes a list of `kind` under `target`'s tag over `entries`.
    ///
    /// Every entry is verified present in the target repository and its platform
    /// checked against its image config before anything is written; the tag is not
    /// rewritten when it already holds exactly these bytes.
    pub async fn publish_index(
        &self,
        target: &Reference,
        entries: &[IndexEntry],
        kind: ListKind,
    ) -> Result<Outcome> {
        let prepared = self.prepare_index(target, entries, kind).await?;
        if let Some(current) = self.manifest_head(target).await? {
            if current.digest == prepared.digest {
                return Ok(Outcome::Unchanged {
                    digest: prepared.digest,
                });
            }
        }
        let written = self
            .put_manifest(target, prepared.bytes, kind.media_type())
            .await?;
        Ok(Outcome::Written { digest: written })
    }

    /// Writes `index` under `target`'s tag unless the tag already holds exactly its bytes
    /// (one HEAD). For a caller that knows every entry is in `target`'s repository with the
    /// platform it names, because it wrote or HEADed each one itself; otherwise use
    /// [`Client::publish_index`], which checks them.
    pub async fn put_index(&self, target: &Reference, index: &Index) -> Result<Outcome> {
        if target.tag().is_none() || target.digest().is_some() {
            return Err(Error::InvalidReference {
                input: target.to_string(),
                reason: "a list is published under a tag, without digest".into(),
            });
        }
        if let Some(p) = index.duplicate_platform() {
            return Err(Error::InvalidEntry {
                target: target.to_string(),
                entry: p.to_string(),
                reason: "two entries have this platform".into(),
            });
        }
        let bytes = Bytes::from(index.to_bytes());
        let digest = Digest::sha256(&bytes);
        if let Some(current) = self.manifest_head(target).await? {
            if current.digest == digest {
                return Ok(Outcome::Unchanged { digest });
            }
        }
        let written = self.put_manifest(target, bytes, &index.media_type).await?;
        Ok(Outcome::Written { digest: written })
    }

    /// Resolves an entry to the descriptor of a manifest present in `target`'s repository.
    async fn locate(&self, target: &Reference, entry: &IndexEntry) -> Result<Descriptor> {
        let invalid = |reason: String| Error::InvalidEntry {
            target: target.to_string(),
            entry: entry.source.to_string(),
            reason,
        };
        let by_digest = match &entry.source {
            Source::Digest(d) => target.with_digest(d.clone()),
            Source::Reference(r) => {
                if !r.same_repository(target) {
                    return Err(invalid(format!(
                        "it is in {}, not in {}; a list can only name manifests of its own repository",
                        r.name(),
                        target.name()
                    )));
                }
                match r.digest() {
                    Some(d) => target.with_digest(d.clone()),
                    None => match self.manifest_head(r).await? {
                        Some(found) => target.with_digest(found.digest),
                        None => return Err(missing(target, entry)),
                    },
                }
            }
        };
        let descriptor = self
            .manifest_head(&by_digest)
            .await?
            .ok_or_else(|| missing(target, entry))?;
        if !media::is_image_manifest(&descriptor.media_type) {
            return Err(invalid(format!(
                "it is a {}, not a single-platform image manifest",
                descriptor.media_type
            )));
        }
        Ok(descriptor)
    }

    /// Refuses an entry whose image config names another platform than declared.
    async fn check_platform(
        &self,
        target: &Reference,
        entry: &IndexEntry,
        descriptor: &Descriptor,
    ) -> Result<()> {
        let invalid = |reason: String| Error::InvalidEntry {
            target: target.to_string(),
            entry: entry.source.to_string(),
            reason,
        };
        // One read per manifest digest, however many lists name it at once.
        let cell = self
            .platforms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(descriptor.digest.clone())
            .or_default()
            .clone();
        let actual = cell
            .get_or_try_init(|| self.read_platform(target, descriptor))
            .await
            .map_err(|e| match e {
                PlatformRead::Invalid(reason) => invalid(reason),
                PlatformRead::Registry(e) => e,
            })?
            .clone();
        if !actual.same_as(&entry.platform) {
            return Err(Error::PlatformMismatch {
                target: target.to_string(),
                entry: entry.source.to_string(),
                declared: entry.platform.to_string(),
                config: actual.to_string(),
            });
        }
        Ok(())
    }

    /// The platform an image manifest's config names.
    async fn read_platform(
        &self,
        target: &Reference,
        descriptor: &Descriptor,
    ) -> std::result::Result<Platform, PlatformRead> {
        let at = target.with_digest(descriptor.digest.clone());
        let manifest = self
            .manifest_get(&at)
            .await
            .map_err(PlatformRead::Registry)?;
        let config: ConfigRef = serde_json::from_slice(&manifest.bytes).map_err(|e| {
            PlatformRead::Invalid(format!(
                "its manifest has no usable config descriptor ({e})"
            ))
        })?;
        let blob = self
            .blob_get(target, &config.config.digest)
            .await
            .map_err(PlatformRead::Registry)?;
        config_platform(&blob).map_err(|e| PlatformRead::Invalid(format!("image config: {e}")))
    }
}

enum PlatformRead {
    Invalid(String),
    Registry(Error),
}

fn missing(target: &Reference, entry: &IndexEntry) -> Error {
    Error::MissingManifest {
        target: target.to_string(),
        entry: entry.source.to_string(),
    }
}
