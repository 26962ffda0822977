//! The resolved options every stage reads: plain values, built once from the flags and the
//! environment by `app` (ripgrep's "high" arguments). Nothing below `app` sees a clap type
//! or reads `std::env`, so a stage's inputs are all in its signature.

use crate::config::Distro;
use crate::image::media::MediaTypes;
use qus_source::Origin;
use std::path::PathBuf;

/// Where packages come from, and where downloads and extracted files are kept.
#[derive(Debug, Clone)]
pub(crate) struct SourceOptions {
    /// `--debs DIR`: files as `apt-get download` leaves them, for every distro.
    pub packages_dir: Option<PathBuf>,
    /// The Debian mirror root (`--mirror`, `QUS_MIRROR`, this machine's apt sources).
    pub debian_mirror: Option<String>,
    /// The Fedora mirror root (`--fedora-mirror`, `QUS_FEDORA_MIRROR`).
    pub fedora_mirror: Option<String>,
    /// The cache folder (`--cache`, `QUS_CACHE`, `~/.cache/qus`).
    pub cache: PathBuf,
}

impl SourceOptions {
    /// Where the packages of `distro` come from: the folder when one is given, else the
    /// distro's mirror. Asked only when a package must be fetched, so an up-to-date build
    /// needs no mirror at all.
    pub fn origin(&self, distro: Distro) -> anyhow::Result<Origin> {
        if let Some(dir) = &self.packages_dir {
            if !dir.is_dir() {
                return Err(crate::exit::usage(format!(
                    "--debs {}: not a folder",
                    dir.display()
                )));
            }
            return Ok(Origin::local_dir(dir.clone()));
        }
        let url = match distro {
            Distro::Debian => self.debian_mirror()?,
            Distro::Fedora => self.fedora_mirror.as_deref().ok_or_else(|| {
                crate::exit::usage(
                    "no Fedora mirror configured: pass --fedora-mirror URL, set \
                     QUS_FEDORA_MIRROR, or give the packages with --debs DIR",
                )
            })?,
        };
        Ok(Origin::mirror(url)?)
    }

    /// The Debian mirror, or the one error that says every way to name it.
    pub fn debian_mirror(&self) -> anyhow::Result<&str> {
        self.debian_mirror.as_deref().ok_or_else(|| {
            crate::exit::usage(
                "no Debian mirror configured: pass --mirror URL, set QUS_MIRROR, or add a \
                 Debian archive to this machine's apt sources (the mirror root is the folder \
                 that holds dists/ and pool/); builds also take the packages with --debs DIR",
            )
        })
    }
}

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
}

/// What `qus release` attaches and signs besides the images.
#[derive(Debug, Clone)]
pub(crate) struct SupplyOptions {
    /// Sign every image and list with this key (`--sign-key`, QUS_SIGN_KEY).
    pub sign_key: Option<crate::attest::sign::Key>,
    /// The facts the provenance records.
    pub context: crate::attest::BuildContext,
}
