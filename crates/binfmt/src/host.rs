//! What the host is: its architecture, its kernel release, and whether this
//! process sees the host's binfmt_misc or a user namespace's own.
//!
//! The host's architecture decides which targets are never registered (the
//! host's own, which would hand every native binary to QEMU) and which
//! platforms the status calls native, so it must come from a source that
//! QEMU's user mode does not rewrite: an image of another architecture may
//! itself run under emulation (`docker run --platform linux/arm64` on an
//! x86_64 host with qemu-aarch64 registered). What qemu-user rewrites
//! (linux-user/syscall.c): uname(2)'s `machine` (the guest's), the auxv and
//! with it AT_HWCAP/AT_PLATFORM, `/proc/self/exe` and `/proc/<own pid>/exe`
//! (the guest binary), `/proc/self/{maps,stat,auxv,cmdline}`, and
//! `/proc/cpuinfo` for several guests. What it leaves alone:
//! 1. `/proc/sys/kernel/arch` (the kernel's `UTS_MACHINE`, Linux 6.1+);
//! 2. the executable the kernel really runs, read through a path that is not
//!    the process's own `/proc/self` or `/proc/<pid>`: under binfmt_misc that
//!    is the emulator, an ELF of the host's architecture. Rust reads
//!    `/proc/thread-self/exe`; the sh entrypoint has a child process read
//!    `/proc/$$/exe` (another pid, so qemu passes it through). Its ELF header
//!    is matched against the table's own magic/mask, as the kernel would.
//!
//! So: `QUS_HOST_ARCH` if set, else `/proc/sys/kernel/arch`, else `uname -m`
//! checked against the running executable (a different family means
//! emulation, and the executable's target is the host); when neither can be
//! read, [`detect`] refuses rather than guess.

use std::fs;
use std::io::Read;

use crate::error::{Error, Userns};
use crate::request::Env;
use crate::table::{self, Target};

/// The first kernel with the F flag (`MISC_FMT_OPEN_FILE`, Linux 4.8).
pub const FIX_BINARY_SINCE: (u32, u32) = (4, 8);

/// The first kernel where a user namespace gets a binfmt_misc of its own
/// (Linux 6.7), and where the entries of an instance go with its last mount.
pub const PRIVATE_BINFMT_MISC_SINCE: (u32, u32) = (6, 7);

/// readlink of `/proc/self/ns/user` in the initial user namespace
/// (`PROC_USER_INIT_INO`, 0xEFFFFFFD).
pub const INITIAL_USER_NS: &str = "user:[4026531837]";

/// How the host's architecture was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `QUS_HOST_ARCH`.
    Override,
    /// `/proc/sys/kernel/arch`.
    KernelArch,
    /// `uname -m`, confirmed or corrected by the executable the kernel runs.
    Executable,
}

/// The host as registration needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its machine name (`x86_64`, `aarch64`, …).
    pub machine: String,
    /// What `uname -m` says in this process (the guest's under emulation).
    pub claimed: String,
    /// Where `machine` came from.
    pub source: Source,
}

impl Host {
    /// Whether this process runs under emulation: what it claims to be is
    /// of another family than the host.
    pub fn emulated(&self) -> bool {
        table::host_family(&self.claimed) != table::host_family(&self.machine)
    }
}

/// Finds the host's architecture (see the module documentation).
pub fn detect(env: &Env) -> Result<Host, Error> {
    let claimed = uname_machine();
    if let Some(m) = env.get("QUS_HOST_ARCH") {
        return Ok(Host {
            machine: m.to_string(),
            claimed: m.to_string(),
            source: Source::Override,
        });
    }
    if let Some(machine) = kernel_arch() {
        return Ok(Host {
            machine,
            claimed,
            source: Source::KernelArch,
        });
    }
    let header = exe_header().ok_or(Error::HostUnknown)?;
    let running = elf_target(&header).ok_or(Error::HostUnknown)?;
    let machine = if running.family == table::host_family(&claimed) {
        // Same family: uname is the finer answer (i686 vs i386, armv7l).
        claimed.clone()
    } else {
        running.name.to_string()
    };
    Ok(Host {
        machine,
        claimed,
        source: Source::Executable,
    })
}

/// `/proc/sys/kernel/arch` (Linux 6.1+), when it has something to say.
pub fn kernel_arch() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/arch")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The first 64 bytes of the executable the kernel runs for this process,
/// through `/proc/thread-self/exe` (qemu-user fakes only `/proc/self/exe`
/// and `/proc/<pid>/exe`).
pub fn exe_header() -> Option<Vec<u8>> {
    let mut f = fs::File::open("/proc/thread-self/exe").ok()?;
    let mut buf = Vec::with_capacity(64);
    f.by_ref().take(64).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// The first target of the table whose magic and mask match an ELF header:
/// what the kernel's binfmt_misc would pick for that file.
pub fn elf_target(header: &[u8]) -> Option<&'static Target> {
    table::TARGETS.iter().find(|t| {
        header.len() >= t.magic.len()
            && t.magic
                .iter()
                .zip(t.mask)
                .zip(header)
                .all(|((m, k), h)| h & k == m & k)
    })
}

/// uname(2)'s `machine`: what this process's architecture claims to be.
pub fn uname_machine() -> String {
    // SAFETY: uname fills the zeroed struct; fields are NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(u.machine.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The kernel release as (major, minor): `QUS_KERNEL_RELEASE` (tests
/// simulate old kernels with it) or `/proc/sys/kernel/osrelease`. None when
/// neither reads as `N.N…`.
pub fn kernel_release(env: &Env) -> Option<(u32, u32)> {
    let text = match env.get("QUS_KERNEL_RELEASE") {
        Some(r) => r.to_string(),
        None => fs::read_to_string("/proc/sys/kernel/osrelease").ok()?,
    };
    parse_release(text.trim())
}

/// `4.18.0-553.el8.x86_64` → (4, 18).
pub fn parse_release(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Whether a kernel of that release has at least `since`; an unknown
/// release is taken to be recent (the kernel still has the last word).
pub fn at_least(release: Option<(u32, u32)>, since: (u32, u32)) -> bool {
    release.is_none_or(|r| r >= since)
}

/// Whether this process runs in a user namespace other than the initial
/// one: `/proc/self/ns/user` is not [`INITIAL_USER_NS`], or, where that link
/// cannot be read, `/proc/self/uid_map` is not the identity map. When
/// neither can be read, no: a warning must not come from a guess.
pub fn in_user_namespace() -> bool {
    if let Ok(link) = fs::read_link("/proc/self/ns/user") {
        return link.as_os_str() != INITIAL_USER_NS;
    }
    match fs::read_to_string("/proc/self/uid_map") {
        Ok(map) => map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"],
        Err(_) => false,
    }
}

/// The user namespace situation for a kernel of `release`.
pub fn userns(release: Option<(u32, u32)>) -> Userns {
    if !in_user_namespace() {
        Userns::Initial
    } else if at_least(release, PRIVATE_BINFMT_MISC_SINCE) {
        Userns::Private
    } else {
        Userns::Shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: [u8; 2]) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        h[6] = 1;
        // ET_DYN: static-pie emulators are, and the masks allow it.
        if data == 1 {
            h[16] = 3;
            h[18..20].copy_from_slice(&machine);
        } else {
            h[17] = 3;
            h[18] = machine[1];
            h[19] = machine[0];
        }
        h
    }

    #[test]
    fn elf_headers_name_their_target() {
        let t = |h: &[u8]| elf_target(h).map(|t| t.name);
        assert_eq!(t(&header(2, 1, [0x3e, 0])), Some("x86_64"));
        assert_eq!(t(&header(2, 1, [0xb7, 0])), Some("aarch64"));
        assert_eq!(t(&header(1, 1, [0x28, 0])), Some("arm"));
        assert_eq!(t(&header(1, 1, [3, 0])), Some("i386"));
        assert_eq!(t(&header(2, 2, [0x16, 0])), Some("s390x"));
        assert_eq!(t(&header(2, 1, [0xf3, 0])), Some("riscv64"));
        assert_eq!(t(&header(2, 1, [0x15, 0])), Some("ppc64le"));
        assert_eq!(t(b"\x7fELF"), None);
        assert_eq!(t(b"#!/bin/sh\n"), None);
        // This very test binary is one of the table's.
        let me = exe_header().expect("/proc/thread-self/exe");
        let mine = elf_target(&me).expect("a known ELF");
        assert_eq!(mine.family, table::host_family(&uname_machine()));
    }

    #[test]
    fn releases_and_thresholds() {
        assert_eq!(parse_release("3.10.0-1160.el7.x86_64"), Some((3, 10)));
        assert_eq!(parse_release("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(parse_release("6"), None);
        assert_eq!(parse_release("x"), None);
        assert!(!at_least(Some((3, 10)), FIX_BINARY_SINCE));
        assert!(at_least(Some((4, 8)), FIX_BINARY_SINCE));
        assert!(at_least(None, FIX_BINARY_SINCE));
        assert!(!at_least(Some((6, 6)), PRIVATE_BINFMT_MISC_SINCE));
        let env = Env::from_pairs([("QUS_KERNEL_RELEASE", "4.7.10")]);
        assert_eq!(kernel_release(&env), Some((4, 7)));
    }

    #[test]
    fn host_detection_prefers_what_emulation_does_not_rewrite() {
        let env = Env::from_pairs([("QUS_HOST_ARCH", "riscv64")]);
        let h = detect(&env).unwrap();
        assert_eq!(
            (h.machine.as_str(), h.source),
            ("riscv64", Source::Override)
        );
        let h = detect(&Env::default()).unwrap();
        // Natively, every source agrees with uname.
        assert!(!h.emulated(), "{h:?}");
        let emulated = Host {
            machine: "x86_64".into(),
            claimed: "aarch64".into(),
            source: Source::Executable,
        };
        assert!(emulated.emulated());
        let compat = Host {
            machine: "x86_64".into(),
            claimed: "i686".into(),
            source: Source::KernelArch,
        };
        assert!(!compat.emulated());
    }
}
