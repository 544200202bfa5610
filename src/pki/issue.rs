//! Leaf certificates: servers (DNS and IP SANs, serverAuth) and clients
//! (CN = identity, one `urn:provd:role:<role>` URI SAN per role,
//! clientAuth), and reading that identity back from a verified client
//! certificate.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use time::{OffsetDateTime, UtcOffset};
use x509_parser::extensions::GeneralName;

use super::ca::{common_name_dn, validity_window};
use super::{Ca, PemPair, PkiError, ROLE_URI_PREFIX, Role};

/// Upper bound for a subject Common Name (RFC 5280 `ub-common-name`).
const MAX_COMMON_NAME_CHARS: usize = 64;

impl Ca {
    /// Issues a server certificate with the given DNS names and IP addresses
    /// as SANs, the serverAuth EKU and CN = the first name (the first DNS
    /// name, or the first IP if there are no DNS names).
    ///
    /// A "DNS name" that parses as an IP address is added as an IP SAN.
    pub fn issue_server(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Duration,
    ) -> Result<PemPair, PkiError> {
        let (not_before, not_after) = validity_window(validity)?;

        let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
        let mut push_unique = |san: SanType| {
            if !sans.contains(&san) {
                sans.push(san);
            }
        };
        for name in dns_names {
            if let Ok(ip) = name.parse::<IpAddr>() {
                push_unique(SanType::IpAddress(ip));
                continue;
            }
            validate_dns_name(name)?;
            let ia5 = name
                .as_str()
                .try_into()
                .map_err(|_| PkiError::InvalidName {
                    what: "server DNS name",
                    value: name.clone(),
                    reason: "must be ASCII",
                })?;
            push_unique(SanType::DnsName(ia5));
        }
        for ip in ips {
            push_unique(SanType::IpAddress(*ip));
        }

        let common_name = match (dns_names.first(), ips.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return Err(PkiError::NoServerNames),
        };

        let params = leaf_params(
            &common_name,
            sans,
            ExtendedKeyUsagePurpose::ServerAuth,
            not_before,
            not_after,
        );
        self.sign_leaf(&params, &format!("server certificate {common_name:?}"))
    }

    /// Issues a client certificate with CN = `common_name`, one URI SAN
    /// `urn:provd:role:<role>` per role, and the clientAuth EKU.
    pub fn issue_client(
        &self,
        common_name: &str,
        roles: &[Role],
        validity: Duration,
    ) -> Result<PemPair, PkiError> {
        let (not_before, not_after) = validity_window(validity)?;
        self.issue_client_with_validity(common_name, roles, not_before, not_after)
    }

    /// Like [`Ca::issue_client`] but with an explicit validity window (which
    /// may lie entirely in the past or future).
    pub fn issue_client_with_validity(
        &self,
        common_name: &str,
        roles: &[Role],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<PemPair, PkiError> {
        validate_common_name("client name", common_name)?;
        if roles.is_empty() {
            return Err(PkiError::NoRoles {
                common_name: common_name.to_owned(),
            });
        }
        if not_before >= not_after {
            return Err(PkiError::InvalidValidity(format!(
                "not_before {not_before} is not before not_after {not_after}"
            )));
        }

        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        let sans = roles
            .iter()
            .map(|role| {
                role.san_uri()
                    .try_into()
                    .map(SanType::URI)
                    .map_err(|error| PkiError::Generate {
                        what: format!("role URI for {role}"),
                        error,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let params = leaf_params(
            common_name,
            sans,
            ExtendedKeyUsagePurpose::ClientAuth,
            not_before.to_offset(UtcOffset::UTC),
            not_after.to_offset(UtcOffset::UTC),
        );
        self.sign_leaf(&params, &format!("client certificate {common_name:?}"))
    }
}

/// Who a verified client certificate names: what authorization reads
/// (common name, roles) and what the audit trail records besides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    pub common_name: String,
    /// From the `urn:provd:role:<role>` URI SANs, sorted, deduplicated.
    pub roles: Vec<Role>,
    /// The serial number, lowercase hex without separators.
    pub serial: String,
    /// The issuer's distinguished name (RFC 4514 string form).
    pub issuer: String,
}

/// Reads the identity from a DER client certificate that rustls has already
/// verified: returns the subject Common Name and the roles from the
/// `urn:provd:role:<role>` URI SANs, sorted and deduplicated.
///
/// Unknown role names after the prefix are ignored. A certificate without
/// any role yields an empty list (the caller decides to deny). A subject
/// with no Common Name, an empty one, or more than one is an error.
pub fn identity_from_der(der: &[u8]) -> Result<(String, Vec<Role>), PkiError> {
    cert_identity(der).map(|id| (id.common_name, id.roles))
}

/// [`identity_from_der`] with the serial number and the issuer.
pub fn cert_identity(der: &[u8]) -> Result<CertIdentity, PkiError> {
    let (_, x509) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| PkiError::BadCertificate(format!("cannot parse DER: {e}")))?;

    let mut common_names = x509.subject().iter_common_name();
    let first = common_names
        .next()
        .ok_or_else(|| PkiError::BadCertificate("subject has no common name (CN)".to_owned()))?;
    if common_names.next().is_some() {
        return Err(PkiError::BadCertificate(
            "subject has more than one common name (CN)".to_owned(),
        ));
    }
    let common_name = first.as_str().map_err(|e| {
        PkiError::BadCertificate(format!("subject common name is not a string: {e}"))
    })?;
    if common_name.is_empty() {
        return Err(PkiError::BadCertificate(
            "subject common name (CN) is empty".to_owned(),
        ));
    }

    let mut roles = Vec::new();
    let san = x509
        .subject_alternative_name()
        .map_err(|e| PkiError::BadCertificate(format!("invalid subjectAltName extension: {e}")))?;
    if let Some(san) = san {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && let Some(role) = uri.strip_prefix(ROLE_URI_PREFIX)
                && let Ok(role) = role.parse::<Role>()
            {
                roles.push(role);
            }
        }
    }
    roles.sort();
    roles.dedup();
    Ok(CertIdentity {
        common_name: common_name.to_owned(),
        roles,
        serial: hex::encode(x509.raw_serial()),
        issuer: x509.issuer().to_string(),
    })
}

fn leaf_params(
    common_name: &str,
    sans: Vec<SanType>,
    eku: ExtendedKeyUsagePurpose,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_dn(common_name);
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = not_after;
    params
}

pub(super) fn validate_common_name(what: &'static str, name: &str) -> Result<(), PkiError> {
    let reject = |reason| {
        Err(PkiError::InvalidName {
            what,
            value: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return reject("must not be empty");
    }
    if name.trim() != name {
        return reject("must not start or end with whitespace");
    }
    if name.chars().any(char::is_control) {
        return reject("must not contain control characters");
    }
    if name.chars().count() > MAX_COMMON_NAME_CHARS {
        return reject("must be at most 64 characters");
    }
    Ok(())
}

fn validate_dns_name(name: &str) -> Result<(), PkiError> {
    let reject = |reason| {
        Err(PkiError::InvalidName {
            what: "server DNS name",
            value: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return reject("must not be empty");
    }
    if name.len() > 253 {
        return reject("must be at most 253 characters");
    }
    for (i, label) in name.split('.').enumerate() {
        if label.is_empty() {
            return reject("contains an empty label");
        }
        if label.len() > 63 {
            return reject("has a label longer than 63 characters");
        }
        if label == "*" {
            if i != 0 {
                return reject("may only use '*' as the whole leftmost label");
            }
            continue;
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return reject("may only contain letters, digits, '-', '_' and '.'");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{DAY, assert_chains, parse, pem_to_der};
    use super::*;

    #[test]
    fn issue_server_and_client() {
        let ca = Ca::generate("test CA", DAY).unwrap();

        let server = ca
            .issue_server(
                &["provd.example.test".to_owned(), "10.0.0.1".to_owned()],
                &["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
                DAY,
            )
            .unwrap();
        let der = pem_to_der(&server.cert_pem);
        assert_chains(&der, &ca.cert_pem());
        let cert = parse(&der);
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "provd.example.test");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let san = cert.subject_alternative_name().unwrap().unwrap().value;
        let names: Vec<_> = san.general_names.iter().map(|n| format!("{n}")).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(names.iter().any(|n| n.contains("provd.example.test")));
        assert!(server.key_pem.contains("PRIVATE KEY"));
        assert!(!format!("{server:?}").contains("PRIVATE KEY"));

        let client = ca
            .issue_client("alice", &[Role::Admin, Role::Viewer, Role::Admin], DAY)
            .unwrap();
        let der = pem_to_der(&client.cert_pem);
        assert_chains(&der, &ca.cert_pem());
        let cert = parse(&der);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(!cert.is_ca());
        let (cn, roles) = identity_from_der(&der).unwrap();
        assert_eq!(cn, "alice");
        // The audit trail's view: the serial and the issuer besides.
        let id = cert_identity(&der).unwrap();
        assert_eq!(id.serial, hex::encode(cert.raw_serial()));
        assert!(!id.serial.is_empty() && !id.serial.contains(':'));
        assert_eq!(id.issuer, "CN=test CA");
        assert_eq!(roles, vec![Role::Viewer, Role::Admin]);
    }

    #[test]
    fn server_with_only_ip_uses_ip_as_cn() {
        let ca = Ca::generate("test CA", DAY).unwrap();
        let server = ca
            .issue_server(&[], &["127.0.0.1".parse().unwrap()], DAY)
            .unwrap();
        let der = pem_to_der(&server.cert_pem);
        let cert = parse(&der);
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "127.0.0.1");
    }

    #[test]
    fn identity_ignores_unknown_roles_and_other_uris() {
        let ca = Ca::generate("test CA", DAY).unwrap();
        let (not_before, not_after) = validity_window(DAY).unwrap();
        let sans = [
            "urn:provd:role:superuser",
            "urn:provd:role:operator",
            "urn:other:role:admin",
            "https://example.test/admin",
        ]
        .into_iter()
        .map(|s| SanType::URI(s.try_into().unwrap()))
        .collect();
        let params = leaf_params(
            "bob",
            sans,
            ExtendedKeyUsagePurpose::ClientAuth,
            not_before,
            not_after,
        );
        let pair = ca.sign_leaf(&params, "test").unwrap();
        let (cn, roles) = identity_from_der(&pem_to_der(&pair.cert_pem)).unwrap();
        assert_eq!(cn, "bob");
        assert_eq!(roles, vec![Role::Operator]);
    }

    #[test]
    fn identity_rejects_garbage() {
        assert!(matches!(
            identity_from_der(b"not a certificate"),
            Err(PkiError::BadCertificate(_))
        ));
    }

    #[test]
    fn expired_client_validity_is_in_cert() {
        let ca = Ca::generate("test CA", DAY).unwrap();
        let now = OffsetDateTime::now_utc();
        let not_before = now - time::Duration::days(2);
        let not_after = now - time::Duration::days(1);
        let pair = ca
            .issue_client_with_validity("old", &[Role::Viewer], not_before, not_after)
            .unwrap();
        let der = pem_to_der(&pair.cert_pem);
        let cert = parse(&der);
        let validity = cert.validity();
        assert!(!validity.is_valid());
        assert_eq!(
            validity.not_after.timestamp(),
            not_after.unix_timestamp(),
            "not_after is kept to the second"
        );
        assert_eq!(validity.not_before.timestamp(), not_before.unix_timestamp());

        assert!(matches!(
            ca.issue_client_with_validity("old", &[Role::Viewer], not_after, not_before),
            Err(PkiError::InvalidValidity(_))
        ));
    }

    #[test]
    fn bad_inputs_rejected() {
        let ca = Ca::generate("test CA", DAY).unwrap();
        for bad in ["", " alice", "a\nb", &"x".repeat(65)] {
            let err = ca.issue_client(bad, &[Role::Viewer], DAY).unwrap_err();
            assert!(
                matches!(err, PkiError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(matches!(
            ca.issue_client("alice", &[], DAY),
            Err(PkiError::NoRoles { .. })
        ));
        assert!(matches!(
            ca.issue_server(&[], &[], DAY),
            Err(PkiError::NoServerNames)
        ));
        for bad in ["", "a..b", "a b", "bad/name", ".lead", "x.*.y", "ünï.test"] {
            let err = ca.issue_server(&[bad.to_owned()], &[], DAY).unwrap_err();
            assert!(
                matches!(err, PkiError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(
            ca.issue_server(&["*.example.test".to_owned()], &[], DAY)
                .is_ok()
        );
        assert!(matches!(
            ca.issue_client("alice", &[Role::Viewer], Duration::ZERO),
            Err(PkiError::InvalidValidity(_))
        ));
        assert!(matches!(
            ca.issue_client("alice", &[Role::Viewer], Duration::MAX),
            Err(PkiError::InvalidValidity(_))
        ));
        assert!(Ca::generate("", DAY).is_err());
    }
}
