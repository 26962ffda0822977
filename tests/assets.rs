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
