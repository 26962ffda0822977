//! What a real registry will not do on demand, from a scripted loopback server.

use std::time::{Duration, Instant};

use qus_registry::{Auth, ClientConfig, Digest, Error, Reference};

use crate::support::stub::{Reply, Stub};
use crate::support::{client, client_with};

const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn reference(stub: &Stub, rest: &str) -> Reference {
    Reference::parse(&format!("{}/{rest}", stub.host())).unwrap()
}

#[tokio::test]
async fn a_401_without_challenge_is_unauthorized_naming_the_registry() {
    let stub = Stub::start(|_, _| Reply::new(401, "")).await;
    let err = client()
        .with_auth(&stub.host(), Auth::basic("u", "pw-never-shown"))
        .manifest_get(&reference(&stub, "qus:t"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&stub.host()) && text.contains("without a usable WWW-Authenticate"),
        "{text}"
    );
    assert!(!format!("{err:?}").contains("pw-never-shown"));
    assert_eq!(stub.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn a_500_envelope_is_retried_then_reported_with_its_code() {
    let stub = Stub::start(|_, _| {
        Reply::new(
            500,
            r#"{"errors":[{"code":"UNKNOWN","message":"storage exploded","detail":null}]}"#,
        )
        .header("content-type", "application/json")
    })
    .await;
    let err = client()
        .manifest_get(&reference(&stub, "qus:t"))
        .await
        .unwrap_err();
    match &err {
        Error::ServerError { status, code, .. } => {
            assert_eq!(*status, 500);
            assert_eq!(code.as_deref(), Some("UNKNOWN"));
        }
        e => panic!("{e:?}"),
    }
    assert!(err.is_temporary());
    assert_eq!(stub.requests().len(), 3, "one try + 2 retries, then stop");
    assert!(
        err.to_string().contains("UNKNOWN: storage exploded"),
        "{err}"
    );

    // HEAD answers carry no body: the status alone still makes a ServerError.
    let head = client()
        .manifest_head(&reference(&stub, "qus:t"))
        .await
        .unwrap_err();
    assert!(
        matches!(head, Error::ServerError { status: 500, .. }),
        "{head:?}"
    );
    assert!(head.to_string().contains("500"), "{head}");
}

#[tokio::test]
async fn a_503_then_success_is_absorbed_by_a_retry() {
    let body = format!(r#"{{"schemaVersion":2,"mediaType":"{LIST}","manifests":[]}}"#);
    let digest = Digest::sha256(body.as_bytes());
    let stub = Stub::start(move |_, n| {
        if n == 0 {
            Reply::new(503, "")
        } else {
            Reply::new(200, body.clone()).header("content-type", LIST)
        }
    })
    .await;
    let got = client()
        .manifest_get(&reference(&stub, "qus:t"))
        .await
        .unwrap();
    assert_eq!(got.digest, digest);
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn a_slow_answer_times_out_in_bounded_time() {
    let stub = Stub::start(|_, _| Reply::new(200, "{}").delayed(Duration::from_secs(30))).await;
    let client = client_with(ClientConfig {
        timeouts: qus_registry::Timeouts::with_idle(Duration::from_millis(300)),
        retries: 1,
        backoff: Duration::from_millis(10),
        ..ClientConfig::default()
    });
    let started = Instant::now();
    let err = client
        .manifest_get(&reference(&stub, "qus:t"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&stub.host()), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn a_manifest_that_is_not_json_is_an_invalid_response() {
    let stub =
        Stub::start(|_, _| Reply::new(200, "<html>surprise</html>").header("content-type", LIST))
            .await;
    let err = client()
        .manifest_get(&reference(&stub, "qus:t"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
    assert!(err.to_string().contains("not JSON"), "{err}");
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn content_that_does_not_match_its_digest_is_refused() {
    let stub =
        Stub::start(|_, _| Reply::new(200, r#"{"schemaVersion":2}"#).header("content-type", LIST))
            .await;
    let asked = Digest::sha256(b"something else");
    let err = client()
        .manifest_get(&reference(&stub, &format!("qus@{asked}")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(asked.as_str()), "{err}");

    let lying = Stub::start(|_, _| {
        Reply::new(200, r#"{"schemaVersion":2}"#)
            .header("content-type", LIST)
            .header("docker-content-digest", Digest::sha256(b"x").as_str())
    })
    .await;
    let err = client()
        .manifest_get(&reference(&lying, "qus:t"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn a_404_is_not_found_for_get_and_none_for_head() {
    let stub = Stub::start(|_, _| {
        Reply::new(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"t"}}]}"#,
        )
    })
    .await;
    let r = reference(&stub, "qus:t");
    assert_eq!(client().manifest_head(&r).await.unwrap(), None);
    match client().manifest_get(&r).await.unwrap_err() {
        Error::NotFound { code, registry, .. } => {
            assert_eq!(code.as_deref(), Some("MANIFEST_UNKNOWN"));
            assert_eq!(registry, stub.host());
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(stub.requests().len(), 2, "a 404 is not retried");
}

#[tokio::test]
async fn a_dropped_connection_is_unreachable_and_retried() {
    let stub = Stub::start(|_, _| Reply::Close).await;
    let err = client()
        .manifest_head(&reference(&stub, "qus:t"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("connection lost"), "{err}");
    assert_eq!(stub.requests().len(), 3);
}

#[tokio::test]
async fn bearer_challenge_fetches_a_token_with_basic_credentials_once() {
    let body = format!(r#"{{"schemaVersion":2,"mediaType":"{LIST}","manifests":[]}}"#);
    let stub = Stub::start(move |req, _| {
        let port = req.header("host").unwrap_or("").to_string();
        if req.path.starts_with("/token") {
            // user:pw, base64
            if req.header("authorization") == Some("Basic dXNlcjpwdw==") {
                Reply::new(200, r#"{"token":"tok-123","expires_in":300}"#)
            } else {
                Reply::new(401, "")
            }
        } else if req.header("authorization") == Some("Bearer tok-123") {
            Reply::new(200, body.clone()).header("content-type", LIST)
        } else {
            Reply::new(401, "").header(
                "www-authenticate",
                &format!(
                    r#"Bearer realm="http://{port}/token",service="stub",scope="repository:qus:pull""#
                ),
            )
        }
    })
    .await;
    let client = client().with_auth(&stub.host(), Auth::basic("user", "pw"));
    let r = reference(&stub, "qus:t");
    client.manifest_get(&r).await.unwrap();
    client.manifest_get(&r).await.unwrap();
    let requests = stub.requests();
    let tokens: Vec<_> = requests
        .iter()
        .filter(|r| r.path.starts_with("/token"))
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "the token is cached per scope: {requests:?}"
    );
    assert!(tokens[0].path.contains("service=stub"));
    assert!(tokens[0].path.contains("scope=repository%3Aqus%3Apull"));
    // 401, token, retry, then the second GET straight with the cached token.
    assert_eq!(requests.len(), 4, "{requests:?}");

    // Wrong password: the token service refuses; the error names the registry only.
    let wrong = crate::support::client().with_auth(&stub.host(), Auth::basic("user", "bad-pw-xyz"));
    let err = wrong.manifest_get(&r).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains(&stub.host()), "{err}");
    assert!(!format!("{err:?}").contains("bad-pw-xyz"));
}

#[tokio::test]
async fn an_identity_token_is_exchanged_with_a_refresh_grant() {
    let stub = Stub::start(|req, _| {
        let port = req.header("host").unwrap_or("").to_string();
        if req.path.starts_with("/token") {
            let form = String::from_utf8_lossy(&req.body).to_string();
            if req.method == "POST"
                && form.contains("grant_type=refresh_token")
                && form.contains("refresh_token=refresh-abc")
                && form.contains("service=stub")
            {
                Reply::new(200, r#"{"access_token":"tok-9"}"#)
            } else {
                Reply::new(400, "")
            }
        } else if req.header("authorization") == Some("Bearer tok-9") {
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
    let token_calls = stub
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/token"))
        .count();
    assert_eq!(token_calls, 1);
}
