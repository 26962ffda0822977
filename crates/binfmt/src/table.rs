//! The binfmt_misc table: every target of QEMU's `scripts/qemu-binfmt-conf.sh`.
//!
//! This is the one place the magic/mask bytes live. The Rust registrar reads
//! it directly; the in-image sh entrypoint reads a rendering of it
//! ([`crate::sh::sh_data`]), so the two can never disagree about bytes.
//!
//! Checked byte for byte against QEMU master's `scripts/qemu-binfmt-conf.sh`
//! as mirrored at pbo-linaro/qemu-ci commit dda9dd221f94 (QEMU 10.x, 2025):
//! - the mips/mipsel/mipsn32/mipsn32el rows carry the 40-byte magic/mask
//!   (QEMU >= 7.0) that reads `e_flags` to tell o32 from n32;
//! - loongarch64 masks EI_OSABI with 0xfc (QEMU 7.1);
//! - riscv32 and riscv64 are families of their own since QEMU commit
//!   "binfmt: Don't consider riscv{32,64} part of the same family" (Dec 2024):
//!   a riscv64 host gets qemu-riscv32, because most riscv64 CPUs cannot run
//!   32-bit code. The reference TSV this crate started from still had the
//!   older shared `riscv` family.
//!
//! `tests/data/qemu-binfmt-conf.tsv` keeps QEMU's escaped text verbatim and a
//! unit test pins this table to it.

/// One QEMU user-mode target as binfmt_misc sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// QEMU's name for the target; the binfmt_misc entry is `qemu-<name>`.
    pub name: &'static str,
    /// QEMU's family: a host never registers targets of its own family
    /// (it runs them natively), unless asked to.
    pub family: &'static str,
    /// The emulator binary is `qemu-<binary>`: only i486 differs from `name`
    /// (it runs on qemu-i386).
    pub binary: &'static str,
    /// OCI platforms this target runs, in the spelling of
    /// tonistiigi/binfmt's status JSON (empty when OCI has no name for it).
    pub oci: &'static [&'static str],
    /// Bytes the kernel compares at offset 0 of the file.
    pub magic: &'static [u8],
    /// Bits of `magic` that must match.
    pub mask: &'static [u8],
}

impl Target {
    /// Name of the binfmt_misc entry, `qemu-<name>`.
    pub fn entry_name(&self) -> String {
        format!("qemu-{}", self.name)
    }
}

/// Every target of QEMU's script, in the script's `qemu_target_list` order.
pub const TARGETS: &[Target] = &[
    Target {
        name: "i386",
        family: "i386",
        binary: "i386",
        oci: &["linux/386"],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00",
        mask: b"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "i486",
        family: "i386",
        binary: "i386",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x06\x00",
        mask: b"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "alpha",
        family: "alpha",
        binary: "alpha",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x26\x90",
        mask: b"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "arm",
        family: "arm",
        binary: "arm",
        oci: &["linux/arm/v7", "linux/arm/v6"],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "armeb",
        family: "armeb",
        binary: "armeb",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "sparc",
        family: "sparc",
        binary: "sparc",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "sparc32plus",
        family: "sparc",
        binary: "sparc32plus",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x12",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "sparc64",
        family: "sparc",
        binary: "sparc64",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x2b",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "ppc",
        family: "ppc",
        binary: "ppc",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x14",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "ppc64",
        family: "ppc",
        binary: "ppc64",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "ppc64le",
        family: "ppcle",
        binary: "ppc64le",
        oci: &["linux/ppc64le"],
        magic: b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00",
    },
    Target {
        name: "m68k",
        family: "m68k",
        binary: "m68k",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x04",
        mask: b"\xff\xff\xff\xff\xff\xff\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "mips",
        family: "mips",
        binary: "mips",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
    },
    Target {
        name: "mipsel",
        family: "mips",
        binary: "mipsel",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00",
    },
    Target {
        name: "mipsn32",
        family: "mips",
        binary: "mipsn32",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20",
    },
    Target {
        name: "mipsn32el",
        family: "mips",
        binary: "mipsn32el",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x20\x00\x00\x00",
    },
    Target {
        name: "mips64",
        family: "mips",
        binary: "mips64",
        oci: &["linux/mips64"],
        magic: b"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "mips64el",
        family: "mips",
        binary: "mips64el",
        oci: &["linux/mips64le"],
        magic: b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x08\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "sh4",
        family: "sh4",
        binary: "sh4",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x2a\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "sh4eb",
        family: "sh4",
        binary: "sh4eb",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x2a",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "s390x",
        family: "s390x",
        binary: "s390x",
        oci: &["linux/s390x"],
        magic: b"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "aarch64",
        family: "arm",
        binary: "aarch64",
        oci: &["linux/arm64"],
        magic: b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "aarch64_be",
        family: "armeb",
        binary: "aarch64_be",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "hppa",
        family: "hppa",
        binary: "hppa",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x0f",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "riscv32",
        family: "riscv32",
        binary: "riscv32",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "riscv64",
        family: "riscv64",
        binary: "riscv64",
        oci: &["linux/riscv64"],
        magic: b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "xtensa",
        family: "xtensa",
        binary: "xtensa",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x5e\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "xtensaeb",
        family: "xtensaeb",
        binary: "xtensaeb",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x5e",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "microblaze",
        family: "microblaze",
        binary: "microblaze",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xba\xab",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "microblazeel",
        family: "microblazeel",
        binary: "microblazeel",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xab\xba",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "or1k",
        family: "or1k",
        binary: "or1k",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x5c",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff",
    },
    Target {
        name: "x86_64",
        family: "i386",
        binary: "x86_64",
        oci: &["linux/amd64"],
        magic: b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00",
        mask: b"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "hexagon",
        family: "hexagon",
        binary: "hexagon",
        oci: &[],
        magic: b"\x7f\x45\x4c\x46\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xa4\x00",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
    Target {
        name: "loongarch64",
        family: "loongarch",
        binary: "loongarch64",
        oci: &["linux/loong64"],
        magic: b"\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x02\x01",
        mask: b"\xff\xff\xff\xff\xff\xff\xff\xfc\x00\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    },
];

/// Platform spellings accepted where a target is expected (tonistiigi/binfmt's
/// `--install arm64,riscv64` and friends), mapped to QEMU target names.
/// A `linux/` prefix is stripped before lookup.
pub const PLATFORM_ALIASES: &[(&str, &str)] = &[
    ("amd64", "x86_64"),
    ("amd64/v2", "x86_64"),
    ("amd64/v3", "x86_64"),
    ("amd64/v4", "x86_64"),
    ("386", "i386"),
    ("arm64", "aarch64"),
    ("arm64/v8", "aarch64"),
    ("arm", "arm"),
    ("arm/v5", "arm"),
    ("arm/v6", "arm"),
    ("arm/v7", "arm"),
    ("armhf", "arm"),
    ("armel", "arm"),
    ("ppc64le", "ppc64le"),
    ("s390x", "s390x"),
    ("riscv64", "riscv64"),
    ("mips64le", "mips64el"),
    ("mips64", "mips64"),
    ("loong64", "loongarch64"),
    // The other columns of docs/architectures.md's host table: qus/dbhi host names, Debian
    // and `uname -m` spellings, each naming one target.
    ("arm64v8", "aarch64"),
    ("arm32v7", "arm"),
    ("arm32v6", "arm"),
    ("armv7l", "arm"),
    ("armv6l", "arm"),
    ("ppc64el", "ppc64le"),
    ("powerpc64le", "ppc64le"),
    ("i686", "i386"),
    ("x86-64", "x86_64"),
];

/// How `uname -m` (or a Debian/Go arch name) maps to a QEMU target, whose
/// table family is then the host family. Patterns are sh `case` globs, so the
/// sh entrypoint can use them unchanged. Anything unmatched is looked up as a
/// target name as-is, and failing that is its own family (QEMU does the same).
pub const HOST_ALIASES: &[(&str, &str)] = &[
    ("i[3-6]86", "i386"),
    ("amd64", "x86_64"),
    ("powerpc", "ppc"),
    ("ppc64el", "ppc64le"),
    ("armel", "arm"),
    ("armhf", "arm"),
    ("armv[4-9]*l", "arm"),
    ("armv[4-9]*b", "armeb"),
    ("arm64", "aarch64"),
    ("mips64le", "mips64el"),
    ("loong64", "loongarch64"),
];

/// Platforms a host runs without emulation beyond those of its own target:
/// x86_64 CPUs run i386 code. Used for the `supported` list of the status JSON.
pub const NATIVE_EXTRA: &[(&str, &str)] = &[("x86_64", "linux/386")];

/// Finds a target by QEMU name (`aarch64`), entry name (`qemu-aarch64`) or
/// platform spelling (`arm64`, `linux/arm64`, `linux/arm/v7`).
pub fn lookup(name: &str) -> Option<&'static Target> {
    let name = name.strip_prefix("linux/").unwrap_or(name);
    let name = name.strip_prefix("qemu-").unwrap_or(name);
    if let Some(t) = find(name) {
        return Some(t);
    }
    PLATFORM_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .and_then(|(_, target)| find(target))
}

/// Finds a target by its QEMU name only.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The QEMU target a host machine name stands for (`amd64` -> `x86_64`).
pub fn host_target(machine: &str) -> &str {
    HOST_ALIASES
        .iter()
        .find(|(pattern, _)| crate::glob::matches(pattern, machine))
        .map(|(_, target)| *target)
        .unwrap_or(machine)
}

/// The family of a host, from `uname -m`: the family of its target, or the
/// machine name itself when QEMU has no such target.
pub fn host_family(machine: &str) -> &str {
    let target = host_target(machine);
    find(target).map(|t| t.family).unwrap_or(target)
}

/// OCI platforms a host runs natively, for the status JSON.
pub fn native_platforms(machine: &str) -> Vec<&'static str> {
    let target = host_target(machine);
    let mut out: Vec<&'static str> = find(target).map(|t| t.oci.to_vec()).unwrap_or_default();
    for (t, p) in NATIVE_EXTRA {
        if *t == target && !out.contains(p) {
            out.push(p);
        }
    }
    out
}

/// Every target name, space separated, for messages that list valid names.
pub fn names() -> String {
    TARGETS.iter().map(|t| t.name).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes QEMU's escaped text (`\x7fELF\x01...`) into bytes.
    fn unescape(s: &str) -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
                let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 4;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn table_matches_qemu_script_text() {
        let tsv = include_str!("../tests/data/qemu-binfmt-conf.tsv");
        let rows: Vec<Vec<&str>> = tsv
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split('\t').collect())
            .collect();
        assert_eq!(rows.len(), 34);
        assert_eq!(TARGETS.len(), 34);
        for (row, t) in rows.iter().zip(TARGETS) {
            assert_eq!(row[0], t.name);
            assert_eq!(unescape(row[1]), t.magic, "{} magic", t.name);
            assert_eq!(unescape(row[2]), t.mask, "{} mask", t.name);
            assert_eq!(row[3], t.family, "{} family", t.name);
        }
    }

    #[test]
    fn magic_and_mask_have_equal_length_within_binprm_buf() {
        for t in TARGETS {
            assert_eq!(t.magic.len(), t.mask.len(), "{}", t.name);
            assert!(t.magic.len() <= 256, "{}", t.name);
            assert_eq!(&t.magic[..4], b"\x7fELF", "{}", t.name);
        }
    }

    #[test]
    fn mips_masks_tell_o32_from_n32() {
        // QEMU >= 7.0: EF_MIPS_ABI2 (0x20 in e_flags) separates n32 from o32.
        for name in ["mips", "mipsel", "mipsn32", "mipsn32el"] {
            assert_eq!(find(name).unwrap().magic.len(), 40, "{name}");
        }
        assert_eq!(find("mips").unwrap().magic[39], 0x00);
        assert_eq!(find("mipsn32").unwrap().magic[39], 0x20);
        assert_eq!(find("mipsel").unwrap().magic[36], 0x00);
        assert_eq!(find("mipsn32el").unwrap().magic[36], 0x20);
    }

    #[test]
    fn names_are_unique_and_i486_runs_on_i386() {
        let mut names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), TARGETS.len());
        assert_eq!(find("i486").unwrap().binary, "i386");
        assert!(TARGETS
            .iter()
            .filter(|t| t.name != "i486")
            .all(|t| t.binary == t.name));
        assert_eq!(TARGETS.first().unwrap().name, "i386");
        assert_eq!(TARGETS.last().unwrap().name, "loongarch64");
    }

    #[test]
    fn platform_names_map_to_targets() {
        let cases = [
            ("arm64", "aarch64"),
            ("linux/arm64", "aarch64"),
            ("linux/arm64/v8", "aarch64"),
            ("amd64", "x86_64"),
            ("arm", "arm"),
            ("arm/v7", "arm"),
            ("linux/arm/v6", "arm"),
            ("armhf", "arm"),
            ("armel", "arm"),
            ("386", "i386"),
            ("ppc64le", "ppc64le"),
            ("s390x", "s390x"),
            ("riscv64", "riscv64"),
            ("mips64le", "mips64el"),
            ("mips64", "mips64"),
            ("loong64", "loongarch64"),
            ("qemu-aarch64", "aarch64"),
            ("riscv32", "riscv32"),
            ("arm64v8", "aarch64"),
            ("arm32v7", "arm"),
            ("armv7l", "arm"),
            ("ppc64el", "ppc64le"),
            ("i686", "i386"),
        ];
        for (alias, target) in cases {
            assert_eq!(lookup(alias).map(|t| t.name), Some(target), "{alias}");
        }
        assert!(lookup("nope").is_none());
        assert!(lookup("linux/").is_none());
    }

    #[test]
    fn host_families_follow_qemu() {
        let cases = [
            ("x86_64", "i386"),
            ("i686", "i386"),
            ("amd64", "i386"),
            ("aarch64", "arm"),
            ("arm64", "arm"),
            ("armv7l", "arm"),
            ("armv6l", "arm"),
            ("armv7b", "armeb"),
            ("ppc64le", "ppcle"),
            ("ppc64", "ppc"),
            ("s390x", "s390x"),
            ("riscv64", "riscv64"),
            ("mips64", "mips"),
            ("loongarch64", "loongarch"),
            ("sparc64", "sparc"),
            ("vax", "vax"),
        ];
        for (machine, family) in cases {
            assert_eq!(host_family(machine), family, "{machine}");
        }
    }

    #[test]
    fn native_platforms_of_common_hosts() {
        assert_eq!(native_platforms("x86_64"), ["linux/amd64", "linux/386"]);
        assert_eq!(native_platforms("aarch64"), ["linux/arm64"]);
        assert_eq!(native_platforms("armv7l"), ["linux/arm/v7", "linux/arm/v6"]);
        assert!(native_platforms("vax").is_empty());
    }
}
