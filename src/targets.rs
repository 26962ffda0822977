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

#[cfg(test)]
mod tests {
    #[test]
    fn thirty_three_emulators_for_thirty_four_entries() {
        assert_eq!(qus_binfmt::TARGETS.len(), 34);
        assert_eq!(super::known().len(), 33);
        assert!(super::is_known("aarch64") && !super::is_known("i486"));
    }
}
