//! Certificate authority and certificate issuance for provd's mutual TLS.
//!
//! provd authenticates every client by its TLS client certificate. The
//! certificate's subject Common Name is the client's identity (the
//! "initiator" in logs) and its roles are carried as URI subject alternative
//! names of the form `urn:provd:role:<role>`.
//!
//! This module backs `provd pki init`, `issue`, `renew` and `crl`, and
//! provides [`identity_from_der`] for extracting the identity from a client
//! certificate that rustls has already verified.
//!
//! [`Ca`] (`ca`) creates or loads the CA; `issue` issues server and client
//! certificates and reads the identity back; `files` writes them for the
//! `provd pki` commands; `renew` issues a leaf again before it expires;
//! `crl` makes the CA's client-certificate revocation list; `inspect`
//! reads certificates and CRLs back (expiry, serial, issuer, which CA
//! signed what) for those commands, the TLS listener and Verify; `store`
//! the server certificate, its key and the client CAs from the Windows
//! certificate store (`windows_store`, cfg(windows)).

mod ca;
mod crl;
mod files;
mod inspect;
mod issue;
mod renew;
pub mod store;
// Used by the Windows store alone; tested everywhere.
#[cfg_attr(not(windows), allow(dead_code))]
mod store_key;
#[cfg(windows)]
#[allow(unsafe_code)]
mod windows_store;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;

use time::OffsetDateTime;

pub use ca::Ca;
pub use crl::{CrlOptions, CrlOutcome, crl};
pub use files::{InitOptions, IssueKind, IssueOptions, init, issue};
pub use inspect::{
    CertificateInfo, CrlInfo, ServedCertificates, certificates_from_pem, crl_ders,
    crl_signed_by_any, is_signed_by, public_key, rfc3339, verify_signature,
};
pub use issue::{CertIdentity, cert_identity, identity_from_der};
pub use renew::{RenewOptions, RenewOutcome, Renewed, renew};

/// Prefix of the URI SAN that carries a role: `urn:provd:role:<role>`.
pub const ROLE_URI_PREFIX: &str = "urn:provd:role:";

/// A role granted to a client through its certificate.
///
/// Ordered by privilege: `Viewer < Operator < Admin`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Ord, PartialOrd, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only access.
    Viewer,
    /// Viewer plus operational changes.
    Operator,
    /// Everything.
    Admin,
}

impl Role {
    /// Every role, in privilege order.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The role's name as used on the command line and in certificates.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The URI SAN that grants this role: `urn:provd:role:<role>`.
    pub fn san_uri(self) -> String {
        format!("{ROLE_URI_PREFIX}{}", self.as_str())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| PkiError::UnknownRole(s.to_owned()))
    }
}

/// Errors from certificate generation, loading and parsing.
///
/// Every message names what failed (the file, the name, the certificate).
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A role string is not one of `viewer`, `operator`, `admin`.
    #[error("unknown role {0:?} (expected viewer, operator or admin)")]
    UnknownRole(String),
    /// A name (common name, DNS name, output file name) is unusable.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// Which name, e.g. "client name" or "server DNS name".
        what: &'static str,
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A client certificate was requested without any role.
    #[error("client certificate {common_name:?} needs at least one role")]
    NoRoles {
        /// The client's common name.
        common_name: String,
    },
    /// A server certificate was requested without DNS names or IPs.
    #[error("server certificate needs at least one DNS name or IP address")]
    NoServerNames,
    /// The requested validity period is unusable.
    #[error("invalid validity period: {0}")]
    InvalidValidity(String),
    /// rcgen failed to create a key or certificate.
    #[error("cannot generate {what}: {error}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The underlying rcgen error.
        error: rcgen::Error,
    },
    /// The CA certificate or key could not be loaded or is unsuitable.
    #[error("invalid {what}: {reason}")]
    InvalidCa {
        /// Which input, e.g. "CA certificate /etc/provd/pki/ca.pem".
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA certificate is past its notAfter date.
    #[error("CA certificate {subject:?} expired at {not_after}; cannot issue certificates with it")]
    CaExpired {
        /// The CA's subject DN.
        subject: String,
        /// When it expired.
        not_after: OffsetDateTime,
    },
    /// A client certificate could not be interpreted.
    #[error("invalid client certificate: {0}")]
    BadCertificate(String),
    /// A certificate file cannot be read as one, or cannot be used for what
    /// was asked (renewed, revoked).
    #[error("{what}: {reason}")]
    InvalidCertificate {
        /// Which certificate, e.g. "certificate /etc/provd/pki/server.pem".
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A CRL file cannot be read as one, or belongs to another CA.
    #[error("{what}: {reason}")]
    InvalidCrl {
        /// Which CRL, e.g. "CRL /etc/provd/pki/crl.pem".
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Options that do not go together.
    #[error("{0}")]
    InvalidOptions(&'static str),
    /// A file system operation failed.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// The operation, e.g. "read" or "create directory".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        error: io::Error,
    },
    /// An output file exists and overwriting was not requested.
    #[error("{} already exists; refusing to overwrite it (use --force to replace it)", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
}

/// A PEM-encoded certificate and its PEM-encoded (PKCS#8) private key.
///
/// `Debug` does not print the private key.
#[derive(Clone)]
pub struct PemPair {
    /// The certificate, PEM encoded.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM encoded. Secret.
    pub key_pem: String,
}

impl fmt::Debug for PemPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemPair")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use x509_parser::certificate::X509Certificate;

    use super::*;

    pub(super) const DAY: Duration = Duration::from_secs(24 * 3600);

    pub(super) fn pem_to_der(pem: &str) -> Vec<u8> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        assert_eq!(block.label, "CERTIFICATE");
        block.contents
    }

    pub(super) fn parse(der: &[u8]) -> X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    pub(super) fn assert_chains(leaf_der: &[u8], ca_pem: &str) {
        let ca_der = pem_to_der(ca_pem);
        let ca = parse(&ca_der);
        let leaf = parse(leaf_der);
        assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        // AKI of the leaf equals SKI of the CA.
        let aki = leaf
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        let ski = ca
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => {
                    Some(k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(aki, ski);
    }

    #[test]
    fn role_strings() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(role.to_string(), role.as_str());
            assert_eq!(role.san_uri(), format!("urn:provd:role:{role}"));
        }
        assert!(matches!(
            "root".parse::<Role>(),
            Err(PkiError::UnknownRole(s)) if s == "root"
        ));
        assert!("Admin".parse::<Role>().is_err());
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }
}
