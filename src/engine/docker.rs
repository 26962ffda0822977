//! The Docker Engine, through bollard: the narrow set of calls qus makes (load, inspect,
//! and for `--builder dockerfile` build and push), with bollard's types kept inside this
//! module.
//!
//! Builds use the classic builder, which honours `platform` for `FROM scratch` but whose
//! cache does not tell platforms apart: a cached layer built for another platform carries
//! that platform's config. Every build is therefore checked against its platform after it
//! finishes, and rebuilt without the cache when it does not match.

use crate::arch::Platform;
use crate::engine::build_context::{self, ContextError, ContextFolders};
use crate::engine::{Engine, EngineError, Transport};
use crate::plan::ImagePlan;
use crate::ui::progress::Progress;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ImportImageOptionsBuilder, PushImageOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::io::{self, Write};

/// What can go wrong talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No engine was chosen (an unknown context, an unsupported address).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No engine answers.
    #[error(
        "cannot reach the container engine at {endpoint}: {message}. Is it running? \
         (--context, DOCKER_HOST, DOCKER_CONTEXT or the docker config's currentContext select \
         another engine)"
    )]
    Unreachable {
        /// Where we looked, and why there.
        endpoint: String,
        /// What the connection said.
        message: String,
    },
    /// The builder reported an error.
    #[error("building {reference} failed: {message}")]
    Build {
        /// The image.
        reference: String,
        /// The builder's message.
        message: String,
    },
    /// The build context could not be written.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The built image does not say the platform it was built for.
    #[error("{reference} was built as {got}, not {want}, even without the build cache")]
    Platform {
        /// The image.
        reference: String,
        /// Expected.
        want: String,
        /// What the image config says.
        got: String,
    },
    /// Pushing failed.
    #[error("pushing {reference} failed: {message}")]
    Push {
        /// The image.
        reference: String,
        /// The daemon's message.
        message: String,
    },
    /// `docker load` of qus's images failed.
    #[error("loading {what} into the daemon: {message}")]
    Load {
        /// Which images.
        what: String,
        /// The daemon's message.
        message: String,
    },
    /// Any other API call failed.
    #[error("{what}: {source}")]
    Api {
        /// What qus was doing.
        what: String,
        /// bollard's error.
        source: bollard::errors::Error,
    },
}

/// What qus needs to know about an image in the daemon.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// Image ID: the config digest with the classic image store (overlay2,
    /// fuse-overlayfs …), the manifest or index digest with the containerd store.
    pub id: String,
    /// `repo@sha256:…` of the manifests this image was pushed as or pulled from.
    pub repo_digests: Vec<String>,
    /// Platform from the image config.
    pub platform: Platform,
    /// Whether the engine reports variants: Podman 4's image inspect has no `Variant`, so
    /// `linux/arm/v7` reads as `linux/arm` there.
    pub variant_reported: bool,
    /// Layer diffIDs, bottom first.
    pub layers: Vec<String>,
    /// Labels.
    pub labels: HashMap<String, String>,
}

impl ImageInfo {
    /// Whether the image is of `want`, as far as the engine tells.
    pub fn is_platform(&self, want: &Platform) -> bool {
        if self.variant_reported {
            return self.platform == *want;
        }
        self.platform.os == want.os && self.platform.architecture == want.architecture
    }
}

/// Per-push counts, from the daemon's stream.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PushStats {
    /// Layers uploaded.
    pub pushed: u32,
    /// Layers the registry already had (or mounted from another repository).
    pub existing: u32,
    /// Bytes uploaded, as the daemon reported them.
    pub bytes: u64,
    /// The manifest digest the daemon pushed (its `TAG: digest: sha256:… size: N` line).
    pub digest: Option<String>,
}

/// A connected engine.
#[derive(Clone)]
pub struct Daemon {
    docker: Docker,
    /// Podman's Docker-compatible API: its image inspect has no `Variant`.
    podman: bool,
}

/// Builds and pushes of the full matrix stream for minutes; bollard's default of two
/// minutes would cut them off.
const TIMEOUT_SECS: u64 = 3600;

impl Daemon {
    /// Connects to the chosen engine and agrees on an API version.
    pub async fn connect(engine: &Engine) -> Result<Daemon, DockerError> {
        let endpoint = engine.as_ref().map_err(|e| e.clone())?;
        let unreachable = |e: bollard::errors::Error| DockerError::Unreachable {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        };
        let version = bollard::API_DEFAULT_VERSION;
        let docker = match &endpoint.transport {
            Transport::Unix(path) => {
                Docker::connect_with_unix(&path.to_string_lossy(), TIMEOUT_SECS, version)
            }
            Transport::Tcp(addr) => Docker::connect_with_http(addr, TIMEOUT_SECS, version),
            Transport::Tls {
                addr,
                ca,
                cert,
                key,
            } => {
                qus_registry::tls_provider();
                Docker::connect_with_ssl(addr, key, cert, ca, TIMEOUT_SECS, version)
            }
        }
        .map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        let version = docker.version().await.map_err(unreachable)?;
        // Podman's compatible API calls itself "Podman Engine" among the components.
        let podman = version
            .components
            .unwrap_or_default()
            .iter()
            .any(|c| c.name.to_ascii_lowercase().contains("podman"));
        Ok(Daemon { docker, podman })
    }

    /// Inspects an image; `None` when the daemon does not have it.
    pub async fn inspect(&self, reference: &str) -> Result<Option<ImageInfo>, DockerError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(ImageInfo {
                variant_reported: !self.podman || i.variant.is_some(),
                id: i.id.unwrap_or_default(),
                repo_digests: i.repo_digests.unwrap_or_default(),
                platform: Platform::new(
                    i.os.as_deref().unwrap_or_default(),
                    i.architecture.as_deref().unwrap_or_default(),
                    i.variant.as_deref(),
                ),
                layers: i.root_fs.and_then(|r| r.layers).unwrap_or_default(),
                labels: i.config.and_then(|c| c.labels).unwrap_or_default(),
            })),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(source) => Err(DockerError::Api {
                what: format!("inspecting {reference}"),
                source,
            }),
        }
    }

    /// Builds `image` from its rendered Dockerfile and layer files, tags it, and checks that
    /// the result carries the image's platform; returns what the daemon says of it.
    pub async fn build(
        &self,
        image: &ImagePlan,
        dockerfile: &str,
        files: &ContextFolders,
        mtime: u64,
        no_cache: bool,
        progress: &Progress,
    ) -> Result<ImageInfo, DockerError> {
        // With the cache first; without it when the cache handed over another platform's
        // layer (its config then says that platform), or lost an image the build stacked on
        // or ended with.
        let attempts: &[bool] = if no_cache { &[true] } else { &[false, true] };
        let mut got = String::new();
        for &cold in attempts {
            let id = match self
                .build_once(image, dockerfile, files, mtime, cold, progress)
                .await
            {
                Ok(id) => id,
                // Another client removed a cached image this build was stacking on or
                // ending with (an image prune, a concurrent clean-up): the daemon says
                // "unknown parent image", or "failed to get destination image …: No such
                // image". The cold build does not need it.
                Err(DockerError::Build { message, .. })
                    if !cold
                        && (message.contains("unknown parent image")
                            || message.contains("No such image")) =>
                {
                    progress.step(format!(
                        "{}: a cached image vanished during the build ({message}); rebuilding \
                         without the cache",
                        image.reference
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let Some(info) = self.inspect(&id).await? else {
                // The cache handed over an image another client untagged (and so deleted)
                // before this build could tag it; a cold build makes an image of its own.
                if !cold {
                    progress.step(format!(
                        "{}: the cached image {id} vanished before it was tagged; rebuilding \
                         without the cache",
                        image.reference
                    ));
                    continue;
                }
                return Err(DockerError::Build {
                    reference: image.reference.clone(),
                    message: format!("the daemon reported image {id} but does not have it"),
                });
            };
            if info.is_platform(&image.platform) {
                return Ok(info);
            }
            got = info.platform.to_string();
            if !cold {
                progress.step(format!(
                    "{}: the build cache gave a {got} layer; rebuilding without the cache",
                    image.reference
                ));
            }
        }
        Err(DockerError::Platform {
            reference: image.reference.clone(),
            want: image.platform.to_string(),
            got,
        })
    }

    async fn build_once(
        &self,
        image: &ImagePlan,
        dockerfile: &str,
        files: &ContextFolders,
        mtime: u64,
        no_cache: bool,
        progress: &Progress,
    ) -> Result<String, DockerError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(8);
        let (img, df, fl) = (image.clone(), dockerfile.to_string(), files.clone());
        // The context of a full image is hundreds of MB: it is written by a blocking thread
        // into a bounded channel while the daemon reads it, never held whole in memory.
        let writer = tokio::task::spawn_blocking(move || {
            let sink = ChannelWriter { tx: tx.clone() };
            let out = io::BufWriter::with_capacity(1 << 20, sink);
            let res = build_context::write_context(out, &img, &df, &fl, mtime).and_then(|mut w| {
                w.flush().map_err(|source| ContextError::Io {
                    tag: img.tag.clone(),
                    source,
                })
            });
            if let Err(e) = &res {
                let _ = tx.blocking_send(Err(io::Error::other(e.to_string())));
            }
            res.map(|_| ())
        });
        let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(&image.reference)
            .platform(&image.platform.to_string())
            .nocache(no_cache)
            .rm(true)
            .forcerm(true)
            .build();
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_try_stream(body)));
        let mut id = None;
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = info.stream {
                        progress.detail(s);
                    }
                    if let Some(e) = info.error_detail.and_then(|d| d.message) {
                        failure = Some(e);
                    }
                    if let Some(aux) = info.aux {
                        if let Some(i) = aux.id {
                            id = Some(i);
                        }
                    }
                }
                Err(e) => {
                    failure = Some(error_message(e));
                    break;
                }
            }
        }
        drop(stream);
        // A context error explains a failed build better than the daemon's "unexpected EOF".
        match writer.await {
            Ok(Err(e)) => return Err(e.into()),
            Err(join) => {
                return Err(DockerError::Build {
                    reference: image.reference.clone(),
                    message: format!("writing the build context panicked: {join}"),
                })
            }
            Ok(Ok(())) => {}
        }
        if let Some(message) = failure {
            return Err(DockerError::Build {
                reference: image.reference.clone(),
                message,
            });
        }
        id.ok_or_else(|| DockerError::Build {
            reference: image.reference.clone(),
            message: "the builder finished without reporting an image ID".into(),
        })
    }

    /// Loads a docker-archive (`docker save`'s format) that `write` produces on a blocking
    /// thread, streamed to the daemon as it is written, never held whole in memory or on disk.
    pub async fn load<F>(&self, what: &str, write: F) -> Result<(), DockerError>
    where
        F: FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
    {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, io::Error>>(8);
        let writer = tokio::task::spawn_blocking(move || {
            let sink = ChannelWriter { tx: tx.clone() };
            let mut out = io::BufWriter::with_capacity(1 << 20, sink);
            let res = write(&mut out).and_then(|()| out.flush());
            if let Err(e) = &res {
                let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
            }
            res
        });
        let body = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut stream = self.docker.import_image_stream(options, body, None);
        let fail = |message: String| DockerError::Load {
            what: what.to_string(),
            message,
        };
        let mut failure = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(e) = info.error_detail.and_then(|d| d.message) {
                        failure.get_or_insert(e);
                    }
                }
                Err(e) => {
                    failure.get_or_insert(error_message(e));
                }
            }
        }
        let written = writer
            .await
            .map_err(|e| fail(format!("the archive writer died: {e}")))?;
        if let Err(e) = written {
            // The daemon hanging up mid-stream is reported by the daemon's own message.
            if failure.is_none() {
                return Err(fail(format!("writing the archive: {e}")));
            }
        }
        match failure {
            Some(m) => Err(fail(m)),
            None => Ok(()),
        }
    }

    /// The files at `paths` in `image`, read through a container that is created (never
    /// started) for it and removed again: works for an image of any platform.
    pub async fn copy_out(
        &self,
        image: &str,
        platform: &Platform,
        paths: &[String],
    ) -> Result<Vec<Vec<u8>>, DockerError> {
        let api = |what: String| move |source| DockerError::Api { what, source };
        let create = bollard::query_parameters::CreateContainerOptions {
            name: None,
            platform: platform.to_string(),
        };
        let body = bollard::models::ContainerCreateBody {
            image: Some(image.to_string()),
            // Never run: a command is only needed because pkg images have none.
            cmd: Some(vec!["/qus-copy-out".to_string()]),
            ..Default::default()
        };
        let id = self
            .docker
            .create_container(Some(create), body)
            .await
            .map_err(api(format!("creating a container of {image}")))?
            .id;
        let mut out = Vec::with_capacity(paths.len());
        let mut result = Ok(());
        for path in paths {
            let opts = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
                .path(path)
                .build();
            let mut tar_bytes = Vec::new();
            let mut s = self.docker.download_from_container(&id, Some(opts));
            while let Some(chunk) = s.next().await {
                match chunk {
                    Ok(b) => tar_bytes.extend_from_slice(&b),
                    Err(e) => {
                        result = Err(api(format!("reading {path} from {image}"))(e));
                        break;
                    }
                }
            }
            if result.is_err() {
                break;
            }
            match first_file(&tar_bytes) {
                Some(bytes) => out.push(bytes),
                None => {
                    result = Err(DockerError::Load {
                        what: image.to_string(),
                        message: format!("{path} is not a file in the image"),
                    });
                    break;
                }
            }
        }
        let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
            .force(true)
            .build();
        let removed = self.docker.remove_container(&id, Some(rm)).await;
        result?;
        removed.map_err(api(format!("removing the container of {image}")))?;
        Ok(out)
    }

    /// Pushes `repo:tag`, reporting per-layer progress; the registry is the judge of what
    /// was pushed (see `qus_registry`), the stream only feeds progress.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        auth: Option<&qus_registry::PushCredentials>,
        progress: &Progress,
    ) -> Result<PushStats, DockerError> {
        let reference = format!("{repo}:{tag}");
        let opts = PushImageOptionsBuilder::default().tag(tag).build();
        let creds = auth.map(|c| bollard::auth::DockerCredentials {
            username: c.username.clone(),
            password: c.password.as_ref().map(|s| s.expose().to_string()),
            identitytoken: c.identitytoken.as_ref().map(|s| s.expose().to_string()),
            registrytoken: c.registrytoken.as_ref().map(|s| s.expose().to_string()),
            serveraddress: Some(c.serveraddress.clone()),
            ..Default::default()
        });
        let mut stream = self.docker.push_image(repo, Some(opts), creds);
        let mut stats = PushStats::default();
        let spinner = progress.spinner(&format!("pushing {reference}"));
        let mut current: HashMap<String, u64> = HashMap::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| DockerError::Push {
                reference: reference.clone(),
                message: self.push_hint(error_message(e)),
            })?;
            let status = info.status.unwrap_or_default();
            match status.as_str() {
                "Pushed" => stats.pushed += 1,
                "Layer already exists" => stats.existing += 1,
                s if s.starts_with("Mounted from") => stats.existing += 1,
                s if s.contains(": digest: ") => stats.digest = pushed_digest(s),
                "Pushing" => {
                    if let Some(d) = info.progress_detail {
                        if let (Some(c), Some(t)) = (d.current, d.total) {
                            // Without a layer id in the stream, key by total size.
                            current.insert(t.to_string(), c.max(0) as u64);
                        }
                    }
                }
                _ => progress.detail(&status),
            }
            spinner.message(&format!(
                "pushing {reference}: {} layers pushed, {} already there",
                stats.pushed, stats.existing
            ));
        }
        stats.bytes = current.values().sum();
        Ok(stats)
    }
}

impl Daemon {
    /// Podman, unlike Docker, reaches a loopback registry over HTTPS too, and the compatible
    /// API has no way to ask otherwise per push: say where Podman is told.
    fn push_hint(&self, message: String) -> String {
        if self.podman && message.contains("HTTP response to HTTPS client") {
            return format!(
                "{message} (Podman reaches every registry over HTTPS, loopback ones too: \
                 mark this one insecure in /etc/containers/registries.conf, [[registry]] \
                 location = \"HOST:PORT\" insecure = true, and restart the service; or \
                 release with the default builder, which pushes with qus's own client)"
            );
        }
        message
    }
}

/// The digest of the daemon's closing push line, `TAG: digest: sha256:… size: N`.
fn pushed_digest(status: &str) -> Option<String> {
    let (_, rest) = status.split_once(": digest: ")?;
    rest.split_whitespace()
        .next()
        .filter(|d| d.starts_with("sha256:"))
        .map(str::to_string)
}

/// The content of the first regular file of a tar (what the archive API sends for a path).
fn first_file(tar_bytes: &[u8]) -> Option<Vec<u8>> {
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().ok()? {
        let mut e = e.ok()?;
        if e.header().entry_type().is_file() {
            let mut v = Vec::new();
            io::Read::read_to_end(&mut e, &mut v).ok()?;
            return Some(v);
        }
    }
    None
}

fn error_message(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerStreamError { error } => error,
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    }
}

/// A `Write` that hands chunks to the async side.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the daemon stopped reading the build context",
                )
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_reported_variant_only_os_and_architecture_are_compared() {
        let v7 = Platform::new("linux", "arm", Some("v7"));
        let info = |variant_reported| ImageInfo {
            id: String::new(),
            repo_digests: Vec::new(),
            platform: Platform::new("linux", "arm", None),
            variant_reported,
            layers: Vec::new(),
            labels: HashMap::new(),
        };
        assert!(info(false).is_platform(&v7), "Podman: no Variant field");
        assert!(
            !info(true).is_platform(&v7),
            "Docker: arm without v7 is another platform"
        );
        assert!(!info(false).is_platform(&Platform::new("linux", "arm64", Some("v8"))));
    }

    #[test]
    fn the_pushed_digest_is_read_from_the_closing_line() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            pushed_digest(&format!("amd64-d10.0: digest: {d} size: 1234")),
            Some(d.to_string())
        );
        assert_eq!(pushed_digest("Pushed"), None);
        assert_eq!(pushed_digest("x: digest: md5:abc size: 1"), None);
    }
}
