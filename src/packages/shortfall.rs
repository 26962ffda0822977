//! What a run could not do, as values: each package it could not use (typed, with what to
//! do about it), what it left out for want of one, and the lists it did not write. `build`,
//! `assets` and `release` print a line each, carry the same values in `--json`, and end
//! with exit status 1 when any of it is there; everything else they were asked for is done.

use crate::plan::narrow::Narrowed;
use crate::plan::{PackagePlan, Plan, Role};
use serde::Serialize;

/// Why a package could not be used. Only faults of the package (or of its mirror) are a
/// cause: a full disk, a locked cache or a bad config stop the whole run instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Cause {
    /// The mirror answered an error status (404: listed in its index, not served).
    NotServed,
    /// The `--debs` folder has no file for it.
    NotInFolder,
    /// The bytes that came are not the pinned ones (sha256 or size).
    Mismatch,
    /// The mirror did not answer in time, could not be reached, broke off the transfer or
    /// answered 5xx or 429, on every try.
    Network,
    /// The pinned bytes are not a usable package: corrupt, unsigned, of another
    /// architecture, or without an emulator the config says it ships.
    Unusable,
}

impl Cause {
    /// The cause of `e`, or `None` when it is not the package's fault.
    pub(crate) fn of(e: &qus_source::Error) -> Option<Cause> {
        use qus_source::Error as E;
        Some(match e {
            // A 5xx or 429 on every try: the mirror is failing, not missing the file.
            e @ E::HttpStatus { .. } if e.is_transient() => Cause::Network,
            E::HttpStatus { .. } => Cause::NotServed,
            E::NotInLocalDir { .. } => Cause::NotInFolder,
            E::ChecksumMismatch { .. } | E::SizeMismatch { .. } | E::DownloadTooLarge { .. } => {
                Cause::Mismatch
            }
            E::Timeout { .. } | E::Unreachable { .. } | E::Interrupted { .. } => Cause::Network,
            E::NotAPackage { .. }
            | E::UnsupportedFormat { .. }
            | E::BadRpm { .. }
            | E::RpmDigestMismatch { .. }
            | E::RpmUnsigned { .. }
            | E::RpmSignature { .. }
            | E::UnknownPayloadCompressor { .. }
            | E::CpioTrailerMissing { .. }
            | E::Truncated { .. }
            | E::Malformed { .. }
            | E::UnknownCompression { .. }
            | E::Corrupt { .. }
            | E::BadControl { .. }
            | E::PathEscape { .. }
            | E::SymlinkEscape { .. }
            | E::HardlinkEscape { .. }
            | E::SymlinkLoop { .. }
            | E::DanglingLink { .. }
            | E::ThroughSymlink { .. }
            | E::DuplicateEntry { .. }
            | E::TooLarge { .. }
            | E::CompressionRatio { .. }
            | E::TooManyEntries { .. }
            | E::ArchMismatch { .. }
            | E::NotHostElf { .. }
            | E::MissingTargets { .. }
            | E::NoEmulators { .. }
            | E::FileMissing { .. } => Cause::Unusable,
            _ => return None,
        })
    }

    /// What the user can do about it.
    pub(crate) fn hint(self) -> &'static str {
        match self {
            Cause::NotServed => "run `qus lock` to pin a served file, or give it with --debs DIR",
            Cause::NotInFolder => {
                "put the pinned file in that folder (`apt-get download`), or fetch it from a \
                 mirror (--mirror)"
            }
            Cause::Mismatch => {
                "the file served is not the pinned one: run `qus lock` to pin what is served, \
                 or give the pinned file with --debs DIR"
            }
            Cause::Network => {
                "run again (what was fetched stays cached), use another --mirror, or give it \
                 with --debs DIR"
            }
            Cause::Unusable => {
                "the pinned file cannot be used: pin another one (`qus check`, `qus lock`) or \
                 give a good one with --debs DIR"
            }
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cause::NotServed => "not served",
            Cause::NotInFolder => "not in the --debs folder",
            Cause::Mismatch => "not the pinned bytes",
            Cause::Network => "the mirror did not deliver it",
            Cause::Unusable => "not a usable package",
        })
    }
}

/// `1 package`, `2 packages`.
fn count(n: usize, noun: &str) -> String {
    let noun = noun.strip_suffix('s').unwrap_or(noun);
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// A package that could not be used, and what was left out for want of it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PackageFailure {
    /// The package as the plan has it (role, host, file, version, sha256 …).
    #[serde(flatten)]
    pub package: PackagePlan,
    /// Why, as a kind.
    pub cause: Cause,
    /// Why, as the fetch or the extraction said it.
    pub reason: String,
    /// What to do.
    pub hint: String,
    /// What this run left out because of it: image references, or asset names.
    pub left_out: Vec<String>,
}

impl PackageFailure {
    /// A failure of `package`, with nothing left out yet.
    pub(crate) fn new(package: &PackagePlan, cause: Cause, reason: String) -> PackageFailure {
        PackageFailure {
            package: package.clone(),
            cause,
            reason,
            hint: cause.hint().to_string(),
            left_out: Vec::new(),
        }
    }

    /// `qemu-user 1:10.0 for arm64v8 (d10.0)`: the package, as messages name it.
    pub(crate) fn what(&self) -> String {
        let p = &self.package;
        let role = match &p.role {
            Role::Qemu { source } => source.clone(),
            Role::Busybox => "busybox".into(),
            Role::Guest { arch } => format!("guest program for {arch}"),
        };
        format!("{} {} for {} ({role})", p.package, p.version, p.host)
    }

    /// The one line a run prints about it.
    pub(crate) fn line(&self, noun: &str) -> String {
        let mut s = format!(
            "{}, {}: {}; {}",
            self.what(),
            self.package.file,
            self.reason,
            self.hint
        );
        if !self.left_out.is_empty() {
            s.push_str(&format!(" ({} left out)", count(self.left_out.len(), noun)));
        }
        s
    }
}

/// A list this run did not write, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ListNotWritten {
    /// `repo:tag`.
    pub reference: String,
    /// Why.
    #[serde(flatten)]
    pub why: ListWhy,
}

/// Why a list was not written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub(crate) enum ListWhy {
    /// An entry could not be made: a list is written complete or not at all.
    Incomplete {
        /// The tags of the entries that could not be made.
        missing: Vec<String>,
    },
    /// The list already at `place` has platforms this run's would not: it is left as it was.
    FewerPlatforms {
        /// `registry` or `layout`.
        place: &'static str,
        /// The platforms the written list would lose.
        lost: Vec<String>,
    },
}

/// Everything a run could not do.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Shortfall {
    /// The packages it could not use.
    pub failed_packages: Vec<PackageFailure>,
    /// The lists it did not write.
    pub lists_not_written: Vec<ListNotWritten>,
}

impl Shortfall {
    /// The failures of a narrowed plan: each package with the images left out for want of
    /// it, and the lists left out because an entry is missing.
    pub(crate) fn of(mut failures: Vec<PackageFailure>, narrowed: &Narrowed) -> Shortfall {
        for f in &mut failures {
            f.left_out = narrowed
                .images
                .iter()
                .filter(|i| i.packages.contains(&f.package.file))
                .map(|i| i.reference.clone())
                .collect();
        }
        Shortfall {
            failed_packages: failures,
            lists_not_written: narrowed
                .lists
                .iter()
                .map(|l| ListNotWritten {
                    reference: l.reference.clone(),
                    why: ListWhy::Incomplete {
                        missing: l.missing.clone(),
                    },
                })
                .collect(),
        }
    }

    /// Records the lists of `plan` a place (`registry`, `layout`) kept as they were, each
    /// with the platforms this run's would have lost.
    pub(crate) fn kept_lists(
        &mut self,
        plan: &Plan,
        place: &'static str,
        kept: Vec<(String, Vec<String>)>,
    ) {
        for (tag, lost) in kept {
            let reference = plan
                .manifests
                .iter()
                .find(|m| m.tag == tag)
                .map_or_else(|| format!("{}:{tag}", plan.repo), |m| m.reference.clone());
            self.lists_not_written.push(ListNotWritten {
                reference,
                why: ListWhy::FewerPlatforms { place, lost },
            });
        }
    }

    /// Whether the run did everything it was asked.
    pub(crate) fn is_empty(&self) -> bool {
        self.failed_packages.is_empty() && self.lists_not_written.is_empty()
    }

    /// The lines to print: one per package, one for the incomplete lists, one for the lists
    /// that would have lost a platform.
    pub(crate) fn lines(&self, noun: &str) -> Vec<String> {
        let mut out: Vec<String> = self.failed_packages.iter().map(|f| f.line(noun)).collect();
        let names = |pick: &dyn Fn(&ListWhy) -> Option<String>| -> Vec<String> {
            self.lists_not_written
                .iter()
                .filter_map(|l| {
                    let tag = l.reference.rsplit(':').next().unwrap_or(&l.reference);
                    pick(&l.why).map(|x| format!("{tag}{x}"))
                })
                .collect()
        };
        let incomplete = names(&|w| matches!(w, ListWhy::Incomplete { .. }).then(String::new));
        if !incomplete.is_empty() {
            out.push(format!(
                "{} not written, an entry could not be made (a list already there stays as it \
                 was): {}",
                count(incomplete.len(), "lists"),
                incomplete.join(", ")
            ));
        }
        for place in ["registry", "layout"] {
            let fewer = names(&|w| match w {
                ListWhy::FewerPlatforms { place: p, lost } if *p == place => {
                    Some(format!(" (has {})", lost.join(", ")))
                }
                _ => None,
            });
            if !fewer.is_empty() {
                out.push(format!(
                    "{} left as they were in the {place}, where they have platforms this run's \
                     would not: {}; make every host to update them, or remove a list first to \
                     shrink it on purpose",
                    count(fewer.len(), "lists"),
                    fewer.join(", ")
                ));
            }
        }
        out
    }

    /// The error that ends a run with something left out (exit 1), or `None`.
    pub(crate) fn error(&self, noun: &str) -> Option<anyhow::Error> {
        if self.is_empty() {
            return None;
        }
        let mut left: Vec<&String> = self
            .failed_packages
            .iter()
            .flat_map(|f| &f.left_out)
            .collect();
        left.sort();
        left.dedup();
        let mut parts = Vec::new();
        if !self.failed_packages.is_empty() {
            parts.push(format!(
                "{} could not be used ({} left out)",
                count(self.failed_packages.len(), "packages"),
                count(left.len(), noun)
            ));
        }
        if !self.lists_not_written.is_empty() {
            parts.push(format!(
                "{} not written",
                count(self.lists_not_written.len(), "lists")
            ));
        }
        Some(anyhow::anyhow!(
            "{}; everything else is done (the lines above say what, and what to do)",
            parts.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_packages_faults_are_causes() {
        let status = |status| qus_source::Error::HttpStatus {
            url: "http://127.0.0.1:9/debian/pool/x.deb".into(),
            status,
            attempts: 1,
        };
        assert_eq!(Cause::of(&status(404)), Some(Cause::NotServed));
        assert_eq!(Cause::of(&status(503)), Some(Cause::Network));
        let sum = qus_source::Error::ChecksumMismatch {
            file: "x.deb".into(),
            origin: "o".into(),
            expected: "a".into(),
            actual: "b".into(),
        };
        assert_eq!(Cause::of(&sum), Some(Cause::Mismatch));
        // A full disk is not the package's fault: it stops the run.
        let disk = qus_source::Error::Io {
            action: "cannot write",
            path: "/c/blobs".into(),
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        };
        assert_eq!(Cause::of(&disk), None);
        assert!(Cause::NotServed.hint().contains("qus lock"));
        assert!(Cause::NotServed.hint().contains("--debs"));
    }

    #[test]
    fn a_transfer_broken_off_on_every_try_says_what_to_do_once() {
        let e = qus_source::Error::Interrupted {
            url: "http://127.0.0.1:9/debian/pool/q/qemu-user_11.1.2+ds-3_loong64.deb".into(),
            received: 59_685_216,
            expected: Some(67_070_916),
            detail: "Connection reset by peer (os error 104)".into(),
            attempts: 4,
        };
        let package = PackagePlan {
            role: Role::Qemu {
                source: "d11.1".into(),
            },
            distro: crate::config::Distro::Debian,
            host: crate::arch::Host::Amd64,
            package: "qemu-user".into(),
            version: "1:11.1.2+ds-3".into(),
            file: "pool/q/qemu-user_11.1.2+ds-3_loong64.deb".into(),
            sha256: "ab".repeat(32),
            size: None,
            targets: Vec::new(),
            keyring: None,
        };
        let cause = Cause::of(&e).unwrap();
        assert_eq!(cause, Cause::Network);
        let line = PackageFailure::new(&package, cause, e.to_string()).line("images");
        assert_eq!(line.matches("run again").count(), 1, "{line}");
        assert!(line.contains("(tried 4 times)"), "{line}");
    }
}
