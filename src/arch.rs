//! Host architecture names.
//!
//! Three naming schemes meet in qus: the image tags use dbhi/qus's names (`arm64v8`,
//! `arm32v7`), Debian's archive uses its own (`arm64`, `armhf`), and registries use OCI
//! platforms (`linux/arm/v7`). Users type any of them, or `uname -m`. Every name is
//! normalised here, once, to a [`Host`]; the rest of qus only ever sees a `Host`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A host architecture that qus can build images for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    /// x86-64.
    Amd64,
    /// 64-bit Arm.
    Arm64v8,
    /// 32-bit Arm, hard float (Debian armhf).
    Arm32v7,
    /// 32-bit Arm, soft float (Debian armel).
    Arm32v6,
    /// 32-bit x86.
    I386,
    /// 64-bit little-endian POWER.
    Ppc64le,
    /// IBM Z.
    S390x,
    /// 64-bit RISC-V.
    Riscv64,
    /// 64-bit LoongArch (Debian loong64).
    Loong64,
    /// 64-bit little-endian MIPS.
    Mips64le,
}

/// An OCI platform (`linux/arm/v7`): what a manifest list entry and an image config say.
/// One type for the whole workspace, the registry crate's.
pub use qus_registry::Platform;

struct Row {
    host: Host,
    qus: &'static str,
    debian: &'static str,
    architecture: &'static str,
    variant: Option<&'static str>,
    /// Other spellings users type: `uname -m`, GOARCH, Debian and distro names.
    aliases: &'static [&'static str],
    /// Whether the built-in matrix builds images for it (mips64le is only a guest of
    /// `qus test`): names offered in messages are names that work.
    offered: bool,
}

/// The one table of host names. Order is the order hosts appear in plans and tables.
const TABLE: &[Row] = &[
    Row {
        host: Host::Amd64,
        qus: "amd64",
        debian: "amd64",
        architecture: "amd64",
        variant: None,
        aliases: &["x86_64", "x86-64", "x64", "linux/amd64"],
        offered: true,
    },
    Row {
        host: Host::Arm64v8,
        qus: "arm64v8",
        debian: "arm64",
        architecture: "arm64",
        variant: Some("v8"),
        aliases: &[
            "arm64",
            "aarch64",
            "armv8",
            "armv8l",
            "linux/arm64",
            "linux/arm64/v8",
        ],
        offered: true,
    },
    Row {
        host: Host::Arm32v7,
        qus: "arm32v7",
        debian: "armhf",
        architecture: "arm",
        variant: Some("v7"),
        aliases: &[
            "armhf",
            "armv7",
            "armv7l",
            "armv7hl",
            "arm",
            "linux/arm",
            "linux/arm/v7",
        ],
        offered: true,
    },
    Row {
        host: Host::Arm32v6,
        qus: "arm32v6",
        debian: "armel",
        architecture: "arm",
        variant: Some("v6"),
        aliases: &["armel", "armv6", "armv6l", "linux/arm/v6"],
        offered: true,
    },
    Row {
        host: Host::I386,
        qus: "i386",
        debian: "i386",
        architecture: "386",
        variant: None,
        aliases: &["386", "i686", "i586", "i486", "x86", "linux/386"],
        offered: true,
    },
    Row {
        host: Host::Ppc64le,
        qus: "ppc64le",
        debian: "ppc64el",
        architecture: "ppc64le",
        variant: None,
        aliases: &["ppc64el", "powerpc64le", "linux/ppc64le"],
        offered: true,
    },
    Row {
        host: Host::S390x,
        qus: "s390x",
        debian: "s390x",
        architecture: "s390x",
        variant: None,
        aliases: &["linux/s390x"],
        offered: true,
    },
    Row {
        host: Host::Riscv64,
        qus: "riscv64",
        debian: "riscv64",
        architecture: "riscv64",
        variant: None,
        aliases: &["linux/riscv64"],
        offered: true,
    },
    Row {
        host: Host::Loong64,
        qus: "loong64",
        debian: "loong64",
        architecture: "loong64",
        variant: None,
        aliases: &["loongarch64", "linux/loong64"],
        offered: true,
    },
    Row {
        host: Host::Mips64le,
        qus: "mips64le",
        debian: "mips64el",
        architecture: "mips64le",
        variant: None,
        aliases: &["mips64el", "linux/mips64le"],
        offered: false,
    },
];

/// An architecture name that is not in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown host architecture '{name}': {}valid names are {}",
    crate::names::did_you_mean(&Host::suggest(name)),
    Host::valid_names()
)]
pub struct UnknownArch {
    /// What the user typed.
    pub name: String,
}

impl Host {
    fn row(self) -> &'static Row {
        TABLE
            .iter()
            .find(|r| r.host == self)
            .expect("every Host variant has a row in TABLE")
    }

    /// The qus/dbhi name used in image tags: `arm64v8`.
    pub fn name(self) -> &'static str {
        self.row().qus
    }

    /// Debian's architecture name: `arm64`.
    pub fn debian(self) -> &'static str {
        self.row().debian
    }

    /// The OCI platform the image config and manifest list entry carry.
    pub fn platform(self) -> Platform {
        let r = self.row();
        Platform::new("linux", r.architecture, r.variant)
    }

    /// The QEMU target that emulates this host's CPU (`qemu-aarch64` runs arm64v8 code).
    pub fn target(self) -> &'static str {
        match self {
            Host::Amd64 => "x86_64",
            Host::Arm64v8 => "aarch64",
            Host::Arm32v7 | Host::Arm32v6 => "arm",
            Host::I386 => "i386",
            Host::Ppc64le => "ppc64le",
            Host::S390x => "s390x",
            Host::Riscv64 => "riscv64",
            Host::Loong64 => "loongarch64",
            Host::Mips64le => "mips64el",
        }
    }

    /// The width of its pointers: QEMU 11 builds for 64-bit hosts only.
    pub fn bits(self) -> u8 {
        match self {
            Host::Arm32v7 | Host::Arm32v6 | Host::I386 => 32,
            _ => 64,
        }
    }

    /// Whether a machine of this host runs `other`'s programs without an emulator
    /// (itself, and 32-bit x86 on x86-64).
    pub fn runs(self, other: Host) -> bool {
        self == other || (self == Host::Amd64 && other == Host::I386)
    }

    /// The host of a machine whose `std::env::consts::ARCH` is `arch`, if qus has one.
    pub fn of_rust_arch(arch: &str) -> Option<Host> {
        Some(match arch {
            "x86_64" => Host::Amd64,
            "aarch64" => Host::Arm64v8,
            "arm" => Host::Arm32v7,
            "x86" => Host::I386,
            "powerpc64" if cfg!(target_endian = "little") => Host::Ppc64le,
            "s390x" => Host::S390x,
            "riscv64" => Host::Riscv64,
            "loongarch64" => Host::Loong64,
            "mips64" if cfg!(target_endian = "little") => Host::Mips64le,
            _ => return None,
        })
    }

    /// Every host, in the table's order.
    pub fn all() -> impl Iterator<Item = Host> {
        TABLE.iter().map(|r| r.host)
    }

    /// `qus` names of the hosts the built-in matrix builds, joined for error messages.
    pub fn valid_names() -> String {
        TABLE
            .iter()
            .filter(|r| r.offered)
            .map(|r| r.qus)
            .collect::<Vec<_>>()
            .join(", ")
            + " (or their Debian, uname -m and OCI platform spellings)"
    }

    /// Every spelling of every offered host with its qus name, for "did you mean".
    pub fn spellings() -> impl Iterator<Item = (&'static str, &'static str)> {
        TABLE.iter().filter(|r| r.offered).flat_map(|r| {
            [r.qus, r.debian]
                .into_iter()
                .chain(r.aliases.iter().copied())
                .map(move |s| (s, r.qus))
        })
    }

    /// The offered hosts nearest to a name that is none.
    pub fn suggest(typed: &str) -> Vec<String> {
        crate::names::suggest(typed, Host::spellings())
    }
}

impl FromStr for Host {
    type Err = UnknownArch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        TABLE
            .iter()
            .find(|r| r.qus == wanted || r.debian == wanted || r.aliases.contains(&wanted.as_str()))
            .map(|r| r.host)
            .ok_or_else(|| UnknownArch {
                name: s.to_string(),
            })
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Host {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Host {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
/// Parses a comma-separated list of host names (`amd64,aarch64,armhf`), keeping the order
/// given and dropping repeats.
pub fn parse_hosts(list: &str) -> Result<Vec<Host>, UnknownArch> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let h: Host = item.parse()?;
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_normalise_to_one_host() {
        for (input, want) in [
            ("amd64", Host::Amd64),
            ("x86_64", Host::Amd64),
            ("aarch64", Host::Arm64v8),
            ("arm64", Host::Arm64v8),
            ("ARM64V8", Host::Arm64v8),
            ("armhf", Host::Arm32v7),
            ("armv7l", Host::Arm32v7),
            ("linux/arm/v7", Host::Arm32v7),
            ("armel", Host::Arm32v6),
            ("ppc64el", Host::Ppc64le),
            ("i686", Host::I386),
            ("386", Host::I386),
            ("riscv64", Host::Riscv64),
            ("s390x", Host::S390x),
        ] {
            assert_eq!(input.parse::<Host>().unwrap(), want, "{input}");
        }
    }

    #[test]
    fn unknown_name_lists_valid_ones() {
        let err = "sparc".parse::<Host>().unwrap_err().to_string();
        assert!(err.contains("'sparc'"), "{err}");
        assert!(err.contains("arm64v8"), "{err}");
        assert!(err.contains("riscv64"), "{err}");
    }

    #[test]
    fn unknown_name_suggests_the_nearest() {
        let err = "arm46".parse::<Host>().unwrap_err().to_string();
        assert!(err.contains("did you mean arm64v8 (arm64)"), "{err}");
        let err = "aarch46".parse::<Host>().unwrap_err().to_string();
        assert!(err.contains("did you mean arm64v8 (aarch64)?"), "{err}");
        assert!(!Host::valid_names().contains("mips64le"));
    }

    #[test]
    fn platforms_match_oci_spellings() {
        assert_eq!(Host::Arm64v8.platform().to_string(), "linux/arm64/v8");
        assert_eq!(Host::Arm32v7.platform().to_string(), "linux/arm/v7");
        assert_eq!(Host::Arm32v6.platform().to_string(), "linux/arm/v6");
        assert_eq!(Host::I386.platform().to_string(), "linux/386");
        assert_eq!(Host::Ppc64le.debian(), "ppc64el");
    }

    #[test]
    fn every_spelling_is_unique() {
        let mut seen = std::collections::HashMap::new();
        for r in TABLE {
            for n in [r.qus, r.debian].iter().chain(r.aliases) {
                if let Some(prev) = seen.insert(*n, r.host) {
                    assert_eq!(prev, r.host, "{n} names two hosts");
                }
            }
        }
    }

    #[test]
    fn list_keeps_order_and_drops_repeats() {
        assert_eq!(
            parse_hosts("arm64, amd64,aarch64").unwrap(),
            vec![Host::Arm64v8, Host::Amd64]
        );
        assert!(parse_hosts("amd64,bogus").is_err());
    }
}
