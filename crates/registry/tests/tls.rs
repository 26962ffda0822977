//! A real registry behind TLS on loopback, trusted the way the Docker daemon trusts it:
//! through a `certs.d/<host:port>/` folder (CA, client certificate).

use std::process::Command;

use qus_registry::testkit::{Options, TestCa, TestRegistry, TokenRealm};
use qus_registry::{Auth, Client, ClientConfig, Digest, Error, ListKind, Outcome};

use crate::support::stub::{Reply, Stub};
use crate::support::{client_with, push_images};

/// A quick client that reads certificates from `certs`.
fn client_trusting(certs: &std::path::Path) -> Client {
    client_with(ClientConfig {
        certs_dir: Some(certs.to_path_buf()),
        ..quick()
    })
}

fn quick() -> ClientConfig {
    ClientConfig {
        retries: 1,
        backoff: std::time::Duration::from_millis(20),
        timeouts: qus_registry::Timeouts {
            connect: std::time::Duration::from_secs(2),
            ..qus_registry::Timeouts::with_idle(std::time::Duration::from_secs(5))
        },
        ..ClientConfig::default()
    }
}

/// `skopeo inspect --raw` over verified TLS, with the same certs.d folder.
fn skopeo_raw_tls(reference: &str, cert_dir: &std::path::Path) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--cert-dir"])
        .arg(cert_dir)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo must be installed");
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn a_loopback_tls_registry_with_its_ca_in_certs_d_gets_everything_over_https() {
    let ca = TestCa::new().unwrap();
    let registry = TestRegistry::start_with(Options {
        tls: Some(ca.server_tls(false)),
        ..Options::default()
    })
    .unwrap();
    let certs = tempfile::tempdir().unwrap();
    let host_dir = ca.certs_d(certs.path(), &registry.host(), false).unwrap();

    let client = client_trusting(certs.path());
    let (entries, _) = push_images(&client, &registry, "qus", "tls").await;
    let target = registry.reference("qus:tls");
    let outcome = client
        .publish_index(&target, &entries, ListKind::OciIndex)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
    // skopeo, verifying with the same CA, reads back the list qus wrote.
    let raw = skopeo_raw_tls(&target.to_string(), &host_dir);
    assert_eq!(&Digest::sha256(&raw), outcome.digest());
    assert!(
        registry.puts() >= 4,
        "blobs, manifests and the list went over TLS"
    );

    // Without the folder qus speaks plain HTTP to loopback, and says what to do.
    let plain = client_trusting(&certs.path().join("nothing-here"));
    let err = plain.manifest_head(&target).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("speaks HTTPS") && text.contains("ca.crt"),
        "{text}"
    );

    // A folder with another CA: the certificate is not trusted, and the message says where
    // the right CA goes.
    let other = TestCa::new().unwrap();
    let wrong = tempfile::tempdir().unwrap();
    other
        .certs_d(wrong.path(), &registry.host(), false)
        .unwrap();
    let err = client_trusting(wrong.path())
        .manifest_head(&target)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TlsHandshake { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("certificate") && text.contains("ca.crt"),
        "{text}"
    );
}

#[tokio::test]
async fn a_client_certificate_in_certs_d_is_presented() {
    let ca = TestCa::new().unwrap();
    let registry = TestRegistry::start_with(Options {
        tls: Some(ca.server_tls(true)),
        ..Options::default()
    })
    .unwrap();
    let target = registry.reference("qus:t");

    let ca_only = tempfile::tempdir().unwrap();
    ca.certs_d(ca_only.path(), &registry.host(), false).unwrap();
    let err = client_trusting(ca_only.path())
        .ping(&target)
        .await
        .unwrap_err();
    // TLS 1.3: the refusal arrives as an alert or, racing it, as a closed connection.
    assert!(
        matches!(err, Error::TlsHandshake { .. } | Error::Unreachable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("client.cert"), "{err}");

    let with_client = tempfile::tempdir().unwrap();
    ca.certs_d(with_client.path(), &registry.host(), true)
        .unwrap();
    let client = client_trusting(with_client.path());
    client.ping(&target).await.unwrap();
    let (entries, _) = push_images(&client, &registry, "qus", "mtls").await;
    client
        .publish_index(
            &registry.reference("qus:mtls"),
            &entries,
            ListKind::default(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_http_token_service_of_an_https_registry_is_never_used() {
    let realm = Stub::start(|_, _| Reply::new(200, r#"{"token":"t"}"#)).await;
    let ca = TestCa::new().unwrap();
    let registry = TestRegistry::start_with(Options {
        tls: Some(ca.server_tls(false)),
        token_realm: Some(TokenRealm {
            realm: format!("http://{}/token", realm.host()),
            root_cert_bundle: ca.ca_cert(),
        }),
        ..Options::default()
    })
    .unwrap();
    let certs = tempfile::tempdir().unwrap();
    ca.certs_d(certs.path(), &registry.host(), false).unwrap();
    let secret = "never-over-plain-http-77";
    let client =
        client_trusting(certs.path()).with_auth(&registry.host(), Auth::basic("u", secret));
    let err = client
        .manifest_head(&registry.reference("qus:t"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("plain HTTP"), "{text}");
    assert!(!format!("{err:?}").contains(secret));
    assert!(
        realm.requests().is_empty(),
        "the plain-HTTP token service was contacted: {:?}",
        realm.requests()
    );

    // With an identity token (a refresh token is a secret too): the same.
    let client = client_trusting(certs.path())
        .with_auth(&registry.host(), Auth::IdentityToken(secret.into()));
    assert!(client.ping(&registry.reference("qus:t")).await.is_err());
    assert!(realm.requests().is_empty());
}

#[tokio::test]
async fn a_certs_d_folder_for_a_plain_http_registry_is_reported_as_such() {
    let ca = TestCa::new().unwrap();
    let registry = TestRegistry::start().unwrap();
    let certs = tempfile::tempdir().unwrap();
    ca.certs_d(certs.path(), &registry.host(), false).unwrap();
    let err = client_trusting(certs.path())
        .ping(&registry.reference("qus:t"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TlsHandshake { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("does not seem to speak TLS"), "{text}");
    assert!(text.contains(&registry.host()), "{text}");
}

/// A self-signed (CA:TRUE) certificate for `san`, as Docker's documentation makes one
/// (EC rather than its RSA 4096, which takes seconds to make).
fn self_signed(dir: &std::path::Path, san: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (crt, key) = (dir.join("s.crt"), dir.join("s.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-sha256", "-keyout"])
        .arg(&key)
        .args(["-x509", "-days", "2", "-subj", "/CN=t", "-addext"])
        .arg(format!("subjectAltName={san}"))
        .arg("-out")
        .arg(&crt)
        .output()
        .unwrap();
    assert!(out.status.success());
    (crt, key)
}

#[tokio::test]
async fn a_pinned_self_signed_certificate_must_still_name_the_registry() {
    for (san, trusted) in [("IP:127.0.0.1", true), ("IP:10.0.0.1", false)] {
        let made = tempfile::tempdir().unwrap();
        let (crt, key) = self_signed(made.path(), san);
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
        let dir = certs.path().join(registry.host());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&crt, dir.join("ca.crt")).unwrap();
        let result = client_trusting(certs.path())
            .ping(&registry.reference("qus:t"))
            .await;
        match (trusted, result) {
            (true, Ok(())) => {}
            (false, Err(e)) => {
                let text = e.to_string();
                assert!(matches!(e, Error::TlsHandshake { .. }), "{e:?}");
                assert!(text.contains("not valid for 127.0.0.1"), "{text}");
            }
            (_, r) => panic!("{san}: {r:?}"),
        }
    }
}
