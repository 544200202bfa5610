//! Signing a checkpoint with the daemon's TLS server key, and checking one.
//!
//! The key is whatever `tls.key` holds (ECDSA P-256 from `provd pki`, or
//! the operator's own: ECDSA P-384/P-521, Ed25519, RSA with PSS), read when
//! a prune runs, so a rotated key signs the next checkpoint. Signing and
//! checking go through rustls' ring provider, provd's one crypto provider.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rustls::SignatureScheme;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::line::Checkpoint;

/// The schemes a checkpoint may be signed with (TLS 1.3's: each names its
/// curve or padding, so a signature cannot be read under another).
const SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ED25519,
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
];

/// The daemon's certificate and key files (`tls.cert`, `tls.key`).
#[derive(Debug, Clone)]
pub struct CheckpointSigner {
    pub cert: PathBuf,
    pub key: PathBuf,
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
        let pem = std::fs::read(&self.cert)
            .map_err(|e| format!("cannot read {}: {e}", self.cert.display()))?;
        CertificateDer::pem_slice_iter(&pem)
            .next()
            .ok_or_else(|| format!("{} holds no certificate", self.cert.display()))?
            .map(|der| der.to_vec())
            .map_err(|e| format!("{}: {e}", self.cert.display()))
    }

    /// Signs `message` with the key, naming the certificate that checks it.
    pub(super) fn sign(&self, signer_der: Vec<u8>, message: &[u8]) -> Result<Signed, String> {
        let pem = std::fs::read(&self.key)
            .map_err(|e| format!("cannot read {}: {e}", self.key.display()))?;
        let key = PrivateKeyDer::from_pem_slice(&pem)
            .map_err(|e| format!("{}: {e}", self.key.display()))?;
        let key = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| format!("{}: {e}", self.key.display()))?;
        let signer = key
            .choose_scheme(SCHEMES)
            .ok_or_else(|| format!("{}: no signature scheme for this key", self.key.display()))?;
        let scheme = scheme_name(signer.scheme())
            .ok_or_else(|| format!("{}: unnamed signature scheme", self.key.display()))?;
        let signature = signer.sign(message).map_err(|e| e.to_string())?;
        // The key must be the certificate's, or no verify would pass.
        verify_with(&signer_der, signer.scheme(), message, &signature).map_err(|e| {
            format!(
                "{} does not match {}: {e}",
                self.key.display(),
                self.cert.display()
            )
        })?;
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

/// The subject public key (the bit string's bytes) of a DER certificate.
fn public_key(der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, x509) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    Ok(x509.public_key().subject_public_key.data.to_vec())
}

fn verify_with(
    signer_der: &[u8],
    scheme: SignatureScheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key = public_key(signer_der)?;
    let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|(_, algs)| *algs)
        .unwrap_or_default();
    if candidates
        .iter()
        .any(|alg| alg.verify_signature(&key, message, signature).is_ok())
    {
        Ok(())
    } else {
        Err("the signature does not verify".into())
    }
}

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
