//! Builds .deb files byte by byte, hostile ones included: raw tar headers (so `..`, absolute
//! paths and escaping links can be written), raw ar members (so any member can be cut short
//! or renamed), and any of the four compressions.

use std::io::Read;

/// One tar entry.
#[derive(Clone)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: tar::EntryType,
    pub data: Vec<u8>,
    pub link: Option<Vec<u8>>,
    /// Size written in the header (defaults to the data length).
    pub declared: Option<u64>,
}

pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
    Entry {
        path: path.as_bytes().to_vec(),
        kind: tar::EntryType::Regular,
        data: data.into(),
        link: None,
        declared: None,
    }
}

pub fn dir(path: &str) -> Entry {
    Entry {
        kind: tar::EntryType::Directory,
        ..file(path, Vec::new())
    }
}

pub fn symlink(path: &str, target: &str) -> Entry {
    Entry {
        kind: tar::EntryType::Symlink,
        link: Some(target.as_bytes().to_vec()),
        ..file(path, Vec::new())
    }
}

pub fn hardlink(path: &str, target: &str) -> Entry {
    Entry {
        kind: tar::EntryType::Link,
        link: Some(target.as_bytes().to_vec()),
        ..file(path, Vec::new())
    }
}

/// A tar with the entries exactly as given (no path validation).
pub fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let name = &mut h.as_old_mut().name;
        assert!(e.path.len() < name.len(), "test paths must fit a v7 header");
        name[..e.path.len()].copy_from_slice(&e.path);
        h.set_entry_type(e.kind);
        h.set_mode(0o755);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(e.declared.unwrap_or(e.data.len() as u64));
        if let Some(l) = &e.link {
            h.set_link_name_literal(l).unwrap();
        }
        h.set_cksum();
        b.append(&h, &e.data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn xz(data: &[u8]) -> Vec<u8> {
    liblzma::encode_all(data, 6).unwrap()
}

/// xz at preset 0: quick to make, still a few KiB for a run of zeros.
pub fn xz_fast(data: &[u8]) -> Vec<u8> {
    liblzma::encode_all(data, 0).unwrap()
}

pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzEncoder::new(data, flate2::Compression::fast())
        .read_to_end(&mut out)
        .unwrap();
    out
}

pub fn zst(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// An ar archive of the members as given.
pub fn ar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let h = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            1_700_000_000u64,
            0,
            0,
            "100644",
            data.len()
        );
        assert_eq!(h.len(), 60);
        out.extend(h.as_bytes());
        out.extend(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

pub fn control_text(package: &str, arch: &str) -> String {
    control_text_version(package, "1:10.0.0-1", arch)
}

pub fn control_text_version(package: &str, version: &str, arch: &str) -> String {
    format!(
        "Package: {package}\nSource: qemu\nVersion: {version}\nArchitecture: {arch}\nMaintainer: test <t@example.invalid>\nDescription: test package\n"
    )
}

/// `control.tar.xz` with a control file.
pub fn control_member(package: &str, arch: &str) -> Vec<u8> {
    xz(&tar(&[
        dir("./"),
        file("./control", control_text(package, arch).into_bytes()),
    ]))
}

/// A complete .deb: debian-binary, control.tar.xz, data.tar.xz of `entries`.
pub fn deb(arch: &str, entries: &[Entry]) -> Vec<u8> {
    ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.xz", control_member("qemu-user", arch)),
        ("data.tar.xz", xz(&tar(entries))),
    ])
}

pub use qus_source::testkit::elf;

/// The usual data tree of a small good package for `arch`: aarch64 and riscv64 emulators
/// in the ≥ 9.1 layout with one alias.
pub fn good_entries(arch: &str) -> Vec<Entry> {
    vec![
        dir("./"),
        dir("./usr/"),
        dir("./usr/bin/"),
        file("./usr/bin/qemu-aarch64", elf(arch, 4096)),
        file("./usr/bin/qemu-riscv64", elf(arch, 5000)),
        symlink("./usr/bin/qemu-arm64", "qemu-aarch64"),
    ]
}
