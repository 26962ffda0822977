//! The provenance of a per-host image: an in-toto v1 statement whose subject is the image
//! manifest's digest, with a SLSA v1 provenance predicate: what was built (the command and
//! the image it names, the config and lock by digest), by which qus, from which packages
//! (each pin by sha256), on which builder. Pure and deterministic: no clock time and no
//! run id, so the same run from a fresh runner gives the same bytes.

use super::{file_name, image_packages, purl, BuildContext};
use crate::plan::{ImagePlan, Plan};
use qus_registry::Digest;
use serde_json::json;

/// The build type: how to read `externalParameters` (documented in the README).
pub(crate) const BUILD_TYPE: &str = "urn:qus:buildtype:image:v1";
/// in-toto statement type.
pub(crate) const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// SLSA v1 provenance predicate type.
pub(crate) const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";

/// The command that rebuilds (and re-checks, with `qus verify`) exactly this image.
pub(crate) fn command(plan: &Plan, image: &ImagePlan, media_types: &str) -> String {
    let mut c = format!(
        "qus release --repo {} --sources {} --hosts {}",
        plan.repo, image.source, image.host
    );
    if !image.targets.is_empty() {
        c.push_str(&format!(" --targets {}", image.targets.join(",")));
    }
    c.push_str(&format!(" --media-types {media_types}"));
    c
}

/// The statement's bytes.
pub(crate) fn statement(
    plan: &Plan,
    image: &ImagePlan,
    digest: &Digest,
    ctx: &BuildContext,
) -> Vec<u8> {
    let deps: Vec<serde_json::Value> = image_packages(plan, image)
        .into_iter()
        .map(|p| {
            json!({
                "uri": purl(p),
                "name": file_name(&p.file),
                "digest": { "sha256": p.sha256 },
                "annotations": { "pool": p.file, "package": p.package, "version": p.version },
            })
        })
        .collect();
    let mut external = json!({
        "command": command(plan, image, &ctx.media_types),
        "repository": plan.repo,
        "tag": image.tag,
        "source": image.source,
        "host": image.host,
        "platform": image.platform.to_string(),
        "kind": image.kind.name(),
        "targets": image.targets,
        "config": { "name": ctx.config.name, "sha256": ctx.config.sha256 },
    });
    if let Some(lock) = &ctx.lock {
        external["lock"] = json!({ "name": lock.name, "sha256": lock.sha256 });
    }
    let doc = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": format!("{}:{}", plan.repo, image.tag),
            "digest": { "sha256": digest.hex() },
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {
                    "inputs": image.inputs,
                    "sourceDateEpoch": plan.epoch,
                    "mediaTypes": ctx.media_types,
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": ctx.builder_id,
                    "version": { "qus": ctx.qus_version },
                },
            },
        },
    });
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}
