//! Build contexts: the Dockerfile (rendered from `Dockerfile.template`) plus one folder per
//! layer, written as a tar stream with fixed metadata.
//!
//! The Engine's classic builder turns `COPY <folder>/ /` into a layer whose content is the
//! folder's entries with their tar metadata. Writing every entry with one mtime, uid/gid 0,
//! fixed modes and sorted names makes that layer a pure function of its files: the same
//! emulator gives the same diffID on every cold build and in every image that copies it.

use crate::image::files::{Content, Entry};
use crate::plan::{ImagePlan, Kind, LayerSpec};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};

/// The template every Dockerfile is rendered from.
pub const TEMPLATE: &str = include_str!("../../Dockerfile.template");

/// The files of each layer, by its folder in the build context (`register`, `qemu-aarch64`).
pub type ContextFolders = BTreeMap<String, Vec<Entry>>;

/// A build context that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The plan names a layer nobody provided files for.
    #[error("image {tag}: no files for layer '{layer}'")]
    MissingLayer {
        /// Image tag.
        tag: String,
        /// Layer folder.
        layer: String,
    },
    /// A path that would escape its folder or is not a plain relative path.
    #[error("layer '{layer}': path '{path}' is not a plain relative path")]
    BadPath {
        /// Layer folder.
        layer: String,
        /// The path.
        path: String,
    },
    /// Reading an input file or writing the stream failed.
    #[error("build context for {tag}: {source}")]
    Io {
        /// Image tag.
        tag: String,
        /// Why.
        source: io::Error,
    },
    /// A `{{name}}` in the template that qus does not fill in.
    #[error("Dockerfile.template: unknown placeholder '{{{{{0}}}}}'")]
    Template(String),
}

/// Renders the Dockerfile of `image`. `from` is the reference of its base, or `scratch`.
pub fn dockerfile(
    image: &ImagePlan,
    from: &str,
    entrypoint: &[&str],
) -> Result<String, ContextError> {
    let copy = image
        .layers
        .iter()
        .map(|l| format!("COPY {}/ /", l.dir_name()))
        .collect::<Vec<_>>()
        .join("\n");
    let entrypoint = if image.kind == Kind::Emulators {
        "# no entrypoint: this image only carries the emulators".to_string()
    } else if !image.sets_entrypoint {
        "# entrypoint inherited from the base image".to_string()
    } else {
        // The entrypoint's `--version` reports the QEMU version from the environment, so
        // the entrypoint layer stays the same for every QEMU version.
        format!(
            "ENV QUS_QEMU_VERSION={}\nENTRYPOINT [{}]",
            json_string(&image.qemu_version),
            entrypoint
                .iter()
                .map(|a| json_string(a))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let labels = image
        .labels
        .iter()
        .map(|(k, v)| format!("{}={}", json_string(k), json_string(v)))
        .collect::<Vec<_>>()
        .join(" \\\n      ");
    let platform = image.platform.to_string();
    let mut vars = BTreeMap::new();
    vars.insert("tag", image.tag.as_str());
    vars.insert("kind", image.kind.name());
    vars.insert("platform", platform.as_str());
    vars.insert("from", from);
    vars.insert("copy", copy.as_str());
    vars.insert("entrypoint", entrypoint.as_str());
    vars.insert("labels", labels.as_str());
    render(TEMPLATE, &vars)
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Replaces every `{{name}}` in `template`; an unknown name is an error, not an empty string.
pub fn render(template: &str, vars: &BTreeMap<&str, &str>) -> Result<String, ContextError> {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| ContextError::Template(after.chars().take(20).collect()))?;
        let name = after[..end].trim();
        let value = vars
            .get(name)
            .ok_or_else(|| ContextError::Template(name.to_string()))?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Writes the build context of `image` as a tar to `w`: `Dockerfile`, then each layer's
/// folder. Every entry has mtime `mtime`, uid/gid 0 and names in sorted order.
pub fn write_context<W: Write>(
    w: W,
    image: &ImagePlan,
    dockerfile: &str,
    files: &ContextFolders,
    mtime: u64,
) -> Result<W, ContextError> {
    let io_err = |source| ContextError::Io {
        tag: image.tag.clone(),
        source,
    };
    let mut tar = tar::Builder::new(w);
    tar.mode(tar::HeaderMode::Deterministic);
    append_bytes(&mut tar, "Dockerfile", 0o644, dockerfile.as_bytes(), mtime).map_err(io_err)?;
    let mut layers: Vec<&LayerSpec> = image.layers.iter().collect();
    layers.sort_by_key(|l| l.dir_name());
    layers.dedup();
    for layer in layers {
        let dir = layer.dir_name();
        let entries = files.get(&dir).ok_or_else(|| ContextError::MissingLayer {
            tag: image.tag.clone(),
            layer: dir.clone(),
        })?;
        write_folder(&mut tar, &dir, entries, mtime).map_err(|e| match e {
            FolderError::BadPath(path) => ContextError::BadPath {
                layer: dir.clone(),
                path,
            },
            FolderError::Io(source) => io_err(source),
        })?;
    }
    tar.into_inner().map_err(io_err)
}

/// A layer's folder that cannot be written (`write_context` names the image and folder).
enum FolderError {
    BadPath(String),
    Io(io::Error),
}

impl From<io::Error> for FolderError {
    fn from(e: io::Error) -> Self {
        FolderError::Io(e)
    }
}

fn write_folder<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &str,
    entries: &[Entry],
    mtime: u64,
) -> Result<(), FolderError> {
    // Folders are derived from the file paths so that every parent exists with the same
    // fixed metadata; otherwise the builder would create them with the build time.
    let mut dirs = std::collections::BTreeSet::new();
    dirs.insert(String::new());
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path().cmp(b.path()));
    for e in &sorted {
        let p = e.path();
        if !crate::config::validate::is_plain_relative(p) {
            return Err(FolderError::BadPath(p.to_string()));
        }
        let mut parent = String::new();
        let comps: Vec<&str> = p.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(c);
            dirs.insert(parent.clone());
        }
    }
    // Directories first (sorted), then entries (sorted): parents always precede children.
    for d in &dirs {
        let name = if d.is_empty() {
            format!("{dir}/")
        } else {
            format!("{dir}/{d}/")
        };
        let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
        tar.append_data(&mut h, name, io::empty())?;
    }
    for e in sorted {
        let name = format!("{dir}/{}", e.path());
        match e {
            Entry::Symlink { target, .. } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0, mtime);
                tar.append_link(&mut h, name, target)?;
            }
            Entry::File { mode, content, .. } => match content {
                Content::Bytes(b) => append_bytes(tar, &name, *mode, b, mtime)?,
                Content::File { path: p, size, .. } => {
                    let f = std::fs::File::open(p)
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
                    let len = *size;
                    let mut h = header(tar::EntryType::Regular, *mode, len, mtime);
                    // `take` guards against a file that grows while it is being sent.
                    tar.append_data(&mut h, name, f.take(len))?;
                }
            },
        }
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    mode: u32,
    bytes: &[u8],
    mtime: u64,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, mode, bytes.len() as u64, mtime);
    tar.append_data(&mut h, name, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::plan::{plan, Recipe, Selection};

    fn image(tag: &str) -> ImagePlan {
        let c = Config::load(None).unwrap();
        let sel = Selection {
            hosts: Some(vec![crate::arch::Host::Arm64v8]),
            targets: Some(vec!["aarch64".into(), "riscv64".into()]),
            sources: Some(vec!["d10.0".into()]),
            ..Selection::default()
        };
        let r = Recipe {
            epoch: 0,
            qus_version: "t".into(),
            template_sha256: "t".into(),
            entrypoint_sha256: "t".into(),
        };
        plan(&c, &sel, &r).unwrap().image(tag).unwrap().clone()
    }

    #[test]
    fn dockerfile_for_single_target_image() {
        let img = image("arm64v8-d10.0-riscv64");
        let ep = ["/qus/busybox", "sh", "/qus/register"];
        let d = dockerfile(&img, "qus:arm64v8-d10.0-register", &ep).unwrap();
        assert!(
            d.contains("\nFROM qus:arm64v8-d10.0-register\nCOPY qemu-riscv64/ /\n"),
            "{d}"
        );
        assert!(!d.contains("ENTRYPOINT"), "inherited: {d}");
        assert!(d.contains("\"qus.host\"=\"arm64v8\""), "{d}");
        assert!(!d.contains("{{"), "{d}");
        let d = dockerfile(&image("arm64v8-d10.0-register"), "scratch", &ep).unwrap();
        assert!(d.contains("\nFROM scratch\nCOPY register/ /\n"), "{d}");
        assert!(
            d.contains("ENTRYPOINT [\"/qus/busybox\", \"sh\", \"/qus/register\"]"),
            "{d}"
        );
        assert!(d.contains("ENV QUS_QEMU_VERSION="), "{d}");
    }

    #[test]
    fn pkg_has_no_entrypoint_and_full_builds_on_pkg() {
        let d = dockerfile(&image("arm64v8-d10.0-pkg"), "scratch", &["x"]).unwrap();
        assert!(!d.contains("ENTRYPOINT"), "{d}");
        assert!(
            d.contains("COPY qemu-aarch64/ /\nCOPY qemu-riscv64/ /"),
            "{d}"
        );
        let d = dockerfile(&image("arm64v8-d10.0"), "qus:arm64v8-d10.0-pkg", &["x"]).unwrap();
        assert!(
            d.contains("FROM qus:arm64v8-d10.0-pkg\nCOPY register/ /\n"),
            "{d}"
        );
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let vars = BTreeMap::new();
        let e = render("FROM {{ nope }}", &vars).unwrap_err().to_string();
        assert!(e.contains("{{nope}}"), "{e}");
    }

    fn entries(tar_bytes: &[u8]) -> Vec<(String, u64, u32, u64, u64)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mtime().unwrap(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn context_is_deterministic_sorted_and_fixed() {
        // Two layers of two kinds in one context.
        let mut img = image("arm64v8-d10.0-riscv64");
        img.layers.insert(0, LayerSpec::Entrypoint);
        let dir = tempfile::tempdir().unwrap();
        let emu = dir.path().join("emu");
        std::fs::write(&emu, b"\x7fELF fake").unwrap();
        let mut files = ContextFolders::new();
        files.insert(
            "register".into(),
            vec![
                Entry::File {
                    path: "qus/register".into(),
                    mode: 0o755,
                    content: Content::Bytes(b"#!/bin/sh\n".to_vec()),
                },
                Entry::Symlink {
                    path: "qus/bin".into(),
                    target: "../usr/bin".into(),
                },
            ],
        );
        files.insert(
            "qemu-riscv64".into(),
            vec![Entry::File {
                path: "usr/bin/qemu-riscv64-static".into(),
                mode: 0o755,
                content: Content::File {
                    path: emu.clone(),
                    size: 9,
                    sha256: String::new(),
                },
            }],
        );
        let a = write_context(Vec::new(), &img, "FROM scratch\n", &files, 1234).unwrap();
        let b = write_context(Vec::new(), &img, "FROM scratch\n", &files, 1234).unwrap();
        assert_eq!(a, b);
        let e = entries(&a);
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "Dockerfile",
                "qemu-riscv64/",
                "qemu-riscv64/usr/",
                "qemu-riscv64/usr/bin/",
                "qemu-riscv64/usr/bin/qemu-riscv64-static",
                "register/",
                "register/qus/",
                "register/qus/bin",
                "register/qus/register",
            ]
        );
        assert!(
            e.iter().all(|x| x.1 == 1234 && x.3 == 0 && x.4 == 0),
            "{e:?}"
        );
    }

    #[test]
    fn missing_layer_and_escaping_path() {
        let mut img = image("arm64v8-d10.0-riscv64");
        img.layers.insert(0, LayerSpec::Entrypoint);
        let e = write_context(Vec::new(), &img, "", &ContextFolders::new(), 0).unwrap_err();
        assert!(matches!(e, ContextError::MissingLayer { .. }), "{e}");
        let mut files = ContextFolders::new();
        for l in ["register", "qemu-riscv64"] {
            files.insert(
                l.into(),
                vec![Entry::Symlink {
                    path: "../../etc/x".into(),
                    target: "y".into(),
                }],
            );
        }
        let e = write_context(Vec::new(), &img, "", &files, 0).unwrap_err();
        assert!(matches!(e, ContextError::BadPath { .. }), "{e}");
    }
}
