//! Reading certificates and CRLs back: what `provd pki renew` copies, which
//! CA signed what, and what Verify's `provd.certificate.expiry` reports
//! about the certificates provd serves ([`ServedCertificates`]).

use std::path::PathBuf;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::revocation_list::CertificateRevocationList;

use super::PkiError;

/// What the TLS listener serves now, published by the transport each time
/// it (re)loads `[tls]`'s files: DER certificates, never a key.
#[derive(Debug, Clone, Default)]
pub struct ServedCertificates {
    /// `tls.cert`, where the chain came from; for a certificate of the
    /// Windows store, its PowerShell path `cert:\LocalMachine\<store>\<thumbprint>`.
    pub cert_file: PathBuf,
    /// `tls.client_ca`, where the client CAs came from (or
    /// `cert:\LocalMachine\<tls.client_ca_store>`).
    pub client_ca_file: PathBuf,
    /// The server's chain as served, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
    /// Every certificate of the client CA file (DER).
    pub client_cas: Vec<Vec<u8>>,
}

/// The facts of one certificate that provd reports and decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject DN, e.g. `CN=provd CA`.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial number, lower-case hex without separators.
    pub serial: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// Issuer and subject are the same name and its own key verifies it.
    pub self_signed: bool,
}

impl CertificateInfo {
    /// Reads `der`; `what` names it in the error ("server certificate").
    pub fn from_der(der: &[u8], what: &str) -> Result<Self, PkiError> {
        let x509 = parse_certificate(der, what)?;
        Ok(Self::of(&x509))
    }

    pub(super) fn of(x509: &X509Certificate<'_>) -> Self {
        let self_signed = x509.issuer().as_raw() == x509.subject().as_raw()
            && x509.verify_signature(None).is_ok();
        CertificateInfo {
            subject: x509.subject().to_string(),
            issuer: x509.issuer().to_string(),
            serial: serial_hex(x509.raw_serial()),
            not_before: x509.validity().not_before.to_datetime(),
            not_after: x509.validity().not_after.to_datetime(),
            is_ca: x509.is_ca(),
            self_signed,
        }
    }
}

/// `2026-05-01T12:00:00Z`: how provd prints a certificate's dates.
pub fn rfc3339(t: OffsetDateTime) -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::from(t)).to_string()
}

/// Parses one DER certificate, naming `what` when it is not one.
pub(super) fn parse_certificate<'a>(
    der: &'a [u8],
    what: &str,
) -> Result<X509Certificate<'a>, PkiError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, x509)| x509)
        .map_err(|e| PkiError::InvalidCertificate {
            what: what.to_owned(),
            reason: format!("cannot parse it: {e}"),
        })
}

/// The DER of every `CERTIFICATE` block in `pem`, in order.
pub fn certificates_from_pem(pem: &[u8], what: &str) -> Result<Vec<Vec<u8>>, PkiError> {
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| PkiError::InvalidCertificate {
            what: what.to_owned(),
            reason: format!("malformed PEM: {e}"),
        })?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(PkiError::InvalidCertificate {
            what: what.to_owned(),
            reason: "contains no PEM CERTIFICATE block".to_owned(),
        });
    }
    Ok(out)
}

/// Whether `cert_der` names `issuer_der`'s subject as its issuer and
/// `issuer_der`'s key verifies its signature. False for anything that does
/// not parse.
pub fn is_signed_by(cert_der: &[u8], issuer_der: &[u8]) -> bool {
    let (Ok((_, cert)), Ok((_, issuer))) = (
        x509_parser::parse_x509_certificate(cert_der),
        x509_parser::parse_x509_certificate(issuer_der),
    ) else {
        return false;
    };
    signed_by(&cert, &issuer)
}

pub(super) fn signed_by(cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    cert.issuer().as_raw() == issuer.subject().as_raw()
        && cert.verify_signature(Some(issuer.public_key())).is_ok()
}

/// The facts of one CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// The issuer DN.
    pub issuer: String,
    /// The revoked serial numbers, lower-case hex.
    pub revoked: Vec<String>,
    pub this_update: OffsetDateTime,
    pub next_update: Option<OffsetDateTime>,
}

/// Parses `der` as a CRL and checks that one of `cas` (DER) signed it:
/// a CRL of another CA would revoke nothing provd accepts, so a file
/// holding one is a mistake to report, not to ignore.
pub fn crl_signed_by_any(der: &[u8], cas: &[Vec<u8>]) -> Result<CrlInfo, String> {
    let crl = parse_crl(der)?;
    let info = crl_info(&crl);
    let signed = cas.iter().any(|ca| {
        x509_parser::parse_x509_certificate(ca).is_ok_and(|(_, ca)| crl_signed_by(&crl, &ca))
    });
    if signed {
        Ok(info)
    } else {
        Err(format!(
            "the CRL of {:?} is not signed by any CA in the client CA file",
            info.issuer
        ))
    }
}

/// The DER of each CRL in a CRL file's contents: PEM (`X509 CRL` blocks,
/// several allowed) or one DER CRL.
pub fn crl_ders(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let text_start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let is_pem = text_start.is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN"));
    if !is_pem {
        if text_start.is_none() {
            return Err("is empty".to_owned());
        }
        parse_crl(bytes)?;
        return Ok(vec![bytes.to_vec()]);
    }
    let mut out = Vec::new();
    for block in Pem::iter_from_buffer(bytes) {
        let block = block.map_err(|e| format!("malformed PEM: {e}"))?;
        if block.label == "X509 CRL" {
            parse_crl(&block.contents)?;
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err("holds no PEM X509 CRL block".to_owned());
    }
    Ok(out)
}

pub(super) fn parse_crl(der: &[u8]) -> Result<CertificateRevocationList<'_>, String> {
    match x509_parser::parse_x509_crl(der) {
        Ok(([], crl)) => Ok(crl),
        Ok(_) => Err("trailing bytes after the CRL".to_owned()),
        Err(e) => Err(format!("not an X.509 CRL: {e}")),
    }
}

pub(super) fn crl_info(crl: &CertificateRevocationList<'_>) -> CrlInfo {
    CrlInfo {
        issuer: crl.issuer().to_string(),
        revoked: crl
            .iter_revoked_certificates()
            .map(|r| serial_hex(r.raw_serial()))
            .collect(),
        this_update: crl.last_update().to_datetime(),
        next_update: crl.next_update().map(|t| t.to_datetime()),
    }
}

pub(super) fn crl_signed_by(crl: &CertificateRevocationList<'_>, ca: &X509Certificate<'_>) -> bool {
    crl.issuer().as_raw() == ca.subject().as_raw() && crl.verify_signature(ca.public_key()).is_ok()
}

/// A DER INTEGER's content bytes as lower-case hex, without the sign byte
/// DER adds before a high bit.
pub(super) fn serial_hex(raw: &[u8]) -> String {
    let trimmed = match raw {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    hex::encode(trimmed)
}

/// The subject public key (the bit string's bytes) of a DER certificate.
pub fn public_key(der: &[u8]) -> Result<Vec<u8>, String> {
    let (_, x509) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    Ok(x509.public_key().subject_public_key.data.to_vec())
}

/// Checks `signature` over `message` with `scheme` against the public key
/// of the DER certificate, through rustls' ring provider (provd's one).
pub fn verify_signature(
    cert_der: &[u8],
    scheme: rustls::SignatureScheme,
    message: &[u8],
    signature: &[u8],
) -> Result<(), String> {
    let key = public_key(cert_der)?;
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

#[cfg(test)]
mod tests {
    use super::super::tests::{DAY, pem_to_der};
    use super::super::{Ca, Role};
    use super::*;

    #[test]
    fn facts_and_signers() {
        let ca = Ca::generate("inspect CA", DAY).unwrap();
        let other = Ca::generate("other CA", DAY).unwrap();
        let ca_der = pem_to_der(&ca.cert_pem());
        let leaf = ca.issue_client("alice", &[Role::Viewer], DAY).unwrap();
        let leaf_der = pem_to_der(&leaf.cert_pem);

        let info = CertificateInfo::from_der(&leaf_der, "leaf").unwrap();
        assert_eq!(info.subject, "CN=alice");
        assert_eq!(info.issuer, "CN=inspect CA");
        assert!(!info.is_ca && !info.self_signed);
        assert!(!info.serial.is_empty() && !info.serial.contains(':'));
        assert!(info.not_after > OffsetDateTime::now_utc());
        let ca_info = CertificateInfo::from_der(&ca_der, "CA").unwrap();
        assert!(ca_info.is_ca && ca_info.self_signed);

        assert!(is_signed_by(&leaf_der, &ca_der));
        assert!(!is_signed_by(&leaf_der, &pem_to_der(&other.cert_pem())));
        assert!(!is_signed_by(b"junk", &ca_der));

        let err = CertificateInfo::from_der(b"junk", "server certificate").unwrap_err();
        assert!(err.to_string().contains("server certificate"), "{err}");
        let both = format!("{}{}", leaf.cert_pem, ca.cert_pem());
        assert_eq!(
            certificates_from_pem(both.as_bytes(), "chain").unwrap(),
            vec![leaf_der, ca_der]
        );
        assert!(certificates_from_pem(b"", "chain").is_err());
    }

    #[test]
    fn serial_hex_drops_the_sign_byte_only() {
        assert_eq!(serial_hex(&[0x00, 0x80, 0x01]), "8001");
        assert_eq!(serial_hex(&[0x7f]), "7f");
        assert_eq!(serial_hex(&[0x00]), "00");
    }
}
