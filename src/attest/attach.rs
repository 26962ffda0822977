//! The supply-chain artifacts in a registry: each per-host image's SBOM and provenance as
//! OCI referrers, and cosign-format signatures of images and lists under their
//! `sha256-<hex>.sig` tags. The documents come from `crate::attest` (pure); this module only
//! writes what is missing, so a re-run sends HEADs and no PUT.

use crate::attest::{self, sign, BuildContext};
use crate::outcome::SupplyReport;
use crate::plan::{ImagePlan, Plan};
use crate::sink::registry::Registry;
use crate::ui::progress::Progress;
use anyhow::Context as _;
use bytes::Bytes;
use futures::StreamExt as _;
use qus_registry::{Descriptor, Digest, ImageManifest};

/// At most this many images are handled at once.
const IN_FLIGHT: usize = 8;

/// Attaches the SBOM and the provenance to every image of `images` (its plan and the
/// descriptor of its manifest in the registry).
pub(crate) async fn attest(
    reg: &Registry,
    plan: &Plan,
    images: &[(&ImagePlan, Descriptor)],
    ctx: &BuildContext,
    report: &mut SupplyReport,
    progress: &Progress,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<qus_registry::Attached>> = futures::stream::iter(images)
        .map(|(img, desc)| async move {
            let artifacts = attest::artifacts(plan, img, &desc.digest, ctx);
            reg.client
                .attach(&reg.repo, desc, &artifacts)
                .await
                .with_context(|| format!("attaching the SBOM and provenance of {}", img.reference))
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for r in results {
        let a = r?;
        report.attestations_pushed += a.pushed;
        report.attestations_present += a.present;
    }
    report.referrers_api = reg.client.referrers_api_known(reg.repo.registry());
    progress.step(format!(
        "SBOM and provenance of {} images: {} attached now, {} already there ({})",
        images.len(),
        report.attestations_pushed,
        report.attestations_present,
        if report.referrers_api {
            "referrers API"
        } else {
            "referrers tags sha256-<hex>"
        }
    ));
    Ok(())
}

/// Signs every manifest of `targets` (what, digest) with `key`, once per digest: tags that
/// alias one manifest (`d10.0-arm` and `arm`) share its one `.sig` tag, and two concurrent
/// writers of that tag would each see it absent and race.
pub(crate) async fn sign_all(
    reg: &Registry,
    key: &sign::Key,
    targets: &[(String, Digest)],
    report: &mut SupplyReport,
    progress: &Progress,
) -> anyhow::Result<()> {
    let docker_ref = sign::docker_reference(reg.repo.registry(), reg.repo.repository());
    let targets = by_digest(targets);
    let results: Vec<anyhow::Result<bool>> = futures::stream::iter(&targets)
        .map(|(what, digest)| {
            let docker_ref = &docker_ref;
            async move {
                sign_one(reg, key, docker_ref, digest)
                    .await
                    .with_context(|| format!("signing {what}"))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let (mut written, mut present) = (0, 0);
    for r in results {
        if r? {
            written += 1;
        } else {
            present += 1;
        }
    }
    report.signatures_written += written;
    report.signatures_present += present;
    progress.step(format!(
        "signatures of {} manifests: {written} written now, {present} already there",
        targets.len()
    ));
    Ok(())
}

/// One entry per digest, in first-seen order, naming every reference of it.
fn by_digest(targets: &[(String, Digest)]) -> Vec<(String, Digest)> {
    let mut out: Vec<(String, Digest)> = Vec::new();
    for (what, digest) in targets {
        match out.iter_mut().find(|(_, d)| d == digest) {
            Some((names, _)) => {
                names.push_str(", ");
                names.push_str(what);
            }
            None => out.push((what.clone(), digest.clone())),
        }
    }
    out
}

/// Adds this key's signature of `desc` to its `.sig` manifest unless it is there; true when
/// something was written.
async fn sign_one(
    reg: &Registry,
    key: &sign::Key,
    docker_ref: &str,
    digest: &Digest,
) -> anyhow::Result<bool> {
    let payload = sign::payload(docker_ref, digest);
    let signature = key.sign(&payload);
    let ours = sign::layer(&payload, &signature);
    let tag = reg.tag(&sign::sig_tag(digest))?;
    let (alone, _) = sign::manifest(vec![ours.clone()]);
    let layers = match reg.client.manifest_head(&tag).await? {
        None => vec![ours.clone()],
        Some(h) if h.digest == Digest::sha256(&alone.to_bytes()) => return Ok(false),
        Some(_) => {
            // Others signed it too (keyless CI signing, another key): keep their layers.
            let raw = reg.client.manifest_get(&tag).await?;
            let found: ImageManifest = serde_json::from_slice(&raw.bytes)
                .with_context(|| format!("{tag} does not hold a signature manifest"))?;
            if found.layers.iter().any(|l| l == &ours) {
                return Ok(false);
            }
            let mut layers = found.layers;
            layers.push(ours.clone());
            layers
        }
    };
    let (manifest, config) = sign::manifest(layers);
    reg.client
        .upload_blob(&reg.repo, sign::SIMPLE_SIGNING, Bytes::from(payload))
        .await?;
    reg.client
        .upload_blob(
            &reg.repo,
            qus_registry::media::OCI_CONFIG,
            Bytes::from(config),
        )
        .await?;
    reg.client
        .put_manifest(
            &tag,
            Bytes::from(manifest.to_bytes()),
            qus_registry::media::OCI_MANIFEST,
        )
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_of_one_manifest_are_signed_once() {
        let a = Digest::sha256(b"a");
        let b = Digest::sha256(b"b");
        let targets = vec![
            ("r:d10.0-arm".to_string(), a.clone()),
            ("r:d10.0".to_string(), b.clone()),
            ("r:arm".to_string(), a.clone()),
        ];
        assert_eq!(
            by_digest(&targets),
            vec![
                ("r:d10.0-arm, r:arm".to_string(), a),
                ("r:d10.0".to_string(), b)
            ]
        );
    }
}
