//! `qus report`: the targets × hosts table of which emulator each pinned package provides,
//! one table per QEMU source, as markdown (for a README or a release note) or JSON.
//!
//! Pure, from the plan: the plan already knows, per host, which emulators the pinned
//! package ships (the config's `targets`, per-host overrides included) narrowed by
//! `--hosts`/`--targets`/`--sources`, so the report can never disagree with what
//! `qus build` makes.

use crate::arch::Host;
use crate::plan::{Plan, Role};
use serde::Serialize;
use std::collections::BTreeSet;

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Which QEMU each host gets under the unversioned tags (empty when the plan has none).
    pub unversioned: Vec<HostVersion>,
    /// One entry per source, in plan order.
    pub sources: Vec<SourceReport>,
}

/// The QEMU a host's unversioned tags carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostVersion {
    /// Host.
    pub host: Host,
    /// Source name (`d11.1`).
    pub source: String,
    /// QEMU package version.
    pub version: String,
}

/// One source's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    /// Source name (`d10.0`).
    pub source: String,
    /// Debian package name.
    pub package: String,
    /// The columns: every host of the plan.
    pub hosts: Vec<Host>,
    /// The pinned package per host that has one.
    pub packages: Vec<HostPackage>,
    /// The rows: every target some host's package provides, sorted.
    pub targets: Vec<TargetRow>,
    /// Hosts without emulators in this source, and why.
    pub notes: Vec<String>,
}

/// One host's pinned package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostPackage {
    /// Host.
    pub host: Host,
    /// Version.
    pub version: String,
    /// Pool file.
    pub file: String,
}

/// One row: a target and the hosts whose package provides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetRow {
    /// QEMU target.
    pub target: String,
    /// Hosts with `qemu-<target>`.
    pub hosts: Vec<Host>,
}

/// Pure: the report of `plan`.
pub fn report(plan: &Plan) -> Report {
    let hosts = plan.hosts();
    let mut names: Vec<&str> = Vec::new();
    for i in &plan.images {
        if !names.contains(&i.source.as_str()) {
            names.push(&i.source);
        }
    }
    let sources = names
        .into_iter()
        .map(|name| {
            let pkgs: Vec<_> = plan
                .packages
                .iter()
                .filter(|p| matches!(&p.role, Role::Qemu { source } if source == name))
                .collect();
            let package = pkgs.first().map(|p| p.package.clone()).unwrap_or_else(|| {
                plan.images
                    .iter()
                    .find(|i| i.source == name)
                    .and_then(|i| i.labels.get(crate::plan::labels::QEMU_PACKAGE).cloned())
                    .unwrap_or_default()
            });
            let targets: BTreeSet<&str> = pkgs
                .iter()
                .flat_map(|p| p.targets.iter().map(String::as_str))
                .collect();
            let rows = targets
                .into_iter()
                .map(|t| TargetRow {
                    target: t.to_string(),
                    hosts: hosts
                        .iter()
                        .copied()
                        .filter(|h| {
                            pkgs.iter()
                                .any(|p| p.host == *h && p.targets.iter().any(|x| x == t))
                        })
                        .collect(),
                })
                .collect();
            let notes = plan
                .skipped
                .iter()
                .filter(|s| s.source == name && s.target.is_none())
                .map(|s| format!("{}: {}", s.host, s.reason))
                .collect();
            SourceReport {
                source: name.to_string(),
                package,
                hosts: hosts.clone(),
                packages: pkgs
                    .iter()
                    .map(|p| HostPackage {
                        host: p.host,
                        version: p.version.clone(),
                        file: p.file.clone(),
                    })
                    .collect(),
                targets: rows,
                notes,
            }
        })
        .collect();
    // Any unversioned list names, per host, the image of the source that host gets.
    let unversioned = plan
        .manifests
        .iter()
        .find(|m| m.source == crate::plan::NEWEST)
        .map(|m| {
            m.entries
                .iter()
                .filter_map(|e| plan.image(&e.tag))
                .map(|i| HostVersion {
                    host: i.host,
                    source: i.source.clone(),
                    version: i.qemu_version.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Report {
        unversioned,
        sources,
    }
}

/// Pure: the report as markdown: a heading, a `| target | amd64 | … |` table with ✓ where
/// the host's package provides the emulator, and notes, per source.
pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    if !r.unversioned.is_empty() {
        out.push_str("### Unversioned tags (latest, pkg, register, <target>)\n\n");
        out.push_str("| host | source | QEMU |\n| --- | --- | --- |\n");
        for h in &r.unversioned {
            out.push_str(&format!("| {} | {} | {} |\n", h.host, h.source, h.version));
        }
        out.push('\n');
    }
    for (n, s) in r.sources.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut versions: Vec<&str> = Vec::new();
        for p in &s.packages {
            if !versions.contains(&p.version.as_str()) {
                versions.push(&p.version);
            }
        }
        out.push_str(&format!("### {}: {}", s.source, s.package));
        if !versions.is_empty() {
            out.push_str(&format!(" {}", versions.join(", ")));
        }
        out.push_str("\n\n");
        let header: Vec<&str> = s.hosts.iter().map(|h| h.name()).collect();
        out.push_str(&format!("| target | {} |\n", header.join(" | ")));
        out.push_str(&format!("| --- |{}\n", " :---: |".repeat(s.hosts.len())));
        for row in &s.targets {
            let cells: Vec<&str> = s
                .hosts
                .iter()
                .map(|h| if row.hosts.contains(h) { "✓" } else { " " })
                .collect();
            out.push_str(&format!("| {} | {} |\n", row.target, cells.join(" | ")));
        }
        if !s.notes.is_empty() {
            out.push('\n');
            for note in &s.notes {
                out.push_str(&format!("- {note}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::parse_hosts;
    use crate::config::Config;
    use crate::plan::{plan, Recipe, Selection};

    fn recipe() -> Recipe {
        Recipe {
            qus_version: "0".into(),
            template_sha256: "t".into(),
            entrypoint_sha256: "e".into(),
            epoch: 0,
        }
    }

    fn plan_of(hosts: &str, targets: Option<&str>, sources: Option<&str>) -> Plan {
        let sel = Selection {
            hosts: Some(parse_hosts(hosts).unwrap()),
            targets: targets.map(|t| t.split(',').map(String::from).collect()),
            sources: sources.map(|s| s.split(',').map(String::from).collect()),
            ..Selection::default()
        };
        plan(&Config::load(None).unwrap(), &sel, &recipe()).unwrap()
    }

    #[test]
    fn unversioned_tags_say_which_qemu_each_host_gets() {
        let p = plan_of("amd64,arm32v7", Some("arm"), None);
        let r = report(&p);
        let got: Vec<(Host, &str)> = r
            .unversioned
            .iter()
            .map(|h| (h.host, h.source.as_str()))
            .collect();
        assert_eq!(got, [(Host::Amd64, "d11.1"), (Host::Arm32v7, "d10.0")]);
        assert!(markdown(&r).starts_with("### Unversioned tags"));
    }

    #[test]
    fn markdown_table_per_source_with_checks_and_blanks() {
        let p = plan_of(
            "amd64,arm32v7,riscv64",
            Some("aarch64,arm"),
            Some("d10.0,d7.2"),
        );
        let md = markdown(&report(&p));
        let want = "\
### d10.0: qemu-user 1:10.0.13+ds-0+deb13u1

| target | amd64 | arm32v7 | riscv64 |
| --- | :---: | :---: | :---: |
| aarch64 | ✓ |   | ✓ |
| arm | ✓ | ✓ | ✓ |

### d7.2: qemu-user-static 1:7.2+dfsg-7+deb12u18+b3

| target | amd64 | arm32v7 | riscv64 |
| --- | :---: | :---: | :---: |
| aarch64 | ✓ | ✓ |   |
| arm | ✓ | ✓ |   |

- riscv64: d7.2 has no qemu-user-static package for riscv64
";
        assert_eq!(md, want);
    }

    #[test]
    fn json_lists_hosts_per_target() {
        let p = plan_of("amd64,i386", None, Some("d10.0"));
        let r = report(&p);
        assert_eq!(r.sources.len(), 1);
        let s = &r.sources[0];
        assert_eq!(s.hosts, [Host::Amd64, Host::I386]);
        assert_eq!(s.targets.len(), 33, "every emulator of the amd64 package");
        let row = |t: &str| {
            s.targets
                .iter()
                .find(|r| r.target == t)
                .unwrap()
                .hosts
                .clone()
        };
        assert_eq!(row("x86_64"), [Host::Amd64]);
        assert_eq!(row("arm"), [Host::Amd64, Host::I386]);
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["sources"][0]["packages"][1]["host"], "i386");
        assert_eq!(j["sources"][0]["targets"][0]["target"], "aarch64");
        assert_eq!(
            j["sources"][0]["targets"][0]["hosts"],
            serde_json::json!(["amd64"])
        );
    }
}
