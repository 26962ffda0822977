//! cosign's key-based signature format, so `cosign verify --key` accepts qus's signatures
//! (and qus verifies cosign's): the "simple signing" payload names the repository and the
//! manifest digest; the ECDSA P-256 signature of its exact bytes (SHA-256, ASN.1 DER,
//! base64) goes in the layer annotation `dev.cosignproject.cosign/signature`; the layers
//! live in an OCI manifest under the tag `sha256-<hex>.sig`. ECDSA here is RFC 6979
//! (deterministic): the same key and digest give the same signature, so a re-run writes
//! nothing.

use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _, LineEnding};
use qus_registry::{Descriptor, Digest, ImageManifest};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The payload's media type (cosign's "simple signing").
pub(crate) const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation that holds the base64 signature.
pub(crate) const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The payload's `critical.type`.
const PAYLOAD_TYPE: &str = "cosign container image signature";

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// Not a PEM ECDSA P-256 private key qus reads.
    #[error(
        "{origin}: not an ECDSA P-256 private key in PEM (PKCS#8 \"PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\"; \
         make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem`; \
         cosign's encrypted keys are not read){detail}"
    )]
    Private {
        /// The file.
        origin: String,
        /// What the parser said.
        detail: String,
    },
    /// Not a PEM P-256 public key.
    #[error("{origin}: not an ECDSA P-256 public key in PEM (\"PUBLIC KEY\"): {detail}")]
    Public {
        /// The file.
        origin: String,
        /// What the parser said.
        detail: String,
    },
}

/// A signing key, loaded.
#[derive(Clone)]
pub(crate) struct Key(SigningKey);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// Parses a PEM private key: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
    pub(crate) fn from_pem(text: &str, origin: &str) -> Result<Key, KeyError> {
        if let Ok(k) = SigningKey::from_pkcs8_pem(text) {
            return Ok(Key(k));
        }
        match p256::SecretKey::from_sec1_pem(text) {
            Ok(s) => Ok(Key(SigningKey::from(s))),
            Err(e) => Err(KeyError::Private {
                origin: origin.to_string(),
                detail: if text.contains("ENCRYPTED") {
                    " (this one is encrypted)".into()
                } else {
                    format!(" ({e})")
                },
            }),
        }
    }

    /// The public key, PKIX PEM (`-----BEGIN PUBLIC KEY-----`): what `cosign verify --key`
    /// reads.
    pub(crate) fn public_pem(&self) -> String {
        self.0
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// base64 of the DER ECDSA signature over `payload` (SHA-256 of the exact bytes).
    pub(crate) fn sign(&self, payload: &[u8]) -> String {
        let sig: DerSignature = self.0.sign(payload);
        base64::engine::general_purpose::STANDARD.encode(sig.as_bytes())
    }
}

/// A verification key.
#[derive(Debug, Clone)]
pub(crate) struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses a PKIX PEM public key.
    pub(crate) fn from_pem(text: &str, origin: &str) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_public_key_pem(text)
            .map(PublicKey)
            .map_err(|e| KeyError::Public {
                origin: origin.to_string(),
                detail: e.to_string(),
            })
    }

    /// Whether `signature` (base64 DER) is this key's over `payload`.
    pub(crate) fn verifies(&self, payload: &[u8], signature: &str) -> bool {
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        let Ok(sig) = DerSignature::try_from(der.as_slice()) else {
            return false;
        };
        self.0.verify(payload, &sig).is_ok()
    }
}

/// The repository as cosign names it in `docker-reference` (Docker Hub's long form).
pub(crate) fn docker_reference(registry: &str, repository: &str) -> String {
    if registry == qus_registry::DOCKER_HUB {
        format!("index.docker.io/{repository}")
    } else {
        format!("{registry}/{repository}")
    }
}

/// The simple-signing payload for `digest` in `docker_reference`, byte for byte as cosign
/// writes it.
pub(crate) fn payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    let s = |v: &str| serde_json::to_string(v).unwrap_or_default();
    format!(
        "{{\"critical\":{{\"identity\":{{\"docker-reference\":{}}},\"image\":{{\"docker-manifest-digest\":{}}},\"type\":{}}},\"optional\":null}}",
        s(docker_reference),
        s(digest.as_str()),
        s(PAYLOAD_TYPE)
    )
    .into_bytes()
}

/// What a payload says, as read back.
#[derive(Debug, Deserialize)]
pub(crate) struct Payload {
    critical: Critical,
}

#[derive(Debug, Deserialize)]
struct Critical {
    identity: Identity,
    image: PayloadImage,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Debug, Deserialize)]
struct PayloadImage {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

impl Payload {
    /// Whether the payload names `digest` in `docker_reference`.
    pub(crate) fn names(&self, docker_reference: &str, digest: &Digest) -> bool {
        self.critical.kind == PAYLOAD_TYPE
            && self.critical.image.digest == digest.as_str()
            && self.critical.identity.docker_reference == docker_reference
    }
}

/// The `sha256-<hex>.sig` tag of `digest`.
pub(crate) fn sig_tag(digest: &Digest) -> String {
    format!("{}.sig", qus_registry::fallback_tag(digest))
}

/// One signature layer: the payload's descriptor with the signature annotation.
pub(crate) fn layer(payload: &[u8], signature: &str) -> Descriptor {
    Descriptor {
        annotations: Some(BTreeMap::from([(
            SIGNATURE_ANNOTATION.to_string(),
            signature.to_string(),
        )])),
        ..Descriptor::of(SIMPLE_SIGNING, payload)
    }
}

/// The config blob cosign writes for a signature manifest over `layers`.
pub(crate) fn config(layers: &[Descriptor]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{ "created": "0001-01-01T00:00:00Z" }],
        "os": "",
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .unwrap_or_default()
}

/// The signature manifest over `layers`, and its config blob.
pub(crate) fn manifest(layers: Vec<Descriptor>) -> (ImageManifest, Vec<u8>) {
    let config = config(&layers);
    let m = ImageManifest::new(
        qus_registry::media::OCI_MANIFEST,
        Descriptor::of(qus_registry::media::OCI_CONFIG, &config),
        layers,
    );
    (m, config)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed test key (generated with openssl for this test; never used elsewhere).
    const PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgj6x5fXUGyxinRYzK
owNVmHaaqnZXIiMBBEaIEyAnqqOhRANCAATjs5AWnWT2G3bHjwvW0z4fu+NdBYpY
TiNqHjkMEQMyWweTpMQytGV1knLRpgN2VuFIKEsNnYUIYV5/TZTbH87G
-----END PRIVATE KEY-----
";

    #[test]
    fn payload_is_cosigns_bytes() {
        let d = Digest::sha256(b"m");
        let p = payload("127.0.0.1:5000/qus", &d);
        assert_eq!(
            String::from_utf8(p.clone()).unwrap(),
            format!("{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/qus\"}},\"image\":{{\"docker-manifest-digest\":\"{d}\"}},\"type\":\"cosign container image signature\"}},\"optional\":null}}")
        );
        let read: Payload = serde_json::from_slice(&p).unwrap();
        assert!(read.names("127.0.0.1:5000/qus", &d));
        assert!(!read.names("127.0.0.1:5000/other", &d));
        assert_eq!(
            docker_reference("docker.io", "library/x"),
            "index.docker.io/library/x"
        );
        assert_eq!(sig_tag(&d), format!("sha256-{}.sig", d.hex()));
    }

    #[test]
    fn signatures_are_deterministic_and_verify() {
        let k = Key::from_pem(PKCS8, "t").unwrap();
        let p = payload("r/q", &Digest::sha256(b"x"));
        let s = k.sign(&p);
        assert_eq!(s, k.sign(&p), "RFC 6979");
        let public = PublicKey::from_pem(&k.public_pem(), "pub").unwrap();
        assert!(public.verifies(&p, &s));
        let mut tampered = p.clone();
        tampered[5] ^= 1;
        assert!(!public.verifies(&tampered, &s));
        assert!(!public.verifies(&p, "bm90IGEgc2lnbmF0dXJl"));
        assert!(k.public_pem().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(format!("{k:?}").contains("redacted"));
    }

    #[test]
    fn bad_keys_say_what_is_read() {
        let e = Key::from_pem("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n", "k.pem").unwrap_err().to_string();
        assert!(
            e.contains("k.pem") && e.contains("encrypted") && e.contains("P-256"),
            "{e}"
        );
    }

    #[test]
    fn manifest_config_lists_the_payloads() {
        let l = layer(b"{}", "c2ln");
        let (m, config) = manifest(vec![l.clone()]);
        assert_eq!(m.layers, std::slice::from_ref(&l));
        assert!(String::from_utf8(config)
            .unwrap()
            .contains(l.digest.as_str()));
        assert!(String::from_utf8(m.to_bytes())
            .unwrap()
            .contains("\"annotations\":{\"dev.cosignproject.cosign/signature\":\"c2ln\"}"));
    }
}
