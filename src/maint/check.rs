//! `qus check`'s decisions, pure: each pin against the file `qus lock` would pin now (the
//! newest the mirror serves, [`super::choose`]), by Debian version ordering, and the exit
//! code a scheduled CI job acts on. A newer file the mirror lists but does not serve is
//! said so, never reported as a newer version to lock.

use super::choose::{Answer, Answers, Choice, NotServed};
use super::Wanted;
use crate::arch::Host;
use crate::config::lockfile::LockedPackage;
use crate::config::PackageFile;
use crate::ui::table;
use anyhow::anyhow;
use qus_source::debian_index::compare as compare_versions;
use serde::Serialize;
use std::cmp::Ordering;

/// The exit code when a pin is out of date (0: all current; 2: an error).
pub const OUTDATED: u8 = 1;

/// How a pin compares with the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The pin is the newest version.
    Current,
    /// A newer version exists.
    Outdated,
    /// Same version, but another file or sum than pinned: re-lock and review.
    Changed,
    /// The pin is newer than anything the mirror has (a mirror behind the archive).
    Ahead,
    /// The pin is the newest served file; a newer one is listed but not served.
    NewerNotServed,
    /// The mirror does not serve the pinned file: `qus lock` pins one it serves.
    NotServed,
}

impl Status {
    /// Whether `qus lock` would change the pin (exit code 1).
    pub fn needs_lock(self) -> bool {
        matches!(self, Status::Outdated | Status::Changed | Status::NotServed)
    }

    fn name(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Outdated => "outdated",
            Status::Changed => "changed (same version)",
            Status::Ahead => "ahead of mirror",
            Status::NewerNotServed => "current (newer listed, not served)",
            Status::NotServed => "pinned file not served",
        }
    }
}

/// One pin compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// `busybox` or a source name.
    pub role: String,
    /// Host.
    pub host: Host,
    /// Suite.
    pub suite: String,
    /// Package.
    pub package: String,
    /// The pinned version.
    pub current: String,
    /// The newest version the mirror serves (what `qus lock` would pin; empty when it
    /// serves none).
    pub newest: String,
    /// The newest version's pool file.
    pub newest_file: String,
    /// The suite it is in.
    pub newest_suite: String,
    /// The verdict.
    pub status: Status,
    /// What the reader should know beyond the status: newer files listed but not served,
    /// a pinned file not served.
    pub note: Option<String>,
    /// Newer listed files the mirror does not serve.
    pub not_served: Vec<NotServed>,
}

/// Pure: compares every pin with `qus lock`'s choice for it (`choices`, in the same order),
/// knowing from `answers` whether the mirror serves each pinned file. A pinned host that no
/// allowed suite lists anything for is an error: nothing can be said about it.
pub fn compare(
    pins: &[(Wanted, PackageFile)],
    choices: &[Choice],
    answers: &Answers,
) -> anyhow::Result<Vec<Row>> {
    pins.iter()
        .zip(choices)
        .map(|((w, pin), c)| {
            let row = |status, newest: Option<&LockedPackage>, note, not_served| Row {
                role: w.role.clone(),
                host: w.host,
                suite: w.suite().to_string(),
                package: w.package.clone(),
                current: pin.version.clone(),
                newest: newest.map(|n| n.version.clone()).unwrap_or_default(),
                newest_file: newest.map(|n| n.file.clone()).unwrap_or_default(),
                newest_suite: newest.map(|n| n.suite.clone()).unwrap_or_default(),
                status,
                note,
                not_served,
            };
            let pin_unserved = match answers.get(&pin.file) {
                Some(Answer::NotServed(why)) => Some(why.as_str()),
                _ => None,
            };
            let (n, reason, passed_over) = match c {
                Choice::Unlisted => {
                    return Err(anyhow!(
                        "{} {}: {} is pinned, but the mirror's {} list none for {}",
                        w.role,
                        w.host,
                        w.package,
                        w.suites.join(", "),
                        w.host.debian()
                    ))
                }
                Choice::NoneServed { tried } => {
                    let status = match pin_unserved {
                        Some(_) => Status::NotServed,
                        None => Status::Ahead,
                    };
                    let note = format!(
                        "the mirror serves none of the files {} lists for {}{}",
                        w.suites.join(", "),
                        w.host.debian(),
                        pin_unserved
                            .map(|why| format!(", nor the pinned one ({why})"))
                            .unwrap_or_default()
                    );
                    return Ok(row(status, None, Some(note), tried.clone()));
                }
                Choice::Pin {
                    pin: n,
                    note,
                    passed_over,
                } => (n, note, passed_over),
            };
            let same = n.sha256 == pin.sha256 && n.file == pin.file;
            let status = judge(pin, n, passed_over.is_empty(), pin_unserved.is_some());
            let mut notes: Vec<String> = Vec::new();
            if let (Some(why), false) = (pin_unserved, same) {
                notes.push(format!("the pinned {} is not served ({why})", pin.version));
            }
            if let Some(r) = reason {
                notes.push(r.clone());
            }
            let note = (!notes.is_empty()).then(|| {
                format!(
                    "{}; the newest served is {} {}",
                    notes.join("; "),
                    n.suite,
                    n.version
                )
            });
            Ok(row(status, Some(n), note, passed_over.clone()))
        })
        .collect()
}

/// Pure: a pin against the served file `n` `qus lock` would pin, knowing whether newer
/// files are listed but not served (`!newest_listed`) and whether the pin itself is not.
fn judge(pin: &PackageFile, n: &LockedPackage, newest_listed: bool, pin_unserved: bool) -> Status {
    let same = n.sha256 == pin.sha256 && n.file == pin.file;
    match compare_versions(&n.version, &pin.version) {
        Ordering::Greater => Status::Outdated,
        Ordering::Equal if same && newest_listed => Status::Current,
        Ordering::Equal if same => Status::NewerNotServed,
        Ordering::Equal => Status::Changed,
        Ordering::Less if pin_unserved => Status::NotServed,
        Ordering::Less => Status::Ahead,
    }
}

/// Pure: the table `qus check` prints.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.role.clone(),
                r.host.to_string(),
                r.package.clone(),
                r.current.clone(),
                r.newest.clone(),
                r.status.name().to_string(),
            ]
        })
        .collect();
    let mut out = table::render(
        &[
            "ROLE",
            "HOST",
            "PACKAGE",
            "PINNED",
            "NEWEST SERVED",
            "STATUS",
        ],
        &cells,
    );
    for r in rows {
        if let Some(n) = &r.note {
            out.push_str(&format!("{} {}: {n}\n", r.role, r.host));
        }
    }
    out
}

/// A QEMU series newer than any source pins for a host, offered by a configured suite:
/// time for a new source (`qus lock` would move an existing one across series, and its
/// `dV` tags would then lie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewerSeries {
    /// Host.
    pub host: Host,
    /// Suite that has it.
    pub suite: String,
    /// Package.
    pub package: String,
    /// The version there.
    pub version: String,
    /// Its upstream series (`11.2`).
    pub series: String,
    /// The newest series a source pins for the host.
    pub pinned_series: String,
}

/// The upstream `major.minor` of a Debian version (`1:11.1.3+ds-2~bpo13+1` → 11.1).
fn series(version: &str) -> Vec<u64> {
    let upstream = version.split_once(':').map_or(version, |(_, v)| v);
    upstream
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()
        .unwrap_or("")
        .split('.')
        .take(2)
        .map(|n| n.parse().unwrap_or(0))
        .collect()
}

fn series_text(s: &[u64]) -> String {
    s.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// Pure: the newer QEMU series the configured suites offer, per host, beyond every series
/// a source pins (busybox aside).
pub fn newer_series(rows: &[Row]) -> Vec<NewerSeries> {
    let qemu: Vec<&Row> = rows
        .iter()
        .filter(|r| r.role != crate::config::lockfile::BUSYBOX)
        .collect();
    let mut out: Vec<NewerSeries> = Vec::new();
    for r in &qemu {
        let pinned = qemu
            .iter()
            .filter(|o| o.host == r.host && o.package == r.package)
            .map(|o| series(&o.current))
            .max()
            .unwrap_or_default();
        let offered = series(&r.newest);
        let known = out
            .iter()
            .any(|n| n.host == r.host && n.suite == r.suite && n.package == r.package);
        if offered > pinned && !known {
            out.push(NewerSeries {
                host: r.host,
                suite: r.suite.clone(),
                package: r.package.clone(),
                version: r.newest.clone(),
                series: series_text(&offered),
                pinned_series: series_text(&pinned),
            });
        }
    }
    out
}

/// Pure: the lines `qus check` prints after its table about newer series.
pub fn newer_series_lines(found: &[NewerSeries]) -> String {
    found
        .iter()
        .map(|n| {
            format!(
                "newer QEMU series: {} has {} {} ({}) for {}, newer than any pinned series \
                 ({}): add a source for it rather than lock an existing one across series\n",
                n.suite, n.package, n.version, n.series, n.host, n.pinned_series
            )
        })
        .collect()
}

/// Pure: what `qus check --json` prints.
pub fn json(rows: &[Row]) -> serde_json::Value {
    let outdated = rows.iter().any(|r| r.status.needs_lock());
    serde_json::json!({
        "status": if outdated { "outdated" } else { "current" },
        "packages": rows,
        "newer_series": newer_series(rows),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lockfile::LockedPackage;

    #[test]
    fn a_newer_series_than_any_pin_is_named_once_per_suite() {
        let row = |role: &str, suite: &str, current: &str, newest: &str| Row {
            role: role.into(),
            host: Host::Amd64,
            suite: suite.into(),
            package: "qemu-user".into(),
            current: current.into(),
            newest: newest.into(),
            newest_file: String::new(),
            newest_suite: suite.into(),
            status: Status::Current,
            note: None,
            not_served: Vec::new(),
        };
        assert_eq!(series("1:11.1.3+ds-2~bpo13+1"), [11, 1]);
        assert_eq!(series("10.0"), [10, 0]);
        // d10.0 in trixie and d11.1 in trixie-backports: 11.1 is pinned, nothing to say.
        let same = [
            row("d10.0", "trixie", "1:10.0.13+ds-0", "1:10.0.13+ds-0"),
            row(
                "d11.1",
                "trixie-backports",
                "1:11.1.3+ds-2",
                "1:11.1.3+ds-2",
            ),
        ];
        assert!(newer_series(&same).is_empty());
        // trixie-backports moved to 11.2: a new source is due.
        let moved = [
            row("d10.0", "trixie", "1:10.0.13+ds-0", "1:10.0.13+ds-0"),
            row(
                "d11.1",
                "trixie-backports",
                "1:11.1.3+ds-2",
                "1:11.2.0+ds-1~bpo13+1",
            ),
            row("busybox", "trixie", "1:1.37.0-6", "1:1.38.0-1"),
        ];
        let n = newer_series(&moved);
        assert_eq!(n.len(), 1);
        assert_eq!(
            (n[0].series.as_str(), n[0].pinned_series.as_str()),
            ("11.2", "11.1")
        );
        assert!(newer_series_lines(&n).contains("trixie-backports has qemu-user 1:11.2.0"));
    }

    fn pinned(version: &str, sha: char) -> (Wanted, PackageFile) {
        (
            Wanted {
                role: "d10.0".into(),
                host: Host::Amd64,
                suites: vec!["trixie".into()],
                package: "qemu-user".into(),
                keyring: None,
            },
            PackageFile {
                file: format!("pool/main/q/qemu/qemu-user_{version}_amd64.deb"),
                size: Some(1),
                sha256: sha.to_string().repeat(64),
                version: version.into(),
                targets: None,
                more: Vec::new(),
            },
        )
    }

    fn file(version: &str, sha: char) -> LockedPackage {
        LockedPackage {
            role: "d10.0".into(),
            host: Host::Amd64,
            suite: "trixie".into(),
            package: "qemu-user".into(),
            version: version.into(),
            file: format!("pool/main/q/qemu/qemu-user_{version}_amd64.deb"),
            size: 1,
            sha256: sha.to_string().repeat(64),
        }
    }

    fn newest(version: &str, sha: char) -> Choice {
        Choice::Pin {
            pin: file(version, sha),
            passed_over: Vec::new(),
            note: None,
        }
    }

    /// Every pinned file served.
    fn all_served(pins: &[(Wanted, PackageFile)]) -> Answers {
        pins.iter()
            .map(|(_, p)| (p.file.clone(), Answer::Served))
            .collect()
    }

    #[test]
    fn debian_ordering_decides() {
        let pins = [
            pinned("1:10.0.13+ds-0+deb13u1", 'a'),
            pinned("1:10.0.2+ds-2", 'a'),
            pinned("1:10.0.13+ds-0+deb13u1", 'a'),
            pinned("1:10.1~rc1", 'a'),
        ];
        let found = [
            newest("1:10.0.13+ds-0+deb13u1", 'a'),
            newest("1:10.0.13+ds-0+deb13u1", 'b'),
            newest("1:10.0.13+ds-0+deb13u1", 'b'),
            newest("1:10.0.13+ds-0+deb13u1", 'b'),
        ];
        let rows = compare(&pins, &found, &all_served(&pins)).unwrap();
        let got: Vec<Status> = rows.iter().map(|r| r.status).collect();
        // 10.0.2 < 10.0.13 numerically; 10.1~rc1 > 10.0.13.
        assert_eq!(
            got,
            [
                Status::Current,
                Status::Outdated,
                Status::Changed,
                Status::Ahead
            ]
        );
        let j = json(&rows);
        assert_eq!(j["status"], "outdated");
        assert_eq!(j["packages"][1]["current"], "1:10.0.2+ds-2");
        assert_eq!(j["packages"][1]["newest"], "1:10.0.13+ds-0+deb13u1");
        assert_eq!(j["packages"][1]["status"], "outdated");
        let t = table(&rows);
        assert!(t.lines().nth(2).unwrap().ends_with("outdated"), "{t}");
        assert_eq!(json(&rows[..1])["status"], "current");
        assert_eq!(json(&rows[3..])["status"], "current");
    }

    #[test]
    fn a_pinned_arch_the_suite_lacks_is_an_error() {
        let pins = [pinned("1:7.2", 'a')];
        let e = compare(&pins, &[Choice::Unlisted], &all_served(&pins)).unwrap_err();
        assert!(e.to_string().contains("d10.0 amd64"), "{e}");
    }

    #[test]
    fn a_newer_file_listed_but_not_served_is_said_so_never_outdated() {
        let bpo = "1:10.0.14+ds-0+deb13u1";
        let pins = [pinned("1:10.0.13+ds-0+deb13u1", 'a')];
        let passed_over = vec![NotServed {
            suite: "trixie".into(),
            version: bpo.into(),
            file: file(bpo, 'b').file,
            why: "the mirror answers 404".into(),
        }];
        let choice = Choice::Pin {
            pin: file("1:10.0.13+ds-0+deb13u1", 'a'),
            passed_over: passed_over.clone(),
            note: Some(format!("trixie {bpo} is listed but the mirror answers 404")),
        };
        let rows = compare(&pins, &[choice], &all_served(&pins)).unwrap();
        assert_eq!(rows[0].status, Status::NewerNotServed);
        assert!(!rows[0].status.needs_lock());
        assert_eq!(rows[0].newest, "1:10.0.13+ds-0+deb13u1");
        let note = format!(
            "trixie {bpo} is listed but the mirror answers 404; the newest served is trixie \
             1:10.0.13+ds-0+deb13u1"
        );
        assert_eq!(rows[0].note.as_deref(), Some(note.as_str()));
        let t = table(&rows);
        assert!(t.contains("current (newer listed, not served)"), "{t}");
        assert!(t.contains(&format!("d10.0 amd64: {note}")), "{t}");
        let j = json(&rows);
        assert_eq!(j["status"], "current");
        assert_eq!(j["packages"][0]["status"], "newer-not-served");
        assert_eq!(j["packages"][0]["not_served"][0]["version"], bpo);

        // Pinned to the unserved file itself: `qus lock` moves it to the served one.
        let pins = [pinned(bpo, 'b')];
        let mut answers = Answers::new();
        answers.insert(
            pins[0].1.file.clone(),
            Answer::NotServed("the mirror answers 404".into()),
        );
        let choice = Choice::Pin {
            pin: file("1:10.0.13+ds-0+deb13u1", 'a'),
            passed_over,
            note: Some(format!("trixie {bpo} is listed but the mirror answers 404")),
        };
        let rows = compare(&pins, &[choice], &answers).unwrap();
        assert_eq!(rows[0].status, Status::NotServed);
        assert!(rows[0].status.needs_lock());
        assert!(
            rows[0].note.as_deref().unwrap().starts_with(&format!(
                "the pinned {bpo} is not served (the mirror answers 404)"
            )),
            "{:?}",
            rows[0].note
        );
        assert_eq!(json(&rows)["status"], "outdated");
    }
}
