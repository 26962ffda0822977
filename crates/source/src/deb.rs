//! Reading .deb packages: `ar` → `debian-binary`, `control.tar.*`, `data.tar.*`.
//!
//! Opening a package reads only its small first members (format version and control file),
//! so the arch can be checked before anything big is decompressed; [`Deb::entries`] then
//! streams `data.tar.*` without buffering it (qemu packages unpack to ~480 MB). Every error
//! names the package file and the member it happened in.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::ar::{ArError, ArReader};
use crate::compression::Compression;
use crate::deb822;
use crate::error::{Error, Result};
use crate::limits::{Capped, CountIn, LimitHit, Limits};
use crate::package::{EntryKind, Flow, PackageFormat, PackageInfo, RawEntry, VisitError, Visitor};

/// Largest control file read (real ones are a few KiB).
const MAX_CONTROL: u64 = 1 << 20;

/// An opened .deb, positioned before its data member.
pub struct Deb {
    path: PathBuf,
    ar: ArReader<BufReader<File>>,
    info: PackageInfo,
    last_member: String,
}

impl std::fmt::Debug for Deb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deb")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

impl Deb {
    /// Opens `path` and reads its format version and control file.
    pub fn open(path: &Path, limits: &Limits) -> Result<Deb> {
        let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot read", path, e))?
            .len();
        let ar = ArReader::new(BufReader::with_capacity(256 << 10, file), len)
            .map_err(|e| ar_error(path, "", e))?;
        let mut deb = Deb {
            path: path.to_path_buf(),
            ar,
            info: PackageInfo {
                name: String::new(),
                version: String::new(),
                architecture: String::new(),
                source: None,
            },
            last_member: String::new(),
        };
        deb.read_format_version()?;
        deb.info = deb.read_control(limits)?;
        Ok(deb)
    }

    fn next_member(&mut self) -> Result<Option<crate::ar::Member>> {
        loop {
            let m = self
                .ar
                .next_member(&self.last_member)
                .map_err(|e| ar_error(&self.path, &self.last_member, e))?;
            if let Some(m) = &m {
                self.last_member = m.name.clone();
                // deb(5): members starting with '_' are reserved and skipped by dpkg.
                if m.name.starts_with('_') {
                    continue;
                }
            }
            return Ok(m);
        }
    }

    fn malformed(&self, detail: impl Into<String>) -> Error {
        Error::Malformed {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn read_format_version(&mut self) -> Result<()> {
        let m = self
            .next_member()?
            .ok_or_else(|| self.malformed("empty ar archive"))?;
        if m.name != "debian-binary" {
            return Err(self.malformed(format!("first member is {:?}, not debian-binary", m.name)));
        }
        let mut v = String::new();
        self.ar
            .data()
            .take(64)
            .read_to_string(&mut v)
            .map_err(|e| self.corrupt("debian-binary", e))?;
        if !v.starts_with("2.") {
            return Err(self.malformed(format!(
                "debian-binary says {:?}; only format 2.x exists",
                v.trim()
            )));
        }
        Ok(())
    }

    fn read_control(&mut self, limits: &Limits) -> Result<PackageInfo> {
        let m = self
            .next_member()?
            .ok_or_else(|| self.malformed("no control.tar member"))?;
        if !m.name.starts_with("control.tar") {
            return Err(self.malformed(format!("second member is {:?}, not control.tar.*", m.name)));
        }
        let comp = Compression::from_member_name(&m.name, "control.tar").ok_or_else(|| {
            Error::UnknownCompression {
                path: self.path.clone(),
                member: m.name.clone(),
            }
        })?;
        let mut control = None;
        let path = self.path.clone();
        self.stream_tar(&m.name, comp, false, limits, &mut |e: RawEntry<'_>| {
            let name = e.path.trim_start_matches("./");
            if name == "control" && e.kind == EntryKind::File {
                let mut text = String::new();
                e.data
                    .take(MAX_CONTROL)
                    .read_to_string(&mut text)
                    .map_err(VisitError::Read)?;
                control = Some(text);
                return Ok(Flow::Stop);
            }
            Ok(Flow::Continue)
        })?;
        let text = control.ok_or_else(|| Error::BadControl {
            path: path.clone(),
            detail: format!("{} has no ./control file", m.name),
        })?;
        parse_control(&text).map_err(|detail| Error::BadControl { path, detail })
    }

    fn corrupt(&self, member: &str, source: io::Error) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            member: member.to_string(),
            source,
        }
    }

    /// Streams a tar member through its decoder and the caps to `visit`.
    fn stream_tar(
        &mut self,
        member: &str,
        comp: Compression,
        parallel: bool,
        limits: &Limits,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        let path = self.path.clone();
        let hit: Rc<Cell<Option<LimitHit>>>;
        let result = {
            let (counted, packed) = CountIn::new(self.ar.data());
            let decoder = comp
                .decoder(counted, parallel)
                .map_err(|source| Error::Corrupt {
                    path: path.clone(),
                    member: member.to_string(),
                    source,
                })?;
            let (capped, h) = Capped::new(decoder, packed, limits);
            hit = h;
            walk_tar(capped, limits, visit)
        };
        let read_fail = |e: io::Error| match hit.get() {
            Some(LimitHit::Total { limit }) => Error::TooLarge {
                path: path.clone(),
                member: member.to_string(),
                limit,
            },
            Some(LimitHit::Ratio { ratio, limit }) => Error::CompressionRatio {
                path: path.clone(),
                member: member.to_string(),
                ratio,
                limit,
            },
            None => Error::Corrupt {
                path: path.clone(),
                member: member.to_string(),
                source: e,
            },
        };
        match result {
            Ok(()) => Ok(()),
            Err(TarWalkError::Read(e)) => Err(read_fail(e)),
            Err(TarWalkError::TooMany) => Err(Error::TooManyEntries {
                path: path.clone(),
                member: member.to_string(),
                limit: limits.max_entries,
            }),
            Err(TarWalkError::Visit(VisitError::Read(e))) => Err(read_fail(e)),
            Err(TarWalkError::Visit(VisitError::Other(e))) => Err(e),
        }
    }
}

impl PackageFormat for Deb {
    fn path(&self) -> &Path {
        &self.path
    }

    fn info(&self) -> &PackageInfo {
        &self.info
    }

    fn entries(&mut self, limits: &Limits, visit: &mut Visitor<'_>) -> Result<()> {
        let m = self
            .next_member()?
            .ok_or_else(|| self.malformed("no data.tar member"))?;
        if !m.name.starts_with("data.tar") {
            return Err(self.malformed(format!("third member is {:?}, not data.tar.*", m.name)));
        }
        let comp = Compression::from_member_name(&m.name, "data.tar").ok_or_else(|| {
            Error::UnknownCompression {
                path: self.path.clone(),
                member: m.name.clone(),
            }
        })?;
        self.stream_tar(&m.name, comp, true, limits, visit)
    }
}

enum TarWalkError {
    Read(io::Error),
    TooMany,
    Visit(VisitError),
}

fn walk_tar<R: Read>(
    reader: R,
    limits: &Limits,
    visit: &mut Visitor<'_>,
) -> Result<(), TarWalkError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(TarWalkError::Read)?;
    let mut count = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(TarWalkError::Read)?;
        count += 1;
        if count > limits.max_entries {
            return Err(TarWalkError::TooMany);
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Dir,
            tar::EntryType::Symlink => EntryKind::Symlink,
            tar::EntryType::Link => EntryKind::Hardlink,
            _ => EntryKind::Other,
        };
        let size = entry.size();
        let flow = visit(RawEntry {
            path: &path,
            kind,
            link: link.as_deref(),
            size,
            data: &mut entry,
        })
        .map_err(TarWalkError::Visit)?;
        if flow == Flow::Stop {
            break;
        }
    }
    Ok(())
}

fn ar_error(path: &Path, previous: &str, e: ArError) -> Error {
    let path = path.to_path_buf();
    match e {
        ArError::NotAr => Error::NotAPackage { path },
        ArError::Truncated { member, detail } => Error::Truncated {
            path,
            member,
            detail,
        },
        ArError::BadHeader { offset, detail } => Error::Malformed {
            path,
            detail: format!("bad ar member header at byte {offset} (after {previous:?}): {detail}"),
        },
        ArError::Io(source) => Error::Io {
            action: "cannot read",
            path,
            source,
        },
    }
}

/// Pure: the fields qus needs from a control file.
fn parse_control(text: &str) -> Result<PackageInfo, String> {
    let stanzas = deb822::parse(text).map_err(|(line, what)| format!("line {line}: {what}"))?;
    let s = stanzas.first().ok_or("empty control file")?;
    let field = |name: &str| {
        s.get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("no {name}: field"))
    };
    Ok(PackageInfo {
        name: field("Package")?,
        version: field("Version")?,
        architecture: field("Architecture")?,
        source: s.get("Source").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_fields() {
        let i = parse_control("Package: busybox-static\nVersion: 1:1.37.0-6+b9\nArchitecture: arm64\nSource: busybox (1:1.37.0-6)\nDescription: x\n y\n").unwrap();
        assert_eq!(i.name, "busybox-static");
        assert_eq!(i.architecture, "arm64");
        assert_eq!(i.source_version(), "1:1.37.0-6");
        assert!(parse_control("Package: x\nVersion: 1\n")
            .unwrap_err()
            .contains("Architecture"));
    }
}
