//! Registry I/O for qus, over the OCI distribution API: parse references, find credentials
//! (Docker config, credential helpers, explicit), check what a registry already holds
//! (HEAD manifests and blobs), upload blobs and put manifests, read manifests byte-exact
//! with verified digests, attach referrers, and publish multi-platform lists (an OCI index
//! or a Docker manifest list, as the caller asks) only after verifying every entry, never
//! rewriting an unchanged one. qus writes its images through this crate; only with
//! `--builder dockerfile` does the daemon push them, and this crate then writes the lists.
//!
//! Pure logic (references, platforms, list bytes, challenge and envelope parsing,
//! protocol choice, Docker config lookup) lives in modules without I/O; [`Client`]
//! and the `transport` module do the HTTP.
//!
//! ```no_run
//! # async fn demo() -> qus_registry::Result<()> {
//! use qus_registry::{Client, ClientConfig, DockerConfig, IndexEntry, ListKind, Platform, Reference};
//! let target = Reference::parse("127.0.0.1:5000/qus:aarch64")?;
//! let auth = DockerConfig::load_default()?.resolve(target.registry())?;
//! let client = Client::new(ClientConfig::default())?.with_auth(target.registry(), auth);
//! let entries = vec![
//!     IndexEntry::new(target.with_tag("amd64-d7.2-aarch64")?, Platform::parse("linux/amd64").unwrap()),
//!     IndexEntry::new(target.with_tag("arm64v8-d7.2-aarch64")?, Platform::parse("linux/arm64/v8").unwrap()),
//! ];
//! let outcome = client.publish_index(&target, &entries, ListKind::default()).await?;
//! println!("{target} -> {}", outcome.digest());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod auth;
mod client;
mod credentials;
mod digest;
mod docker_config;
mod error;
mod limits;
mod manifest;
pub mod media;
mod protocol;
mod publish;
mod redact;
mod reference;
mod referrers;
mod retry;
mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
mod tls;
mod transport;
mod trust;
mod x509_time;

pub use auth::{Auth, Challenge, PushCredentials, Secret};
pub use client::{BlobUpload, Client, ClientConfig, RawManifest};
pub use credentials::{CredentialSource, DockerConfigSource};
pub use digest::{Digest, InvalidDigest};
pub use docker_config::{default_config_path, DockerConfig, Lookup, HELPER_TIMEOUT};
pub use error::{Error, ErrorEnvelope, RegistryError, Result};
pub use limits::{Timeouts, WaitNotice};
pub use manifest::{config_platform, Descriptor, ImageManifest, Index, Platform};
pub use media::ListKind;
pub use protocol::{is_loopback, ProtocolPolicy, Scheme};
pub use publish::{IndexEntry, Outcome, PreparedIndex, Source};
pub use redact::{redact_userinfo, REDACTED};
pub use reference::{Reference, DOCKER_HUB};
pub use referrers::{
    empty_config, fallback_tag, referrer_descriptor, Artifact, Attached, Referrers, EMPTY_JSON,
};
pub use storage::{storage_stats, StorageStats};
pub use tls::{tls_provider, CertsDir, DOCKER_CERTS_D};
