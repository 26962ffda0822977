//! Just enough ELF to tell which machine a binary runs on.
//!
//! The emulators are copied into images for one host arch; a mislabelled package (or a
//! package for the wrong host) would give an image whose entrypoint cannot even start. The
//! first 64 bytes of a file settle it: class (32/64-bit), byte order and `e_machine`, plus the
//! float ABI flag that separates armhf from armel.

use std::fmt;

/// 32- or 64-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// ELFCLASS32.
    Elf32,
    /// ELFCLASS64.
    Elf64,
}

/// Byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// ELFDATA2LSB.
    Little,
    /// ELFDATA2MSB.
    Big,
}

/// ARM float ABI (from `e_flags`), the one difference between armhf and armel binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArmFloat {
    /// EF_ARM_ABI_FLOAT_HARD.
    Hard,
    /// EF_ARM_ABI_FLOAT_SOFT.
    Soft,
}

const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;

/// What a binary for one Debian arch looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostElf {
    /// Debian arch name.
    pub debian_arch: &'static str,
    /// ELF class.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// `e_machine`.
    pub machine: u16,
    /// ARM float ABI, for the two ARM 32-bit arches.
    pub arm_float: Option<ArmFloat>,
}

use Class::*;
use Endian::*;

/// Every Debian arch (official and ports) with a QEMU user-mode build.
pub const HOSTS: &[HostElf] = &[
    host("amd64", Elf64, Little, 62, None),
    host("arm64", Elf64, Little, 183, None),
    host("armhf", Elf32, Little, 40, Some(ArmFloat::Hard)),
    host("armel", Elf32, Little, 40, Some(ArmFloat::Soft)),
    host("i386", Elf32, Little, 3, None),
    host("ppc64el", Elf64, Little, 21, None),
    host("ppc64", Elf64, Big, 21, None),
    host("powerpc", Elf32, Big, 20, None),
    host("s390x", Elf64, Big, 22, None),
    host("riscv64", Elf64, Little, 243, None),
    host("mips64el", Elf64, Little, 8, None),
    host("mipsel", Elf32, Little, 8, None),
    host("loong64", Elf64, Little, 258, None),
    host("sparc64", Elf64, Big, 43, None),
    host("alpha", Elf64, Little, 0x9026, None),
    host("hppa", Elf32, Big, 15, None),
    host("m68k", Elf32, Big, 4, None),
    host("sh4", Elf32, Little, 42, None),
];

const fn host(
    debian_arch: &'static str,
    class: Class,
    endian: Endian,
    machine: u16,
    arm_float: Option<ArmFloat>,
) -> HostElf {
    HostElf {
        debian_arch,
        class,
        endian,
        machine,
        arm_float,
    }
}

/// The ELF description of a Debian arch, or `None` if it is not in [`HOSTS`].
pub fn for_debian_arch(arch: &str) -> Option<&'static HostElf> {
    HOSTS.iter().find(|h| h.debian_arch == arch)
}

/// The fields of an ELF header that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// ELF class.
    pub class: Class,
    /// Byte order.
    pub endian: Endian,
    /// `e_type` (2 = executable, 3 = shared object / PIE).
    pub kind: u16,
    /// `e_machine`.
    pub machine: u16,
    /// `e_flags`.
    pub flags: u32,
}

/// Bytes to read from the start of a file to call [`parse`].
pub const HEADER_LEN: usize = 64;

/// What a file is instead of the ELF file that was expected ("a shell script", "an ELF
/// 64-bit LSB aarch64 executable"), for messages that name the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{found}")]
pub struct NotExpected {
    /// The description.
    pub found: String,
}

impl NotExpected {
    fn new(found: impl Into<String>) -> NotExpected {
        NotExpected {
            found: found.into(),
        }
    }
}

/// Reads an ELF header; the error says what the bytes look like instead.
pub fn parse(bytes: &[u8]) -> Result<Header, NotExpected> {
    if bytes.len() < 4 || bytes[..4] != *b"\x7fELF" {
        return Err(NotExpected::new(describe_non_elf(bytes)));
    }
    let short = || NotExpected::new(format!("a truncated ELF file ({} bytes)", bytes.len()));
    if bytes.len() < 52 {
        return Err(short());
    }
    let class = match bytes[4] {
        1 => Elf32,
        2 => Elf64,
        c => {
            return Err(NotExpected::new(format!(
                "an ELF file with an invalid class {c}"
            )))
        }
    };
    let endian = match bytes[5] {
        1 => Little,
        2 => Big,
        d => {
            return Err(NotExpected::new(format!(
                "an ELF file with an invalid byte order {d}"
            )))
        }
    };
    if class == Elf64 && bytes.len() < 64 {
        return Err(short());
    }
    let u16_at = |o: usize| {
        let b = [bytes[o], bytes[o + 1]];
        match endian {
            Little => u16::from_le_bytes(b),
            Big => u16::from_be_bytes(b),
        }
    };
    let u32_at = |o: usize| {
        let b = [bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]];
        match endian {
            Little => u32::from_le_bytes(b),
            Big => u32::from_be_bytes(b),
        }
    };
    Ok(Header {
        class,
        endian,
        kind: u16_at(16),
        machine: u16_at(18),
        flags: u32_at(if class == Elf64 { 48 } else { 36 }),
    })
}

/// The program interpreter a dynamically linked ELF executable names (`PT_INTERP`, e.g.
/// `/lib64/ld-linux-x86-64.so.2`), or `None` for a static one. `bytes` must hold the
/// program headers and the interpreter's name; they follow the ELF header in every linker's
/// output, so the first few KiB of a file are enough (a header pointing past `bytes` is an
/// error, never a guess).
pub fn interpreter(bytes: &[u8]) -> Result<Option<String>, NotExpected> {
    let h = parse(bytes)?;
    let at = |o: usize, n: usize| -> Result<u64, NotExpected> {
        let b = bytes
            .get(o..o + n)
            .ok_or_else(|| NotExpected::new("an ELF file whose program headers are cut off"))?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = u64::from(match h.endian {
                Little => b[n - 1 - i],
                Big => b[i],
            });
            v = (v << 8) | byte;
        }
        Ok(v)
    };
    let (phoff, phentsize, phnum) = match h.class {
        Elf64 => (at(32, 8)?, at(54, 2)?, at(56, 2)?),
        Elf32 => (at(28, 4)?, at(42, 2)?, at(44, 2)?),
    };
    for i in 0..phnum {
        let ph = usize::try_from(phoff + i * phentsize)
            .map_err(|_| NotExpected::new("an ELF file with program headers out of range"))?;
        const PT_INTERP: u64 = 3;
        if at(ph, 4)? != PT_INTERP {
            continue;
        }
        let (offset, size) = match h.class {
            Elf64 => (at(ph + 8, 8)?, at(ph + 32, 8)?),
            Elf32 => (at(ph + 4, 4)?, at(ph + 16, 4)?),
        };
        let name = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(o, n)| bytes.get(o..o.checked_add(n)?))
            .ok_or_else(|| NotExpected::new("an ELF file whose interpreter name is cut off"))?;
        let name = name.split(|b| *b == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(name).into_owned()));
    }
    Ok(None)
}

impl HostElf {
    /// Checks the first bytes of a file; the error describes what the file is instead.
    pub fn check(&self, bytes: &[u8]) -> Result<(), NotExpected> {
        let h = parse(bytes)?;
        let matches = h.class == self.class
            && h.endian == self.endian
            && h.machine == self.machine
            && matches!(h.kind, 2 | 3)
            && match self.arm_float {
                Some(ArmFloat::Hard) => h.flags & EF_ARM_ABI_FLOAT_SOFT == 0,
                Some(ArmFloat::Soft) => h.flags & EF_ARM_ABI_FLOAT_HARD == 0,
                None => true,
            };
        if matches {
            Ok(())
        } else {
            Err(NotExpected::new(format!("an ELF {}", h)))
        }
    }
}

impl fmt::Display for HostElf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            class_name(self.class),
            endian_name(self.endian),
            machine_name(self.machine)
        )?;
        match self.arm_float {
            Some(ArmFloat::Hard) => write!(f, " hard-float"),
            Some(ArmFloat::Soft) => write!(f, " soft-float"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            class_name(self.class),
            endian_name(self.endian),
            machine_name(self.machine)
        )?;
        if self.machine == 40 {
            if self.flags & EF_ARM_ABI_FLOAT_HARD != 0 {
                write!(f, " hard-float")?;
            } else if self.flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
                write!(f, " soft-float")?;
            }
        }
        match self.kind {
            2 | 3 => Ok(()),
            1 => write!(f, " relocatable object"),
            4 => write!(f, " core dump"),
            k => write!(f, " of type {k}"),
        }
    }
}

fn class_name(c: Class) -> &'static str {
    match c {
        Elf32 => "32-bit",
        Elf64 => "64-bit",
    }
}

fn endian_name(e: Endian) -> &'static str {
    match e {
        Little => "LSB",
        Big => "MSB",
    }
}

fn machine_name(m: u16) -> String {
    let name = match m {
        3 => "i386",
        4 => "m68k",
        8 => "mips",
        15 => "hppa",
        20 => "powerpc",
        21 => "ppc64",
        22 => "s390",
        40 => "arm",
        42 => "sh",
        43 => "sparcv9",
        62 => "x86-64",
        183 => "aarch64",
        243 => "riscv",
        258 => "loongarch",
        0x9026 => "alpha",
        _ => return format!("machine {m}"),
    };
    name.to_string()
}

fn describe_non_elf(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".into();
    }
    if let Some(rest) = bytes.strip_prefix(b"#!") {
        let line: String = String::from_utf8_lossy(rest)
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(40)
            .collect();
        return format!("a script (#!{})", line.trim());
    }
    let head: String = bytes
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    format!("not an ELF file (starts with {head})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(class: u8, data: u8, machine: u16, flags: u32) -> Vec<u8> {
        crate::testkit::elf_header(class, data, machine, flags, 64)
    }

    #[test]
    fn hosts_accept_their_own_binaries() {
        let amd64 = for_debian_arch("amd64").unwrap();
        assert!(amd64.check(&elf(2, 1, 62, 0)).is_ok());
        let err = amd64.check(&elf(2, 1, 183, 0)).unwrap_err();
        assert_eq!(err.found, "an ELF 64-bit LSB aarch64");
        let s390x = for_debian_arch("s390x").unwrap();
        assert!(s390x.check(&elf(2, 2, 22, 0)).is_ok());
        assert!(s390x.check(&elf(2, 1, 22, 0)).is_err());
        let armhf = for_debian_arch("armhf").unwrap();
        assert!(armhf.check(&elf(1, 1, 40, 0x5000400)).is_ok());
        assert!(armhf.check(&elf(1, 1, 40, 0x5000200)).is_err());
        assert!(for_debian_arch("armel")
            .unwrap()
            .check(&elf(1, 1, 40, 0x5000200))
            .is_ok());
    }

    /// An ELF64 LSB header with program headers at 64: a PT_LOAD, then a PT_INTERP naming
    /// `interp` when given.
    fn with_phdrs(interp: Option<&str>) -> Vec<u8> {
        let mut b = elf(2, 1, 62, 0);
        b.resize(64, 0);
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&2u16.to_le_bytes());
        let name_at = 64 + 2 * 56;
        for (i, kind) in [1u32, if interp.is_some() { 3 } else { 6 }]
            .iter()
            .enumerate()
        {
            let mut ph = vec![0u8; 56];
            ph[0..4].copy_from_slice(&kind.to_le_bytes());
            if *kind == 3 {
                ph[8..16].copy_from_slice(&(name_at as u64).to_le_bytes());
                let n = interp.unwrap().len() as u64 + 1;
                ph[32..40].copy_from_slice(&n.to_le_bytes());
            }
            assert_eq!(b.len(), 64 + i * 56);
            b.extend(ph);
        }
        if let Some(i) = interp {
            b.extend(i.as_bytes());
            b.push(0);
        }
        b
    }

    #[test]
    fn interpreter_tells_static_from_dynamic() {
        assert_eq!(interpreter(&with_phdrs(None)), Ok(None));
        let ld = "/lib64/ld-linux-x86-64.so.2";
        assert_eq!(interpreter(&with_phdrs(Some(ld))), Ok(Some(ld.to_string())));
        // Cut before the name, or before the program headers: an error, never "static".
        let full = with_phdrs(Some(ld));
        assert!(interpreter(&full[..full.len() - 5]).is_err());
        assert!(interpreter(&full[..100]).is_err());
    }

    #[test]
    fn describes_non_elf() {
        let amd64 = for_debian_arch("amd64").unwrap();
        assert_eq!(
            amd64.check(b"#!/bin/sh\necho hi\n").unwrap_err().found,
            "a script (#!/bin/sh)"
        );
        assert_eq!(amd64.check(b"").unwrap_err().found, "an empty file");
        assert!(amd64
            .check(b"\x7fELF\x02")
            .unwrap_err()
            .found
            .contains("truncated"));
    }
}
