//! The images of one (source, host): the register image, pkg, full and one per target, and
//! the QEMU packages they are made from.

use super::labels::{ImageLabels, INPUTS};
use super::{ImagePlan, Kind, LayerSpec, PackagePlan, Plan, Recipe, Role, Selection, Skip};
use crate::arch::{Host, Platform};
use crate::config::{Config, Distro, PackageFile, Source};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Adds to `out` the images and packages of `source` for `host`, or says why there are none.
pub(super) fn plan_host(
    config: &Config,
    source: &Source,
    host: Host,
    sel: &Selection,
    recipe: &Recipe,
    out: &mut Plan,
) {
    let Some(file) = source.files.get(&host) else {
        out.skipped.push(Skip {
            source: source.name.clone(),
            host,
            target: None,
            reason: format!(
                "{} has no {} package for {host}",
                source.name, source.package
            ),
        });
        return;
    };
    let targets = select_targets(source, host, file, sel, &mut out.skipped);
    let maker = ImageMaker {
        repo: sel.repo.as_deref().unwrap_or(&config.repo),
        recipe,
        source,
        host,
        file,
        // Always present when the host is: config validation guarantees a busybox pin per host.
        busybox_sha: config.busybox.files.get(&host).map(|f| f.sha256.clone()),
    };
    let register = maker.make(
        Kind::Entrypoint,
        Vec::new(),
        None,
        vec![LayerSpec::Entrypoint],
    );
    out.images.push(register.clone());
    if targets.is_empty() {
        out.skipped.push(Skip {
            source: source.name.clone(),
            host,
            target: None,
            reason: "none of the selected targets is shipped for this host: only the register \
                     image is built"
                .into(),
        });
        return;
    }
    out.packages
        .extend(qemu_packages(source, host, file, &targets));
    let emulators = targets
        .iter()
        .map(|t| LayerSpec::Emulator { target: t.clone() })
        .collect();
    let pkg = maker.make(Kind::Emulators, targets.clone(), None, emulators);
    // H-dV is the pkg image plus the entrypoint layer on top: the emulator layers are stored
    // once in the daemon and once in the registry for both tags.
    let full = maker.make(
        Kind::Full,
        targets.clone(),
        Some(&pkg),
        vec![LayerSpec::Entrypoint],
    );
    out.images.push(pkg);
    out.images.push(full);
    // H-dV-T is the register image plus one emulator layer: it inherits the entrypoint,
    // so its build is one COPY and one LABEL (every builder step costs a container).
    for t in &targets {
        let layer = LayerSpec::Emulator { target: t.clone() };
        let single = maker.make(Kind::Single, vec![t.clone()], Some(&register), vec![layer]);
        out.images.push(single);
    }
}

/// The selected targets `source` ships for `host`; each selected one it does not ship is a
/// skip.
fn select_targets(
    source: &Source,
    host: Host,
    file: &PackageFile,
    sel: &Selection,
    skipped: &mut Vec<Skip>,
) -> Vec<String> {
    let shipped = source.targets_for(host);
    let Some(wanted) = &sel.targets else {
        return shipped.to_vec();
    };
    for t in wanted.iter().filter(|t| !shipped.contains(t)) {
        skipped.push(Skip {
            source: source.name.clone(),
            host,
            target: Some(t.clone()),
            reason: format!(
                "{} {} for {} ({}) does not ship qemu-{t}",
                source.package,
                file.version,
                host,
                host.debian()
            ),
        });
    }
    wanted
        .iter()
        .filter(|t| shipped.contains(t))
        .cloned()
        .collect()
}

/// One package per file that ships a selected target (Fedora: one rpm per group).
fn qemu_packages(
    source: &Source,
    host: Host,
    file: &PackageFile,
    targets: &[String],
) -> Vec<PackagePlan> {
    file.all()
        .filter_map(|part| {
            let wanted: Vec<String> = source
                .targets_of(part)
                .iter()
                .filter(|t| targets.contains(t))
                .cloned()
                .collect();
            (!wanted.is_empty()).then(|| {
                let role = Role::Qemu {
                    source: source.name.clone(),
                };
                PackagePlan::pinned(role, source.distro, host, &source.package, part, wanted)
                    .signed_by(rpm_keyring(source))
            })
        })
        .collect()
}

/// The keyring a source's packages themselves must be signed by: Fedora's rpms carry
/// signatures, Debian's .debs do not (a Debian source's keyring is for its Release).
pub(super) fn rpm_keyring(source: &Source) -> Option<std::path::PathBuf> {
    match source.distro {
        Distro::Fedora => source.keyring.clone(),
        Distro::Debian => None,
    }
}

/// What every image of one (source, host) shares.
struct ImageMaker<'a> {
    repo: &'a str,
    recipe: &'a Recipe,
    source: &'a Source,
    host: Host,
    file: &'a PackageFile,
    busybox_sha: Option<String>,
}

impl ImageMaker<'_> {
    /// The tag of a `kind` image holding `targets`: `H-dV-register`, `H-dV-pkg`, `H-dV`,
    /// `H-dV-T`.
    fn tag(&self, kind: Kind, targets: &[String]) -> String {
        let suffix = match kind {
            Kind::Entrypoint => "register",
            Kind::Emulators => "pkg",
            Kind::Full => "",
            Kind::Single => targets.first().map_or("", String::as_str),
        };
        match suffix {
            "" => format!("{}-{}", self.host, self.source.name),
            s => format!("{}-{}-{s}", self.host, self.source.name),
        }
    }

    fn make(
        &self,
        kind: Kind,
        targets: Vec<String>,
        base: Option<&ImagePlan>,
        layers: Vec<LayerSpec>,
    ) -> ImagePlan {
        let (host, file) = (self.host, self.file);
        let tag = self.tag(kind, &targets);
        let mut labels = ImageLabels {
            tag: tag.clone(),
            kind,
            host,
            source: self.source.name.clone(),
            qemu_package: self.source.package.clone(),
            qemu_version: file.version.clone(),
            qemu_files: file.all().map(|p| p.file.clone()).collect(),
            qemu_sha256: file.all().map(|p| p.sha256.clone()).collect(),
            targets: targets.clone(),
            busybox_sha256: (kind != Kind::Emulators)
                .then(|| self.busybox_sha.clone().unwrap_or_default()),
        }
        .to_map();
        let inputs = inputs_digest(&InputsDoc {
            recipe: self.recipe,
            tag: &tag,
            platform: host.platform(),
            base: base.map(|b| b.inputs.as_str()),
            layers: &layers,
            labels: &labels,
        });
        labels.insert(INPUTS.into(), inputs.clone());
        ImagePlan {
            reference: format!("{}:{tag}", self.repo),
            tag,
            host,
            platform: host.platform(),
            kind,
            source: self.source.name.clone(),
            qemu_version: file.version.clone(),
            targets,
            base: base.map(|b| b.tag.clone()),
            sets_entrypoint: kind != Kind::Emulators
                && base.is_none_or(|b| b.kind == Kind::Emulators),
            layers,
            labels,
            inputs,
        }
    }
}

#[derive(Serialize)]
struct InputsDoc<'a> {
    recipe: &'a Recipe,
    tag: &'a str,
    platform: Platform,
    base: Option<&'a str>,
    layers: &'a [LayerSpec],
    labels: &'a BTreeMap<String, String>,
}

fn inputs_digest(doc: &InputsDoc<'_>) -> String {
    // serde_json of structs and BTreeMaps is deterministic: same inputs, same digest.
    let bytes = serde_json::to_vec(doc).unwrap_or_default();
    format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
}
