//! The distribution-API calls qus makes: whether a manifest or blob exists, a manifest's
//! exact bytes, blobs and manifests written (images, lists, referrers). Each verifies what
//! it gets: digests are recomputed from the bytes and compared with what was asked for and
//! what the registry claims, because "idempotent, identical digests on every run" is only
//! as good as that check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, Url};

use crate::auth::{Auth, PushCredentials};
use crate::credentials::CredentialSource;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::limits::{Timeouts, WaitNotice};
use crate::manifest::Descriptor;
use crate::media;
use crate::protocol::ProtocolPolicy;
use crate::reference::Reference;
use crate::tls::{HttpClients, DOCKER_CERTS_D};
use crate::transport::{Answer, Call, Retry, Transport};

/// Largest manifest we read (distribution refuses to store more than 4 MiB).
const MANIFEST_MAX: usize = 4 * 1024 * 1024;
/// Largest blob [`Client::blob_get`] reads into memory (it is meant for configs).
const BLOB_GET_MAX: usize = 64 * 1024 * 1024;
/// Largest error or status body we read.
const SMALL_MAX: usize = 64 * 1024;

/// Settings of a [`Client`]. `Default` suits real registries and loopback alike.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// HTTP or HTTPS per registry.
    pub protocol: ProtocolPolicy,
    /// How long connecting, silence and each request may last.
    pub timeouts: Timeouts,
    /// Told of a request that waits (no byte for a quarter of the idle time).
    pub on_wait: Option<WaitNotice>,
    /// Extra attempts after a temporary error (timeouts, lost connections, 5xx, 429).
    pub retries: u32,
    /// Nominal wait before the first retry; doubles each time up to `backoff_cap`, and each
    /// wait is jittered between half of it and all of it.
    pub backoff: Duration,
    /// Longest nominal backoff.
    pub backoff_cap: Duration,
    /// Longest `Retry-After` honoured: a registry asking for a longer wait fails the
    /// request at once, saying how long it asked for.
    pub retry_after_cap: Duration,
    /// Docker's per-registry certificate folders (`<dir>/<host:port>/ca.crt`,
    /// `client.cert` + `client.key`); `None` to read none.
    pub certs_dir: Option<PathBuf>,
    /// `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            protocol: ProtocolPolicy::default(),
            timeouts: Timeouts::default(),
            on_wait: None,
            retries: 3,
            backoff: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(8),
            retry_after_cap: Duration::from_secs(60),
            certs_dir: Some(PathBuf::from(DOCKER_CERTS_D)),
            user_agent: concat!("qus-registry/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// A manifest as stored: exact bytes, media type, and their verified digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawManifest {
    /// The bytes, exactly as the registry holds them.
    pub bytes: Bytes,
    /// The media type (from `Content-Type`, else the body's `mediaType`).
    pub media_type: String,
    /// sha256 of `bytes`, checked against the registry's `Docker-Content-Digest`.
    pub digest: Digest,
}

impl RawManifest {
    /// A descriptor of this manifest.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            &self.media_type,
            self.bytes.len() as u64,
            self.digest.clone(),
        )
    }
}

/// Result of [`Client::upload_blob`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobUpload {
    /// The blob.
    pub descriptor: Descriptor,
    /// True when the registry already had it and nothing was sent.
    pub skipped: bool,
}

/// A registry client: cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Client {
    pub(crate) transport: std::sync::Arc<Transport>,
    protocol: ProtocolPolicy,
    /// Platforms read from image configs, by manifest digest: content-addressed, so never
    /// stale, and many lists name the same manifests. One read per digest, however many
    /// lists ask at once (each cell is filled once).
    pub(crate) platforms: Arc<
        std::sync::Mutex<
            std::collections::HashMap<
                crate::digest::Digest,
                Arc<tokio::sync::OnceCell<crate::manifest::Platform>>,
            >,
        >,
    >,
    /// Whether each registry implements the referrers API, once asked.
    referrers_api: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, bool>>>,
    /// One upload at a time per `repository@digest`: tasks attaching artifacts side by side
    /// all send the same empty config, and docker-registry 2.8 can answer a manifest that
    /// names a blob whose concurrent uploads are still committing with
    /// MANIFEST_BLOB_UNKNOWN. The second task waits, then finds the blob there.
    uploading: UploadLocks,
}

type UploadLocks =
    Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client.
    pub fn new(config: ClientConfig) -> Result<Client> {
        let clients = HttpClients::new(
            config.certs_dir.clone(),
            config.timeouts.connect,
            config.user_agent.clone(),
        );
        // Build the plain client now: a TLS backend that cannot start fails here, not
        // in the middle of a release.
        clients.client("", &Url::parse("https://registry.invalid/").expect("a URL"))?;
        let retry = Retry {
            retries: config.retries,
            backoff: config.backoff,
            backoff_cap: config.backoff_cap,
            retry_after_cap: config.retry_after_cap,
        };
        Ok(Client {
            transport: Arc::new(Transport::new(
                clients,
                config.timeouts,
                config.on_wait.clone(),
                retry,
            )),
            protocol: config.protocol,
            platforms: Default::default(),
            referrers_api: Default::default(),
            uploading: Default::default(),
        })
    }

    /// Uses `auth` for `registry` (as named in references: `127.0.0.1:5000`, `docker.io`),
    /// as given: nothing to ask again when the registry refuses it.
    pub fn with_auth(self, registry: &str, auth: Auth) -> Client {
        self.transport.set_credentials(registry, None, auth);
        self
    }

    /// Uses what `source` says for `registry` now, and asks it again when the registry
    /// answers 401 to what was sent and at each [`Client::refresh_credentials`].
    pub fn with_credentials(
        self,
        registry: &str,
        source: Arc<dyn CredentialSource>,
    ) -> Result<Client> {
        let auth = source.resolve(registry)?;
        self.transport.set_credentials(registry, Some(source), auth);
        Ok(self)
    }

    /// Asks `registry`'s credential source again (call it before each push phase: a
    /// helper's token may have expired while images were built). True when they changed.
    pub async fn refresh_credentials(&self, registry: &str) -> Result<bool> {
        self.transport.refresh(registry).await
    }

    /// The credentials in use for `registry` now, in the shape Docker's push API takes.
    pub fn push_credentials(&self, registry: &str) -> PushCredentials {
        self.transport
            .current_auth(registry)
            .push_credentials(registry)
    }

    /// `scheme://host:port` of the registry's API (HTTPS when certs.d names it).
    pub(crate) fn home(&self, reference: &Reference) -> Result<Url> {
        self.url(reference, "/")
    }

    /// Whether `registry` implements the referrers API, if known.
    pub(crate) fn referrers_support(&self, registry: &str) -> Option<bool> {
        self.referrers_api
            .lock()
            .ok()
            .and_then(|m| m.get(registry).copied())
    }

    /// Whether `registry` is known to implement the referrers API (false: unknown or not).
    pub fn referrers_api_known(&self, registry: &str) -> bool {
        self.referrers_support(registry) == Some(true)
    }

    pub(crate) fn set_referrers_support(&self, registry: &str, api: bool) {
        if let Ok(mut m) = self.referrers_api.lock() {
            m.insert(registry.to_string(), api);
        }
    }

    pub(crate) fn url(&self, reference: &Reference, path: &str) -> Result<Url> {
        let host = reference.api_host();
        let has_certs = self
            .transport
            .clients()
            .certs_for(reference.registry())?
            .is_some();
        let scheme = self.protocol.scheme_with_certs(host, has_certs).as_str();
        Url::parse(&format!("{scheme}://{host}{path}")).map_err(|e| Error::InvalidReference {
            input: reference.to_string(),
            reason: format!("does not make a URL: {e}"),
        })
    }

    fn manifest_url(&self, reference: &Reference) -> Result<Url> {
        self.url(
            reference,
            &format!(
                "/v2/{}/manifests/{}",
                reference.repository(),
                reference.reference()
            ),
        )
    }

    fn blob_url(&self, repository: &Reference, digest: &Digest) -> Result<Url> {
        self.url(
            repository,
            &format!("/v2/{}/blobs/{digest}", repository.repository()),
        )
    }

    /// Checks that the registry answers the API (`GET /v2/`) with our credentials:
    /// a cheap way to fail early on a wrong password.
    pub async fn ping(&self, reference: &Reference) -> Result<()> {
        let call = Call {
            registry: reference.registry(),
            home: self.home(reference)?,
            repository: None,
            push: false,
            method: Method::GET,
            url: self.url(reference, "/v2/")?,
            headers: vec![],
            body: None,
            op: format!("API check of {}", reference.registry()),
            accept: &[200],
            max_body: SMALL_MAX,
        };
        self.transport.execute(&call).await.map(|_| ())
    }

    /// HEAD a manifest: its descriptor (digest, size, media type), or `None` if absent.
    pub async fn manifest_head(&self, reference: &Reference) -> Result<Option<Descriptor>> {
        let op = format!("HEAD manifest {reference}");
        let call = Call {
            registry: reference.registry(),
            home: self.home(reference)?,
            repository: Some(reference.repository()),
            push: false,
            method: Method::HEAD,
            url: self.manifest_url(reference)?,
            headers: vec![("accept", media::MANIFEST_ACCEPT.to_string())],
            body: None,
            op: op.clone(),
            accept: &[200, 404],
            max_body: SMALL_MAX,
        };
        let answer = self.transport.execute(&call).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        let invalid = |reason: String| Error::InvalidResponse {
            registry: reference.registry().to_string(),
            op: op.clone(),
            reason,
        };
        let header_digest = header_digest(&answer).map_err(invalid)?;
        if let (Some(asked), Some(got)) = (reference.digest(), &header_digest) {
            if asked != got {
                return Err(invalid(format!(
                    "asked for {asked}, the registry answered {got}"
                )));
            }
        }
        let media_type = answer
            .header("content-type")
            .map(media::essence)
            .filter(|t| media::is_list(t) || media::is_image_manifest(t))
            .map(str::to_string);
        let size = answer
            .header("content-length")
            .and_then(|s| s.parse::<u64>().ok());
        let digest = header_digest.or_else(|| reference.digest().cloned());
        match (media_type, size, digest) {
            (Some(media_type), Some(size), Some(digest)) => {
                Ok(Some(Descriptor::new(&media_type, size, digest)))
            }
            // A registry that is vague on HEAD: the body tells all, and is verified.
            _ => Ok(Some(self.manifest_get(reference).await?.descriptor())),
        }
    }

    /// GET a manifest's exact bytes, verified: the digest of the bytes must equal
    /// the digest asked for and the one the registry states, and the body must be JSON.
    pub async fn manifest_get(&self, reference: &Reference) -> Result<RawManifest> {
        let op = format!("GET manifest {reference}");
        let call = Call {
            registry: reference.registry(),
            home: self.home(reference)?,
            repository: Some(reference.repository()),
            push: false,
            method: Method::GET,
            url: self.manifest_url(reference)?,
            headers: vec![("accept", media::MANIFEST_ACCEPT.to_string())],
            body: None,
            op: op.clone(),
            accept: &[200],
            max_body: MANIFEST_MAX,
        };
        let answer = self.transport.execute(&call).await?;
        let invalid = |reason: String| Error::InvalidResponse {
            registry: reference.registry().to_string(),
            op: op.clone(),
            reason,
        };
        let digest = Digest::sha256(&answer.body);
        if let Some(asked) = reference.digest() {
            if *asked != digest {
                return Err(invalid(format!(
                    "asked for {asked}, received content whose digest is {digest}"
                )));
            }
        }
        if let Some(stated) = header_digest(&answer).map_err(invalid)? {
            if stated != digest {
                return Err(invalid(format!(
                    "the registry states {stated}, the content's digest is {digest}"
                )));
            }
        }
        let json: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|e| invalid(format!("the manifest is not JSON ({e})")))?;
        if !json.is_object() {
            return Err(invalid("the manifest is not a JSON object".into()));
        }
        let media_type = answer
            .header("content-type")
            .map(media::essence)
            .filter(|t| media::is_list(t) || media::is_image_manifest(t))
            .map(str::to_string)
            .or_else(|| json["mediaType"].as_str().map(str::to_string))
            .ok_or_else(|| {
                invalid("neither Content-Type nor the body gives a manifest media type".into())
            })?;
        Ok(RawManifest {
            bytes: answer.body,
            media_type,
            digest,
        })
    }

    /// PUT a manifest under `reference`'s tag (or digest) with an explicit media type;
    /// returns its digest, checked against the registry's.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Digest> {
        Ok(self
            .put_manifest_answer(reference, bytes, media_type)
            .await?
            .0)
    }

    /// [`Client::put_manifest`], also returning the registry's `OCI-Subject` header: a
    /// registry with the referrers API names the `subject` it indexed there.
    pub async fn put_manifest_answer(
        &self,
        reference: &Reference,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<(Digest, Option<String>)> {
        let digest = Digest::sha256(&bytes);
        if let Some(asked) = reference.digest() {
            if *asked != digest {
                return Err(Error::InvalidReference {
                    input: reference.to_string(),
                    reason: format!("the manifest to write has digest {digest}"),
                });
            }
        }
        let op = format!("PUT manifest {reference}");
        let call = Call {
            registry: reference.registry(),
            home: self.home(reference)?,
            repository: Some(reference.repository()),
            push: true,
            method: Method::PUT,
            url: self.manifest_url(reference)?,
            headers: vec![("content-type", media_type.to_string())],
            body: Some(bytes),
            op: op.clone(),
            accept: &[200, 201],
            max_body: SMALL_MAX,
        };
        let answer = self
            .transport
            .execute(&call)
            .await
            .map_err(|e| media_type_refused(e, media_type))?;
        let invalid = |reason: String| Error::InvalidResponse {
            registry: reference.registry().to_string(),
            op: op.clone(),
            reason,
        };
        if let Some(stated) = header_digest(&answer).map_err(invalid)? {
            if stated != digest {
                return Err(invalid(format!(
                    "the registry stored {stated}, we sent {digest}"
                )));
            }
        }
        let subject = answer.header("oci-subject").map(|s| s.trim().to_string());
        Ok((digest, subject))
    }

    /// Whether the repository of `repository` holds blob `digest`.
    pub async fn blob_exists(&self, repository: &Reference, digest: &Digest) -> Result<bool> {
        let call = Call {
            registry: repository.registry(),
            home: self.home(repository)?,
            repository: Some(repository.repository()),
            push: false,
            method: Method::HEAD,
            url: self.blob_url(repository, digest)?,
            headers: vec![],
            body: None,
            op: format!("HEAD blob {}@{digest}", repository.name()),
            accept: &[200, 404],
            max_body: SMALL_MAX,
        };
        Ok(self.transport.execute(&call).await?.status == 200)
    }

    /// GET a (small) blob, such as an image config, verified against its digest.
    pub async fn blob_get(&self, repository: &Reference, digest: &Digest) -> Result<Bytes> {
        let op = format!("GET blob {}@{digest}", repository.name());
        let call = Call {
            registry: repository.registry(),
            home: self.home(repository)?,
            repository: Some(repository.repository()),
            push: false,
            method: Method::GET,
            url: self.blob_url(repository, digest)?,
            headers: vec![],
            body: None,
            op: op.clone(),
            accept: &[200],
            max_body: BLOB_GET_MAX,
        };
        let answer = self.transport.execute(&call).await?;
        if !digest.matches(&answer.body) {
            return Err(Error::InvalidResponse {
                registry: repository.registry().to_string(),
                op,
                reason: format!(
                    "received content whose digest is {}",
                    Digest::sha256(&answer.body)
                ),
            });
        }
        Ok(answer.body)
    }

    /// Uploads a blob in one piece (POST, then PUT with the digest), unless the
    /// repository already has it. The pair is retried as a whole on temporary errors.
    pub async fn upload_blob(
        &self,
        repository: &Reference,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<BlobUpload> {
        let descriptor = Descriptor::of(media_type, &bytes);
        let key = format!("{}@{}", repository.name(), descriptor.digest);
        let lock = self
            .uploading
            .lock()
            .expect("upload locks poisoned")
            .entry(key)
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;
        if self.blob_exists(repository, &descriptor.digest).await? {
            return Ok(BlobUpload {
                descriptor,
                skipped: true,
            });
        }
        let digest = descriptor.digest.clone();
        self.transport
            .retrying(|| self.upload_once(repository, &digest, bytes.clone()))
            .await?;
        Ok(BlobUpload {
            descriptor,
            skipped: false,
        })
    }

    /// Mounts blob `digest` of repository `from` (on the same registry) into `repository`:
    /// the distribution API's cross-repository mount, no bytes sent. False when the
    /// registry did not mount it (it lacks the blob there, or the credentials may not read
    /// `from`, and it opened an upload instead, which is closed again): upload it then.
    pub async fn mount_blob(
        &self,
        repository: &Reference,
        digest: &Digest,
        from: &Reference,
    ) -> Result<bool> {
        let mut url = self.url(
            repository,
            &format!("/v2/{}/blobs/uploads/", repository.repository()),
        )?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from.repository());
        let op = format!(
            "blob mount {}@{digest} from {}",
            repository.name(),
            from.name()
        );
        let home = self.home(repository)?;
        let call = |method: Method, url: Url, accept: &'static [u16]| Call {
            registry: repository.registry(),
            home: home.clone(),
            repository: Some(repository.repository()),
            push: true,
            method,
            url,
            headers: vec![("content-length", "0".into())],
            body: None,
            op: op.clone(),
            accept,
            max_body: SMALL_MAX,
        };
        // Not retried: a repeated POST could leave an upload session open.
        let answer = self
            .transport
            .attempt(&call(Method::POST, url.clone(), &[201, 202]))
            .await?;
        if answer.status == 201 {
            return Ok(true);
        }
        if let Some(session) = answer.header("location").and_then(|l| url.join(l).ok()) {
            // Best effort: a registry forgets an abandoned session anyway.
            let _ = self
                .transport
                .attempt(&call(Method::DELETE, session, &[200, 202, 204, 404]))
                .await;
        }
        Ok(false)
    }

    async fn upload_once(
        &self,
        repository: &Reference,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<()> {
        let start = self.url(
            repository,
            &format!("/v2/{}/blobs/uploads/", repository.repository()),
        )?;
        let op = format!("blob upload {}@{digest}", repository.name());
        let post = Call {
            registry: repository.registry(),
            home: self.home(repository)?,
            repository: Some(repository.repository()),
            push: true,
            method: Method::POST,
            url: start.clone(),
            headers: vec![("content-length", "0".into())],
            body: None,
            op: op.clone(),
            accept: &[202],
            max_body: SMALL_MAX,
        };
        let answer = self.transport.attempt(&post).await?;
        let invalid = |reason: String| Error::InvalidResponse {
            registry: repository.registry().to_string(),
            op: op.clone(),
            reason,
        };
        let location = answer
            .header("location")
            .ok_or_else(|| invalid("no Location for the upload".into()))?;
        let mut url = start
            .join(location)
            .map_err(|_| invalid(format!("Location {location:?} is not a URL")))?;
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let put = Call {
            registry: repository.registry(),
            home: self.home(repository)?,
            repository: Some(repository.repository()),
            push: true,
            method: Method::PUT,
            url,
            headers: vec![("content-type", "application/octet-stream".into())],
            body: Some(bytes),
            op: op.clone(),
            accept: &[201, 204],
            max_body: SMALL_MAX,
        };
        let answer = self.transport.attempt(&put).await?;
        if let Some(stated) = header_digest(&answer).map_err(invalid)? {
            if stated != *digest {
                return Err(invalid(format!("the registry stored {stated}")));
            }
        }
        Ok(())
    }
}

/// A refusal of a manifest PUT that is about its media type (415, or 400 with
/// `MANIFEST_INVALID` / `UNSUPPORTED`) as [`Error::MediaTypeRefused`], naming the other
/// family to try; any other error unchanged.
fn media_type_refused(error: Error, media_type: &str) -> Error {
    match error {
        Error::ServerError {
            registry,
            op,
            status,
            code,
            message,
            ..
        } if status == 415
            || (status == 400
                && matches!(code.as_deref(), Some("MANIFEST_INVALID" | "UNSUPPORTED"))) =>
        {
            Error::MediaTypeRefused {
                registry,
                op,
                media_type: media_type.to_string(),
                other: if media_type.contains(".oci.") {
                    "Docker"
                } else {
                    "OCI"
                },
                refusal: format!(
                    "{status}{}: {message}",
                    code.map(|c| format!(" {c}")).unwrap_or_default()
                ),
            }
        }
        other => other,
    }
}

/// The `Docker-Content-Digest` header, if present, parsed.
fn header_digest(answer: &Answer) -> std::result::Result<Option<Digest>, String> {
    match answer.header("docker-content-digest") {
        None => Ok(None),
        Some(text) => Digest::parse(text.trim())
            .map(Some)
            .map_err(|e| format!("Docker-Content-Digest: {e}")),
    }
}
