//! Guest page sizes under QEMU's user mode, and the hosts where they break.
//!
//! Where this comes from (qemu/qemu):
//! - `target/*/cpu-param.h`: `TARGET_PAGE_BITS` is the guest page size a
//!   target's linux-user emulator uses. Under `CONFIG_USER_ONLY`, aarch64
//!   (on Linux hosts, QEMU 9.0+), ppc/ppc64 and alpha define
//!   `TARGET_PAGE_BITS_VARY` instead, and `linux-user/main.c` calls
//!   `set_preferred_target_page_bits(ctz32(host_page_size))` before creating
//!   the CPU: their guest page becomes the host's. sparc64 (and sparc32plus,
//!   the sparc64 CPU with the 32-bit ABI) and or1k use 8K (13 bits); every
//!   other target 4K (12 bits), loongarch64 included.
//! - `linux-user/mmap.c`: when the host page is larger than the guest's,
//!   `target_mmap` maps whole host pages and fills the guest pages of a
//!   partly covered host page by copying (`mmap_frag`), which refuses
//!   shared writable file mappings (EINVAL) and cannot give sub-host-page
//!   protections; programs that rely on them fail.
//!
//! So on a host whose page is larger than a guest's fixed page (16K: Asahi
//! Linux, Raspberry Pi 5 kernels, many loong64 ones; 64K: some arm64 servers
//! and ppc64le distributions), that guest's programs may fail.

use crate::table::Target;

/// The guest page size of `target` under QEMU's user mode, in bytes; None
/// when it follows the host's (`TARGET_PAGE_BITS_VARY`).
pub fn guest_page_size(target: &Target) -> Option<u64> {
    match target.name {
        "aarch64" | "aarch64_be" | "alpha" | "ppc" | "ppc64" | "ppc64le" => None,
        "sparc64" | "sparc32plus" | "or1k" => Some(8 << 10),
        _ => Some(4 << 10),
    }
}

/// `16K`, `64K`, or bytes when not a whole number of KiB.
pub fn shown_size(bytes: u64) -> String {
    if bytes.is_multiple_of(1024) {
        format!("{}K", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

/// The warning for registering `target` on a host with `host_page` byte
/// pages, if its programs may fail there.
pub fn warning(target: &Target, host_page: u64) -> Option<String> {
    let guest = guest_page_size(target)?;
    if host_page <= guest {
        return None;
    }
    Some(format!(
        "qemu-{}: this host's pages are {}, larger than the {} pages QEMU's user mode gives {} programs, so mappings that need {} alignment are copied and shared writable file mappings fail: some {} programs will not run here; use a kernel with 4K pages (Asahi Linux and Raspberry Pi OS ship one) or a VM",
        target.name,
        shown_size(host_page),
        shown_size(guest),
        target.name,
        shown_size(guest),
        target.name
    ))
}

/// The host's page size: `QUS_PAGE_SIZE` when set (tests), else the
/// kernel's (`AT_PAGESZ`, through sysconf). None when unknown or not a
/// number.
pub fn host_page_size(env: &crate::Env) -> Option<u64> {
    if let Some(v) = env.get("QUS_PAGE_SIZE") {
        // Digits only, as the sh entrypoint reads it.
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return v.parse().ok();
    }
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{find, TARGETS};

    fn warned(host_page: u64) -> Vec<&'static str> {
        TARGETS
            .iter()
            .filter(|t| warning(t, host_page).is_some())
            .map(|t| t.name)
            .collect()
    }

    #[test]
    fn a_4k_host_warns_for_nothing() {
        assert!(warned(4096).is_empty());
    }

    #[test]
    fn a_16k_host_warns_for_every_fixed_page_target() {
        let w = warned(16 << 10);
        for varies in ["aarch64", "aarch64_be", "alpha", "ppc", "ppc64", "ppc64le"] {
            assert!(!w.contains(&varies), "{varies}");
        }
        for fixed in [
            "x86_64",
            "i386",
            "arm",
            "riscv64",
            "s390x",
            "loongarch64",
            "sparc64",
        ] {
            assert!(w.contains(&fixed), "{fixed}");
        }
        assert_eq!(w.len(), TARGETS.len() - 6);
        let msg = warning(find("x86_64").unwrap(), 16 << 10).unwrap();
        assert!(msg.starts_with("qemu-x86_64: this host's pages are 16K, larger than the 4K pages"));
        assert!(msg.contains("use a kernel with 4K pages"));
    }

    #[test]
    fn an_8k_host_spares_8k_guests() {
        let w = warned(8 << 10);
        assert!(!w.contains(&"sparc64") && !w.contains(&"or1k") && !w.contains(&"sparc32plus"));
        assert!(w.contains(&"x86_64") && w.contains(&"sparc"));
    }

    #[test]
    fn a_64k_host_warns_for_8k_guests_too() {
        let w = warned(64 << 10);
        assert!(w.contains(&"sparc64") && w.contains(&"or1k"));
        assert!(!w.contains(&"ppc64le"));
        let msg = warning(find("or1k").unwrap(), 64 << 10).unwrap();
        assert!(msg.contains("pages are 64K, larger than the 8K pages"));
    }

    #[test]
    fn sizes_read_as_users_write_them() {
        assert_eq!(shown_size(4096), "4K");
        assert_eq!(shown_size(65536), "64K");
        assert_eq!(shown_size(1000), "1000");
    }
}
