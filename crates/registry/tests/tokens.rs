//! The token flow where registries and their token services differ from the happy path,
//! counted request by request: single-flight fetches, one `scope=` per scope, credentials
//! asked again after an expiry, the refresh-token GET fallback, and no credentials to a
//! host that is not the registry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use qus_registry::{Auth, ClientConfig, CredentialSource, Error, Reference};

use crate::support::stub::{Reply, Request, Stub};
use crate::support::{client, client_with};

const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn list_body() -> String {
    format!(r#"{{"schemaVersion":2,"mediaType":"{LIST}","manifests":[]}}"#)
}

fn reference(stub: &Stub, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", stub.host())).unwrap()
}

fn token_requests(stub: &Stub) -> Vec<Request> {
    stub.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/token"))
        .collect()
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// A registry whose token service hands `tok-N` for the password `pw-N` while the epoch is
/// N, and whose API accepts only the current epoch's token: a token or a password from an
/// earlier epoch has expired.
async fn rotating_registry(epoch: Arc<AtomicUsize>) -> Stub {
    let body = list_body();
    Stub::start(move |req, _| {
        let now = epoch.load(Ordering::SeqCst);
        let port = req.header("host").unwrap_or("").to_string();
        if req.path.starts_with("/token") {
            if req.header("authorization") == Some(basic("u", &format!("pw-{now}")).as_str()) {
                Reply::new(200, format!(r#"{{"token":"tok-{now}","expires_in":300}}"#))
            } else {
                Reply::new(401, "")
            }
        } else if req.header("authorization") == Some(format!("Bearer tok-{now}").as_str()) {
            Reply::new(200, body.clone()).header("content-type", LIST)
        } else {
            Reply::new(401, "").header(
                "www-authenticate",
                &format!(r#"Bearer realm="http://{port}/token",service="stub""#),
            )
        }
    })
    .await
}

/// A credential helper stand-in: the password of the current epoch, counted.
struct Rotating {
    epoch: Arc<AtomicUsize>,
    asked: AtomicUsize,
}

impl CredentialSource for Rotating {
    fn resolve(&self, _registry: &str) -> qus_registry::Result<Auth> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        Ok(Auth::basic(
            "u",
            format!("pw-{}", self.epoch.load(Ordering::SeqCst)),
        ))
    }
}

#[tokio::test]
async fn concurrent_misses_fetch_the_token_once() {
    let epoch = Arc::new(AtomicUsize::new(0));
    let stub = rotating_registry(epoch).await;
    let client = client().with_auth(&stub.host(), Auth::basic("u", "pw-0"));
    let r = reference(&stub, "qus:t");
    let gets = (0..8).map(|_| client.manifest_get(&r));
    for got in futures::future::join_all(gets).await {
        got.unwrap();
    }
    assert_eq!(
        token_requests(&stub).len(),
        1,
        "eight requests missed the token at once: {:?}",
        stub.requests()
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_and_the_credentials_are_asked_again() {
    let epoch = Arc::new(AtomicUsize::new(0));
    let stub = rotating_registry(epoch.clone()).await;
    let source = Arc::new(Rotating {
        epoch: epoch.clone(),
        asked: AtomicUsize::new(0),
    });
    let client = client()
        .with_credentials(&stub.host(), source.clone())
        .unwrap();
    let r = reference(&stub, "qus:t");
    client.manifest_get(&r).await.unwrap();
    assert_eq!(source.asked.load(Ordering::SeqCst), 1);
    let before = stub.requests().len();

    // An hour later: the token and the password have expired; the helper has a new one.
    epoch.store(1, Ordering::SeqCst);
    client.manifest_get(&r).await.unwrap();
    assert_eq!(source.asked.load(Ordering::SeqCst), 2, "asked again once");
    let after: Vec<Request> = stub.requests().split_off(before);
    let seen: Vec<(&str, Option<&str>)> = after
        .iter()
        .map(|r| (r.path.split('?').next().unwrap(), r.header("authorization")))
        .collect();
    let basic1 = basic("u", "pw-1");
    assert_eq!(
        seen,
        vec![
            ("/v2/qus/manifests/t", Some("Bearer tok-0")),
            ("/token", Some(basic1.as_str())),
            ("/v2/qus/manifests/t", Some("Bearer tok-1")),
        ]
    );

    // The token service itself refusing stale credentials also makes the client ask again.
    epoch.store(2, Ordering::SeqCst);
    let fresh = client_with(ClientConfig::default())
        .with_credentials(
            &stub.host(),
            Arc::new(Rotating {
                epoch: Arc::new(AtomicUsize::new(1)),
                asked: AtomicUsize::new(0),
            }),
        )
        .unwrap();
    let err = fresh.manifest_get(&r).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    client.manifest_get(&r).await.unwrap();
    assert_eq!(source.asked.load(Ordering::SeqCst), 3);

    // Before a push phase the caller asks explicitly: it sees the rotation at once.
    epoch.store(3, Ordering::SeqCst);
    assert!(client.refresh_credentials(&stub.host()).await.unwrap());
    assert!(!client.refresh_credentials(&stub.host()).await.unwrap());
    assert_eq!(source.asked.load(Ordering::SeqCst), 5);
    let c = client.push_credentials(&stub.host());
    assert_eq!(
        c.password.map(|p| p.expose().to_string()).as_deref(),
        Some("pw-3")
    );
}

#[tokio::test]
async fn each_scope_is_its_own_scope_parameter() {
    let body = list_body();
    let stub = Stub::start(move |req, _| {
        let port = req.header("host").unwrap_or("").to_string();
        if req.path.starts_with("/token") {
            Reply::new(200, r#"{"token":"tok"}"#)
        } else if req.header("authorization") == Some("Bearer tok") {
            Reply::new(200, body.clone()).header("content-type", LIST)
        } else {
            Reply::new(401, "").header(
                "www-authenticate",
                &format!(
                    r#"Bearer realm="http://{port}/token",service="stub",scope="repository:qus:pull repository:base:pull""#
                ),
            )
        }
    })
    .await;
    client()
        .manifest_get(&reference(&stub, "qus:t"))
        .await
        .unwrap();
    let tokens = token_requests(&stub);
    assert_eq!(tokens.len(), 1);
    let query = tokens[0].path.split_once('?').unwrap().1;
    let scopes: Vec<&str> = query
        .split('&')
        .filter_map(|p| p.strip_prefix("scope="))
        .collect();
    assert_eq!(
        scopes,
        ["repository%3Aqus%3Apull", "repository%3Abase%3Apull"],
        "{query}"
    );
}

#[tokio::test]
async fn a_refresh_post_answered_404_falls_back_to_the_token_get() {
    let stub = Stub::start(|req, _| {
        let port = req.header("host").unwrap_or("").to_string();
        if req.path.starts_with("/token") {
            match req.method.as_str() {
                "POST" => Reply::new(404, "404 page not found"),
                _ if req.header("authorization")
                    == Some(basic("<token>", "refresh-abc").as_str()) =>
                {
                    Reply::new(200, r#"{"token":"tok-get"}"#)
                }
                _ => Reply::new(401, ""),
            }
        } else if req.header("authorization") == Some("Bearer tok-get") {
            Reply::new(200, "{}")
        } else {
            Reply::new(401, "").header(
                "www-authenticate",
                &format!(r#"Bearer realm="http://{port}/token",service="stub""#),
            )
        }
    })
    .await;
    let client = client().with_auth(&stub.host(), Auth::IdentityToken("refresh-abc".into()));
    client.ping(&reference(&stub, "qus:t")).await.unwrap();
    let methods: Vec<String> = token_requests(&stub)
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["POST", "GET"]);
}

/// A registry whose uploads go to `other` (another origin), with token auth.
async fn registry_uploading_to(other: String) -> Stub {
    Stub::start(move |req, _| {
        let port = req.header("host").unwrap_or("").to_string();
        if req.path.starts_with("/token") {
            return Reply::new(200, r#"{"token":"tok-reg"}"#);
        }
        if req.header("authorization") != Some("Bearer tok-reg") {
            return Reply::new(401, "").header(
                "www-authenticate",
                &format!(r#"Bearer realm="http://{port}/token",service="stub""#),
            );
        }
        match req.method.as_str() {
            "HEAD" => Reply::new(404, ""),
            "POST" => {
                Reply::new(202, "").header("location", &format!("http://{other}/upload/1?state=x"))
            }
            _ => Reply::new(500, "unexpected"),
        }
    })
    .await
}

#[tokio::test]
async fn an_upload_location_on_another_host_gets_no_credentials() {
    let blob = Bytes::from_static(b"a layer");
    let digest = qus_registry::Digest::sha256(&blob);
    let stated = digest.to_string();
    let other =
        Stub::start(move |_, _| Reply::new(201, "").header("docker-content-digest", &stated)).await;
    let registry = registry_uploading_to(other.host()).await;
    let secret = "pw-for-the-registry-only";
    let client = client().with_auth(&registry.host(), Auth::basic("u", secret));
    let r = reference(&registry, "qus:t");
    let up = client
        .upload_blob(&r, "application/octet-stream", blob.clone())
        .await
        .unwrap();
    assert!(!up.skipped);
    let puts = other.requests();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].method, "PUT");
    assert_eq!(puts[0].header("authorization"), None, "{puts:?}");
    assert!(
        puts[0].path.contains("digest=sha256%3A"),
        "{}",
        puts[0].path
    );
    assert!(registry
        .requests()
        .iter()
        .any(|r| r.header("authorization") == Some("Bearer tok-reg")));

    // The other host asking for credentials gets none, and the error says why.
    let asking = Stub::start(|_, _| {
        Reply::new(401, "").header("www-authenticate", r#"Basic realm="elsewhere""#)
    })
    .await;
    let registry = registry_uploading_to(asking.host()).await;
    let client = crate::support::client().with_auth(&registry.host(), Auth::basic("u", secret));
    let err = client
        .upload_blob(
            &reference(&registry, "qus:t"),
            "application/octet-stream",
            blob,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("not the registry"), "{err}");
    let seen = asking.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].header("authorization"), None);
}

#[tokio::test]
async fn a_refused_media_type_names_the_other_family() {
    let stub = Stub::start(|req, _| match req.header("content-type") {
        Some(t) if t.contains(".oci.") => Reply::new(
            415,
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"unsupported media type"}]}"#,
        ),
        _ => Reply::new(
            400,
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#,
        ),
    })
    .await;
    let r = reference(&stub, "qus:t");
    let body = Bytes::from_static(br#"{"schemaVersion":2}"#);
    let err = client()
        .put_manifest(&r, body.clone(), qus_registry::media::OCI_MANIFEST)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MediaTypeRefused { .. }), "{err:?}");
    assert!(
        err.to_string().contains("try the Docker media types"),
        "{err}"
    );
    let err = client()
        .put_manifest(&r, body, qus_registry::media::DOCKER_MANIFEST_LIST)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("try the OCI media types"), "{err}");
    assert_eq!(stub.requests().len(), 2, "not retried");
}
