//! Supply chain (issue 13): after `qus release --sign-key`, an independent reader (Python's
//! urllib over plain HTTP, `cryptography` for ECDSA, `pyspdxtools` for SPDX:
//! tests/support/supply_check.py) finds every per-host image's SBOM and provenance as OCI
//! referrers and every image's and list's cosign signature; a second release writes
//! nothing; `qus verify --key` passes, then fails on a tampered payload.

use crate::support::*;
use qus_registry::testkit::TestRegistry;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const MATRIX: &[&str] = &[
    "--hosts",
    "amd64,arm64v8",
    "--targets",
    "aarch64,arm",
    "--sources",
    "d10.0",
];
const BUILDER: &str = "urn:qus-test:builder:supply";

/// An ECDSA P-256 key made by openssl (SEC1 `EC PRIVATE KEY`), and its public half as
/// openssl writes it.
fn keypair(dir: &Path) -> (std::path::PathBuf, String) {
    let key = dir.join("signing.pem");
    let out = Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["ec", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, String::from_utf8(out.stdout).unwrap())
}

/// What the independent reader saw, per tag.
fn read_back(
    registry: &TestRegistry,
    repo: &str,
    public: &Path,
    tags: &[String],
) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/supply_check.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(registry.host())
        .arg(repo)
        .arg(public)
        .args(tags)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "supply_check.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_signed_release_carries_sbom_provenance_and_signatures_and_a_rerun_writes_nothing() {
    let cfg = real_config();
    let registry = TestRegistry::start().unwrap();
    let name = "qus-supply";
    let repo = format!("{}/{name}", registry.host());
    let (key, public) = keypair(cfg.dir.path());
    let release = || {
        let mut c = cfg.qus();
        c.args(["release", "--repo", &repo, "--json", "--sign-key"])
            .arg(&key)
            .args(["--builder-id", BUILDER])
            .args(cfg.debs_flag())
            .args(MATRIX);
        let (ok, out, err) = run(&mut c);
        assert!(ok, "release: {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let summary = release();
    let pushed = summary["pushed"].as_array().unwrap();
    let lists = summary["lists"].as_array().unwrap();
    assert_eq!((pushed.len(), lists.len()), (10, 10));
    assert_eq!(summary["supply"]["attestations_pushed"], 20, "{summary}");
    // One signature per manifest: 10 images and 5 lists (each versioned tag and its
    // unversioned alias are one manifest).
    assert_eq!(summary["supply"]["signatures_written"], 15, "{summary}");

    // The public key as a release asset: the one openssl derives from the private key.
    let assets = cfg.dir.path().join("assets");
    let (ok, _, err) = run(cfg
        .qus()
        .args(["assets", "--out"])
        .arg(&assets)
        .arg("--sign-key")
        .arg(&key)
        .args(cfg.debs_flag())
        .args(NARROW));
    assert!(ok, "assets: {err}");
    let asset = assets.join("cosign.pub");
    assert_eq!(std::fs::read_to_string(&asset).unwrap(), public);

    // Read back by another client.
    let tag_of = |r: &serde_json::Value| {
        r["reference"]
            .as_str()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .to_string()
    };
    let mut tags: Vec<String> = pushed.iter().map(tag_of).collect();
    tags.extend(lists.iter().map(|l| format!("={}", tag_of(l))));
    let seen = read_back(&registry, name, &asset, &tags);
    let (qemu, _) = sum(&deb("qemu-user", "amd64"));
    let (busybox, _) = sum(&deb("busybox-static", "amd64"));
    for p in pushed {
        let tag = tag_of(p);
        let r = &seen[&tag];
        assert_eq!(r["digest"], p["digest"], "{tag}");
        assert_eq!(r["signature"], true, "{tag}: {r}");
        assert_eq!(r["docker_reference"], repo.as_str(), "{tag}");
        assert_eq!(
            r["referrers_via"], "tag",
            "{tag}: distribution 2.8 has no referrers API"
        );
        assert_eq!(r["spdx_valid"], true, "{tag}: {}", r["spdx_messages"]);
        let sbom = &r["referrers"]["application/spdx+json"];
        let prov = &r["referrers"]["application/vnd.in-toto+json"];
        assert_eq!(sbom["spdxVersion"], "SPDX-2.3");
        let names: BTreeMap<String, String> = sbom["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| {
                Some((
                    p["name"].as_str()?.to_string(),
                    p["checksums"][0]["checksumValue"].as_str()?.to_string(),
                ))
            })
            .collect();
        let deps: Vec<&str> = prov["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["digest"]["sha256"].as_str().unwrap())
            .collect();
        if tag.starts_with("amd64-") {
            let has_qemu = !tag.ends_with("-register");
            let has_busybox = !tag.ends_with("-pkg");
            assert_eq!(
                names.get("qemu-user") == Some(&qemu),
                has_qemu,
                "{tag}: {names:?}"
            );
            assert_eq!(deps.contains(&qemu.as_str()), has_qemu, "{tag}: {deps:?}");
            assert_eq!(
                names.get("busybox-static") == Some(&busybox),
                has_busybox,
                "{tag}"
            );
            assert_eq!(deps.contains(&busybox.as_str()), has_busybox, "{tag}");
        }
        assert_eq!(prov["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(prov["predicateType"], "https://slsa.dev/provenance/v1");
        assert_eq!(
            format!(
                "sha256:{}",
                prov["subject"][0]["digest"]["sha256"].as_str().unwrap()
            ),
            p["digest"].as_str().unwrap(),
            "{tag}: the provenance's subject is the image"
        );
        assert_eq!(prov["predicate"]["runDetails"]["builder"]["id"], BUILDER);
    }
    for l in lists {
        let r = &seen[&tag_of(l)];
        assert_eq!(r["digest"], l["digest"]);
        assert_eq!(r["signature"], true, "{r}");
    }

    // Nothing changed: nothing written.
    let puts = registry.puts();
    let again = release();
    assert_eq!(
        registry.puts(),
        puts,
        "the second release wrote to the registry"
    );
    assert_eq!(again["supply"]["attestations_present"], 20, "{again}");
    assert_eq!(again["supply"]["signatures_present"], 15, "{again}");

    // qus verify --key agrees, then names a tag whose signature payload was tampered with.
    let verify = || {
        let mut c = cfg.qus();
        c.args(["verify", "--repo", &repo, "--key"])
            .arg(&asset)
            .args(cfg.debs_flag())
            .args(MATRIX);
        c.output().unwrap()
    };
    let out = verify();
    assert!(
        out.status.success(),
        "verify --key of a clean release: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let victim = pushed
        .iter()
        .find(|p| tag_of(p) == "amd64-d10.0-aarch64")
        .unwrap();
    tamper_payload(&repo, victim["digest"].as_str().unwrap());
    let out = verify();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a tampered payload is exit 1: {err}"
    );
    assert!(
        err.contains("amd64-d10.0-aarch64") && err.contains("signature"),
        "{err}"
    );
    assert!(
        err.contains("1 of 20 tags differ or fail the --key checks"),
        "{err}"
    );
}

/// Replaces the payload of the signature of `digest` by the same JSON with one more space:
/// the signature annotation stays, so it no longer matches.
fn tamper_payload(repo: &str, digest: &str) {
    use qus_registry::{Client, ClientConfig, Digest, ImageManifest, Reference};
    let client = Client::new(ClientConfig::default()).unwrap();
    let d = Digest::parse(digest).unwrap();
    let tag = Reference::parse(&format!("{repo}:sha256-{}.sig", d.hex())).unwrap();
    block_on(async {
        let raw = client.manifest_get(&tag).await.unwrap();
        let mut m: ImageManifest = serde_json::from_slice(&raw.bytes).unwrap();
        let payload = client.blob_get(&tag, &m.layers[0].digest).await.unwrap();
        let text = String::from_utf8(payload.to_vec())
            .unwrap()
            .replacen(':', ": ", 1);
        let up = client
            .upload_blob(&tag, &m.layers[0].media_type, bytes::Bytes::from(text))
            .await
            .unwrap();
        m.layers[0].digest = up.descriptor.digest;
        m.layers[0].size = up.descriptor.size;
        client
            .put_manifest(&tag, bytes::Bytes::from(m.to_bytes()), &m.media_type)
            .await
            .unwrap();
    });
}
