//! `qus lock`'s decisions, pure: the new lock file from the mirror's answers, and what
//! changed against the pins the config had (the table a maintainer reviews).

use super::index::Found;
use super::{current_pin, Wanted};
use crate::arch::Host;
use crate::config::Config;
use crate::lockfile::{LockFile, Unavailable};
use crate::table;
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
}

/// Pure: the lock file for `found` (answers to `wanted`, in the same order).
pub fn lock_file(wanted: &[Wanted], found: &[Found]) -> LockFile {
    let mut lock = LockFile::new();
    for (w, f) in wanted.iter().zip(found) {
        match f {
            Found::Newest(p) => lock.packages.push(p.clone()),
            Found::NoArch => lock.unavailable.push(Unavailable {
                role: w.role.clone(),
                host: w.host,
                suite: w.suite.clone(),
                package: w.package.clone(),
            }),
        }
    }
    lock
}

/// Pure: each new pin against the pin `old` had for the same (role, host).
pub fn changes(old: &Config, new: &LockFile) -> Vec<Change> {
    new.packages
        .iter()
        .map(|p| {
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
                match (&c.previous, c.status) {
                    (_, Status::Unchanged) => c.version.clone(),
                    (Some(p), _) => format!("{p} → {}", c.version),
                    (None, _) => format!("→ {}", c.version),
                },
                c.status.name().to_string(),
            ]
        })
        .collect();
    table::render(&["ROLE", "HOST", "PACKAGE", "PIN", "CHANGE"], &rows)
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
    use crate::lockfile::LockedPackage;

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

    #[test]
    fn lock_file_keeps_order_and_records_missing_arches() {
        let w = |role: &str, host| Wanted {
            role: role.into(),
            host,
            suite: "bookworm".into(),
            package: "qemu-user-static".into(),
            keyring: None,
        };
        let wanted = [w("d7.2", Host::Amd64), w("d7.2", Host::Riscv64)];
        let p = pin("d7.2", Host::Amd64, "1:7.2+dfsg-7", 'e');
        let lock = lock_file(&wanted, &[Found::Newest(p.clone()), Found::NoArch]);
        assert_eq!(lock.packages, [p]);
        assert_eq!(lock.unavailable.len(), 1);
        assert!(lock.is_unavailable("d7.2", Host::Riscv64));
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
        let c = changes(&old(), &new);
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
        let j = json("c.lock", true, &c, &new);
        assert_eq!(j["packages"][2]["status"], "updated");
        assert_eq!(j["packages"][1]["status"], "changed");
        assert_eq!(j["packages"][4]["previous"], serde_json::Value::Null);
        assert_eq!(j["packages"][0]["host"], "amd64");
    }
}
