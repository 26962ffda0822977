//! `qus assets`: release files like dbhi/qus's, reproducible byte for byte.

use crate::support::*;
use sha2::{Digest, Sha256};

#[test]
fn assets_are_complete_summed_and_reproducible() {
    let cfg = real_config();
    let out = tempfile::tempdir().unwrap();
    let write = |dir: &std::path::Path| {
        let (ok, stdout, err) = run(cfg
            .qus()
            .args([
                "assets",
                "--hosts",
                "amd64,arm64v8",
                "--targets",
                "aarch64,riscv64",
            ])
            .arg("--out")
            .arg(dir)
            .args(cfg.debs_flag())
            .arg("--json"));
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let a = write(&out.path().join("a"));
    write(&out.path().join("b"));
    // Again into the first folder: nothing to compress, every file left as it was.
    let again = write(&out.path().join("a"));
    for x in again["assets"].as_array().unwrap() {
        assert_eq!(x["status"], "unchanged", "{x}");
    }
    assert_eq!(
        a["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| &x["sha256"])
            .collect::<Vec<_>>(),
        again["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| &x["sha256"])
            .collect::<Vec<_>>()
    );
    let names: Vec<&str> = a["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "qemu-aarch64-static_amd64.tgz",
            "qemu-aarch64-static_arm64v8.tgz",
            "qemu-riscv64-static_amd64.tgz",
            "qemu-riscv64-static_arm64v8.tgz",
        ]
    );
    let sums = std::fs::read_to_string(out.path().join("a/SHA256SUMS")).unwrap();
    for name in &names {
        let bytes = std::fs::read(out.path().join("a").join(name)).unwrap();
        let sha = hex::encode(Sha256::digest(&bytes));
        assert!(
            sums.contains(&format!("{sha}  {name}\n")),
            "{name} in SHA256SUMS"
        );
        assert_eq!(
            bytes,
            std::fs::read(out.path().join("b").join(name)).unwrap(),
            "{name}"
        );
    }
}

/// `qus assets --json` with `args`: exit code, JSON, stderr.
fn assets(cfg: &TestConfig, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    run_json(cfg.qus().args(["assets", "--json"]).args(args))
}

fn names(json: &serde_json::Value) -> Vec<String> {
    json["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn without_flags_each_host_gets_the_qemu_of_its_unversioned_tags() {
    // The config's `default` is the older d7.2, which arm32v7 has no package in: each host
    // still gets an asset for each of its targets, from its newest source (d10.0 here).
    let cfg = real_config();
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    std::fs::write(&cfg.path, text.replace("default: d10.0", "default: d7.2")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let debs = cfg.debs.to_str().unwrap();
    let (code, json, err) = assets(&cfg, &["--out", dir, "--debs", debs]);
    assert_eq!(code, Some(0), "{err}");
    let mut want = Vec::new();
    for (host, targets) in [
        ("amd64", &["aarch64", "arm", "riscv64", "x86_64"][..]),
        ("arm64v8", &["aarch64", "arm", "riscv64", "x86_64"][..]),
        ("arm32v7", &["arm", "i386"][..]),
    ] {
        for t in targets {
            want.push(format!("qemu-{t}-static_{host}.tgz"));
        }
    }
    want.sort();
    assert_eq!(names(&json), want);
    for a in json["assets"].as_array().unwrap() {
        assert_eq!(a["source"], "d10.0", "{a}");
        // The test config pins d10.0 as version 1:10.0 (d7.2 as 1:7.2).
        assert_eq!(a["qemu_version"], "1:10.0", "{a}");
    }
    assert!(
        err.contains("amd64 d10.0"),
        "the log names each host's QEMU: {err}"
    );

    // `--sources` narrows: amd64's aarch64 from d7.2, under the same file name.
    let (code, json, err) = assets(
        &cfg,
        &[
            "--out",
            dir,
            "--debs",
            debs,
            "--sources",
            "d7.2",
            "--hosts",
            "amd64",
            "--targets",
            "aarch64",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(names(&json), ["qemu-aarch64-static_amd64.tgz"]);
    assert_eq!(json["assets"][0]["source"], "d7.2");
    assert_eq!(json["assets"][0]["qemu_version"], "1:7.2");
}

#[test]
fn a_package_the_mirror_does_not_serve_leaves_out_only_its_assets() {
    let cfg = real_config();
    let mirror = crate::support::mirror::Partial::new(&cfg);
    let out = tempfile::tempdir().unwrap();
    let (code, json, err) = assets(
        &cfg,
        &[
            "--hosts",
            "amd64,arm64v8",
            "--targets",
            "aarch64,riscv64",
            "--mirror",
            &mirror.server.url(),
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&mirror.name()) && err.contains("qus lock"),
        "{err}"
    );
    let written = [
        "qemu-aarch64-static_amd64.tgz",
        "qemu-riscv64-static_amd64.tgz",
    ];
    assert_eq!(names(&json), written);
    let failed = &json["failed_packages"][0];
    assert_eq!(failed["host"], "arm64v8");
    assert_eq!(
        failed["left_out"],
        serde_json::json!([
            "qemu-aarch64-static_arm64v8.tgz",
            "qemu-riscv64-static_arm64v8.tgz"
        ])
    );
    // The folder holds what was written and SHA256SUMS over exactly that, nothing else.
    let mut files: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["SHA256SUMS", written[0], written[1]]);
    let sums = std::fs::read_to_string(out.path().join("SHA256SUMS")).unwrap();
    let listed: Vec<&str> = sums
        .lines()
        .map(|l| l.split("  ").nth(1).unwrap())
        .collect();
    assert_eq!(listed, written);
    for line in sums.lines() {
        let (sha, name) = line.split_once("  ").unwrap();
        let bytes = std::fs::read(out.path().join(name)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sha, "{name}");
    }
}

/// The one member of a `qemu-T-static_H.tgz`.
fn unpack(tgz: &std::path::Path) -> Vec<u8> {
    let f = std::fs::File::open(tgz).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
    bytes
}

/// `--qus-binary` ships a static executable as `qus_<host>`, its host read from the ELF,
/// listed in SHA256SUMS; a dynamically linked one is refused before any work. Debian's
/// qemu-user emulators stand in for static qus binaries of two hosts (both are static ELF
/// executables); the test's own qus is dynamically linked.
#[test]
fn qus_binaries_are_shipped_only_when_static() {
    let cfg = real_config();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let assets = |extra: &[&std::ffi::OsStr]| {
        run(cfg
            .qus()
            .args(["assets", "--hosts", "amd64,arm64v8", "--targets", "aarch64"])
            .arg("--out")
            .arg(&out)
            .args(cfg.debs_flag())
            .args(extra))
    };
    let (ok, _, err) = assets(&[]);
    assert!(ok, "{err}");
    let mut statics = Vec::new();
    for host in ["amd64", "arm64v8"] {
        let bin = dir.path().join(format!("static-{host}"));
        std::fs::write(
            &bin,
            unpack(&out.join(format!("qemu-aarch64-static_{host}.tgz"))),
        )
        .unwrap();
        statics.push(bin);
    }
    let mut flags: Vec<&std::ffi::OsStr> = Vec::new();
    for b in &statics {
        flags.push("--qus-binary".as_ref());
        flags.push(b.as_os_str());
    }
    let (ok, _, err) = assets(&flags);
    assert!(ok, "{err}");
    let sums = std::fs::read_to_string(out.join("SHA256SUMS")).unwrap();
    for (host, bin) in ["amd64", "arm64v8"].iter().zip(&statics) {
        let name = format!("qus_{host}");
        let shipped = std::fs::read(out.join(&name)).unwrap();
        assert_eq!(shipped, std::fs::read(bin).unwrap(), "{name}");
        let line = format!("{}  {name}", hex::encode(Sha256::digest(&shipped)));
        assert!(
            sums.lines().any(|l| l == line),
            "{name} not in SHA256SUMS:\n{sums}"
        );
        let mode = std::fs::metadata(out.join(&name)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o755
        );
    }

    // The test's qus is linked against this machine's libc: refused, exit 2, nothing new.
    let before = std::fs::read_dir(&out).unwrap().count();
    let own = std::path::PathBuf::from(env!("CARGO_BIN_EXE_qus"));
    let (code, err) = {
        let out = cfg
            .qus()
            .args([
                "assets",
                "--hosts",
                "amd64",
                "--targets",
                "aarch64",
                "--out",
            ])
            .arg(dir.path().join("other"))
            .args(cfg.debs_flag())
            .arg("--qus-binary")
            .arg(&own)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("dynamically linked (its interpreter is /lib"),
        "{err}"
    );
    assert!(!dir.path().join("other").exists(), "nothing was written");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), before);
}
