//! The labels every image carries, as one typed value: the plan writes them from it into the
//! image config, and readers (the daemon sink, `qus report`) find them by the same keys.

use crate::arch::Host;
use crate::plan::Kind;
use std::collections::BTreeMap;

/// The key of the digest of an image's inputs: equal inputs, equal image.
pub const INPUTS: &str = "qus.inputs";
/// The key of the QEMU package an image's emulators come from.
pub const QEMU_PACKAGE: &str = "qus.qemu.package";

/// What an image says about itself, before its digest of inputs is known.
#[derive(Debug, Clone)]
pub struct ImageLabels {
    /// The tag, without repository.
    pub tag: String,
    /// Which of the four kinds.
    pub kind: Kind,
    /// The host it runs on.
    pub host: Host,
    /// The source name (`d10.0`).
    pub source: String,
    /// The QEMU package name.
    pub qemu_package: String,
    /// The QEMU package's version.
    pub qemu_version: String,
    /// Every file of the QEMU package(s) of this host, comma-joined in pin order.
    pub qemu_files: Vec<String>,
    /// Their sha256s, in the same order.
    pub qemu_sha256: Vec<String>,
    /// The emulators the image holds.
    pub targets: Vec<String>,
    /// busybox's sha256, for every kind with the entrypoint (all but pkg).
    pub busybox_sha256: Option<String>,
}

impl ImageLabels {
    /// The image config's labels, without [`INPUTS`] (which is computed over them).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let host = self.host;
        let description = match self.kind {
            Kind::Entrypoint => "binfmt_misc registration entrypoint".to_string(),
            Kind::Emulators => format!("QEMU user-mode emulators for {host}"),
            Kind::Full | Kind::Single => format!(
                "QEMU user-mode emulators for {host} with a binfmt_misc registration entrypoint"
            ),
        };
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| m.insert(k.to_string(), v);
        put("org.opencontainers.image.title", "qus".into());
        put("org.opencontainers.image.description", description);
        put(
            "org.opencontainers.image.version",
            self.qemu_version.clone(),
        );
        put("org.opencontainers.image.licenses", "GPL-2.0-only".into());
        put("org.opencontainers.image.ref.name", self.tag.clone());
        put("qus.kind", self.kind.name().into());
        put("qus.host", host.name().into());
        put("qus.platform", host.platform().to_string());
        put("qus.source", self.source.clone());
        put(QEMU_PACKAGE, self.qemu_package.clone());
        put("qus.qemu.version", self.qemu_version.clone());
        put("qus.qemu.file", self.qemu_files.join(","));
        put("qus.qemu.sha256", self.qemu_sha256.join(","));
        put("qus.targets", self.targets.join(","));
        if let Some(sha) = &self.busybox_sha256 {
            put("qus.busybox.sha256", sha.clone());
        }
        m
    }
}
