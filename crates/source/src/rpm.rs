//! Reading rpm packages (Fedora's `qemu-user-static-<group>`): lead → signature header →
//! header → compressed cpio payload, streamed, in-process.
//!
//! What is read and checked, in file order:
//!
//! 1. The 96-byte lead: its magic, a major version of 3 (rpm 4.x, "v4" packages) or 4 (rpm
//!    6's v6 packages), a binary package, a header-style signature.
//! 2. The signature header (padded to 8 bytes): the header+payload size (`SIZE`/`LONGSIZE`),
//!    so a cut-short file is reported as such before anything is decompressed, and the
//!    header's sha256 (`SHA256`), which is checked.
//! 3. The main header: name, epoch, version, release, arch, OS, source rpm, the payload's
//!    format, compressor and sha256 (`PAYLOADDIGEST`), and the file list (needed by the
//!    "stripped" entries of v6 and large-file payloads, and exposed in [`RpmHeader::files`]).
//! 4. The payload, through the decompressor (zstd, xz, lzma or gzip as `PAYLOADCOMPRESSOR`
//!    says), the crate's size and ratio caps, and the cpio reader (`cpio`), whose entries go
//!    through the same tree rules and emulator extraction as a .deb's. The compressed bytes
//!    are hashed as they are read; once the archive has been read (or the visitor has what it
//!    wanted, in which case the rest is read without decompressing it) the sum must equal
//!    `PAYLOADDIGEST`.
//!
//! The pinned sha256 of the whole file is what proves a package is the right one, as for
//! .deb. The digests are checked because they cost little and turn a corrupt download of an
//! unpinned file into a precise error. When the config names a keyring for a Fedora source,
//! the header's OpenPGP signature is checked too ([`verify_signature`], in `signature`):
//! Fedora's key then vouches for the pin.
//!
//! Payload formats: rpm writes `PAYLOADFORMAT` `cpio` for every binary package, v4 and v6;
//! whether entries are newc (`070701`) or stripped (`07070X`, rpm ≥ 4.12 for files ≥ 4 GiB,
//! and rpm 6's v6 format) is told by each entry's magic, as rpm does. Not read: source rpms,
//! delta rpms (`drpm`), bzip2 payloads (no bzip2 decoder among the dependencies), and the
//! block-aligned payloads of rpm ≥ 6.2 (`rpmlib(PayloadAlignment)`), each refused by name.
//!
//! Arches: the header's `ARCH` (`aarch64`, `armv7hl` ...) is mapped to the Debian arch of the
//! hosts it runs on ([`ARCHES`], the one table for both directions), which is what
//! [`crate::PackageInfo::architecture`] holds, so the host check and the ELF check are the
//! same code for both formats.

mod cpio;
mod header;
mod open;
mod signature;

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::compression::Compression;
use crate::digest::Hasher;
use crate::error::{Error, Result};
use crate::limits::{Capped, CountIn, LimitHit, Limits};
use crate::package::{PackageFormat, PackageInfo, Visitor};

use cpio::{IndexedFile, WalkError};
use header::{tag, Header, DIGEST_SHA256, LEAD_LEN};

pub(crate) use header::LEAD_MAGIC;
pub use signature::verify_signature;

/// rpm arch → Debian arch of the hosts its binaries run on. One table, read both ways
/// ([`debian_arch`], [`rpm_arches`]); every Debian arch here is in [`crate::elf::HOSTS`].
///
/// Only arches whose binaries run on every host of the Debian arch are mapped: `armv6l` and
/// `armv7l` (soft-float, but newer than armel's ARMv5TE baseline) are not.
pub const ARCHES: &[(&str, &str)] = &[
    ("x86_64", "amd64"),
    ("aarch64", "arm64"),
    ("armv7hl", "armhf"),
    ("armv7hnl", "armhf"),
    ("armv6hl", "armhf"),
    ("armv5tel", "armel"),
    ("armv5tejl", "armel"),
    ("i686", "i386"),
    ("i586", "i386"),
    ("i486", "i386"),
    ("i386", "i386"),
    ("athlon", "i386"),
    ("pentium4", "i386"),
    ("ppc64le", "ppc64el"),
    ("ppc64", "ppc64"),
    ("ppc", "powerpc"),
    ("s390x", "s390x"),
    ("riscv64", "riscv64"),
    ("mips64el", "mips64el"),
    ("mipsel", "mipsel"),
    ("loongarch64", "loong64"),
    ("sparc64", "sparc64"),
    ("alpha", "alpha"),
    ("m68k", "m68k"),
    ("sh4", "sh4"),
    ("noarch", "all"),
];

/// The Debian arch an rpm arch runs on (`aarch64` → `arm64`, `noarch` → `all`).
pub fn debian_arch(rpm_arch: &str) -> Option<&'static str> {
    ARCHES.iter().find(|(r, _)| *r == rpm_arch).map(|(_, d)| *d)
}

/// The rpm arches whose packages run on a Debian arch (`armhf` → `armv7hl`, `armv7hnl`, ...).
pub fn rpm_arches(debian_arch: &str) -> impl Iterator<Item = &'static str> + '_ {
    ARCHES
        .iter()
        .filter(move |(_, d)| *d == debian_arch)
        .map(|(r, _)| *r)
}

/// One file of the header's file list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RpmFile {
    /// Absolute install path (`/usr/bin/qemu-aarch64-static`).
    pub path: String,
    /// `st_mode` (type and permissions).
    pub mode: u32,
    /// Size in bytes (of the link target for symlinks).
    pub size: u64,
}

/// What an rpm's headers say, in rpm's own terms.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RpmHeader {
    /// `NAME` (`qemu-user-static-aarch64`).
    pub name: String,
    /// `EPOCH`, if any (Fedora's qemu has 2).
    pub epoch: Option<u64>,
    /// `VERSION` (`10.0.0`).
    pub version: String,
    /// `RELEASE` (`4.fc43`).
    pub release: String,
    /// `ARCH` (`x86_64`, `aarch64`, `noarch` ...).
    pub arch: String,
    /// `OS` (`linux`).
    pub os: String,
    /// `SOURCERPM` (`qemu-10.0.0-4.fc43.src.rpm`).
    pub source_rpm: Option<String>,
    /// Package format: 4 for rpm 4.x packages, 6 for rpm 6's v6 ones.
    pub format: u32,
    /// `PAYLOADFORMAT` (`cpio`).
    pub payload_format: String,
    /// `PAYLOADCOMPRESSOR` (`zstd`, `xz`, `gzip` ...), if given.
    pub payload_compressor: Option<String>,
    /// `PAYLOADFLAGS` (the compression level, `19`).
    pub payload_flags: Option<String>,
    /// `PAYLOADDIGEST` (sha256 of the compressed payload, hex), if given.
    pub payload_sha256: Option<String>,
    /// The file list.
    pub files: Vec<RpmFile>,
}

impl RpmHeader {
    /// `[epoch:]version-release`, rpm's EVR.
    pub fn evr(&self) -> String {
        match self.epoch {
            Some(e) => format!("{e}:{}-{}", self.version, self.release),
            None => format!("{}-{}", self.version, self.release),
        }
    }
}

/// The payload compressions qus reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Payload {
    Plain(Compression),
    Lzma,
}

impl Payload {
    fn name(self) -> &'static str {
        match self {
            Payload::Plain(Compression::None) => "uncompressed",
            Payload::Plain(Compression::Xz) => "xz",
            Payload::Plain(Compression::Zstd) => "zstd",
            Payload::Plain(Compression::Gzip) => "gzip",
            Payload::Lzma => "lzma",
        }
    }
}

/// An opened rpm, positioned at its payload.
pub struct Rpm {
    path: PathBuf,
    file: BufReader<File>,
    info: PackageInfo,
    header: RpmHeader,
    payload_len: u64,
    payload: Payload,
    indexed: Vec<IndexedFile>,
    read: bool,
    signature_header: Header,
    header_blob: Vec<u8>,
}

impl std::fmt::Debug for Rpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpm")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

impl Rpm {
    /// Opens `path` and reads its lead and headers (no payload yet).
    pub fn open(path: &Path, _limits: &Limits) -> Result<Rpm> {
        let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("cannot read", path, e))?
            .len();
        let mut r = BufReader::with_capacity(256 << 10, file);
        let fail = open::Fail { path };
        let lead = open::lead(&mut r, fail)?;
        let header_start = LEAD_LEN as u64;
        let (sig, sig_len) = open::signature(&mut r, len - header_start, fail)?;
        let header_start = header_start + sig_len;
        let (hdr, header_blob) = open::main_header(&mut r, len - header_start, &sig, fail)?;
        let pos = header_start + header_blob.len() as u64;
        let end = open::payload_end(&sig, &hdr, (header_start, pos, len), fail)?;
        let field = |e: String| fail.bad("header", e);
        let header = read_header_fields(&hdr, &lead).map_err(field)?;
        open::supported(&hdr, &header, fail)?;
        let payload = open::payload(&mut r, &header, fail)?;
        let indexed = index_files(&hdr, &header.files).map_err(field)?;
        let info = package_info(&hdr, &header).map_err(field)?;
        Ok(Rpm {
            path: path.to_path_buf(),
            file: r,
            info,
            header,
            payload_len: end - pos,
            payload,
            indexed,
            read: false,
            signature_header: sig,
            header_blob,
        })
    }

    /// What the headers say, in rpm's terms.
    pub fn header(&self) -> &RpmHeader {
        &self.header
    }

    fn member(&self) -> String {
        format!("payload ({})", self.payload.name())
    }
}

impl PackageFormat for Rpm {
    fn path(&self) -> &Path {
        &self.path
    }

    fn info(&self) -> &PackageInfo {
        &self.info
    }

    fn arch_label(&self) -> String {
        match debian_arch(&self.header.arch) {
            Some(d) => format!("{d} (rpm arch {})", self.header.arch),
            None => format!(
                "rpm arch {}, which qus maps to no Debian arch",
                self.header.arch
            ),
        }
    }

    fn entries(&mut self, limits: &Limits, visit: &mut Visitor<'_>) -> Result<()> {
        if std::mem::replace(&mut self.read, true) {
            return Err(Error::io(
                "the payload was already read from",
                &self.path,
                io::Error::from(io::ErrorKind::InvalidInput),
            ));
        }
        let member = self.member();
        let path = self.path.clone();
        let digest = Rc::new(RefCell::new(Hasher::default()));
        let mut raw = (&mut self.file).take(self.payload_len);
        let hit: Rc<Cell<Option<LimitHit>>>;
        let result = {
            let hashed = HashIn {
                inner: &mut raw,
                hasher: digest.clone(),
            };
            let (counted, packed) = CountIn::new(hashed);
            let decoder = match self.payload {
                Payload::Plain(c) => c.decoder(counted, true),
                Payload::Lzma => liblzma::stream::Stream::new_lzma_decoder(1 << 30)
                    .map(|s| {
                        Box::new(liblzma::read::XzDecoder::new_stream(counted, s)) as Box<dyn Read>
                    })
                    .map_err(io::Error::other),
            }
            .map_err(|source| Error::Corrupt {
                path: path.clone(),
                member: member.clone(),
                source,
            })?;
            let (capped, h) = Capped::new(decoder, packed, limits);
            hit = h;
            cpio::walk(capped, &self.indexed, limits, visit)
        };
        let read_fail = |e: io::Error| match hit.get() {
            Some(LimitHit::Total { limit }) => Error::TooLarge {
                path: path.clone(),
                member: member.clone(),
                limit,
            },
            Some(LimitHit::Ratio { ratio, limit }) => Error::CompressionRatio {
                path: path.clone(),
                member: member.clone(),
                ratio,
                limit,
            },
            None => Error::Corrupt {
                path: path.clone(),
                member: member.clone(),
                source: e,
            },
        };
        match result {
            Ok(()) => {}
            Err(WalkError::Read(e))
            | Err(WalkError::Visit(crate::package::VisitError::Read(e))) => {
                return Err(read_fail(e))
            }
            Err(WalkError::Visit(crate::package::VisitError::Other(e))) => return Err(e),
            Err(WalkError::TooMany) => {
                return Err(Error::TooManyEntries {
                    path,
                    member,
                    limit: limits.max_entries,
                })
            }
            Err(WalkError::Bad(detail)) => {
                return Err(Error::BadRpm {
                    path,
                    part: "payload",
                    detail,
                })
            }
            Err(WalkError::NoTrailer(detail)) => {
                return Err(Error::CpioTrailerMissing { path, detail })
            }
        }
        // The rest of the compressed bytes (the decoder's end of stream, or all that follows
        // what the visitor wanted) only needs hashing.
        let mut rest = HashIn {
            inner: &mut raw,
            hasher: digest.clone(),
        };
        io::copy(&mut rest, &mut io::sink()).map_err(|e| Error::io("cannot read", &path, e))?;
        if raw.limit() != 0 {
            return Err(Error::Truncated {
                path,
                member,
                detail: format!("{} bytes missing at the end", raw.limit()),
            });
        }
        if let Some(expected) = &self.header.payload_sha256 {
            let actual = digest.take().finish().to_hex();
            if !expected.eq_ignore_ascii_case(&actual) {
                return Err(Error::RpmDigestMismatch {
                    path,
                    what: "payload",
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }
}

/// Hashes the compressed bytes as the decoder pulls them.
struct HashIn<'a, R> {
    inner: &'a mut R,
    hasher: Rc<RefCell<Hasher>>,
}

impl<R: Read> Read for HashIn<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.borrow_mut().update(&buf[..n]);
        Ok(n)
    }
}

/// Pure: the header fields qus uses.
fn read_header_fields(h: &Header, lead: &header::Lead) -> Result<RpmHeader, String> {
    let required = |t: u32, name: &str| {
        h.string(t)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("no {name} tag"))
    };
    let format = match h.number(tag::RPMFORMAT)? {
        Some(f) => u32::try_from(f).map_err(|_| format!("RPMFORMAT {f}"))?,
        None if lead.major == 4 => 6,
        None => 4,
    };
    let payload_sha256 = match h.string(tag::PAYLOADDIGEST)? {
        Some(d) if h.number(tag::PAYLOADDIGESTALGO)?.unwrap_or(DIGEST_SHA256) == DIGEST_SHA256 => {
            if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("PAYLOADDIGEST {d:?} is not a sha256 in hex"));
            }
            Some(d)
        }
        // Another algorithm: not checked (rpm only ever writes sha256 there).
        _ => None,
    };
    Ok(RpmHeader {
        name: required(tag::NAME, "NAME")?,
        epoch: h.number(tag::EPOCH)?,
        version: required(tag::VERSION, "VERSION")?,
        release: required(tag::RELEASE, "RELEASE")?,
        arch: required(tag::ARCH, "ARCH")?,
        os: h.string(tag::OS)?.unwrap_or_else(|| "linux".into()),
        source_rpm: h.string(tag::SOURCERPM)?,
        format,
        payload_format: h
            .string(tag::PAYLOADFORMAT)?
            .unwrap_or_else(|| "cpio".into()),
        payload_compressor: h.string(tag::PAYLOADCOMPRESSOR)?,
        payload_flags: h.string(tag::PAYLOADFLAGS)?,
        payload_sha256,
        files: file_list(h)?,
    })
}

/// Pure: the header's file list (compressed `DIRNAMES`/`DIRINDEXES`/`BASENAMES`, or the
/// `OLDFILENAMES` of v3 packages), with modes and sizes.
fn file_list(h: &Header) -> Result<Vec<RpmFile>, String> {
    let paths: Vec<String> = match h.strings(tag::BASENAMES)? {
        Some(base) => {
            let dirs = h
                .strings(tag::DIRNAMES)?
                .ok_or("BASENAMES without DIRNAMES")?;
            let idx = h
                .numbers(tag::DIRINDEXES)?
                .ok_or("BASENAMES without DIRINDEXES")?;
            if idx.len() != base.len() {
                return Err(format!(
                    "{} BASENAMES but {} DIRINDEXES",
                    base.len(),
                    idx.len()
                ));
            }
            base.iter()
                .zip(&idx)
                .map(|(b, &i)| {
                    let d = dirs.get(i as usize).ok_or_else(|| {
                        format!("DIRINDEXES {i} is past the {} DIRNAMES", dirs.len())
                    })?;
                    Ok(format!("{d}{b}"))
                })
                .collect::<Result<_, String>>()?
        }
        None => h.strings(tag::OLDFILENAMES)?.unwrap_or_default(),
    };
    let n = paths.len();
    let column = |t: u32, name: &str| -> Result<Vec<u64>, String> {
        match h.numbers(t)? {
            Some(v) if v.len() == n => Ok(v),
            Some(v) => Err(format!("{n} files but {} {name}", v.len())),
            None if n == 0 => Ok(Vec::new()),
            None => Err(format!("{n} files but no {name}")),
        }
    };
    let modes = column(tag::FILEMODES, "FILEMODES")?;
    let sizes = if h.has(tag::LONGFILESIZES) {
        column(tag::LONGFILESIZES, "LONGFILESIZES")?
    } else {
        column(tag::FILESIZES, "FILESIZES")?
    };
    Ok(paths
        .into_iter()
        .zip(modes)
        .zip(sizes)
        .map(|((path, mode), size)| RpmFile {
            path,
            mode: mode as u32,
            size,
        })
        .collect())
}

/// Pure: what stripped payload entries need per file index (hard-link groups from
/// `FILEDEVICES`/`FILEINODES`: only the group's last file carries the data).
fn index_files(h: &Header, files: &[RpmFile]) -> Result<Vec<IndexedFile>, String> {
    let n = files.len();
    let get =
        |t: u32| -> Result<Option<Vec<u64>>, String> { Ok(h.numbers(t)?.filter(|v| v.len() == n)) };
    let groups: Vec<Option<(u64, u64)>> = match (get(tag::FILEDEVICES)?, get(tag::FILEINODES)?) {
        (Some(dev), Some(ino)) => dev.into_iter().zip(ino).map(Some).collect(),
        _ => vec![None; n],
    };
    let mut members: std::collections::HashMap<(u64, u64), (u64, usize)> = Default::default();
    for (i, (g, f)) in groups.iter().zip(files).enumerate() {
        if let Some(g) = g.filter(|_| f.mode & 0o170000 == 0o100000) {
            let e = members.entry(g).or_insert((0, i));
            e.0 += 1;
            e.1 = i;
        }
    }
    Ok(files
        .iter()
        .zip(&groups)
        .enumerate()
        .map(|(i, (f, g))| {
            let kind = f.mode & 0o170000;
            let group = g
                .and_then(|g| members.get(&g).map(|&(count, last)| (g, count, last)))
                .filter(|&(_, count, _)| kind == 0o100000 && count > 1);
            let data_size = match kind {
                0o100000 => match group {
                    Some((_, _, last)) if last != i => 0,
                    _ => f.size,
                },
                0o120000 => f.size,
                _ => 0,
            };
            IndexedFile {
                path: format!(".{}", f.path),
                mode: f.mode,
                data_size,
                link_group: group.map(|(g, count, _)| (g, count)),
            }
        })
        .collect())
}

/// Pure: the format-independent description (Debian arch, EVR, source).
fn package_info(h: &Header, r: &RpmHeader) -> Result<PackageInfo, String> {
    let source = match h.string(tag::SOURCENEVR)? {
        Some(nevr) => split_nvr(&nevr).map(|(n, vr)| format!("{n} ({vr})")),
        None => r.source_rpm.as_deref().and_then(|s| {
            let nvr = s
                .strip_suffix(".src.rpm")
                .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
            let (n, vr) = split_nvr(nvr)?;
            Some(match r.epoch {
                Some(e) => format!("{n} ({e}:{vr})"),
                None => format!("{n} ({vr})"),
            })
        }),
    };
    Ok(PackageInfo {
        name: r.name.clone(),
        version: r.evr(),
        architecture: debian_arch(&r.arch).unwrap_or(&r.arch).to_string(),
        source,
    })
}

/// Pure: `name-version-release` → (`name`, `version-release`).
fn split_nvr(nvr: &str) -> Option<(&str, &str)> {
    let (nv, _release) = nvr.rsplit_once('-')?;
    let (name, _version) = nv.rsplit_once('-')?;
    Some((name, &nvr[name.len() + 1..]))
}

/// Pure: the first bytes of a file look like an rpm's lead.
pub(crate) fn is_rpm_magic(head: &[u8]) -> bool {
    head.len() >= 4 && head[..4] == LEAD_MAGIC
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_arch_is_a_known_host() {
        for (rpm, deb) in ARCHES {
            assert!(
                *deb == "all" || crate::elf::for_debian_arch(deb).is_some(),
                "{rpm} -> {deb}"
            );
        }
        assert_eq!(debian_arch("aarch64"), Some("arm64"));
        assert_eq!(debian_arch("armv7hl"), Some("armhf"));
        assert_eq!(debian_arch("ppc64le"), Some("ppc64el"));
        assert_eq!(debian_arch("armv7l"), None);
        assert_eq!(
            rpm_arches("armhf").collect::<Vec<_>>(),
            ["armv7hl", "armv7hnl", "armv6hl"]
        );
    }

    #[test]
    fn nvr() {
        assert_eq!(
            split_nvr("qemu-10.0.0-4.fc43"),
            Some(("qemu", "10.0.0-4.fc43"))
        );
        assert_eq!(
            split_nvr("qemu-user-static-2:10.0.0-4.fc43"),
            Some(("qemu-user-static", "2:10.0.0-4.fc43"))
        );
        assert_eq!(split_nvr("qemu"), None);
    }
}
