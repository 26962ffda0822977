//! The matrix configuration (`images/qus.yml`) and its lock file (`qus.lock` beside it).
//!
//! Two levels, as ripgrep does with its flags: [`RawConfig`] mirrors the YAML file and only
//! checks syntax and types (unknown keys are errors, so a typo never silently drops a pin);
//! [`Config`] is the resolved, validated value every later stage uses: host names normalised,
//! duplicates rejected, every host of every source pinned to a file and a sha256.
//!
//! Pins come from two places: inline `files:` entries, and the lock file `qus lock` writes
//! ([`crate::config::lockfile`]). A lock entry replaces the inline entry of the same (source or
//! busybox, host), keeping only its `targets` override: the config says which emulators a
//! host's package ships, the lock says which file it is. A host of `hosts` pinned nowhere is
//! an error that says to run `qus lock`.

//!
//! Files by job: [`raw`] is the schema as written, [`resolve`] merges inline pins and the
//! lock into the resolved value, and this module holds that value and the loaders.

pub(crate) mod lockfile;
mod raw;
mod resolve;
#[cfg(test)]
mod tests;
pub(crate) mod validate;

use crate::arch::Host;
use lockfile::{LockError, LockFile};
use raw::parse_raw;
use resolve::{resolve, Pins};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default configuration, shipped in the binary so `qus plan` works anywhere.
pub const DEFAULT_CONFIG: &str = include_str!("../../images/qus.yml");
/// Its lock (`qus lock` writes it in a checkout), shipped beside it: the built-in config
/// builds the same pins wherever qus runs.
pub const DEFAULT_LOCK: &str = include_str!("../../images/qus.lock");
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

/// A resolved QEMU source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Tag version part (`d10.0`).
    pub name: String,
    /// Distribution.
    pub distro: Distro,
    /// Suite of every host without its own.
    pub suite: String,
    /// Hosts whose package comes from another suite.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub suites: BTreeMap<Host, String>,
    /// Suites `qus lock` may fall back to, in order, when a host's own suite serves none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback_suites: Vec<String>,
    /// The keyring its Release must be signed by (`None`: Debian's archive keyring); for a
    /// Fedora source, the keyring every rpm's header must be signed by (`None`: unchecked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyring: Option<PathBuf>,
    /// Package name.
    pub package: String,
    /// Package version: the newest of the pinned files' versions.
    pub version: String,
    /// Emulators shipped by default.
    pub targets: Vec<String>,
    /// Pinned files by host.
    pub files: BTreeMap<Host, PackageFile>,
    /// Emulators whose failure in `qus test` is known and accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub known_failures: Vec<KnownFailure>,
}

/// An emulator test failure the maintainers know of: it is reported, and does not keep
/// the images that hold the emulator from being published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownFailure {
    /// The hosts it applies to (empty: every host).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<Host>,
    /// The emulators.
    pub targets: Vec<String>,
    /// Why.
    pub reason: String,
}

impl Source {
    /// Why `host`'s `qemu-<target>` is known to fail its test, if it is.
    pub fn known_failure(&self, host: Host, target: &str) -> Option<&KnownFailure> {
        self.known_failures.iter().find(|k| {
            (k.hosts.is_empty() || k.hosts.contains(&host)) && k.targets.iter().any(|t| t == target)
        })
    }

    /// The suite `host`'s package comes from.
    pub fn suite_for(&self, host: Host) -> &str {
        self.suites.get(&host).unwrap_or(&self.suite)
    }

    /// The suites `host`'s package may come from: its own, then the fallbacks.
    pub fn suites_for(&self, host: Host) -> Vec<String> {
        allowed_suites(self.suite_for(host), &self.fallback_suites)
    }

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
    /// Suite of every host without its own.
    pub suite: String,
    /// Hosts whose busybox comes from another suite.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub suites: BTreeMap<Host, String>,
    /// Suites `qus lock` may fall back to, in order, when a host's own suite serves none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback_suites: Vec<String>,
    /// The keyring its Release must be signed by (`None`: Debian's archive keyring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyring: Option<PathBuf>,
    /// Package version: the newest of the pinned files' versions.
    pub version: String,
    /// Pinned files by host.
    pub files: BTreeMap<Host, PackageFile>,
}

impl Busybox {
    /// The suite `host`'s busybox comes from.
    pub fn suite_for(&self, host: Host) -> &str {
        self.suites.get(&host).unwrap_or(&self.suite)
    }

    /// The suites `host`'s busybox may come from: its own, then the fallbacks.
    pub fn suites_for(&self, host: Host) -> Vec<String> {
        allowed_suites(self.suite_for(host), &self.fallback_suites)
    }
}

/// Pure: `own`, then each fallback that is not `own`, in order.
fn allowed_suites(own: &str, fallbacks: &[String]) -> Vec<String> {
    std::iter::once(own.to_string())
        .chain(fallbacks.iter().filter(|f| *f != own).cloned())
        .collect()
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
    /// Guest programs for Debian architectures that are not hosts (`guests:`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub guests: BTreeMap<String, Guest>,
    /// sha256 (hex) of the config's text and of the lock's, when one was merged: what a
    /// provenance names them by. Set by [`Config::load`].
    #[serde(skip)]
    pub digests: Option<(String, Option<String>)>,
}

/// A pinned guest program `qus test` runs under an emulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Guest {
    /// Debian package name.
    pub package: String,
    /// Suite it is pinned from.
    pub suite: String,
    /// The pin.
    pub file: PackageFile,
}

impl Config {
    /// The guest program for Debian architecture `arch`: a host's busybox, else a
    /// `guests:` pin; `None` when the config has none (the emulator is then only asked
    /// for its version).
    pub fn guest(&self, arch: &str) -> Option<Guest> {
        let host = self.busybox.files.keys().find(|h| h.debian() == arch);
        match host {
            Some(h) => Some(Guest {
                package: self.busybox.package.clone(),
                suite: self.busybox.suite_for(*h).to_string(),
                file: self.busybox.files[h].clone(),
            }),
            None => self.guests.get(arch).cloned(),
        }
    }
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

impl Config {
    /// Reads and validates a config file and merges the lock beside it, if there is one;
    /// `None` means the built-in default (and [`lockfile::DEFAULT_LOCK_NAME`] when the
    /// working directory is a qus checkout).
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, origin) = read_config(path)?;
        let raw = parse_raw(&text, &origin)?;
        let lock_path = lockfile::path_for(path);
        let lock = read_lock(path, &lock_path)?;
        let mut config = resolve(
            raw,
            &origin,
            lock.as_ref().map(|(l, _)| l),
            &lock_path.display().to_string(),
            Pins::Required,
        )?;
        let sha = |b: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b));
        let lock_sha = lock.map(|(_, text)| sha(text.as_bytes()));
        config.digests = Some((sha(text.as_bytes()), lock_sha));
        Ok(config)
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
            Ok(l) => (l.map(|(l, _)| l), None),
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

    #[cfg(test)]
    /// Parses and validates YAML text without a lock; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::parse_with_lock(text, origin, None)
    }

    #[cfg(test)]
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

/// The lock beside a config file, with its text. For the built-in config, the built-in
/// lock; in a qus checkout (where `images/qus.yml` is), `images/qus.lock` on disk if it
/// is there, so that a fresh `qus lock` shows before qus is rebuilt, while a stray file
/// elsewhere never changes what the built-in matrix builds.
fn read_lock(
    config: Option<&Path>,
    lock_path: &Path,
) -> Result<Option<(LockFile, String)>, LockError> {
    if config.is_some() || Path::new(DEFAULT_CONFIG_NAME).is_file() {
        if let Some(found) = LockFile::read(lock_path)? {
            return Ok(Some(found));
        }
    }
    if config.is_some() {
        return Ok(None);
    }
    let lock = LockFile::parse(DEFAULT_LOCK, lockfile::DEFAULT_LOCK_NAME)?;
    Ok(Some((lock, DEFAULT_LOCK.to_string())))
}
