//! The resolved options every stage reads: plain values, built once from the flags and the
//! environment by `app` (ripgrep's "high" arguments). Nothing below `app` sees a clap type
//! or reads `std::env`, so a stage's inputs are all in its signature.

use crate::image::media::MediaTypes;
use std::path::PathBuf;

/// Who makes the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builder {
    /// qus writes every layer, config and manifest itself (reproducible digests).
    Qus,
    /// `Dockerfile.template` through the daemon's classic builder.
    Dockerfile,
}

/// How images are built.
#[derive(Debug, Clone)]
pub(crate) struct BuildOptions {
    /// Who makes the images.
    pub builder: Builder,
    /// Which media types they are written with.
    pub media: MediaTypes,
    /// Also write every image and list into this OCI image layout.
    pub oci_layout: Option<PathBuf>,
    /// Bypass the daemon's build cache (`--builder dockerfile`).
    pub no_cache: bool,
    /// Rebuild images that are already there with the same inputs.
    pub force: bool,
    /// Builds or pushes in flight at once.
    pub jobs: usize,
    /// The engine images are loaded into or built by.
    pub engine: crate::engine::Engine,
    /// Which images `qus build` loads into it.
    pub load: LoadScope,
}

/// Which of the plan's images `qus build` loads into the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoadScope {
    /// Every one.
    All,
    /// Those of these hosts (`--load native`: the ones this machine runs without an
    /// emulator; `--load none`: no host); the rest go to the OCI layout only.
    Hosts(Vec<crate::arch::Host>),
}

impl LoadScope {
    /// Whether images of `host` are loaded.
    pub fn loads(&self, host: crate::arch::Host) -> bool {
        match self {
            LoadScope::All => true,
            LoadScope::Hosts(hs) => hs.contains(&host),
        }
    }
}

/// How the registry is reached.
#[derive(Debug, Clone, Default)]
pub(crate) struct RegistryOptions {
    /// `--username` with the password read from stdin; `None`: the Docker config's.
    pub credentials: Option<(String, String)>,
    /// The Docker CLI config whose `auths`/credential helpers give the credentials
    /// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`); read again before each
    /// push phase and after a 401.
    pub docker_config: Option<PathBuf>,
    /// Docker's per-registry certificate folders (`QUS_DOCKER_CERTS_D`, else
    /// `/etc/docker/certs.d`): `<dir>/<host:port>/ca.crt`, `client.cert` + `client.key`.
    pub certs_dir: Option<PathBuf>,
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure: Vec<String>,
    /// How long connecting, silence and each request may last (`--timeout`, `QUS_TIMEOUT`).
    pub timeouts: qus_registry::Timeouts,
}

/// What `qus release` attaches and signs besides the images.
#[derive(Debug, Clone)]
pub(crate) struct SupplyOptions {
    /// Sign every image and list with this key (`--sign-key`, QUS_SIGN_KEY).
    pub sign_key: Option<crate::attest::sign::Key>,
    /// The facts the provenance records.
    pub context: crate::attest::BuildContext,
}
