//! The maintainers' loop: `qus lock`, `qus check`, `qus report`.
//!
//! After a QEMU release a maintainer runs `qus check` (or a scheduled CI job does: exit 1
//! means a newer package is out), `qus lock` to pin the newest packages into the lock file,
//! reviews the diff, and rebuilds. `qus report` shows which emulator each pinned package
//! provides for which host. The commands are thin: what to look up comes from the config
//! ([`wanted`]), the mirror lookups (indexes, and whether the mirror serves the files they
//! list) live in [`index`], and the decisions and tables are pure functions in [`choose`]
//! (which file to pin), [`lock`], [`check`] and [`report`].

pub mod check;
pub mod choose;
pub mod index;
pub mod lock;
pub mod report;

use crate::arch::Host;
use crate::config::lockfile::{self, LockFile, BUSYBOX};
use crate::config::{Config, Distro, PackageFile};
use crate::plan::Plan;
use crate::ui::progress::Progress;
use anyhow::{anyhow, Context as _};
use qus_source::debian_index::Expiry;
use std::path::Path;
use std::process::ExitCode;

/// One package to look up in a mirror: the newest served `package` for `host` of the
/// host's own suite, else of the suites it may fall back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// `busybox` or a source name.
    pub role: String,
    /// The host (its Debian arch names the index).
    pub host: Host,
    /// Debian suites: the host's own first, then its fallbacks in order (never empty).
    pub suites: Vec<String>,
    /// Debian package name.
    pub package: String,
    /// The keyring the suite's Release must be signed by (`None`: Debian's).
    pub keyring: Option<std::path::PathBuf>,
}

impl Wanted {
    /// The host's own suite.
    pub fn suite(&self) -> &str {
        &self.suites[0]
    }
}

/// Pure: what `qus lock` looks up — busybox and every source, for every host of the
/// config, in config order.
pub fn wanted(config: &Config) -> Vec<Wanted> {
    let mut out = Vec::new();
    for &host in &config.hosts {
        out.push(Wanted {
            role: BUSYBOX.into(),
            host,
            suites: config.busybox.suites_for(host),
            package: config.busybox.package.clone(),
            keyring: config.busybox.keyring.clone(),
        });
    }
    // Fedora sources are pinned by hand: the indexes read here are Debian's.
    for s in config.sources.iter().filter(|s| s.distro == Distro::Debian) {
        for &host in &config.hosts {
            out.push(Wanted {
                role: s.name.clone(),
                host,
                suites: s.suites_for(host),
                package: s.package.clone(),
                keyring: s.keyring.clone(),
            });
        }
    }
    out
}

/// Pure: every pin of the config (lock or inline) with what to look up for it, in config
/// order — what `qus check` compares.
pub fn pins(config: &Config) -> Vec<(Wanted, PackageFile)> {
    let bb = &config.busybox;
    let busybox = bb.files.iter().map(|(h, f)| {
        (
            Wanted {
                role: BUSYBOX.into(),
                host: *h,
                suites: bb.suites_for(*h),
                package: bb.package.clone(),
                keyring: bb.keyring.clone(),
            },
            f.clone(),
        )
    });
    let sources = config
        .sources
        .iter()
        .filter(|s| s.distro == Distro::Debian)
        .flat_map(|s| {
            s.files.iter().map(move |(h, f)| {
                (
                    Wanted {
                        role: s.name.clone(),
                        host: *h,
                        suites: s.suites_for(*h),
                        package: s.package.clone(),
                        keyring: s.keyring.clone(),
                    },
                    f.clone(),
                )
            })
        });
    busybox.chain(sources).collect()
}

/// The pin `config` has for (role, host), if any.
pub fn current_pin<'a>(config: &'a Config, role: &str, host: Host) -> Option<&'a PackageFile> {
    if role == BUSYBOX {
        config.busybox.files.get(&host)
    } else {
        config.source(role).and_then(|s| s.files.get(&host))
    }
}

/// The mirror `qus lock` and `qus check` read, or the error that says how to name one.
fn need_mirror(mirror: Option<String>) -> anyhow::Result<String> {
    mirror.ok_or_else(|| {
        anyhow!(
            "no Debian mirror configured: pass --mirror URL, set QUS_MIRROR, or add a Debian \
             archive to this machine's apt sources (the mirror root is the folder that holds \
             dists/ and pool/)"
        )
    })
}

/// `qus lock`: pin the newest served packages of the configured suites into the lock file.
pub(crate) async fn lock_cmd(
    config: Option<&Path>,
    mirror: Option<String>,
    expiry: Expiry,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let input = Config::load_for_lock(config)?;
    if let Some(why) = &input.ignored_lock {
        progress.warn(format!("ignoring the current lock, it is rewritten: {why}"));
    }
    let lock_path = &input.lock_path;
    if config.is_none() && !Path::new(crate::config::DEFAULT_CONFIG_NAME).is_file() {
        return Err(anyhow!(
            "the built-in config's lock goes to {} in a qus checkout, and there is no {} \
             here: run `qus lock` in the checkout, or pass --config FILE",
            lock_path.display(),
            crate::config::DEFAULT_CONFIG_NAME
        ));
    }
    let wanted = wanted(&input.config);
    let mirror = need_mirror(mirror)?;
    let looked = index::lookup(&mirror, &wanted, expiry, progress).await?;
    let choices = looked.choices(&wanted);
    let mut new = lock::lock_file(&wanted, &choices)
        .map_err(|e| anyhow!("{e}; nothing was written to {}", lock_path.display()))?;
    new.suites = looked.suites;
    // The new lock must make the config whole before it replaces the old one.
    Config::load_with_lock(config, &new, lock_path).with_context(|| {
        format!(
            "the packages {mirror} offers leave the config incomplete; nothing was written to {}",
            lock_path.display()
        )
    })?;
    // What is written must read back: a mirror's index is input like any other.
    // The header names the config by file name only: the lock is committed, and an
    // absolute path would be one maintainer's checkout.
    let config_name = match config {
        Some(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| input.config.origin.clone()),
        None => crate::config::DEFAULT_CONFIG_NAME.to_string(),
    };
    let rendered = new.render(&config_name);
    LockFile::parse(&rendered, &lock_path.display().to_string())
        .context("the mirror's index gave a value qus cannot pin")?;
    let changes = lock::changes(&input.config, &new, &wanted, &choices);
    for w in wanted
        .iter()
        .filter(|w| new.is_unavailable(&w.role, w.host))
    {
        progress.step(format!(
            "note: {} {} no {} for {} ({}): {} {} is skipped",
            w.suites.join(", "),
            if w.suites.len() == 1 { "has" } else { "have" },
            w.package,
            w.host,
            w.host.debian(),
            w.role,
            w.host
        ));
    }
    let old_text = std::fs::read_to_string(lock_path).ok();
    let written = old_text.as_deref() != Some(rendered.as_str());
    if written {
        new.write(lock_path, &config_name)?;
        progress.step(format!(
            "wrote {} ({} pins, {} changed)",
            lock_path.display(),
            new.packages.len(),
            changes
                .iter()
                .filter(|c| c.status != lock::Status::Unchanged)
                .count()
        ));
    } else {
        progress.step(format!("{} is up to date", lock_path.display()));
    }
    if json {
        let doc = lock::json(&lock_path.display().to_string(), written, &changes, &new);
        crate::ui::output::out_json(&doc)?;
    } else {
        crate::ui::output::out(&lock::table(&changes))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `qus check`: exit 0 when every pin is the newest file the mirror serves, 1 when one is
/// not (or is not served itself).
pub(crate) async fn check_cmd(
    config: &Config,
    mirror: Option<String>,
    expiry: Expiry,
    json: bool,
    progress: &Progress,
) -> anyhow::Result<ExitCode> {
    let pins = pins(config);
    let wanted: Vec<Wanted> = pins.iter().map(|(w, _)| w.clone()).collect();
    let mirror = need_mirror(mirror)?;
    let mut looked = index::lookup(&mirror, &wanted, expiry, progress).await?;
    // Whether each pinned file itself is served (most were asked about already).
    let asks: Vec<index::Ask> = pins
        .iter()
        .map(|(_, f)| index::Ask {
            file: &f.file,
            sha256: &f.sha256,
            size: f.size,
        })
        .collect();
    index::probe_files(&mirror, &asks, &mut looked.answers).await?;
    let rows = check::compare(&pins, &looked.choices(&wanted), &looked.answers)?;
    let outdated = rows.iter().filter(|r| r.status.needs_lock()).count();
    let unserved = rows
        .iter()
        .filter(|r| r.status == check::Status::NewerNotServed)
        .count();
    if json {
        crate::ui::output::out_json(&check::json(&rows))?;
    } else {
        crate::ui::output::out(&check::table(&rows))?;
        crate::ui::output::out(&check::newer_series_lines(&check::newer_series(&rows)))?;
    }
    if outdated == 0 {
        progress.step(format!(
            "all {} pins are the newest {mirror} serves{}",
            rows.len(),
            match unserved {
                0 => String::new(),
                n => format!(" ({n} with a newer file listed but not served)"),
            }
        ));
        Ok(ExitCode::SUCCESS)
    } else {
        progress.step(format!(
            "{outdated} of {} pins are out of date or not served: run `qus lock`{}",
            rows.len(),
            config
                .lock
                .as_ref()
                .map(|l| format!(" (updates {l})"))
                .unwrap_or_else(|| format!(
                    " (writes {})",
                    lockfile::path_for(Some(Path::new(&config.origin))).display()
                ))
        ));
        Ok(ExitCode::from(check::OUTDATED))
    }
}

/// `qus report`: which emulator each planned package provides for which host.
pub(crate) fn report_cmd(plan: &Plan, json: bool) -> anyhow::Result<ExitCode> {
    let r = report::report(plan);
    if json {
        crate::ui::output::out_json(&r)?;
    } else {
        crate::ui::output::out(&report::markdown(&r))?;
    }
    Ok(ExitCode::SUCCESS)
}
