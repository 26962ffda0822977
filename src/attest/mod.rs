//! What qus attaches to what it publishes, as data: an SPDX SBOM and an in-toto/SLSA
//! provenance per per-host image ([`sbom`], [`provenance`]), and cosign-format signatures
//! of every image and list ([`sign`]). The documents are pure: the same pins, image digest
//! and options give the same bytes, so a re-run finds everything already attached and
//! uploads nothing. [`attach`] writes them to a registry; [`verify`] reads them back and
//! checks them (`qus verify --key`).

pub(crate) mod attach;
pub(crate) mod provenance;
pub(crate) mod sbom;
pub(crate) mod sign;
pub(crate) mod verify;

use crate::plan::{ImagePlan, PackagePlan, Plan};
use bytes::Bytes;
use qus_registry::{Artifact, Digest};
use qus_source::rfc3339;
use std::collections::BTreeMap;

/// SPDX JSON: the SBOM's artifact and blob type.
pub(crate) const SPDX_JSON: &str = "application/spdx+json";
/// An in-toto statement: the provenance's artifact and blob type.
pub(crate) const IN_TOTO_JSON: &str = "application/vnd.in-toto+json";
/// The annotation that names what qus attached (`sbom`, `provenance`): an image gets one
/// of each from qus, from the run that first published it.
pub(crate) const KIND_ANNOTATION: &str = "qus.attestation";

/// Who and what made a release: the facts the provenance records besides the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildContext {
    /// The builder's identity (a URI): the CI workflow run's, or the default.
    pub builder_id: String,
    /// qus's version.
    pub qus_version: String,
    /// The config file's name and sha256.
    pub config: NamedDigest,
    /// The lock file's name and sha256, when there is one.
    pub lock: Option<NamedDigest>,
    /// `oci` or `docker`.
    pub media_types: String,
}

/// A file by name and sha256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedDigest {
    /// The file name (never a path: the provenance must not depend on a checkout's place).
    pub name: String,
    /// Its sha256, lowercase hex.
    pub sha256: String,
}

/// The default builder id, when neither `--builder-id` nor QUS_BUILDER_ID names one.
pub(crate) const DEFAULT_BUILDER_ID: &str = "urn:qus:builder:local";

/// The packages whose files are in `image`: busybox when it has the entrypoint, and the
/// QEMU package(s) that ship one of its emulators (Fedora: one rpm per target group).
pub(crate) fn image_packages<'a>(plan: &'a Plan, image: &ImagePlan) -> Vec<&'a PackagePlan> {
    plan.packages_for(&[image])
}

/// The two artifacts attached to a per-host image whose manifest has `digest`.
pub(crate) fn artifacts(
    plan: &Plan,
    image: &ImagePlan,
    digest: &Digest,
    ctx: &BuildContext,
) -> Vec<Artifact> {
    let created = rfc3339(plan.epoch);
    let mk = |kind: &str, media: &str, bytes: Vec<u8>| Artifact {
        artifact_type: media.to_string(),
        media_type: media.to_string(),
        bytes: Bytes::from(bytes),
        annotations: BTreeMap::from([
            (KIND_ANNOTATION.to_string(), kind.to_string()),
            (
                "org.opencontainers.image.created".to_string(),
                created.clone(),
            ),
        ]),
        unique_by: Some(KIND_ANNOTATION.to_string()),
    };
    vec![
        mk(
            "sbom",
            SPDX_JSON,
            sbom::document(plan, image, digest, &ctx.qus_version),
        ),
        mk(
            "provenance",
            IN_TOTO_JSON,
            provenance::statement(plan, image, digest, ctx),
        ),
    ]
}

/// The package URL of a pinned package (`pkg:deb/debian/qemu-user@1:10.0.13%2Bds…?arch=amd64`).
pub(crate) fn purl(p: &PackagePlan) -> String {
    let enc = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '-' | '_' | '~' | ':' => c.to_string(),
                other => {
                    let mut b = [0u8; 4];
                    other
                        .encode_utf8(&mut b)
                        .bytes()
                        .map(|x| format!("%{x:02X}"))
                        .collect()
                }
            })
            .collect()
    };
    match p.distro {
        crate::config::Distro::Debian => format!(
            "pkg:deb/debian/{}@{}?arch={}",
            enc(&p.package),
            enc(&p.version),
            p.host.debian()
        ),
        crate::config::Distro::Fedora => format!(
            "pkg:rpm/fedora/{}@{}?arch={}",
            enc(&rpm_name(&p.file).unwrap_or_else(|| p.package.clone())),
            enc(&p.version),
            rpm_arch(&p.file).unwrap_or_else(|| p.host.debian().to_string())
        ),
    }
}

/// The file name of a pool path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `qemu-user-static-aarch64` of `…/qemu-user-static-aarch64-10.0.2-1.fc43.x86_64.rpm`.
fn rpm_name(path: &str) -> Option<String> {
    let stem = file_name(path).strip_suffix(".rpm")?;
    let (nvr, _arch) = stem.rsplit_once('.')?;
    let (nv, _release) = nvr.rsplit_once('-')?;
    let (name, _version) = nv.rsplit_once('-')?;
    Some(name.to_string())
}

fn rpm_arch(path: &str) -> Option<String> {
    let stem = file_name(path).strip_suffix(".rpm")?;
    Some(stem.rsplit_once('.')?.1.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_names() {
        let f = "releases/43/Everything/x86_64/os/Packages/q/qemu-user-static-aarch64-10.0.2-1.fc43.x86_64.rpm";
        assert_eq!(rpm_name(f).as_deref(), Some("qemu-user-static-aarch64"));
        assert_eq!(rpm_arch(f).as_deref(), Some("x86_64"));
        assert_eq!(rpm_name("x.deb"), None);
    }
}
