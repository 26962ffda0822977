//! The matrix configuration (`images/qus.yml`) and its lock file (`qus.lock` beside it).
//!
//! Two levels, as ripgrep does with its flags: [`RawConfig`] mirrors the YAML file and only
//! checks syntax and types (unknown keys are errors, so a typo never silently drops a pin);
//! [`Config`] is the resolved, validated value every later stage uses: host names normalised,
//! duplicates rejected, every host of every source pinned to a file and a sha256.
//!
//! Pins come from two places: inline `files:` entries, and the lock file `qus lock` writes
//! ([`crate::lockfile`]). A lock entry replaces the inline entry of the same (source or
//! busybox, host), keeping only its `targets` override: the config says which emulators a
//! host's package ships, the lock says which file it is. A host of `hosts` pinned nowhere is
//! an error that says to run `qus lock`.

use crate::arch::{Host, UnknownArch};
use crate::lockfile::{self, LockError, LockFile, LockedPackage, BUSYBOX};
use crate::reference;
use qus_source::debian_index::compare as compare_versions;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default configuration, shipped in the binary so `qus plan` works anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../images/qus.yml");
/// Where the default configuration lives in the repository (for messages).
pub const DEFAULT_CONFIG_NAME: &str = "images/qus.yml";

/// A configuration that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// YAML syntax, a wrong type or an unknown key.
    #[error("{path}{}: {message}", location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Syntax {
        /// The file.
        path: String,
        /// Line and column (1-based), when the parser knows them.
        location: Option<(usize, usize)>,
        /// The parser's message.
        message: String,
    },
    /// The YAML is well formed but says something impossible.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The lock file beside the config is unreadable or malformed.
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// A resolved pinned package file: where it is in a Debian mirror's pool and what it must
/// hash to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageFile {
    /// Path below the mirror root: `pool/main/q/qemu/qemu-user_…_arm64.deb`.
    pub file: String,
    /// Expected size in bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Expected sha256, lowercase hex.
    pub sha256: String,
    /// The Debian version of this file (hosts may differ: binNMUs are per arch).
    pub version: String,
    /// Emulators this host's package ships, when different from the source's list (Debian
    /// 10.0 builds only 32-bit guests on 32-bit hosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<String>>,
    /// Further packages for the same host, each with its own `targets` (Fedora splits its
    /// emulators into `qemu-user-static-<group>` rpms).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<PackageFile>,
}

impl PackageFile {
    /// This file and the `more` ones.
    pub fn all(&self) -> impl Iterator<Item = &PackageFile> {
        std::iter::once(self).chain(self.more.iter())
    }
}

/// An inline `files:` entry as written: a pin (`file` + `sha256`), or, when the pin comes
/// from the lock, only the host's `targets`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackageFile {
    /// Path below the mirror root.
    #[serde(default)]
    pub file: Option<String>,
    /// Expected size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Expected sha256, lowercase hex.
    #[serde(default)]
    pub sha256: Option<String>,
    /// This file's version, when it is not the section's `version`.
    #[serde(default)]
    pub version: Option<String>,
    /// Emulators this host's package ships, when different from the source's list.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// Several packages for this host instead of one (Fedora), each with `file`, `sha256`
    /// and the `targets` it ships.
    #[serde(default)]
    pub packages: Option<Vec<RawPackageFile>>,
}

/// `busybox:` — the shell that runs the registration entrypoint inside every image.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBusybox {
    /// Debian package name (`busybox-static`).
    pub package: String,
    /// Debian suite it comes from (for `qus lock`/`qus check`).
    pub suite: String,
    /// Version of the inline pins (the lock carries its own).
    #[serde(default)]
    pub version: Option<String>,
    /// Inline pins by host (none when a lock pins them).
    #[serde(default)]
    pub files: BTreeMap<String, RawPackageFile>,
}

/// The distribution a QEMU source comes from; decides the tag prefix (`d`, `f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    /// Debian `.deb` packages, from a Debian mirror's pool; tags `dV`.
    Debian,
    /// Fedora `qemu-user-static-<group>` rpms, from a Fedora mirror; tags `fV`. Pinned by
    /// hand: `qus lock`/`qus check` read Debian indexes only.
    Fedora,
}

/// One entry of `sources:` — a pinned QEMU version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The version part of tags: `d10.0` gives `amd64-d10.0-aarch64`.
    pub name: String,
    /// Where the packages come from.
    pub distro: Distro,
    /// Debian suite the pins are taken from (for `qus lock`/`qus check`); the release for
    /// Fedora (`41`).
    pub suite: String,
    /// Package name (`qemu-user`, `qemu-user-static`).
    pub package: String,
    /// Version of the inline pins (`1:10.0.13+ds-0+deb13u1`); the lock carries its own.
    #[serde(default)]
    pub version: Option<String>,
    /// Emulators (QEMU target names) the packages ship.
    pub targets: Vec<String>,
    /// Inline pins (and per-host `targets`) by host.
    #[serde(default)]
    pub files: BTreeMap<String, RawPackageFile>,
}

/// The YAML file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Image repository: a local name (`qus`) or a registry path (`127.0.0.1:5000/qus`).
    pub repo: String,
    /// The source whose images also get the unversioned tags (`latest`, `aarch64` …).
    pub default: String,
    /// Hosts built when `--hosts` is not given.
    pub hosts: Vec<String>,
    /// The entrypoint's shell.
    pub busybox: RawBusybox,
    /// Pinned QEMU versions.
    pub sources: Vec<RawSource>,
}

/// A resolved QEMU source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Tag version part (`d10.0`).
    pub name: String,
    /// Distribution.
    pub distro: Distro,
    /// Suite.
    pub suite: String,
    /// Package name.
    pub package: String,
    /// Package version: the newest of the pinned files' versions.
    pub version: String,
    /// Emulators shipped by default.
    pub targets: Vec<String>,
    /// Pinned files by host.
    pub files: BTreeMap<Host, PackageFile>,
}

impl Source {
    /// Emulators the package for `host` ships.
    pub fn targets_for(&self, host: Host) -> Vec<String> {
        let Some(f) = self.files.get(&host) else {
            return self.targets.clone();
        };
        let mut out: Vec<String> = Vec::new();
        for p in f.all() {
            for t in self.targets_of(p) {
                if !out.contains(t) {
                    out.push(t.clone());
                }
            }
        }
        out
    }

    /// Emulators one pinned file ships: its own `targets`, else the source's.
    pub fn targets_of<'a>(&'a self, file: &'a PackageFile) -> &'a [String] {
        file.targets.as_deref().unwrap_or(&self.targets)
    }
}

/// The resolved busybox pins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Busybox {
    /// Package name.
    pub package: String,
    /// Suite.
    pub suite: String,
    /// Package version: the newest of the pinned files' versions.
    pub version: String,
    /// Pinned files by host.
    pub files: BTreeMap<Host, PackageFile>,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Where it was read from (for messages).
    pub origin: String,
    /// The lock file merged into it, if one exists (for messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    /// Image repository.
    pub repo: String,
    /// Name of the default source.
    pub default: String,
    /// Default hosts.
    pub hosts: Vec<Host>,
    /// Busybox pins.
    pub busybox: Busybox,
    /// QEMU sources, in file order.
    pub sources: Vec<Source>,
}

/// What `qus lock` starts from: the config with whatever pins exist, and the lock's path.
#[derive(Debug)]
pub struct LockInput {
    /// The config; hosts may be unpinned, and pins are the current lock's (or inline).
    pub config: Config,
    /// Where the lock is (or will be) written.
    pub lock_path: PathBuf,
    /// Why the existing lock was not used, when it is malformed or out of date (it is
    /// rewritten anyway).
    pub ignored_lock: Option<String>,
}

/// Whether every host must be pinned (everything but `qus lock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pins {
    Required,
    Optional,
}

impl Config {
    /// Reads and validates a config file and merges the lock beside it, if there is one;
    /// `None` means the built-in default (and [`lockfile::DEFAULT_LOCK_NAME`] when the
    /// working directory is a qus checkout).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, origin) = read_config(path)?;
        let raw = parse_raw(&text, &origin)?;
        let lock_path = lockfile::path_for(path);
        let lock = read_lock(path, &lock_path)?;
        resolve(
            raw,
            &origin,
            lock.as_ref(),
            &lock_path.display().to_string(),
            Pins::Required,
        )
    }

    /// Reads a config for `qus lock`: hosts without pins are fine, and a malformed or
    /// outdated lock is set aside (with the reason) rather than an error, since it is about
    /// to be rewritten.
    pub fn load_for_lock(path: Option<&Path>) -> Result<LockInput, ConfigError> {
        let (text, origin) = read_config(path)?;
        let lock_path = lockfile::path_for(path);
        let lock_name = lock_path.display().to_string();
        let raw = parse_raw(&text, &origin)?;
        let (lock, mut ignored_lock) = match read_lock(path, &lock_path) {
            Ok(l) => (l, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let config = match resolve(
            raw.clone(),
            &origin,
            lock.as_ref(),
            &lock_name,
            Pins::Optional,
        ) {
            Ok(c) => c,
            Err(e) if lock.is_some() => {
                ignored_lock = Some(e.to_string());
                resolve(raw, &origin, None, &lock_name, Pins::Optional)?
            }
            Err(e) => return Err(e),
        };
        Ok(LockInput {
            config,
            lock_path,
            ignored_lock,
        })
    }

    /// Reads a config and merges `lock`, which is not (yet) at `lock_path`: what `qus lock`
    /// checks before it writes.
    pub fn load_with_lock(
        path: Option<&Path>,
        lock: &LockFile,
        lock_path: &Path,
    ) -> Result<Config, ConfigError> {
        let (text, origin) = read_config(path)?;
        let raw = parse_raw(&text, &origin)?;
        let name = lock_path.display().to_string();
        resolve(raw, &origin, Some(lock), &name, Pins::Required)
    }

    /// Parses and validates YAML text without a lock; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::parse_with_lock(text, origin, None)
    }

    /// Parses and validates YAML text and merges `lock` (with the name it was read from).
    pub fn parse_with_lock(
        text: &str,
        origin: &str,
        lock: Option<(&LockFile, &str)>,
    ) -> Result<Config, ConfigError> {
        let raw = parse_raw(text, origin)?;
        let default_name = lockfile::path_for(Some(Path::new(origin)))
            .display()
            .to_string();
        let (lock, name) = match lock {
            Some((l, n)) => (Some(l), n.to_string()),
            None => (None, default_name),
        };
        resolve(raw, origin, lock, &name, Pins::Required)
    }

    /// The source named `name` (`d10.0`).
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
}

fn read_config(path: Option<&Path>) -> Result<(String, String), ConfigError> {
    match path {
        None => Ok((DEFAULT_CONFIG.to_string(), DEFAULT_CONFIG_NAME.to_string())),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
            Ok((text, p.display().to_string()))
        }
    }
}

/// The lock beside a config file; for the built-in config, `images/qus.lock` only when qus
/// runs in a qus checkout (where `images/qus.yml` is), so that a stray file elsewhere never
/// changes what the built-in matrix builds.
fn read_lock(config: Option<&Path>, lock_path: &Path) -> Result<Option<LockFile>, LockError> {
    if config.is_none() && !Path::new(DEFAULT_CONFIG_NAME).is_file() {
        return Ok(None);
    }
    LockFile::read(lock_path)
}

fn parse_raw(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        let (location, message) = lockfile::located(&e);
        ConfigError::Syntax {
            path: origin.to_string(),
            location,
            message,
        }
    })
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
    package: &'a str,
    slots: BTreeMap<Host, Slot>,
}

fn resolve(
    raw: RawConfig,
    origin: &str,
    lock: Option<&LockFile>,
    lock_name: &str,
    mode: Pins,
) -> Result<Config, ConfigError> {
    let arch_err = |what: &str, e: UnknownArch| invalid(origin, format!("{what}: {e}"));

    reference::validate_repo(&raw.repo).map_err(|e| invalid(origin, format!("repo: {e}")))?;

    let mut hosts = Vec::new();
    for name in &raw.hosts {
        let h: Host = name.parse().map_err(|e| arch_err("hosts", e))?;
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

    let bb = &raw.busybox;
    let mut roles = vec![Role {
        name: BUSYBOX,
        distro: Distro::Debian,
        ctx: "busybox".into(),
        suite: &bb.suite,
        package: &bb.package,
        slots: inline_slots(&bb.files, bb.version.as_deref(), origin, "busybox")?,
    }];
    if roles[0]
        .slots
        .values()
        .any(|s| s.targets.is_some() || !s.more.is_empty())
    {
        return Err(invalid(
            origin,
            "busybox.files: 'targets' belongs to QEMU sources only",
        ));
    }
    for (i, s) in raw.sources.iter().enumerate() {
        let ctx = format!("sources[{}]", s.name);
        validate_source_name(&s.name).map_err(|m| invalid(origin, format!("{ctx}: {m}")))?;
        if raw.sources[..i].iter().any(|o| o.name == s.name) {
            return Err(invalid(origin, format!("{ctx}: the name is used twice")));
        }
        validate_targets(&s.targets).map_err(|m| invalid(origin, format!("{ctx}.targets: {m}")))?;
        let slots = inline_slots(&s.files, s.version.as_deref(), origin, &ctx)?;
        for (h, slot) in &slots {
            for t in slot.targets.iter().chain(slot.more.iter().map(|(_, t)| t)) {
                validate_targets(t)
                    .map_err(|m| invalid(origin, format!("{ctx}.files.{h}.targets: {m}")))?;
            }
        }
        let prefix = match s.distro {
            Distro::Debian => 'd',
            Distro::Fedora => 'f',
        };
        if !s.name.starts_with(prefix) {
            return Err(invalid(
                origin,
                format!(
                    "{ctx}: a {:?} source's name starts with '{prefix}' (its tags are {prefix}V)",
                    s.distro
                ),
            ));
        }
        if s.files.values().any(|f| f.packages.is_some()) && s.distro == Distro::Debian {
            return Err(invalid(
                origin,
                format!("{ctx}: `packages:` lists are for Fedora's per-target rpms; a Debian host has one package"),
            ));
        }
        roles.push(Role {
            name: &s.name,
            distro: s.distro,
            ctx,
            suite: &s.suite,
            package: &s.package,
            slots,
        });
    }
    if raw.sources.is_empty() {
        return Err(invalid(origin, "sources: the list is empty"));
    }
    if !raw.sources.iter().any(|s| s.name == raw.default) {
        return Err(invalid(
            origin,
            format!(
                "default: '{}' is not one of the sources ({})",
                raw.default,
                raw.sources
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }

    if let Some(lock) = lock {
        merge_lock(&mut roles, lock, lock_name, origin)?;
    }
    if mode == Pins::Required {
        for role in &roles {
            require_pins(role, &hosts, lock, lock_name, origin)?;
        }
    }

    let mut files: Vec<BTreeMap<Host, PackageFile>> = roles.into_iter().map(finish).collect();
    let bb_files = files.remove(0);
    let busybox = Busybox {
        package: raw.busybox.package,
        suite: raw.busybox.suite,
        version: newest_version(&bb_files, raw.busybox.version),
        files: bb_files,
    };
    let sources = raw
        .sources
        .into_iter()
        .zip(files)
        .map(|(s, files)| Source {
            name: s.name,
            distro: s.distro,
            suite: s.suite,
            package: s.package,
            version: newest_version(&files, s.version),
            targets: s.targets,
            files,
        })
        .collect();

    Ok(Config {
        origin: origin.to_string(),
        lock: lock.map(|_| lock_name.to_string()),
        repo: raw.repo,
        default: raw.default,
        hosts,
        busybox,
        sources,
    })
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
        if l.suite != role.suite || l.package != role.package {
            return Err(stale(format!(
                "{} {} is locked as {} from {}, but {} says {} from {}",
                l.role, l.host, l.package, l.suite, role.ctx, role.package, role.suite
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
                role.suite
            ),
        )
    };
    if role.name == BUSYBOX {
        if let Some(h) = hosts.iter().find(|h| !pinned(h) && unavailable(**h)) {
            return Err(invalid(
                origin,
                format!(
                    "busybox: {} has no {} for host {h} (so says {lock_name}); remove {h} from \
                     'hosts' or take busybox from another suite",
                    role.suite, role.package
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

/// Checks a sha256 is 64 lowercase hex digits.
pub(crate) fn validate_sha256(s: &str) -> Result<(), String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("'{s}' is not 64 lowercase hex digits"))
    }
}

/// Checks a pool path stays below the mirror root.
pub(crate) fn validate_pool_path(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with('/')
        && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && !s.contains(['\\', '\0']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{s}' must be a relative path below the mirror root without '..' (pool/main/…)"
        ))
    }
}

/// Checks a source name is `d`/`f` and a version (`d10.0`).
pub(crate) fn validate_source_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = matches!(chars.next(), Some('d' | 'f'))
        && chars.clone().next().is_some_and(|c| c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_digit() || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name '{s}' must be 'd' (Debian) or 'f' (Fedora) and a version, like d10.0"
        ))
    }
}

/// Checks QEMU target names against the binfmt table.
pub fn validate_targets(targets: &[String]) -> Result<(), String> {
    let mut seen = Vec::new();
    for t in targets {
        if !crate::targets::is_known(t) {
            return Err(format!(
                "unknown QEMU target '{t}': valid targets are {}",
                crate::targets::known().join(", ")
            ));
        }
        if seen.contains(&t) {
            return Err(format!("target '{t}' is listed twice"));
        }
        seen.push(t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.default, "d10.0");
        assert!(c.hosts.contains(&Host::Riscv64));
        let d7 = c.source("d7.2").unwrap();
        assert!(
            !d7.files.contains_key(&Host::Riscv64),
            "bookworm has no riscv64"
        );
        let d10 = c.source("d10.0").unwrap();
        assert!(d10.targets_for(Host::Arm32v7).contains(&"arm".to_string()));
        assert!(!d10
            .targets_for(Host::Arm32v7)
            .contains(&"aarch64".to_string()));
        assert!(d10
            .targets_for(Host::Amd64)
            .contains(&"aarch64".to_string()));
    }

    fn with(replace: &str, by: &str) -> Result<Config, ConfigError> {
        let text = DEFAULT_CONFIG.replacen(replace, by, 1);
        assert_ne!(
            text, DEFAULT_CONFIG,
            "test did not change anything: {replace}"
        );
        Config::parse(&text, "test.yml")
    }

    #[test]
    fn unknown_key_names_file_line_and_column() {
        let err = with("repo: qus", "repo: qus\nrepos: typo")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.yml:"), "{err}");
        assert!(err.contains("unknown field `repos`"), "{err}");
        // The typo is on the line after `repo:`, in column 1.
        let repo_line = DEFAULT_CONFIG
            .lines()
            .position(|l| l.starts_with("repo: qus"))
            .unwrap()
            + 1;
        let want = format!("test.yml:{}:1: unknown field `repos`", repo_line + 1);
        assert!(err.starts_with(&want), "want {want}: {err}");
    }

    #[test]
    fn wrong_type_is_a_syntax_error() {
        let err = with("hosts:", "hosts: 3\nold_hosts:").unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Syntax {
                    location: Some(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_arch_lists_valid_names() {
        let err = with("  - amd64", "  - vax").unwrap_err().to_string();
        assert!(err.contains("'vax'") && err.contains("arm64v8"), "{err}");
    }

    #[test]
    fn duplicate_host_through_an_alias() {
        let err = with("  - amd64", "  - amd64\n  - x86_64")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
    }

    #[test]
    fn bad_sha_and_escaping_path() {
        let err = with("sha256: ca6ede", "sha256: XXca6ede")
            .unwrap_err()
            .to_string();
        assert!(err.contains("64 lowercase hex"), "{err}");
        let err = with(
            "file: pool/main/q/qemu/qemu-user_10",
            "file: pool/../../etc/qemu-user_10",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("without '..'"), "{err}");
    }

    #[test]
    fn invalid_repo_reference() {
        let err = with("repo: qus", "repo: QUS:Bad").unwrap_err().to_string();
        assert!(err.contains("repo:"), "{err}");
    }

    #[test]
    fn unknown_target() {
        let err = with("targets: [aarch64,", "targets: [vax, aarch64,")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown QEMU target 'vax'"), "{err}");
    }

    #[test]
    fn fedora_sources_take_per_target_package_lists() {
        let sha = "a".repeat(64);
        let fedora = |name: &str, entry: &str| {
            format!(
                "{DEFAULT_CONFIG}  - name: {name}\n    distro: fedora\n    suite: \"43\"\n    package: qemu-user-static\n    version: \"2:10.0\"\n    targets: [aarch64, arm]\n    files:\n      amd64:\n{entry}"
            )
        };
        let two = format!(
            "        packages:\n          - {{ file: r/a.rpm, sha256: {sha}, targets: [aarch64] }}\n          - {{ file: r/b.rpm, sha256: {sha}, targets: [arm] }}\n"
        );
        let c = Config::parse(&fedora("f10.0", &two), "f.yml").unwrap();
        let f = c.source("f10.0").unwrap();
        assert_eq!(f.distro, Distro::Fedora);
        assert_eq!(f.targets_for(Host::Amd64), ["aarch64", "arm"]);
        assert_eq!(f.files[&Host::Amd64].all().count(), 2);

        let e = Config::parse(&fedora("d10.1", &two), "f.yml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("starts with 'f'"), "{e}");
        let no_targets =
            format!("        packages:\n          - {{ file: r/a.rpm, sha256: {sha} }}\n");
        let e = Config::parse(&fedora("f10.0", &no_targets), "f.yml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("say which `targets`"), "{e}");
        let line = DEFAULT_CONFIG
            .lines()
            .find(|l| l.starts_with("      amd64: { file: pool/main/q/qemu/qemu-user_10"))
            .unwrap();
        let debian_list = DEFAULT_CONFIG.replacen(
            line,
            &format!("      amd64:\n        packages: [{{ file: r/a.deb, sha256: {sha}, targets: [arm] }}]"),
            1,
        );
        let e = Config::parse(&debian_list, "d.yml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Fedora's per-target rpms"), "{e}");
    }

    #[test]
    fn default_must_exist() {
        let err = with("default: d10.0", "default: d9.9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("'d9.9' is not one of the sources"), "{err}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        // A billion-laughs value where a list of host names is expected: typed
        // deserialisation must refuse it at the first nested list, before any expansion.
        let mut levels = vec!["&a0 [x, x, x, x, x, x, x, x, x, x]".to_string()];
        for i in 1..9 {
            levels.push(format!(
                "&a{i} [{}]",
                vec![format!("*a{}", i - 1); 10].join(", ")
            ));
        }
        let doc = DEFAULT_CONFIG.replacen(
            "hosts:\n",
            &format!("hosts: [{}]\nx:\n", levels.join(", ")),
            1,
        );
        let err = Config::parse(&doc, "bomb.yml").unwrap_err().to_string();
        assert!(err.starts_with("bomb.yml:"), "{err}");
        assert!(err.contains("invalid type: sequence"), "{err}");
    }

    // ---- The lock file merged into the config.

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn locked(role: &str, host: Host, suite: &str, package: &str, version: &str) -> LockedPackage {
        LockedPackage {
            role: role.into(),
            host,
            suite: suite.into(),
            package: package.into(),
            version: version.into(),
            file: format!(
                "pool/main/x/{package}/{package}_{version}_{}.deb",
                host.debian()
            ),
            size: 7,
            sha256: SHA_A.into(),
        }
    }

    /// A config with no pins at all: everything comes from a lock.
    const BARE: &str = "repo: qus\ndefault: d10.0\nhosts: [amd64, arm32v7, riscv64]\n\
        busybox: { package: busybox-static, suite: trixie }\n\
        sources:\n\
        \x20 - { name: d10.0, distro: debian, suite: trixie, package: qemu-user, targets: [aarch64, arm],\n\
        \x20     files: { arm32v7: { targets: [arm] } } }\n\
        \x20 - { name: d7.2, distro: debian, suite: bookworm, package: qemu-user-static, targets: [aarch64, arm] }\n";

    fn bare_lock() -> LockFile {
        let mut l = LockFile::new();
        for h in [Host::Amd64, Host::Arm32v7, Host::Riscv64] {
            l.packages.push(locked(
                BUSYBOX,
                h,
                "trixie",
                "busybox-static",
                "1:1.37.0-6+b9",
            ));
            l.packages.push(locked(
                "d10.0",
                h,
                "trixie",
                "qemu-user",
                "1:10.0.13+ds-0+deb13u1",
            ));
        }
        for h in [Host::Amd64, Host::Arm32v7] {
            l.packages.push(locked(
                "d7.2",
                h,
                "bookworm",
                "qemu-user-static",
                "1:7.2+dfsg-7",
            ));
        }
        l.unavailable.push(lockfile::Unavailable {
            role: "d7.2".into(),
            host: Host::Riscv64,
            suite: "bookworm".into(),
            package: "qemu-user-static".into(),
        });
        l
    }

    #[test]
    fn lock_replaces_the_inline_pin_and_keeps_its_targets() {
        let mut lock = LockFile::new();
        lock.packages.push(locked(
            "d10.0",
            Host::Arm32v7,
            "trixie",
            "qemu-user",
            "1:10.0.14+ds-0+deb13u1",
        ));
        // With a lock, a host a source does not pin must be one the lock says the suite
        // lacks; otherwise the lock is older than the config.
        let e = Config::parse_with_lock(DEFAULT_CONFIG, "qus.yml", Some((&lock, "qus.lock")))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("sources[d7.2]: no qemu-user-static is pinned for host riscv64"),
            "{e}"
        );
        lock.unavailable.push(lockfile::Unavailable {
            role: "d7.2".into(),
            host: Host::Riscv64,
            suite: "bookworm".into(),
            package: "qemu-user-static".into(),
        });
        let c =
            Config::parse_with_lock(DEFAULT_CONFIG, "qus.yml", Some((&lock, "qus.lock"))).unwrap();
        assert_eq!(c.lock.as_deref(), Some("qus.lock"));
        let d10 = c.source("d10.0").unwrap();
        let f = &d10.files[&Host::Arm32v7];
        assert_eq!(
            (f.sha256.as_str(), f.size, f.version.as_str()),
            (SHA_A, Some(7), "1:10.0.14+ds-0+deb13u1")
        );
        assert!(f.file.ends_with("_armhf.deb"), "{}", f.file);
        // The config's per-host targets stay authoritative.
        assert!(!d10
            .targets_for(Host::Arm32v7)
            .contains(&"aarch64".to_string()));
        assert!(d10.targets_for(Host::Arm32v7).contains(&"arm".to_string()));
        // Other hosts keep their inline pins and the config's version.
        assert_eq!(d10.files[&Host::Amd64].version, "1:10.0.13+ds-0+deb13u1");
        assert!(d10.files[&Host::Amd64].sha256.starts_with("ca6ede"));
        // The source's version is the newest of its files (10.0.14 > 10.0.13).
        assert_eq!(d10.version, "1:10.0.14+ds-0+deb13u1");
        assert_eq!(c.busybox.suite, "trixie");
        assert_eq!(c.busybox.files[&Host::Amd64].version, "1:1.37.0-6+b9");
    }

    #[test]
    fn a_bare_config_takes_every_pin_from_the_lock() {
        let c = Config::parse_with_lock(BARE, "m.yml", Some((&bare_lock(), "m.lock"))).unwrap();
        let d7 = c.source("d7.2").unwrap();
        assert_eq!(
            d7.files.keys().copied().collect::<Vec<_>>(),
            [Host::Amd64, Host::Arm32v7]
        );
        assert_eq!(d7.version, "1:7.2+dfsg-7");
        assert_eq!(
            c.source("d10.0").unwrap().targets_for(Host::Arm32v7),
            ["arm"]
        );
        assert_eq!(c.busybox.files.len(), 3);
    }

    #[test]
    fn nothing_pinned_says_to_run_qus_lock() {
        let e = Config::parse(BARE, "m.yml").unwrap_err().to_string();
        assert!(
            e.starts_with(
                "m.yml: busybox: no busybox-static is pinned for hosts amd64, arm32v7, riscv64"
            ),
            "{e}"
        );
        assert!(e.contains("m.lock") && e.contains("run `qus lock`"), "{e}");
        // A lock older than the config: a host was added since.
        let mut lock = bare_lock();
        lock.packages
            .retain(|p| !(p.role == "d10.0" && p.host == Host::Riscv64));
        let e = Config::parse_with_lock(BARE, "m.yml", Some((&lock, "m.lock")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sources[d10.0]: no qemu-user is pinned for host riscv64"),
            "{e}"
        );
        assert!(e.contains("run `qus lock`"), "{e}");
        // busybox that the suite does not have for a host of `hosts`.
        let mut lock = bare_lock();
        lock.packages
            .retain(|p| !(p.role == BUSYBOX && p.host == Host::Riscv64));
        lock.unavailable.push(lockfile::Unavailable {
            role: BUSYBOX.into(),
            host: Host::Riscv64,
            suite: "trixie".into(),
            package: "busybox-static".into(),
        });
        let e = Config::parse_with_lock(BARE, "m.yml", Some((&lock, "m.lock")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("trixie has no busybox-static for host riscv64"),
            "{e}"
        );
    }

    #[test]
    fn a_lock_for_another_suite_or_source_is_out_of_date() {
        let mut lock = bare_lock();
        lock.packages[1].suite = "bookworm".into();
        let e = Config::parse_with_lock(BARE, "m.yml", Some((&lock, "m.lock")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.lock: d10.0 amd64 is locked as qemu-user from bookworm"),
            "{e}"
        );
        assert!(e.contains("run `qus lock`"), "{e}");
        let mut lock = bare_lock();
        lock.packages[1].role = "d9.0".into();
        let e = Config::parse_with_lock(BARE, "m.yml", Some((&lock, "m.lock")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("d9.0 amd64 is locked, but m.yml has no such source"),
            "{e}"
        );
    }

    #[test]
    fn busybox_needs_a_suite_and_inline_pins_need_file_sha_and_version() {
        let e = with(
            "  suite: trixie\n  version: \"1:1.37",
            "  version: \"1:1.37",
        )
        .unwrap_err();
        assert!(e.to_string().contains("missing field `suite`"), "{e}");
        let e = with(", sha256: 598a3fd9", ", sha: 598a3fd9")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `sha`"), "{e}");
        let text = DEFAULT_CONFIG.replacen(", size: 955316, sha256: 598a3fd92bdafc34cd81196b2952ad36e910e47a4ecf162f8ce5e8e262598e53", "", 1);
        let e = Config::parse(&text, "t.yml").unwrap_err().to_string();
        assert!(
            e.contains("busybox.files.amd64: give `file` and `sha256` together"),
            "{e}"
        );
        let e = with("  version: \"1:1.37.0-6+b9\"\n", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("busybox.files.amd64: no version"), "{e}");
    }

    #[test]
    fn load_reads_the_lock_beside_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("m.yml");
        std::fs::write(&cfg, BARE).unwrap();
        let lock_path = dir.path().join("m.lock");
        bare_lock().write(&lock_path, "m.yml").unwrap();
        let c = Config::load(Some(&cfg)).unwrap();
        assert_eq!(
            c.lock.as_deref(),
            Some(lock_path.display().to_string().as_str())
        );
        assert_eq!(c.busybox.files.len(), 3);

        // A malformed lock: file, line and column.
        let text = std::fs::read_to_string(&lock_path).unwrap();
        let bad = text.replacen("size: 7", "size: seven", 1);
        std::fs::write(&lock_path, &bad).unwrap();
        let e = Config::load(Some(&cfg)).unwrap_err().to_string();
        let line = bad.lines().position(|l| l.contains("seven")).unwrap() + 1;
        let want = format!("{}:{line}:", lock_path.display());
        assert!(e.starts_with(&want), "want {want}: {e}");
        assert!(
            e.contains("invalid type: string \"seven\", expected u64"),
            "{e}"
        );

        // `qus lock` sets it aside instead, and still reads a config without pins.
        let input = Config::load_for_lock(Some(&cfg)).unwrap();
        assert!(input.ignored_lock.unwrap().starts_with(&want));
        assert_eq!(input.lock_path, lock_path);
        assert!(input.config.busybox.files.is_empty());
        std::fs::remove_file(&lock_path).unwrap();
        let input = Config::load_for_lock(Some(&cfg)).unwrap();
        assert!(input.ignored_lock.is_none() && input.config.lock.is_none());
        assert!(Config::load(Some(&cfg))
            .unwrap_err()
            .to_string()
            .contains("run `qus lock`"));
    }
}
