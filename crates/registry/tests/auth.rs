//! Basic auth against a real registry protected by htpasswd.

use qus_registry::testkit::{TestRegistry, TEST_PASSWORD, TEST_USER};
use qus_registry::{Auth, DockerConfig, Error, ListKind, Outcome};

use crate::support::{client, push_images, skopeo_raw};

#[tokio::test]
async fn wrong_or_missing_credentials_name_the_registry_and_never_the_password() {
    let registry = TestRegistry::start_with_htpasswd().unwrap();
    let target = registry.reference("qus:t");
    let wrong = "not-the-password-4f2a";
    let client = client().with_auth(&registry.host(), Auth::basic(TEST_USER, wrong));
    for result in [
        client.ping(&target).await,
        client.manifest_head(&target).await.map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
        assert!(!err.is_temporary());
        for text in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
            assert!(text.contains(&registry.host()), "{text}");
            assert!(!text.contains(wrong), "{text}");
        }
        assert!(err.to_string().contains("credentials rejected"), "{err}");
    }
    let anonymous = crate::support::client();
    let err = anonymous.manifest_head(&target).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("authentication required"), "{err}");
}

#[tokio::test]
async fn right_credentials_from_a_docker_config_publish() {
    let registry = TestRegistry::start_with_htpasswd().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = base64_pair(TEST_USER, TEST_PASSWORD);
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let resolved = DockerConfig::load(&dir.path().join("config.json"))
        .unwrap()
        .resolve(&registry.host())
        .unwrap();
    assert_eq!(resolved, Auth::basic(TEST_USER, TEST_PASSWORD));
    let push = resolved.push_credentials(&registry.host());
    assert_eq!(push.serveraddress, registry.host());
    assert!(!format!("{push:?}").contains(TEST_PASSWORD));

    let client = client().with_auth(&registry.host(), resolved);
    client.ping(&registry.reference("qus:t")).await.unwrap();
    let (entries, _) = push_images(&client, &registry, "qus", "auth").await;
    let target = registry.reference("qus:auth");
    let outcome = client
        .publish_index(&target, &entries, ListKind::default())
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Written { .. }));
    let raw = skopeo_raw(&target, Some(&format!("{TEST_USER}:{TEST_PASSWORD}")));
    assert_eq!(&qus_registry::Digest::sha256(&raw), outcome.digest());
}

fn base64_pair(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}
