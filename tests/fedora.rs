//! A Fedora source: per-target `qemu-user-static-<group>` rpms (zstd cpio payloads), tagged
//! `fV`. The rpms are built here with Debian's rpmbuild around real emulator binaries (taken
//! from Debian's qemu-user package by qus's own extraction), not hand-made bytes.

use crate::support::*;
use qus_source::testkit;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Builds two x86_64 rpms of one `qemu` build (aarch64, arm) into `out`; returns them and
/// the emulators that went in.
fn build_rpms(out: &Path) -> (Vec<PathBuf>, PathBuf) {
    let bindir = out.join("bin");
    std::fs::create_dir_all(&bindir).unwrap();
    qus_source::extract_emulators(
        &deb("qemu-user", "amd64"),
        &bindir,
        &qus_source::EmulatorRequest::new("amd64").targets(["aarch64", "arm"]),
        &qus_source::Limits::default(),
    )
    .unwrap();
    let targets = ["aarch64", "arm"];
    let spec = testkit::rpm::qemu_spec(&targets);
    let rpms = testkit::rpm::rpmbuild(&spec, &targets, "x86_64", "w3.zstdio", &bindir, out);
    (rpms, bindir)
}

#[test]
fn fedora_rpms_become_f_tagged_images() {
    let cfg = config_with(vec![Pin::new("amd64", deb("qemu-user", "amd64"))], vec![]);
    let work = tempfile::tempdir().unwrap();
    let (rpms, bindir) = build_rpms(work.path());
    let mut text = std::fs::read_to_string(&cfg.path).unwrap();
    text.push_str(
        "  - name: f10.0\n    distro: fedora\n    suite: \"43\"\n    package: qemu-user-static\n    version: \"2:10.0.13-1.qus\"\n    targets: [aarch64, arm]\n    files:\n      amd64:\n        packages:\n",
    );
    for (rpm, target) in rpms.iter().zip(["aarch64", "arm"]) {
        let (sha, size) = sum(rpm);
        let name = rpm.file_name().unwrap().to_string_lossy();
        std::fs::copy(rpm, cfg.debs.join(&*name)).unwrap();
        text.push_str(&format!(
            "          - {{ file: releases/43/Everything/x86_64/os/Packages/q/{name}, size: {size}, sha256: {sha}, targets: [{target}] }}\n"
        ));
    }
    std::fs::write(&cfg.path, text).unwrap();

    let plan = plan_json(&cfg, &["--sources", "f10.0", "--hosts", "amd64"]);
    let pkgs: Vec<&str> = plan["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["distro"] == "fedora")
        .map(|p| p["file"].as_str().unwrap())
        .collect();
    assert_eq!(pkgs.len(), 2, "one rpm per group: {pkgs:?}");

    let repo = Repo::new("qus-test-fedora");
    let (ok, _, err) = run(cfg
        .qus()
        .args([
            "build",
            "--sources",
            "f10.0",
            "--hosts",
            "amd64",
            "--repo",
            &repo.name,
        ])
        .arg("--packages")
        .arg(&cfg.debs));
    assert!(ok, "{err}");
    let pkg = inspect(&format!("{}:amd64-f10.0-pkg", repo.name)).unwrap();
    assert_eq!(pkg.layers.len(), 2);
    assert_eq!(pkg.labels["qus.source"], "f10.0");
    let arm = file_from_image(
        &format!("{}:amd64-f10.0-arm", repo.name),
        "usr/bin/qemu-arm-static",
    )
    .unwrap();
    let went_in = std::fs::read(bindir.join("qemu-arm-static")).unwrap();
    assert_eq!(Sha256::digest(&arm), Sha256::digest(&went_in));
    assert_eq!(
        u16::from_le_bytes([arm[18], arm[19]]),
        62,
        "x86-64 host binary"
    );
}

#[test]
fn a_fedora_source_without_a_mirror_says_so() {
    let cfg = config_with(vec![Pin::new("amd64", deb("qemu-user", "amd64"))], vec![]);
    let mut text = std::fs::read_to_string(&cfg.path).unwrap();
    text.push_str(&format!(
        "  - name: f10.0\n    distro: fedora\n    suite: \"43\"\n    package: qemu-user-static\n    version: \"2:10.0\"\n    targets: [aarch64]\n    files:\n      amd64: {{ file: releases/x.rpm, sha256: {} }}\n",
        "0".repeat(64)
    ));
    std::fs::write(&cfg.path, text).unwrap();
    let repo = Repo::new("qus-test-fedora-nomirror");
    let (ok, _, err) = run(qus(cfg.dir.path())
        .env_remove("QUS_FEDORA_MIRROR")
        .env("QUS_MIRROR", "http://127.0.0.1:9/debian")
        .arg("--config")
        .arg(&cfg.path)
        .args([
            "build",
            "--sources",
            "f10.0",
            "--hosts",
            "amd64",
            "--repo",
            &repo.name,
        ]));
    assert!(!ok);
    assert!(err.contains("no Fedora mirror configured"), "{err}");
}
