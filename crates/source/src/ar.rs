//! A minimal, streaming reader for the `ar` container that wraps a .deb.
//!
//! dpkg's ar use is narrow (short names, no symbol table), so a few dozen lines suffice and
//! give precise errors: every member header is checked against the file's real length
//! before its data is touched, which is how a truncated download is told apart from a
//! corrupt one, and which member it is cut in.

use std::io::{self, Read};

const MAGIC: &[u8; 8] = b"!<arch>\n";
const HEADER_LEN: u64 = 60;

/// What can go wrong at the ar layer; the deb reader adds the file name.
#[derive(Debug)]
pub(crate) enum ArError {
    NotAr,
    /// A header or member runs past the end of the file.
    Truncated {
        member: String,
        detail: String,
    },
    BadHeader {
        offset: u64,
        detail: String,
    },
    Io(io::Error),
}

impl From<io::Error> for ArError {
    fn from(e: io::Error) -> Self {
        ArError::Io(e)
    }
}

/// One member's header.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub name: String,
    pub size: u64,
}

/// Streams members in order; the data of the current member is read through
/// [`ArReader::data`], and whatever is left unread is skipped by the next
/// [`ArReader::next_member`].
pub(crate) struct ArReader<R> {
    inner: R,
    len: u64,
    pos: u64,
    /// Unread bytes of the current member, then its padding byte.
    left: u64,
    pad: u64,
}

impl<R: Read> ArReader<R> {
    /// `len` is the total length of the file, used to detect truncation up front.
    pub(crate) fn new(mut inner: R, len: u64) -> Result<Self, ArError> {
        let mut magic = [0u8; 8];
        let got = read_full(&mut inner, &mut magic)?;
        if got < 8 || &magic != MAGIC {
            return Err(ArError::NotAr);
        }
        Ok(ArReader {
            inner,
            len,
            pos: 8,
            left: 0,
            pad: 0,
        })
    }

    /// The next member's header, or `None` at the end of the archive.
    pub(crate) fn next_member(&mut self, previous: &str) -> Result<Option<Member>, ArError> {
        let skip = self.left + self.pad;
        if skip > 0 {
            let skipped = io::copy(&mut (&mut self.inner).take(skip), &mut io::sink())?;
            self.pos += skipped;
            // The trailing padding byte of the last member may be missing; dpkg tolerates that.
            if skipped < self.left {
                return Err(ArError::Truncated {
                    member: previous.to_string(),
                    detail: format!("file ends {} bytes early", self.left - skipped),
                });
            }
            self.left = 0;
            self.pad = 0;
        }
        if self.pos >= self.len {
            return Ok(None);
        }
        let offset = self.pos;
        let mut raw = [0u8; HEADER_LEN as usize];
        let got = read_full(&mut self.inner, &mut raw)?;
        self.pos += got as u64;
        if (got as u64) < HEADER_LEN {
            // Only a newline of padding may follow the last member.
            if got == 1 && raw[0] == b'\n' {
                return Ok(None);
            }
            return Err(ArError::Truncated {
                member: format!("the header after {previous}"),
                detail: format!("{got} of {HEADER_LEN} header bytes present"),
            });
        }
        let member = parse_header(&raw).map_err(|detail| ArError::BadHeader { offset, detail })?;
        let available = self.len.saturating_sub(self.pos);
        if member.size > available {
            return Err(ArError::Truncated {
                member: member.name.clone(),
                detail: format!(
                    "header says {} bytes, the file has {available} left",
                    member.size
                ),
            });
        }
        self.left = member.size;
        self.pad = member.size % 2;
        Ok(Some(member))
    }

    /// Reads the current member's data.
    pub(crate) fn data(&mut self) -> MemberData<'_, R> {
        MemberData { ar: self }
    }
}

/// The data of the current member; ends (EOF) where the member does.
pub(crate) struct MemberData<'a, R> {
    ar: &'a mut ArReader<R>,
}

impl<R: Read> Read for MemberData<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ar.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.ar.left).unwrap_or(usize::MAX));
        let n = self.ar.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("file ends {} bytes before the member does", self.ar.left),
            ));
        }
        self.ar.left -= n as u64;
        self.ar.pos += n as u64;
        Ok(n)
    }
}

/// Pure: the 60-byte header `name[16] mtime[12] uid[6] gid[6] mode[8] size[10] "`\n"`.
fn parse_header(raw: &[u8; 60]) -> Result<Member, String> {
    if &raw[58..60] != b"`\n" {
        return Err("bad member header terminator".into());
    }
    let name_field = std::str::from_utf8(&raw[0..16])
        .map_err(|_| "member name is not text".to_string())?
        .trim_end_matches(' ');
    // GNU ar ends names with '/'; dpkg does not. Both are accepted.
    let name = name_field.strip_suffix('/').unwrap_or(name_field);
    if name.is_empty() || name.starts_with('/') {
        return Err(format!("unsupported member name {name_field:?}"));
    }
    let size_field = std::str::from_utf8(&raw[48..58])
        .map_err(|_| "member size is not text".to_string())?
        .trim_end_matches(' ');
    let size = size_field
        .parse::<u64>()
        .map_err(|_| format!("member {name:?} has a bad size field {size_field:?}"))?;
    Ok(Member {
        name: name.to_string(),
        size,
    })
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, size: usize) -> Vec<u8> {
        let h = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
            0, 0, 0, "100644"
        );
        assert_eq!(h.len(), 60);
        h.into_bytes()
    }

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for (name, data) in members {
            out.extend(header(name, data.len()));
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    #[test]
    fn reads_members_and_skips_unread_data() {
        let a = archive(&[("debian-binary", b"2.0\n"), ("odd/", b"abc"), ("x", b"yz")]);
        let mut ar = ArReader::new(&a[..], a.len() as u64).unwrap();
        let m = ar.next_member("").unwrap().unwrap();
        assert_eq!((m.name.as_str(), m.size), ("debian-binary", 4));
        let m = ar.next_member(&m.name).unwrap().unwrap();
        assert_eq!(m.name, "odd");
        let mut s = String::new();
        ar.data().read_to_string(&mut s).unwrap();
        assert_eq!(s, "abc");
        let m = ar.next_member(&m.name).unwrap().unwrap();
        assert_eq!(m.name, "x");
        assert!(ar.next_member("x").unwrap().is_none());
    }

    #[test]
    fn detects_truncation_from_the_header() {
        let a = archive(&[("debian-binary", b"2.0\n"), ("data.tar", &[0u8; 100])]);
        let cut = &a[..a.len() - 10];
        let mut ar = ArReader::new(cut, cut.len() as u64).unwrap();
        ar.next_member("").unwrap();
        match ar.next_member("debian-binary") {
            Err(ArError::Truncated { member, .. }) => assert_eq!(member, "data.tar"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_non_ar() {
        assert!(matches!(
            ArReader::new(&b"hello world"[..], 11),
            Err(ArError::NotAr)
        ));
    }

    #[test]
    fn rejects_bad_size() {
        let mut a = MAGIC.to_vec();
        let mut h = header("x", 1);
        h[48..58].copy_from_slice(b"12z4      ");
        a.extend(h);
        let mut ar = ArReader::new(&a[..], a.len() as u64).unwrap();
        assert!(matches!(ar.next_member(""), Err(ArError::BadHeader { .. })));
    }
}
