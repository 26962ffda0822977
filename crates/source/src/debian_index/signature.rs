//! OpenPGP signatures of a suite's Release: the InRelease clearsignature, or Release plus
//! its detached Release.gpg, checked against a keyring (Debian's archive keyring by
//! default) the way apt does through gpgv: at least one signature must be good, by a key
//! (or signing subkey) of the keyring that is neither expired nor revoked, made before now
//! and not expired itself. Signatures by keys outside the keyring are ignored (Debian signs
//! with several keys at once), and only say why nothing verified when none did.
//!
//! Pure apart from [`Keyring::load`]: "now" is a parameter.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use pgp::composed::{
    CleartextSignedMessage, Deserializable as _, DetachedSignature, SignedPublicKey,
};
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails as _;

use crate::error::{Error, Result};

/// Largest keyring read (Debian's is ~100 KB).
const MAX_KEYRING: u64 = 16 << 20;

/// The keyring of Debian's `debian-archive-keyring` package: the default trust anchor.
pub const DEBIAN_ARCHIVE_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// OpenPGP public keys a Release must be signed by (binary `.gpg` or armored `.asc`).
#[derive(Debug, Clone)]
pub struct Keyring {
    path: PathBuf,
    keys: Vec<SignedPublicKey>,
}

/// A key of the keyring that made a good signature.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signer {
    /// The primary key's fingerprint (uppercase hex): what `gpg --list-keys` shows and what
    /// the lock records.
    pub fingerprint: String,
    /// The fingerprint of the key that signed (a subkey, or the primary key itself).
    pub signing_key: String,
    /// The primary user ID (`Debian Archive Automatic Signing Key (13/trixie) <…>`).
    pub user_id: Option<String>,
}

impl Keyring {
    /// Reads a keyring file.
    pub fn load(path: &Path) -> Result<Keyring> {
        let bad = |detail: String| Error::Keyring {
            path: path.to_path_buf(),
            detail,
        };
        let meta = std::fs::metadata(path).map_err(|e| {
            bad(format!(
                "{e}{}",
                if path == Path::new(DEBIAN_ARCHIVE_KEYRING) {
                    " (install Debian's debian-archive-keyring package, or name a keyring \
                     in the config: `keyring: FILE` on the source)"
                } else {
                    ""
                }
            ))
        })?;
        if meta.len() > MAX_KEYRING {
            return Err(bad(format!("larger than {MAX_KEYRING} bytes")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        Keyring::from_bytes(&bytes, path)
    }

    /// Parses keyring bytes (binary or ASCII-armored); `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Keyring> {
        let bad = |detail: String| Error::Keyring {
            path: path.to_path_buf(),
            detail,
        };
        let (keys, _) = SignedPublicKey::from_reader_many(bytes)
            .map_err(|e| bad(format!("not an OpenPGP keyring: {e}")))?;
        let keys: Vec<SignedPublicKey> = keys
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(format!("not an OpenPGP keyring: {e}")))?;
        if keys.is_empty() {
            return Err(bad("holds no public key".into()));
        }
        Ok(Keyring {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The primary fingerprints it holds.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| format!("{:X}", k.fingerprint()))
            .collect()
    }

    /// Checks the signatures of `data` (already normalized as the signatures hash it);
    /// `origin` names the Release in errors.
    fn check(
        &self,
        signatures: &[Signature],
        data: &[u8],
        now: SystemTime,
        origin: &str,
    ) -> Result<Vec<Signer>> {
        if signatures.is_empty() {
            return Err(Error::Unsigned {
                release: origin.to_string(),
            });
        }
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs().min(u64::from(u32::MAX)) as u32);
        let mut good: Vec<Signer> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        let mut foreign: Vec<String> = Vec::new();
        for sig in signatures {
            match self.check_one(sig, data, now) {
                Verdict::Good(s) => {
                    if !good.contains(&s) {
                        good.push(s);
                    }
                }
                Verdict::Foreign(id) => foreign.push(id),
                Verdict::Bad(why) => problems.push(why),
            }
        }
        if !good.is_empty() {
            good.sort();
            return Ok(good);
        }
        let detail = match problems.into_iter().next() {
            Some(p) => p,
            None => format!(
                "signed only by key(s) {} that the keyring does not hold (a foreign signer)",
                foreign.join(", ")
            ),
        };
        Err(Error::BadSignature {
            release: origin.to_string(),
            keyring: self.path.clone(),
            detail,
        })
    }

    /// One signature against the keyring: good, by a key it does not hold, or bad (does
    /// not verify, revoked or expired key, dated in the future, expired).
    pub(crate) fn check_one(&self, sig: &Signature, data: &[u8], now: u32) -> Verdict {
        let issuers = issuers(sig);
        // A key of the keyring whose signature did not verify: kept in case no other does
        // (two keys may share a key ID).
        let mut problem: Option<String> = None;
        for key in &self.keys {
            let primary_fp = format!("{:X}", key.fingerprint());
            let user_id = primary_user(key);
            // The primary key itself, then its subkeys.
            let mut candidates: Vec<(KeyRef<'_>, String, Option<u32>, bool)> = Vec::new();
            if matches_issuer(&issuers, &primary_fp) {
                candidates.push((
                    KeyRef::Primary(&key.primary_key),
                    primary_fp.clone(),
                    primary_expiry(key),
                    !key.details.revocation_signatures.is_empty(),
                ));
            }
            for sub in &key.public_subkeys {
                let fp = format!("{:X}", sub.key.fingerprint());
                if !matches_issuer(&issuers, &fp) {
                    continue;
                }
                let binding = sub
                    .signatures
                    .iter()
                    .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                    .max_by_key(|s| s.created().map(|t| t.as_secs()));
                let revoked = sub
                    .signatures
                    .iter()
                    .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation));
                let bound = binding.is_some_and(|b| {
                    b.key_flags().sign() && sub.verify_bindings(&key.primary_key).is_ok()
                });
                if !bound {
                    problem.get_or_insert(format!(
                        "signed by subkey {fp} of {primary_fp}, which is not bound to it for signing"
                    ));
                    continue;
                }
                let expiry = binding
                    .and_then(|b| b.key_expiration_time())
                    .map(|d| d.as_secs())
                    .filter(|d| *d > 0)
                    .map(|d| sub.key.created_at().as_secs().saturating_add(d));
                // A subkey expires with its primary key too.
                let expiry = match (expiry, primary_expiry(key)) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                candidates.push((
                    KeyRef::Sub(&sub.key),
                    fp,
                    expiry,
                    revoked || !key.details.revocation_signatures.is_empty(),
                ));
            }
            for (vk, fp, expiry, revoked) in candidates {
                let who = format!(
                    "key {fp}{}",
                    user_id
                        .as_ref()
                        .map(|u| format!(" ({u})"))
                        .unwrap_or_default()
                );
                let verified = match vk {
                    KeyRef::Primary(k) => sig.verify(k, data),
                    KeyRef::Sub(k) => sig.verify(k, data),
                };
                if verified.is_err() {
                    problem.get_or_insert(format!(
                        "the signature by {who} does not verify: the file was changed after \
                         it was signed"
                    ));
                    continue;
                }
                if revoked {
                    return Verdict::Bad(format!("signed by {who}, which is revoked"));
                }
                if let Some(e) = expiry.filter(|e| *e <= now) {
                    return Verdict::Bad(format!("signed by {who}, which expired on {}", date(e)));
                }
                let created = sig.created().map(|t| t.as_secs());
                if let Some(c) = created.filter(|c| *c > now.saturating_add(CLOCK_SKEW)) {
                    return Verdict::Bad(format!(
                        "the signature by {who} is dated {}, in the future",
                        date(c)
                    ));
                }
                if let (Some(c), Some(d)) = (
                    created,
                    sig.signature_expiration_time()
                        .map(|d| d.as_secs())
                        .filter(|d| *d > 0),
                ) {
                    if c.saturating_add(d) <= now {
                        return Verdict::Bad(format!(
                            "the signature by {who} expired on {}",
                            date(c.saturating_add(d))
                        ));
                    }
                }
                return Verdict::Good(Signer {
                    fingerprint: primary_fp,
                    signing_key: fp,
                    user_id,
                });
            }
        }
        match problem {
            Some(p) => Verdict::Bad(p),
            None => Verdict::Foreign(
                issuers
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "(no issuer)".into()),
            ),
        }
    }
}

/// Tolerated clock difference for signature dates.
const CLOCK_SKEW: u32 = 600;

/// The primary key or a subkey, to verify with.
enum KeyRef<'a> {
    Primary(&'a pgp::packet::PublicKey),
    Sub(&'a pgp::packet::PublicSubkey),
}

/// What one signature comes to.
pub(crate) enum Verdict {
    /// A good signature by this key of the keyring.
    Good(Signer),
    /// Made by a key (ID or fingerprint) the keyring does not hold.
    Foreign(String),
    /// Made by a key of the keyring, but not acceptable: why.
    Bad(String),
}

/// The issuer key IDs and fingerprints a signature names (uppercase hex).
fn issuers(sig: &Signature) -> Vec<String> {
    let mut out: Vec<String> = sig
        .issuer_fingerprint()
        .into_iter()
        .map(|f| format!("{f:X}"))
        .collect();
    out.extend(
        sig.issuer_key_id()
            .into_iter()
            .map(|k| hex::encode_upper(k.as_ref())),
    );
    out
}

/// Whether a fingerprint is one of the issuers (a key ID is its last 16 hex digits).
fn matches_issuer(issuers: &[String], fingerprint: &str) -> bool {
    issuers
        .iter()
        .any(|i| fingerprint == i || fingerprint.ends_with(i.as_str()))
}

/// The primary key's expiry (seconds since the epoch), from its newest self-certification.
fn primary_expiry(key: &SignedPublicKey) -> Option<u32> {
    let created = key.primary_key.created_at().as_secs();
    key.details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .filter(|s| s.created().is_some())
        .max_by_key(|s| s.created().map(|t| t.as_secs()))
        .and_then(|s| s.key_expiration_time())
        .map(|d| d.as_secs())
        .filter(|d| *d > 0)
        .map(|d| created.saturating_add(d))
}

fn primary_user(key: &SignedPublicKey) -> Option<String> {
    key.details
        .users
        .first()
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
}

/// `2031-05-20` of seconds since the epoch.
fn date(secs: u32) -> String {
    let mut day = crate::rfc3339(u64::from(secs));
    day.truncate(10);
    day
}

/// Verifies a clearsigned InRelease: the signed text (LF line ends, as apt parses it) and
/// who signed it.
pub fn verify_clearsigned(
    text: &str,
    keyring: &Keyring,
    now: SystemTime,
    origin: &str,
) -> Result<(String, Vec<Signer>)> {
    if !text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
        return Err(Error::Unsigned {
            release: origin.to_string(),
        });
    }
    let (msg, _) = CleartextSignedMessage::from_string(text).map_err(|e| Error::BadSignature {
        release: origin.to_string(),
        keyring: keyring.path.clone(),
        detail: format!("not a readable clearsigned file: {e}"),
    })?;
    let signed = msg.signed_text();
    let signers = keyring.check(msg.signatures(), signed.as_bytes(), now, origin)?;
    Ok((signed.replace("\r\n", "\n"), signers))
}

/// Verifies a detached signature (`Release.gpg`, armored or binary) of `data`.
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    now: SystemTime,
    origin: &str,
) -> Result<Vec<Signer>> {
    let (sigs, _) =
        DetachedSignature::from_reader_many(signature).map_err(|e| Error::BadSignature {
            release: origin.to_string(),
            keyring: keyring.path.clone(),
            detail: format!("Release.gpg is not an OpenPGP signature: {e}"),
        })?;
    let sigs: Vec<Signature> = sigs.filter_map(|s| s.ok()).map(|s| s.signature).collect();
    keyring.check(&sigs, data, now, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_700_000_000), "2023-11-14");
    }

    #[test]
    fn issuer_matching() {
        let fp = "4CB50190207B4758A3F73A796ED0E7B82643E131";
        assert!(matches_issuer(&["6ED0E7B82643E131".into()], fp));
        assert!(matches_issuer(&[fp.into()], fp));
        assert!(!matches_issuer(&["0000000000000000".into()], fp));
    }

    #[test]
    fn unsigned_and_garbage() {
        let ring = Keyring {
            path: "k".into(),
            keys: Vec::new(),
        };
        assert!(matches!(
            verify_clearsigned("Suite: x\n", &ring, SystemTime::now(), "R"),
            Err(Error::Unsigned { .. })
        ));
        assert!(Keyring::from_bytes(b"not a key", Path::new("k")).is_err());
    }
}
