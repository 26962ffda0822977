//! `qus release` against a real registry (Debian's docker-registry on a loopback port), with
//! skopeo as the independent oracle and `docker pull --platform` as the user's check.

use crate::support::*;
use qus_registry::testkit::{TestRegistry, TEST_PASSWORD, TEST_USER};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

const MATRIX: &[&str] = &[
    "--hosts",
    "amd64,arm64v8,arm32v7",
    "--targets",
    "aarch64,arm",
    "--sources",
    "d10.0",
];

fn release(cfg: &TestConfig, repo: &str, extra: &[&str]) -> Command {
    let mut c = qus(cfg.dir.path());
    c.arg("--config")
        .arg(&cfg.path)
        .args(["release", "--repo", repo])
        .args(cfg.debs_flag())
        .args(MATRIX)
        .args(extra);
    c
}

fn skopeo_raw(reference: &str) -> serde_json::Value {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn platforms(list: &serde_json::Value) -> BTreeSet<String> {
    list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str() {
                s.push('/');
                s.push_str(v);
            }
            s
        })
        .collect()
}

/// Removes the daemon's images of a registry repository (they carry the registry's name).
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        drop(Repo {
            name: self.0.clone(),
        });
    }
}

#[test]
fn release_publishes_lists_pulls_by_platform_and_is_idempotent() {
    let cfg = real_config();
    let registry = TestRegistry::start().unwrap();
    let repo = format!("{}/qus-rel", registry.host());
    let _clean = Cleanup(repo.clone());
    let (ok, out, err) = run(&mut release(&cfg, &repo, &["--json"]));
    assert!(ok, "release failed: {err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pushed = summary["pushed"].as_array().unwrap();
    assert_eq!(pushed.len(), 14);

    // Every list carries the platforms of its hosts, and its entries are the pushed digests.
    let digests: BTreeSet<&str> = pushed
        .iter()
        .map(|p| p["digest"].as_str().unwrap())
        .collect();
    let want = |tag: &str| -> BTreeSet<String> {
        match tag {
            "aarch64" | "d10.0-aarch64" => {
                ["linux/amd64", "linux/arm64/v8"].map(String::from).into()
            }
            _ => ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]
                .map(String::from)
                .into(),
        }
    };
    for tag in [
        "latest",
        "d10.0",
        "pkg",
        "d10.0-pkg",
        "register",
        "d10.0-register",
        "aarch64",
        "d10.0-aarch64",
        "arm",
        "d10.0-arm",
    ] {
        let list = skopeo_raw(&format!("{repo}:{tag}"));
        assert_eq!(
            list["mediaType"], "application/vnd.oci.image.index.v1+json",
            "{tag}"
        );
        assert_eq!(platforms(&list), want(tag), "{tag}");
        for m in list["manifests"].as_array().unwrap() {
            assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            assert!(
                digests.contains(m["digest"].as_str().unwrap()),
                "{tag}: unknown entry"
            );
        }
    }

    // Each emulator is stored once per host: every distinct layer is one blob, plus one
    // config blob per image (read back with skopeo, not with qus).
    let mut layers = BTreeSet::new();
    let mut configs = BTreeSet::new();
    for p in pushed {
        let m = skopeo_raw(p["reference"].as_str().unwrap());
        assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        for l in m["layers"].as_array().unwrap() {
            layers.insert(l["digest"].as_str().unwrap().to_string());
        }
        configs.insert(m["config"]["digest"].as_str().unwrap().to_string());
    }
    // The registry also keeps every manifest and list as a blob.
    let lists: BTreeSet<&str> = summary["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    // And every image's SBOM and provenance: two documents, their two artifact manifests and
    // the `sha256-<hex>` referrers list per image, and the one empty config they share.
    let attestations = digests.len() * 5 + 1;
    let stats = registry.stats().unwrap();
    assert_eq!(
        stats.blobs as usize,
        layers.len() + configs.len() + digests.len() + lists.len() + attestations,
        "{stats:?}"
    );
    assert_eq!(
        layers.len(),
        3 + 2 + 2 + 1,
        "register per host + emulators per host"
    );

    // The user's check: the daemon resolves the list by platform, and the image it pulls is
    // the one qus wrote (its ID is the config digest).
    let (ok, _, err) = run(Command::new("docker").args([
        "pull",
        "--platform",
        "linux/arm/v7",
        &format!("{repo}:arm"),
    ]));
    assert!(ok, "docker pull: {err}");
    let pulled = inspect(&format!("{repo}:arm")).unwrap();
    assert_eq!(pulled.platform, "linux/arm/v7");
    let arm = skopeo_raw(&format!("{repo}:arm32v7-d10.0-arm"));
    assert_eq!(pulled.id, arm["config"]["digest"].as_str().unwrap());

    // Nothing changed: no blob or manifest is uploaded and no list is rewritten.
    let puts = registry.puts();
    let (ok, out, err) = run(&mut release(&cfg, &repo, &["--json"]));
    assert!(ok, "{err}");
    assert_eq!(
        registry.puts(),
        puts,
        "the second run wrote to the registry"
    );
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(s["pushed"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"] == "present"));
    assert!(s["lists"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["status"] == "unchanged"));
}

/// Tag → digest of the images and lists a `release --json` reported.
fn digests_by_tag(summary: &serde_json::Value) -> BTreeMap<String, String> {
    ["pushed", "lists"]
        .iter()
        .flat_map(|key| summary[*key].as_array().unwrap().iter())
        .map(|p| {
            let r = p["reference"].as_str().unwrap();
            (
                r.rsplit(':').next().unwrap().to_string(),
                p["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn same_pins_same_digests_anywhere_and_a_fresh_runner_uploads_nothing() {
    // Two machines: two empty caches, two registries.
    let (a, b) = (real_config(), real_config());
    let (ra, rb) = (
        TestRegistry::start().unwrap(),
        TestRegistry::start().unwrap(),
    );
    let (repo_a, repo_b) = (
        format!("{}/qus-same", ra.host()),
        format!("{}/qus-same", rb.host()),
    );
    let (_ca, _cb) = (Cleanup(repo_a.clone()), Cleanup(repo_b.clone()));
    let go = |cfg: &TestConfig, repo: &str, extra: &[&str]| {
        let (ok, out, err) = run(release(cfg, repo, &["--json"])
            .args(extra)
            .env("DOCKER_HOST", "tcp://127.0.0.1:1"));
        assert!(ok, "release to {repo} (no daemon reachable): {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let layout = a.dir.path().join("oci");
    let first = go(&a, &repo_a, &["--oci-layout", layout.to_str().unwrap()]);
    let second = go(&b, &repo_b, &[]);
    let digests = digests_by_tag(&first);
    assert_eq!(digests.len(), 14 + 10);
    assert_eq!(
        digests,
        digests_by_tag(&second),
        "two machines, two results"
    );

    // A third runner (empty cache, no daemon) releasing into the first registry finds
    // everything there: HEADs only, no PUT, no POST.
    let puts = ra.puts();
    let posts = ra.count("POST");
    let c = real_config();
    let third = go(&c, &repo_a, &[]);
    assert_eq!(
        (ra.puts(), ra.count("POST")),
        (puts, posts),
        "the fresh runner wrote"
    );
    assert_eq!(digests_by_tag(&third), digests);
    assert!(third["images"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "unchanged"));

    // The OCI layout holds the same digests as the registry (skopeo reads both).
    for (tag, digest) in &digests {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            &format!("sha256:{}", sha256_hex(&out.stdout)),
            digest,
            "{tag}"
        );
    }

    // `qus verify` agrees, then names a tag that no longer holds what the pins give.
    let verify = |cfg: &TestConfig| {
        run(cfg
            .qus()
            .args(["verify", "--repo", &repo_a, "--json"])
            .args(MATRIX)
            .args(cfg.debs_flag()))
    };
    let (ok, out, err) = verify(&c);
    assert!(ok, "verify of an untouched release: {err}");
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(rows["tags"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "identical"));
    let copied = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{repo_a}:amd64-d10.0-arm"))
        .arg(format!("docker://{repo_a}:amd64-d10.0-aarch64"))
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let mut cmd = c.qus();
    cmd.args(["verify", "--repo", &repo_a])
        .args(MATRIX)
        .args(c.debs_flag());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a differing tag is exit 1");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| l.contains(":amd64-d10.0-aarch64 "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("different") && line.contains("config sha256:"),
        "{line}"
    );
    assert!(
        err.contains("amd64-d10.0-aarch64") && err.contains("1 of 24 tags differ"),
        "{err}"
    );
}

#[test]
fn a_corrupt_cached_blob_is_detected_and_written_again() {
    let cfg = real_config();
    let (ra, rb) = (
        TestRegistry::start().unwrap(),
        TestRegistry::start().unwrap(),
    );
    let (repo_a, repo_b) = (
        format!("{}/qus-corrupt", ra.host()),
        format!("{}/qus-corrupt", rb.host()),
    );
    let (_ca, _cb) = (Cleanup(repo_a.clone()), Cleanup(repo_b.clone()));
    let (ok, out, err) = run(&mut release(&cfg, &repo_a, &["--json"]));
    assert!(ok, "{err}");
    let clean = digests_by_tag(&serde_json::from_str(&out).unwrap());
    // Damage every cached layer blob without changing its size.
    let blobs = cfg.dir.path().join("oci/blobs/sha256");
    let mut damaged = 0;
    for e in std::fs::read_dir(&blobs).unwrap() {
        let p = e.unwrap().path();
        let mut bytes = std::fs::read(&p).unwrap();
        if bytes.len() > 1000 {
            bytes[500] ^= 0xff;
            std::fs::write(&p, bytes).unwrap();
            damaged += 1;
        }
    }
    assert!(damaged >= 8, "{damaged} blobs damaged");
    // A release that has to upload them reads, detects, rewrites, and pushes the right bytes.
    let (ok, out, err) = run(&mut release(&cfg, &repo_b, &["--json"]));
    assert!(ok, "{err}");
    assert_eq!(digests_by_tag(&serde_json::from_str(&out).unwrap()), clean);
    for e in std::fs::read_dir(&blobs).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with('.') {
            assert_eq!(sha256_hex(&std::fs::read(&p).unwrap()), name, "{name}");
        }
    }
}

#[test]
fn registry_gone_mid_upload_then_back_finishes_with_clean_digests() {
    let cfg = real_config();
    let registry = TestRegistry::start().unwrap();
    // The registry goes away once 3 MB of uploads went through: in the middle of a blob.
    let proxy = crate::support::proxy::FaultyProxy::start(registry.port(), 3_000_000);
    let repo = format!("{}/qus-fault", proxy.host());
    let _clean = Cleanup(repo.clone());
    let (ok, _, err) = run(&mut release(&cfg, &repo, &[]));
    assert!(
        proxy.is_down(),
        "the release finished before the fault: {err}"
    );
    assert!(!ok, "release succeeded with the registry gone");
    assert!(err.contains(&proxy.host()), "{err}");

    proxy.come_back();
    // No list was written by the failed run.
    let client = qus_registry::Client::new(qus_registry::ClientConfig::default()).unwrap();
    let latest = qus_registry::Reference::parse(&format!("{repo}:latest")).unwrap();
    assert!(block_on(client.manifest_head(&latest)).unwrap().is_none());

    let (ok, out, err) = run(&mut release(&cfg, &repo, &["--json"]));
    assert!(ok, "re-run failed: {err}");
    let resumed: serde_json::Value = serde_json::from_str(&out).unwrap();

    // A clean run of the same images into a fresh registry gives the same digests.
    let clean = TestRegistry::start().unwrap();
    let clean_repo = format!("{}/qus-fault", clean.host());
    let _clean2 = Cleanup(clean_repo.clone());
    let (ok, out, err) = run(&mut release(&cfg, &clean_repo, &["--json"]));
    assert!(ok, "{err}");
    let fresh: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(digests_by_tag(&resumed), digests_by_tag(&fresh));
}

#[test]
fn wrong_credentials_name_the_registry_and_never_the_password() {
    let cfg = real_config();
    let registry = TestRegistry::start_with_htpasswd().unwrap();
    let repo = format!("{}/qus-auth", registry.host());
    let _clean = Cleanup(repo.clone());
    let secret = "not-the-password-1234";
    let (ok, out, err) = run_with_stdin(
        &mut release(&cfg, &repo, &["--username", TEST_USER, "--password-stdin"]),
        secret,
    );
    assert!(!ok);
    assert!(err.contains(&registry.host()), "names the registry: {err}");
    assert!(!err.contains(secret) && !out.contains(secret));
    // It failed before building anything.
    assert!(Repo { name: repo.clone() }.images().is_empty());

    // The right password works (a narrow matrix is enough).
    let (ok, _, err) = run_with_stdin(
        cfg.qus()
            .args([
                "release",
                "--repo",
                &repo,
                "--username",
                TEST_USER,
                "--password-stdin",
            ])
            .args(NARROW)
            .args(cfg.debs_flag()),
        TEST_PASSWORD,
    );
    assert!(ok, "{err}");
}

#[test]
fn publish_refuses_a_list_whose_entry_is_missing() {
    let cfg = real_config();
    let registry = TestRegistry::start().unwrap();
    let repo = format!("{}/qus-pub", registry.host());
    let _clean = Cleanup(repo.clone());
    // Only amd64 pushed (one job of a CI matrix)…
    let (ok, _, err) = run(cfg
        .qus()
        .args(["release", "--repo", &repo, "--skip-lists"])
        .args([
            "--hosts",
            "amd64",
            "--targets",
            "aarch64",
            "--sources",
            "d10.0",
        ])
        .args(cfg.debs_flag()));
    assert!(ok, "{err}");
    // …then the lists job for amd64 and arm64v8: arm64v8's images are not there.
    let (ok, _, err) = run(cfg.qus().args(["publish", "--repo", &repo]).args(TWO_HOSTS));
    assert!(!ok);
    assert!(
        err.contains("arm64v8-d10.0-register") && err.contains("push it first"),
        "{err}"
    );
    let client = qus_registry::Client::new(qus_registry::ClientConfig::default()).unwrap();
    let latest = qus_registry::Reference::parse(&format!("{repo}:register")).unwrap();
    assert!(
        block_on(client.manifest_head(&latest)).unwrap().is_none(),
        "a list was written"
    );
    // With amd64 alone, the lists publish.
    let (ok, _, err) = run(cfg.qus().args(["publish", "--repo", &repo]).args([
        "--hosts",
        "amd64",
        "--targets",
        "aarch64",
        "--sources",
        "d10.0",
    ]));
    assert!(ok, "{err}");
    assert_eq!(platforms(&skopeo_raw(&format!("{repo}:aarch64"))).len(), 1);
}

#[test]
fn changing_one_hosts_pin_rebuilds_and_pushes_only_that_host() {
    let registry = TestRegistry::start().unwrap();
    let repo = format!("{}/qus-incr", registry.host());
    let _clean = Cleanup(repo.clone());
    let narrow = [
        "--hosts",
        "amd64,arm64v8",
        "--targets",
        "aarch64",
        "--sources",
        "d10.0",
    ];
    let go = |cfg: &TestConfig| {
        let (ok, out, err) = run(cfg
            .qus()
            .args(["release", "--repo", &repo, "--json"])
            .args(narrow)
            .args(cfg.debs_flag()));
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let before = config_with(
        vec![
            Pin::new("amd64", deb("qemu-user", "amd64")),
            Pin::new("arm64v8", deb("qemu-user", "arm64")),
        ],
        vec![],
    );
    go(&before);
    // A maintainer bumps arm64v8's package (here: another real arm64 package).
    let after = config_with(
        vec![
            Pin::new("amd64", deb("qemu-user", "amd64")),
            Pin::new("arm64v8", deb("qemu-user-static", "arm64")),
        ],
        vec![],
    );
    let s = go(&after);
    let status = |key: &str, host: &str| -> BTreeSet<String> {
        s[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| {
                i["reference"]
                    .as_str()
                    .unwrap()
                    .contains(&format!(":{host}-"))
            })
            .map(|i| i["status"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(status("images", "amd64"), ["unchanged".to_string()].into());
    assert_eq!(status("images", "arm64v8"), ["built".to_string()].into());
    assert_eq!(status("pushed", "amd64"), ["present".to_string()].into());
    assert_eq!(status("pushed", "arm64v8"), ["pushed".to_string()].into());
    // Every list names an arm64v8 image, so every list changes.
    assert!(s["lists"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["status"] == "written"));
}

#[test]
fn a_list_is_written_only_whole_and_never_loses_a_platform() {
    let cfg = real_config();
    let mirror = crate::support::mirror::Partial::new(&cfg);
    let registry = TestRegistry::start().unwrap();
    let repo = format!("{}/qus-whole", registry.host());
    let _clean = Cleanup(repo.clone());
    let url = mirror.server.url();
    let go = |cmd: &str, matrix: &[&str]| {
        let mirror_flag = if cmd == "release" {
            vec!["--mirror", &url]
        } else {
            vec![]
        };
        run_json(
            qus(cfg.dir.path())
                .arg("--config")
                .arg(&cfg.path)
                .args([cmd, "--repo", &repo, "--json"])
                .args(matrix)
                .args(mirror_flag),
        )
    };
    let tags = |json: &serde_json::Value, key: &str| -> BTreeSet<String> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let r = l["reference"].as_str().unwrap();
                r.rsplit(':').next().unwrap().to_string()
            })
            .collect()
    };

    // arm64v8's qemu-user is not served: everything else is pushed, and only the lists whose
    // every entry is in the registry are written.
    let (code, s, err) = go("release", TWO_HOSTS);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&mirror.name()) && err.contains("qus lock"),
        "{err}"
    );
    assert_eq!(s["pushed"].as_array().unwrap().len(), 5, "{s}");
    assert_eq!(
        tags(&s, "lists"),
        ["d10.0-register", "register"].map(String::from).into()
    );
    assert_eq!(s["failed_packages"][0]["host"], "arm64v8");
    assert_eq!(tags(&s, "lists_not_written").len(), 6, "{s}");
    assert!(s["failed"]
        .as_str()
        .unwrap()
        .contains("1 package could not be used"));
    let client = qus_registry::Client::new(qus_registry::ClientConfig::default()).unwrap();
    let latest = qus_registry::Reference::parse(&format!("{repo}:latest")).unwrap();
    assert!(block_on(client.manifest_head(&latest)).unwrap().is_none());

    // Served again: the rest is pushed and every list written, over both hosts.
    mirror.serve(true);
    let (code, s, err) = go("release", TWO_HOSTS);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(tags(&s, "lists").len(), 8);
    assert_eq!(platforms(&skopeo_raw(&format!("{repo}:latest"))).len(), 2);

    // amd64 alone: each list would lose linux/arm64/v8. It is left as it was, named, and the
    // run fails; `qus publish` keeps the same rule.
    let puts = registry.puts();
    for cmd in ["release", "publish"] {
        let (code, s, err) = go(cmd, NARROW);
        assert_eq!(code, Some(1), "{cmd}: {err}");
        assert_lists_kept(&s, "registry", 8, &["linux/arm64/v8"]);
        assert!(s["lists"].as_array().unwrap().is_empty(), "{cmd}: {s}");
        assert!(
            err.contains("left as they were in the registry"),
            "{cmd}: {err}"
        );
    }
    assert_eq!(registry.puts(), puts, "a list was rewritten");
    assert_eq!(platforms(&skopeo_raw(&format!("{repo}:latest"))).len(), 2);
}

/// The digest of each blob upload a registry's log shows (`PUT …/blobs/uploads/…?digest=`).
fn uploaded_blobs(registry: &TestRegistry) -> Vec<String> {
    registry
        .access_log()
        .into_iter()
        .filter(|e| e.method == "PUT" && e.path.contains("/blobs/uploads/"))
        .filter_map(|e| {
            let (_, query) = e.path.split_once('?')?;
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("digest="))
                .map(|d| d.replace("%3A", ":"))
        })
        .collect()
}

#[test]
fn one_release_to_two_registries_gives_each_the_same_images_and_one_down_stops_no_other() {
    let cfg = real_config();
    let (ra, rb) = (
        TestRegistry::start().unwrap(),
        TestRegistry::start().unwrap(),
    );
    let (repo_a, repo_b) = (
        format!("{}/qus-two", ra.host()),
        format!("{}/qus-two", rb.host()),
    );
    // `--repo` repeated, or `QUS_REPO` as a comma list.
    let release_to = |repos: &[&str]| {
        let mut cmd = cfg.qus();
        cmd.arg("release");
        if repos[0].starts_with("127.0.0.1:1/") {
            cmd.env("QUS_REPO", repos.join(","));
        } else {
            for r in repos {
                cmd.args(["--repo", r]);
            }
        }
        cmd.args(["--json", "--test", "none"])
            .args(TWO_HOSTS)
            .args(cfg.debs_flag())
            .env("DOCKER_HOST", "tcp://127.0.0.1:1");
        run_json(&mut cmd)
    };
    let (code, json, err) = release_to(&[&repo_a, &repo_b]);
    assert_eq!(code, Some(0), "{err}");
    let regs = json["registries"].as_array().unwrap();
    assert_eq!(regs.len(), 2, "{json}");
    assert_eq!(regs[0]["repo"], repo_a.as_str());
    assert_eq!(regs[1]["repo"], repo_b.as_str());
    let (a, b) = (&regs[0]["summary"], &regs[1]["summary"]);
    let digests = digests_by_tag(a);
    assert_eq!(digests.len(), 8 + 8, "{a}");
    assert_eq!(digests, digests_by_tag(b), "two registries, two results");
    // Each registry got every blob, each once.
    let (blobs_a, blobs_b) = (uploaded_blobs(&ra), uploaded_blobs(&rb));
    let unique = |v: &[String]| v.iter().collect::<BTreeSet<_>>().len();
    assert!(!blobs_a.is_empty());
    assert_eq!(
        unique(&blobs_a),
        blobs_a.len(),
        "a blob sent twice: {blobs_a:?}"
    );
    assert_eq!(
        unique(&blobs_b),
        blobs_b.len(),
        "a blob sent twice: {blobs_b:?}"
    );
    // Every image config went to both (the attestations name their registry, so differ;
    // `layers` are diff IDs, the uncompressed digests).
    let image_blobs: BTreeSet<String> = a["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    for sent in [&blobs_a, &blobs_b] {
        let sent: BTreeSet<String> = sent.iter().cloned().collect();
        let missing: Vec<&String> = image_blobs.difference(&sent).collect();
        assert!(missing.is_empty(), "not uploaded: {missing:?}");
    }
    assert_eq!(a["uploads"]["blobs"], b["uploads"]["blobs"]);
    assert_eq!(a["uploads"]["blobs"], 12, "8 configs and 4 layers");

    // One registry down (listed first): the other still gets everything; exit 1 names it.
    let rc = TestRegistry::start().unwrap();
    let repo_c = format!("{}/qus-two", rc.host());
    let dead = "127.0.0.1:1/qus-two";
    let (code, json, err) = release_to(&[dead, &repo_c]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("1 of 2 registries failed: 127.0.0.1:1/qus-two"),
        "{err}"
    );
    let regs = json["registries"].as_array().unwrap();
    assert!(regs[0]["summary"]["failed"].as_str().is_some(), "{json}");
    assert!(regs[1]["summary"]["failed"].is_null(), "{json}");
    assert_eq!(digests_by_tag(&regs[1]["summary"]), digests);
}

#[test]
fn two_repositories_of_one_registry_share_blobs_by_mounting_them() {
    let cfg = real_config();
    let registry = TestRegistry::start().unwrap();
    let (first, second) = (
        format!("{}/qus-first", registry.host()),
        format!("{}/qus-second", registry.host()),
    );
    let (code, json, err) = run_json(
        cfg.qus()
            .args(["release", "--repo", &first, "--repo", &second])
            .args(["--json", "--test", "none"])
            .args(TWO_HOSTS)
            .args(cfg.debs_flag())
            .env("DOCKER_HOST", "tcp://127.0.0.1:1"),
    );
    assert_eq!(code, Some(0), "{err}");
    let regs = json["registries"].as_array().unwrap();
    let (a, b) = (&regs[0]["summary"], &regs[1]["summary"]);
    assert_eq!(a["uploads"]["blobs"], 12, "{a}");
    // The second repository's image blobs were all mounted: none sent again.
    assert_eq!(b["uploads"]["mounted"], 12, "{b}");
    assert_eq!(b["uploads"]["blobs"], 0, "{b}");
    let mounts = registry
        .access_log()
        .into_iter()
        .filter(|e| {
            e.method == "POST" && e.path.starts_with("/v2/qus-second/") && e.path.contains("mount=")
        })
        .count();
    assert_eq!(mounts, 12);
    assert_eq!(digests_by_tag(a), digests_by_tag(b));
    // skopeo reads an image of the second repository whole.
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{second}:amd64-d10.0-aarch64"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
