//! The rpm lead and the header structure (used twice: signature header and main header).
//!
//! A header is an intro (8 bytes of magic, index length `il`, data length `dl`), `il` index
//! entries of 16 bytes (tag, type, offset, count, all big-endian) and a `dl`-byte data store.
//! Every entry is checked against the data store when the header is read, so the accessors
//! below can slice without further bounds worries; both lengths are checked against what is
//! left of the file before anything is allocated, so a hostile header cannot make qus
//! allocate more than the file's size.

use std::io::{self, Read};

/// The first four bytes of every rpm.
pub(crate) const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
/// The lead is always this long.
pub(crate) const LEAD_LEN: usize = 96;
/// The magic (and 4 reserved zero bytes) that starts a header.
const HEADER_MAGIC: [u8; 8] = [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0];
/// rpm's own limits (`hdrchkTags`, `hdrchkData`).
const MAX_INDEX: u32 = 0xffff;
const MAX_DATA: u32 = 256 << 20;

/// Tag numbers qus reads. Signature-header tags first (their numbers clash with the main
/// header's, so they only ever go with the signature header).
pub(crate) mod tag {
    pub const SIG_SIZE: u32 = 1000;
    pub const SIG_LONGSIZE: u32 = 270;
    pub const SIG_SHA256: u32 = 273;
    /// OpenPGP signatures of the main header alone (`DSAHEADER`: DSA and EdDSA keys;
    /// `RSAHEADER`: RSA keys), one binary signature packet each.
    pub const SIG_DSA: u32 = 267;
    pub const SIG_RSA: u32 = 268;
    /// rpm 6: any number of header signatures, base64 signature packets.
    pub const SIG_OPENPGP: u32 = 278;
    /// Legacy OpenPGP signatures of header and payload together.
    pub const SIG_PGP: u32 = 1002;
    pub const SIG_GPG: u32 = 1005;

    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const OS: u32 = 1021;
    pub const ARCH: u32 = 1022;
    pub const OLDFILENAMES: u32 = 1027;
    pub const FILESIZES: u32 = 1028;
    pub const FILEMODES: u32 = 1030;
    pub const SOURCERPM: u32 = 1044;
    pub const REQUIRENAME: u32 = 1049;
    pub const FILEDEVICES: u32 = 1095;
    pub const FILEINODES: u32 = 1096;
    pub const SOURCEPACKAGE: u32 = 1106;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const PAYLOADFORMAT: u32 = 1124;
    pub const PAYLOADCOMPRESSOR: u32 = 1125;
    pub const PAYLOADFLAGS: u32 = 1126;
    pub const LONGFILESIZES: u32 = 5008;
    pub const PAYLOADDIGEST: u32 = 5092;
    pub const PAYLOADDIGESTALGO: u32 = 5093;
    pub const PAYLOADSIZE: u32 = 5112;
    pub const RPMFORMAT: u32 = 5114;
    pub const SOURCENEVR: u32 = 5120;
}

/// `PGPHASHALGO_SHA256`, the only payload digest algorithm rpm writes.
pub(crate) const DIGEST_SHA256: u64 = 8;

/// What the 96-byte lead says (only identification; rpm ignores the rest too).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lead {
    pub major: u8,
    pub minor: u8,
    /// 0 binary, 1 source.
    pub kind: u16,
    /// 5 (`RPMSIGTYPE_HEADERSIG`) in every rpm since 3.0.
    pub signature_type: u16,
}

/// Pure: the fields of a lead whose magic was checked.
pub(crate) fn parse_lead(b: &[u8; LEAD_LEN]) -> Lead {
    debug_assert_eq!(b[..4], LEAD_MAGIC);
    Lead {
        major: b[4],
        minor: b[5],
        kind: u16::from_be_bytes([b[6], b[7]]),
        signature_type: u16::from_be_bytes([b[78], b[79]]),
    }
}

/// Why a header could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file ends before the header does.
    Truncated(String),
    /// The bytes are not a valid header.
    Bad(String),
    /// The OS failed to read.
    Io(io::Error),
}

/// The data types of header entries.
mod ty {
    pub const CHAR: u32 = 1;
    pub const INT8: u32 = 2;
    pub const INT16: u32 = 3;
    pub const INT32: u32 = 4;
    pub const INT64: u32 = 5;
    pub const STRING: u32 = 6;
    pub const BIN: u32 = 7;
    pub const STRING_ARRAY: u32 = 8;
    pub const I18NSTRING: u32 = 9;
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    ty: u32,
    offset: usize,
    count: usize,
}

/// A header read and checked.
#[derive(Debug, Default)]
pub(crate) struct Header {
    entries: Vec<Entry>,
    data: Vec<u8>,
}

/// Reads up to `buf.len()` bytes; fewer only at the end of the input.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Header {
    /// Reads one header from `r`, with `left` bytes left in the file; returns it and its
    /// size on disk. The bytes read are also appended to `raw`, if given: they are what the
    /// header's digests and signatures are computed over.
    pub(crate) fn read<R: Read>(
        r: &mut R,
        left: u64,
        raw: Option<&mut Vec<u8>>,
    ) -> Result<(Header, u64), ReadError> {
        let mut intro = [0u8; 16];
        let n = read_full(r, &mut intro).map_err(ReadError::Io)?;
        if n >= 8 && intro[..8] != HEADER_MAGIC {
            return Err(ReadError::Bad(format!(
                "bad header magic {} (expected {})",
                hex_bytes(&intro[..8]),
                hex_bytes(&HEADER_MAGIC)
            )));
        }
        if n < 16 {
            return Err(ReadError::Truncated(format!(
                "the file ends {n} bytes into the 16-byte header intro"
            )));
        }
        let il = u32::from_be_bytes(intro[8..12].try_into().expect("4 bytes"));
        let dl = u32::from_be_bytes(intro[12..16].try_into().expect("4 bytes"));
        if il == 0 || il > MAX_INDEX {
            return Err(ReadError::Bad(format!(
                "{il} index entries (rpm allows 1 to {MAX_INDEX})"
            )));
        }
        if dl > MAX_DATA {
            return Err(ReadError::Bad(format!(
                "a data store of {dl} bytes (rpm allows at most {MAX_DATA})"
            )));
        }
        let body = u64::from(il) * 16 + u64::from(dl);
        let avail = left.saturating_sub(16);
        if body > avail {
            return Err(ReadError::Truncated(format!(
                "its {il} index entries and {dl} bytes of data need {body} bytes, the file has {avail} left"
            )));
        }
        let mut index = vec![0u8; il as usize * 16];
        let mut data = vec![0u8; dl as usize];
        for buf in [&mut index, &mut data] {
            let n = read_full(r, buf).map_err(ReadError::Io)?;
            if n < buf.len() {
                // The file shrank under us.
                return Err(ReadError::Truncated(format!(
                    "the file ends {} bytes early",
                    buf.len() - n
                )));
            }
        }
        if let Some(raw) = raw {
            raw.extend_from_slice(&intro);
            raw.extend_from_slice(&index);
            raw.extend_from_slice(&data);
        }
        let mut entries = Vec::with_capacity(il as usize);
        for (i, raw) in index.chunks_exact(16).enumerate() {
            let word = |k: usize| u32::from_be_bytes(raw[k..k + 4].try_into().expect("4 bytes"));
            let e = Entry {
                tag: word(0),
                ty: word(4),
                offset: word(8) as usize,
                count: word(12) as usize,
            };
            check_entry(&e, &data).map_err(|what| {
                ReadError::Bad(format!(
                    "index entry {i} (tag {}, type {}, offset {}, count {}): {what}",
                    e.tag, e.ty, e.offset as u32 as i32, e.count
                ))
            })?;
            entries.push(e);
        }
        Ok((Header { entries, data }, 16 + body))
    }

    fn find(&self, tag: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    /// Whether the header has this tag.
    pub(crate) fn has(&self, tag: u32) -> bool {
        self.find(tag).is_some()
    }

    /// The strings of a string-typed tag (one for STRING).
    pub(crate) fn strings(&self, tag: u32) -> Result<Option<Vec<String>>, String> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        if !matches!(e.ty, ty::STRING | ty::STRING_ARRAY | ty::I18NSTRING) {
            return Err(format!("tag {tag} has type {}, not a string type", e.ty));
        }
        let mut out = Vec::with_capacity(e.count);
        let mut p = e.offset;
        for _ in 0..e.count {
            // check_entry proved every string is terminated inside the data.
            let len = self.data[p..]
                .iter()
                .position(|&b| b == 0)
                .expect("checked when read");
            let s = std::str::from_utf8(&self.data[p..p + len])
                .map_err(|_| format!("tag {tag} holds a string that is not UTF-8"))?;
            out.push(s.to_string());
            p += len + 1;
        }
        Ok(Some(out))
    }

    /// The first string of a string-typed tag (the untranslated one for I18NSTRING).
    pub(crate) fn string(&self, tag: u32) -> Result<Option<String>, String> {
        Ok(self.strings(tag)?.and_then(|v| v.into_iter().next()))
    }

    /// The bytes of a BIN tag.
    pub(crate) fn bin(&self, tag: u32) -> Result<Option<&[u8]>, String> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        if e.ty != ty::BIN {
            return Err(format!("tag {tag} has type {}, not BIN", e.ty));
        }
        Ok(Some(&self.data[e.offset..e.offset + e.count]))
    }

    /// The values of an integer-typed tag, widened.
    pub(crate) fn numbers(&self, tag: u32) -> Result<Option<Vec<u64>>, String> {
        let Some(e) = self.find(tag) else {
            return Ok(None);
        };
        let width = match e.ty {
            ty::CHAR | ty::INT8 => 1,
            ty::INT16 => 2,
            ty::INT32 => 4,
            ty::INT64 => 8,
            t => return Err(format!("tag {tag} has type {t}, not an integer type")),
        };
        let bytes = &self.data[e.offset..e.offset + e.count * width];
        Ok(Some(
            bytes
                .chunks_exact(width)
                .map(|c| c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
                .collect(),
        ))
    }

    /// The first value of an integer-typed tag.
    pub(crate) fn number(&self, tag: u32) -> Result<Option<u64>, String> {
        Ok(self.numbers(tag)?.and_then(|v| v.first().copied()))
    }
}

/// Checks that an index entry's data lies inside the data store.
fn check_entry(e: &Entry, data: &[u8]) -> Result<(), String> {
    if e.count == 0 {
        return Err("count 0".into());
    }
    if e.offset >= data.len() {
        return Err(format!("offset outside the {}-byte data store", data.len()));
    }
    let width = match e.ty {
        ty::CHAR | ty::INT8 | ty::BIN => 1,
        ty::INT16 => 2,
        ty::INT32 => 4,
        ty::INT64 => 8,
        ty::STRING | ty::STRING_ARRAY | ty::I18NSTRING => {
            if e.ty == ty::STRING && e.count != 1 {
                return Err("a STRING with a count other than 1".into());
            }
            let mut p = e.offset;
            for k in 0..e.count {
                match data.get(p..).and_then(|d| d.iter().position(|&b| b == 0)) {
                    Some(len) => p += len + 1,
                    None => {
                        return Err(format!(
                            "string {k} is not terminated inside the data store"
                        ))
                    }
                }
            }
            return Ok(());
        }
        t => return Err(format!("unknown type {t}")),
    };
    let end = (e.count as u64)
        .checked_mul(width)
        .and_then(|n| n.checked_add(e.offset as u64));
    match end {
        Some(end) if end <= data.len() as u64 => Ok(()),
        _ => Err(format!(
            "{} values of {width} bytes do not fit the {}-byte data store",
            e.count,
            data.len()
        )),
    }
}

/// `ed ab ee db` style.
pub(crate) fn hex_bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header from (tag, type, count, data) entries, data laid out in order.
    fn build(entries: &[(u32, u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, ty, count, d) in entries {
            for w in [*tag, *ty, data.len() as u32, *count] {
                index.extend(w.to_be_bytes());
            }
            data.extend_from_slice(d);
        }
        let mut out = HEADER_MAGIC.to_vec();
        out.extend((entries.len() as u32).to_be_bytes());
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    #[test]
    fn reads_typed_values() {
        let bytes = build(&[
            (tag::NAME, ty::STRING, 1, b"qemu\0"),
            (tag::BASENAMES, ty::STRING_ARRAY, 2, b"a\0bc\0"),
            (tag::FILEMODES, ty::INT16, 2, &[0x81, 0xed, 0x41, 0xed]),
            (tag::EPOCH, ty::INT32, 1, &[0, 0, 0, 2]),
        ]);
        let (h, len) = Header::read(&mut &bytes[..], bytes.len() as u64, None).unwrap();
        assert_eq!(len, bytes.len() as u64);
        assert_eq!(h.string(tag::NAME).unwrap().unwrap(), "qemu");
        assert_eq!(h.strings(tag::BASENAMES).unwrap().unwrap(), ["a", "bc"]);
        assert_eq!(
            h.numbers(tag::FILEMODES).unwrap().unwrap(),
            [0o100755, 0o40755]
        );
        assert_eq!(h.number(tag::EPOCH).unwrap(), Some(2));
        assert_eq!(h.number(tag::RELEASE).unwrap(), None);
        assert!(h.number(tag::NAME).is_err());
        assert!(h.string(tag::EPOCH).is_err());
    }

    #[test]
    fn refuses_entries_outside_the_data() {
        for (entries, want) in [
            (
                vec![(tag::NAME, ty::STRING, 1, &b"no-nul"[..])],
                "not terminated",
            ),
            (
                vec![(tag::EPOCH, ty::INT32, 2, &[0, 0, 0, 2][..])],
                "do not fit",
            ),
            (vec![(tag::EPOCH, 77, 1, &[0, 0, 0, 2][..])], "unknown type"),
            (
                vec![(tag::NAME, ty::STRING, 2, &b"a\0b\0"[..])],
                "count other than 1",
            ),
        ] {
            let bytes = build(&entries);
            match Header::read(&mut &bytes[..], bytes.len() as u64, None) {
                Err(ReadError::Bad(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn sizes_are_checked_before_allocating() {
        let mut bytes = HEADER_MAGIC.to_vec();
        bytes.extend(1u32.to_be_bytes());
        bytes.extend((200u32 << 20).to_be_bytes());
        match Header::read(&mut &bytes[..], 1 << 20, None) {
            Err(ReadError::Truncated(m)) => assert!(m.contains("need"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut bad = bytes.clone();
        bad[0] = 0;
        assert!(matches!(
            Header::read(&mut &bad[..], 1 << 30, None),
            Err(ReadError::Bad(_))
        ));
        assert!(matches!(
            Header::read(&mut &bytes[..10], 1 << 30, None),
            Err(ReadError::Truncated(_))
        ));
    }
}
