//! `qus build` against the real daemon with real Debian packages (issue: build the matrix).

use crate::support::*;
use std::collections::HashSet;

fn build(cfg: &TestConfig, repo: &Repo, args: &[&str]) -> (bool, String, String) {
    run(cfg
        .qus()
        .arg("build")
        .arg("--repo")
        .arg(&repo.name)
        .args(cfg.debs_flag())
        .args(args))
}

const MATRIX: &[&str] = &[
    "--hosts",
    "amd64,arm64v8,arm32v7",
    "--targets",
    "aarch64,arm",
    "--sources",
    "d10.0",
];

#[test]
fn three_hosts_every_tag_platform_labels_elf_and_shared_layers() {
    let cfg = real_config();
    let repo = Repo::new("qus-test-build");
    let (ok, out, err) = build(&cfg, &repo, &[MATRIX, &["--json"]].concat());
    assert!(ok, "build failed: {err}");
    let built: serde_json::Value = serde_json::from_str(&out).unwrap();
    let plan = plan_json(&cfg, &[MATRIX, &["--repo", &repo.name]].concat());
    let images = plan["images"].as_array().unwrap();
    // arm32v7 (armhf) has arm but no aarch64 in 10.0: register, pkg, full, arm.
    assert_eq!(images.len(), 5 + 5 + 4);
    assert_eq!(built["images"].as_array().unwrap().len(), images.len());

    for img in images {
        let reference = img["reference"].as_str().unwrap();
        let info = inspect(reference).unwrap_or_else(|| panic!("{reference} was not built"));
        let want = &img["platform"];
        let mut parts = info.platform.split('/');
        assert_eq!(parts.next().unwrap(), want["os"], "{reference}");
        assert_eq!(parts.next().unwrap(), want["architecture"], "{reference}");
        assert_eq!(parts.next(), want["variant"].as_str(), "{reference}");
        for label in [
            "org.opencontainers.image.version",
            "org.opencontainers.image.title",
            "qus.qemu.version",
            "qus.qemu.package",
            "qus.qemu.sha256",
            "qus.host",
            "qus.targets",
            "qus.inputs",
        ] {
            assert!(
                info.labels.contains_key(label),
                "{reference}: no label {label}"
            );
        }
        assert_eq!(info.labels["qus.host"], img["host"].as_str().unwrap());
        assert_eq!(info.labels["qus.inputs"], img["inputs"].as_str().unwrap());
    }
    let arm = inspect(&format!("{}:arm32v7-d10.0-arm", repo.name)).unwrap();
    assert_eq!(arm.platform, "linux/arm/v7");

    // The emulator inside the arm64v8 image is an aarch64 ELF (e_machine 183 = EM_AARCH64).
    let elf = file_from_image(
        &format!("{}:arm64v8-d10.0-aarch64", repo.name),
        "usr/bin/qemu-aarch64-static",
    )
    .expect("qemu-aarch64-static in the image");
    assert_eq!(&elf[..4], b"\x7fELF");
    assert_eq!(elf[4], 2, "64-bit");
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183, "EM_AARCH64");
    // And the armhf one is a 32-bit Arm ELF (EM_ARM = 40).
    let elf = file_from_image(
        &format!("{}:arm32v7-d10.0-arm", repo.name),
        "usr/bin/qemu-arm-static",
    )
    .unwrap();
    assert_eq!((elf[4], u16::from_le_bytes([elf[18], elf[19]])), (1, 40));
    // The entrypoint is there, with busybox for the host.
    let bb = file_from_image(
        &format!("{}:arm64v8-d10.0-register", repo.name),
        "qus/busybox",
    )
    .unwrap();
    assert_eq!(u16::from_le_bytes([bb[18], bb[19]]), 183);

    // Layers are shared: the emulator layer of the single-target image is the same layer as
    // in pkg and full; the register layer is the same in register, full and single images.
    for host in ["amd64", "arm64v8"] {
        let l = |tag: &str| {
            inspect(&format!("{}:{host}-d10.0{tag}", repo.name))
                .unwrap()
                .layers
        };
        let (reg, pkg, full, single) = (l("-register"), l("-pkg"), l(""), l("-aarch64"));
        assert_eq!(reg.len(), 1);
        assert_eq!(pkg.len(), 2, "{pkg:?}");
        assert_eq!(
            full,
            [pkg.clone(), reg.clone()].concat(),
            "full = pkg + register"
        );
        assert_eq!(single[0], reg[0], "single starts with the register layer");
        assert!(
            pkg.contains(&single[1]),
            "single's emulator layer is pkg's: {single:?} {pkg:?}"
        );
        let arm_single = l("-arm");
        assert!(pkg.contains(&arm_single[1]));
    }

    // Nothing changed: a second run builds nothing.
    let (ok, _, err) = build(&cfg, &repo, MATRIX);
    assert!(ok, "{err}");
    assert!(err.contains("every image is up to date"), "{err}");
}

#[test]
fn two_cold_builds_give_identical_diff_ids() {
    let cfg = real_config();
    let args = [NARROW, &["--no-cache"]].concat();
    let a = Repo::new("qus-test-cold-a");
    assert!(build(&cfg, &a, &args).0);
    // A different second, so any timestamp taken from the clock would show.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = Repo::new("qus-test-cold-b");
    assert!(build(&cfg, &b, &args).0);
    for tag in [
        "amd64-d10.0-register",
        "amd64-d10.0-pkg",
        "amd64-d10.0",
        "amd64-d10.0-aarch64",
    ] {
        let la = inspect(&format!("{}:{tag}", a.name)).unwrap().layers;
        let lb = inspect(&format!("{}:{tag}", b.name)).unwrap().layers;
        assert_eq!(la, lb, "{tag}");
    }
}

#[test]
fn bookworm_layout_gives_the_same_names() {
    let cfg = real_config();
    let repo = Repo::new("qus-test-d7");
    let (ok, _, err) = build(
        &cfg,
        &repo,
        &[
            "--hosts",
            "arm64v8",
            "--targets",
            "riscv64",
            "--sources",
            "d7.2",
        ],
    );
    assert!(ok, "{err}");
    let elf = file_from_image(
        &format!("{}:arm64v8-d7.2-riscv64", repo.name),
        "usr/bin/qemu-riscv64-static",
    )
    .unwrap();
    assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 183);
    let tags: HashSet<String> = repo.images().into_iter().collect();
    assert_eq!(tags.len(), 4, "{tags:?}");
}
