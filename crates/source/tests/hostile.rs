//! Hostile packages, one test each: every one ends in a typed error that names the package
//! file (and the entry or member), and nothing is left in the work dir or beside it.

use std::path::PathBuf;

use qus_source::{extract_emulators, extract_file, EmulatorRequest, Error, FileRequest, Limits};

use crate::support::debgen::{self, dir, elf, file, good_entries, hardlink, symlink};
use crate::support::tree;

/// A temp folder holding `pkg.deb` and an empty `work/` folder.
struct Case {
    root: tempfile::TempDir,
    deb: PathBuf,
    work: PathBuf,
}

impl Case {
    fn new(bytes: &[u8]) -> Case {
        let root = tempfile::tempdir().unwrap();
        let deb = root.path().join("pkg.deb");
        std::fs::write(&deb, bytes).unwrap();
        let work = root.path().join("work");
        std::fs::create_dir(&work).unwrap();
        Case { root, deb, work }
    }

    fn extract(&self, arch: &str, targets: Option<&[&str]>, limits: &Limits) -> Error {
        let mut req = EmulatorRequest::new(arch);
        if let Some(t) = targets {
            req = req.targets(t.iter().copied());
        }
        let err = extract_emulators(&self.deb, &self.work, &req, limits)
            .expect_err("a hostile package must be refused");
        self.assert_clean(&err);
        err
    }

    /// The error names the package file, and only `pkg.deb` and an empty `work/` exist.
    fn assert_clean(&self, err: &Error) {
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(
            msg.contains(&self.deb.display().to_string()),
            "message does not name the package: {msg}"
        );
        assert_eq!(tree(self.root.path()), ["pkg.deb", "work"], "after: {msg}");
    }
}

fn all() -> Limits {
    Limits::default()
}

fn data_deb(entries: &[debgen::Entry]) -> Vec<u8> {
    debgen::deb("amd64", entries)
}

fn members_of_good_deb() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.xz",
            debgen::control_member("qemu-user", "amd64"),
        ),
        (
            "data.tar.xz",
            debgen::xz(&debgen::tar(&good_entries("amd64"))),
        ),
    ]
}

/// Offset of the end of member `i`'s header in an ar built from `members`.
fn member_data_start(members: &[(&str, Vec<u8>)], i: usize) -> usize {
    let mut off = 8;
    for (k, (_, d)) in members.iter().enumerate() {
        off += 60;
        if k == i {
            return off;
        }
        off += d.len() + d.len() % 2;
    }
    unreachable!()
}

#[test]
fn good_package_passes() {
    // The baseline every hostile case below departs from.
    let c = Case::new(&data_deb(&good_entries("amd64")));
    let emus = extract_emulators(&c.deb, &c.work, &EmulatorRequest::new("amd64"), &all()).unwrap();
    let t: Vec<_> = emus.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(t, ["aarch64", "riscv64"]);
    assert_eq!(
        tree(&c.work),
        ["qemu-aarch64-static", "qemu-riscv64-static"]
    );
}

#[test]
fn gzip_zstd_and_plain_data_tar_are_read() {
    let data = debgen::tar(&good_entries("amd64"));
    for (name, bytes) in [
        ("data.tar.gz", debgen::gz(&data)),
        ("data.tar.zst", debgen::zst(&data)),
        ("data.tar", data.clone()),
    ] {
        let c = Case::new(&debgen::ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            (
                "control.tar.xz",
                debgen::control_member("qemu-user", "amd64"),
            ),
            (name, bytes),
        ]));
        let req = EmulatorRequest::new("amd64").targets(["riscv64"]);
        let emus = extract_emulators(&c.deb, &c.work, &req, &all()).unwrap();
        assert_eq!(emus[0].size, 5000, "{name}");
    }
}

#[test]
fn not_an_ar_file() {
    let c = Case::new(b"#!/bin/sh\necho this is not a package\n");
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::NotAPackage { .. }), "{err}");
}

#[test]
fn empty_file() {
    let c = Case::new(b"");
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::NotAPackage { .. }), "{err}");
}

#[test]
fn rpm_is_read_as_an_rpm() {
    // The rpm magic sends the file to the rpm reader (tests/rpm.rs), whose error names it.
    let mut rpm = vec![0xed, 0xab, 0xee, 0xdb, 3, 0];
    rpm.extend([0u8; 90]);
    let c = Case::new(&rpm);
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::BadRpm { part: "lead", .. }), "{err}");
}

fn truncated_in(member: usize, name: &str) {
    let members = members_of_good_deb();
    let bytes = debgen::ar(&members);
    // Cut two bytes into the member's data.
    let cut = member_data_start(&members, member) + 2;
    let c = Case::new(&bytes[..cut]);
    let err = c.extract("amd64", None, &all());
    match &err {
        Error::Truncated { member, .. } => assert_eq!(member, name, "{err}"),
        _ => panic!("{err}"),
    }
    assert!(err.to_string().contains(name));
}

#[test]
fn truncated_in_debian_binary() {
    truncated_in(0, "debian-binary");
}

#[test]
fn truncated_in_control() {
    truncated_in(1, "control.tar.xz");
}

#[test]
fn truncated_in_data() {
    truncated_in(2, "data.tar.xz");
}

#[test]
fn truncated_in_a_member_header() {
    let members = members_of_good_deb();
    let bytes = debgen::ar(&members);
    let cut = member_data_start(&members, 2) - 30;
    let c = Case::new(&bytes[..cut]);
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn data_tar_cut_inside_an_emulator() {
    // An uncompressed data.tar whose last file claims more bytes than follow: the ar layer
    // is intact, the tar is not.
    let mut entries = good_entries("amd64");
    entries.truncate(4);
    let mut t = debgen::tar(&entries);
    t.truncate(t.len() - 1024 - 2048); // drop the end-of-archive blocks and part of the data
    let c = Case::new(&debgen::ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.xz",
            debgen::control_member("qemu-user", "amd64"),
        ),
        ("data.tar", t),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::Corrupt { member, .. } if member == "data.tar"),
        "{err}"
    );
}

#[test]
fn dotdot_path() {
    let c = Case::new(&data_deb(&[
        dir("./"),
        file("./usr/bin/../../../escaped", elf("amd64", 100)),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::PathEscape { entry, .. } if entry.contains("escaped")),
        "{err}"
    );
    assert!(!c.root.path().parent().unwrap().join("escaped").exists());
}

#[test]
fn absolute_path() {
    let c = Case::new(&data_deb(&[file(
        "/usr/bin/qemu-aarch64",
        elf("amd64", 100),
    )]));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::PathEscape { reason, .. } if reason.contains("absolute")),
        "{err}"
    );
}

#[test]
fn symlink_escape_relative() {
    let mut e = good_entries("amd64");
    e.push(symlink(
        "./usr/bin/qemu-x86_64",
        "../../../../../etc/passwd",
    ));
    let c = Case::new(&data_deb(&e));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::SymlinkEscape { .. }), "{err}");
}

#[test]
fn symlink_escape_absolute_alias() {
    // An emulator alias qus must follow, pointing at the host's file system.
    let mut e = good_entries("amd64");
    e.push(symlink("./usr/bin/qemu-x86_64", "/etc/passwd"));
    let c = Case::new(&data_deb(&e));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::SymlinkEscape { target, .. } if target == "/etc/passwd"),
        "{err}"
    );
}

#[test]
fn hardlink_escape() {
    let mut e = good_entries("amd64");
    e.push(hardlink("./usr/bin/qemu-x86_64", "../../../etc/shadow"));
    let c = Case::new(&data_deb(&e));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::HardlinkEscape { .. }), "{err}");
}

#[test]
fn symlink_loop() {
    let mut e = good_entries("amd64");
    e.push(symlink("./usr/bin/qemu-ppc", "qemu-ppc64"));
    e.push(symlink("./usr/bin/qemu-ppc64", "qemu-ppc"));
    let c = Case::new(&data_deb(&e));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::SymlinkLoop { .. }), "{err}");
}

#[test]
fn dangling_alias() {
    let mut e = good_entries("amd64");
    e.push(symlink("./usr/bin/qemu-armhf", "qemu-arm"));
    let c = Case::new(&data_deb(&e));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::DanglingLink { .. }), "{err}");
}

#[test]
fn entry_through_a_symlinked_folder() {
    let c = Case::new(&data_deb(&[
        dir("./"),
        dir("./usr/"),
        symlink("./usr/bin", "/tmp"),
        file("./usr/bin/qemu-aarch64", elf("amd64", 100)),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::ThroughSymlink { .. }), "{err}");
}

#[test]
fn decompression_bomb_ratio() {
    // 20 MiB of zeros in an emulator-named file: well under 1% of that as xz.
    let mut bomb = elf("amd64", 64);
    bomb.resize(20 << 20, 0);
    let packed = debgen::xz_fast(&debgen::tar(&[
        dir("./"),
        file("./usr/bin/qemu-aarch64", bomb),
    ]));
    assert!(packed.len() < 200 << 10, "{}", packed.len());
    let c = Case::new(&debgen::ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.xz",
            debgen::control_member("qemu-user", "amd64"),
        ),
        ("data.tar.xz", packed),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::CompressionRatio { member, limit: 50, .. } if member == "data.tar.xz"),
        "{err}"
    );
}

#[test]
fn decompression_bomb_total() {
    // Incompressible data, so only the total cap can stop it.
    let mut big = elf("amd64", 64);
    let mut x: u32 = 1;
    big.extend((0..3 << 20).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    let c = Case::new(&data_deb(&[dir("./"), file("./usr/bin/qemu-aarch64", big)]));
    let limits = Limits {
        max_unpacked: 1 << 20,
        ..Limits::default()
    };
    let err = c.extract("amd64", None, &limits);
    assert!(
        matches!(err, Error::TooLarge { limit, .. } if limit == 1 << 20),
        "{err}"
    );
}

#[test]
fn too_many_entries() {
    let mut e = vec![dir("./"), dir("./usr/"), dir("./usr/share/")];
    for i in 0..50 {
        e.push(file(&format!("./usr/share/f{i}"), vec![1]));
    }
    let c = Case::new(&data_deb(&e));
    let limits = Limits {
        max_entries: 20,
        ..Limits::default()
    };
    let err = c.extract("amd64", None, &limits);
    assert!(
        matches!(err, Error::TooManyEntries { limit: 20, .. }),
        "{err}"
    );
}

#[test]
fn duplicate_entries() {
    let mut e = good_entries("amd64");
    e.push(file("./usr/bin/qemu-aarch64", elf("amd64", 10_000)));
    let c = Case::new(&data_deb(&e));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::DuplicateEntry { entry, .. } if entry == "usr/bin/qemu-aarch64"),
        "{err}"
    );
}

#[test]
fn duplicate_target_in_both_layouts() {
    let mut e = good_entries("amd64");
    e.push(file("./usr/bin/qemu-aarch64-static", elf("amd64", 10_000)));
    let c = Case::new(&data_deb(&e));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::DuplicateEntry { entry, .. } if entry.contains("aarch64")),
        "{err}"
    );
}

#[test]
fn emulator_for_another_host() {
    // An arm64 binary in a package labelled amd64.
    let c = Case::new(&data_deb(&good_entries("arm64")));
    let err = c.extract("amd64", None, &all());
    let msg = err.to_string();
    assert!(matches!(err, Error::NotHostElf { .. }), "{err}");
    assert!(
        msg.contains("aarch64") && msg.contains("x86-64") && msg.contains("usr/bin/qemu-aarch64"),
        "{msg}"
    );
}

#[test]
fn emulator_is_a_shell_script() {
    let c = Case::new(&data_deb(&[
        dir("./"),
        file("./usr/bin/qemu-aarch64", b"#!/bin/sh\nrm -rf ~\n".to_vec()),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::NotHostElf { found, .. } if found.contains("script")),
        "{err}"
    );
}

#[test]
fn wrong_architecture_field() {
    let c = Case::new(&debgen::deb("arm64", &good_entries("arm64")));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::ArchMismatch { found, expected, .. } if found == "arm64" && expected == "amd64"),
        "{err}"
    );
}

#[test]
fn architecture_all_is_never_an_emulator_host() {
    let c = Case::new(&debgen::deb("all", &good_entries("amd64")));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::ArchMismatch { found, .. } if found == "all"),
        "{err}"
    );
}

#[test]
fn unknown_host_arch() {
    let c = Case::new(&data_deb(&good_entries("amd64")));
    let err = extract_emulators(&c.deb, &c.work, &EmulatorRequest::new("vax"), &all()).unwrap_err();
    assert!(matches!(err, Error::UnknownArch { .. }), "{err}");
    assert!(
        err.to_string().contains("arm64"),
        "lists the known arches: {err}"
    );
}

#[test]
fn requested_target_missing() {
    let c = Case::new(&data_deb(&good_entries("amd64")));
    let err = c.extract("amd64", Some(&["aarch64", "s390x", "loongarch64"]), &all());
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::MissingTargets { missing, shipped, .. }
            if missing == &["loongarch64", "s390x"] && shipped == &["aarch64", "riscv64"]),
        "{err}"
    );
    assert!(
        msg.contains("loongarch64, s390x") && msg.contains("ships: aarch64, riscv64"),
        "{msg}"
    );
}

#[test]
fn no_emulators_at_all() {
    let c = Case::new(&data_deb(&[
        dir("./"),
        file("./usr/bin/qemu-img", elf("amd64", 100)),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::NoEmulators { .. }), "{err}");
}

#[test]
fn corrupt_xz_stream() {
    let mut data = debgen::xz(&debgen::tar(&good_entries("amd64")));
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 16] {
        *b ^= 0x5a;
    }
    let c = Case::new(&debgen::ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.xz",
            debgen::control_member("qemu-user", "amd64"),
        ),
        ("data.tar.xz", data),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::Corrupt { member, .. } if member == "data.tar.xz"),
        "{err}"
    );
}

#[test]
fn unknown_data_compression() {
    let c = Case::new(&debgen::ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.xz",
            debgen::control_member("qemu-user", "amd64"),
        ),
        ("data.tar.bz2", b"BZh91AY&SY".to_vec()),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(
        matches!(&err, Error::UnknownCompression { member, .. } if member == "data.tar.bz2"),
        "{err}"
    );
}

#[test]
fn unknown_control_compression() {
    let c = Case::new(&debgen::ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.lzma", vec![0x5d, 0, 0, 0x80]),
        (
            "data.tar.xz",
            debgen::xz(&debgen::tar(&good_entries("amd64"))),
        ),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::UnknownCompression { .. }), "{err}");
}

#[test]
fn control_without_control_file() {
    let c = Case::new(&debgen::ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.xz",
            debgen::xz(&debgen::tar(&[file("./md5sums", b"x".to_vec())])),
        ),
        (
            "data.tar.xz",
            debgen::xz(&debgen::tar(&good_entries("amd64"))),
        ),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::BadControl { .. }), "{err}");
}

#[test]
fn members_out_of_order() {
    let c = Case::new(&debgen::ar(&[
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "data.tar.xz",
            debgen::xz(&debgen::tar(&good_entries("amd64"))),
        ),
        (
            "control.tar.xz",
            debgen::control_member("qemu-user", "amd64"),
        ),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn unknown_format_version() {
    let c = Case::new(&debgen::ar(&[
        ("debian-binary", b"3.0\n".to_vec()),
        (
            "control.tar.xz",
            debgen::control_member("qemu-user", "amd64"),
        ),
        (
            "data.tar.xz",
            debgen::xz(&debgen::tar(&good_entries("amd64"))),
        ),
    ]));
    let err = c.extract("amd64", None, &all());
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn single_file_missing() {
    let c = Case::new(&data_deb(&good_entries("amd64")));
    let err = extract_file(&c.deb, &c.work, &FileRequest::busybox("amd64"), &all()).unwrap_err();
    assert!(
        matches!(&err, Error::FileMissing { entry, .. } if entry == "usr/bin/busybox"),
        "{err}"
    );
    c.assert_clean(&err);
}

#[test]
fn single_file_name_cannot_leave_the_work_dir() {
    let c = Case::new(&data_deb(&good_entries("amd64")));
    let req = FileRequest {
        file_name: "../escaped".into(),
        ..FileRequest::busybox("amd64")
    };
    let err = extract_file(&c.deb, &c.work, &req, &all()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(tree(c.root.path()), ["pkg.deb", "work"]);
}

/// A work dir holding a symlink under an emulator's final name: the rename replaces the link
/// itself, it never writes through it.
#[test]
fn existing_symlink_in_work_dir_is_replaced_not_followed() {
    let c = Case::new(&data_deb(&good_entries("amd64")));
    let outside = c.root.path().join("outside");
    std::fs::write(&outside, b"untouched").unwrap();
    std::os::unix::fs::symlink(&outside, c.work.join("qemu-aarch64-static")).unwrap();
    extract_emulators(&c.deb, &c.work, &EmulatorRequest::new("amd64"), &all()).unwrap();
    assert_eq!(std::fs::read(&outside).unwrap(), b"untouched");
    assert!(
        !std::fs::symlink_metadata(c.work.join("qemu-aarch64-static"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}
