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
fn the_classic_builder_gives_the_images_qus_writes() {
    // qus writes the images; `--builder dockerfile` builds them from Dockerfile.template
    // with the daemon's classic builder, twice (cold, a second apart, so a timestamp taken
    // from the clock would show): the same layers, platform, entrypoint and labels.
    let cfg = real_config();
    let written = Repo::new("qus-test-written");
    let (ok, _, err) = build(&cfg, &written, NARROW);
    assert!(ok, "{err}");
    let classic = [NARROW, &["--builder", "dockerfile", "--no-cache"]].concat();
    let a = Repo::new("qus-test-cold-a");
    let (ok, _, err) = build(&cfg, &a, &classic);
    assert!(ok, "{err}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = Repo::new("qus-test-cold-b");
    assert!(build(&cfg, &b, &classic).0);
    for tag in [
        "amd64-d10.0-register",
        "amd64-d10.0-pkg",
        "amd64-d10.0",
        "amd64-d10.0-aarch64",
    ] {
        let w = inspect(&format!("{}:{tag}", written.name)).unwrap();
        let la = inspect(&format!("{}:{tag}", a.name)).unwrap();
        let lb = inspect(&format!("{}:{tag}", b.name)).unwrap();
        assert_eq!(la.layers, lb.layers, "{tag}: two classic builds");
        assert_eq!(w.layers, la.layers, "{tag}: written vs classic");
        assert_eq!(w.platform, la.platform, "{tag}");
        assert_eq!(w.entrypoint, la.entrypoint, "{tag}");
        assert_eq!(w.labels, la.labels, "{tag}");
        // Only the written image's config is reproducible: the builder stamps the time.
        assert_ne!(la.id, lb.id, "{tag}: the classic builder's configs differ");
    }
    // Written again from an empty cache into another repository: the same image IDs.
    let again = real_config();
    let w2 = Repo::new("qus-test-written-2");
    assert!(build(&again, &w2, NARROW).0);
    for tag in ["amd64-d10.0-register", "amd64-d10.0-aarch64"] {
        assert_eq!(
            inspect(&format!("{}:{tag}", written.name)).unwrap().id,
            inspect(&format!("{}:{tag}", w2.name)).unwrap().id,
            "{tag}"
        );
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
