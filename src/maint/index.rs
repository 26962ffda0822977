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
use crate::lockfile::LockedPackage;
use crate::progress::Progress;
use anyhow::{anyhow, Context as _};
use futures::StreamExt as _;
use qus_source::debian_index;
use qus_source::{FetchOptions, Http, Origin};

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

/// Looks every `wanted` package up in `mirror`; the answers are in the same order.
pub async fn lookup(
    mirror: &str,
    wanted: &[Wanted],
    progress: &Progress,
) -> anyhow::Result<Vec<Found>> {
    let origin = Origin::mirror(mirror).with_context(|| format!("mirror {mirror}"))?;
    let Origin::Mirror(url) = &origin else {
        return Err(anyhow!("mirror {mirror}: not an http(s) URL"));
    };
    let http = Http::new(&FetchOptions::default())?;
    let mut out: Vec<Option<Found>> = vec![None; wanted.len()];

    for suite in unique(wanted.iter().map(|w| w.suite.as_str())) {
        let release = debian_index::fetch_release(&http, url, suite)
            .await
            .with_context(|| format!("reading the {suite} Release file of {mirror}"))?;
        let arches = unique(
            wanted
                .iter()
                .filter(|w| w.suite == suite)
                .map(|w| w.host.debian()),
        );
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
                if w.suite != suite || w.host.debian() != arch {
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
    Ok(out
        .into_iter()
        .map(|f| f.unwrap_or(Found::NoArch))
        .collect())
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
