//! Streaming reader of rpm's cpio payloads.
//!
//! Two entry formats occur, told apart per entry by their magic, as rpm itself does:
//!
//! - `070701` ("newc", SVR4 without checksum; `070702` with one, which rpm also accepts): a
//!   110-byte ASCII header, the NUL-terminated name, padding to 4, the data, padding to 4.
//!   Every rpm 4.x writes this unless a file is 4 GiB or larger.
//! - `07070X` (rpm ≥ 4.12 "stripped" entries, used for packages with files of 4 GiB or more
//!   and by rpm 6's v6 format): 8 hex digits naming the file's index in the header's file
//!   list, which has everything else (name, mode, size); padding to 4, data, padding to 4.
//!   The archive still ends with a newc `TRAILER!!!` (an index of `ffffffff` is taken as
//!   the end too).
//!
//! Hard links: rpm (like GNU cpio) stores a group of hard-linked files as consecutive
//! entries of which only the last carries the data, the others have size 0. The tree rules
//! want a hard link to name an entry that came *before* it, so members without data are held
//! back until the one with the data has been passed on as a file, and then passed on as hard
//! links to it. A group that never gets its data is refused.

use std::collections::HashMap;
use std::io::{self, Read};

use crate::limits::Limits;
use crate::package::{EntryKind, Flow, RawEntry, VisitError, Visitor};

use super::header::read_full;

/// rpm's own cap on names (`CPIO_NAMESIZE_MAX`), also used for symlink targets.
const MAX_NAME: u32 = 4096;
const NEWC: &[u8; 6] = b"070701";
const NEWC_CRC: &[u8; 6] = b"070702";
const STRIPPED: &[u8; 6] = b"07070X";
const TRAILER: &str = "TRAILER!!!";

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// What stripped entries need to know about file `i` of the header's file list.
#[derive(Debug, Clone)]
pub(crate) struct IndexedFile {
    /// As newc would store it: `./usr/bin/qemu-aarch64-static`.
    pub path: String,
    pub mode: u32,
    /// Bytes of data in the payload (0 for folders and for hard links but the last).
    pub data_size: u64,
    /// Hard-link group (device, inode) and its size, for groups of two or more.
    pub link_group: Option<((u64, u64), u64)>,
}

/// Why the walk stopped.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// Reading the decompressed stream failed.
    Read(io::Error),
    /// More entries than `Limits::max_entries`.
    TooMany,
    /// The archive is malformed.
    Bad(String),
    /// The stream ended before `TRAILER!!!`.
    NoTrailer(String),
    /// The visitor failed.
    Visit(VisitError),
}

impl From<VisitError> for WalkError {
    fn from(e: VisitError) -> Self {
        WalkError::Visit(e)
    }
}

/// Counts the position in the decompressed stream (padding is relative to its start).
struct Pos<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Read for Pos<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// One entry's data, and no more.
struct Data<'a, R> {
    inner: &'a mut Pos<R>,
    left: u64,
    entry: &'a str,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the payload ends inside the data of {} ({} bytes missing)",
                    self.entry, self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// An entry's header, whichever format it came in.
struct Member {
    path: String,
    mode: u32,
    size: u64,
    /// Hard-link group key and size, for regular files with more than one link.
    group: Option<((u64, u64), u64)>,
}

/// Members of a hard-link group seen so far.
#[derive(Default)]
struct Group {
    seen: u64,
    held: Vec<String>,
    carrier: Option<String>,
}

/// Streams the cpio archive in `reader` to `visit`, until `TRAILER!!!` or [`Flow::Stop`].
pub(crate) fn walk<R: Read>(
    reader: R,
    files: &[IndexedFile],
    limits: &Limits,
    visit: &mut Visitor<'_>,
) -> Result<(), WalkError> {
    let mut r = Pos {
        inner: reader,
        pos: 0,
    };
    let mut count = 0u64;
    let mut groups: HashMap<(u64, u64), Group> = HashMap::new();
    loop {
        skip_pad(&mut r, 4).map_err(|e| eof_as_no_trailer(e, count))?;
        let mut magic = [0u8; 6];
        let n = read_full(&mut r, &mut magic).map_err(WalkError::Read)?;
        if n < magic.len() {
            return Err(WalkError::NoTrailer(if n == 0 {
                format!("the archive ends after {}", entries(count))
            } else {
                format!("the archive ends inside the header of entry {}", count + 1)
            }));
        }
        count += 1;
        if count > limits.max_entries {
            return Err(WalkError::TooMany);
        }
        let offset = r.pos - 6;
        let member = match &magic {
            NEWC | NEWC_CRC => match read_newc(&mut r, count)? {
                Some(m) => m,
                None => break,
            },
            STRIPPED => match read_stripped(&mut r, files, count)? {
                Some(m) => m,
                None => break,
            },
            _ => {
                return Err(WalkError::Bad(format!(
                    "bad cpio magic {:?} at byte {offset} of the archive (entry {count}); \
                     expected 070701 or 07070X",
                    String::from_utf8_lossy(&magic)
                )))
            }
        };
        if emit(&mut r, member, &mut groups, visit)? == Flow::Stop {
            return Ok(());
        }
    }
    // A group whose data never came: rpm never writes one.
    if let Some((_, g)) = groups
        .iter()
        .find(|(_, g)| g.carrier.is_none() && !g.held.is_empty())
    {
        return Err(WalkError::Bad(format!(
            "hard link {:?} belongs to a group whose data never comes",
            g.held[0]
        )));
    }
    Ok(())
}

/// Passes one member on (holding back or releasing hard-link group members).
fn emit<R: Read>(
    r: &mut Pos<R>,
    m: Member,
    groups: &mut HashMap<(u64, u64), Group>,
    visit: &mut Visitor<'_>,
) -> Result<Flow, WalkError> {
    let kind = match m.mode & S_IFMT {
        S_IFREG => EntryKind::File,
        S_IFDIR => EntryKind::Dir,
        S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    if kind == EntryKind::Symlink {
        if m.size == 0 || m.size > u64::from(MAX_NAME) {
            return Err(WalkError::Bad(format!(
                "symlink {:?} has a target of {} bytes",
                m.path, m.size
            )));
        }
        let mut target = vec![0u8; m.size as usize];
        let n = read_full(r, &mut target).map_err(WalkError::Read)?;
        if n < target.len() {
            return Err(WalkError::Read(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the payload ends inside the symlink {}", m.path),
            )));
        }
        let target = String::from_utf8_lossy(&target).into_owned();
        return Ok(visit(RawEntry {
            path: &m.path,
            kind,
            link: Some(&target),
            size: 0,
            data: &mut io::empty(),
        })?);
    }
    let Some((key, nlink)) = m.group.filter(|_| kind == EntryKind::File) else {
        return pass_file(r, &m.path, kind, m.size, visit);
    };
    let g = groups.entry(key).or_default();
    g.seen += 1;
    if let Some(carrier) = &g.carrier {
        if m.size != 0 {
            return Err(WalkError::Bad(format!(
                "{:?} and {:?} are hard links to each other, and both carry data",
                carrier, m.path
            )));
        }
        let carrier = carrier.clone();
        return hardlink(&m.path, &carrier, visit);
    }
    if m.size == 0 && g.seen < nlink {
        // The data comes with a later member of the group.
        g.held.push(m.path);
        return Ok(Flow::Continue);
    }
    // The member with the data (or the last of a group of empty files).
    g.carrier = Some(m.path.clone());
    let held = std::mem::take(&mut g.held);
    if pass_file(r, &m.path, kind, m.size, visit)? == Flow::Stop {
        return Ok(Flow::Stop);
    }
    for h in &held {
        if hardlink(h, &m.path, visit)? == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
    Ok(Flow::Continue)
}

fn pass_file<R: Read>(
    r: &mut Pos<R>,
    path: &str,
    kind: EntryKind,
    size: u64,
    visit: &mut Visitor<'_>,
) -> Result<Flow, WalkError> {
    let mut data = Data {
        inner: r,
        left: size,
        entry: path,
    };
    let flow = visit(RawEntry {
        path,
        kind,
        link: None,
        size,
        data: &mut data,
    })?;
    if flow == Flow::Continue {
        // Whatever the visitor left unread.
        io::copy(&mut data, &mut io::sink()).map_err(WalkError::Read)?;
    }
    Ok(flow)
}

fn hardlink(path: &str, target: &str, visit: &mut Visitor<'_>) -> Result<Flow, WalkError> {
    Ok(visit(RawEntry {
        path,
        kind: EntryKind::Hardlink,
        link: Some(target),
        size: 0,
        data: &mut io::empty(),
    })?)
}

/// The rest of a newc header after its magic; `None` for the trailer.
fn read_newc<R: Read>(r: &mut Pos<R>, count: u64) -> Result<Option<Member>, WalkError> {
    const FIELDS: [&str; 13] = [
        "ino",
        "mode",
        "uid",
        "gid",
        "nlink",
        "mtime",
        "filesize",
        "devmajor",
        "devminor",
        "rdevmajor",
        "rdevminor",
        "namesize",
        "check",
    ];
    let mut raw = [0u8; 104];
    let n = read_full(r, &mut raw).map_err(WalkError::Read)?;
    if n < raw.len() {
        return Err(WalkError::NoTrailer(format!(
            "the archive ends inside the header of entry {count}"
        )));
    }
    let mut f = [0u32; 13];
    for (i, chunk) in raw.chunks_exact(8).enumerate() {
        f[i] = hex8(chunk).ok_or_else(|| {
            WalkError::Bad(format!(
                "entry {count}: cpio header field {} is {:?}, not 8 hex digits",
                FIELDS[i],
                String::from_utf8_lossy(chunk)
            ))
        })?;
    }
    let [ino, mode, _, _, nlink, _, size, devmajor, devminor, _, _, namesize, _] = f;
    if namesize == 0 || namesize > MAX_NAME {
        return Err(WalkError::Bad(format!(
            "entry {count}: name of {namesize} bytes (at most {MAX_NAME})"
        )));
    }
    let mut name = vec![0u8; namesize as usize];
    if read_full(r, &mut name).map_err(WalkError::Read)? < name.len() {
        return Err(WalkError::NoTrailer(format!(
            "the archive ends inside the name of entry {count}"
        )));
    }
    if name.pop() != Some(0) || name.contains(&0) {
        return Err(WalkError::Bad(format!(
            "entry {count}: name {:?} is not one NUL-terminated string",
            String::from_utf8_lossy(&name)
        )));
    }
    skip_pad(r, 4).map_err(|e| eof_as_no_trailer(e, count))?;
    let path = String::from_utf8_lossy(&name).into_owned();
    if path == TRAILER {
        return Ok(None);
    }
    let group = (mode & S_IFMT == S_IFREG && nlink > 1).then_some((
        (
            u64::from(devmajor) << 32 | u64::from(devminor),
            u64::from(ino),
        ),
        u64::from(nlink),
    ));
    Ok(Some(Member {
        path,
        mode,
        size: u64::from(size),
        group,
    }))
}

/// The rest of a stripped header after its magic; `None` for the end marker.
fn read_stripped<R: Read>(
    r: &mut Pos<R>,
    files: &[IndexedFile],
    count: u64,
) -> Result<Option<Member>, WalkError> {
    let mut raw = [0u8; 8];
    if read_full(r, &mut raw).map_err(WalkError::Read)? < raw.len() {
        return Err(WalkError::NoTrailer(format!(
            "the archive ends inside the header of entry {count}"
        )));
    }
    let fx = hex8(&raw).ok_or_else(|| {
        WalkError::Bad(format!(
            "entry {count}: stripped cpio header {:?} is not 8 hex digits",
            String::from_utf8_lossy(&raw)
        ))
    })?;
    skip_pad(r, 4).map_err(|e| eof_as_no_trailer(e, count))?;
    if fx == u32::MAX {
        return Ok(None);
    }
    let f = files.get(fx as usize).ok_or_else(|| {
        WalkError::Bad(format!(
            "entry {count} names file #{fx}, but the header lists {} files",
            files.len()
        ))
    })?;
    Ok(Some(Member {
        path: f.path.clone(),
        mode: f.mode,
        size: f.data_size,
        group: f.link_group,
    }))
}

/// Skips to the next multiple of `align` in the stream.
fn skip_pad<R: Read>(r: &mut Pos<R>, align: u64) -> io::Result<()> {
    let pad = (align - r.pos % align) % align;
    let mut buf = [0u8; 4];
    let buf = &mut buf[..pad as usize];
    if read_full(r, buf)? < buf.len() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

fn eof_as_no_trailer(e: io::Error, count: u64) -> WalkError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        WalkError::NoTrailer(format!("the archive ends after {}", entries(count)))
    } else {
        WalkError::Read(e)
    }
}

fn entries(n: u64) -> String {
    if n == 1 {
        "1 entry".into()
    } else {
        format!("{n} entries")
    }
}

/// Pure: 8 ASCII hex digits.
fn hex8(b: &[u8]) -> Option<u32> {
    if b.len() != 8 || !b.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appends a newc entry (no validation, so tests can write anything).
    fn newc_into(out: &mut Vec<u8>, name: &str, mode: u32, nlink: u32, ino: u32, data: &[u8]) {
        out.extend_from_slice(NEWC);
        let namesize = name.len() as u32 + 1;
        for v in [
            ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            1,
            0,
            0,
            namesize,
            0,
        ] {
            out.extend_from_slice(format!("{v:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }

    fn archive(entries: &[(&str, u32, u32, u32, &[u8])], trailer: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, mode, nlink, ino, data) in entries {
            newc_into(&mut out, name, *mode, *nlink, *ino, data);
        }
        if trailer {
            newc_into(&mut out, TRAILER, 0, 1, 0, b"");
        }
        out
    }

    type Seen = Vec<(String, EntryKind, Option<String>, Vec<u8>)>;

    fn run(bytes: &[u8], files: &[IndexedFile]) -> Result<Seen, WalkError> {
        let mut seen = Vec::new();
        walk(bytes, files, &Limits::default(), &mut |e: RawEntry<'_>| {
            let mut d = Vec::new();
            e.data.read_to_end(&mut d).map_err(VisitError::Read)?;
            seen.push((e.path.to_string(), e.kind, e.link.map(Into::into), d));
            Ok(Flow::Continue)
        })?;
        Ok(seen)
    }

    #[test]
    fn reads_files_dirs_symlinks() {
        let a = archive(
            &[
                ("./usr/bin", 0o40755, 2, 1, b""),
                ("./usr/bin/qemu-arm-static", 0o100755, 1, 2, b"\x7fELF-ish"),
                ("./usr/bin/qemu-armhf", 0o120777, 1, 3, b"qemu-arm-static"),
            ],
            true,
        );
        let seen = run(&a, &[]).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1].3, b"\x7fELF-ish");
        assert_eq!(seen[2].1, EntryKind::Symlink);
        assert_eq!(seen[2].2.as_deref(), Some("qemu-arm-static"));
    }

    #[test]
    fn hard_link_groups_come_after_their_data() {
        let a = archive(
            &[
                ("./a", 0o100755, 3, 7, b""),
                ("./b", 0o100755, 3, 7, b""),
                ("./c", 0o100755, 3, 7, b"data"),
                ("./e1", 0o100644, 2, 9, b""),
                ("./e2", 0o100644, 2, 9, b""),
            ],
            true,
        );
        let seen = run(&a, &[]).unwrap();
        let got: Vec<_> = seen
            .iter()
            .map(|(p, k, l, d)| (p.as_str(), *k, l.as_deref(), d.len()))
            .collect();
        assert_eq!(
            got,
            [
                ("./c", EntryKind::File, None, 4),
                ("./a", EntryKind::Hardlink, Some("./c"), 0),
                ("./b", EntryKind::Hardlink, Some("./c"), 0),
                ("./e2", EntryKind::File, None, 0),
                ("./e1", EntryKind::Hardlink, Some("./e2"), 0),
            ]
        );
        let broken = archive(&[("./a", 0o100755, 2, 7, b"")], true);
        assert!(matches!(run(&broken, &[]), Err(WalkError::Bad(m)) if m.contains("never comes")));
        let twice = archive(
            &[("./a", 0o100755, 2, 7, b"x"), ("./b", 0o100755, 2, 7, b"y")],
            true,
        );
        assert!(matches!(run(&twice, &[]), Err(WalkError::Bad(m)) if m.contains("both carry")));
    }

    #[test]
    fn stripped_entries_use_the_header() {
        let files = vec![
            IndexedFile {
                path: "./usr/bin".into(),
                mode: 0o40755,
                data_size: 0,
                link_group: None,
            },
            IndexedFile {
                path: "./usr/bin/qemu-x-static".into(),
                mode: 0o100755,
                data_size: 5,
                link_group: None,
            },
        ];
        let mut a = Vec::new();
        for (fx, data) in [(1u32, &b"hello"[..]), (0, b"")] {
            a.extend_from_slice(STRIPPED);
            a.extend_from_slice(format!("{fx:08x}").as_bytes());
            while !a.len().is_multiple_of(4) {
                a.push(0);
            }
            a.extend_from_slice(data);
            while !a.len().is_multiple_of(4) {
                a.push(0);
            }
        }
        let mut with_trailer = a.clone();
        newc_into(&mut with_trailer, TRAILER, 0, 1, 0, b"");
        let seen = run(&with_trailer, &files).unwrap();
        assert_eq!(seen[0].0, "./usr/bin/qemu-x-static");
        assert_eq!(seen[0].3, b"hello");
        assert_eq!(seen[1].1, EntryKind::Dir);
        let mut bad = a.clone();
        bad.extend_from_slice(b"07070X00000009\0\0");
        assert!(matches!(run(&bad, &files), Err(WalkError::Bad(m)) if m.contains("file #9")));
    }

    #[test]
    fn structure_errors() {
        let a = archive(&[("./x", 0o100644, 1, 1, b"abc")], false);
        assert!(
            matches!(run(&a, &[]), Err(WalkError::NoTrailer(m)) if m.contains("after 1 entry"))
        );
        let cut = archive(&[("./x", 0o100644, 1, 1, b"abcdef")], true);
        let err = run(&cut[..120], &[]).unwrap_err();
        assert!(
            matches!(&err, WalkError::Visit(VisitError::Read(e)) if e.to_string().contains("inside the data of ./x")),
            "{err:?}"
        );
        let mut magic = a.clone();
        magic[5] = b'7';
        assert!(matches!(run(&magic, &[]), Err(WalkError::Bad(m)) if m.contains("bad cpio magic")));
        let mut field = a.clone();
        field[20] = b'g';
        assert!(matches!(run(&field, &[]), Err(WalkError::Bad(m)) if m.contains("field mode")));
        let many = archive(
            &[("./a", 0o100644, 1, 1, b""), ("./b", 0o100644, 1, 2, b"")],
            true,
        );
        let limits = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        let r = walk(&many[..], &[], &limits, &mut |_| Ok(Flow::Continue));
        assert!(matches!(r, Err(WalkError::TooMany)));
    }
}
