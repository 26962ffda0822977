//! The image config, written by qus: platform, run settings, labels, the layers' diffIDs
//! and their history, with `created` = SOURCE_DATE_EPOCH (0 unless set). Field order is
//! fixed and labels are sorted, so the same plan gives the same bytes: the config digest
//! (the daemon's image ID) is reproducible, unlike the classic builder's, which stamps the
//! build time into every config.

use crate::arch::Platform;
use crate::plan::{ImagePlan, Kind};
use qus_registry::Digest;
use qus_source::rfc3339;
use serde::Serialize;
use std::collections::BTreeMap;

/// What every image's PATH is (the classic builder's default, kept for the same behaviour).
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Serialize)]
struct ImageConfig<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    created: &'a str,
    config: RunConfig<'a>,
    rootfs: RootFs<'a>,
    history: Vec<History<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig<'a> {
    env: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a [&'a str]>,
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<&'a Digest>,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: String,
}

/// The config of `image` over layers with these diffIDs and descriptions (base first).
pub(crate) fn config_json(
    image: &ImagePlan,
    layers: &[(&Digest, &str)],
    entrypoint: &[&str],
    epoch: u64,
) -> Vec<u8> {
    let platform: &Platform = &image.platform;
    let created = rfc3339(epoch);
    let mut env = vec![PATH.to_string()];
    // The entrypoint reads the QEMU version from the environment, so that the register
    // layer is the same for every QEMU version.
    if image.kind != Kind::Emulators {
        env.push(format!("QUS_QEMU_VERSION={}", image.qemu_version));
    }
    let doc = ImageConfig {
        architecture: &platform.architecture,
        os: &platform.os,
        variant: platform.variant.as_deref(),
        created: &created,
        config: RunConfig {
            env,
            entrypoint: (image.kind != Kind::Emulators).then_some(entrypoint),
            labels: &image.labels,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|(d, _)| *d).collect(),
        },
        history: layers
            .iter()
            .map(|(_, what)| History {
                created: &created,
                created_by: format!("qus {}: {what}", crate::VERSION),
            })
            .collect(),
    };
    serde_json::to_vec(&doc).expect("an image config always serializes")
}
