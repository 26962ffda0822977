//! QEMU target names (what follows `qemu-` in an emulator's file name).
//!
//! Derived from the binfmt table (`qus_binfmt::TARGETS`), so that every emulator qus puts
//! in an image is one the entrypoint can register, and the table exists once.

/// Every QEMU user-mode emulator qus knows, sorted (`i486` runs on `qemu-i386`, so it is
/// not an emulator of its own).
pub fn known() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = qus_binfmt::TARGETS.iter().map(|t| t.binary).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Whether `name` is a QEMU user-mode emulator.
pub fn is_known(name: &str) -> bool {
    qus_binfmt::TARGETS.iter().any(|t| t.binary == name)
}

/// The Debian architecture whose programs emulator `target` runs, where Debian builds one
/// (`qus test` runs that architecture's busybox-static under it); `None` for targets Debian
/// has no binaries for (big-endian Arm, Alpha, SuperH …), which are only asked their version.
pub fn guest_arch(target: &str) -> Option<&'static str> {
    Some(match target {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "armhf",
        "i386" => "i386",
        "ppc64le" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loongarch64" => "loong64",
        "mips64el" => "mips64el",
        "mipsel" => "mipsel",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn guests_are_debian_arches_of_known_targets() {
        for t in super::known() {
            if let Some(a) = super::guest_arch(t) {
                assert!(qus_source::elf::for_debian_arch(a).is_some(), "{t}: {a}");
            }
        }
        assert_eq!(super::guest_arch("aarch64_be"), None);
    }

    #[test]
    fn thirty_three_emulators_for_thirty_four_entries() {
        assert_eq!(qus_binfmt::TARGETS.len(), 34);
        assert_eq!(super::known().len(), 33);
        assert!(super::is_known("aarch64") && !super::is_known("i486"));
    }
}
