//! The manifest lists of a plan, as data: each list's entries are the per-host manifests
//! known present (tag → descriptor) with the platforms the plan gives them. Pure: the
//! registry and the OCI layout sinks write what this computes.

use crate::arch::Platform;
use crate::image::Image;
use crate::media::MediaTypes;
use crate::plan::Plan;
use anyhow::anyhow;
use qus_registry::{Descriptor, Index};
use std::collections::HashMap;

/// Every list of the plan over the per-host manifests in `known` (tag → descriptor). A list
/// whose entry is unknown is an error naming it: nothing is written for it.
pub(crate) fn lists<'a>(
    plan: &'a Plan,
    known: &HashMap<String, Descriptor>,
    media: MediaTypes,
) -> anyhow::Result<Vec<(&'a crate::plan::ManifestPlan, qus_registry::Index)>> {
    plan.manifests
        .iter()
        .map(|m| {
            let entries: Vec<(Descriptor, Platform)> = m
                .entries
                .iter()
                .map(|e| {
                    let d = known.get(&e.tag).ok_or_else(|| {
                        anyhow!(
                            "{}: its entry {} is not in the registry; push it first",
                            m.reference,
                            e.tag
                        )
                    })?;
                    if d.media_type != media.manifest() {
                        return Err(anyhow!(
                            "{}: its entry {} is a {}, and a {} list must name {} manifests; \
                             release with --media-types {} or re-push the images",
                            m.reference,
                            e.tag,
                            d.media_type,
                            media.name(),
                            media.name(),
                            other(media).name()
                        ));
                    }
                    Ok((d.clone(), e.platform.clone()))
                })
                .collect::<anyhow::Result<_>>()?;
            Ok((m, index(media.list(), &entries)))
        })
        .collect()
}

/// Each list's tag, bytes and descriptor, as an OCI layout stores them.
pub(crate) fn list_blobs(
    lists: &[(&crate::plan::ManifestPlan, qus_registry::Index)],
) -> Vec<(String, Vec<u8>, Descriptor)> {
    lists
        .iter()
        .map(|(m, index)| {
            let b = index.to_bytes();
            let d = Descriptor::of(&index.media_type, &b);
            (m.tag.clone(), b, d)
        })
        .collect()
}

/// The lists of `plan` over computed images, for an OCI layout.
pub(crate) fn layout_lists(
    plan: &Plan,
    images: &[Image],
    media: MediaTypes,
) -> anyhow::Result<Vec<(String, Vec<u8>, Descriptor)>> {
    let known: HashMap<String, Descriptor> = images
        .iter()
        .map(|i| (i.tag.clone(), i.descriptor.clone()))
        .collect();
    Ok(list_blobs(&lists(plan, &known, media)?))
}

fn other(media: MediaTypes) -> MediaTypes {
    match media {
        MediaTypes::Oci => MediaTypes::Docker,
        MediaTypes::Docker => MediaTypes::Oci,
    }
}

/// The list over `entries` (manifest descriptor and platform), of `kind`.
pub(crate) fn index(kind: qus_registry::ListKind, entries: &[(Descriptor, Platform)]) -> Index {
    entries.iter().fold(Index::empty(kind), |idx, (d, p)| {
        idx.append(
            Descriptor {
                platform: None,
                ..d.clone()
            },
            p.clone(),
        )
    })
}
