//! `qus release` against registries set up the way users' are: behind a private CA with
//! client certificates (Docker's certs.d), with credentials from a credential helper, with
//! proxies in the environment that cannot reach loopback; how many manifests a release and
//! a publish read; and no `user:pass@` echoed back.

use crate::support::*;
use qus_registry::testkit::{Options, TestCa, TestRegistry, TEST_PASSWORD, TEST_USER};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Nothing listens there: a request that goes through this proxy fails.
const DEAD_PROXY: &str = "http://127.0.0.1:1";

/// Every proxy variable pointing at [`DEAD_PROXY`], and no exception list.
fn through_dead_proxies(c: &mut Command) -> &mut Command {
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env(v, DEAD_PROXY);
    }
    c.env_remove("NO_PROXY").env_remove("no_proxy")
}

/// A Docker config whose credential helper for `registry` answers the test user and logs
/// each call to `<dir>/helper.log`; returns the folder to put first in `PATH`.
fn helper_config(dir: &Path, registry: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("helper.log");
    let helper = bin.join("docker-credential-qustest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r server\necho \"$server\" >> {}\n\
             printf '{{\"Username\":\"{TEST_USER}\",\"Secret\":\"{TEST_PASSWORD}\"}}'\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"credHelpers":{{"{registry}":"qustest"}}}}"#),
    )
    .unwrap();
    bin
}

fn helper_calls(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("helper.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

#[test]
fn a_tls_registry_with_client_certificates_gets_a_full_release_through_dead_proxies() {
    let cfg = real_config();
    let ca = TestCa::new().unwrap();
    let registry = TestRegistry::start_with(Options {
        htpasswd: true,
        tls: Some(ca.server_tls(true)),
        ..Options::default()
    })
    .unwrap();
    let certs = tempfile::tempdir().unwrap();
    let host_certs = ca.certs_d(certs.path(), &registry.host(), true).unwrap();
    let docker = tempfile::tempdir().unwrap();
    let bin = helper_config(docker.path(), &registry.host());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let repo = format!("{}/qus-tls", registry.host());

    let mut cmd = cfg.qus();
    cmd.args(["release", "--repo", &repo, "--json"])
        .args(TWO_HOSTS)
        .args(cfg.debs_flag())
        .env("QUS_DOCKER_CERTS_D", certs.path())
        .env("DOCKER_CONFIG", docker.path())
        .env("PATH", &path)
        // No daemon: the default builder needs none.
        .env("DOCKER_HOST", "tcp://127.0.0.1:1");
    let (ok, out, err) = run(through_dead_proxies(&mut cmd));
    assert!(ok, "release over TLS through dead proxies: {err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["pushed"].as_array().unwrap().len(), 8);
    let lists = summary["lists"].as_array().unwrap();
    assert_eq!(lists.len(), 8);
    assert!(lists.iter().all(|l| l["status"] == "written"));

    // skopeo, with the same certs.d folder (CA and client certificate) and the same user,
    // reads back every list qus wrote.
    for l in lists {
        let reference = l["reference"].as_str().unwrap();
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--cert-dir"])
            .arg(&host_certs)
            .args(["--creds", &format!("{TEST_USER}:{TEST_PASSWORD}")])
            .arg(format!("docker://{reference}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            format!("sha256:{}", sha256_hex(&out.stdout)),
            l["digest"].as_str().unwrap(),
            "{reference}"
        );
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            list["manifests"].as_array().unwrap().len(),
            2,
            "{reference}"
        );
    }
    // The helper was asked when the client connected, and again before each push phase
    // (images, then lists).
    assert_eq!(helper_calls(docker.path()), 3);

    // Without the folder, the message says where the CA goes.
    let mut cmd = cfg.qus();
    cmd.args(["publish", "--repo", &repo])
        .args(TWO_HOSTS)
        .env("QUS_DOCKER_CERTS_D", docker.path().join("none"))
        .env("DOCKER_CONFIG", docker.path())
        .env("PATH", &path);
    let (ok, _, err) = run(&mut cmd);
    assert!(!ok);
    assert!(
        err.contains("speaks HTTPS") && err.contains("ca.crt"),
        "{err}"
    );
}

#[test]
fn a_release_to_a_plain_loopback_registry_ignores_dead_proxies() {
    let cfg = real_config();
    let registry = TestRegistry::start().unwrap();
    let repo = format!("{}/qus-proxy", registry.host());
    let mut cmd = cfg.qus();
    cmd.args(["release", "--repo", &repo])
        .args(NARROW)
        .args(cfg.debs_flag())
        .env("DOCKER_HOST", "tcp://127.0.0.1:1");
    let (ok, _, err) = run(through_dead_proxies(&mut cmd));
    assert!(ok, "{err}");
    assert!(registry.puts() > 0);
}

/// GET requests for manifests in the registry's log, by path; the referrers lists qus
/// keeps under `sha256-<hex>` tags (read before an SBOM or provenance is added to one)
/// are counted apart, by [`referrer_gets`].
fn manifest_gets(registry: &TestRegistry) -> BTreeMap<String, usize> {
    gets(registry, false)
}

/// GETs of the `sha256-<hex>` referrers tags (the tag schema of registries without the
/// referrers API), by path.
fn referrer_gets(registry: &TestRegistry) -> BTreeMap<String, usize> {
    gets(registry, true)
}

fn gets(registry: &TestRegistry, referrers: bool) -> BTreeMap<String, usize> {
    let mut gets = BTreeMap::new();
    for e in registry.access_log() {
        let is_referrers = e.path.contains("/manifests/sha256-");
        if e.method == "GET" && e.path.contains("/manifests/") && is_referrers == referrers {
            *gets.entry(e.path).or_insert(0) += 1;
        }
    }
    gets
}

#[test]
fn a_release_reads_no_manifest_and_a_publish_reads_each_image_once() {
    let cfg = real_config();
    let registry = TestRegistry::start().unwrap();
    let repo = format!("{}/qus-gets", registry.host());
    let matrix = [
        "--hosts",
        "amd64,arm64v8,arm32v7",
        "--targets",
        "aarch64,arm",
        "--sources",
        "d10.0",
    ];
    let release = |cfg: &TestConfig| {
        run(cfg
            .qus()
            .args(["release", "--repo", &repo])
            .args(matrix)
            .args(cfg.debs_flag()))
    };
    let (ok, _, err) = release(&cfg);
    assert!(ok, "{err}");
    // HEAD where a digest suffices: writing 14 images and 10 lists read no image manifest;
    // attaching each image's SBOM and provenance reads its referrers list at most once.
    assert_eq!(manifest_gets(&registry), BTreeMap::new());
    let referrers = referrer_gets(&registry);
    assert!(
        referrers.len() <= 14 && referrers.values().all(|n| *n == 1),
        "{referrers:#?}"
    );
    // Nor does a second run from a fresh cache (it HEADs every tag).
    let (ok, _, err) = release(&real_config());
    assert!(ok, "{err}");
    assert_eq!(manifest_gets(&registry), BTreeMap::new());
    // Without the cache's memo it reads each referrers list (to see the SBOM and the
    // provenance are there), once: still at most one manifest GET per image.
    let again = referrer_gets(&registry);
    let second_run = |p: &String, n: &usize| n - referrers.get(p).copied().unwrap_or(0);
    assert!(
        again.len() <= 14 && again.iter().all(|(p, n)| second_run(p, n) <= 1),
        "{again:#?}"
    );

    // `qus publish` checks each entry's platform in its config: one manifest GET per
    // image, by digest, although each image is in two lists and lists are checked
    // side by side.
    let (ok, _, err) = run(cfg.qus().args(["publish", "--repo", &repo]).args(matrix));
    assert!(ok, "{err}");
    let gets = manifest_gets(&registry);
    assert_eq!(gets.len(), 14, "{gets:#?}");
    assert!(gets.values().all(|n| *n == 1), "{gets:#?}");
    assert!(
        gets.keys().all(|p| p.contains("/manifests/sha256:")),
        "{gets:#?}"
    );
}

#[test]
fn the_classic_builder_release_reads_each_manifest_at_most_once() {
    let cfg = real_config();
    let registry = TestRegistry::start().unwrap();
    let repo = format!("{}/qus-classic", registry.host());
    let _clean = Repo { name: repo.clone() };
    let release = || {
        run(cfg
            .qus()
            .args([
                "release",
                "--repo",
                &repo,
                "--json",
                "--builder",
                "dockerfile",
            ])
            .args(NARROW)
            .args(cfg.debs_flag()))
    };
    let (ok, out, err) = release();
    assert!(ok, "{err}");
    let first: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(first["pushed"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["status"] == "pushed"));
    // The daemon says which digest it pushed; a HEAD confirms it: no manifest read.
    assert_eq!(manifest_gets(&registry), BTreeMap::new());

    // Again: the daemon recorded what it pushed (RepoDigests), so each tag's HEAD digest
    // tells the image is there, whatever the image store.
    let (ok, out, err) = release();
    assert!(ok, "{err}");
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        again["pushed"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] == "present"),
        "{again}"
    );
    assert_eq!(manifest_gets(&registry), BTreeMap::new());
    assert_eq!(
        first["lists"].as_array().unwrap().len(),
        again["lists"].as_array().unwrap().len()
    );
}

#[test]
fn credentials_typed_into_the_repository_are_never_echoed() {
    let cfg = real_config();
    for repo in [
        "alice:hunter2-in-repo@127.0.0.1:5000/qus",
        "https://alice:hunter2-in-repo@127.0.0.1:5000/qus",
    ] {
        for sub in ["release", "publish", "plan"] {
            let (ok, out, err) =
                run(cfg
                    .qus()
                    .args([sub, "--repo", repo])
                    .args(NARROW)
                    .args(if sub == "release" {
                        cfg.debs_flag().to_vec()
                    } else {
                        vec![]
                    }));
            assert!(!ok, "{sub} {repo}");
            assert!(
                !err.contains("hunter2") && !out.contains("hunter2"),
                "{err}"
            );
            assert!(err.contains("<redacted>@127.0.0.1:5000/qus"), "{err}");
        }
    }
}

#[test]
fn a_release_with_a_layout_and_no_repo_writes_the_layout_and_contacts_no_registry() {
    let cfg = real_config();
    let layout = cfg.dir.path().join("oci");
    let mut cmd = cfg.qus();
    cmd.args(["release", "--oci-layout"])
        .arg(&layout)
        .args(TWO_HOSTS)
        .args(cfg.debs_flag())
        .env_remove("QUS_REPO")
        // No daemon, and every proxy dead: a registry request (docker.io, the bare repo's
        // registry) could only fail.
        .env("DOCKER_HOST", "tcp://127.0.0.1:1");
    let (ok, _, err) = run(through_dead_proxies(&mut cmd));
    assert!(ok, "layout-only release: {err}");
    assert!(err.contains("no registry is contacted"), "{err}");

    // Every tag of the plan is in the layout's index.
    let plan = plan_json(&cfg, TWO_HOSTS);
    let mut want: Vec<String> = ["images", "manifests"]
        .iter()
        .flat_map(|k| plan[*k].as_array().unwrap().iter())
        .map(|i| i["tag"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut got: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert!(want.len() > 2, "{want:?}");

    // A repository that names a registry still gets the push (the dead port refuses it).
    let mut cmd = cfg.qus();
    cmd.args(["release", "--oci-layout"])
        .arg(&layout)
        .args(["--repo", "127.0.0.1:1/qus-none"])
        .args(TWO_HOSTS)
        .args(cfg.debs_flag());
    let (ok, _, err) = run(&mut cmd);
    assert!(!ok);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

/// A registry certificate made as Docker's documentation makes one for a self-signed
/// registry (`openssl req -newkey rsa:4096 -nodes -sha256 -x509 …`, CA:TRUE by default),
/// for 127.0.0.1: (certificate, key).
fn docker_doc_self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    self_signed_for(dir, name, "IP:127.0.0.1")
}

/// [`docker_doc_self_signed`] for another subjectAltName.
fn self_signed_for(dir: &Path, name: &str, san: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args(["req", "-newkey", "rsa:4096", "-nodes", "-sha256", "-keyout"])
        .arg(&key)
        .args(["-x509", "-days", "365", "-out"])
        .arg(&crt)
        .args(["-subj", "/CN=qus-self-signed", "-addext"])
        .arg(format!("subjectAltName={san}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (crt, key)
}

#[test]
fn a_registry_with_dockers_documented_self_signed_certificate_is_trusted_through_certs_d() {
    let cfg = real_config();
    let made = tempfile::tempdir().unwrap();
    let (crt, key) = docker_doc_self_signed(made.path(), "domain");
    let registry = TestRegistry::start_with(Options {
        tls: Some(qus_registry::testkit::ServerTls {
            certificate: crt.clone(),
            key,
            client_ca: None,
        }),
        ..Options::default()
    })
    .unwrap();
    let certs = tempfile::tempdir().unwrap();
    let host_certs = certs.path().join(registry.host());
    std::fs::create_dir_all(&host_certs).unwrap();
    std::fs::copy(&crt, host_certs.join("ca.crt")).unwrap();
    let repo = format!("{}/qus-self-signed", registry.host());
    let release = |certs_d: &Path| {
        let mut cmd = cfg.qus();
        cmd.args(["release", "--repo", &repo])
            .args(NARROW)
            .args(cfg.debs_flag())
            .env("QUS_DOCKER_CERTS_D", certs_d)
            .env("DOCKER_HOST", "tcp://127.0.0.1:1");
        run(&mut cmd)
    };
    let (ok, _, err) = release(certs.path());
    assert!(
        ok,
        "release to a self-signed registry trusted in certs.d: {err}"
    );
    assert!(registry.puts() > 0);

    // Another self-signed certificate in certs.d: refused, saying what was found there.
    let (other, _) = docker_doc_self_signed(made.path(), "other");
    std::fs::copy(&other, host_certs.join("ca.crt")).unwrap();
    let (ok, _, err) = release(certs.path());
    assert!(
        !ok,
        "a certificate matching nothing in certs.d was accepted"
    );
    assert!(err.contains(&registry.host()), "{err}");
    assert!(err.contains("is not one of the certificates in"), "{err}");
    assert!(err.contains("ca.crt (sha256 "), "{err}");
    assert!(!err.contains("OtherError"), "{err}");

    // The registry's own certificate in certs.d, but made for another address: pinning
    // does not skip the name check.
    let (elsewhere, key) = self_signed_for(made.path(), "elsewhere", "IP:10.0.0.1");
    let misnamed = TestRegistry::start_with(Options {
        tls: Some(qus_registry::testkit::ServerTls {
            certificate: elsewhere.clone(),
            key,
            client_ca: None,
        }),
        ..Options::default()
    })
    .unwrap();
    let dir = certs.path().join(misnamed.host());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&elsewhere, dir.join("ca.crt")).unwrap();
    let mut cmd = cfg.qus();
    cmd.args([
        "publish",
        "--repo",
        &format!("{}/qus-misnamed", misnamed.host()),
    ])
    .args(NARROW)
    .env("QUS_DOCKER_CERTS_D", certs.path());
    let (ok, _, err) = run(&mut cmd);
    assert!(!ok, "a pinned certificate for another name was accepted");
    assert!(err.contains("is not valid for 127.0.0.1"), "{err}");
}
