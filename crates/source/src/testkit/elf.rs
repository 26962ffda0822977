//! ELF files that are only headers: enough for the host checks, which read the first 64
//! bytes, and cheap to make for every architecture a test needs.

/// The start of an executable ELF of the given class (1: 32-bit, 2: 64-bit), byte order
/// (1: little, 2: big), `e_machine` and `e_flags`, padded to `len` (at least 64) bytes.
pub fn elf_header(class: u8, data: u8, machine: u16, flags: u32, len: usize) -> Vec<u8> {
    let le = data == 1;
    let mut b = vec![0u8; len.max(64)];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = class;
    b[5] = data;
    b[6] = 1;
    let p16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
    b[16..18].copy_from_slice(&p16(2));
    b[18..20].copy_from_slice(&p16(machine));
    let fo = if class == 2 { 48 } else { 36 };
    let f = if le {
        flags.to_le_bytes()
    } else {
        flags.to_be_bytes()
    };
    b[fo..fo + 4].copy_from_slice(&f);
    // A pattern after the header, so that two files of different lengths differ.
    for (i, x) in b.iter_mut().enumerate().skip(64) {
        *x = (i % 251) as u8;
    }
    b
}

/// The start of an executable ELF for a Debian arch, padded to `len` bytes.
pub fn elf(arch: &str, len: usize) -> Vec<u8> {
    let (class, data, machine, flags): (u8, u8, u16, u32) = match arch {
        "amd64" => (2, 1, 62, 0),
        "arm64" => (2, 1, 183, 0),
        "armhf" => (1, 1, 40, 0x5000400),
        "s390x" => (2, 2, 22, 0),
        "i386" => (1, 1, 3, 0),
        other => panic!("no test ELF for {other}"),
    };
    elf_header(class, data, machine, flags, len)
}
