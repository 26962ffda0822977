//! Opening an rpm, step by step in file order: the lead, the signature header, the main
//! header (its digest checked), where the payload ends, and what the payload is. Each step
//! reads on from where the last one stopped and names what is wrong in rpm's own terms.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::header::{
    self, hex_bytes, read_full, tag, Header, Lead, ReadError, LEAD_LEN, LEAD_MAGIC,
};
use super::{Payload, RpmHeader};
use crate::compression::Compression;
use crate::digest::Hasher;
use crate::error::Error;

pub(super) type Reader = BufReader<File>;

/// The errors of one file, each naming it.
#[derive(Clone, Copy)]
pub(super) struct Fail<'a> {
    pub path: &'a Path,
}

impl<'a> Fail<'a> {
    pub fn bad(self, part: &'static str, detail: String) -> Error {
        Error::BadRpm {
            path: self.path.to_path_buf(),
            part,
            detail,
        }
    }

    pub fn truncated(self, member: &str, detail: String) -> Error {
        Error::Truncated {
            path: self.path.to_path_buf(),
            member: member.to_string(),
            detail,
        }
    }

    pub fn unsupported(self, what: String) -> Error {
        Error::UnsupportedFormat {
            path: self.path.to_path_buf(),
            what,
        }
    }

    pub fn io(self, e: std::io::Error) -> Error {
        Error::io("cannot read", self.path, e)
    }

    /// A header's read error: cut short (`member`), malformed (`part`) or I/O.
    fn header(self, part: &'static str, member: &'static str) -> impl Fn(ReadError) -> Error + 'a {
        move |e| match e {
            ReadError::Truncated(d) => self.truncated(member, d),
            ReadError::Bad(d) => self.bad(part, d),
            ReadError::Io(e) => self.io(e),
        }
    }
}

/// The 96-byte lead: a binary package of format 3.x or 4.x with a header-style signature.
pub(super) fn lead(r: &mut Reader, fail: Fail<'_>) -> Result<Lead, Error> {
    let mut lead = [0u8; LEAD_LEN];
    let n = read_full(r, &mut lead).map_err(|e| fail.io(e))?;
    let short = || {
        fail.truncated(
            "rpm lead",
            format!("the file has {n} of the lead's {LEAD_LEN} bytes"),
        )
    };
    if n < LEAD_MAGIC.len() {
        return Err(short());
    }
    if lead[..4] != LEAD_MAGIC {
        let detail = format!(
            "bad magic {} (an rpm starts with {})",
            hex_bytes(&lead[..4]),
            hex_bytes(&LEAD_MAGIC)
        );
        return Err(fail.bad("lead", detail));
    }
    if n < LEAD_LEN {
        return Err(short());
    }
    let lead = header::parse_lead(&lead);
    if !matches!(lead.major, 3 | 4) {
        let detail = format!(
            "package format {}.{} (qus reads 3.x, written by rpm 4, and 4.x, by rpm 6)",
            lead.major, lead.minor
        );
        return Err(fail.bad("lead", detail));
    }
    if lead.kind == 1 {
        return Err(fail.unsupported("a source rpm".into()));
    }
    if lead.signature_type != 5 {
        let detail = format!(
            "signature type {} (every rpm since 3.0 has 5, a header)",
            lead.signature_type
        );
        return Err(fail.bad("lead", detail));
    }
    Ok(lead)
}

/// The signature header and its padding to 8 bytes; `left` is what the file has after the
/// lead. Returns the header and how many bytes it took.
pub(super) fn signature(r: &mut Reader, left: u64, fail: Fail<'_>) -> Result<(Header, u64), Error> {
    let (sig, sig_len) = Header::read(r, left, None)
        .map_err(fail.header("signature header", "rpm signature header"))?;
    let pad = (8 - sig_len % 8) % 8;
    let mut zeros = [0u8; 8];
    let got = read_full(r, &mut zeros[..pad as usize]).map_err(|e| fail.io(e))?;
    if (got as u64) < pad {
        return Err(fail.truncated(
            "rpm signature header",
            "the file ends in the padding after it".into(),
        ));
    }
    Ok((sig, sig_len + pad))
}

/// The main header, kept as read (its digest and signatures are over these bytes), checked
/// against the signature header's sha256 when it has one.
pub(super) fn main_header(
    r: &mut Reader,
    left: u64,
    sig: &Header,
    fail: Fail<'_>,
) -> Result<(Header, Vec<u8>), Error> {
    let mut blob = Vec::new();
    let (hdr, _) =
        Header::read(r, left, Some(&mut blob)).map_err(fail.header("header", "rpm header"))?;
    let expected = sig
        .string(tag::SIG_SHA256)
        .map_err(|e| fail.bad("signature header", e))?;
    if let Some(expected) = expected {
        let mut hasher = Hasher::default();
        hasher.update(&blob);
        let actual = hasher.finish().to_hex();
        if !expected.eq_ignore_ascii_case(&actual) {
            return Err(Error::RpmDigestMismatch {
                path: fail.path.to_path_buf(),
                what: "header",
                expected,
                actual,
            });
        }
    }
    Ok((hdr, blob))
}

/// Where the payload ends in a file of `len` bytes whose main header starts at
/// `header_start` and whose payload starts at `payload_start`: the signature says
/// header+payload (v4), a v6 header says the payload alone. A file longer or shorter than
/// that is refused.
pub(super) fn payload_end(
    sig: &Header,
    hdr: &Header,
    (header_start, payload_start, len): (u64, u64, u64),
    fail: Fail<'_>,
) -> Result<u64, Error> {
    let sig_field = |e: String| fail.bad("signature header", e);
    let declared_end = match (
        sig.number(tag::SIG_LONGSIZE).map_err(sig_field)?,
        sig.number(tag::SIG_SIZE).map_err(sig_field)?,
        hdr.number(tag::PAYLOADSIZE)
            .map_err(|e| fail.bad("header", e))?,
    ) {
        (Some(s), _, _) | (None, Some(s), _) => Some(header_start.saturating_add(s)),
        (None, None, Some(p)) => Some(payload_start.saturating_add(p)),
        (None, None, None) => None,
    };
    match declared_end {
        Some(end) if end > len => Err(fail.truncated(
            "rpm payload",
            format!(
                "the headers say the package is {end} bytes, the file has {len} ({} missing)",
                end - len
            ),
        )),
        Some(end) if end < payload_start => Err(fail.bad(
            "signature header",
            format!("its size {end} ends inside the header"),
        )),
        Some(end) if end < len => Err(fail.bad(
            "payload",
            format!(
                "{} bytes of unknown data follow the {end} bytes the headers describe",
                len - end
            ),
        )),
        _ => Ok(len),
    }
}

/// Refuses what qus does not read: source and delta rpms, other OSes and payload formats,
/// block-aligned payloads.
pub(super) fn supported(hdr: &Header, header: &RpmHeader, fail: Fail<'_>) -> Result<(), Error> {
    if hdr.has(tag::SOURCEPACKAGE) {
        return Err(fail.unsupported("a source rpm".into()));
    }
    if !header.os.eq_ignore_ascii_case("linux") {
        return Err(fail.unsupported(format!("an rpm for OS {:?}", header.os)));
    }
    match header.payload_format.as_str() {
        "cpio" => {}
        "drpm" => return Err(fail.unsupported("a delta rpm (payload format drpm)".into())),
        f => return Err(fail.unsupported(format!("rpm payload format {f:?}"))),
    }
    let requires = hdr
        .strings(tag::REQUIRENAME)
        .map_err(|e| fail.bad("header", e))?;
    if requires
        .iter()
        .flatten()
        .any(|r| r == "rpmlib(PayloadAlignment)")
    {
        return Err(fail.unsupported(
            "a block-aligned rpm payload (rpmlib(PayloadAlignment), rpm ≥ 6.2)".into(),
        ));
    }
    Ok(())
}

/// The payload's compression, as `PAYLOADCOMPRESSOR` says; without one, from its first
/// bytes (`r` is left where it was).
pub(super) fn payload(
    r: &mut Reader,
    header: &RpmHeader,
    fail: Fail<'_>,
) -> Result<Payload, Error> {
    Ok(match header.payload_compressor.as_deref() {
        Some("zstd") => Payload::Plain(Compression::Zstd),
        Some("xz") => Payload::Plain(Compression::Xz),
        Some("gzip") => Payload::Plain(Compression::Gzip),
        Some("lzma") => Payload::Lzma,
        Some("identity") => Payload::Plain(Compression::None),
        // Old rpms leave it out and mean gzip; rpm's gzip reader also passes an
        // uncompressed (`ufdio`) payload through, which writes no compressor either.
        None => {
            let mut first = [0u8; 2];
            let n = read_full(r, &mut first).map_err(|e| fail.io(e))?;
            r.seek_relative(-(n as i64)).map_err(|e| fail.io(e))?;
            if first == [0x1f, 0x8b] {
                Payload::Plain(Compression::Gzip)
            } else {
                Payload::Plain(Compression::None)
            }
        }
        Some(other) => {
            return Err(Error::UnknownPayloadCompressor {
                path: fail.path.to_path_buf(),
                compressor: other.to_string(),
            })
        }
    })
}
