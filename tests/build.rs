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

/// `qus build --json` of `args` with the cache `cache`: exit code, JSON, stderr.
fn build_json(
    cfg: &TestConfig,
    cache: &std::path::Path,
    args: &[&str],
) -> (Option<i32>, serde_json::Value, String) {
    run_json(
        qus(cache)
            .arg("--config")
            .arg(&cfg.path)
            .args(["build", "--json"])
            .args(args),
    )
}

/// The tags of an OCI layout's `index.json`, with the digest each names.
fn layout_tags(layout: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every blob a tag of the layout reaches (lists, manifests, configs, layers) is there.
fn assert_layout_whole(layout: &std::path::Path) {
    let blob = |digest: &str| {
        let path = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let mut todo: Vec<String> = layout_tags(layout).into_values().collect();
    while let Some(d) = todo.pop() {
        let doc: serde_json::Value = serde_json::from_slice(&blob(&d)).unwrap();
        for m in doc["manifests"].as_array().into_iter().flatten() {
            todo.push(m["digest"].as_str().unwrap().to_string());
        }
        let layers = doc["layers"].as_array().into_iter().flatten();
        for b in layers.chain(doc.get("config")) {
            blob(b["digest"].as_str().unwrap());
        }
    }
}

fn platforms_of(layout: &std::path::Path, tag: &str) -> usize {
    let digest = &layout_tags(layout)[tag];
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let list: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    list["manifests"].as_array().unwrap().len()
}

#[test]
fn a_package_the_mirror_lists_but_does_not_serve_leaves_out_only_what_needs_it() {
    use crate::support::mirror::{half_written, Partial};
    let cfg = real_config();
    let mirror = Partial::new(&cfg);
    let repo = Repo::new("qus-test-partial");
    let layout = cfg.dir.path().join("oci");
    let url = mirror.server.url();
    let args = [
        "--repo",
        &repo.name,
        "--mirror",
        &url,
        "--oci-layout",
        layout.to_str().unwrap(),
    ];
    let matrix = [args.as_slice(), TWO_HOSTS].concat();
    let reference = |tag: &str| format!("{}:{tag}", repo.name);

    // arm64v8's qemu-user is listed, not served: every other image is made.
    let (code, json, err) = build_json(&cfg, cfg.dir.path(), &matrix);
    assert_eq!(code, Some(1), "{err}");
    let name = mirror.name();
    let line = err
        .lines()
        .find(|l| l.contains(&name) && l.starts_with("qus: error:"))
        .unwrap_or_else(|| panic!("no line names {name}: {err}"));
    assert!(
        line.contains("arm64v8") && line.contains("404") && line.contains("qus lock"),
        "{line}"
    );
    let made: HashSet<String> = [
        "amd64-d10.0-register",
        "amd64-d10.0-pkg",
        "amd64-d10.0",
        "amd64-d10.0-aarch64",
        "arm64v8-d10.0-register",
    ]
    .iter()
    .map(|t| reference(t))
    .collect();
    assert_eq!(repo.images().into_iter().collect::<HashSet<_>>(), made);
    let built: HashSet<String> = json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(built, made);
    let failed = json["failed_packages"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{json}");
    assert_eq!(failed[0]["host"], "arm64v8");
    assert_eq!(failed[0]["cause"], "not-served");
    assert!(failed[0]["file"].as_str().unwrap().ends_with(&name));
    let left: HashSet<&str> = failed[0]["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let want: Vec<String> = [
        "arm64v8-d10.0-pkg",
        "arm64v8-d10.0",
        "arm64v8-d10.0-aarch64",
    ]
    .iter()
    .map(|t| reference(t))
    .collect();
    assert_eq!(left, want.iter().map(String::as_str).collect());
    let not_written: HashSet<&str> = json["lists_not_written"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|l| assert_eq!(l["why"], "incomplete", "{l}"))
        .map(|l| l["reference"].as_str().unwrap().rsplit(':').next().unwrap())
        .collect();
    let incomplete = [
        "d10.0-pkg",
        "d10.0",
        "d10.0-aarch64",
        "pkg",
        "latest",
        "aarch64",
    ];
    assert_eq!(not_written, incomplete.into());
    // The layout: the images made and the two lists over them alone, every blob there.
    let tags: HashSet<String> = layout_tags(&layout).into_keys().collect();
    let mut want: HashSet<String> = made
        .iter()
        .map(|r| r.rsplit(':').next().unwrap().to_string())
        .collect();
    want.extend(["register".to_string(), "d10.0-register".to_string()]);
    assert_eq!(tags, want);
    assert_layout_whole(&layout);
    // The cache: nothing half-written, and no trace of the file that never came.
    assert_eq!(
        half_written(cfg.dir.path()),
        Vec::<std::path::PathBuf>::new()
    );
    let (sha, _) = sum(&mirror.missing);
    assert!(!cfg.dir.path().join("blobs/sha256").join(&sha).exists());

    // Served again, by a mirror that breaks the transfer off once: it is resumed where it
    // broke off, the rest is made, and every list is written.
    mirror.serve(true);
    const CUT: usize = 1_000_000;
    mirror
        .server
        .fault_once(qus_source::testkit::Fault::Cut(CUT));
    let (code, json, err) = build_json(&cfg, cfg.dir.path(), &matrix);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "qus: {name}: cut short after 1.0 MB, resuming in "
        )),
        "{err}"
    );
    assert!(err.contains("(attempt 2 of 4)"), "{err}");
    let asked = mirror.server.requests(&pool_path(&mirror.missing));
    assert_eq!(
        asked[asked.len() - 2..],
        ["GET".to_string(), format!("GET bytes={CUT}-")],
        "{asked:?}"
    );
    assert!(json["failed_packages"].as_array().unwrap().is_empty());
    assert_eq!(repo.images().len(), 8);
    let whole = layout_tags(&layout);
    assert_eq!(whole.len(), 8 + 8);
    assert_eq!(platforms_of(&layout, "latest"), 2);

    // Missing again, from an empty cache: the daemon keeps what it has, the layout gets
    // what can be made, and its lists over what cannot stay as they were.
    mirror.serve(false);
    let empty = tempfile::tempdir().unwrap();
    let (code, json, err) = build_json(&cfg, empty.path(), &matrix);
    assert_eq!(code, Some(1), "{err}");
    assert!(json["images"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "unchanged"));
    assert_eq!(repo.images().len(), 8);
    assert_eq!(layout_tags(&layout), whole, "the layout's tags moved");
    assert_layout_whole(&layout);
    assert_eq!(half_written(empty.path()), Vec::<std::path::PathBuf>::new());

    // One host only, complete: each list in the layout would lose linux/arm64/v8, so each
    // stays as it was, and the run says so.
    let one = [args.as_slice(), NARROW].concat();
    let (code, json, err) = build_json(&cfg, cfg.dir.path(), &one);
    assert_eq!(code, Some(1), "{err}");
    assert_lists_kept(&json, "layout", 8, &["linux/arm64/v8"]);
    assert!(err.contains("left as they were in the layout"), "{err}");
    assert_eq!(layout_tags(&layout), whole);
}

/// `--load native` (what `ci/main` uses): every image into the OCI layout, only this
/// machine's own into the daemon, and it says so; `--load none` needs a layout.
#[test]
fn load_native_puts_every_image_in_the_layout_and_only_this_hosts_in_the_daemon() {
    let cfg = real_config();
    let repo = Repo::new("qus-test-load");
    let layout = cfg.dir.path().join("oci");
    let layout_flag = layout.to_str().unwrap();
    let (ok, _, err) = build(
        &cfg,
        &repo,
        &[
            TWO_HOSTS,
            &["--oci-layout", layout_flag, "--load", "native"],
        ]
        .concat(),
    );
    assert!(ok, "build failed: {err}");
    assert!(
        err.contains("--load native: only the images of amd64 and i386"),
        "{err}"
    );
    let plan = plan_json(&cfg, &[TWO_HOSTS, &["--repo", &repo.name]].concat());
    let (mut native, mut foreign) = (HashSet::new(), HashSet::new());
    for img in plan["images"].as_array().unwrap() {
        let (tag, host) = (img["tag"].as_str().unwrap(), img["host"].as_str().unwrap());
        if host == "amd64" {
            native.insert(format!("{}:{tag}", repo.name));
        } else {
            foreign.insert(tag.to_string());
        }
    }
    assert!(!native.is_empty() && !foreign.is_empty());
    let in_daemon: HashSet<String> = repo.images().into_iter().collect();
    assert_eq!(in_daemon, native, "the daemon holds only amd64's images");
    let tags = layout_tags(&layout);
    for tag in &foreign {
        assert!(tags.contains_key(tag), "{tag} is not in the layout");
    }
    assert_eq!(platforms_of(&layout, "latest"), 2);
    assert_layout_whole(&layout);

    let (ok, _, err) = build(&cfg, &repo, &[TWO_HOSTS, &["--load", "none"]].concat());
    assert!(
        !ok && err.contains("--load none writes nothing without --oci-layout"),
        "{err}"
    );
}
