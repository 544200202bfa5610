//! Signing a checkpoint with the daemon's TLS server key, and checking one.
//!
//! The key is whatever `tls.key` holds (ECDSA P-256 from `provd pki`, or
//! the operator's own: ECDSA P-384/P-521, Ed25519, RSA with PSS), read when
//! a prune runs, so a rotated key signs the next checkpoint; or, with the
//! certificate from the Windows store (`tls.cert_thumbprint`), the store
//! key the listener serves now, which has no file (a CAPI key signs
//! PKCS#1 v1.5 only). Signing and checking go through rustls' ring
//! provider, provd's one crypto provider.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::SignatureScheme;
use rustls::sign::{CertifiedKey, SigningKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use super::line::Checkpoint;

/// The schemes a checkpoint may be signed with, preferred first: TLS 1.3's
/// (each names its curve or padding, so a signature cannot be read under
/// another), then PKCS#1 v1.5 with SHA-256 for a store key that has
/// nothing else.
const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
];

/// The daemon's TLS certificate and key.
#[derive(Debug, Clone)]
pub enum CheckpointSigner {
    /// `tls.cert` and `tls.key`, read at each prune.
    Files { cert: PathBuf, key: PathBuf },
    /// What the listener serves now (republished on each reload).
    Served(watch::Receiver<Arc<CertifiedKey>>),
}

/// A signature and what checks it.
pub(super) struct Signed {
    pub signer_der: Vec<u8>,
    pub scheme: &'static str,
    pub signature: Vec<u8>,
}

impl CheckpointSigner {
    /// The leaf certificate's DER (the first certificate of `tls.cert`).
    pub(super) fn certificate(&self) -> Result<Vec<u8>, String> {
        let cert = match self {
            CheckpointSigner::Files { cert, .. } => cert,
            CheckpointSigner::Served(served) => {
                return served
                    .borrow()
                    .cert
                    .first()
                    .map(|der| der.to_vec())
                    .ok_or_else(|| "the served chain is empty".to_owned());
            }
        };
        let pem =
            std::fs::read(cert).map_err(|e| format!("cannot read {}: {e}", cert.display()))?;
        CertificateDer::pem_slice_iter(&pem)
            .next()
            .ok_or_else(|| format!("{} holds no certificate", cert.display()))?
            .map(|der| der.to_vec())
            .map_err(|e| format!("{}: {e}", cert.display()))
    }

    /// Signs `message` with the key, naming the certificate that checks it.
    pub(super) fn sign(&self, signer_der: Vec<u8>, message: &[u8]) -> Result<Signed, String> {
        let (key, what): (Arc<dyn SigningKey>, String) = match self {
            CheckpointSigner::Files { key, .. } => {
                let pem = std::fs::read(key)
                    .map_err(|e| format!("cannot read {}: {e}", key.display()))?;
                let der = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                let loaded = rustls::crypto::ring::default_provider()
                    .key_provider
                    .load_private_key(der)
                    .map_err(|e| format!("{}: {e}", key.display()))?;
                (loaded, key.display().to_string())
            }
            CheckpointSigner::Served(served) => {
                (served.borrow().key.clone(), "the served key".to_owned())
            }
        };
        let signer = key
            .choose_scheme(SCHEMES)
            .ok_or_else(|| format!("{what}: no signature scheme for this key"))?;
        let scheme = scheme_name(signer.scheme())
            .ok_or_else(|| format!("{what}: unnamed signature scheme"))?;
        let signature = signer.sign(message).map_err(|e| e.to_string())?;
        // The key must be the certificate's, or no verify would pass.
        verify_with(&signer_der, signer.scheme(), message, &signature)
            .map_err(|e| format!("{what} does not match the server certificate: {e}"))?;
        Ok(Signed {
            signer_der,
            scheme,
            signature,
        })
    }
}

fn scheme_name(scheme: SignatureScheme) -> Option<&'static str> {
    SCHEMES.contains(&scheme).then(|| scheme.as_str()).flatten()
}

fn scheme_named(name: &str) -> Option<SignatureScheme> {
    SCHEMES.iter().copied().find(|s| s.as_str() == Some(name))
}

use crate::pki::{public_key, verify_signature as verify_with};

/// Who signed a checkpoint: from its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub subject: String,
    pub serial: String,
    /// SHA-256 (hex) of the certificate's DER.
    pub fingerprint: String,
    pub public_key: Vec<u8>,
}

/// Checks a checkpoint's signature against the certificate inside it;
/// returns who signed.
pub(super) fn verify(checkpoint: &Checkpoint, time: &str) -> Result<Signer, String> {
    let der = BASE64
        .decode(&checkpoint.signer)
        .map_err(|e| format!("signer certificate is not base64: {e}"))?;
    let signature = BASE64
        .decode(&checkpoint.signature)
        .map_err(|e| format!("signature is not base64: {e}"))?;
    let scheme = scheme_named(&checkpoint.scheme)
        .ok_or_else(|| format!("unknown signature scheme {:?}", checkpoint.scheme))?;
    let message = Checkpoint::message(
        time,
        checkpoint.pruned,
        checkpoint.last_seq,
        &checkpoint.last_hash,
        &der,
    );
    verify_with(&der, scheme, &message, &signature)?;
    let (_, x509) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| format!("not a certificate: {e}"))?;
    Ok(Signer {
        subject: x509.subject().to_string(),
        serial: x509.raw_serial_as_string().replace(':', ""),
        fingerprint: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&der)),
        public_key: x509.public_key().subject_public_key.data.to_vec(),
    })
}

/// The subject public key of a PEM certificate (the `--cert` a checkpoint's
/// signer must match).
pub(super) fn trusted_key(pem: &[u8]) -> Result<Vec<u8>, String> {
    let der = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or("holds no certificate")?
        .map_err(|e| e.to_string())?;
    public_key(&der)
}

/// Base64 as the checkpoint writes it.
pub(super) fn base64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}
