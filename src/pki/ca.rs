//! The certificate authority: a new self-signed one (`provd pki init`) or
//! one loaded from PEM, and the signing of every leaf it issues.

use std::fmt;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use time::OffsetDateTime;
use x509_parser::pem::Pem;

use super::issue::validate_common_name;
use super::{PemPair, PkiError};

/// `not_before` is backdated by this much to tolerate clock skew between
/// the issuing machine and the peers that validate the certificate.
pub(super) const CLOCK_SKEW: time::Duration = time::Duration::minutes(1);

/// A certificate authority able to issue provd server and client certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    /// The CA certificate whose key `issuer` holds (DER).
    cert_der: Vec<u8>,
    subject: String,
    not_after: OffsetDateTime,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Ca {
    /// Creates a new self-signed CA (ECDSA P-256) valid for `validity` from now.
    ///
    /// The CA may sign end-entity certificates only (path length 0).
    pub fn generate(common_name: &str, validity: Duration) -> Result<Ca, PkiError> {
        validate_common_name("CA common name", common_name)?;
        let (not_before, not_after) = validity_window(validity)?;

        let mut params = CertificateParams::default();
        params.distinguished_name = common_name_dn(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = not_before;
        params.not_after = not_after;

        let key = generate_key("CA private key")?;
        let cert = params
            .self_signed(&key)
            .map_err(|error| PkiError::Generate {
                what: format!("CA certificate {common_name:?}"),
                error,
            })?;
        Ok(Ca {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            subject: format!("CN={common_name}"),
            not_after,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its PEM certificate and PEM (PKCS#8, SEC1 or PKCS#1) key.
    ///
    /// `cert_pem` may be a bundle of several certificates (for example the
    /// old and new CA during a rotation); the one whose public key matches
    /// `key_pem` is used for signing.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, PkiError> {
        Self::from_pem_described(cert_pem, key_pem, "CA certificate", "CA private key")
    }

    pub(super) fn from_pem_described(
        cert_pem: &str,
        key_pem: &str,
        cert_what: &str,
        key_what: &str,
    ) -> Result<Ca, PkiError> {
        let invalid = |what: &str, reason: String| PkiError::InvalidCa {
            what: what.to_owned(),
            reason,
        };

        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| invalid(key_what, format!("cannot parse private key: {e}")))?;

        let mut seen_certs = 0usize;
        let mut matching = None;
        for block in Pem::iter_from_buffer(cert_pem.as_bytes()) {
            let block = block.map_err(|e| invalid(cert_what, format!("malformed PEM: {e}")))?;
            if block.label != "CERTIFICATE" {
                continue;
            }
            seen_certs += 1;
            let x509 = block
                .parse_x509()
                .map_err(|e| invalid(cert_what, format!("cannot parse certificate: {e}")))?;
            if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
                continue;
            }
            let subject = x509.subject().to_string();
            if !x509.is_ca() {
                return Err(invalid(
                    cert_what,
                    format!("certificate {subject:?} is not a CA (basicConstraints cA is not set)"),
                ));
            }
            if let Ok(Some(ku)) = x509.key_usage()
                && !ku.value.key_cert_sign()
            {
                return Err(invalid(
                    cert_what,
                    format!("certificate {subject:?} lacks the keyCertSign key usage"),
                ));
            }
            let not_after = x509.validity().not_after.to_datetime();
            matching = Some((block.contents.clone(), subject, not_after));
            break;
        }

        if seen_certs == 0 {
            return Err(invalid(
                cert_what,
                "contains no PEM CERTIFICATE block".to_owned(),
            ));
        }
        let Some((der, subject, not_after)) = matching else {
            return Err(invalid(
                key_what,
                format!("does not match (the public key of) any certificate in {cert_what}"),
            ));
        };

        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key)
            .map_err(|e| invalid(cert_what, format!("unusable as issuer: {e}")))?;

        let mut cert_pem = cert_pem.trim().to_owned();
        cert_pem.push('\n');
        Ok(Ca {
            issuer,
            cert_pem,
            cert_der: der,
            subject,
            not_after,
        })
    }

    /// The CA certificate, PEM encoded. For a CA loaded with [`Ca::from_pem`]
    /// this is the PEM text it was loaded from.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA private key, PKCS#8 PEM encoded. Secret.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The certificate of the key this CA signs with (DER): for a bundle,
    /// the one that matched the key.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate's notAfter.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Refuses to sign once the CA has expired.
    fn check_not_expired(&self) -> Result<(), PkiError> {
        if OffsetDateTime::now_utc() >= self.not_after {
            return Err(PkiError::CaExpired {
                subject: self.subject.clone(),
                not_after: self.not_after,
            });
        }
        Ok(())
    }

    pub(super) fn sign_leaf(
        &self,
        params: &CertificateParams,
        what: &str,
    ) -> Result<PemPair, PkiError> {
        self.check_not_expired()?;
        let key = generate_key(&format!("private key for {what}"))?;
        Ok(PemPair {
            cert_pem: self.sign(params, &key, what)?,
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs `params` for `public_key` (a new key pair, or the public key
    /// of the certificate being renewed); the certificate as PEM.
    pub(super) fn sign(
        &self,
        params: &CertificateParams,
        public_key: &impl PublicKeyData,
        what: &str,
    ) -> Result<String, PkiError> {
        self.check_not_expired()?;
        params
            .signed_by(public_key, &self.issuer)
            .map(|cert| cert.pem())
            .map_err(|error| PkiError::Generate {
                what: what.to_owned(),
                error,
            })
    }

    /// Signs a CRL with the CA's key; the CRL as PEM.
    pub(super) fn sign_crl(
        &self,
        params: &CertificateRevocationListParams,
    ) -> Result<String, PkiError> {
        self.check_not_expired()?;
        let generate = |error| PkiError::Generate {
            what: format!("CRL of {:?}", self.subject),
            error,
        };
        params
            .signed_by(&self.issuer)
            .and_then(|crl| crl.pem())
            .map_err(generate)
    }
}

pub(super) fn generate_key(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|error| PkiError::Generate {
        what: what.to_owned(),
        error,
    })
}

pub(super) fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Returns `(now - CLOCK_SKEW, now + validity)`.
pub(super) fn validity_window(
    validity: Duration,
) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    let too_long = || PkiError::InvalidValidity(format!("validity of {validity:?} is too long"));
    let span = validity_span(validity)?;
    let now = OffsetDateTime::now_utc();
    let not_after = now.checked_add(span).ok_or_else(too_long)?;
    Ok((now.saturating_sub(CLOCK_SKEW), not_after))
}

/// A validity period (or a CRL's time to its next update) as a `time`
/// duration: greater than zero and representable.
pub(super) fn validity_span(validity: Duration) -> Result<time::Duration, PkiError> {
    if validity.is_zero() {
        return Err(PkiError::InvalidValidity(
            "validity must be greater than zero".to_owned(),
        ));
    }
    time::Duration::try_from(validity)
        .map_err(|_| PkiError::InvalidValidity(format!("validity of {validity:?} is too long")))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{DAY, assert_chains, parse, pem_to_der};
    use super::*;
    use crate::pki::Role;

    #[test]
    fn ca_is_constrained_ca() {
        let ca = Ca::generate("test CA", DAY).unwrap();
        let der = pem_to_der(&ca.cert_pem());
        let cert = parse(&der);
        assert!(cert.is_ca());
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        cert.verify_signature(None).unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(cert.validity().not_before.to_datetime() < now);
        assert!(cert.validity().not_after.to_datetime() > now + time::Duration::hours(23));
        assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn from_pem_round_trip_issues_chaining_certs() {
        let ca = Ca::generate("round trip CA", DAY).unwrap();
        let loaded = Ca::from_pem(&ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(loaded.key_pem(), ca.key_pem());

        let client = loaded
            .issue_client("carol", &[Role::Operator], DAY)
            .unwrap();
        assert_chains(&pem_to_der(&client.cert_pem), &ca.cert_pem());
        let server = loaded
            .issue_server(&["provd.example.test".to_owned()], &[], DAY)
            .unwrap();
        assert_chains(&pem_to_der(&server.cert_pem), &ca.cert_pem());
    }

    #[test]
    fn from_pem_picks_matching_cert_from_bundle() {
        let old = Ca::generate("old CA", DAY).unwrap();
        let new = Ca::generate("new CA", DAY).unwrap();
        let bundle = format!("{}{}", old.cert_pem(), new.cert_pem());
        let loaded = Ca::from_pem(&bundle, &new.key_pem()).unwrap();
        let client = loaded.issue_client("dave", &[Role::Viewer], DAY).unwrap();
        assert_chains(&pem_to_der(&client.cert_pem), &new.cert_pem());
    }

    #[test]
    fn from_pem_rejects_bad_input() {
        let ca = Ca::generate("CA one", DAY).unwrap();
        let other = Ca::generate("CA two", DAY).unwrap();

        let err = Ca::from_pem(&ca.cert_pem(), &other.key_pem()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");

        let err = Ca::from_pem("", &ca.key_pem()).unwrap_err();
        assert!(err.to_string().contains("no PEM CERTIFICATE"), "{err}");

        let err = Ca::from_pem(&ca.cert_pem(), "garbage").unwrap_err();
        assert!(err.to_string().contains("CA private key"), "{err}");

        // A leaf is not a CA even with its own key.
        let leaf = ca.issue_client("eve", &[Role::Viewer], DAY).unwrap();
        let err = Ca::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
        assert!(err.to_string().contains("not a CA"), "{err}");
    }
}
