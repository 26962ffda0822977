//! An rpm's OpenPGP header signature, checked against a keyring (Fedora's key, from the
//! config), with the same key rules as a Debian Release ([`Keyring`]).
//!
//! rpm signs the main header as stored (intro, index and data store), and that header holds
//! the sha256 of the compressed payload (`PAYLOADDIGEST`), which the reader checks whenever
//! it reads the payload. A good header signature therefore covers the whole package, but
//! only if that digest is there: an rpm signed without one is refused.
//!
//! Header signatures are in the signature header: `RSAHEADER` (RSA keys), `DSAHEADER` (DSA
//! keys, and EdDSA ones in rpm 4), and rpm 6's `OPENPGP` (base64 packets, several allowed).
//! The legacy header+payload signatures (`PGP`, `GPG`) are not checked: rpm has written a
//! header signature beside them since 4.1, and it is what Fedora's rpms carry.
//!
//! A key is judged as it was when it signed, not now: a pinned rpm must stay buildable
//! after the key that signed it expires. A revoked key is refused whenever it was revoked.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use pgp::composed::{Deserializable as _, DetachedSignature};
use pgp::packet::Signature;

use super::header::{tag, Header};
use super::Rpm;
use crate::debian_index::signature::Verdict;
use crate::debian_index::{Keyring, Signer};
use crate::error::{Error, Result};
use crate::limits::Limits;

/// Opens the rpm at `path` (lead and headers only) and checks that its header is signed by
/// a key of `keyring`; returns who signed it. `now` dates the check (a signature dated
/// after it is refused).
pub fn verify_signature(path: &Path, keyring: &Keyring, now: SystemTime) -> Result<Signer> {
    Rpm::open(path, &Limits::default())?.verify_signature(keyring, now)
}

impl Rpm {
    /// Checks that the header is signed by a key of `keyring` (see [`verify_signature`]).
    pub fn verify_signature(&self, keyring: &Keyring, now: SystemTime) -> Result<Signer> {
        let bad = |detail: String| Error::RpmSignature {
            path: self.path.clone(),
            keyring: keyring.path().to_path_buf(),
            detail,
        };
        let sigs = header_signatures(&self.signature_header)
            .map_err(|e| bad(format!("its signature header is malformed: {e}")))?;
        if sigs.is_empty() {
            let legacy = [tag::SIG_PGP, tag::SIG_GPG]
                .iter()
                .any(|t| self.signature_header.has(*t));
            return Err(Error::RpmUnsigned {
                path: self.path.clone(),
                keyring: keyring.path().to_path_buf(),
                detail: if legacy {
                    "; it has only a legacy header+payload signature (rpm tag 1002/1005), \
                     which qus does not check"
                        .into()
                } else {
                    String::new()
                },
            });
        }
        if self.header.payload_sha256.is_none() {
            return Err(bad(
                "its header has no sha256 of the payload (PAYLOADDIGEST), so its header \
                 signature would not cover the payload; Fedora's rpms have one"
                    .into(),
            ));
        }
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32);
        let mut foreign: Vec<String> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        for (name, sig) in sigs {
            let sig = match sig {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!(
                        "its {name} is not a readable OpenPGP signature: {e}"
                    ));
                    continue;
                }
            };
            let at = sig.created().map_or(now, |c| c.as_secs().min(now));
            match keyring.check_one(&sig, &self.header_blob, at) {
                Verdict::Good(signer) => return Ok(signer),
                Verdict::Foreign(id) => {
                    if !foreign.contains(&id) {
                        foreign.push(id)
                    }
                }
                Verdict::Bad(why) => problems.push(why),
            }
        }
        Err(bad(match problems.into_iter().next() {
            Some(p) => p,
            None => format!(
                "signed by key {}, which the keyring does not hold; the source's `keyring:` \
                 should be its Fedora release's key, RPM-GPG-KEY-fedora-<release>-primary \
                 from fedora-gpg-keys",
                foreign.join(", ")
            ),
        }))
    }
}

/// A header signature, named by the tag that holds it, parsed or why not.
type Found = (&'static str, std::result::Result<Signature, String>);

/// Pure: the header signatures of a signature header.
fn header_signatures(sig: &Header) -> std::result::Result<Vec<Found>, String> {
    let parse = |bytes: &[u8]| {
        DetachedSignature::from_bytes(bytes)
            .map(|d| d.signature)
            .map_err(|e| e.to_string())
    };
    let mut out = Vec::new();
    for (t, name) in [
        (tag::SIG_RSA, "RSAHEADER signature"),
        (tag::SIG_DSA, "DSAHEADER signature"),
    ] {
        if let Some(b) = sig.bin(t)? {
            out.push((name, parse(b)));
        }
    }
    for s in sig.strings(tag::SIG_OPENPGP)?.unwrap_or_default() {
        let parsed = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| format!("not base64: {e}"))
            .and_then(|b| parse(&b));
        out.push(("OPENPGP signature", parsed));
    }
    Ok(out)
}
