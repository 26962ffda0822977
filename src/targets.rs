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

/// The emulator a name stands for, in any spelling of docs/architectures.md: a QEMU
/// target (`aarch64`), an entry name (`qemu-aarch64`), an OCI platform (`linux/arm64`,
/// `arm/v7`), a qus host, Debian or `uname -m` name (`arm64v8`, `armhf`, `armv7l`, `i686`).
/// Each of these names one emulator, so none is ambiguous.
pub fn parse(name: &str) -> Result<&'static str, String> {
    let wanted = name.trim().to_ascii_lowercase();
    if let Some(t) = qus_binfmt::TARGETS.iter().find(|t| t.binary == wanted) {
        return Ok(t.binary);
    }
    if let Some(t) = qus_binfmt::table::lookup(&wanted) {
        return Ok(t.binary);
    }
    if let Ok(h) = wanted.parse::<crate::arch::Host>() {
        return Ok(h.target());
    }
    if let Some(t) = qus_binfmt::table::find(qus_binfmt::table::host_target(&wanted)) {
        return Ok(t.binary);
    }
    Err(format!(
        "unknown QEMU target '{name}': {}valid targets are {} (or an OCI platform, Debian or \
         uname -m name of one: docs/architectures.md)",
        crate::names::did_you_mean(&suggest(&wanted)),
        known().join(", ")
    ))
}

/// The emulators nearest to a name that is none, by any of their spellings.
pub fn suggest(typed: &str) -> Vec<String> {
    let mut spellings: Vec<(&str, &str)> = known().into_iter().map(|t| (t, t)).collect();
    for (alias, target) in qus_binfmt::table::PLATFORM_ALIASES {
        spellings.push((alias, target));
    }
    for (spelling, host) in crate::arch::Host::spellings() {
        if let Ok(h) = host.parse::<crate::arch::Host>() {
            spellings.push((spelling, h.target()));
        }
    }
    crate::names::suggest(typed, spellings)
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
    fn every_spelling_names_one_emulator() {
        for (typed, want) in [
            ("aarch64", "aarch64"),
            ("qemu-aarch64", "aarch64"),
            ("linux/arm64", "aarch64"),
            ("arm64", "aarch64"),
            ("arm64v8", "aarch64"),
            ("linux/arm/v7", "arm"),
            ("armhf", "arm"),
            ("armel", "arm"),
            ("armv7l", "arm"),
            ("arm32v6", "arm"),
            ("i686", "i386"),
            ("linux/386", "i386"),
            ("ppc64el", "ppc64le"),
            ("mips64le", "mips64el"),
            ("loong64", "loongarch64"),
            ("amd64", "x86_64"),
            ("X86_64", "x86_64"),
            ("ppc64", "ppc64"),
        ] {
            assert_eq!(super::parse(typed), Ok(want), "{typed}");
        }
    }

    #[test]
    fn unknown_target_suggests() {
        let e = super::parse("arm46").unwrap_err();
        assert!(e.contains("did you mean aarch64 (arm64)"), "{e}");
        let e = super::parse("aarch46").unwrap_err();
        assert!(e.contains("did you mean aarch64?"), "{e}");
        let e = super::parse("riscv").unwrap_err();
        assert!(e.contains("riscv32") && e.contains("riscv64"), "{e}");
    }

    #[test]
    fn thirty_three_emulators_for_thirty_four_entries() {
        assert_eq!(qus_binfmt::TARGETS.len(), 34);
        assert_eq!(super::known().len(), 33);
        assert!(super::is_known("aarch64") && !super::is_known("i486"));
    }
}
