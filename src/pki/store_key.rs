//! A store key as rustls signs with it, and which store certificate a
//! subject selects: the platform-neutral half of `windows_store.rs`
//! (see `store.rs`), tested everywhere.

use std::fmt;
use std::sync::Arc;

use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use time::OffsetDateTime;

/// The key types a store key may be, read from its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
}

impl KeyKind {
    pub(crate) fn of_certificate(der: &[u8]) -> Result<KeyKind, String> {
        use x509_parser::public_key::PublicKey;
        let (_, x509) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("cannot parse the certificate: {e}"))?;
        let spki = x509.public_key();
        match spki.parsed() {
            Ok(PublicKey::RSA(_)) => Ok(KeyKind::Rsa),
            Ok(PublicKey::EC(_)) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| oid.to_id_string());
                match curve.as_deref() {
                    Some("1.2.840.10045.3.1.7") => Ok(KeyKind::EcP256),
                    Some("1.3.132.0.34") => Ok(KeyKind::EcP384),
                    other => Err(format!("unsupported elliptic curve {other:?}")),
                }
            }
            _ => Err(format!(
                "unsupported key algorithm {}",
                spki.algorithm.algorithm.to_id_string()
            )),
        }
    }

    fn algorithm(self) -> SignatureAlgorithm {
        match self {
            KeyKind::Rsa => SignatureAlgorithm::RSA,
            KeyKind::EcP256 | KeyKind::EcP384 => SignatureAlgorithm::ECDSA,
        }
    }
}

/// The schemes a store key signs with, best first. `cng`: a CNG (NCrypt)
/// key, which pads with PSS too and signs ECDSA; a CAPI key signs
/// PKCS#1 v1.5 with SHA-256 only (the one measured under Wine).
pub(crate) fn schemes(kind: KeyKind, cng: bool) -> &'static [SignatureScheme] {
    use SignatureScheme as S;
    match (kind, cng) {
        (KeyKind::Rsa, true) => &[
            S::RSA_PSS_SHA256,
            S::RSA_PSS_SHA384,
            S::RSA_PSS_SHA512,
            S::RSA_PKCS1_SHA256,
            S::RSA_PKCS1_SHA384,
            S::RSA_PKCS1_SHA512,
        ],
        (KeyKind::Rsa, false) => &[S::RSA_PKCS1_SHA256],
        (KeyKind::EcP256, true) => &[S::ECDSA_NISTP256_SHA256],
        (KeyKind::EcP384, true) => &[S::ECDSA_NISTP384_SHA384],
        (KeyKind::EcP256 | KeyKind::EcP384, false) => &[],
    }
}

/// Whether TLS 1.3 can use a key with these schemes (it has no PKCS#1).
pub(crate) fn tls13_capable(schemes: &[SignatureScheme]) -> bool {
    schemes.iter().any(|s| !is_pkcs1(*s))
}

fn is_pkcs1(scheme: SignatureScheme) -> bool {
    matches!(
        scheme,
        SignatureScheme::RSA_PKCS1_SHA256
            | SignatureScheme::RSA_PKCS1_SHA384
            | SignatureScheme::RSA_PKCS1_SHA512
    )
}

fn is_ecdsa(scheme: SignatureScheme) -> bool {
    matches!(
        scheme,
        SignatureScheme::ECDSA_NISTP256_SHA256 | SignatureScheme::ECDSA_NISTP384_SHA384
    )
}

/// The hash a scheme signs, computed here: the store signs hashes.
pub(crate) fn digest(scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, String> {
    use SignatureScheme as S;
    let algorithm = match scheme {
        S::RSA_PKCS1_SHA256 | S::RSA_PSS_SHA256 | S::ECDSA_NISTP256_SHA256 => &ring::digest::SHA256,
        S::RSA_PKCS1_SHA384 | S::RSA_PSS_SHA384 | S::ECDSA_NISTP384_SHA384 => &ring::digest::SHA384,
        S::RSA_PKCS1_SHA512 | S::RSA_PSS_SHA512 => &ring::digest::SHA512,
        other => return Err(format!("no hash for {other:?}")),
    };
    Ok(ring::digest::digest(algorithm, message).as_ref().to_vec())
}

/// The store's signing call: `message` signed with `scheme`, in the
/// platform's format (ECDSA as raw `r‖s`, RSA big-endian).
pub(crate) trait RawSign: fmt::Debug + Send + Sync {
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// A store key as rustls signs with it.
#[derive(Debug)]
pub(crate) struct StoreKey {
    raw: Arc<dyn RawSign>,
    schemes: &'static [SignatureScheme],
    algorithm: SignatureAlgorithm,
}

impl StoreKey {
    pub(crate) fn new(raw: Arc<dyn RawSign>, kind: KeyKind, cng: bool) -> StoreKey {
        StoreKey {
            raw,
            schemes: schemes(kind, cng),
            algorithm: kind.algorithm(),
        }
    }

    pub(crate) fn schemes(&self) -> &'static [SignatureScheme] {
        self.schemes
    }
}

impl SigningKey for StoreKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = self.schemes.iter().find(|s| offered.contains(s))?;
        Some(Box::new(StoreSigner {
            raw: self.raw.clone(),
            scheme: *scheme,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }
}

#[derive(Debug)]
struct StoreSigner {
    raw: Arc<dyn RawSign>,
    scheme: SignatureScheme,
}

impl Signer for StoreSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let signature = self
            .raw
            .sign(self.scheme, message)
            .map_err(rustls::Error::General)?;
        if is_ecdsa(self.scheme) {
            ecdsa_der(&signature).map_err(rustls::Error::General)
        } else {
            Ok(signature)
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// CNG's ECDSA signature (`r‖s`, each the curve's size) as the DER
/// `SEQUENCE { INTEGER r, INTEGER s }` TLS carries.
pub(crate) fn ecdsa_der(rs: &[u8]) -> Result<Vec<u8>, String> {
    if rs.is_empty() || !rs.len().is_multiple_of(2) {
        return Err(format!("an ECDSA signature of {} bytes", rs.len()));
    }
    let (r, s) = rs.split_at(rs.len() / 2);
    let mut body = der_integer(r);
    body.extend(der_integer(s));
    let mut out = vec![0x30];
    out.extend(der_length(body.len()));
    out.extend(body);
    Ok(out)
}

/// An unsigned big-endian number as a DER INTEGER: leading zeros dropped,
/// one zero put back when the top bit would make it negative.
fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut value = bytes[first..].to_vec();
    if value.first().is_none_or(|b| b & 0x80 != 0) {
        value.insert(0, 0);
    }
    let mut out = vec![0x02];
    out.extend(der_length(value.len()));
    out.extend(value);
    out
}

fn der_length(len: usize) -> Vec<u8> {
    if len < 0x80 {
        return vec![len as u8];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

/// Signs a fixed message with each scheme the key would use and checks it
/// with the certificate's public key: a store whose certificate points at
/// another key (Wine's second PFX does) fails at load, not at handshakes.
pub(crate) fn check_key(cert_der: &[u8], key: &StoreKey) -> Result<(), String> {
    const MESSAGE: &[u8] = b"provd: does this key belong to the certificate?";
    if key.schemes.is_empty() {
        return Err(
            "the key can sign with no scheme provd offers (an ECDSA key outside CNG)".into(),
        );
    }
    for scheme in key.schemes {
        let signer = key
            .choose_scheme(&[*scheme])
            .ok_or_else(|| format!("no signer for {scheme:?}"))?;
        let signature = signer
            .sign(MESSAGE)
            .map_err(|e| format!("cannot sign with {scheme:?}: {e}"))?;
        super::verify_signature(cert_der, *scheme, MESSAGE, &signature).map_err(|e| {
            format!("the private key does not match the certificate ({scheme:?}: {e})")
        })?;
    }
    Ok(())
}

/// A store certificate considered for a subject query.
pub(crate) struct Candidate {
    pub der: Vec<u8>,
    pub has_key: bool,
}

/// The candidate a subject query selects: valid at `now`, for Server
/// Authentication (an EKU that lists it, or none, which allows any use),
/// with a private key, whose subject CN or whole subject is `subject`
/// (case-insensitive); the newest by notBefore, then notAfter.
pub(crate) fn select_by_subject(
    candidates: &[Candidate],
    subject: &str,
    now: OffsetDateTime,
) -> Option<usize> {
    let wanted = subject.trim();
    let mut best: Option<(usize, (OffsetDateTime, OffsetDateTime))> = None;
    for (index, candidate) in candidates.iter().enumerate() {
        if !candidate.has_key {
            continue;
        }
        let Ok((_, x509)) = x509_parser::parse_x509_certificate(&candidate.der) else {
            continue;
        };
        let names_it = x509.subject().to_string().eq_ignore_ascii_case(wanted)
            || x509
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .any(|cn| cn.eq_ignore_ascii_case(wanted));
        let validity = x509.validity();
        let (from, until) = (
            validity.not_before.to_datetime(),
            validity.not_after.to_datetime(),
        );
        let server_auth = match x509.extended_key_usage() {
            Ok(Some(eku)) => eku.value.server_auth || eku.value.any,
            Ok(None) => true,
            Err(_) => false,
        };
        if !(names_it && server_auth && from <= now && now <= until) {
            continue;
        }
        if best.is_none_or(|(_, dates)| (from, until) > dates) {
            best = Some((index, (from, until)));
        }
    }
    best.map(|(index, _)| index)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
