//! Proof that every emulator runs: each `qemu-T-static` executes a real guest program of
//! its target (Debian's busybox-static for that architecture, pinned like every package)
//! and the output is checked; a target Debian builds nothing for is asked its `--version`.
//!
//! Emulators of the machine's own host (and i386 on amd64) run directly. An emulator
//! built for another host runs under this machine's emulator for that host, named on the
//! command line (`qemu-loongarch64 ./qemu-riscv64-static ./busybox …`): chained emulation
//! with no binfmt_misc registration at all, so the host is never touched.
//!
//! `qus test` takes the emulators out of the images in the daemon (`crate::cmd::test`);
//! `qus release` tests the very files it is about to push (`crate::cmd::release`).

mod run;

use crate::arch::Host;
use crate::config::Config;
use crate::packages::{File, SourceOptions};
use crate::plan;
use crate::ui::progress::Progress;
use anyhow::anyhow;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What every guest program prints, so that its output proves it ran.
pub(crate) const TOKEN: &str = "qus-test-ok";

/// One emulator to test.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    /// The host it is built for.
    pub host: Host,
    /// Its source (`d11.1`).
    pub source: String,
    /// Its QEMU package version.
    pub qemu_version: String,
    /// The QEMU target.
    pub target: String,
    /// The file.
    pub path: PathBuf,
    /// The images that hold it.
    pub images: Vec<String>,
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub(crate) enum Status {
    /// The guest program ran and printed what it should.
    Ran {
        /// What `uname -m` said inside.
        machine: String,
    },
    /// No guest program for this target: the emulator printed its version.
    VersionOnly {
        /// The first line of `--version`.
        version: String,
    },
    /// It did not run, or printed something else.
    Failed {
        /// What happened.
        reason: String,
    },
    /// It failed, as the config's `known_failures:` says it does: reported, not blocking.
    KnownFailure {
        /// What happened.
        reason: String,
        /// Why it is known (the config's words).
        known: String,
    },
}

impl Status {
    fn short(&self) -> &'static str {
        match self {
            Status::Ran { .. } => "ran",
            Status::VersionOnly { .. } => "version",
            Status::Failed { .. } => "FAILED",
            Status::KnownFailure { .. } => "known",
        }
    }
}

/// Marks the failures the config knows of (`known_failures:` of the row's source) as
/// such; returns a line for each known failure that ran after all, to be dropped from the
/// config.
fn acknowledge(rows: &mut [Row], config: &crate::config::Config) -> Vec<String> {
    let mut fixed = Vec::new();
    for r in rows.iter_mut() {
        let Some(k) = config
            .source(&r.source)
            .and_then(|s| s.known_failure(r.host, &r.target))
        else {
            continue;
        };
        match &r.status {
            Status::Failed { reason } => {
                r.status = Status::KnownFailure {
                    reason: reason.clone(),
                    known: k.reason.clone(),
                }
            }
            Status::Ran { .. } | Status::VersionOnly { .. } => fixed.push(format!(
                "qemu-{} of {} ({}) passed, but the config lists it under known_failures: remove it there",
                r.target, r.host, r.source
            )),
            Status::KnownFailure { .. } => {}
        }
    }
    fixed
}

/// One result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Host of the emulator.
    pub host: Host,
    /// Source.
    pub source: String,
    /// QEMU package version.
    pub qemu_version: String,
    /// Target.
    pub target: String,
    /// How it ran: `direct` or `under qemu-<T>` of this machine.
    pub how: String,
    /// The outcome.
    #[serde(flatten)]
    pub status: Status,
    /// The images that hold this emulator.
    pub images: Vec<String>,
}

/// Everything a run needs besides the emulators.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    /// The machine's host.
    pub machine: Host,
    /// This machine's emulators by target (`loongarch64` → its `qemu-loongarch64`).
    pub machine_emulators: BTreeMap<String, File>,
    /// Guest programs by Debian architecture.
    pub guests: BTreeMap<String, File>,
    /// Tests at once.
    pub jobs: usize,
}

/// The targets this machine needs emulators for, to run the emulators of `hosts`.
pub(crate) fn machine_targets(machine: Host, hosts: impl Iterator<Item = Host>) -> Vec<String> {
    let mut out: Vec<String> = hosts
        .filter(|h| !machine.runs(*h))
        .map(|h| h.target().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The guest architectures `subjects` need.
pub(crate) fn guest_arches(subjects: &[Subject]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = subjects
        .iter()
        .filter_map(|s| crate::targets::guest_arch(&s.target))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Runs every subject, `tools.jobs` at a time; rows in subject order.
/// Runs every subject, then marks the failures `config` knows of (warning about known
/// failures that passed).
pub(crate) async fn run_all(
    subjects: &[Subject],
    tools: &Tools,
    config: &crate::config::Config,
    progress: &crate::ui::progress::Progress,
) -> Vec<Row> {
    use futures::StreamExt;
    let mut rows: Vec<Row> = futures::stream::iter(subjects)
        .map(|s| run::one(s, tools))
        .buffered(tools.jobs.max(1))
        .collect()
        .await;
    for line in acknowledge(&mut rows, config) {
        progress.warn(line);
    }
    rows
}

/// The host × target table: one row per (host, source), one column per target.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut targets: Vec<&str> = rows.iter().map(|r| r.target.as_str()).collect();
    targets.sort_unstable();
    targets.dedup();
    let mut by_host: BTreeMap<(Host, &str, &str), BTreeMap<&str, &str>> = BTreeMap::new();
    for r in rows {
        by_host
            .entry((r.host, r.source.as_str(), r.qemu_version.as_str()))
            .or_default()
            .insert(r.target.as_str(), r.status.short());
    }
    let mut header = vec!["HOST", "QEMU"];
    header.extend(targets.iter());
    let body: Vec<Vec<String>> = by_host
        .iter()
        .map(|((h, source, version), cells)| {
            let mut row = vec![h.name().to_string(), format!("{source} {version}")];
            row.extend(
                targets
                    .iter()
                    .map(|t| cells.get(t).copied().unwrap_or("-").to_string()),
            );
            row
        })
        .collect();
    let mut out = crate::ui::table::render(&header, &body);
    let ran = rows
        .iter()
        .filter(|r| matches!(r.status, Status::Ran { .. }))
        .count();
    let version = rows
        .iter()
        .filter(|r| matches!(r.status, Status::VersionOnly { .. }))
        .count();
    let failed: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.status, Status::Failed { .. }))
        .collect();
    let known: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.status, Status::KnownFailure { .. }))
        .collect();
    out.push_str(&format!(
        "{} emulators: {ran} ran a guest program, {version} version only, {} failed, {} known to fail\n",
        rows.len(),
        failed.len(),
        known.len()
    ));
    for f in failed.iter().chain(&known) {
        match &f.status {
            Status::Failed { reason } => out.push_str(&format!(
                "FAILED: qemu-{} of {} ({}) in {}: {reason}\n",
                f.target,
                f.host,
                f.source,
                f.images.join(", ")
            )),
            Status::KnownFailure { reason, known } => out.push_str(&format!(
                "known: qemu-{} of {} ({}): {reason} ({known})\n",
                f.target, f.host, f.source
            )),
            Status::Ran { .. } | Status::VersionOnly { .. } => {}
        }
    }
    out
}

/// This machine's emulators for the foreign hosts of `subjects`, and the guest programs,
/// fetched and verified like every package.
pub(crate) async fn tools(
    config: &Config,
    src: &SourceOptions,
    machine: Host,
    subjects: &[Subject],
    jobs: usize,
    progress: &Progress,
) -> anyhow::Result<Tools> {
    let needed = crate::emutest::machine_targets(machine, subjects.iter().map(|s| s.host));
    let mut packages =
        plan::guest_packages(config, machine, &crate::emutest::guest_arches(subjects));
    if !needed.is_empty() {
        packages.push(
            plan::machine_package(config, machine, &needed).ok_or_else(|| {
                anyhow!(
                    "to run emulators built for other hosts, this machine ({machine}) needs \
                 qemu-{} from a source pinned for {machine}; the config has none",
                    needed.join(", qemu-")
                )
            })?,
        );
    }
    let refs: Vec<&plan::PackagePlan> = packages.iter().collect();
    let x = crate::packages::prepare(&refs, src, progress).await?;
    let machine_emulators: BTreeMap<String, File> = x
        .emulators
        .into_iter()
        .filter(|((_, h), _)| *h == machine)
        .flat_map(|(_, m)| m)
        .collect();
    Ok(Tools {
        machine,
        machine_emulators,
        guests: x.guests,
        jobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_hosts_need_the_machines_emulator_for_them() {
        let hosts = [
            Host::Amd64,
            Host::I386,
            Host::Loong64,
            Host::Riscv64,
            Host::Loong64,
        ];
        assert_eq!(
            machine_targets(Host::Amd64, hosts.into_iter()),
            ["loongarch64", "riscv64"]
        );
        assert!(machine_targets(Host::Arm64v8, [Host::Arm64v8].into_iter()).is_empty());
    }

    #[test]
    fn table_marks_each_target() {
        let row = |target: &str, status: Status| Row {
            host: Host::Loong64,
            source: "d11.1".into(),
            qemu_version: "1:11.1.2+ds-3".into(),
            target: target.into(),
            how: "under qemu-loongarch64".into(),
            status,
            images: vec!["loong64-d11.1".into()],
        };
        let t = table(&[
            row(
                "aarch64",
                Status::Ran {
                    machine: "aarch64".into(),
                },
            ),
            row(
                "alpha",
                Status::VersionOnly {
                    version: "qemu-alpha version 11.1.2".into(),
                },
            ),
            row(
                "arm",
                Status::Failed {
                    reason: "exit 139".into(),
                },
            ),
        ]);
        assert!(
            t.contains("loong64  d11.1 1:11.1.2+ds-3  ran      version  FAILED"),
            "{t}"
        );
        assert!(t.contains("3 emulators: 1 ran a guest program, 1 version only, 1 failed"));
        assert!(t.contains("FAILED: qemu-arm of loong64 (d11.1) in loong64-d11.1: exit 139"));
    }
}
