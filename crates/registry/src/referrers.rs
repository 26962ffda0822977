//! OCI 1.1 referrers: artifacts (an SBOM, a provenance) that point at a manifest through
//! their `subject`.
//!
//! A registry that implements the referrers API lists them at
//! `GET /v2/<name>/referrers/<digest>` and says so when a manifest with a `subject` is
//! pushed (the `OCI-Subject` header). One that does not (distribution 2.8 answers the API
//! with a plain-text 404) gets the spec's *referrers tag schema* instead: the pusher keeps
//! an OCI index under the tag `sha256-<hex>` of the subject, one descriptor per referrer.
//! Both are handled here; the documents themselves are built by the caller, pure.
//!
//! Everything is add-only and idempotent: a referrer already listed is not pushed or
//! listed again, so a second run with the same artifacts sends no PUT.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::Method;

use crate::client::Client;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, ImageManifest, Index};
use crate::media;
use crate::reference::Reference;
use crate::transport::Call;

/// The OCI empty descriptor's content: `{}`.
pub const EMPTY_JSON: &[u8] = b"{}";

/// Largest referrers list read.
const REFERRERS_MAX: usize = 4 * 1024 * 1024;

/// The tag of the referrers tag schema for `subject`: `sha256-<hex>`.
pub fn fallback_tag(subject: &Digest) -> String {
    subject.as_str().replacen(':', "-", 1)
}

/// The OCI empty config descriptor (`application/vnd.oci.empty.v1+json`, `{}` inline).
pub fn empty_config() -> Descriptor {
    Descriptor {
        data: Some("e30=".into()),
        ..Descriptor::of(media::OCI_EMPTY, EMPTY_JSON)
    }
}

/// One artifact to attach: a single blob and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Artifact {
    /// The manifest's `artifactType` (`application/spdx+json`).
    pub artifact_type: String,
    /// The blob's media type (usually the same).
    pub media_type: String,
    /// The blob.
    pub bytes: Bytes,
    /// The manifest's annotations (copied into the referrers list).
    pub annotations: BTreeMap<String, String>,
    /// An annotation key that makes the artifact one of a kind: when a listed referrer of
    /// the same artifact type has the same value for it, this artifact counts as attached
    /// (a provenance is recorded once, by the run that first published the image).
    pub unique_by: Option<String>,
}

impl Artifact {
    /// The artifact manifest that refers to `subject` (pure, deterministic bytes).
    pub fn manifest(&self, subject: &Descriptor) -> ImageManifest {
        let subject = Descriptor::new(&subject.media_type, subject.size, subject.digest.clone());
        ImageManifest {
            schema_version: 2,
            media_type: media::OCI_MANIFEST.to_string(),
            artifact_type: Some(self.artifact_type.clone()),
            config: empty_config(),
            layers: vec![Descriptor::of(&self.media_type, &self.bytes)],
            subject: Some(subject),
            annotations: (!self.annotations.is_empty()).then(|| self.annotations.clone()),
        }
    }
}

impl Artifact {
    /// Whether `listed` (an entry of a referrers list) stands for this artifact, whose own
    /// entry is `desc`.
    fn is_listed_as(&self, desc: &Descriptor, listed: &Descriptor) -> bool {
        if listed.digest == desc.digest {
            return true;
        }
        let Some(key) = &self.unique_by else {
            return false;
        };
        listed.artifact_type.as_deref() == Some(self.artifact_type.as_str())
            && listed
                .annotations
                .as_ref()
                .and_then(|a| a.get(key))
                .is_some_and(|v| self.annotations.get(key) == Some(v))
    }
}

/// The descriptor a referrers list holds for an artifact manifest.
pub fn referrer_descriptor(manifest: &ImageManifest) -> Descriptor {
    let bytes = manifest.to_bytes();
    Descriptor {
        artifact_type: manifest.artifact_type.clone(),
        annotations: manifest.annotations.clone(),
        ..Descriptor::of(&manifest.media_type, &bytes)
    }
}

/// The referrers of a manifest, and where the list came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrers {
    /// The list (empty when there are none).
    pub index: Index,
    /// True when the registry's referrers API answered; false: the `sha256-<hex>` tag.
    pub api: bool,
}

/// What [`Client::attach`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attached {
    /// Artifact manifests pushed now.
    pub pushed: usize,
    /// Artifacts that were already listed.
    pub present: usize,
    /// Whether the `sha256-<hex>` list was (re)written.
    pub fallback_written: bool,
}

fn empty_index() -> Index {
    Index {
        schema_version: 2,
        media_type: media::OCI_INDEX.to_string(),
        manifests: Vec::new(),
    }
}

impl Client {
    /// The referrers API's answer for `subject`: `Some` when the registry implements it,
    /// `None` when it answers 404 (no API: use the tag schema).
    pub async fn referrers_api(
        &self,
        repository: &Reference,
        subject: &Digest,
    ) -> Result<Option<Index>> {
        let op = format!("GET referrers {}@{subject}", repository.name());
        let call = Call {
            home: self.home(repository)?,
            registry: repository.registry(),
            repository: Some(repository.repository()),
            push: false,
            method: Method::GET,
            url: self.url(
                repository,
                &format!("/v2/{}/referrers/{subject}", repository.repository()),
            )?,
            headers: vec![("accept", media::OCI_INDEX.to_string())],
            body: None,
            op: op.clone(),
            accept: &[200, 404],
            max_body: REFERRERS_MAX,
        };
        let answer = self.transport.execute(&call).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        serde_json::from_slice::<Index>(&answer.body)
            .map(Some)
            .map_err(|e| Error::InvalidResponse {
                registry: repository.registry().to_string(),
                op,
                reason: format!("the referrers list is not an OCI index ({e})"),
            })
    }

    /// The referrers of `subject`: the API's list when the registry has one, else the
    /// `sha256-<hex>` tag's (empty when the tag does not exist). Whether the registry has
    /// the API is asked once per registry and remembered.
    pub async fn referrers(&self, repository: &Reference, subject: &Digest) -> Result<Referrers> {
        let known = self.referrers_support(repository.registry());
        if known != Some(false) {
            if let Some(index) = self.referrers_api(repository, subject).await? {
                self.set_referrers_support(repository.registry(), true);
                return Ok(Referrers { index, api: true });
            }
            self.set_referrers_support(repository.registry(), false);
        }
        Ok(Referrers {
            index: self.fallback_index(repository, subject).await?,
            api: false,
        })
    }

    async fn fallback_index(&self, repository: &Reference, subject: &Digest) -> Result<Index> {
        let tag = repository.with_tag(&fallback_tag(subject))?;
        if self.manifest_head(&tag).await?.is_none() {
            return Ok(empty_index());
        }
        let raw = self.manifest_get(&tag).await?;
        serde_json::from_slice::<Index>(&raw.bytes).map_err(|e| Error::InvalidResponse {
            registry: repository.registry().to_string(),
            op: format!("GET manifest {tag}"),
            reason: format!("the referrers tag does not hold an OCI index ({e})"),
        })
    }

    /// Attaches `artifacts` to `subject` (a manifest of `repository`): those not listed yet
    /// get their blob and manifest pushed (the empty config first: distribution refuses a
    /// manifest whose config blob it does not have), then, on a registry without the
    /// referrers API, the `sha256-<hex>` list gets their descriptors, in one PUT.
    pub async fn attach(
        &self,
        repository: &Reference,
        subject: &Descriptor,
        artifacts: &[Artifact],
    ) -> Result<Attached> {
        let mut out = Attached::default();
        // The common case on a registry without the API, after the first run: the tag holds
        // exactly our list. One HEAD says so.
        if self.referrers_support(repository.registry()) == Some(false) {
            let ours = artifacts.iter().fold(empty_index(), |mut i, a| {
                i.manifests.push(referrer_descriptor(&a.manifest(subject)));
                i
            });
            let tag = repository.with_tag(&fallback_tag(&subject.digest))?;
            if self
                .manifest_head(&tag)
                .await?
                .is_some_and(|h| h.digest == ours.digest())
            {
                out.present = artifacts.len();
                return Ok(out);
            }
        }
        let mut current = self.referrers(repository, &subject.digest).await?;
        let mut added = Vec::new();
        for a in artifacts {
            let manifest = a.manifest(subject);
            let desc = referrer_descriptor(&manifest);
            if current
                .index
                .manifests
                .iter()
                .any(|d| a.is_listed_as(&desc, d))
            {
                out.present += 1;
                continue;
            }
            self.upload_blob(repository, media::OCI_EMPTY, Bytes::from_static(EMPTY_JSON))
                .await?;
            self.upload_blob(repository, &a.media_type, a.bytes.clone())
                .await?;
            let at = repository.with_digest(desc.digest.clone());
            let (_, oci_subject) = self
                .put_manifest_answer(&at, Bytes::from(manifest.to_bytes()), media::OCI_MANIFEST)
                .await?;
            if oci_subject.as_deref() == Some(subject.digest.as_str()) {
                // The registry indexes it itself: no tag to maintain.
                current.api = true;
            }
            out.pushed += 1;
            added.push(desc);
        }
        if added.is_empty() || current.api {
            return Ok(out);
        }
        // Read the list again right before writing it: keep what others added meanwhile.
        let mut index = self.fallback_index(repository, &subject.digest).await?;
        for d in added {
            if !index.manifests.iter().any(|m| m.digest == d.digest) {
                index.manifests.push(d);
            }
        }
        let tag = repository.with_tag(&fallback_tag(&subject.digest))?;
        self.put_manifest(&tag, Bytes::from(index.to_bytes()), media::OCI_INDEX)
            .await?;
        out.fallback_written = true;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_empty_config() {
        let d = Digest::sha256(b"x");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.hex()));
        let e = empty_config();
        assert_eq!(
            e.digest.as_str(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(e.size, 2);
    }

    #[test]
    fn artifact_manifest_is_the_spec_shape() {
        let subject = Descriptor::of(media::OCI_MANIFEST, b"{\"a\":1}");
        let a = Artifact {
            artifact_type: "application/spdx+json".into(),
            media_type: "application/spdx+json".into(),
            bytes: Bytes::from_static(b"{}"),
            annotations: [("k".to_string(), "v".to_string())].into(),
            unique_by: Some("k".into()),
        };
        let m = a.manifest(&subject);
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert!(
            text.starts_with(
                r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/spdx+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","data":"e30="},"layers":[{"mediaType":"application/spdx+json","size":2,"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#""subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7,"#
        ));
        assert!(text.ends_with(r#""annotations":{"k":"v"}}"#), "{text}");
        let d = referrer_descriptor(&m);
        assert_eq!(d.artifact_type.as_deref(), Some("application/spdx+json"));
        assert_eq!(d.digest, Digest::sha256(&m.to_bytes()));
        // One of a kind: another manifest with the same type and key counts as this one.
        let other = Descriptor {
            digest: Digest::sha256(b"other"),
            ..d.clone()
        };
        assert!(a.is_listed_as(&d, &other));
        let foreign = Descriptor {
            annotations: None,
            ..other.clone()
        };
        assert!(!a.is_listed_as(&d, &foreign));
        // Round trip: what a registry gives back parses into the same value.
        assert_eq!(
            serde_json::from_slice::<ImageManifest>(&m.to_bytes()).unwrap(),
            m
        );
    }
}
