//! Certificate authority and certificate issuance for provd's mutual TLS.
//!
//! provd authenticates every client by its TLS client certificate. The
//! certificate's subject Common Name is the client's identity (the
//! "initiator" in logs) and its roles are carried as URI subject alternative
//! names of the form `urn:provd:role:<role>`.
//!
//! This module backs `provd pki init` and `provd pki issue`, and provides
//! [`identity_from_der`] for extracting the identity from a client
//! certificate that rustls has already verified.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use time::{OffsetDateTime, UtcOffset};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Prefix of the URI SAN that carries a role: `urn:provd:role:<role>`.
pub const ROLE_URI_PREFIX: &str = "urn:provd:role:";

/// `not_before` is backdated by this much to tolerate clock skew between
/// the issuing machine and the peers that validate the certificate.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(1);

/// Upper bound for a subject Common Name (RFC 5280 `ub-common-name`).
const MAX_COMMON_NAME_CHARS: usize = 64;

/// Upper bound for the `name` of `provd pki issue` (it becomes a file name).
const MAX_FILE_STEM_LEN: usize = 200;

/// Common Name of the CA created by [`init`].
const INIT_CA_COMMON_NAME: &str = "provd CA";

const CA_CERT_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key";

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

/// A certificate authority able to issue provd server and client certificates.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
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

    fn from_pem_described(
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

    fn sign_leaf(&self, params: &CertificateParams, what: &str) -> Result<PemPair, PkiError> {
        if OffsetDateTime::now_utc() >= self.not_after {
            return Err(PkiError::CaExpired {
                subject: self.subject.clone(),
                not_after: self.not_after,
            });
        }
        let key = generate_key(&format!("private key for {what}"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|error| PkiError::Generate {
                what: what.to_owned(),
                error,
            })?;
        Ok(PemPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Reads the identity from a DER client certificate that rustls has already
/// verified: returns the subject Common Name and the roles from the
/// `urn:provd:role:<role>` URI SANs, sorted and deduplicated.
///
/// Unknown role names after the prefix are ignored. A certificate without
/// any role yields an empty list (the caller decides to deny). A subject
/// with no Common Name, an empty one, or more than one is an error.
pub fn identity_from_der(der: &[u8]) -> Result<(String, Vec<Role>), PkiError> {
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
    Ok((common_name.to_owned(), roles))
}

/// Options for `provd pki init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Directory to write into (created if missing).
    pub dir: PathBuf,
    /// DNS names for the server certificate.
    pub server_dns: Vec<String>,
    /// IP addresses for the server certificate.
    pub server_ips: Vec<IpAddr>,
    /// Validity of the CA and of every issued certificate.
    pub validity: Duration,
    /// Overwrite existing files.
    pub force: bool,
}

/// `provd pki init DIR`: creates a CA, a server certificate and one client
/// certificate per role (CN = the role name), writing `ca.pem`, `ca.key`,
/// `server.pem`, `server.key`, `client-<role>.pem` and `client-<role>.key`
/// into `opts.dir`. Private keys are written with mode 0600 on unix.
///
/// Refuses to overwrite existing files (starting with `ca.key`) unless
/// `opts.force`. Returns the files written.
pub fn init(opts: &InitOptions) -> Result<Vec<PathBuf>, PkiError> {
    if opts.server_dns.is_empty() && opts.server_ips.is_empty() {
        return Err(PkiError::NoServerNames);
    }
    let dir = &opts.dir;

    // Key before certificate for each pair, so a watcher reloading on
    // certificate changes sees the matching key already in place.
    let mut names = vec![
        CA_KEY_FILE.to_owned(),
        CA_CERT_FILE.to_owned(),
        "server.key".to_owned(),
        "server.pem".to_owned(),
    ];
    for role in Role::ALL {
        names.push(format!("client-{role}.key"));
        names.push(format!("client-{role}.pem"));
    }
    let paths: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    if !opts.force {
        refuse_existing(&paths)?;
    }

    let ca = Ca::generate(INIT_CA_COMMON_NAME, opts.validity)?;
    let server = ca.issue_server(&opts.server_dns, &opts.server_ips, opts.validity)?;
    let mut contents = vec![
        (ca.key_pem(), true),
        (ca.cert_pem(), false),
        (server.key_pem, true),
        (server.cert_pem, false),
    ];
    for role in Role::ALL {
        let client = ca.issue_client(role.as_str(), &[role], opts.validity)?;
        contents.push((client.key_pem, true));
        contents.push((client.cert_pem, false));
    }

    create_dir(dir)?;
    for (path, (content, private)) in paths.iter().zip(&contents) {
        write_atomic(path, content, *private)?;
    }
    Ok(paths)
}

/// What `provd pki issue` should issue.
#[derive(Debug, Clone)]
pub enum IssueKind {
    /// A server certificate for these names (CN = the first one).
    Server {
        /// DNS names.
        dns_names: Vec<String>,
        /// IP addresses.
        ips: Vec<IpAddr>,
    },
    /// A client certificate (CN = the issue name) with these roles.
    Client {
        /// Roles to grant.
        roles: Vec<Role>,
    },
}

/// Options for `provd pki issue`.
#[derive(Debug, Clone)]
pub struct IssueOptions {
    /// Directory holding `ca.pem` and `ca.key`.
    pub ca_dir: PathBuf,
    /// Directory to write `<name>.pem` and `<name>.key` into (created if missing).
    pub out_dir: PathBuf,
    /// File name stem; also the client's Common Name for client certificates.
    pub name: String,
    /// Server or client certificate.
    pub kind: IssueKind,
    /// Validity from now.
    pub validity: Duration,
    /// Overwrite existing output files.
    pub force: bool,
}

/// `provd pki issue`: loads `ca.pem`/`ca.key` from `opts.ca_dir` and writes
/// `<out_dir>/<name>.key` (mode 0600 on unix) and `<out_dir>/<name>.pem`.
/// Returns the files written.
pub fn issue(opts: &IssueOptions) -> Result<Vec<PathBuf>, PkiError> {
    validate_file_stem(&opts.name)?;
    match &opts.kind {
        IssueKind::Client { roles } => {
            validate_common_name("client name", &opts.name)?;
            if roles.is_empty() {
                return Err(PkiError::NoRoles {
                    common_name: opts.name.clone(),
                });
            }
        }
        IssueKind::Server { dns_names, ips } => {
            if dns_names.is_empty() && ips.is_empty() {
                return Err(PkiError::NoServerNames);
            }
        }
    }

    let key_path = opts.out_dir.join(format!("{}.key", opts.name));
    let cert_path = opts.out_dir.join(format!("{}.pem", opts.name));
    let paths = vec![key_path, cert_path];
    if !opts.force {
        refuse_existing(&paths)?;
    }

    let ca_cert_path = opts.ca_dir.join(CA_CERT_FILE);
    let ca_key_path = opts.ca_dir.join(CA_KEY_FILE);
    let ca_cert = read_to_string(&ca_cert_path)?;
    let ca_key = read_to_string(&ca_key_path)?;
    let ca = Ca::from_pem_described(
        &ca_cert,
        &ca_key,
        &format!("CA certificate {}", ca_cert_path.display()),
        &format!("CA private key {}", ca_key_path.display()),
    )?;

    let pair = match &opts.kind {
        IssueKind::Client { roles } => ca.issue_client(&opts.name, roles, opts.validity)?,
        IssueKind::Server { dns_names, ips } => ca.issue_server(dns_names, ips, opts.validity)?,
    };

    create_dir(&opts.out_dir)?;
    write_atomic(&paths[0], &pair.key_pem, true)?;
    write_atomic(&paths[1], &pair.cert_pem, false)?;
    Ok(paths)
}

fn generate_key(what: &str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|error| PkiError::Generate {
        what: what.to_owned(),
        error,
    })
}

fn common_name_dn(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
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

/// Returns `(now - CLOCK_SKEW, now + validity)`.
fn validity_window(validity: Duration) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
    if validity.is_zero() {
        return Err(PkiError::InvalidValidity(
            "validity must be greater than zero".to_owned(),
        ));
    }
    let too_long = || PkiError::InvalidValidity(format!("validity of {validity:?} is too long"));
    let span = time::Duration::try_from(validity).map_err(|_| too_long())?;
    let now = OffsetDateTime::now_utc();
    let not_after = now.checked_add(span).ok_or_else(too_long)?;
    Ok((now.saturating_sub(CLOCK_SKEW), not_after))
}

fn validate_common_name(what: &'static str, name: &str) -> Result<(), PkiError> {
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

/// The `name` of `provd pki issue` becomes `<name>.pem`/`<name>.key`.
fn validate_file_stem(name: &str) -> Result<(), PkiError> {
    let reject = |reason| {
        Err(PkiError::InvalidName {
            what: "certificate name",
            value: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return reject("must not be empty");
    }
    if name.contains(['/', '\\']) {
        return reject("must not contain path separators");
    }
    if name.contains("..") {
        return reject("must not contain '..'");
    }
    if name.starts_with('.') {
        return reject("must not start with '.'");
    }
    if name.chars().any(char::is_control) {
        return reject("must not contain control characters");
    }
    if name.len() > MAX_FILE_STEM_LEN {
        return reject("is too long");
    }
    if name == "ca" {
        return reject("is reserved for the CA's own ca.pem/ca.key");
    }
    Ok(())
}

fn refuse_existing(paths: &[PathBuf]) -> Result<(), PkiError> {
    for path in paths {
        match fs::symlink_metadata(path) {
            Ok(_) => return Err(PkiError::AlreadyExists { path: path.clone() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(PkiError::Io {
                    action: "check",
                    path: path.clone(),
                    error,
                });
            }
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))
}

fn read_to_string(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(io_err("read", path))
}

/// Writes `contents` to a temporary file next to `path` (mode 0600 for
/// private keys, 0644 otherwise, on unix) and renames it over `path`, so a
/// reader never sees a partially written file.
fn write_atomic(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));

    // A leftover from an interrupted run with the same pid; create_new below
    // would otherwise fail.
    let _ = fs::remove_file(&tmp);

    let result = (|| {
        let mut file = open_new(&tmp, private).map_err(io_err("create", &tmp))?;
        file.write_all(contents.as_bytes())
            .map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("sync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("replace", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PkiError {
    move |error| PkiError::Io {
        action,
        path: path.to_owned(),
        error,
    }
}

fn open_new(path: &Path, private: bool) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::certificate::X509Certificate;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        assert_eq!(block.label, "CERTIFICATE");
        block.contents
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    fn assert_chains(leaf_der: &[u8], ca_pem: &str) {
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

        for bad in [
            "", "../evil", "a/b", "a\\b", "..", ".", ".hidden", "ca", "a\0b",
        ] {
            let err = validate_file_stem(bad).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("certificate name"), "{bad:?}: {msg}");
        }
        validate_file_stem("alice").unwrap();
        validate_file_stem("provd.example.test").unwrap();
    }

    fn init_opts(dir: &Path, force: bool) -> InitOptions {
        InitOptions {
            dir: dir.to_owned(),
            server_dns: vec!["provd.example.test".to_owned()],
            server_ips: vec!["127.0.0.1".parse().unwrap()],
            validity: DAY,
            force,
        }
    }

    #[test]
    fn init_writes_files_and_refuses_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let written = init(&init_opts(&dir, false)).unwrap();

        let mut expected: Vec<String> = [
            "ca.pem",
            "ca.key",
            "server.pem",
            "server.key",
            "client-viewer.pem",
            "client-viewer.key",
            "client-operator.pem",
            "client-operator.key",
            "client-admin.pem",
            "client-admin.key",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut got: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        // Nothing else (no leftover temporary files).
        assert_eq!(fs::read_dir(&dir).unwrap().count(), expected.len());

        #[cfg(unix)]
        for path in &written {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
            if path.extension().unwrap() == "key" {
                assert_eq!(mode, 0o600, "{}", path.display());
            } else {
                assert_eq!(mode & 0o077 & !0o044, 0, "{}", path.display());
            }
        }

        let ca_pem = fs::read_to_string(dir.join("ca.pem")).unwrap();
        let ca_key = fs::read_to_string(dir.join("ca.key")).unwrap();
        Ca::from_pem(&ca_pem, &ca_key).unwrap();
        for role in Role::ALL {
            let pem = fs::read_to_string(dir.join(format!("client-{role}.pem"))).unwrap();
            let der = pem_to_der(&pem);
            assert_chains(&der, &ca_pem);
            assert_eq!(
                identity_from_der(&der).unwrap(),
                (role.as_str().to_owned(), vec![role])
            );
        }
        let server_der = pem_to_der(&fs::read_to_string(dir.join("server.pem")).unwrap());
        assert_chains(&server_der, &ca_pem);

        // Second run without force: refused, naming ca.key, nothing changed.
        let err = init(&init_opts(&dir, false)).unwrap_err();
        match &err {
            PkiError::AlreadyExists { path } => assert_eq!(path, &dir.join("ca.key")),
            other => panic!("unexpected error {other}"),
        }
        assert!(err.to_string().contains("ca.key"));
        assert_eq!(fs::read_to_string(dir.join("ca.key")).unwrap(), ca_key);

        // With force: new CA.
        init(&init_opts(&dir, true)).unwrap();
        assert_ne!(fs::read_to_string(dir.join("ca.key")).unwrap(), ca_key);

        let mut no_names = init_opts(&tmp.path().join("other"), false);
        no_names.server_dns.clear();
        no_names.server_ips.clear();
        assert!(matches!(init(&no_names), Err(PkiError::NoServerNames)));
    }

    #[test]
    fn issue_from_ca_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let ca_dir = tmp.path().join("ca");
        init(&init_opts(&ca_dir, false)).unwrap();
        let ca_pem = fs::read_to_string(ca_dir.join("ca.pem")).unwrap();
        let out_dir = tmp.path().join("out");

        let client = IssueOptions {
            ca_dir: ca_dir.clone(),
            out_dir: out_dir.clone(),
            name: "alice".to_owned(),
            kind: IssueKind::Client {
                roles: vec![Role::Operator],
            },
            validity: DAY,
            force: false,
        };
        let written = issue(&client).unwrap();
        assert_eq!(
            written,
            vec![out_dir.join("alice.key"), out_dir.join("alice.pem")]
        );
        let der = pem_to_der(&fs::read_to_string(out_dir.join("alice.pem")).unwrap());
        assert_chains(&der, &ca_pem);
        assert_eq!(
            identity_from_der(&der).unwrap(),
            ("alice".to_owned(), vec![Role::Operator])
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(out_dir.join("alice.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let err = issue(&client).unwrap_err();
        assert!(matches!(err, PkiError::AlreadyExists { .. }), "{err}");
        issue(&IssueOptions {
            force: true,
            ..client.clone()
        })
        .unwrap();

        let server = IssueOptions {
            name: "server2".to_owned(),
            kind: IssueKind::Server {
                dns_names: vec!["provd2.example.test".to_owned()],
                ips: vec![],
            },
            ..client.clone()
        };
        issue(&server).unwrap();
        let der = pem_to_der(&fs::read_to_string(out_dir.join("server2.pem")).unwrap());
        assert_chains(&der, &ca_pem);

        for (name, kind) in [
            ("../alice", client.kind.clone()),
            ("a/b", client.kind.clone()),
            ("", client.kind.clone()),
            ("ca", client.kind.clone()),
            ("nobody", IssueKind::Client { roles: vec![] }),
            (
                "nothing",
                IssueKind::Server {
                    dns_names: vec![],
                    ips: vec![],
                },
            ),
        ] {
            let opts = IssueOptions {
                name: name.to_owned(),
                kind,
                ..client.clone()
            };
            assert!(issue(&opts).is_err(), "{name:?} accepted");
        }

        let missing = IssueOptions {
            ca_dir: tmp.path().join("nope"),
            name: "frank".to_owned(),
            ..client.clone()
        };
        let err = issue(&missing).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(err.to_string().contains("ca.pem"), "{err}");
    }
}
