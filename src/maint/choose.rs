//! Which listed file `qus lock` pins for one (role, host), pure: the newest file of the
//! host's own suite, unless the mirror does not serve it; then the newest served file of
//! the suites the config allows for the host, never newer than what its own suite lists
//! (a fallback stands in for a file that cannot be fetched; it must not move a source to
//! a newer QEMU than its suite has). Equal versions go to the suite listed first.
//!
//! The mirror's answers come in as [`Answer`]s, asked for in [`candidates`] order by
//! [`super::index`]; `qus check` judges pins by the same [`Choice`].

use crate::config::lockfile::LockedPackage;
use qus_source::debian_index::compare as compare_versions;
use qus_source::Served;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// What one allowed suite lists for the host's arch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The suite.
    pub suite: String,
    /// Every listed version of the package (none: the index does not list it);
    /// `None`: the suite has no index for the arch.
    pub files: Option<Vec<LockedPackage>>,
}

/// Whether the mirror serves a listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It does.
    Served,
    /// It does not; why, as a reader is told (`the mirror answers 404`).
    NotServed(String),
}

/// The mirror's answers, by pool path.
pub type Answers = BTreeMap<String, Answer>;

/// Pure: what a probe's result says about a file the index (or a pin) gives `size` bytes.
/// A server that gives another length serves another file (a pool mid-sync).
pub fn answer(served: Served, size: Option<u64>) -> Answer {
    match (served, size) {
        (Served::Yes { size: Some(n) }, Some(size)) if n != size => Answer::NotServed(format!(
            "the mirror serves {n} bytes where the index lists {size}"
        )),
        (Served::Yes { .. }, _) => Answer::Served,
        (Served::No { status }, _) => Answer::NotServed(format!("the mirror answers {status}")),
    }
}

/// A listed file passed over because the mirror does not serve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotServed {
    /// Its suite.
    pub suite: String,
    /// Its version.
    pub version: String,
    /// Its pool path.
    pub file: String,
    /// Why (`the mirror answers 404`).
    pub why: String,
}

/// `qus lock`'s decision for one (role, host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Pin this file; `note` says why it is not the newest file of the host's own suite,
    /// and `passed_over` lists the newer listed files that are not served.
    Pin {
        /// The file.
        pin: LockedPackage,
        /// Newer listed files the mirror does not serve, newest first.
        passed_over: Vec<NotServed>,
        /// Why another file than the own suite's newest, when it is
        /// (`trixie-backports 1:11.1.3+ds-2~bpo13+1 is listed but the mirror answers 404`).
        note: Option<String>,
    },
    /// No allowed suite lists the package for the host's arch.
    Unlisted,
    /// Files are listed, but the mirror serves none of them.
    NoneServed {
        /// Every listed file and why it is not served.
        tried: Vec<NotServed>,
    },
}

/// Pure: the files to ask the mirror about, best first: newest version first, equal
/// versions in suite order; none newer than the own suite's (the first listing's) newest.
pub fn candidates(listings: &[Listing]) -> Vec<&LockedPackage> {
    fn all(l: &Listing) -> Vec<&LockedPackage> {
        l.files.iter().flatten().collect()
    }
    let ceiling = listings
        .first()
        .map(all)
        .unwrap_or_default()
        .into_iter()
        .max_by(|a, b| compare_versions(&a.version, &b.version))
        .map(|p| p.version.clone());
    let mut out: Vec<(usize, &LockedPackage)> = listings
        .iter()
        .enumerate()
        .flat_map(|(i, l)| all(l).into_iter().map(move |p| (i, p)))
        .filter(|(_, p)| {
            ceiling
                .as_deref()
                .is_none_or(|c| compare_versions(&p.version, c) != Ordering::Greater)
        })
        .collect();
    // Stable: within one suite and version, index order.
    out.sort_by(|(i, a), (j, b)| compare_versions(&b.version, &a.version).then(i.cmp(j)));
    out.into_iter().map(|(_, p)| p).collect()
}

/// Pure: the first served candidate, and why it is not the own suite's newest. Candidates
/// the mirror was not asked about (past the first served one) do not matter; one before
/// it without an answer is taken as not served.
pub fn choose(listings: &[Listing], answers: &Answers, package: &str, arch: &str) -> Choice {
    let cands = candidates(listings);
    if cands.is_empty() {
        return Choice::Unlisted;
    }
    let mut passed_over = Vec::new();
    for c in &cands {
        match answers.get(&c.file) {
            Some(Answer::Served) => {
                let note = note(listings, &passed_over, package, arch);
                return Choice::Pin {
                    pin: (*c).clone(),
                    passed_over,
                    note,
                };
            }
            other => passed_over.push(NotServed {
                suite: c.suite.clone(),
                version: c.version.clone(),
                file: c.file.clone(),
                why: match other {
                    Some(Answer::NotServed(why)) => why.clone(),
                    _ => "the mirror was not asked".into(),
                },
            }),
        }
    }
    Choice::NoneServed { tried: passed_over }
}

/// Pure: why `pin` is not the newest file of the host's own suite (`None` when it is).
fn note(
    listings: &[Listing],
    passed_over: &[NotServed],
    package: &str,
    arch: &str,
) -> Option<String> {
    let own = listings.first()?;
    if let Some(first) = passed_over.first() {
        let more = match passed_over.len() {
            1 => String::new(),
            n => format!(" (and {} more listed files are not served)", n - 1),
        };
        return Some(format!(
            "{} {} is listed but {}{more}",
            first.suite, first.version, first.why
        ));
    }
    match &own.files {
        Some(f) if !f.is_empty() => None,
        Some(_) => Some(format!("{} lists no {package} for {arch}", own.suite)),
        None => Some(format!("{} has no {arch} index", own.suite)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Host;

    fn file(suite: &str, version: &str) -> LockedPackage {
        LockedPackage {
            role: "d11.1".into(),
            host: Host::Ppc64le,
            suite: suite.into(),
            package: "qemu-user".into(),
            version: version.into(),
            file: format!("pool/{suite}/qemu-user_{version}_ppc64el.deb"),
            size: 7,
            sha256: "a".repeat(64),
        }
    }

    fn listing(suite: &str, versions: &[&str]) -> Listing {
        Listing {
            suite: suite.into(),
            files: Some(versions.iter().map(|v| file(suite, v)).collect()),
        }
    }

    const BPO: &str = "1:11.1.3+ds-2~bpo13+1";
    const FORKY: &str = "1:11.1.2+ds-3";

    fn answers(served: &[(&str, &str)], not: &[(&str, &str, u16)]) -> Answers {
        let mut a = Answers::new();
        for (s, v) in served {
            a.insert(file(s, v).file, Answer::Served);
        }
        for (s, v, status) in not {
            a.insert(
                file(s, v).file,
                answer(Served::No { status: *status }, Some(7)),
            );
        }
        a
    }

    fn pick(listings: &[Listing], a: &Answers) -> Choice {
        choose(listings, a, "qemu-user", "ppc64el")
    }

    #[test]
    fn the_own_suites_newest_when_served() {
        let l = [
            listing("trixie-backports", &[BPO]),
            listing("forky", &[FORKY]),
        ];
        let Choice::Pin {
            pin,
            passed_over,
            note,
        } = pick(&l, &answers(&[("trixie-backports", BPO)], &[]))
        else {
            panic!()
        };
        assert_eq!(
            (pin.suite.as_str(), pin.version.as_str()),
            ("trixie-backports", BPO)
        );
        assert!(passed_over.is_empty() && note.is_none());
    }

    #[test]
    fn listed_but_not_served_falls_back_to_the_newest_served_and_says_why() {
        let l = [
            listing("trixie-backports", &[BPO]),
            listing("forky", &[FORKY]),
        ];
        let a = answers(&[("forky", FORKY)], &[("trixie-backports", BPO, 404)]);
        let Choice::Pin {
            pin,
            passed_over,
            note,
        } = pick(&l, &a)
        else {
            panic!()
        };
        assert_eq!((pin.suite.as_str(), pin.version.as_str()), ("forky", FORKY));
        assert_eq!(passed_over.len(), 1);
        assert_eq!(passed_over[0].why, "the mirror answers 404");
        assert_eq!(
            note.as_deref(),
            Some("trixie-backports 1:11.1.3+ds-2~bpo13+1 is listed but the mirror answers 404")
        );
    }

    #[test]
    fn newest_served_across_suites_with_the_own_suites_older_files_too() {
        // The own suite still lists an older build, newer than the fallback's.
        let l = [
            listing("trixie-backports", &["1:11.1.1+ds-1~bpo13+1", BPO]),
            listing("forky", &[FORKY]),
        ];
        let a = answers(
            &[
                ("trixie-backports", "1:11.1.1+ds-1~bpo13+1"),
                ("forky", FORKY),
            ],
            &[("trixie-backports", BPO, 404)],
        );
        let Choice::Pin { pin, .. } = pick(&l, &a) else {
            panic!()
        };
        assert_eq!(pin.version, FORKY, "11.1.2 > 11.1.1, whichever suite");
        let order: Vec<&str> = candidates(&l).iter().map(|p| p.version.as_str()).collect();
        assert_eq!(order, [BPO, FORKY, "1:11.1.1+ds-1~bpo13+1"]);
    }

    #[test]
    fn equal_versions_go_to_the_suite_listed_first() {
        let l = [
            listing("trixie-backports", &[BPO]),
            listing("sid", &[FORKY]),
            listing("forky", &[FORKY]),
        ];
        let a = answers(
            &[("sid", FORKY), ("forky", FORKY)],
            &[("trixie-backports", BPO, 404)],
        );
        let Choice::Pin { pin, .. } = pick(&l, &a) else {
            panic!()
        };
        assert_eq!(pin.suite, "sid");
    }

    #[test]
    fn a_fallback_never_gives_a_newer_version_than_the_own_suite_lists() {
        let l = [
            listing("trixie-backports", &[BPO]),
            listing("forky", &["1:11.2.0+ds-1", FORKY]),
        ];
        let order: Vec<&str> = candidates(&l).iter().map(|p| p.version.as_str()).collect();
        assert_eq!(order, [BPO, FORKY], "11.2 is above the ceiling");
        // Without a listing of its own, the host takes the fallbacks' newest.
        let l = [
            Listing {
                suite: "trixie-backports".into(),
                files: Some(Vec::new()),
            },
            listing("forky", &[FORKY, "1:11.2.0+ds-1"]),
        ];
        let a = answers(&[("forky", "1:11.2.0+ds-1")], &[]);
        let Choice::Pin { pin, note, .. } = pick(&l, &a) else {
            panic!()
        };
        assert_eq!(pin.version, "1:11.2.0+ds-1");
        assert_eq!(
            note.as_deref(),
            Some("trixie-backports lists no qemu-user for ppc64el")
        );
    }

    #[test]
    fn nothing_listed_and_nothing_served() {
        let none = [
            Listing {
                suite: "trixie-backports".into(),
                files: None,
            },
            Listing {
                suite: "forky".into(),
                files: Some(Vec::new()),
            },
        ];
        assert_eq!(pick(&none, &Answers::new()), Choice::Unlisted);
        let l = [
            listing("trixie-backports", &[BPO]),
            listing("forky", &[FORKY]),
        ];
        let a = answers(
            &[],
            &[("trixie-backports", BPO, 404), ("forky", FORKY, 410)],
        );
        let Choice::NoneServed { tried } = pick(&l, &a) else {
            panic!()
        };
        let got: Vec<(&str, &str)> = tried
            .iter()
            .map(|t| (t.suite.as_str(), t.why.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("trixie-backports", "the mirror answers 404"),
                ("forky", "the mirror answers 410")
            ]
        );
    }

    #[test]
    fn a_length_other_than_the_index_says_is_not_served() {
        assert_eq!(
            answer(Served::Yes { size: Some(7) }, Some(7)),
            Answer::Served
        );
        assert_eq!(answer(Served::Yes { size: None }, Some(7)), Answer::Served);
        // An inline pin without a size: any length will do (its sha256 decides at fetch).
        assert_eq!(answer(Served::Yes { size: Some(3) }, None), Answer::Served);
        assert_eq!(
            answer(Served::Yes { size: Some(3) }, Some(7)),
            Answer::NotServed("the mirror serves 3 bytes where the index lists 7".into())
        );
    }
}
