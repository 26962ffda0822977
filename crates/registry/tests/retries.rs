//! Throttling a real registry will not do on demand, from the scripted stub, counted
//! request by request: `Retry-After` honoured (seconds, date, cap) and a used-up pull
//! quota failing at once with the limit named.

use std::time::{Duration, Instant, SystemTime};

use qus_registry::{Client, ClientConfig, Digest, Error, Reference};

use crate::support::client_with;
use crate::support::stub::{Reply, Stub};

const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const SLOW_DOWN: &str =
    r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down","detail":null}]}"#;

fn list_body() -> String {
    format!(r#"{{"schemaVersion":2,"mediaType":"{LIST}","manifests":[]}}"#)
}

fn reference(stub: &Stub) -> Reference {
    Reference::parse(&format!("{}/qus:t", stub.host())).unwrap()
}

/// Backoff far below any Retry-After in these tests, so a wait proves the header was read.
fn client() -> Client {
    client_with(ClientConfig {
        retries: 2,
        backoff: Duration::from_millis(10),
        retry_after_cap: Duration::from_secs(5),
        ..ClientConfig::default()
    })
}

/// A stub answering `first` once, then the list.
async fn once_then_ok(first: impl Fn() -> Reply + Send + Sync + 'static) -> Stub {
    let body = list_body();
    Stub::start(move |_, n| {
        if n == 0 {
            first()
        } else {
            Reply::new(200, body.clone()).header("content-type", LIST)
        }
    })
    .await
}

#[tokio::test]
async fn retry_after_in_seconds_is_waited_then_the_request_succeeds() {
    let stub = once_then_ok(|| {
        Reply::new(429, SLOW_DOWN)
            .header("content-type", "application/json")
            .header("retry-after", "1")
    })
    .await;
    let started = Instant::now();
    let got = client().manifest_get(&reference(&stub)).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(got.digest, Digest::sha256(list_body().as_bytes()));
    assert_eq!(stub.requests().len(), 2);
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_waited() {
    let stub = once_then_ok(|| {
        let at = SystemTime::now() + Duration::from_secs(2);
        Reply::new(503, "").header("retry-after", &httpdate::fmt_http_date(at))
    })
    .await;
    let started = Instant::now();
    client().manifest_get(&reference(&stub)).await.unwrap();
    let waited = started.elapsed();
    // The date has whole seconds: "in 2 s" is between 1 and 2 s away when read.
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_fails_at_once_saying_how_long() {
    let stub = once_then_ok(|| {
        Reply::new(429, SLOW_DOWN)
            .header("content-type", "application/json")
            .header("retry-after", "3600")
    })
    .await;
    let started = Instant::now();
    let err = client().manifest_get(&reference(&stub)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        stub.requests().len(),
        1,
        "no retry before the registry's time"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(err.to_string().contains("retry after 3600 s"), "{err}");
}

#[tokio::test]
async fn a_used_up_pull_quota_fails_at_once_naming_the_limit() {
    // Docker Hub's answer when the quota is used up.
    let stub = Stub::start(|_, _| {
        Reply::new(
            429,
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit"}]}"#,
        )
        .header("content-type", "application/json")
        .header("ratelimit-limit", "100;w=21600")
        .header("ratelimit-remaining", "0;w=21600")
        .header("retry-after", "1")
    })
    .await;
    let started = Instant::now();
    let err = client().manifest_get(&reference(&stub)).await.unwrap_err();
    assert!(matches!(err, Error::PullLimit { .. }), "{err:?}");
    assert!(!err.is_temporary());
    assert_eq!(stub.requests().len(), 1, "a used-up quota is not retried");
    assert!(started.elapsed() < Duration::from_secs(1));
    let text = err.to_string();
    assert!(text.contains("100 pulls per 6 h window, 0 left"), "{text}");
    assert!(text.contains("Log in"), "{text}");
    assert!(text.contains(&stub.host()), "{text}");

    // A HEAD has no body: the headers alone tell.
    let err = client().manifest_head(&reference(&stub)).await.unwrap_err();
    assert!(matches!(err, Error::PullLimit { .. }), "{err:?}");
    assert_eq!(stub.requests().len(), 2);
}

#[tokio::test]
async fn a_429_without_a_hint_backs_off_with_jitter_and_gives_up_bounded() {
    let stub = Stub::start(|_, _| Reply::new(429, SLOW_DOWN)).await;
    let started = Instant::now();
    let err = client().manifest_get(&reference(&stub)).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(
        matches!(err, Error::ServerError { status: 429, .. }),
        "{err:?}"
    );
    assert_eq!(stub.requests().len(), 3, "one try and two retries");
    // Waits of 5–10 ms then 10–20 ms.
    assert!(started.elapsed() < Duration::from_secs(2));
}
