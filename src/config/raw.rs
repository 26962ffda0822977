//! The YAML file as written: syntax and types only (unknown keys are errors, so a typo never
//! silently drops a pin). [`super::resolve`] turns it into a [`super::Config`].

use super::{ConfigError, Distro};
use crate::config::lockfile;
use serde::Deserialize;
use std::collections::BTreeMap;

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
    /// The suite this host's package comes from, when not the section's (QEMU 11.1 for
    /// riscv64 and loong64 is in forky, for amd64 in trixie-backports).
    #[serde(default)]
    pub suite: Option<String>,
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
    /// Suites `qus lock` may take a host's busybox from when its own suite serves none
    /// (see [`RawSource::fallback_suites`]).
    #[serde(default)]
    pub fallback_suites: Vec<String>,
    /// The OpenPGP keyring the suite's Release must be signed by (default: Debian's
    /// archive keyring); relative to the config file's folder.
    #[serde(default)]
    pub keyring: Option<String>,
    /// Version of the inline pins (the lock carries its own).
    #[serde(default)]
    pub version: Option<String>,
    /// Inline pins by host (none when a lock pins them).
    #[serde(default)]
    pub files: BTreeMap<String, RawPackageFile>,
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
    /// Suites, in order of preference, `qus lock` may take a host's package from when the
    /// host's own suite (`suite`, or its `files` entry's) lists none, or lists a newest
    /// file the mirror does not serve: it then pins the newest served file of them all, no
    /// newer than what the host's own suite lists (Debian sources only).
    #[serde(default)]
    pub fallback_suites: Vec<String>,
    /// The OpenPGP keyring the suite's Release must be signed by (Debian sources; default:
    /// Debian's archive keyring), or every rpm's header (Fedora sources; default: none, the
    /// sha256 pins alone); relative to the config file's folder.
    #[serde(default)]
    pub keyring: Option<String>,
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
    /// Emulators whose failure in `qus test` the maintainers know of and accept.
    #[serde(default)]
    pub known_failures: Vec<RawKnownFailure>,
}

/// One entry of a source's `known_failures:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKnownFailure {
    /// The hosts it applies to (none: every host of the source).
    #[serde(default)]
    pub hosts: Vec<crate::arch::Host>,
    /// The emulators (QEMU target names).
    pub targets: Vec<String>,
    /// Why it fails and why the images are published anyway.
    pub reason: String,
}

/// The YAML file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Image repository: a local name (`qus`) or a registry path (`127.0.0.1:5000/qus`).
    pub repo: String,
    /// The source preferred for a host's unversioned tags (and so its `qus assets`) when two
    /// sources give it the same QEMU series.
    pub default: String,
    /// Hosts built when `--hosts` is not given.
    pub hosts: Vec<String>,
    /// The entrypoint's shell.
    pub busybox: RawBusybox,
    /// Pinned QEMU versions.
    pub sources: Vec<RawSource>,
    /// Guest programs `qus test` runs, for Debian architectures that are not hosts.
    #[serde(default)]
    pub guests: Option<RawGuests>,
}

/// `guests:` — more static guest programs for `qus test`, by Debian architecture.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuests {
    /// Debian package name (`busybox-static`).
    pub package: String,
    /// Pins by Debian architecture (`mips64el`), each with its `suite` and `version`.
    #[serde(default)]
    pub files: BTreeMap<String, RawPackageFile>,
}

pub(super) fn parse_raw(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    serde_yaml_ng::from_str(text).map_err(|e| {
        let (location, message) = lockfile::located(&e);
        ConfigError::Syntax {
            path: origin.to_string(),
            location,
            message,
        }
    })
}
