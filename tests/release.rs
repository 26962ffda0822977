//! `qus release` against a real registry (Debian's docker-registry on a loopback port), with
//! skopeo as the independent oracle and `docker pull --platform` as the user's check.

use crate::support::*;
use qus_registry::testkit::{TestRegistry, TEST_PASSWORD, TEST_USER};
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};

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
            list["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json",
            "{tag}"
        );
        assert_eq!(platforms(&list), want(tag), "{tag}");
        for m in list["manifests"].as_array().unwrap() {
            assert!(
                digests.contains(m["digest"].as_str().unwrap()),
                "{tag}: unknown entry"
            );
        }
    }

    // Each emulator is stored once per host: every distinct layer is one blob, plus one
    // config blob per image. (The dbhi layout stores pkg's and full's binaries twice.)
    let mut layers = BTreeSet::new();
    let mut configs = BTreeSet::new();
    for p in pushed {
        let info = inspect(p["reference"].as_str().unwrap()).unwrap();
        layers.extend(info.layers);
        configs.insert(info.id);
    }
    // The registry also keeps every manifest and list as a blob.
    let lists: BTreeSet<&str> = summary["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    let stats = registry.stats().unwrap();
    assert_eq!(
        stats.blobs as usize,
        layers.len() + configs.len() + digests.len() + lists.len(),
        "{stats:?}"
    );
    assert_eq!(
        layers.len(),
        3 + 2 + 2 + 1,
        "register per host + emulators per host"
    );

    // The user's check: the daemon resolves the list by platform.
    drop(Repo { name: repo.clone() });
    let (ok, _, err) = run(Command::new("docker").args([
        "pull",
        "--platform",
        "linux/arm/v7",
        &format!("{repo}:arm"),
    ]));
    assert!(ok, "docker pull: {err}");
    let pulled = inspect(&format!("{repo}:arm")).unwrap();
    assert_eq!(pulled.platform, "linux/arm/v7");

    // Nothing changed: no blob or manifest is uploaded and no list is rewritten.
    let (ok, _, err) = run(&mut release(&cfg, &repo, &[]));
    assert!(ok, "{err}");
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

#[test]
fn registry_gone_mid_push_then_back_finishes_with_clean_digests() {
    let cfg = real_config();
    let mut registry = TestRegistry::start().unwrap();
    let repo = format!("{}/qus-fault", registry.host());
    let _clean = Cleanup(repo.clone());

    // Stop the registry as soon as qus starts the first push. (Not on the registry's first
    // logged upload: its log can trail the uploads by long enough for a small release to
    // finish.)
    let mut child = release(&cfg, &repo, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained meanwhile, so a chatty child never blocks on a full pipe.
    let pipe = child.stderr.take().unwrap();
    let (first_push, pushing) = std::sync::mpsc::channel::<()>();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(pipe)).map_while(Result::ok) {
            if line.contains("] pushing ") {
                first_push.send(()).ok();
            }
            s.push_str(&line);
            s.push('\n');
        }
        s
    });
    match pushing.recv_timeout(std::time::Duration::from_secs(900)) {
        Ok(()) => {}
        Err(_) => {
            child.kill().ok();
            let status = child.wait().unwrap();
            panic!(
                "release never started pushing ({status}): {}",
                stderr.join().unwrap()
            );
        }
    }
    registry.stop();
    let status = child.wait().unwrap();
    let err = stderr.join().unwrap();
    assert!(
        !status.success(),
        "release succeeded with the registry gone"
    );
    assert!(
        err.contains(&registry.host()) || err.contains("pushing"),
        "{err}"
    );

    registry.restart().unwrap();
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
    let by_tag = |v: &serde_json::Value, key: &str| -> BTreeMap<String, String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let r = p["reference"].as_str().unwrap();
                (
                    r.rsplit(':').next().unwrap().to_string(),
                    p["digest"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(by_tag(&resumed, "pushed"), by_tag(&fresh, "pushed"));
    assert_eq!(by_tag(&resumed, "lists"), by_tag(&fresh, "lists"));
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
    let (ok, _, err) = run(cfg.qus().args(["publish", "--repo", &repo]).args([
        "--hosts",
        "amd64,arm64v8",
        "--targets",
        "aarch64",
        "--sources",
        "d10.0",
    ]));
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
