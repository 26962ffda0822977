//! Looking packages up in a Debian mirror's indexes — the only I/O of `qus lock` and
//! `qus check`.
//!
//! One Release file per suite and one `Packages` index per (suite, arch), however many
//! packages are wanted from them: busybox-static and qemu-user both come from trixie, and a
//! trixie index is ~10 MB of xz. Every index is verified against its Release sum
//! (`qus_source::debian_index`) before a single entry of it is believed. A suite without an
//! index for an arch (bookworm has no riscv64) is an answer, [`Found::NoArch`], not an
//! error; a package missing from an index that exists is an error.

use super::Wanted;
use crate::lockfile::{LockedPackage, LockedSigner, LockedSuite};
use crate::progress::Progress;
use anyhow::{anyhow, Context as _};
use futures::StreamExt as _;
use qus_source::debian_index;
use qus_source::debian_index::Keyring;
use qus_source::{FetchOptions, Http, Origin};
use std::path::Path;

/// The Debian archive component qus reads (QEMU and busybox are in main).
pub const COMPONENT: &str = "main";

/// How many indexes are downloaded and decompressed at once (answers are still taken in
/// arch order, so the first error reported does not depend on timing).
const PARALLEL: usize = 3;

/// What the mirror says about one [`Wanted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The newest version of the package for the host's arch.
    Newest(LockedPackage),
    /// The suite has no index for the host's arch.
    NoArch,
}

/// Looks every `wanted` package up in `mirror`; the answers are in the same order, and
/// beside them who signed each suite's Release (every Release is verified against its
/// keyring before anything in it is believed).
pub async fn lookup(
    mirror: &str,
    wanted: &[Wanted],
    progress: &Progress,
) -> anyhow::Result<(Vec<Found>, Vec<LockedSuite>)> {
    let origin = Origin::mirror(mirror).with_context(|| format!("mirror {mirror}"))?;
    let Origin::Mirror(url) = &origin else {
        return Err(anyhow!("mirror {mirror}: not an http(s) URL"));
    };
    let http = Http::new(&FetchOptions::default())?;
    let mut out: Vec<Option<Found>> = vec![None; wanted.len()];
    let mut suites: Vec<LockedSuite> = Vec::new();

    // One Release per (suite, keyring): two sources may trust different keys for a suite.
    let mut groups: Vec<(&str, Option<&Path>)> = Vec::new();
    for w in wanted {
        let g = (w.suite.as_str(), w.keyring.as_deref());
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for (suite, keyring_path) in groups {
        let keyring_path = keyring_path.unwrap_or(Path::new(debian_index::DEBIAN_ARCHIVE_KEYRING));
        let keyring = Keyring::load(keyring_path)?;
        let release = debian_index::fetch_release(&http, url, suite, &keyring)
            .await
            .with_context(|| format!("reading the {suite} Release file of {mirror}"))?;
        progress.step(format!(
            "{suite}: Release signed by {}",
            release
                .signers
                .iter()
                .map(|s| match &s.user_id {
                    Some(u) => format!("{} ({u})", s.fingerprint),
                    None => s.fingerprint.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let signers = release.signers.iter().map(|s| LockedSigner {
            fingerprint: s.fingerprint.clone(),
            uid: s.user_id.clone(),
        });
        match suites.iter_mut().find(|x| x.suite == suite) {
            Some(x) => {
                x.signed_by.extend(signers);
                x.signed_by.sort();
                x.signed_by.dedup();
            }
            None => suites.push(LockedSuite {
                suite: suite.to_string(),
                signed_by: signers.collect(),
            }),
        }
        let mine = |w: &&Wanted| {
            w.suite == suite
                && w.keyring
                    .as_deref()
                    .unwrap_or(Path::new(debian_index::DEBIAN_ARCHIVE_KEYRING))
                    == keyring_path
        };
        let arches = unique(wanted.iter().filter(mine).map(|w| w.host.debian()));
        let present: Vec<&str> = arches
            .iter()
            .copied()
            .filter(|a| release.packages_path(COMPONENT, a).is_some())
            .collect();
        if !present.is_empty() {
            progress.step(format!(
                "reading {suite} {COMPONENT} indexes for {} from {mirror}",
                present.join(", ")
            ));
        }
        let release = &release;
        let http = &http;
        let mut fetches = futures::stream::iter(present.iter().map(|arch| async move {
            let r = debian_index::fetch_index(http, url, release, suite, COMPONENT, arch).await;
            (*arch, r)
        }))
        .buffered(PARALLEL);
        while let Some((arch, index)) = fetches.next().await {
            let index = index.with_context(|| format!("reading the {suite} index for {arch}"))?;
            for (i, w) in wanted.iter().enumerate() {
                if !mine(&w) || w.host.debian() != arch {
                    continue;
                }
                let e = index.newest(&w.package, arch).map_err(|_| {
                    anyhow!(
                        "{} {}: no package {} in {suite} for {arch} ({}); is the package name \
                         right?",
                        w.role,
                        w.host,
                        w.package,
                        index.url
                    )
                })?;
                out[i] = Some(Found::Newest(LockedPackage {
                    role: w.role.clone(),
                    host: w.host,
                    suite: suite.to_string(),
                    package: w.package.clone(),
                    version: e.version.clone(),
                    file: e.filename.clone(),
                    size: e.size,
                    sha256: e.sha256.to_hex(),
                }));
            }
        }
    }
    let found = out
        .into_iter()
        .map(|f| f.unwrap_or(Found::NoArch))
        .collect();
    Ok((found, suites))
}

/// Pure: the distinct items, in first-seen order.
fn unique<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn unique_keeps_first_seen_order() {
        assert_eq!(
            super::unique(["trixie", "bookworm", "trixie"].into_iter()),
            ["trixie", "bookworm"]
        );
    }
}
