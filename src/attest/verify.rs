//! Reading back what `qus release` attached to a tag, with clients of the registry only:
//! is the manifest signed by this key (cosign's format, under `sha256-<hex>.sig`), and does
//! a per-host image have an SBOM and a provenance (OCI referrers) that name its pinned
//! packages by sha256? `qus verify --key` runs this for every tag.

use crate::attest::{self, provenance, sign, IN_TOTO_JSON, SPDX_JSON};
use crate::plan::{ImagePlan, Plan};
use crate::sink::registry::Registry;
use qus_registry::{Digest, ImageManifest};
use serde::Serialize;

/// What was found for one tag: `ok`, or what is wrong.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SupplyCheck {
    /// The signature by the key.
    pub signature: String,
    /// The SBOM (per-host images only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    /// The provenance (per-host images only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
}

/// The status of a check that passed.
pub(crate) const OK: &str = "ok";

impl SupplyCheck {
    /// Whether every check passed.
    pub(crate) fn ok(&self) -> bool {
        self.signature == OK
            && self.sbom.as_deref().is_none_or(|s| s == OK)
            && self.provenance.as_deref().is_none_or(|s| s == OK)
    }

    /// The first problem, for the table.
    pub(crate) fn problem(&self) -> Option<String> {
        [
            ("signature", Some(&self.signature)),
            ("SBOM", self.sbom.as_ref()),
            ("provenance", self.provenance.as_ref()),
        ]
        .into_iter()
        .find_map(|(what, s)| s.filter(|s| *s != OK).map(|s| format!("{what}: {s}")))
    }
}

/// Checks the manifest `digest` of `reg`: its signature by `key`, and for a per-host image
/// (`image`), its SBOM and provenance.
pub(crate) async fn check(
    reg: &Registry,
    key: &sign::PublicKey,
    digest: &Digest,
    image: Option<(&Plan, &ImagePlan)>,
) -> anyhow::Result<SupplyCheck> {
    let signature = signature(reg, key, digest).await?;
    let (mut sbom, mut prov) = (None, None);
    if let Some((plan, img)) = image {
        let pins: Vec<(String, String)> = attest::image_packages(plan, img)
            .into_iter()
            .map(|p| (p.package.clone(), p.sha256.clone()))
            .collect();
        let referrers = reg.client.referrers(&reg.repo, digest).await?;
        let mut docs = Vec::new();
        for kind in [SPDX_JSON, IN_TOTO_JSON] {
            let mut found = Vec::new();
            for d in referrers
                .index
                .manifests
                .iter()
                .filter(|d| d.artifact_type.as_deref() == Some(kind))
            {
                found.push(artifact(reg, &d.digest, digest).await?);
            }
            docs.push(found);
        }
        sbom = Some(judge(&docs[0], "SBOM", |doc| sbom_names(doc, &pins)));
        prov = Some(judge(&docs[1], "provenance", |doc| {
            provenance_names(doc, digest, &pins)
        }));
    }
    Ok(SupplyCheck {
        signature,
        sbom,
        provenance: prov,
    })
}

/// `ok` when one of `docs` passes `test`, else the first document's problem.
fn judge(
    docs: &[Result<serde_json::Value, String>],
    what: &str,
    test: impl Fn(&serde_json::Value) -> Result<(), String>,
) -> String {
    if docs.is_empty() {
        return format!("no {what} is attached");
    }
    let mut first = None;
    for d in docs {
        match d.as_ref().map_err(Clone::clone).and_then(&test) {
            Ok(()) => return OK.to_string(),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.unwrap_or_default()
}

/// The JSON document of the artifact manifest `manifest`, if it refers to `subject`.
async fn artifact(
    reg: &Registry,
    manifest: &Digest,
    subject: &Digest,
) -> anyhow::Result<Result<serde_json::Value, String>> {
    let raw = reg
        .client
        .manifest_get(&reg.repo.with_digest(manifest.clone()))
        .await?;
    let Ok(m) = serde_json::from_slice::<ImageManifest>(&raw.bytes) else {
        return Ok(Err(format!("{manifest} is not an artifact manifest")));
    };
    if m.subject.as_ref().map(|s| &s.digest) != Some(subject) {
        return Ok(Err(format!("{manifest} does not refer to {subject}")));
    }
    let Some(layer) = m.layers.first() else {
        return Ok(Err(format!("{manifest} has no layer")));
    };
    let bytes = reg.client.blob_get(&reg.repo, &layer.digest).await?;
    Ok(serde_json::from_slice(&bytes).map_err(|e| format!("{} is not JSON: {e}", layer.digest)))
}

fn sbom_names(doc: &serde_json::Value, pins: &[(String, String)]) -> Result<(), String> {
    if doc["spdxVersion"] != "SPDX-2.3" {
        return Err("not an SPDX 2.3 document".into());
    }
    let packages = doc["packages"].as_array().cloned().unwrap_or_default();
    for (name, sha) in pins {
        let named = packages.iter().any(|p| {
            p["name"] == name.as_str()
                && p["checksums"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["algorithm"] == "SHA256" && c["checksumValue"] == sha.as_str())
                })
        });
        if !named {
            return Err(format!("does not name {name} with sha256 {sha}"));
        }
    }
    Ok(())
}

fn provenance_names(
    doc: &serde_json::Value,
    subject: &Digest,
    pins: &[(String, String)],
) -> Result<(), String> {
    if doc["_type"] != provenance::STATEMENT_TYPE
        || doc["predicateType"] != provenance::PREDICATE_TYPE
    {
        return Err("not an in-toto statement with a SLSA v1 provenance".into());
    }
    let names_subject = doc["subject"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["digest"]["sha256"] == subject.hex()));
    if !names_subject {
        return Err(format!("its subject is not {subject}"));
    }
    let deps = doc["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (name, sha) in pins {
        if !deps.iter().any(|d| d["digest"]["sha256"] == sha.as_str()) {
            return Err(format!("does not name {name} with sha256 {sha}"));
        }
    }
    Ok(())
}

/// `ok` when a layer of the `.sig` manifest of `digest` is a payload naming `digest` in
/// this repository, signed by `key`.
async fn signature(
    reg: &Registry,
    key: &sign::PublicKey,
    digest: &Digest,
) -> anyhow::Result<String> {
    let tag = reg.tag(&sign::sig_tag(digest))?;
    if reg.client.manifest_head(&tag).await?.is_none() {
        return Ok(format!("unsigned (no {})", sign::sig_tag(digest)));
    }
    let raw = reg.client.manifest_get(&tag).await?;
    let Ok(m) = serde_json::from_slice::<ImageManifest>(&raw.bytes) else {
        return Ok(format!(
            "{} is not a signature manifest",
            sign::sig_tag(digest)
        ));
    };
    let docker_ref = sign::docker_reference(reg.repo.registry(), reg.repo.repository());
    let mut seen = 0;
    for l in &m.layers {
        let Some(sig) = l
            .annotations
            .as_ref()
            .and_then(|a| a.get(sign::SIGNATURE_ANNOTATION))
        else {
            continue;
        };
        seen += 1;
        let payload = reg.client.blob_get(&reg.repo, &l.digest).await?;
        let names = serde_json::from_slice::<sign::Payload>(&payload)
            .is_ok_and(|p| p.names(&docker_ref, digest));
        if names && key.verifies(&payload, sig) {
            return Ok(OK.to_string());
        }
    }
    Ok(format!(
        "none of the {seen} signatures is a valid signature of {digest} by this key"
    ))
}
