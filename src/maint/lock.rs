//! `qus lock`'s decisions, pure: the new lock file from the choices made on the mirror's
//! answers ([`super::choose`]), and what changed against the pins the config had (the
//! table a maintainer reviews, which says where a pin is not the newest listed file and
//! why).

use super::choose::{Choice, NotServed};
use super::{current_pin, Wanted};
use crate::arch::Host;
use crate::config::lockfile::{LockFile, Unavailable};
use crate::config::Config;
use crate::ui::table;
use serde::Serialize;

/// How a pin moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Nothing was pinned for this (role, host) before.
    New,
    /// Same file as before.
    Unchanged,
    /// Another version.
    Updated,
    /// Same version, another file or sum (a rebuilt package or another archive: review it).
    Changed,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Unchanged => "unchanged",
            Status::Updated => "updated",
            Status::Changed => "changed (same version)",
        }
    }
}

/// One line of the lock table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `busybox` or a source name.
    pub role: String,
    /// Host.
    pub host: Host,
    /// Package name.
    pub package: String,
    /// The version pinned before, if any.
    pub previous: Option<String>,
    /// The version pinned now.
    pub version: String,
    /// How it moved.
    pub status: Status,
    /// The suite it is pinned from.
    pub suite: String,
    /// Why it is not the newest file of the host's own suite, when it is not.
    pub note: Option<String>,
    /// Newer listed files the mirror does not serve.
    pub not_served: Vec<NotServed>,
}

/// Pure: the lock file for `choices` (made for `wanted`, in the same order), or the error
/// that names every (role, host) whose listed files the mirror serves none of.
pub fn lock_file(wanted: &[Wanted], choices: &[Choice]) -> Result<LockFile, String> {
    let mut lock = LockFile::new();
    let mut unserved = Vec::new();
    for (w, c) in wanted.iter().zip(choices) {
        match c {
            Choice::Pin { pin, .. } => lock.packages.push(pin.clone()),
            Choice::Unlisted => lock.unavailable.push(Unavailable {
                role: w.role.clone(),
                host: w.host,
                suite: w.suite().to_string(),
                package: w.package.clone(),
            }),
            Choice::NoneServed { tried } => unserved.push(format!(
                "  {} {}: the mirror serves no {} for {} from {}: {}",
                w.role,
                w.host,
                w.package,
                w.host.debian(),
                w.suites.join(", "),
                tried
                    .iter()
                    .map(|t| format!("{} {} ({})", t.suite, t.version, t.why))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    if unserved.is_empty() {
        Ok(lock)
    } else {
        Err(format!(
            "the mirror lists files it does not serve, and no suite the config allows serves \
             another:\n{}\nuse a complete mirror, or add a suite that has the package to the \
             section's `fallback_suites`",
            unserved.join("\n")
        ))
    }
}

/// Pure: each new pin against the pin `old` had for the same (role, host), with why it was
/// chosen when it is not the own suite's newest (from `choices`, made for `wanted`).
pub fn changes(old: &Config, new: &LockFile, wanted: &[Wanted], choices: &[Choice]) -> Vec<Change> {
    new.packages
        .iter()
        .map(|p| {
            let (note, not_served) = wanted
                .iter()
                .zip(choices)
                .find(|(w, _)| w.role == p.role && w.host == p.host)
                .and_then(|(_, c)| match c {
                    Choice::Pin {
                        note, passed_over, ..
                    } => Some((
                        note.as_ref()
                            .map(|n| format!("{n}; pinned {} {}", p.suite, p.version)),
                        passed_over.clone(),
                    )),
                    _ => None,
                })
                .unwrap_or_default();
            let before = current_pin(old, &p.role, p.host);
            let status = match before {
                None => Status::New,
                Some(b) if b.file == p.file && b.sha256 == p.sha256 => Status::Unchanged,
                Some(b) if b.version == p.version => Status::Changed,
                Some(_) => Status::Updated,
            };
            Change {
                role: p.role.clone(),
                host: p.host,
                package: p.package.clone(),
                previous: before.map(|b| b.version.clone()),
                version: p.version.clone(),
                status,
                suite: p.suite.clone(),
                note,
                not_served,
            }
        })
        .collect()
}

/// Pure: the table `qus lock` prints.
pub fn table(changes: &[Change]) -> String {
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            vec![
                c.role.clone(),
                c.host.to_string(),
                c.package.clone(),
                c.suite.clone(),
                match (&c.previous, c.status) {
                    (_, Status::Unchanged) => c.version.clone(),
                    (Some(p), _) => format!("{p} → {}", c.version),
                    (None, _) => format!("→ {}", c.version),
                },
                c.status.name().to_string(),
            ]
        })
        .collect();
    let mut out = table::render(
        &["ROLE", "HOST", "PACKAGE", "SUITE", "PIN", "CHANGE"],
        &rows,
    );
    out.push_str(&notes(changes));
    out
}

/// Pure: one line per pin that is not the newest file of its host's own suite, and why.
pub fn notes(changes: &[Change]) -> String {
    changes
        .iter()
        .filter_map(|c| Some(format!("{} {}: {}\n", c.role, c.host, c.note.as_ref()?)))
        .collect()
}

/// Pure: what `qus lock --json` prints: the lock's path, whether it was rewritten, and
/// every pin with its previous version and status.
pub fn json(path: &str, written: bool, changes: &[Change], lock: &LockFile) -> serde_json::Value {
    let pins: Vec<serde_json::Value> = lock
        .packages
        .iter()
        .zip(changes)
        .map(|(p, c)| {
            serde_json::json!({
                "role": p.role,
                "host": p.host,
                "suite": p.suite,
                "package": p.package,
                "version": p.version,
                "file": p.file,
                "size": p.size,
                "sha256": p.sha256,
                "previous": c.previous,
                "status": c.status,
                "note": c.note,
                "not_served": c.not_served,
            })
        })
        .collect();
    serde_json::json!({
        "lock": path,
        "written": written,
        "packages": pins,
        "unavailable": lock.unavailable,
        "suites": lock.suites,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lockfile::LockedPackage;

    fn pin(role: &str, host: Host, version: &str, sha: char) -> LockedPackage {
        let v = version.split_once(':').map_or(version, |(_, v)| v);
        LockedPackage {
            role: role.into(),
            host,
            suite: if role == "d7.2" { "bookworm" } else { "trixie" }.into(),
            package: match role {
                "busybox" => "busybox-static",
                "d7.2" => "qemu-user-static",
                _ => "qemu-user",
            }
            .into(),
            version: version.into(),
            file: format!("pool/main/x/x/x_{v}_{}.deb", host.debian()),
            size: 1,
            sha256: sha.to_string().repeat(64),
        }
    }

    fn old() -> Config {
        let lock = LockFile {
            packages: vec![
                pin("busybox", Host::Amd64, "1:1.37.0-6+b9", 'a'),
                pin("d10.0", Host::Amd64, "1:10.0.13+ds-0+deb13u1", 'b'),
                pin("d10.0", Host::Arm64v8, "1:10.0.13+ds-0+deb13u1", 'c'),
            ],
            ..LockFile::new()
        };
        let text = "repo: q\ndefault: d10.0\nhosts: [amd64, arm64v8]\n\
                    busybox: { package: busybox-static, suite: trixie, version: '1:1.37.0-6+b9',\n  \
                    files: { arm64v8: { file: pool/main/x/x/x_1.37.0-6+b9_arm64.deb, sha256: dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd } } }\n\
                    sources:\n  - { name: d10.0, distro: debian, suite: trixie, package: qemu-user, targets: [aarch64] }\n";
        Config::parse_with_lock(text, "c.yml", Some((&lock, "c.lock"))).unwrap()
    }

    fn want(role: &str, host: Host, suites: &[&str]) -> Wanted {
        Wanted {
            role: role.into(),
            host,
            suites: suites.iter().map(|s| s.to_string()).collect(),
            package: "qemu-user-static".into(),
            keyring: None,
        }
    }

    fn chosen(p: &LockedPackage) -> Choice {
        Choice::Pin {
            pin: p.clone(),
            passed_over: Vec::new(),
            note: None,
        }
    }

    #[test]
    fn lock_file_keeps_order_and_records_missing_arches() {
        let wanted = [
            want("d7.2", Host::Amd64, &["bookworm"]),
            want("d7.2", Host::Riscv64, &["bookworm"]),
        ];
        let p = pin("d7.2", Host::Amd64, "1:7.2+dfsg-7", 'e');
        let lock = lock_file(&wanted, &[chosen(&p), Choice::Unlisted]).unwrap();
        assert_eq!(lock.packages, [p]);
        assert_eq!(lock.unavailable.len(), 1);
        assert!(lock.is_unavailable("d7.2", Host::Riscv64));
    }

    #[test]
    fn files_listed_but_served_nowhere_are_an_error_naming_host_package_and_suites() {
        let wanted = [want("d11.1", Host::S390x, &["trixie-backports", "forky"])];
        let tried = vec![NotServed {
            suite: "trixie-backports".into(),
            version: "1:11.1.3+ds-2~bpo13+1".into(),
            file: "pool/x.deb".into(),
            why: "the mirror answers 404".into(),
        }];
        let e = lock_file(&wanted, &[Choice::NoneServed { tried }]).unwrap_err();
        assert!(
            e.contains(
                "d11.1 s390x: the mirror serves no qemu-user-static for s390x from \
                 trixie-backports, forky: trixie-backports 1:11.1.3+ds-2~bpo13+1 (the mirror \
                 answers 404)"
            ),
            "{e}"
        );
        assert!(e.contains("fallback_suites"), "{e}");
    }

    #[test]
    fn a_pin_from_a_fallback_says_which_file_it_stands_in_for_and_why() {
        let mut p = pin("d10.0", Host::Arm64v8, "1:10.0.12+ds-1", '9');
        p.suite = "forky".into();
        let new = LockFile {
            packages: vec![p.clone()],
            ..LockFile::new()
        };
        let wanted = [want("d10.0", Host::Arm64v8, &["trixie", "forky"])];
        let choice = Choice::Pin {
            pin: p,
            passed_over: vec![NotServed {
                suite: "trixie".into(),
                version: "1:10.0.13+ds-0+deb13u1".into(),
                file: "pool/main/x/x/x_10.0.13+ds-0+deb13u1_arm64.deb".into(),
                why: "the mirror answers 404".into(),
            }],
            note: Some("trixie 1:10.0.13+ds-0+deb13u1 is listed but the mirror answers 404".into()),
        };
        let c = changes(&old(), &new, &wanted, &[choice]);
        let note = "trixie 1:10.0.13+ds-0+deb13u1 is listed but the mirror answers 404; \
                    pinned forky 1:10.0.12+ds-1";
        assert_eq!(c[0].note.as_deref(), Some(note));
        assert_eq!(c[0].status, Status::Updated);
        let t = table(&c);
        assert!(t.contains(&format!("d10.0 arm64v8: {note}\n")), "{t}");
        assert!(
            t.lines().nth(1).unwrap().contains(" forky "),
            "the SUITE column: {t}"
        );
        let j = json("c.lock", true, &c, &new);
        assert_eq!(j["packages"][0]["note"], note);
        assert_eq!(j["packages"][0]["suite"], "forky");
        assert_eq!(j["packages"][0]["not_served"][0]["suite"], "trixie");
        assert_eq!(
            j["packages"][0]["not_served"][0]["why"],
            "the mirror answers 404"
        );
    }

    #[test]
    fn statuses_against_lock_and_inline_pins() {
        let new = LockFile {
            packages: vec![
                pin("busybox", Host::Amd64, "1:1.37.0-6+b9", 'a'),
                pin("busybox", Host::Arm64v8, "1:1.37.0-6+b9", 'f'),
                pin("d10.0", Host::Amd64, "1:10.0.14+ds-0+deb13u1", '1'),
                pin("d10.0", Host::Arm64v8, "1:10.0.13+ds-0+deb13u1", '2'),
                pin("d10.0", Host::Riscv64, "1:10.0.13+ds-0+deb13u1", '3'),
            ],
            ..LockFile::new()
        };
        let wanted: Vec<Wanted> = new
            .packages
            .iter()
            .map(|p| want(&p.role, p.host, &[&p.suite]))
            .collect();
        let choices: Vec<Choice> = new.packages.iter().map(chosen).collect();
        let c = changes(&old(), &new, &wanted, &choices);
        let got: Vec<(Host, Status, Option<&str>)> = c
            .iter()
            .map(|c| (c.host, c.status, c.previous.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (Host::Amd64, Status::Unchanged, Some("1:1.37.0-6+b9")),
                // The inline arm64v8 pin had another sum for the same version.
                (Host::Arm64v8, Status::Changed, Some("1:1.37.0-6+b9")),
                (Host::Amd64, Status::Updated, Some("1:10.0.13+ds-0+deb13u1")),
                (
                    Host::Arm64v8,
                    Status::Changed,
                    Some("1:10.0.13+ds-0+deb13u1")
                ),
                (Host::Riscv64, Status::New, None),
            ]
        );
        let t = table(&c);
        assert!(t.starts_with("ROLE"), "{t}");
        assert!(
            t.contains("1:10.0.13+ds-0+deb13u1 → 1:10.0.14+ds-0+deb13u1  updated"),
            "{t}"
        );
        assert!(t.contains("→ 1:10.0.13+ds-0+deb13u1"), "{t}");
        assert!(
            notes(&c).is_empty(),
            "the own suites' newest: nothing to explain"
        );
        assert_eq!(c[0].suite, "trixie");
        let j = json("c.lock", true, &c, &new);
        assert_eq!(j["packages"][2]["status"], "updated");
        assert_eq!(j["packages"][1]["status"], "changed");
        assert_eq!(j["packages"][4]["previous"], serde_json::Value::Null);
        assert_eq!(j["packages"][0]["host"], "amd64");
    }
}
