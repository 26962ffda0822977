//! The maintainers' loop: `qus lock`, `qus check`, `qus report`.
//!
//! After a QEMU release a maintainer runs `qus check` (or a scheduled CI job does: exit 1
//! means a newer package is out), `qus lock` to pin the newest packages into the lock file,
//! reviews the diff, and rebuilds. `qus report` shows which emulator each pinned package
//! provides for which host. The commands (`crate::cmd::lock`, `crate::cmd::check`,
//! `crate::cmd::report`) are thin: what to look up comes from the config ([`wanted`]), the
//! mirror lookups (indexes, and whether the mirror serves the files they list) live in
//! [`index`], and the decisions and tables are pure functions in [`choose`] (which file to
//! pin), [`lock`], [`check`] and [`report`].

pub mod check;
pub mod choose;
pub mod index;
pub mod lock;
pub mod report;

use crate::arch::Host;
use crate::config::lockfile::BUSYBOX;
use crate::config::{Config, Distro, PackageFile};
use anyhow::anyhow;

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
pub(crate) fn need_mirror(mirror: Option<String>) -> anyhow::Result<String> {
    mirror.ok_or_else(|| {
        anyhow!(
            "no Debian mirror configured: pass --mirror URL, set QUS_MIRROR, or add a Debian \
             archive to this machine's apt sources (the mirror root is the folder that holds \
             dists/ and pool/)"
        )
    })
}
