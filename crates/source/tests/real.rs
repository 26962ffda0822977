//! Extraction from the real Debian packages, both layouts, several host arches.

use std::os::unix::fs::PermissionsExt;

use qus_source::elf;
use qus_source::{
    extract_emulators, extract_file, Emulator, EmulatorRequest, Error, FileRequest, Limits,
};

use crate::support::{real_deb, sha256_file, tree};

/// Checks an extracted emulator file: name, mode, size, sum, and ELF for `host`.
fn check(e: &Emulator, target: &str, host: &str) {
    assert_eq!(e.target, target);
    assert_eq!(
        e.path.file_name().unwrap().to_str().unwrap(),
        format!("qemu-{target}-static")
    );
    let meta = std::fs::metadata(&e.path).unwrap();
    assert_eq!(meta.len(), e.size);
    assert!(
        e.size > 1_000_000,
        "{} is only {} bytes",
        e.path.display(),
        e.size
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);
    assert_eq!(sha256_file(&e.path), e.sha256.to_hex());
    let head = std::fs::read(&e.path).unwrap();
    let header = elf::parse(&head[..64]).unwrap();
    let want = elf::for_debian_arch(host).unwrap();
    assert_eq!(
        (header.class, header.endian, header.machine),
        (want.class, want.endian, want.machine),
        "{}",
        e.path.display()
    );
}

#[test]
fn trixie_amd64_aarch64_and_riscv64() {
    let deb = real_deb("qemu-user", "amd64");
    let work = tempfile::tempdir().unwrap();
    let req = EmulatorRequest::new("amd64").targets(["aarch64", "riscv64"]);
    let emus = extract_emulators(&deb, work.path(), &req, &Limits::default()).unwrap();
    assert_eq!(emus.len(), 2);
    check(&emus[0], "aarch64", "amd64");
    check(&emus[1], "riscv64", "amd64");
    assert_eq!(
        tree(work.path()),
        ["qemu-aarch64-static", "qemu-riscv64-static"]
    );
}

#[test]
fn trixie_arm64_aarch64_and_riscv64() {
    let deb = real_deb("qemu-user", "arm64");
    let work = tempfile::tempdir().unwrap();
    let req = EmulatorRequest::new("arm64").targets(["riscv64", "aarch64"]);
    let emus = extract_emulators(&deb, work.path(), &req, &Limits::default()).unwrap();
    check(&emus[0], "aarch64", "arm64");
    check(&emus[1], "riscv64", "arm64");
    assert_eq!(
        tree(work.path()),
        ["qemu-aarch64-static", "qemu-riscv64-static"]
    );
}

#[test]
fn bookworm_static_layout_amd64_aarch64() {
    let deb = real_deb("qemu-user-static", "amd64");
    let work = tempfile::tempdir().unwrap();
    let req = EmulatorRequest::new("amd64").targets(["aarch64"]);
    let emus = extract_emulators(&deb, work.path(), &req, &Limits::default()).unwrap();
    assert_eq!(emus.len(), 1);
    check(&emus[0], "aarch64", "amd64");
    assert_eq!(tree(work.path()), ["qemu-aarch64-static"]);
}

/// The one full extraction of the suite: every emulator of the smallest package, aliases
/// (`qemu-armhf -> qemu-arm`, ...) checked but not extracted, all hard-float ARM ELFs.
#[test]
fn trixie_armhf_every_emulator() {
    let deb = real_deb("qemu-user", "armhf");
    let work = tempfile::tempdir().unwrap();
    let emus = extract_emulators(
        &deb,
        work.path(),
        &EmulatorRequest::new("armhf"),
        &Limits::default(),
    )
    .unwrap();
    let targets: Vec<&str> = emus.iter().map(|e| e.target.as_str()).collect();
    assert!(
        targets.contains(&"arm") && targets.contains(&"riscv32"),
        "{targets:?}"
    );
    for alias in ["armhf", "armel", "powerpc"] {
        assert!(
            !targets.contains(&alias),
            "alias {alias} extracted: {targets:?}"
        );
    }
    for e in &emus {
        check(e, &e.target.clone(), "armhf");
    }
    assert_eq!(
        tree(work.path()).len(),
        emus.len(),
        "only the emulators are written"
    );
}

/// A 32-bit host's trixie package ships no 64-bit targets: asking for one names what it
/// does ship.
#[test]
fn trixie_armhf_has_no_aarch64() {
    let deb = real_deb("qemu-user", "armhf");
    let work = tempfile::tempdir().unwrap();
    let req = EmulatorRequest::new("armhf").targets(["arm", "aarch64"]);
    let err = extract_emulators(&deb, work.path(), &req, &Limits::default()).unwrap_err();
    let Error::MissingTargets {
        missing, shipped, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(missing, &["aarch64"]);
    assert!(shipped.contains(&"arm".to_string()));
    let msg = err.to_string();
    assert!(
        msg.contains("qemu-user_") && msg.contains("aarch64") && msg.contains("ships: arm"),
        "{msg}"
    );
    assert_eq!(
        tree(work.path()),
        Vec::<String>::new(),
        "the extracted arm was removed again"
    );
}

#[test]
fn busybox_for_three_hosts() {
    for arch in ["amd64", "arm64", "armhf"] {
        let deb = real_deb("busybox-static", arch);
        let work = tempfile::tempdir().unwrap();
        let f = extract_file(
            &deb,
            work.path(),
            &FileRequest::busybox(arch),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(f.path, work.path().join("busybox"));
        assert_eq!(f.member, "usr/bin/busybox");
        assert!(f.size > 500_000);
        assert_eq!(sha256_file(&f.path), f.sha256.to_hex());
        let head = std::fs::read(&f.path).unwrap();
        elf::for_debian_arch(arch)
            .unwrap()
            .check(&head[..64])
            .unwrap();
        assert_eq!(tree(work.path()), ["busybox"]);
    }
}

#[test]
fn real_package_for_the_wrong_host() {
    let deb = real_deb("busybox-static", "arm64");
    let work = tempfile::tempdir().unwrap();
    let err = extract_file(
        &deb,
        work.path(),
        &FileRequest::busybox("amd64"),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::ArchMismatch { found, expected, .. } if found == "arm64" && expected == "amd64"),
        "{err}"
    );
    assert!(err.to_string().contains("busybox-static"), "{err}");
    assert!(tree(work.path()).is_empty());
}

#[test]
fn package_info_of_both_layouts() {
    let limits = Limits::default();
    let p = qus_source::open_package(&real_deb("qemu-user-static", "arm64"), &limits).unwrap();
    let i = p.info();
    assert_eq!(
        (i.name.as_str(), i.architecture.as_str()),
        ("qemu-user-static", "arm64")
    );
    assert_eq!(i.source_name(), "qemu");
    assert!(
        i.source_version().starts_with("1:7.2"),
        "{}",
        i.source_version()
    );
    let p = qus_source::open_package(&real_deb("qemu-user", "arm64"), &limits).unwrap();
    assert!(p.info().version.starts_with("1:10.0"));
}
