//! A disposable real registry for tests, and tiny images to fill it with.
//!
//! Tests of registry I/O prove most against the real thing: Debian's
//! `docker-registry` (distribution 2.8), started on a free loopback port with a
//! throw-away storage folder, killed on drop. It can be stopped and restarted on the
//! same port and storage (fault tests), protected by htpasswd (auth tests), serve HTTPS
//! with a throw-away CA ([`TestCa`], made with the `openssl` command) and require client
//! certificates, point clients at a token service of the test's choosing, and its access
//! log read back to count requests (idempotence: "no PUT the second time").
//! [`TinyImage`] builds small but real images (a gzip tar layer and a config with
//! os/architecture/variant) so tests need no Docker daemon.
//!
//! Enabled by the `testkit` feature; the pipeline's own tests can use it too.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::Client;
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::{Descriptor, ImageManifest, Platform};
use crate::media;
use crate::reference::Reference;
use crate::storage::{storage_stats, StorageStats};

/// User name accepted by a registry started with [`TestRegistry::start_with_htpasswd`].
pub const TEST_USER: &str = "qus";
/// Password accepted by a registry started with [`TestRegistry::start_with_htpasswd`].
pub const TEST_PASSWORD: &str = "qus-test-password";
/// bcrypt (cost 5, cheap on purpose: the registry checks it on every request) of
/// [`TEST_PASSWORD`]; precomputed so tests need neither `htpasswd` nor a bcrypt crate.
const TEST_HTPASSWD: &str = "qus:$2b$05$3SNkig/EhOQu7Kby4pTEWeinEvk4Mu9A9FecJ1QKQA2gF2ly6pmzO\n";

/// How long a registry may take to answer `/v2/` after start.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `docker-registry serve`, killed on drop.
#[derive(Debug)]
pub struct TestRegistry {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    options: Options,
}

/// How a [`TestRegistry`] is set up.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Require Basic auth as [`TEST_USER`] / [`TEST_PASSWORD`].
    pub htpasswd: bool,
    /// Serve HTTPS.
    pub tls: Option<ServerTls>,
    /// Require bearer tokens from this token service (they are never valid: the point is
    /// what the client sends the service, not the registry's verdict).
    pub token_realm: Option<TokenRealm>,
}

/// HTTPS settings of a [`TestRegistry`].
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// Server certificate (PEM).
    pub certificate: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// Require client certificates signed by this CA.
    pub client_ca: Option<PathBuf>,
}

/// Token auth settings of a [`TestRegistry`].
#[derive(Clone, Debug)]
pub struct TokenRealm {
    /// The token service URL the registry names in its challenge.
    pub realm: String,
    /// A PEM certificate bundle the registry would verify tokens with.
    pub root_cert_bundle: PathBuf,
}

/// One access-log line: what the registry was asked and what it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// HTTP method.
    pub method: String,
    /// Request path (with query).
    pub path: String,
    /// Status answered.
    pub status: u16,
}

impl TestRegistry {
    /// Starts an open (no auth) registry.
    pub fn start() -> io::Result<TestRegistry> {
        TestRegistry::start_with(Options::default())
    }

    /// Starts a registry that requires Basic auth as [`TEST_USER`] / [`TEST_PASSWORD`].
    pub fn start_with_htpasswd() -> io::Result<TestRegistry> {
        TestRegistry::start_with(Options {
            htpasswd: true,
            ..Options::default()
        })
    }

    /// Starts a registry set up as `options` say.
    pub fn start_with(options: Options) -> io::Result<TestRegistry> {
        let dir = tempfile::Builder::new().prefix("qus-registry-").tempdir()?;
        let mut registry = TestRegistry {
            dir,
            port: 0,
            child: None,
            options,
        };
        // A port found free can be taken (by another test's client or server) before
        // the registry binds it: then try another one.
        let mut attempts = 0;
        loop {
            registry.port = free_port()?;
            registry.configure()?;
            match registry.spawn() {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts < 5 => attempts += 1,
                result => return result.map(|()| registry),
            }
        }
    }

    fn configure(&self) -> io::Result<()> {
        let (dir, port) = (&self.dir, self.port);
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: qus-testkit-upload-state\n",
            storage = storage.display()
        );
        if let Some(tls) = &self.options.tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.certificate.display(),
                tls.key.display()
            ));
            if let Some(ca) = &tls.client_ca {
                config.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
            }
        }
        if self.options.htpasswd {
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, TEST_HTPASSWD)?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: qus-test\n    path: {}\n",
                path.display()
            ));
        } else if let Some(token) = &self.options.token_realm {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: qus-test\n    issuer: qus-test\n    rootcertbundle: {}\n",
                token.realm,
                token.root_cert_bundle.display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log_start = std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let program =
            std::env::var_os("QUS_DOCKER_REGISTRY").unwrap_or_else(|| "docker-registry".into());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(&program)
            .arg("serve")
            .arg(self.dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot run {} ({e}); install Debian's docker-registry package or set QUS_DOCKER_REGISTRY",
                        program.to_string_lossy()
                    ),
                )
            })?;
        self.child = Some(child);
        self.wait_ready(log_start)
    }

    /// This start's part of the log.
    fn log_since(&self, offset: u64) -> String {
        let bytes = std::fs::read(self.log_path()).unwrap_or_default();
        let start = (offset as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    /// Ready when *our* process logged that it listens and `/v2/` answers (a probe
    /// alone could reach whoever else holds the port).
    fn wait_ready(&mut self, log_start: u64) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let listening = format!("listening on 127.0.0.1:{}", self.port);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    let log = self.log_since(log_start);
                    let kind = if log.contains("address already in use") {
                        io::ErrorKind::AddrInUse
                    } else {
                        io::ErrorKind::Other
                    };
                    return Err(io::Error::new(
                        kind,
                        format!(
                            "docker-registry exited ({status}) at start; log:\n{}",
                            self.log_tail()
                        ),
                    ));
                }
            }
            // A TLS registry answers a plain-HTTP probe with 400 ("HTTP request to an
            // HTTPS server"): listening all the same.
            let answering = match probe(self.port) {
                Some(200 | 401) => true,
                Some(400) => self.options.tls.is_some(),
                _ => false,
            };
            if self.log_since(log_start).contains(&listening) && answering {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(io::Error::other(format!(
                    "docker-registry did not answer /v2/ within {START_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the registry (as a crash would); storage and port are kept for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry again on the same port with the same storage.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        // The port is ours to reuse, but a client's connection may hold it briefly.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                result => return result,
            }
        }
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `127.0.0.1:<port>`: the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>` (`https://` when it serves TLS).
    pub fn base_url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host())
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A reference in this registry: `reference("qus:aarch64")`.
    pub fn reference(&self, repository_and_tag: &str) -> Reference {
        Reference::parse(&format!("{}/{repository_and_tag}", self.host()))
            .expect("a valid test reference")
    }

    /// The storage `rootdirectory`.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Blob count and bytes in storage.
    pub fn stats(&self) -> io::Result<StorageStats> {
        storage_stats(&self.storage())
    }

    /// The registry's combined log (kept across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Every access-log line so far, after the log has stopped growing (the registry
    /// writes a line just after answering, so a client can be ahead of its log).
    pub fn access_log(&self) -> Vec<AccessLogEntry> {
        settle(&self.log_path());
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines().filter_map(parse_access_line).collect()
    }

    /// How many requests with `method` the registry has logged.
    pub fn count(&self, method: &str) -> usize {
        self.access_log()
            .iter()
            .filter(|e| e.method == method)
            .count()
    }

    /// How many PUT requests (blob upload completions and manifest writes) it has logged.
    pub fn puts(&self) -> usize {
        self.count("PUT")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A throw-away certificate authority with a server certificate for `127.0.0.1` and
/// `localhost` and a client certificate, made with the `openssl` command (EC P-256, valid
/// two days), in a folder removed on drop.
#[derive(Debug)]
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes the CA and both certificates.
    pub fn new() -> io::Result<TestCa> {
        let dir = tempfile::Builder::new().prefix("qus-ca-").tempdir()?;
        let openssl = |args: &[&str]| -> io::Result<()> {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .output()
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("cannot run openssl ({e}); install Debian's openssl package"),
                    )
                })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "openssl {args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )))
            }
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509", "-new"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=qus-test-ca",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            ]
            .concat(),
        )?;
        for (name, usage, san) in [
            (
                "server",
                "serverAuth",
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
            ),
            ("client", "clientAuth", ""),
        ] {
            std::fs::write(
                dir.path().join(format!("{name}.ext")),
                format!(
                    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                     extendedKeyUsage={usage}\n{san}"
                ),
            )?;
            let (key, csr, crt, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
                format!("{name}.ext"),
            );
            openssl(
                &[
                    &["req", "-new"][..],
                    &ec,
                    &[
                        "-keyout",
                        &key,
                        "-out",
                        &csr,
                        "-subj",
                        &format!("/CN=qus-test-{name}"),
                    ],
                ]
                .concat(),
            )?;
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ])?;
        }
        Ok(TestCa { dir })
    }

    /// The CA certificate (PEM).
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// HTTPS settings for a [`TestRegistry`] with this CA's server certificate; with
    /// `require_client_cert`, clients must present a certificate this CA signed.
    pub fn server_tls(&self, require_client_cert: bool) -> ServerTls {
        ServerTls {
            certificate: self.dir.path().join("server.crt"),
            key: self.dir.path().join("server.key"),
            client_ca: require_client_cert.then(|| self.ca_cert()),
        }
    }

    /// Fills `root/<host>/` the way Docker's `certs.d` is laid out: `ca.crt`, and with
    /// `client`, `client.cert` + `client.key`.
    pub fn certs_d(&self, root: &Path, host: &str, client: bool) -> io::Result<PathBuf> {
        let dir = root.join(host);
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(self.ca_cert(), dir.join("ca.crt"))?;
        if client {
            std::fs::copy(self.dir.path().join("client.crt"), dir.join("client.cert"))?;
            std::fs::copy(self.dir.path().join("client.key"), dir.join("client.key"))?;
        }
        Ok(dir)
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Status of `GET /v2/`, or `None` when nothing answers yet.
fn probe(port: u16) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream
        .write_all(format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Waits until `path` has not grown for a moment (bounded).
fn settle(path: &Path) {
    let size = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut last = size();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(150));
        let now = size();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Parses a combined-log-format line: `IP - - [date] "METHOD PATH PROTO" STATUS …`.
fn parse_access_line(line: &str) -> Option<AccessLogEntry> {
    let start = line.find("] \"")? + 3;
    let rest = &line[start..];
    let end = rest.find('"')?;
    let mut request = rest[..end].split(' ');
    let method = request.next()?.to_string();
    let path = request.next()?.to_string();
    let status = rest[end + 1..].split_whitespace().next()?.parse().ok()?;
    Some(AccessLogEntry {
        method,
        path,
        status,
    })
}

/// A small, real, single-layer image for one platform.
#[derive(Clone, Debug)]
pub struct TinyImage {
    /// Platform written in the config.
    pub platform: Platform,
    /// Config blob (Docker image config JSON).
    pub config: Bytes,
    /// Layer blob (gzip tar with one file).
    pub layer: Bytes,
    /// Docker schema 2 manifest bytes.
    pub manifest: Bytes,
}

impl TinyImage {
    /// An image for `platform` whose only file, `/qus-test`, holds `payload`
    /// (different payloads give different digests).
    pub fn new(platform: &Platform, payload: &str) -> TinyImage {
        let tar = tar_one_file("qus-test", payload.as_bytes());
        let diff_id = Digest::sha256(&tar);
        let layer = Bytes::from(gzip_stored(&tar));
        let mut config = serde_json::json!({
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.as_str()]},
        });
        if let Some(variant) = &platform.variant {
            config["variant"] = serde_json::Value::String(variant.clone());
        }
        let config = Bytes::from(serde_json::to_vec(&config).expect("json"));
        let manifest = ImageManifest::docker(
            Descriptor::of(media::DOCKER_CONFIG, &config),
            vec![Descriptor::of(media::DOCKER_LAYER_GZIP, &layer)],
        );
        TinyImage {
            platform: platform.clone(),
            config,
            layer,
            manifest: Bytes::from(manifest.to_bytes()),
        }
    }

    /// Digest of the manifest.
    pub fn digest(&self) -> Digest {
        Digest::sha256(&self.manifest)
    }

    /// Pushes blobs then manifest to `target` (a tag or digest reference) through the
    /// distribution API; returns the manifest's descriptor.
    pub async fn push(&self, client: &Client, target: &Reference) -> Result<Descriptor> {
        client
            .upload_blob(target, media::DOCKER_CONFIG, self.config.clone())
            .await?;
        client
            .upload_blob(target, media::DOCKER_LAYER_GZIP, self.layer.clone())
            .await?;
        let digest = client
            .put_manifest(target, self.manifest.clone(), media::DOCKER_MANIFEST)
            .await?;
        Ok(Descriptor::new(
            media::DOCKER_MANIFEST,
            self.manifest.len() as u64,
            digest,
        ))
    }
}

/// A ustar archive with one regular file, fixed owner and mtime (reproducible).
fn tar_one_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put =
        |h: &mut [u8; 512], at: usize, text: &[u8]| h[at..at + text.len()].copy_from_slice(text);
    put(&mut header, 0, name.as_bytes());
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(
        &mut header,
        124,
        format!("{:011o}\0", content.len()).as_bytes(),
    );
    put(&mut header, 136, b"00000000000\0");
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// gzip with stored (uncompressed) deflate blocks: valid gzip, no compressor needed.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn parses_access_lines() {
        let line = r#"127.0.0.1 - - [28/Nov/2026:04:27:21 +0000] "PUT /v2/x/manifests/t HTTP/1.1" 201 0 "" "curl/7.88.1""#;
        assert_eq!(
            parse_access_line(line),
            Some(AccessLogEntry {
                method: "PUT".into(),
                path: "/v2/x/manifests/t".into(),
                status: 201
            })
        );
        assert_eq!(
            parse_access_line(
                r#"time="2026" level=info msg="response completed" http.request.method=PUT"#
            ),
            None
        );
    }

    #[test]
    fn tiny_images_are_reproducible_and_distinct() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        let a = TinyImage::new(&p, "x");
        assert_eq!(a.digest(), TinyImage::new(&p, "x").digest());
        assert_ne!(a.digest(), TinyImage::new(&p, "y").digest());
        let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["variant"], "v7");
        assert_eq!(&a.layer[..2], &[0x1f, 0x8b]);
    }
}
