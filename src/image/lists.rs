//! The manifest lists of a plan, as data: each list's entries are the per-host manifests
//! known present (tag → descriptor) with the platforms the plan gives them. Pure: the
//! registry and the OCI layout sinks write what this computes, and ask [`lost_platforms`]
//! first: a list already there is never replaced by one with fewer platforms.

use crate::arch::Platform;
use crate::image::media::MediaTypes;
use crate::image::Image;
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

/// The platforms `old` lists that `new` does not (aliases folded: `arm64/v8` is `arm64`):
/// what writing `new` over `old` would take away from its users.
pub(crate) fn lost_platforms(old: &Index, new: &Index) -> Vec<Platform> {
    let has: Vec<Platform> = new
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref().map(Platform::normalized))
        .collect();
    let mut lost: Vec<Platform> = old
        .manifests
        .iter()
        .filter_map(|d| d.platform.clone())
        .filter(|p| !has.contains(&p.normalized()))
        .collect();
    lost.sort();
    lost.dedup();
    lost
}

#[cfg(test)]
mod tests {
    use super::*;
    use qus_registry::{media, Digest, ListKind};

    fn list(platforms: &[&str]) -> Index {
        let entries: Vec<(Descriptor, Platform)> = platforms
            .iter()
            .map(|p| {
                let d = Descriptor::new(media::OCI_MANIFEST, 1, Digest::sha256(p.as_bytes()));
                (d, Platform::parse(p).unwrap())
            })
            .collect();
        index(ListKind::OciIndex, &entries)
    }

    #[test]
    fn a_list_loses_the_platforms_the_new_one_does_not_have() {
        let old = list(&["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]);
        assert!(lost_platforms(&old, &old).is_empty());
        let more = list(&["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x"]);
        assert!(lost_platforms(&old, &more).is_empty(), "arm64/v8 is arm64");
        let fewer = list(&["linux/amd64", "linux/riscv64"]);
        let lost: Vec<String> = lost_platforms(&old, &fewer)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(lost, ["linux/arm/v7", "linux/arm64/v8"]);
    }
}
