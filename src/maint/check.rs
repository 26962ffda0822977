//! `qus check`'s decisions, pure: each pin against the newest version the mirror offers,
//! by Debian version ordering, and the exit code a scheduled CI job acts on.

use super::index::Found;
use super::Wanted;
use crate::arch::Host;
use crate::config::PackageFile;
use crate::table;
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
}

impl Status {
    /// Whether `qus lock` would change the pin (exit code 1).
    pub fn needs_lock(self) -> bool {
        matches!(self, Status::Outdated | Status::Changed)
    }

    fn name(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Outdated => "outdated",
            Status::Changed => "changed (same version)",
            Status::Ahead => "ahead of mirror",
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
    /// The newest version the mirror offers.
    pub newest: String,
    /// The newest version's pool file.
    pub newest_file: String,
    /// The verdict.
    pub status: Status,
}

/// Pure: compares every pin with the mirror's answer for it. A pinned host whose arch the
/// suite no longer has is an error: nothing can be said about it.
pub fn compare(pins: &[(Wanted, PackageFile)], found: &[Found]) -> anyhow::Result<Vec<Row>> {
    pins.iter()
        .zip(found)
        .map(|((w, pin), f)| {
            let Found::Newest(n) = f else {
                return Err(anyhow!(
                    "{} {}: {} is pinned, but the mirror's {} has no index for {}",
                    w.role,
                    w.host,
                    w.package,
                    w.suite,
                    w.host.debian()
                ));
            };
            let status = match compare_versions(&n.version, &pin.version) {
                Ordering::Greater => Status::Outdated,
                Ordering::Less => Status::Ahead,
                Ordering::Equal if n.sha256 == pin.sha256 && n.file == pin.file => Status::Current,
                Ordering::Equal => Status::Changed,
            };
            Ok(Row {
                role: w.role.clone(),
                host: w.host,
                suite: w.suite.clone(),
                package: w.package.clone(),
                current: pin.version.clone(),
                newest: n.version.clone(),
                newest_file: n.file.clone(),
                status,
            })
        })
        .collect()
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
    table::render(
        &["ROLE", "HOST", "PACKAGE", "PINNED", "NEWEST", "STATUS"],
        &cells,
    )
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
        .filter(|r| r.role != crate::lockfile::BUSYBOX)
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
    use crate::lockfile::LockedPackage;

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
            status: Status::Current,
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
                suite: "trixie".into(),
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

    fn newest(version: &str, sha: char) -> Found {
        Found::Newest(LockedPackage {
            role: "d10.0".into(),
            host: Host::Amd64,
            suite: "trixie".into(),
            package: "qemu-user".into(),
            version: version.into(),
            file: format!("pool/main/q/qemu/qemu-user_{version}_amd64.deb"),
            size: 1,
            sha256: sha.to_string().repeat(64),
        })
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
        let rows = compare(&pins, &found).unwrap();
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
        let e = compare(&[pinned("1:7.2", 'a')], &[Found::NoArch]).unwrap_err();
        assert!(e.to_string().contains("d10.0 amd64"), "{e}");
    }
}
