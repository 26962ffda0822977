//! The manifest lists over a plan's images: per source (`dV`, `dV-pkg`, `dV-register`,
//! `dV-T`) and unversioned (`latest`, `pkg`, `register`, `T`) over each host's newest source.

use super::{ImagePlan, Kind, ManifestEntry, ManifestPlan, Plan, NEWEST};
use crate::arch::Host;
use crate::config::Source;
use std::collections::BTreeMap;

/// The lists of one (kind, target) group over `images`, all of one source or the newest
/// per host.
fn group_entries(images: &[&ImagePlan], kind: Kind, target: Option<&String>) -> Vec<ManifestEntry> {
    images
        .iter()
        .filter(|i| i.kind == kind && (target.is_none() || i.targets.first() == target))
        .map(|i| ManifestEntry {
            tag: i.tag.clone(),
            host: i.host,
            platform: i.platform.clone(),
        })
        .collect()
}

/// The (tag suffix, kind, target) groups of lists over `images`.
fn groups(images: &[&ImagePlan]) -> Vec<(String, Kind, Option<String>)> {
    let mut groups: Vec<(String, Kind, Option<String>)> = vec![
        ("register".into(), Kind::Entrypoint, None),
        ("pkg".into(), Kind::Emulators, None),
        (String::new(), Kind::Full, None),
    ];
    let mut targets: Vec<String> = Vec::new();
    for i in images.iter().filter(|i| i.kind == Kind::Single) {
        if !targets.contains(&i.targets[0]) {
            targets.push(i.targets[0].clone());
        }
    }
    for t in targets {
        groups.push((t.clone(), Kind::Single, Some(t)));
    }
    groups
}

/// Every list: `dV`, `dV-pkg`, `dV-register`, `dV-T` per source; and the unversioned
/// `latest`, `pkg`, `register`, `T`, whose entry for each host is the image of that host's
/// newest source (`newest`). The unversioned lists are planned only when every host's
/// newest source is selected: `--sources d7.2` must not move `latest` back to QEMU 7.2.
pub(super) fn manifests(
    plan: &mut Plan,
    sources: &[&Source],
    newest: &BTreeMap<Host, String>,
) -> Vec<ManifestPlan> {
    let mut out = Vec::new();
    let mut push = |tag: String, source: &str, kind, target: &Option<String>, entries: Vec<_>| {
        out.push(ManifestPlan {
            reference: format!("{}:{tag}", plan.repo),
            tag,
            source: source.to_string(),
            kind,
            target: target.clone(),
            entries,
        });
    };
    let mut lists_over = |images: &[&ImagePlan], source: &str, tag: &dyn Fn(&str) -> String| {
        for (suffix, kind, target) in groups(images) {
            let entries = group_entries(images, kind, target.as_ref());
            if !entries.is_empty() {
                push(tag(&suffix), source, kind, &target, entries);
            }
        }
    };
    for source in sources {
        let images: Vec<&ImagePlan> = plan
            .images
            .iter()
            .filter(|i| i.source == source.name)
            .collect();
        lists_over(&images, &source.name, &|suffix| {
            if suffix.is_empty() {
                source.name.clone()
            } else {
                format!("{}-{suffix}", source.name)
            }
        });
    }
    let left_out: Vec<String> = plan
        .hosts()
        .iter()
        .filter_map(|h| {
            let n = newest.get(h)?;
            (!sources.iter().any(|s| &s.name == n)).then(|| format!("{h} ({n})"))
        })
        .collect();
    if !left_out.is_empty() {
        plan.notes.push(format!(
            "the unversioned tags (latest, pkg, register, <target>) are not planned: the \
             selection leaves out the newest source of {}",
            left_out.join(", ")
        ));
        return out;
    }
    let images: Vec<&ImagePlan> = plan
        .images
        .iter()
        .filter(|i| newest.get(&i.host) == Some(&i.source))
        .collect();
    lists_over(&images, NEWEST, &|suffix| {
        if suffix.is_empty() {
            "latest".to_string()
        } else {
            suffix.to_string()
        }
    });
    out
}
