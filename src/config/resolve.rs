//! Pins from two places made one: a section's inline `files:` and the lock file. A lock entry
//! replaces the inline entry of the same (source or busybox, host), keeping only its
//! `targets` override; every host must end up pinned (except for `qus lock` itself).

use super::raw::{RawBusybox, RawConfig, RawGuests, RawPackageFile, RawSource};
use super::{Busybox, Config, ConfigError, Distro, Guest, PackageFile, Source};
use crate::arch::{Host, UnknownArch};
use crate::config::lockfile::{LockFile, LockedPackage, BUSYBOX};
use crate::config::validate::{
    validate_pool_path, validate_repo, validate_sha256, validate_source_name, validate_suite,
    validate_targets,
};
use qus_source::debian_index::compare as compare_versions;
use std::collections::BTreeMap;

/// Whether every host must be pinned (everything but `qus lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pins {
    Required,
    Optional,
}

fn invalid(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: origin.to_string(),
        message: message.into(),
    }
}

/// One host's entry while pins are being merged: the pin (inline or locked), if any, and
/// the config's `targets` override.
#[derive(Debug, Clone, Default)]
struct Slot {
    pin: Option<Pin>,
    targets: Option<Vec<String>>,
    suite: Option<String>,
    more: Vec<(Pin, Vec<String>)>,
}

#[derive(Debug, Clone)]
struct Pin {
    file: String,
    size: Option<u64>,
    sha256: String,
    version: String,
}

impl From<&LockedPackage> for Pin {
    fn from(l: &LockedPackage) -> Pin {
        Pin {
            file: l.file.clone(),
            size: Some(l.size),
            sha256: l.sha256.clone(),
            version: l.version.clone(),
        }
    }
}

/// What one role (busybox or a source) looks like while resolving.
struct Role<'a> {
    name: &'a str,
    distro: Distro,
    ctx: String,
    suite: &'a str,
    fallbacks: &'a [String],
    package: &'a str,
    slots: BTreeMap<Host, Slot>,
}

impl Role<'_> {
    /// The suite `host`'s package comes from: its entry's, else the section's.
    fn suite_for(&self, host: Host) -> &str {
        self.slots
            .get(&host)
            .and_then(|s| s.suite.as_deref())
            .unwrap_or(self.suite)
    }

    /// Whether `host`'s package may come from `suite`: its own suite or a fallback.
    fn allows(&self, host: Host, suite: &str) -> bool {
        self.suite_for(host) == suite || self.fallbacks.iter().any(|f| f == suite)
    }

    /// The hosts whose suite is not the section's.
    fn suites(&self) -> BTreeMap<Host, String> {
        self.slots
            .iter()
            .filter_map(|(h, s)| Some((*h, s.suite.clone()?)))
            .filter(|(_, s)| s != self.suite)
            .collect()
    }
}

pub(super) fn resolve(
    raw: RawConfig,
    origin: &str,
    lock: Option<&LockFile>,
    lock_name: &str,
    mode: Pins,
) -> Result<Config, ConfigError> {
    validate_repo(&raw.repo).map_err(|e| invalid(origin, format!("repo: {e}")))?;
    let hosts = host_list(&raw.hosts, origin)?;
    let mut roles = vec![busybox_role(&raw.busybox, origin)?];
    for (i, s) in raw.sources.iter().enumerate() {
        roles.push(source_role(s, &raw.sources[..i], origin)?);
    }
    default_valid(&raw, origin)?;
    if let Some(lock) = lock {
        merge_lock(&mut roles, lock, lock_name, origin)?;
    }
    if mode == Pins::Required {
        for role in &roles {
            require_pins(role, &hosts, lock, lock_name, origin)?;
        }
    }
    for s in &raw.sources {
        known_failures_valid(s, origin)?;
    }
    let suites: Vec<BTreeMap<Host, String>> = roles.iter().map(Role::suites).collect();
    let files: Vec<BTreeMap<Host, PackageFile>> = roles.into_iter().map(finish).collect();
    let mut pins = files.into_iter().zip(suites);
    let keyring = |k: Option<String>| relative_to(origin, k);
    let (bb_files, bb_suites) = pins.next().unwrap_or_default();
    let busybox = Busybox {
        package: raw.busybox.package,
        suite: raw.busybox.suite,
        suites: bb_suites,
        fallback_suites: raw.busybox.fallback_suites,
        keyring: keyring(raw.busybox.keyring),
        version: newest_version(&bb_files, raw.busybox.version),
        files: bb_files,
    };
    let sources = raw
        .sources
        .into_iter()
        .zip(pins)
        .map(|(s, (files, suites))| finish_source(s, files, suites, &keyring))
        .collect();
    let guests = match &raw.guests {
        None => BTreeMap::new(),
        Some(g) => guests(g, origin)?,
    };
    Ok(Config {
        origin: origin.to_string(),
        lock: lock.map(|_| lock_name.to_string()),
        repo: raw.repo,
        default: raw.default,
        hosts,
        busybox,
        sources,
        guests,
        digests: None,
    })
}

/// `hosts:` as hosts, each once, at least one.
fn host_list(names: &[String], origin: &str) -> Result<Vec<Host>, ConfigError> {
    let mut hosts = Vec::new();
    for name in names {
        let h: Host = name
            .parse()
            .map_err(|e: UnknownArch| invalid(origin, format!("hosts: {e}")))?;
        if hosts.contains(&h) {
            return Err(invalid(
                origin,
                format!("hosts: '{name}' names {h}, which is listed twice"),
            ));
        }
        hosts.push(h);
    }
    if hosts.is_empty() {
        return Err(invalid(
            origin,
            "hosts: the list is empty; name at least one host",
        ));
    }
    Ok(hosts)
}

/// The `busybox:` section as a role, its suites checked; it has no targets.
fn busybox_role<'a>(bb: &'a RawBusybox, origin: &str) -> Result<Role<'a>, ConfigError> {
    let slots = inline_slots(&bb.files, bb.version.as_deref(), origin, "busybox")?;
    suites_valid("busybox", &bb.suite, &bb.fallback_suites, &slots, origin)?;
    if slots
        .values()
        .any(|s| s.targets.is_some() || !s.more.is_empty())
    {
        return Err(invalid(
            origin,
            "busybox.files: 'targets' belongs to QEMU sources only",
        ));
    }
    Ok(Role {
        name: BUSYBOX,
        distro: Distro::Debian,
        ctx: "busybox".into(),
        suite: &bb.suite,
        fallbacks: &bb.fallback_suites,
        package: &bb.package,
        slots,
    })
}

/// One `sources:` entry as a role: its name (unique among `earlier`, prefixed by its
/// distro), targets, files and suites checked.
fn source_role<'a>(
    s: &'a RawSource,
    earlier: &[RawSource],
    origin: &str,
) -> Result<Role<'a>, ConfigError> {
    let ctx = format!("sources[{}]", s.name);
    let err = |m: String| invalid(origin, m);
    validate_source_name(&s.name).map_err(|m| err(format!("{ctx}: {m}")))?;
    if earlier.iter().any(|o| o.name == s.name) {
        return Err(err(format!("{ctx}: the name is used twice")));
    }
    validate_targets(&s.targets).map_err(|m| err(format!("{ctx}.targets: {m}")))?;
    let slots = inline_slots(&s.files, s.version.as_deref(), origin, &ctx)?;
    for (h, slot) in &slots {
        for t in slot.targets.iter().chain(slot.more.iter().map(|(_, t)| t)) {
            validate_targets(t).map_err(|m| err(format!("{ctx}.files.{h}.targets: {m}")))?;
        }
    }
    let prefix = match s.distro {
        Distro::Debian => 'd',
        Distro::Fedora => 'f',
    };
    if !s.name.starts_with(prefix) {
        return Err(err(format!(
            "{ctx}: a {:?} source's name starts with '{prefix}' (its tags are {prefix}V)",
            s.distro
        )));
    }
    if s.files.values().any(|f| f.packages.is_some()) && s.distro == Distro::Debian {
        return Err(err(format!("{ctx}: `packages:` lists are for Fedora's per-target rpms; a Debian host has one package")));
    }
    if s.distro == Distro::Fedora && !s.fallback_suites.is_empty() {
        return Err(err(format!("{ctx}.fallback_suites: a Fedora source is pinned by hand; `qus lock` reads Debian suites only, so remove it")));
    }
    if s.distro == Distro::Debian {
        suites_valid(&ctx, &s.suite, &s.fallback_suites, &slots, origin)?;
    }
    Ok(Role {
        name: &s.name,
        distro: s.distro,
        ctx,
        suite: &s.suite,
        fallbacks: &s.fallback_suites,
        package: &s.package,
        slots,
    })
}

/// At least one source, and `default:` names one of them.
fn default_valid(raw: &RawConfig, origin: &str) -> Result<(), ConfigError> {
    if raw.sources.is_empty() {
        return Err(invalid(origin, "sources: the list is empty"));
    }
    if !raw.sources.iter().any(|s| s.name == raw.default) {
        let names: Vec<&str> = raw.sources.iter().map(|s| s.name.as_str()).collect();
        return Err(invalid(
            origin,
            format!(
                "default: '{}' is not one of the sources ({})",
                raw.default,
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A keyring named relative to the config is found beside it, wherever qus runs.
fn relative_to(origin: &str, path: Option<String>) -> Option<std::path::PathBuf> {
    path.map(|k| {
        let p = std::path::PathBuf::from(k);
        match std::path::Path::new(origin).parent() {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        }
    })
}

/// A source as the rest of qus sees it: its pins resolved, its keyring found.
fn finish_source(
    s: RawSource,
    files: BTreeMap<Host, PackageFile>,
    suites: BTreeMap<Host, String>,
    keyring: &dyn Fn(Option<String>) -> Option<std::path::PathBuf>,
) -> Source {
    let known_failures = s
        .known_failures
        .into_iter()
        .map(|k| super::KnownFailure {
            hosts: k.hosts,
            targets: k.targets,
            reason: k.reason,
        })
        .collect();
    Source {
        name: s.name,
        distro: s.distro,
        suite: s.suite,
        suites,
        fallback_suites: s.fallback_suites,
        keyring: keyring(s.keyring),
        package: s.package,
        version: newest_version(&files, s.version),
        targets: s.targets,
        files,
        known_failures,
    }
}

/// A section's `suite`, its hosts' own `suite`s and its `fallback_suites` are suite names;
/// a fallback is listed once and is not the section's own suite.
fn suites_valid(
    ctx: &str,
    suite: &str,
    fallbacks: &[String],
    slots: &BTreeMap<Host, Slot>,
    origin: &str,
) -> Result<(), ConfigError> {
    validate_suite(suite).map_err(|m| invalid(origin, format!("{ctx}.suite: {m}")))?;
    for (h, slot) in slots {
        if let Some(own) = &slot.suite {
            validate_suite(own)
                .map_err(|m| invalid(origin, format!("{ctx}.files.{h}.suite: {m}")))?;
        }
    }
    for (i, f) in fallbacks.iter().enumerate() {
        let at = format!("{ctx}.fallback_suites");
        validate_suite(f).map_err(|m| invalid(origin, format!("{at}: {m}")))?;
        if f == suite {
            return Err(invalid(
                origin,
                format!("{at}: '{f}' is the section's own `suite`; list only the suites to fall back to"),
            ));
        }
        if fallbacks[..i].contains(f) {
            return Err(invalid(origin, format!("{at}: '{f}' is listed twice")));
        }
    }
    Ok(())
}

/// Pure: the `guests:` pins, each complete (they are inline only: `qus lock` does not
/// manage them).
fn guests(raw: &RawGuests, origin: &str) -> Result<BTreeMap<String, Guest>, ConfigError> {
    let mut out = BTreeMap::new();
    for (arch, f) in &raw.files {
        let at = format!("guests.files.{arch}");
        if qus_source::elf::for_debian_arch(arch).is_none() {
            return Err(invalid(
                origin,
                format!("{at}: '{arch}' is not a Debian architecture qus can check binaries of"),
            ));
        }
        let pin = entry_pin(f, None, origin, &at)?.ok_or_else(|| {
            invalid(
                origin,
                format!("{at}: give its `file`, `sha256` and `version`"),
            )
        })?;
        let suite = f
            .suite
            .clone()
            .ok_or_else(|| invalid(origin, format!("{at}: give its `suite`")))?;
        if f.targets.is_some() || f.packages.is_some() {
            return Err(invalid(
                origin,
                format!("{at}: a guest is one file: no `targets` or `packages`"),
            ));
        }
        out.insert(
            arch.clone(),
            Guest {
                package: raw.package.clone(),
                suite,
                file: PackageFile {
                    file: pin.file,
                    size: pin.size,
                    sha256: pin.sha256,
                    version: pin.version,
                    targets: None,
                    more: Vec::new(),
                },
            },
        );
    }
    Ok(out)
}

/// Pure: the inline `files:` of one section, checked, as slots by host.
fn inline_slots(
    raw: &BTreeMap<String, RawPackageFile>,
    version: Option<&str>,
    origin: &str,
    ctx: &str,
) -> Result<BTreeMap<Host, Slot>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, f) in raw {
        let at = format!("{ctx}.files.{name}");
        let h: Host = name
            .parse()
            .map_err(|e: UnknownArch| invalid(origin, format!("{ctx}.files: {e}")))?;
        let slot = match &f.packages {
            None => Slot {
                pin: entry_pin(f, version, origin, &at)?,
                targets: f.targets.clone(),
                suite: f.suite.clone(),
                more: Vec::new(),
            },
            Some(list) => {
                if f.file.is_some() || f.sha256.is_some() || f.targets.is_some() {
                    return Err(invalid(
                        origin,
                        format!("{at}: give either `packages:` or one `file`, not both"),
                    ));
                }
                let mut parts = Vec::new();
                for (i, p) in list.iter().enumerate() {
                    let at = format!("{at}.packages[{i}]");
                    if p.packages.is_some() {
                        return Err(invalid(origin, format!("{at}: `packages` do not nest")));
                    }
                    let pin = entry_pin(p, version, origin, &at)?.ok_or_else(|| {
                        invalid(origin, format!("{at}: give its `file` and `sha256`"))
                    })?;
                    let targets = p.targets.clone().ok_or_else(|| {
                        invalid(
                            origin,
                            format!("{at}: say which `targets` this package ships"),
                        )
                    })?;
                    parts.push((pin, targets));
                }
                if parts.is_empty() {
                    return Err(invalid(origin, format!("{at}.packages: the list is empty")));
                }
                let (pin, targets) = parts.remove(0);
                Slot {
                    pin: Some(pin),
                    targets: Some(targets),
                    suite: f.suite.clone(),
                    more: parts,
                }
            }
        };
        if out.insert(h, slot).is_some() {
            return Err(invalid(
                origin,
                format!("{ctx}.files: '{name}' names {h}, which is pinned twice"),
            ));
        }
    }
    Ok(out)
}

/// Pure: the pin of one inline entry (`file` + `sha256`), `None` when it only carries
/// `targets`.
fn entry_pin(
    f: &RawPackageFile,
    version: Option<&str>,
    origin: &str,
    at: &str,
) -> Result<Option<Pin>, ConfigError> {
    match (&f.file, &f.sha256) {
        (Some(file), Some(sha256)) => {
            validate_sha256(sha256).map_err(|m| invalid(origin, format!("{at}.sha256: {m}")))?;
            validate_pool_path(file).map_err(|m| invalid(origin, format!("{at}.file: {m}")))?;
            let version = f.version.as_deref().or(version).ok_or_else(|| {
                invalid(
                    origin,
                    format!("{at}: no version: give the section (or the file) a `version`"),
                )
            })?;
            Ok(Some(Pin {
                file: file.clone(),
                size: f.size,
                sha256: sha256.clone(),
                version: version.to_string(),
            }))
        }
        (None, None) if f.size.is_none() && f.version.is_none() => Ok(None),
        _ => Err(invalid(
            origin,
            format!(
                "{at}: give `file` and `sha256` together, or neither (and pin it with `qus lock`)"
            ),
        )),
    }
}

/// Lays the lock's pins over the inline ones. A lock entry must match its section's suite
/// and package: if the config moved on, the lock is out of date.
fn merge_lock(
    roles: &mut [Role<'_>],
    lock: &LockFile,
    lock_name: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    let stale = |m: String| {
        invalid(
            lock_name,
            format!("{m}: the lock is older than {origin}; run `qus lock` to update it"),
        )
    };
    for l in &lock.packages {
        let role = roles.iter_mut().find(|r| r.name == l.role).ok_or_else(|| {
            stale(format!(
                "{} {} is locked, but {origin} has no such source",
                l.role, l.host
            ))
        })?;
        if !role.allows(l.host, &l.suite) || l.package != role.package {
            let from = std::iter::once(role.suite_for(l.host))
                .chain(role.fallbacks.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(stale(format!(
                "{} {} is locked as {} from {}, but {} says {} from {from}",
                l.role, l.host, l.package, l.suite, role.ctx, role.package
            )));
        }
        role.slots.entry(l.host).or_default().pin = Some(Pin::from(l));
    }
    Ok(())
}

/// Every host of `hosts` needs a busybox pin; every source needs a pin for every host unless
/// the lock records that its suite has none. Without a lock, an inline config may leave
/// hosts out of a source, but not pin a source at all.
fn require_pins(
    role: &Role<'_>,
    hosts: &[Host],
    lock: Option<&LockFile>,
    lock_name: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    let pinned = |h: &Host| role.slots.get(h).is_some_and(|s| s.pin.is_some());
    let unavailable = |h: Host| lock.is_some_and(|l| l.is_unavailable(role.name, h));
    let missing: Vec<Host> = hosts
        .iter()
        .filter(|h| !pinned(h) && !unavailable(**h))
        .copied()
        .collect();
    let run_lock = |hs: &[Host]| {
        invalid(
            origin,
            format!(
                "{}: no {} is pinned for host{} {} (neither inline nor in {lock_name}); run \
                 `qus lock` to pin the newest from {}",
                role.ctx,
                role.package,
                if hs.len() == 1 { "" } else { "s" },
                hs.iter().map(|h| h.name()).collect::<Vec<_>>().join(", "),
                role.suite_for(hs[0])
            ),
        )
    };
    if role.name == BUSYBOX {
        if let Some(h) = hosts.iter().find(|h| !pinned(h) && unavailable(**h)) {
            return Err(invalid(
                origin,
                format!(
                    "busybox: {} has no {} for host {h} (so says {lock_name}); remove {h} from \
                     'hosts' or take busybox from another suite (`suite:` in its files entry)",
                    role.suite_for(*h),
                    role.package
                ),
            ));
        }
        if !missing.is_empty() {
            return Err(run_lock(&missing));
        }
        return Ok(());
    }
    if missing.is_empty() {
        return Ok(());
    }
    let any_pinned = role.slots.values().any(|s| s.pin.is_some());
    // `qus lock` pins Debian sources only: a Fedora source is complete as written.
    let locked = lock.is_some() && role.distro == Distro::Debian;
    if locked || !any_pinned {
        return Err(run_lock(&missing));
    }
    Ok(())
}

/// Pure: the resolved files of a role; slots without a pin (a `targets` override for a host
/// the suite lacks) are dropped.
fn finish(role: Role<'_>) -> BTreeMap<Host, PackageFile> {
    role.slots
        .into_iter()
        .filter_map(|(h, s)| {
            let p = s.pin?;
            let file = |p: Pin, targets: Option<Vec<String>>, more| PackageFile {
                file: p.file,
                size: p.size,
                sha256: p.sha256,
                version: p.version,
                targets,
                more,
            };
            let more = s
                .more
                .into_iter()
                .map(|(p, t)| file(p, Some(t), Vec::new()))
                .collect();
            Some((h, file(p, s.targets, more)))
        })
        .collect()
}

/// The newest version among the files (Debian ordering), or the section's own when nothing
/// is pinned.
fn newest_version(files: &BTreeMap<Host, PackageFile>, fallback: Option<String>) -> String {
    files
        .values()
        .map(|f| f.version.as_str())
        .max_by(|a, b| compare_versions(a, b))
        .map(str::to_string)
        .or(fallback)
        .unwrap_or_default()
}

/// Every `known_failures:` entry names emulators of its source and says why.
fn known_failures_valid(s: &RawSource, origin: &str) -> Result<(), ConfigError> {
    for (i, k) in s.known_failures.iter().enumerate() {
        let ctx = format!("source '{}': known_failures[{i}]", s.name);
        if k.reason.trim().is_empty() {
            return Err(invalid(
                origin,
                format!("{ctx}: `reason:` is empty; say why the emulator fails and why its images are published anyway"),
            ));
        }
        if k.targets.is_empty() {
            return Err(invalid(origin, format!("{ctx}: `targets:` is empty")));
        }
        if let Some(t) = k.targets.iter().find(|t| !s.targets.contains(t)) {
            return Err(invalid(
                origin,
                format!("{ctx}: '{t}' is not one of the source's targets"),
            ));
        }
    }
    Ok(())
}
