//! The JSON documents: descriptors, platforms, image manifests and lists.
//!
//! Lists are built the way `crane index append` builds them: start from an empty
//! list of a chosen kind and append descriptors with a platform. Serialization is
//! deterministic (entries sorted by platform then digest, compact JSON, fields in a
//! fixed order) so the same entries always give the same bytes and so the same digest;
//! that is what lets `publish_index` see that a tag already holds exactly this list.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::media::{self, ListKind};

/// Where an image runs: the OCI platform triple.
///
/// Field order is the JSON order Docker writes (`architecture`, `os`, `variant`); the
/// derived ordering is what sorts list entries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture in Go/OCI spelling (`amd64`, `arm64`, `arm`, `386`, `ppc64le` …).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v7` for `arm`, `v8` for `arm64`), when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/architecture[/variant]` parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// Parses `os/architecture[/variant]` (`linux/arm/v7`).
    pub fn parse(text: &str) -> Option<Platform> {
        let mut parts = text.split('/');
        let os = parts.next().filter(|s| !s.is_empty())?;
        let arch = parts.next().filter(|s| !s.is_empty())?;
        let variant = parts.next();
        if parts.next().is_some() || variant == Some("") {
            return None;
        }
        Some(Platform::new(os, arch, variant))
    }

    /// The canonical form used to compare platforms: aliases folded (`aarch64` →
    /// `arm64`, `x86_64` → `amd64` …) and default variants made explicit or dropped
    /// the way containerd does (`arm` means `arm/v7`, `arm64/v8` means `arm64`).
    pub fn normalized(&self) -> Platform {
        let os = self.os.to_ascii_lowercase();
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let (arch, variant) = match (arch.as_str(), variant.as_deref()) {
            ("aarch64" | "arm64", None | Some("v8" | "8")) => ("arm64".to_string(), None),
            ("aarch64", Some(v)) => ("arm64".to_string(), Some(v.to_string())),
            ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
            ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
            ("arm", None) => ("arm".to_string(), Some("v7".to_string())),
            ("arm", Some(v)) => {
                let v = if v.starts_with('v') {
                    v.to_string()
                } else {
                    format!("v{v}")
                };
                ("arm".to_string(), Some(v))
            }
            ("x86_64" | "x86-64" | "amd64", None | Some("v1")) => ("amd64".to_string(), None),
            ("i386" | "i486" | "i586" | "i686", _) => ("386".to_string(), None),
            ("ppc64el", v) => ("ppc64le".to_string(), v.map(str::to_string)),
            (a, v) => (a.to_string(), v.map(str::to_string)),
        };
        Platform {
            architecture: arch,
            os,
            variant,
        }
    }

    /// Whether two platforms name the same target once normalized.
    pub fn same_as(&self, other: &Platform) -> bool {
        self.normalized() == other.normalized()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor: what a list entry or a manifest's config/layer points at.
///
/// Field order is the JSON order Docker and crane write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type of the target.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// Size of the target in bytes.
    pub size: u64,
    /// Digest of the target.
    pub digest: Digest,
    /// Platform of the target (list entries only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The artifact type of the target (entries of a referrers list).
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// Annotations (entries of a referrers list carry their manifest's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The target's bytes inline, base64 (the OCI empty config carries `e30=`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

impl Descriptor {
    /// A descriptor of `size` bytes of `media_type` with `digest`, nothing else.
    pub fn new(media_type: &str, size: u64, digest: Digest) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            size,
            digest,
            platform: None,
            artifact_type: None,
            annotations: None,
            data: None,
        }
    }

    /// A descriptor of `bytes` with `media_type`.
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, bytes.len() as u64, Digest::sha256(bytes))
    }
}

/// A Docker manifest list or an OCI index (same shape, different `mediaType`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// Always written explicitly: the registry and clients key on it.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// The per-platform entries.
    pub manifests: Vec<Descriptor>,
}

impl Index {
    /// A list with no entries, of the given kind.
    pub fn empty(kind: ListKind) -> Index {
        Index {
            schema_version: 2,
            media_type: kind.media_type().to_string(),
            manifests: Vec::new(),
        }
    }

    /// Adds an entry pointing at `descriptor`, with `platform` replacing any it had.
    pub fn append(mut self, descriptor: Descriptor, platform: Platform) -> Index {
        self.manifests.push(Descriptor {
            platform: Some(platform),
            ..descriptor
        });
        self
    }

    /// Two entries for the same (normalized) platform, if any: a client could not
    /// choose between them.
    pub fn duplicate_platform(&self) -> Option<&Platform> {
        let mut seen = Vec::new();
        for platform in self.manifests.iter().filter_map(|d| d.platform.as_ref()) {
            let n = platform.normalized();
            if seen.contains(&n) {
                return Some(platform);
            }
            seen.push(n);
        }
        None
    }

    /// Deterministic bytes: entries sorted by platform then digest, compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut sorted = self.clone();
        sorted
            .manifests
            .sort_by(|a, b| (&a.platform, &a.digest).cmp(&(&b.platform, &b.digest)));
        serde_json::to_vec(&sorted).expect("an index always serializes")
    }

    /// Digest of [`Index::to_bytes`].
    pub fn digest(&self) -> Digest {
        Digest::sha256(&self.to_bytes())
    }
}

/// A single-platform image manifest (Docker schema 2 or OCI), or an OCI artifact manifest
/// (an image manifest with `artifactType` and a `subject`: an SBOM, a provenance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageManifest {
    /// Always 2.
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    /// [`media::DOCKER_MANIFEST`] or [`media::OCI_MANIFEST`], always written.
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// What kind of artifact this is (OCI 1.1), when it is not an image.
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// The image config blob (for an artifact: the OCI empty config).
    pub config: Descriptor,
    /// The layer blobs, base first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to (OCI 1.1 referrers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl ImageManifest {
    /// A manifest of `media_type` (Docker schema 2 or OCI) over a config and layers.
    pub fn new(media_type: &str, config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest {
            schema_version: 2,
            media_type: media_type.to_string(),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: None,
        }
    }

    /// A Docker schema 2 manifest over a config and layers.
    pub fn docker(config: Descriptor, layers: Vec<Descriptor>) -> ImageManifest {
        ImageManifest::new(media::DOCKER_MANIFEST, config, layers)
    }

    /// Compact JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest always serializes")
    }
}

/// Reads the platform fields (`architecture`, `os`, `variant`) of an image config blob.
pub fn config_platform(config: &[u8]) -> Result<Platform, serde_json::Error> {
    serde_json::from_slice::<Platform>(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(n: u8) -> Descriptor {
        Descriptor::of(media::DOCKER_MANIFEST, &[n])
    }

    #[test]
    fn parse_platform() {
        assert_eq!(
            Platform::parse("linux/arm/v7"),
            Some(Platform::new("linux", "arm", Some("v7")))
        );
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/arm/",
            "linux/arm/v7/x",
        ] {
            assert_eq!(Platform::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn normalization_folds_aliases_and_default_variants() {
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(p("linux/arm64/v8").same_as(&p("linux/arm64")));
        assert!(p("linux/aarch64").same_as(&p("linux/arm64/v8")));
        assert!(p("linux/arm").same_as(&p("linux/arm/v7")));
        assert!(p("linux/arm/7").same_as(&p("linux/arm/v7")));
        assert!(p("linux/x86_64").same_as(&p("linux/amd64")));
        assert!(p("linux/i686").same_as(&p("linux/386")));
        assert!(!p("linux/arm/v6").same_as(&p("linux/arm/v7")));
        assert!(!p("linux/arm64").same_as(&p("linux/arm/v8")));
        assert!(!p("linux/amd64").same_as(&p("windows/amd64")));
    }

    #[test]
    fn index_bytes_are_deterministic_and_explicit() {
        let plats = [
            Platform::parse("linux/arm/v7").unwrap(),
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64/v8").unwrap(),
        ];
        let a = (0..3).fold(Index::empty(ListKind::default()), |i, n| {
            i.append(desc(n), plats[n as usize].clone())
        });
        let b = (0..3)
            .rev()
            .fold(Index::empty(ListKind::default()), |i, n| {
                i.append(desc(n), plats[n as usize].clone())
            });
        assert_eq!(a.to_bytes(), b.to_bytes());
        assert_eq!(a.digest(), b.digest());
        let text = String::from_utf8(a.to_bytes()).unwrap();
        assert!(text.starts_with(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:"#
        ), "{text}");
        assert!(!text.contains(' ') && !text.contains('\n'));
        // sorted by platform: amd64, arm/v7, arm64/v8
        let order: Vec<_> = serde_json::from_slice::<Index>(&a.to_bytes())
            .unwrap()
            .manifests
            .into_iter()
            .map(|d| d.platform.unwrap().to_string())
            .collect();
        assert_eq!(order, ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]);
        // the OCI kind differs only by mediaType
        let oci = Index {
            media_type: media::OCI_INDEX.into(),
            ..a.clone()
        };
        assert_ne!(oci.digest(), a.digest());
        assert!(String::from_utf8(oci.to_bytes())
            .unwrap()
            .contains(r#""mediaType":"application/vnd.oci.image.index.v1+json""#));
    }

    #[test]
    fn duplicate_platforms_are_found_after_normalization() {
        let i = Index::empty(ListKind::default())
            .append(desc(1), Platform::parse("linux/arm64").unwrap())
            .append(desc(2), Platform::parse("linux/arm64/v8").unwrap());
        assert!(i.duplicate_platform().is_some());
        let i = Index::empty(ListKind::default())
            .append(desc(1), Platform::parse("linux/arm/v6").unwrap())
            .append(desc(2), Platform::parse("linux/arm/v7").unwrap());
        assert!(i.duplicate_platform().is_none());
    }

    #[test]
    fn config_platform_reads_the_config_fields() {
        let cfg = br#"{"architecture":"arm","os":"linux","variant":"v7","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
        assert_eq!(
            config_platform(cfg).unwrap(),
            Platform::parse("linux/arm/v7").unwrap()
        );
        let cfg = br#"{"architecture":"amd64","os":"linux"}"#;
        assert_eq!(
            config_platform(cfg).unwrap(),
            Platform::parse("linux/amd64").unwrap()
        );
        assert!(config_platform(b"{}").is_err());
        assert!(config_platform(b"nope").is_err());
    }

    #[test]
    fn image_manifest_writes_media_type() {
        let m = ImageManifest::docker(Descriptor::of(media::DOCKER_CONFIG, b"{}"), vec![]);
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert!(text.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2"#), "{text}");
    }
}
