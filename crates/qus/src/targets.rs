//! QEMU target names (what follows `qemu-` in an emulator's file name).
//!
//! The list is derived from the binfmt table so that a target qus can put in an image is
//! always one the entrypoint can register.

/// Every QEMU user-mode target qus knows, sorted.
pub fn known() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = KNOWN.to_vec();
    v.sort_unstable();
    v
}

/// Whether `name` is a QEMU user-mode target.
pub fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
}

const KNOWN: &[&str] = &[
    "aarch64", "aarch64_be", "alpha", "arm", "armeb", "hexagon", "hppa", "i386", "loongarch64",
    "m68k", "microblaze", "microblazeel", "mips", "mips64", "mips64el", "mipsel", "mipsn32",
    "mipsn32el", "or1k", "ppc", "ppc64", "ppc64le", "riscv32", "riscv64", "s390x", "sh4", "sh4eb",
    "sparc", "sparc32plus", "sparc64", "x86_64", "xtensa", "xtensaeb",
];
