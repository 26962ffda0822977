//! Whether a registry's certificate is trusted: what the Docker daemon trusts, the way it
//! trusts it.
//!
//! The daemon adds every `certs.d/<host:port>/*.crt` to the system's roots for that
//! registry, and Go's TLS stack then accepts a server certificate that *is* one of those
//! roots: a chain of one. Docker's documentation makes a registry's certificate exactly so
//! (`openssl req -x509 … -addext subjectAltName=IP:…`, copied to `certs.d/…/ca.crt`), and
//! such a certificate says `CA:TRUE`, which webpki refuses as a server's own
//! (`CaUsedAsEndEntity`). So [`CertsDVerifier`] asks the platform verifier (system roots
//! plus certs.d, as reqwest does) first and, when it refuses, accepts the certificate only
//! if it is byte-for-byte one of the certs.d certificates of this very registry, valid for
//! the name connected to and within its validity period. This is certificate pinning: it
//! trusts nothing a CA in certs.d signed that the platform verifier did not already, and
//! the handshake signature is still checked with the certificate's key (rustls calls
//! `verify_tls1x_signature` whatever this returns), so only the holder of the private key
//! gets through.
//!
//! A refusal is explained in the user's words (what was presented, what certs.d holds)
//! and kept for the transport's error message: rustls's own (`Other(OtherError(…))`)
//! would not say what to do.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_name;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// A certificate read from certs.d, with the file it came from.
#[derive(Clone, Debug)]
pub(crate) struct Pinned {
    pub der: CertificateDer<'static>,
    pub file: String,
}

/// The platform's verdict, then certs.d's certificates as the server's own.
pub(crate) struct CertsDVerifier {
    inner: rustls_platform_verifier::Verifier,
    pinned: Vec<Pinned>,
    folder: PathBuf,
    /// Why the last certificate was refused, for the error message.
    refusal: Mutex<Option<String>>,
}

impl std::fmt::Debug for CertsDVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertsDVerifier")
            .field("folder", &self.folder)
            .field("pinned", &self.pinned.len())
            .finish_non_exhaustive()
    }
}

impl CertsDVerifier {
    pub fn new(
        pinned: Vec<Pinned>,
        folder: PathBuf,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<CertsDVerifier, rustls::Error> {
        let inner = rustls_platform_verifier::Verifier::new_with_extra_roots(
            pinned.iter().map(|p| p.der.clone()),
            provider,
        )?;
        Ok(CertsDVerifier {
            inner,
            pinned,
            folder,
            refusal: Mutex::new(None),
        })
    }

    /// Why the last certificate was refused, in the user's words.
    pub fn refusal(&self) -> Option<String> {
        self.refusal.lock().ok().and_then(|r| r.clone())
    }

    fn refuse(&self, why: String) {
        if let Ok(mut r) = self.refusal.lock() {
            *r = Some(why);
        }
    }

    /// `ca.crt (sha256 ab12…), extra.crt (…)`: what certs.d holds.
    fn holdings(&self) -> String {
        if self.pinned.is_empty() {
            return "no certificate (*.crt)".into();
        }
        self.pinned
            .iter()
            .map(|p| format!("{} (sha256 {})", p.file, fingerprint(&p.der)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The SHA-256 of a certificate, as `openssl x509 -noout -fingerprint -sha256` prints it
/// (without the colons).
pub(crate) fn fingerprint(der: &CertificateDer<'_>) -> String {
    hex::encode(Sha256::digest(der.as_ref()))
}

/// A webpki/rustls verdict in the user's words.
pub(crate) fn plain(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("causedasendentity") {
        "it is a CA certificate presented as the server's own (self-signed)"
    } else if e.contains("unknownissuer") || e.contains("unknown issuer") {
        "no certificate authority this machine trusts signed it"
    } else if e.contains("notvalidforname") || e.contains("not valid for name") {
        "it is not valid for the registry's name"
    } else if e.contains("expired") {
        "it has expired"
    } else if e.contains("notvalidyet") {
        "it is not valid yet"
    } else if e.contains("revoked") {
        "it was revoked"
    } else if e.contains("badsignature") || e.contains("bad signature") {
        "its signature does not verify"
    } else {
        "it does not verify"
    }
}

impl ServerCertVerifier for CertsDVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let error = match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        let name = server_name.to_str();
        let presented = fingerprint(end_entity);
        let Some(pin) = self
            .pinned
            .iter()
            .find(|p| p.der.as_ref() == end_entity.as_ref())
        else {
            self.refuse(format!(
                "the registry's certificate (sha256 {presented}) is not trusted: {}; and it \
                 is not one of the certificates in {}, which holds {}. Put the CA that \
                 signed it, or for a self-signed registry its own certificate, there as \
                 ca.crt (as for docker)",
                plain(&format!("{error:?}")),
                self.folder.display(),
                self.holdings()
            ));
            return Err(error);
        };
        // The registry's own certificate, from certs.d: trusted as Go trusts a root that
        // is the leaf, for the name it is valid for and while it is valid.
        let mismatch = |why: String| {
            self.refuse(format!(
                "the registry presents {} from {} (sha256 {presented}), but {why}",
                pin.file,
                self.folder.display()
            ));
        };
        let parsed = ParsedCertificate::try_from(end_entity).inspect_err(|e| {
            mismatch(format!("it cannot be parsed ({e})"));
        })?;
        if let Err(e) = verify_server_name(&parsed, server_name) {
            mismatch(format!(
                "it is not valid for {name} (its subjectAltName must name it)"
            ));
            return Err(e);
        }
        match crate::x509_time::validity(end_entity.as_ref()) {
            Some((from, until)) if (from..=until).contains(&now.as_secs()) => {}
            Some(_) => {
                mismatch("it has expired or is not valid yet".into());
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired,
                ));
            }
            None => {
                mismatch("its validity period cannot be read".into());
                return Err(error);
            }
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webpki_verdicts_in_plain_words() {
        assert!(
            plain("InvalidCertificate(Other(OtherError(CaUsedAsEndEntity)))")
                .contains("self-signed")
        );
        assert!(plain("InvalidCertificate(UnknownIssuer)").contains("trusts"));
        assert!(plain("InvalidCertificate(NotValidForNameContext { .. })").contains("name"));
        assert_eq!(plain("something else"), "it does not verify");
    }
}

#[cfg(test)]
mod pin_tests {
    use super::*;
    use rustls::pki_types::pem::PemObject as _;

    /// A self-signed CA:TRUE certificate made by `openssl req -x509` for `san`.
    fn made(dir: &std::path::Path, san: &str) -> CertificateDer<'static> {
        let crt = dir.join("c.crt");
        let ok = std::process::Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-keyout"])
            .arg(dir.join("c.key"))
            .args(["-x509", "-days", "2", "-subj", "/CN=t", "-addext"])
            .arg(format!("subjectAltName={san}"))
            .arg("-out")
            .arg(&crt)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok);
        CertificateDer::from_pem_file(&crt).unwrap()
    }

    fn verdict(
        pinned: &CertificateDer<'static>,
        presented: &CertificateDer<'static>,
    ) -> Result<(), String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let v = CertsDVerifier::new(
            vec![Pinned {
                der: pinned.clone(),
                file: "ca.crt".into(),
            }],
            "certs.d/127.0.0.1:5000".into(),
            provider,
        )
        .unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        v.verify_server_cert(presented, &[], &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("{e:?} / {:?}", v.refusal()))
    }

    #[test]
    fn a_pinned_certificate_is_accepted_only_for_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let right = made(dir.path(), "IP:127.0.0.1");
        verdict(&right, &right).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let wrong_name = made(other_dir.path(), "IP:10.0.0.1");
        let err = verdict(&wrong_name, &wrong_name).unwrap_err();
        assert!(err.contains("not valid for 127.0.0.1"), "{err}");
        let err = verdict(&right, &wrong_name).unwrap_err();
        assert!(err.contains("is not one of the certificates"), "{err}");
    }
}
