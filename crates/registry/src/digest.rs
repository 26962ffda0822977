//! Content digests (`sha256:<hex>`).
//!
//! Everything a registry stores is addressed by the digest of its bytes, and every
//! safety property of `publish_index` (verify before writing, do not rewrite what is
//! already there) is a digest comparison. A dedicated type keeps a malformed or
//! upper-case digest from ever reaching a URL or a comparison. Only sha256 is
//! accepted: it is what distribution 2.8 and the Docker daemon produce, and a digest
//! we cannot recompute is a digest we cannot verify.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

/// Why a string is not a digest we accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason}")]
pub struct InvalidDigest {
    /// The rejected text.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const PREFIX: &str = "sha256:";

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest(format!("{PREFIX}{}", hex::encode(Sha256::digest(bytes))))
    }

    /// Parses `sha256:<hex>`; other algorithms are refused because we could not verify them.
    pub fn parse(input: &str) -> Result<Digest, InvalidDigest> {
        let fail = |reason| InvalidDigest {
            input: input.to_string(),
            reason,
        };
        let (algorithm, hex) = input
            .split_once(':')
            .ok_or_else(|| fail("expected <algorithm>:<hex>"))?;
        if algorithm != "sha256" {
            return Err(fail("only sha256 digests are supported"));
        }
        if hex.len() != 64 {
            return Err(fail("a sha256 digest has 64 hex characters"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(fail("expected lowercase hex"));
        }
        Ok(Digest(input.to_string()))
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part, as used in registry storage paths.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// Whether `bytes` hash to this digest.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Digest::sha256(bytes) == *self
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_is_the_well_known_value() {
        assert_eq!(
            Digest::sha256(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_rejects_what_we_cannot_verify() {
        let hex64 = "a".repeat(64);
        assert!(Digest::parse(&format!("sha256:{hex64}")).is_ok());
        for bad in [
            "sha256:abc".to_string(),
            format!("sha512:{hex64}"),
            format!("sha256:{}", "A".repeat(64)),
            hex64.clone(),
            format!("sha256:{}g", "a".repeat(63)),
        ] {
            let err = Digest::parse(&bad).unwrap_err();
            assert_eq!(err.input, bad);
        }
    }

    #[test]
    fn matches_compares_content() {
        let d = Digest::sha256(b"hello");
        assert!(d.matches(b"hello"));
        assert!(!d.matches(b"hello "));
        assert_eq!(d.hex().len(), 64);
    }
}
