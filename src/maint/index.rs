//! Looking packages up in a Debian mirror — the only I/O of `qus lock` and `qus check`:
//! its indexes, and whether it serves the files they list.
//!
//! One Release file per suite and one `Packages` index per (suite, arch), however many
//! packages are wanted from them: busybox-static and qemu-user both come from trixie, and a
//! trixie index is ~10 MB of xz. Every index is verified against its Release sum
//! (`qus_source::debian_index`) before a single entry of it is believed. A suite without an
//! index for an arch (bookworm has no riscv64) is an answer, not an error; a package that
//! no index read for a role lists is an error (a misspelt name).
//!
//! Then the mirror is asked whether it serves each file that would be pinned (a HEAD, or a
//! one-byte range GET): first the newest file of each host's own suite; the suites a host
//! may fall back to are read only for the hosts whose own suite serves nothing, and their
//! files asked about in [`choose::candidates`] order until one is served.

use super::choose::{self, Answers, Listing};
use super::Wanted;
use crate::config::lockfile::{LockedPackage, LockedSigner, LockedSuite};
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use futures::StreamExt as _;
use qus_source::debian_index::{self, Expiry, Keyring, Release};
use qus_source::{FetchOptions, Http, Origin, PackageRef};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use url::Url;

/// The Debian archive component qus reads (QEMU and busybox are in main).
pub const COMPONENT: &str = "main";

/// How many indexes are downloaded and decompressed at once (answers are still taken in
/// arch order, so the first error reported does not depend on timing).
const PARALLEL: usize = 3;
/// How many files the mirror is asked about at once.
const PARALLEL_PROBES: usize = 8;

/// What the mirror said about every [`Wanted`].
#[derive(Debug, Clone, Default)]
pub struct Looked {
    /// Per wanted, in the same order: what each suite read lists, own suite first (the
    /// fallbacks only when they were needed).
    pub listings: Vec<Vec<Listing>>,
    /// Whether each file asked about is served, by pool path.
    pub answers: Answers,
    /// Who signed each suite's Release.
    pub suites: Vec<LockedSuite>,
}

impl Looked {
    /// Pure: `qus lock`'s choice for each wanted.
    pub fn choices(&self, wanted: &[Wanted]) -> Vec<choose::Choice> {
        wanted
            .iter()
            .zip(&self.listings)
            .map(|(w, l)| choose::choose(l, &self.answers, &w.package, w.host.debian()))
            .collect()
    }
}

/// Looks every `wanted` package up in `mirror` and asks which files it serves.
pub async fn lookup(
    mirror: &str,
    wanted: &[Wanted],
    expiry: Expiry,
    progress: &Progress,
) -> anyhow::Result<Looked> {
    let mut r = Reader::new(mirror, expiry, progress)?;
    let own: Vec<(usize, &str)> = wanted
        .iter()
        .enumerate()
        .map(|(i, w)| (i, w.suite()))
        .collect();
    let mut listings: Vec<Vec<Listing>> = vec![Vec::new(); wanted.len()];
    for (i, l) in r.read(wanted, &own).await? {
        listings[i].push(l);
    }
    let mut answers = Answers::new();
    let firsts: Vec<&LockedPackage> = listings
        .iter()
        .filter_map(|l| choose::candidates(l).first().copied())
        .collect();
    if !firsts.is_empty() {
        progress.step(format!(
            "asking {mirror} whether it serves the {} newest files",
            firsts.len()
        ));
    }
    let firsts: Vec<Ask> = firsts.into_iter().map(Ask::from).collect();
    r.probe(&firsts, &mut answers).await?;

    // Hosts whose own suite serves nothing read their fallback suites.
    let served = |l: &[Listing], a: &Answers| {
        choose::candidates(l)
            .first()
            .is_some_and(|c| a.get(&c.file) == Some(&choose::Answer::Served))
    };
    let mut more: Vec<(usize, &str)> = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        if served(&listings[i], &answers) || w.suites.len() < 2 {
            continue;
        }
        progress.step(format!(
            "{} {}: {}; trying {}",
            w.role,
            w.host,
            unserved_reason(w, &listings[i], &answers),
            w.suites[1..].join(", ")
        ));
        more.extend(w.suites[1..].iter().map(|s| (i, s.as_str())));
    }
    for (i, l) in r.read(wanted, &more).await? {
        listings[i].push(l);
    }
    for l in &listings {
        if served(l, &answers) {
            continue;
        }
        // One at a time, best first: the first served one is the pin.
        for c in choose::candidates(l) {
            r.probe(&[Ask::from(c)], &mut answers).await?;
            if answers.get(&c.file) == Some(&choose::Answer::Served) {
                break;
            }
        }
    }
    if let Some(e) = misnamed(wanted, &listings) {
        return Err(anyhow!(e));
    }
    Ok(Looked {
        listings,
        answers,
        suites: r.suites,
    })
}

/// A file to ask the mirror about: its pool path, sha256 and, when known, size.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// Pool path.
    pub file: &'a str,
    /// sha256, lowercase hex.
    pub sha256: &'a str,
    /// Size the pin or index gives (an inline pin may have none).
    pub size: Option<u64>,
}

impl<'a> From<&'a LockedPackage> for Ask<'a> {
    fn from(p: &'a LockedPackage) -> Ask<'a> {
        Ask {
            file: &p.file,
            sha256: &p.sha256,
            size: Some(p.size),
        }
    }
}

/// Asks `mirror` whether it serves each of `files` not yet in `answers`.
pub async fn probe_files(
    mirror: &str,
    files: &[Ask<'_>],
    answers: &mut Answers,
) -> anyhow::Result<()> {
    let quiet = Progress::new(true, false);
    Reader::new(mirror, Expiry::Refuse, &quiet)?
        .probe(files, answers)
        .await
}

/// Pure: why the own suite's newest file will not do, for the progress line.
fn unserved_reason(w: &Wanted, listings: &[Listing], answers: &Answers) -> String {
    match choose::candidates(listings).first() {
        Some(c) => match answers.get(&c.file) {
            Some(choose::Answer::NotServed(why)) => {
                format!("{} {} is listed but {why}", c.suite, c.version)
            }
            _ => format!("{} {} is not served", c.suite, c.version),
        },
        None => format!(
            "{} lists no {} for {}",
            w.suite(),
            w.package,
            w.host.debian()
        ),
    }
}

/// Pure: the error for a role whose package no index read lists for any host, though
/// indexes were read (a misspelt package name; a suite without the arch is not one).
fn misnamed(wanted: &[Wanted], listings: &[Vec<Listing>]) -> Option<String> {
    let mut roles: Vec<&str> = Vec::new();
    for w in wanted {
        if !roles.contains(&w.role.as_str()) {
            roles.push(&w.role);
        }
    }
    roles.into_iter().find_map(|role| {
        let mine: Vec<(&Wanted, &Vec<Listing>)> = wanted
            .iter()
            .zip(listings)
            .filter(|(w, _)| w.role == role)
            .collect();
        let read: Vec<(&Wanted, &Listing)> = mine
            .iter()
            .flat_map(|(w, ls)| ls.iter().map(move |l| (*w, l)))
            .filter(|(_, l)| l.files.is_some())
            .collect();
        let listed = read
            .iter()
            .any(|(_, l)| l.files.as_ref().is_some_and(|f| !f.is_empty()));
        if read.is_empty() || listed {
            return None;
        }
        let (w, l) = read[0];
        let mut arches: Vec<&str> = Vec::new();
        for (w2, l2) in &read {
            if l2.suite == l.suite && !arches.contains(&w2.host.debian()) {
                arches.push(w2.host.debian());
            }
        }
        Some(format!(
            "{role}: no package {} in {} for {}; is the package name right?",
            w.package,
            l.suite,
            arches.join(", ")
        ))
    })
}

/// Reads suites of one mirror, each Release once.
struct Reader<'a> {
    mirror: &'a str,
    url: Url,
    http: Http,
    expiry: Expiry,
    progress: &'a Progress,
    releases: BTreeMap<(String, PathBuf), Release>,
    suites: Vec<LockedSuite>,
}

impl<'a> Reader<'a> {
    fn new(mirror: &'a str, expiry: Expiry, progress: &'a Progress) -> anyhow::Result<Self> {
        let origin = Origin::mirror(mirror).with_context(|| format!("mirror {mirror}"))?;
        let Origin::Mirror(url) = origin else {
            return Err(anyhow!("mirror {mirror}: not an http(s) URL"));
        };
        Ok(Reader {
            mirror,
            url,
            http: Http::new(&FetchOptions::default())?,
            expiry,
            progress,
            releases: BTreeMap::new(),
            suites: Vec::new(),
        })
    }

    /// What each (wanted index, suite) of `requests` lists, in request order per wanted.
    async fn read(
        &mut self,
        wanted: &[Wanted],
        requests: &[(usize, &str)],
    ) -> anyhow::Result<Vec<(usize, Listing)>> {
        let keyring_of = |w: &Wanted| {
            w.keyring
                .clone()
                .unwrap_or_else(|| PathBuf::from(debian_index::DEBIAN_ARCHIVE_KEYRING))
        };
        // One Release per (suite, keyring): two sources may trust different keys for a suite.
        let mut groups: Vec<(&str, PathBuf)> = Vec::new();
        for (i, suite) in requests {
            let g = (*suite, keyring_of(&wanted[*i]));
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        let mut found: Vec<Option<Listing>> = vec![None; requests.len()];
        for (suite, keyring) in groups {
            let release = self.release(suite, &keyring).await?;
            let mine: Vec<usize> = (0..requests.len())
                .filter(|&n| {
                    requests[n].1 == suite && keyring_of(&wanted[requests[n].0]) == keyring
                })
                .collect();
            let arches = unique(mine.iter().map(|&n| wanted[requests[n].0].host.debian()));
            let present: Vec<&str> = arches
                .iter()
                .copied()
                .filter(|a| release.packages_path(COMPONENT, a).is_some())
                .collect();
            if !present.is_empty() {
                self.progress.step(format!(
                    "reading {suite} {COMPONENT} indexes for {} from {}",
                    present.join(", "),
                    self.mirror
                ));
            }
            let (http, url) = (&self.http, &self.url);
            let mut fetches = futures::stream::iter(present.iter().map(|arch| {
                let release = &release;
                async move {
                    let r =
                        debian_index::fetch_index(http, url, release, suite, COMPONENT, arch).await;
                    (*arch, r)
                }
            }))
            .buffered(PARALLEL);
            while let Some((arch, index)) = fetches.next().await {
                let index =
                    index.with_context(|| format!("reading the {suite} index for {arch}"))?;
                for &n in &mine {
                    let w = &wanted[requests[n].0];
                    if w.host.debian() != arch {
                        continue;
                    }
                    let files = index
                        .entries
                        .iter()
                        .filter(|e| e.package == w.package && e.architecture == arch)
                        .map(|e| LockedPackage {
                            role: w.role.clone(),
                            host: w.host,
                            suite: suite.to_string(),
                            package: w.package.clone(),
                            version: e.version.clone(),
                            file: e.filename.clone(),
                            size: e.size,
                            sha256: e.sha256.to_hex(),
                        })
                        .collect();
                    found[n] = Some(Listing {
                        suite: suite.to_string(),
                        files: Some(files),
                    });
                }
            }
        }
        Ok(requests
            .iter()
            .zip(found)
            .map(|((i, suite), l)| {
                let l = l.unwrap_or(Listing {
                    suite: suite.to_string(),
                    files: None,
                });
                (*i, l)
            })
            .collect())
    }

    /// The verified Release of `suite`, fetched once per keyring; who signed it is recorded.
    async fn release(&mut self, suite: &str, keyring_path: &Path) -> anyhow::Result<Release> {
        let key = (suite.to_string(), keyring_path.to_path_buf());
        if let Some(r) = self.releases.get(&key) {
            return Ok(r.clone());
        }
        let keyring = Keyring::load(keyring_path)?;
        let release =
            debian_index::fetch_release_with(&self.http, &self.url, suite, &keyring, self.expiry)
                .await
                .map_err(|e| match e {
                    qus_source::Error::ReleaseExpired { .. } => anyhow!(
                        "{e}; use an up-to-date mirror, or pass --ignore-valid-until to read \
                         it anyway (its signature is still checked)"
                    ),
                    e => anyhow!(e),
                })
                .with_context(|| format!("reading the {suite} Release file of {}", self.mirror))?;
        if release.expired(std::time::SystemTime::now())? {
            self.progress.warn(format!(
                "{suite}: the Release is past its Valid-Until ({}): the mirror serves an old \
                 copy; read anyway (--ignore-valid-until)",
                release.valid_until.as_deref().unwrap_or_default()
            ));
        }
        self.progress.step(format!(
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
        match self.suites.iter_mut().find(|x| x.suite == suite) {
            Some(x) => {
                x.signed_by.extend(signers);
                x.signed_by.sort();
                x.signed_by.dedup();
            }
            None => self.suites.push(LockedSuite {
                suite: suite.to_string(),
                signed_by: signers.collect(),
            }),
        }
        self.releases.insert(key, release.clone());
        Ok(release)
    }

    /// Asks whether each file not yet in `answers` is served, several at a time.
    async fn probe(&self, files: &[Ask<'_>], answers: &mut Answers) -> anyhow::Result<()> {
        let mut todo: Vec<Ask> = Vec::new();
        for f in files {
            if !answers.contains_key(f.file) && !todo.iter().any(|t| t.file == f.file) {
                todo.push(*f);
            }
        }
        let (http, url) = (&self.http, &self.url);
        let mut asks = futures::stream::iter(todo.into_iter().map(|f| async move {
            let pkg = PackageRef::new(f.file, f.sha256, f.size)?;
            let served = http.probe_package(url, &pkg).await?;
            anyhow::Ok((f, served))
        }))
        .buffered(PARALLEL_PROBES);
        while let Some(r) = asks.next().await {
            let (f, served) = r.context("asking the mirror whether it serves a file")?;
            answers.insert(f.file.to_string(), choose::answer(served, f.size));
        }
        Ok(())
    }
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
    use super::*;
    use crate::arch::Host;

    #[test]
    fn unique_keeps_first_seen_order() {
        assert_eq!(
            unique(["trixie", "bookworm", "trixie"].into_iter()),
            ["trixie", "bookworm"]
        );
    }

    fn want(role: &str, host: Host) -> Wanted {
        Wanted {
            role: role.into(),
            host,
            suites: vec!["trixie".into(), "forky".into()],
            package: "qemu-user-binfmt".into(),
            keyring: None,
        }
    }

    fn listing(suite: &str, files: Option<usize>) -> Listing {
        let f = LockedPackage {
            role: "d10.0".into(),
            host: Host::Amd64,
            suite: suite.into(),
            package: "qemu-user".into(),
            version: "1".into(),
            file: "pool/x.deb".into(),
            size: 1,
            sha256: "a".repeat(64),
        };
        Listing {
            suite: suite.into(),
            files: files.map(|n| vec![f; n]),
        }
    }

    #[test]
    fn a_package_no_index_lists_is_a_misspelt_name_a_missing_arch_is_not() {
        let w = [want("d10.0", Host::Amd64), want("d10.0", Host::Arm64v8)];
        let e = misnamed(
            &w,
            &[
                vec![listing("trixie", Some(0))],
                vec![listing("trixie", Some(0))],
            ],
        )
        .unwrap();
        assert_eq!(
            e,
            "d10.0: no package qemu-user-binfmt in trixie for amd64, arm64; is the package \
             name right?"
        );
        // One host lists it: the other host's suite just has none for it.
        assert!(misnamed(
            &w,
            &[
                vec![listing("trixie", Some(0))],
                vec![listing("trixie", Some(1))]
            ]
        )
        .is_none());
        // No index for either arch: nothing to say about the name.
        assert!(misnamed(
            &w,
            &[vec![listing("trixie", None)], vec![listing("trixie", None)]]
        )
        .is_none());
    }
}
