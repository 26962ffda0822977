//! The seam between package formats and everything that reads packages.
//!
//! A format ([`crate::deb`], [`crate::rpm`]) only has to do two things: say what the package
//! is ([`PackageInfo`]) and stream its payload entries in order ([`PackageFormat::entries`]).
//! The safety rules (paths, links, duplicates; see `tree`) are applied once, here, in
//! `walk`, so a new format cannot forget them.

use std::io::{self, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::tree::{RawNode, Tree, TreeError};

/// What a package says about itself (a .deb's control file, an rpm's header).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PackageInfo {
    /// `Package:`, e.g. `qemu-user` (an rpm's `NAME`).
    pub name: String,
    /// `Version:`, e.g. `1:10.0.13+ds-0+deb13u1` (an rpm's `[EPOCH:]VERSION-RELEASE`).
    pub version: String,
    /// `Architecture:` (Debian name), e.g. `arm64`, or `all` (an rpm's `ARCH` mapped to the
    /// Debian arch it runs on, see [`crate::rpm::ARCHES`]; the rpm name if unmapped).
    pub architecture: String,
    /// `Source:` as written, e.g. `qemu` or `qemu (1:7.2+dfsg-7+deb12u18)` for binNMUs (for
    /// an rpm, `name (version)` of its source rpm).
    pub source: Option<String>,
}

impl PackageInfo {
    /// The source package name (the binary name when there is no `Source:` field).
    pub fn source_name(&self) -> &str {
        match &self.source {
            Some(s) => s.split_whitespace().next().unwrap_or(&self.name),
            None => &self.name,
        }
    }

    /// The source version: the one in `Source: name (version)` if given, else `Version:`.
    /// This is the version QEMU's images are tagged with (a binNMU `+b3` is not part of it).
    pub fn source_version(&self) -> &str {
        self.source
            .as_deref()
            .and_then(|s| s.split_once('(')?.1.split_once(')'))
            .map(|(v, _)| v.trim())
            .unwrap_or(&self.version)
    }
}

/// The kind of a payload entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link; [`RawEntry::link`] holds its target.
    Symlink,
    /// A hard link; [`RawEntry::link`] holds the archive path of the earlier entry.
    Hardlink,
    /// Devices, fifos and other kinds qus never extracts.
    Other,
}

/// One payload entry as the format reads it, before any checks.
pub struct RawEntry<'a> {
    /// The path as stored (e.g. `./usr/bin/qemu-arm`).
    pub path: &'a str,
    /// What it is.
    pub kind: EntryKind,
    /// Link target for links.
    pub link: Option<&'a str>,
    /// Data size the archive declares.
    pub size: u64,
    /// The entry's data (empty for non-files).
    pub data: &'a mut dyn Read,
}

/// Whether a visitor wants more entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on to the next entry.
    Continue,
    /// Stop reading the archive now (everything wanted was seen).
    Stop,
}

/// A visitor's failure: reading the entry's data (which the format turns into a precise
/// "corrupt"/"too large" error, as only it knows the member and the caps), or anything else.
#[derive(Debug)]
pub enum VisitError {
    /// Reading [`RawEntry::data`] failed.
    Read(io::Error),
    /// Any other error, passed through as it is.
    Other(Error),
}

impl From<Error> for VisitError {
    fn from(e: Error) -> Self {
        VisitError::Other(e)
    }
}

/// A visitor over raw entries.
pub type Visitor<'v> = dyn FnMut(RawEntry<'_>) -> Result<Flow, VisitError> + 'v;

/// What a package format implements.
pub trait PackageFormat {
    /// The package file.
    fn path(&self) -> &Path;
    /// The package's own description of itself.
    fn info(&self) -> &PackageInfo;
    /// The package's arch as error messages show it (an rpm adds its own arch name).
    fn arch_label(&self) -> String {
        self.info().architecture.clone()
    }
    /// Streams the payload entries in archive order to `visit`, until the end or
    /// [`Flow::Stop`]. Can be called once.
    fn entries(&mut self, limits: &Limits, visit: &mut Visitor<'_>) -> Result<()>;
}

/// An entry that passed the tree rules.
pub(crate) struct Entry<'a> {
    /// Normalised path (`usr/bin/qemu-arm`).
    pub path: &'a str,
    pub kind: EntryKind,
    /// Data size the archive declares.
    pub size: u64,
    pub data: &'a mut dyn Read,
}

/// Streams a package's entries through the tree rules to `visit`; returns the tree seen so
/// far, for resolving links afterwards.
pub(crate) fn walk(
    pkg: &mut dyn PackageFormat,
    limits: &Limits,
    visit: &mut dyn FnMut(&Tree, Entry<'_>) -> Result<Flow, VisitError>,
) -> Result<Tree> {
    let pkg_path = pkg.path().to_path_buf();
    let mut tree = Tree::default();
    pkg.entries(limits, &mut |raw: RawEntry<'_>| {
        let node = match (raw.kind, raw.link) {
            (EntryKind::File, _) => RawNode::File,
            (EntryKind::Dir, _) => RawNode::Dir,
            (EntryKind::Symlink, Some(t)) => RawNode::Symlink(t),
            (EntryKind::Hardlink, Some(t)) => RawNode::Hardlink(t),
            _ => RawNode::Other,
        };
        let path = tree
            .admit(raw.path, node)
            .map_err(|e| tree_error(&pkg_path, e))?;
        visit(
            &tree,
            Entry {
                path: &path,
                kind: raw.kind,
                size: raw.size,
                data: raw.data,
            },
        )
    })?;
    Ok(tree)
}

/// Adds the package file to a tree rule violation.
pub(crate) fn tree_error(path: &Path, e: TreeError) -> Error {
    let path = path.to_path_buf();
    match e {
        TreeError::PathEscape { entry, reason } => Error::PathEscape {
            path,
            entry,
            reason,
        },
        TreeError::SymlinkEscape { entry, target } => Error::SymlinkEscape {
            path,
            entry,
            target,
        },
        TreeError::HardlinkEscape { entry, target } => Error::HardlinkEscape {
            path,
            entry,
            target,
        },
        TreeError::Duplicate { entry } => Error::DuplicateEntry { path, entry },
        TreeError::ThroughSymlink { entry, link } => Error::ThroughSymlink { path, entry, link },
        TreeError::Loop { entry } => Error::SymlinkLoop { path, entry },
        TreeError::Dangling { entry, target } => Error::DanglingLink {
            path,
            entry,
            target,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(version: &str, source: Option<&str>) -> PackageInfo {
        PackageInfo {
            name: "qemu-user-static".into(),
            version: version.into(),
            architecture: "amd64".into(),
            source: source.map(Into::into),
        }
    }

    #[test]
    fn source_fields() {
        let i = info(
            "1:7.2+dfsg-7+deb12u18+b3",
            Some("qemu (1:7.2+dfsg-7+deb12u18)"),
        );
        assert_eq!(i.source_name(), "qemu");
        assert_eq!(i.source_version(), "1:7.2+dfsg-7+deb12u18");
        let i = info("1:10.0.13+ds-0+deb13u1", Some("qemu"));
        assert_eq!(i.source_version(), "1:10.0.13+ds-0+deb13u1");
        let i = info("1.0", None);
        assert_eq!(i.source_name(), "qemu-user-static");
    }
}
