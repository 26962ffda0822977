//! The SBOM of a per-host image: an SPDX 2.3 JSON document naming the image, every package
//! whose files are in it (the QEMU package, busybox-static) with its Debian version, arch,
//! pool file and sha256, and qus itself (the entrypoint's files and the tool). Pure and
//! deterministic: the namespace comes from the image digest, the time from
//! SOURCE_DATE_EPOCH.

use super::{file_name, image_packages, purl};
use crate::config::Distro;
use crate::plan::{ImagePlan, Kind, Plan, Role};
use qus_registry::Digest;
use qus_source::rfc3339;
use serde_json::{json, Value};

/// The license Debian's copyright files declare for QEMU's user-mode emulators and
/// busybox (the image label says the same).
const LICENSE: &str = "GPL-2.0-only";

/// The SPDX document's bytes.
pub(crate) fn document(
    plan: &Plan,
    image: &ImagePlan,
    digest: &Digest,
    qus_version: &str,
) -> Vec<u8> {
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": plan.repo,
        "versionInfo": image.tag,
        "primaryPackagePurpose": "CONTAINER",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "checksums": [{ "algorithm": "SHA256", "checksumValue": digest.hex() }],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": format!("{} image for {} ({}): {}", image.kind.name(), image.host, image.platform,
            if image.targets.is_empty() { "no emulator".to_string() } else { format!("qemu-{}", image.targets.join(", qemu-")) }),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": format!("pkg:oci/{}@{}?tag={}", repo_name(&plan.repo), digest.as_str().replace(':', "%3A"), image.tag),
        }],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    for (n, p) in image_packages(plan, image).into_iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{n}", spdx_id_part(&p.package));
        let (supplier, copyright) = match p.distro {
            Distro::Debian => (
                "Organization: Debian",
                format!("/usr/share/doc/{}/copyright", p.package),
            ),
            Distro::Fedora => (
                "Organization: Fedora Project",
                "the package's %license files".to_string(),
            ),
        };
        let what = match &p.role {
            Role::Busybox => "the registration entrypoint's shell (/qus/busybox)".to_string(),
            Role::Guest { arch } => format!("a guest program for {arch} (qus test only)"),
            Role::Qemu { source } => {
                let shipped: Vec<&String> = p
                    .targets
                    .iter()
                    .filter(|t| image.targets.contains(t))
                    .collect();
                format!(
                    "QEMU user-mode emulators of source {source}: {}",
                    shipped
                        .iter()
                        .map(|t| format!("qemu-{t}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        packages.push(json!({
            "SPDXID": id,
            "name": p.package,
            "versionInfo": p.version,
            "packageFileName": file_name(&p.file),
            "supplier": supplier,
            "downloadLocation": "NOASSERTION",
            "sourceInfo": format!("pool file {} ({} arch {})", p.file, match p.distro { Distro::Debian => "Debian", Distro::Fedora => "Fedora" }, p.host.debian()),
            "filesAnalyzed": false,
            "checksums": [{ "algorithm": "SHA256", "checksumValue": p.sha256 }],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": LICENSE,
            "licenseComments": format!("As declared for the emulators by the package's copyright file ({copyright}); parts of the source carry other GPL-compatible licenses."),
            "copyrightText": "NOASSERTION",
            "comment": what,
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl(p),
            }],
        }));
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    if image.kind != Kind::Emulators {
        packages.push(json!({
            "SPDXID": "SPDXRef-Package-qus",
            "name": "qus",
            "versionInfo": qus_version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "Apache-2.0",
            "copyrightText": "NOASSERTION",
            "comment": "the registration entrypoint (/qus/register) and its table (/qus/binfmt), written by qus",
        }));
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-Package-qus",
        }));
    }
    let doc: Value = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}:{}", plan.repo, image.tag),
        "documentNamespace": format!("https://spdx.org/spdxdocs/qus-{}-{}", image.tag, digest.hex()),
        "creationInfo": {
            "created": rfc3339(plan.epoch),
            "creators": [format!("Tool: qus-{qus_version}")],
        },
        "packages": packages,
        "relationships": relationships,
    });
    // Pretty and sorted (serde_json maps are ordered): readable with curl, same bytes always.
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// `registry/path` → `path` (a purl's name has no registry; it goes in a qualifier).
fn repo_name(repo: &str) -> &str {
    repo.rsplit('/').next().unwrap_or(repo)
}

/// Letters, digits, `.` and `-` only (SPDX identifiers).
fn spdx_id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
