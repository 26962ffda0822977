//! Shared helpers: a quick client, tiny images for three platforms, the skopeo oracle.

pub mod stub;

use std::process::Command;
use std::time::Duration;

use qus_registry::testkit::{TestRegistry, TinyImage};
use qus_registry::{Client, ClientConfig, Descriptor, IndexEntry, Platform, Reference, Timeouts};

/// A client with short, bounded retries so fault tests finish quickly.
pub fn client() -> Client {
    client_with(ClientConfig {
        retries: 2,
        backoff: Duration::from_millis(20),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            ..Timeouts::with_idle(Duration::from_secs(5))
        },
        ..ClientConfig::default()
    })
}

pub fn client_with(config: ClientConfig) -> Client {
    Client::new(config).expect("client")
}

/// The three platforms of the brief, as (qus tag prefix, platform).
pub fn platforms() -> Vec<(&'static str, Platform)> {
    [
        ("amd64", "linux/amd64"),
        ("arm64v8", "linux/arm64/v8"),
        ("arm32v7", "linux/arm/v7"),
    ]
    .into_iter()
    .map(|(h, p)| (h, Platform::parse(p).unwrap()))
    .collect()
}

/// Pushes one tiny image per platform as `<repo>:<host>-<suffix>`; returns list entries
/// (by tag) and the pushed descriptors.
pub async fn push_images(
    client: &Client,
    registry: &TestRegistry,
    repo: &str,
    suffix: &str,
) -> (Vec<IndexEntry>, Vec<Descriptor>) {
    let mut entries = Vec::new();
    let mut pushed = Vec::new();
    for (host, platform) in platforms() {
        let reference = registry.reference(&format!("{repo}:{host}-{suffix}"));
        let image = TinyImage::new(&platform, &format!("{host} {suffix}"));
        pushed.push(
            image
                .push(client, &reference)
                .await
                .expect("push tiny image"),
        );
        entries.push(IndexEntry::new(reference, platform));
    }
    (entries, pushed)
}

/// `skopeo inspect --raw` of a reference: the independent oracle.
pub fn skopeo_raw(reference: &Reference, creds: Option<&str>) -> Vec<u8> {
    let mut command = Command::new("skopeo");
    command.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(creds) = creds {
        command.args(["--creds", creds]);
    }
    let out = command
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo must be installed (Debian package skopeo)");
    assert!(
        out.status.success(),
        "skopeo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
