//! The plan: every image and manifest list a matrix implies. Pure, no I/O.
//!
//! Everything that later stages do is decided here, once: which images exist, what tags they
//! get, which layers they are made of, what labels they carry and which digest of inputs
//! identifies them. `qus plan --json` prints this value; `build`, `release` and `assets`
//! consume it and never re-decide it. Keeping it pure means the whole tag scheme is tested
//! with plain values.

mod images;
pub mod labels;
mod lists;
pub(crate) mod narrow;
mod newest;

pub use newest::{newest_among, newest_sources, NEWEST};

use crate::arch::{Host, Platform};
use crate::config::validate::validate_targets;
use crate::config::{Config, Distro, PackageFile, Source};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the user asked for on the command line; `None` means "everything the config has".
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Image repository (`--repo`), instead of the config's.
    pub repo: Option<String>,
    /// Hosts (`--hosts`).
    pub hosts: Option<Vec<Host>>,
    /// QEMU targets (`--targets`).
    pub targets: Option<Vec<String>>,
    /// Source names (`--sources d10.0`).
    pub sources: Option<Vec<String>>,
}

/// Facts about qus itself that go into every image's digest of inputs.
#[derive(Debug, Clone, Serialize)]
pub struct Recipe {
    /// qus's version.
    pub qus_version: String,
    /// sha256 of the Dockerfile template.
    pub template_sha256: String,
    /// sha256 of the entrypoint files (script and generated table).
    pub entrypoint_sha256: String,
    /// mtime of every file in every layer (SOURCE_DATE_EPOCH, or 0).
    pub epoch: u64,
}

/// The four image kinds of the tag scheme, named by what they hold; the tags and JSON keep
/// the scheme's names (`register`, `pkg`, `full`, `single`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `H-dV-register`: the entrypoint only.
    #[serde(rename = "register")]
    Entrypoint,
    /// `H-dV-pkg`: every emulator, no entrypoint.
    #[serde(rename = "pkg")]
    Emulators,
    /// `H-dV`: entrypoint and every emulator.
    Full,
    /// `H-dV-T`: entrypoint and one emulator.
    Single,
}

/// One layer of an image, as planned: what it holds (computed, it is an `image::Layer`);
/// each is one `COPY` of one context folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "layer", rename_all = "lowercase")]
pub enum LayerSpec {
    /// busybox, the entrypoint script and its table.
    #[serde(rename = "register")]
    Entrypoint,
    /// `/usr/bin/qemu-T-static`.
    Emulator {
        /// The QEMU target.
        target: String,
    },
}

impl Kind {
    /// The lower-case name labels, tables and JSON use (serde's too).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Entrypoint => "register",
            Kind::Emulators => "pkg",
            Kind::Full => "full",
            Kind::Single => "single",
        }
    }
}

impl LayerSpec {
    /// The folder name of this layer in a build context.
    pub fn dir_name(&self) -> String {
        match self {
            LayerSpec::Entrypoint => "register".into(),
            LayerSpec::Emulator { target } => format!("qemu-{target}"),
        }
    }
}

/// One image to build.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePlan {
    /// The tag, without repository: `arm64v8-d10.0-aarch64`.
    pub tag: String,
    /// `repo:tag`.
    pub reference: String,
    /// The host it runs on.
    pub host: Host,
    /// The host's OCI platform.
    pub platform: Platform,
    /// Which of the four kinds.
    pub kind: Kind,
    /// The source name (`d10.0`).
    pub source: String,
    /// The Debian (or Fedora) version of the QEMU package its emulators come from.
    pub qemu_version: String,
    /// The emulators it contains.
    pub targets: Vec<String>,
    /// An image of this plan it is built on (`FROM`), whose layers it shares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// Layers added on top of `base` (or of scratch), in order.
    pub layers: Vec<LayerSpec>,
    /// Whether its Dockerfile sets the entrypoint (not inherited from `base`, and not pkg).
    pub sets_entrypoint: bool,
    /// Labels written into the image config.
    pub labels: BTreeMap<String, String>,
    /// sha256 over everything that decides the image's content.
    pub inputs: String,
}

/// One entry of a manifest list.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestEntry {
    /// The per-host tag it points at.
    pub tag: String,
    /// Host.
    pub host: Host,
    /// Platform written into the list.
    pub platform: Platform,
}

/// One manifest list to publish.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestPlan {
    /// Tag: `d10.0-aarch64`, `latest` …
    pub tag: String,
    /// `repo:tag`.
    pub reference: String,
    /// Source name.
    pub source: String,
    /// Kind of the images it lists.
    pub kind: Kind,
    /// The target, for single-target lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Per-host images.
    pub entries: Vec<ManifestEntry>,
}

/// What a package is used for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Role {
    /// QEMU emulators of a source.
    Qemu {
        /// Source name.
        source: String,
    },
    /// The entrypoint's shell.
    Busybox,
    /// A static guest program `qus test` runs under the emulators of Debian arch `arch`
    /// (`host` is then the machine that runs the test).
    Guest {
        /// Debian architecture of the program.
        arch: String,
    },
}

/// A package to fetch, verify and extract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackagePlan {
    /// What it is for.
    #[serde(flatten)]
    pub role: Role,
    /// Where it comes from (which mirror).
    pub distro: Distro,
    /// The host it is for.
    pub host: Host,
    /// Debian package name.
    pub package: String,
    /// Pinned version.
    pub version: String,
    /// Path below the mirror root.
    pub file: String,
    /// Pinned sha256.
    pub sha256: String,
    /// Pinned size, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Emulators to extract (empty for busybox).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Fedora: the keyring whose key must have signed the rpm's header (the source's
    /// `keyring:`). Debian packages have none: their keyring vouches for the Release that
    /// `qus lock` pinned them from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyring: Option<std::path::PathBuf>,
}

impl PackagePlan {
    /// The package pinned by `file`, for `host`, extracting `targets` (none for busybox
    /// and guest programs).
    pub fn pinned(
        role: Role,
        distro: Distro,
        host: Host,
        package: &str,
        file: &PackageFile,
        targets: Vec<String>,
    ) -> PackagePlan {
        PackagePlan {
            role,
            distro,
            host,
            package: package.to_string(),
            version: file.version.clone(),
            file: file.file.clone(),
            sha256: file.sha256.clone(),
            size: file.size,
            targets,
            keyring: None,
        }
    }

    /// The same package, whose signature must be by a key of `keyring` (Fedora's rpms).
    pub fn signed_by(self, keyring: Option<std::path::PathBuf>) -> PackagePlan {
        PackagePlan { keyring, ..self }
    }
}

/// A combination the selection asked for that the pinned packages cannot give.
#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    /// Source name.
    pub source: String,
    /// Host.
    pub host: Host,
    /// Target, when only one target is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Skip {
    /// `d10.0 arm32v7 aarch64: <reason>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.source, self.host)?;
        if let Some(t) = &self.target {
            write!(f, " {t}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Image repository.
    pub repo: String,
    /// The default source (preferred for the unversioned tags on a tie of series).
    pub default: String,
    /// mtime of every file in every layer and asset (from the recipe).
    pub epoch: u64,
    /// Images in build order: a base always comes before the images built on it.
    pub images: Vec<ImagePlan>,
    /// Manifest lists.
    pub manifests: Vec<ManifestPlan>,
    /// Packages the images are made from.
    pub packages: Vec<PackagePlan>,
    /// What was asked for but does not exist.
    pub skipped: Vec<Skip>,
    /// What the plan leaves out on purpose, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A selection that cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--sources` names a source the config does not have.
    #[error("unknown source '{name}': the config has {known}")]
    UnknownSource {
        /// What was asked.
        name: String,
        /// What exists.
        known: String,
    },
    /// A host is pinned in none of the selected sources.
    #[error("host {host} has no package in source(s) {sources}: {hint}")]
    HostNotPinned {
        /// The host.
        host: Host,
        /// The selected sources.
        sources: String,
        /// Why, as far as the config tells, and what to do.
        hint: String,
    },
    /// A target is not a QEMU target, or is listed twice.
    #[error("--targets: {0}")]
    BadTarget(String),
    /// A target no selected package ships.
    #[error("target '{target}' is not shipped by any selected package ({detail})")]
    TargetNotShipped {
        /// The target.
        target: String,
        /// Which packages were looked at.
        detail: String,
    },
    /// The selection is empty.
    #[error("nothing to do: {0}")]
    Empty(String),
}

impl Plan {
    /// The packages `images` are made from (see [`needs`]).
    pub fn packages_for(&self, images: &[&ImagePlan]) -> Vec<&PackagePlan> {
        self.packages
            .iter()
            .filter(|p| images.iter().any(|i| needs(i, p)))
            .collect()
    }

    /// What the plan leaves out and why, a line each (`skipping …`, `note: …`).
    pub fn omissions(&self) -> Vec<String> {
        let skipped = self.skipped.iter().map(|s| format!("skipping {s}"));
        skipped
            .chain(self.notes.iter().map(|n| format!("note: {n}")))
            .collect()
    }

    /// Every layer of `image`, base first: its base's, then its own.
    pub fn stack<'a>(&'a self, image: &'a ImagePlan) -> Vec<&'a LayerSpec> {
        let mut out = match image.base.as_deref().and_then(|b| self.image(b)) {
            Some(base) => self.stack(base),
            None => Vec::new(),
        };
        out.extend(image.layers.iter());
        out
    }

    /// The image with tag `tag`.
    pub fn image(&self, tag: &str) -> Option<&ImagePlan> {
        self.images.iter().find(|i| i.tag == tag)
    }

    /// Hosts that have at least one image, in table order.
    pub fn hosts(&self) -> Vec<Host> {
        let mut v: Vec<Host> = self.images.iter().map(|i| i.host).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Whether a file of `package` is in `image`: busybox when the image has the register
/// layer anywhere in its stack (all but pkg), the QEMU package of the image's source and
/// host when it ships one of the image's emulators (Fedora: one rpm per target group).
pub fn needs(image: &ImagePlan, package: &PackagePlan) -> bool {
    image.host == package.host
        && match &package.role {
            Role::Busybox => image.kind != Kind::Emulators,
            Role::Qemu { source } => {
                &image.source == source && package.targets.iter().any(|t| image.targets.contains(t))
            }
            Role::Guest { .. } => false,
        }
}

/// Computes the plan for `config` narrowed by `sel`.
pub fn plan(config: &Config, sel: &Selection, recipe: &Recipe) -> Result<Plan, PlanError> {
    let repo = sel.repo.as_deref().unwrap_or(&config.repo);
    let sources: Vec<&Source> = match &sel.sources {
        None => config.sources.iter().collect(),
        Some(names) => names
            .iter()
            .map(|n| {
                config.source(n).ok_or_else(|| PlanError::UnknownSource {
                    name: n.clone(),
                    known: config
                        .sources
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if sources.is_empty() {
        return Err(PlanError::Empty("no source selected".into()));
    }
    let hosts = sel.hosts.clone().unwrap_or_else(|| config.hosts.clone());
    if hosts.is_empty() {
        return Err(PlanError::Empty("no host selected".into()));
    }
    let source_names = || {
        sources
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for h in &hosts {
        if !sources.iter().any(|s| s.files.contains_key(h)) {
            return Err(PlanError::HostNotPinned {
                host: *h,
                sources: source_names(),
                hint: unpinned_hint(config, &sources, *h),
            });
        }
    }
    if let Some(t) = &sel.targets {
        validate_targets(t).map_err(PlanError::BadTarget)?;
        if t.is_empty() {
            return Err(PlanError::Empty("--targets is empty".into()));
        }
        for target in t {
            let shipped = sources.iter().any(|s| {
                hosts
                    .iter()
                    .any(|h| s.files.contains_key(h) && s.targets_for(*h).contains(target))
            });
            if !shipped {
                return Err(PlanError::TargetNotShipped {
                    target: target.clone(),
                    detail: format!("sources {}, hosts {}", source_names(), join_hosts(&hosts)),
                });
            }
        }
    }

    let mut out = Plan {
        repo: repo.to_string(),
        default: config.default.clone(),
        epoch: recipe.epoch,
        images: Vec::new(),
        manifests: Vec::new(),
        packages: Vec::new(),
        skipped: Vec::new(),
        notes: Vec::new(),
    };
    for source in &sources {
        for &host in &hosts {
            images::plan_host(config, source, host, sel, recipe, &mut out);
        }
    }
    out.manifests = lists::manifests(&mut out, &sources, &newest_sources(config));
    for host in out.hosts() {
        if let Some(f) = config.busybox.files.get(&host) {
            let package = &config.busybox.package;
            let busybox =
                PackagePlan::pinned(Role::Busybox, Distro::Debian, host, package, f, vec![]);
            out.packages.push(busybox);
        }
    }
    Ok(out)
}

fn join_hosts(hosts: &[Host]) -> String {
    hosts
        .iter()
        .map(|h| h.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The package that gives `machine` the emulators of `targets`: its newest pinned source
/// that ships them all (what `qus test` runs foreign-host emulators under).
pub fn machine_package(config: &Config, machine: Host, targets: &[String]) -> Option<PackagePlan> {
    let newest = newest_sources(config);
    let mut sources: Vec<&Source> = config
        .sources
        .iter()
        .filter(|s| s.files.contains_key(&machine))
        .filter(|s| targets.iter().all(|t| s.targets_for(machine).contains(t)))
        .collect();
    // The host's own newest source first, then the rest in config order.
    sources.sort_by_key(|s| newest.get(&machine) != Some(&s.name));
    let s = sources.first()?;
    let f = &s.files[&machine];
    let role = Role::Qemu {
        source: s.name.clone(),
    };
    let package = PackagePlan::pinned(role, s.distro, machine, &s.package, f, targets.to_vec());
    Some(package.signed_by(images::rpm_keyring(s)))
}

/// The guest programs for the Debian architectures `arches` the config pins, fetched for
/// `machine` to run.
pub fn guest_packages(config: &Config, machine: Host, arches: &[&str]) -> Vec<PackagePlan> {
    arches
        .iter()
        .filter_map(|arch| {
            let g = config.guest(arch)?;
            let role = Role::Guest {
                arch: arch.to_string(),
            };
            let package =
                PackagePlan::pinned(role, Distro::Debian, machine, &g.package, &g.file, vec![]);
            Some(package)
        })
        .collect()
}

/// What to do about host `h`, which none of `selected` pins: the case the config shows.
fn unpinned_hint(config: &Config, selected: &[&Source], h: Host) -> String {
    let pinning: Vec<&str> = config
        .sources
        .iter()
        .filter(|s| s.files.contains_key(&h))
        .map(|s| s.name.as_str())
        .collect();
    let elsewhere = match pinning.as_slice() {
        [] => String::new(),
        names => format!("; sources that pin it: {} (--sources)", names.join(", ")),
    };
    if !config.hosts.contains(&h) {
        let hosts: Vec<&str> = config.hosts.iter().map(|h| h.name()).collect();
        return format!("it is not one of the config's hosts ({})", hosts.join(", "));
    }
    let newer = |s: &&Source| newest::qemu_major(&s.version).is_some_and(|m| m >= 11);
    if h.bits() == 32 && selected.iter().all(newer) {
        return format!(
            "QEMU 11 dropped 32-bit hosts, so no QEMU 11 package exists for {h}{elsewhere}"
        );
    }
    format!(
        "the suite may have no package for {h} (Debian {} is not in every suite), or it is \
         not pinned yet (qus lock, or the config's files){elsewhere}",
        h.debian()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::parse_hosts;

    fn recipe() -> Recipe {
        Recipe {
            qus_version: "0.0.0-test".into(),
            template_sha256: "t".into(),
            entrypoint_sha256: "e".into(),
            epoch: 0,
        }
    }

    fn sel(hosts: &str, targets: &str) -> Selection {
        Selection {
            hosts: Some(parse_hosts(hosts).unwrap()),
            targets: Some(targets.split(',').map(String::from).collect()),
            sources: Some(vec!["d10.0".into()]),
            ..Selection::default()
        }
    }

    fn cfg() -> Config {
        Config::load(None).unwrap()
    }

    #[test]
    fn issue_example_tags_and_platforms() {
        let p = plan(
            &cfg(),
            &sel("amd64,arm64v8,arm32v7", "aarch64,riscv64"),
            &recipe(),
        )
        .unwrap();
        let tags: Vec<&str> = p.images.iter().map(|i| i.tag.as_str()).collect();
        assert_eq!(
            tags,
            [
                "amd64-d10.0-register",
                "amd64-d10.0-pkg",
                "amd64-d10.0",
                "amd64-d10.0-aarch64",
                "amd64-d10.0-riscv64",
                "arm64v8-d10.0-register",
                "arm64v8-d10.0-pkg",
                "arm64v8-d10.0",
                "arm64v8-d10.0-aarch64",
                "arm64v8-d10.0-riscv64",
                "arm32v7-d10.0-register",
            ]
        );
        let img = p.image("arm64v8-d10.0-riscv64").unwrap();
        assert_eq!(img.platform.to_string(), "linux/arm64/v8");
        assert_eq!(img.reference, "qus:arm64v8-d10.0-riscv64");
        assert_eq!(
            img.layers,
            [LayerSpec::Emulator {
                target: "riscv64".into()
            }]
        );
        assert_eq!(img.base.as_deref(), Some("arm64v8-d10.0-register"));
        assert!(!img.sets_entrypoint, "inherited from the register image");
        let full = p.image("amd64-d10.0").unwrap();
        assert_eq!(full.base.as_deref(), Some("amd64-d10.0-pkg"));
        assert_eq!(full.layers, [LayerSpec::Entrypoint]);
        // armhf's 10.0 package has no 64-bit guests: noted, not an error.
        assert_eq!(
            p.skipped.iter().filter(|s| s.host == Host::Arm32v7).count(),
            3
        );
    }

    #[test]
    fn packages_to_fetch() {
        let p = plan(&cfg(), &sel("amd64,arm32v7", "aarch64"), &recipe()).unwrap();
        let q: Vec<(String, Host, Vec<String>)> = p
            .packages
            .iter()
            .map(|k| (k.package.clone(), k.host, k.targets.clone()))
            .collect();
        // armhf ships no aarch64: its qemu package is not fetched, its busybox is.
        assert_eq!(
            q,
            [
                (
                    "qemu-user".to_string(),
                    Host::Amd64,
                    vec!["aarch64".to_string()]
                ),
                ("busybox-static".to_string(), Host::Amd64, vec![]),
                ("busybox-static".to_string(), Host::Arm32v7, vec![]),
            ]
        );
    }

    #[test]
    fn manifest_lists_per_source_and_the_newest_per_host() {
        let mut s = sel("amd64,arm64v8,arm32v7", "aarch64,arm");
        s.sources = Some(vec!["d11.1".into(), "d10.0".into()]);
        let p = plan(&cfg(), &s, &recipe()).unwrap();
        let tags: Vec<&str> = p.manifests.iter().map(|m| m.tag.as_str()).collect();
        assert_eq!(
            tags,
            [
                "d11.1-register",
                "d11.1-pkg",
                "d11.1",
                "d11.1-aarch64",
                "d11.1-arm",
                "d10.0-register",
                "d10.0-pkg",
                "d10.0",
                "d10.0-aarch64",
                "d10.0-arm",
                "register",
                "pkg",
                "latest",
                "aarch64",
                "arm",
            ]
        );
        let list = |tag: &str| -> Vec<String> {
            p.manifests
                .iter()
                .find(|m| m.tag == tag)
                .unwrap()
                .entries
                .iter()
                .map(|e| e.tag.clone())
                .collect()
        };
        // QEMU 11 has no 32-bit hosts: arm32v7 keeps 10.0 under the unversioned tags.
        assert_eq!(
            list("latest"),
            ["amd64-d11.1", "arm64v8-d11.1", "arm32v7-d10.0"]
        );
        assert_eq!(
            list("arm"),
            ["amd64-d11.1-arm", "arm64v8-d11.1-arm", "arm32v7-d10.0-arm"]
        );
        // armhf's 10.0 has no aarch64 emulator: no entry rather than an older one.
        assert_eq!(
            list("aarch64"),
            ["amd64-d11.1-aarch64", "arm64v8-d11.1-aarch64"]
        );
        let reg = p.manifests.iter().find(|m| m.tag == "register").unwrap();
        let plats: Vec<String> = reg.entries.iter().map(|e| e.platform.to_string()).collect();
        assert_eq!(plats, ["linux/amd64", "linux/arm64/v8", "linux/arm/v7"]);
        assert!(p.notes.is_empty(), "{:?}", p.notes);
    }

    #[test]
    fn leaving_out_a_hosts_newest_source_plans_no_unversioned_tags() {
        for only in ["d7.2", "d10.0"] {
            let mut s = sel("amd64", "aarch64");
            s.sources = Some(vec![only.into()]);
            let p = plan(&cfg(), &s, &recipe()).unwrap();
            assert!(
                p.manifests.iter().all(|m| m.tag.starts_with(only)),
                "{only}"
            );
            assert!(p.notes[0].contains("amd64 (d11.1)"), "{:?}", p.notes);
        }
        // armhf's newest is 10.0: selecting it alone keeps its unversioned tags.
        let mut s = sel("arm32v7", "arm");
        s.sources = Some(vec!["d10.0".into()]);
        let p = plan(&cfg(), &s, &recipe()).unwrap();
        assert!(p.manifests.iter().any(|m| m.tag == "latest"));
    }

    #[test]
    fn whole_default_matrix() {
        let p = plan(&cfg(), &Selection::default(), &recipe()).unwrap();
        // Nine hosts; QEMU 11.1 on the six 64-bit ones; `latest` names every host.
        assert_eq!(p.hosts().len(), 9);
        let d11: Vec<Host> = p
            .images
            .iter()
            .filter(|i| i.source == "d11.1" && i.kind == Kind::Entrypoint)
            .map(|i| i.host)
            .collect();
        assert_eq!(
            d11,
            [
                Host::Amd64,
                Host::Arm64v8,
                Host::Ppc64le,
                Host::S390x,
                Host::Riscv64,
                Host::Loong64
            ]
        );
        let latest = p.manifests.iter().find(|m| m.tag == "latest").unwrap();
        assert_eq!(latest.entries.len(), 9);
        assert!(p.image("loong64-d11.1-x86_64").is_some());
        // riscv64 has no bookworm package.
        assert!(p
            .skipped
            .iter()
            .any(|s| s.host == Host::Riscv64 && s.source == "d7.2"));
        assert!(p.image("riscv64-d10.0-x86_64").is_some());
        assert!(p.image("i386-d10.0-aarch64").is_none());
        assert!(p.image("i386-d7.2-aarch64").is_some());
        // Every base is planned before the image built on it.
        for (i, img) in p.images.iter().enumerate() {
            if let Some(b) = &img.base {
                assert!(
                    p.images[..i].iter().any(|x| &x.tag == b),
                    "{} before {b}",
                    img.tag
                );
            }
        }
        let mut tags: Vec<&str> = p.images.iter().map(|i| i.tag.as_str()).collect();
        let n = tags.len();
        tags.sort();
        tags.dedup();
        assert_eq!(tags.len(), n, "tags are unique");
    }

    #[test]
    fn inputs_change_with_pins_and_recipe_only() {
        let a = plan(&cfg(), &sel("amd64", "aarch64"), &recipe()).unwrap();
        let b = plan(&cfg(), &sel("amd64", "aarch64"), &recipe()).unwrap();
        assert_eq!(a.images[0].inputs, b.images[0].inputs);
        let mut r = recipe();
        r.entrypoint_sha256 = "changed".into();
        let c = plan(&cfg(), &sel("amd64", "aarch64"), &r).unwrap();
        assert_ne!(a.images[0].inputs, c.images[0].inputs);
        let text = crate::config::DEFAULT_LOCK.replace(
            "ca6ede739327a20ae5a3498230c8a3a9a072c586e131bc6bcc1201eb1725e336",
            &"0".repeat(64),
        );
        assert_ne!(text, crate::config::DEFAULT_LOCK, "d10.0 amd64's sum");
        let lock = crate::config::lockfile::LockFile::parse(&text, "x.lock").unwrap();
        let changed =
            Config::parse_with_lock(crate::config::DEFAULT_CONFIG, "x", Some((&lock, "x.lock")))
                .unwrap();
        let d = plan(&changed, &sel("amd64,arm64v8", "aarch64"), &recipe()).unwrap();
        let e = plan(&cfg(), &sel("amd64,arm64v8", "aarch64"), &recipe()).unwrap();
        assert_ne!(
            d.image("amd64-d10.0-aarch64").unwrap().inputs,
            e.image("amd64-d10.0-aarch64").unwrap().inputs
        );
        assert_eq!(
            d.image("arm64v8-d10.0").unwrap().inputs,
            e.image("arm64v8-d10.0").unwrap().inputs
        );
    }

    #[test]
    fn bad_selections() {
        let c = cfg();
        let r = recipe();
        let e = plan(&c, &sel("amd64", "vax"), &r).unwrap_err();
        assert!(matches!(e, PlanError::BadTarget(_)), "{e}");
        let e = plan(&c, &sel("arm32v7", "aarch64"), &r).unwrap_err();
        assert!(
            e.to_string()
                .contains("not shipped by any selected package"),
            "{e}"
        );
        let mut s = sel("riscv64", "aarch64");
        s.sources = Some(vec!["d7.2".into()]);
        let e = plan(&c, &s, &r).unwrap_err();
        assert!(matches!(e, PlanError::HostNotPinned { .. }), "{e}");
        assert!(
            e.to_string().contains("sources that pin it: d11.1, d10.0"),
            "{e}"
        );
        let mut s = sel("amd64", "aarch64");
        s.sources = Some(vec!["d1.0".into()]);
        assert!(plan(&c, &s, &r)
            .unwrap_err()
            .to_string()
            .contains("d10.0, d7.2"));
    }
}
