//! The directory: Active Directory over LDAP (LDAPS or StartTLS, simple bind
//! over TLS only), DC lookup through DNS SRV records, and DC probes. The
//! trait speaks plain Rust types so workflows never see ldap3 or hickory.

pub mod dns;
pub mod escape;
pub mod ldap;

use std::collections::BTreeMap;
use std::net::IpAddr;

use secrecy::SecretString;
use std::time::Duration;

use zeroize::Zeroizing;

pub use ldap::LdapDirectory;

pub use crate::model::{BindCredential, BindSecret, KerberosSource, ProbeReport};

#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// The DC could not be reached or stopped answering; another DC may do.
    #[error("{dc}: {reason}")]
    Unreachable { dc: String, reason: String },
    /// The DC rejected the credentials (LDAP result 49).
    #[error("{dc} rejected the credentials: {reason}")]
    InvalidCredentials { dc: String, reason: String },
    /// The DC refused an operation for lack of rights (LDAP result 50).
    #[error("{dc}: insufficient access: {reason}")]
    InsufficientAccess { dc: String, reason: String },
    /// The object does not exist (LDAP result 32).
    #[error("{dc}: no such object: {reason}")]
    NoSuchObject { dc: String, reason: String },
    /// The entry to add exists already (LDAP result 68): usually another
    /// writer added it after this one looked.
    #[error("{dc}: the entry already exists: {reason}")]
    AlreadyExists { dc: String, reason: String },
    /// The DC refused a value it was sent (LDAP 19 constraintViolation, 21
    /// invalidAttributeSyntax, 34 invalidDNSyntax, 64 namingViolation):
    /// another DC or a retry will not help, a different request may.
    #[error("{dc} refused the request: LDAP error {code} ({}): {reason}", result_name(*.code))]
    Rejected {
        dc: String,
        code: u32,
        reason: String,
    },
    /// Any other LDAP result code.
    #[error("{dc}: LDAP error {code}: {reason}")]
    Ldap {
        dc: String,
        code: u32,
        reason: String,
    },
    /// DNS answered that `name` has no record of this type (NXDOMAIN or no
    /// data): it did answer, so this is not an outage.
    #[error("DNS has no {kind} record for {name}")]
    NoDnsRecords { name: String, kind: &'static str },
    /// A DNS query failed.
    #[error("DNS: {0}")]
    Dns(String),
    /// Local configuration (CA bundle, etc.) is unusable.
    #[error("directory configuration: {0}")]
    Config(String),
    /// The KDC refused the Kerberos credential (wrong or stale key, unknown
    /// or disabled principal): like result 49, for a GSSAPI bind.
    #[error("{dc}: Kerberos: {reason}")]
    KerberosRejected { dc: String, reason: String },
    /// A Kerberos bind failed for a reason of this host or the domain's
    /// setup (clock skew, unknown SPN, no KDC, nothing in the keytab), said
    /// so that a person can fix it; another DC would fail the same way.
    #[error("{dc}: Kerberos: {reason}")]
    Kerberos { dc: String, reason: String },
    /// Every DC failed; each with its reason, in the order tried.
    #[error("no domain controller answered: {}", describe_attempts(.0))]
    AllFailed(Vec<(String, String)>),
}

fn describe_attempts(attempts: &[(String, String)]) -> String {
    attempts
        .iter()
        .map(|(dc, why)| format!("{dc} ({why})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The names of the result codes [`DirectoryError::Rejected`] carries.
fn result_name(code: u32) -> &'static str {
    match code {
        19 => "constraintViolation",
        21 => "invalidAttributeSyntax",
        34 => "invalidDNSyntax",
        64 => "namingViolation",
        _ => "rejected",
    }
}

impl DirectoryError {
    /// The error an LDAP result code (other than success) means, classified
    /// by what the caller can do about it; backends and fakes share it.
    pub fn from_result_code(dc: &str, code: u32, reason: String) -> Self {
        let dc = dc.to_owned();
        match code {
            49 => Self::InvalidCredentials { dc, reason },
            50 => Self::InsufficientAccess { dc, reason },
            32 => Self::NoSuchObject { dc, reason },
            68 => Self::AlreadyExists { dc, reason },
            // busy, unavailable, unwilling: another DC may serve.
            51..=53 => Self::Unreachable { dc, reason },
            19 | 21 | 34 | 64 => Self::Rejected { dc, code, reason },
            code => Self::Ldap { dc, code, reason },
        }
    }

    /// True when trying the next DC may help.
    pub fn is_failover(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// An SRV target of `_ldap._tcp.dc._msdcs.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Lower case, without the trailing dot.
    pub host: String,
    pub port: u16,
    pub priority: u16,
    pub weight: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    OneLevel,
    Subtree,
}

/// One entry as read: text values and binary values by lower-case
/// attribute name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub dn: String,
    pub attrs: BTreeMap<String, Vec<String>>,
    pub bin_attrs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Entry {
    /// The first text value of `name` (case-insensitive).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.attrs
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.attrs
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn first_bin(&self, name: &str) -> Option<&[u8]> {
        self.bin_attrs
            .get(&name.to_ascii_lowercase())
            .and_then(|v| v.first())
            .map(Vec::as_slice)
    }
}

/// A bound LDAP session to one DC.
#[async_trait::async_trait]
pub trait DirectorySession: Send {
    /// The DC serving this session (host name).
    fn server(&self) -> &str;
    /// The RootDSE with every operational attribute.
    async fn root_dse(&mut self) -> Result<Entry, DirectoryError>;
    /// A paged search; search references are skipped. `filter` must already
    /// be escaped (see [`escape`]).
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError>;
    /// Reads one object's nTSecurityDescriptor with the SD_FLAGS control
    /// set to `sd_flags` (4 = DACL only). `None` if the object is missing.
    async fn read_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
    ) -> Result<Option<Vec<u8>>, DirectoryError>;
    /// Replaces nTSecurityDescriptor, sending the SD_FLAGS control so only
    /// the parts named by `sd_flags` are written.
    async fn write_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
        descriptor: &[u8],
    ) -> Result<(), DirectoryError>;
    /// Reads a gMSA's `msDS-ManagedPassword` (the raw MSDS-MANAGEDPASSWORD_BLOB,
    /// see [`crate::model::ManagedPassword`]) with a base search on `dn`. A
    /// secret: held in `Zeroizing`, never logged or put in an error.
    /// `Ok(None)` when the DC returns the entry without the attribute, which
    /// is how a DC says "this bind may not read it" (and how Samba 4.17,
    /// which cannot hand out gMSA passwords, answers everyone);
    /// `NoSuchObject` when `dn` does not exist.
    async fn read_managed_password(
        &mut self,
        dn: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DirectoryError>;
    /// Adds an object with the given attributes (binary-safe values).
    async fn add(&mut self, dn: &str, attrs: &[(&str, Vec<Vec<u8>>)])
    -> Result<(), DirectoryError>;
    /// Applies modifications in one LDAP modify (atomic on the DC).
    async fn modify(&mut self, dn: &str, changes: &[Change]) -> Result<(), DirectoryError>;
    async fn delete(&mut self, dn: &str) -> Result<(), DirectoryError>;
    async fn unbind(self: Box<Self>);
}

/// One modification of an LDAP modify.
#[derive(Debug, Clone)]
pub enum Change {
    /// Replace all values (none: delete the attribute).
    Replace(String, Vec<Vec<u8>>),
    Add(String, Vec<Vec<u8>>),
    /// Delete the given values (none: the whole attribute).
    Delete(String, Vec<Vec<u8>>),
}

/// The attribute a gMSA's password is read from.
pub const MANAGED_PASSWORD_ATTR: &str = "msDS-ManagedPassword";

/// OID of the LDAP_SERVER_SD_FLAGS control.
pub const SD_FLAGS_OID: &str = "1.2.840.113556.1.4.801";
/// SD_FLAGS: owner, group, DACL, SACL.
pub const SD_FLAGS_DACL: u32 = 0x4;

/// BER of the SD_FLAGS control value: SEQUENCE { INTEGER flags }.
pub fn sd_flags_value(flags: u32) -> Vec<u8> {
    let mut int = flags.to_be_bytes().to_vec();
    while int.len() > 1 && int[0] == 0 && int[1] & 0x80 == 0 {
        int.remove(0);
    }
    if int[0] & 0x80 != 0 {
        int.insert(0, 0);
    }
    let mut out = vec![0x30, u8::try_from(int.len() + 2).unwrap_or(0), 0x02];
    out.push(u8::try_from(int.len()).unwrap_or(0));
    out.extend(int);
    out
}

#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// `_ldap._tcp.dc._msdcs.<domain>` SRV records.
    async fn srv_lookup(&self, domain: &str) -> Result<Vec<SrvTarget>, DirectoryError>;
    /// A and AAAA records of `host`.
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, DirectoryError>;
    /// Connects and binds to one DC: a simple bind over TLS with a password,
    /// a sealed GSSAPI bind with a Kerberos credential.
    async fn connect(
        &self,
        dc: &str,
        credential: &BindCredential,
    ) -> Result<Box<dyn DirectorySession>, DirectoryError>;
    /// Reads one DC's RootDSE without binding (LDAP v3 serves it to
    /// anyone): which domain it serves, for a membership check that needs
    /// no credential and costs the DC one TLS handshake.
    async fn read_root_dse(&self, dc: &str) -> Result<Entry, DirectoryError>;
    /// Probes one DC: TCP + TLS handshake (recording the certificate even if
    /// untrusted), a bind (anonymous without a credential), the RootDSE.
    async fn probe(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        timeout: Duration,
    ) -> ProbeReport;
    /// Proves that `principal` (`name$@REALM`) knows `password` with a
    /// Kerberos AS exchange and a sealed GSSAPI bind to `dc` as it; the
    /// connection is closed at once. How a retrieved gMSA password is shown
    /// to work without sending it anywhere.
    async fn authenticate(
        &self,
        dc: &str,
        principal: &str,
        password: &SecretString,
    ) -> Result<(), DirectoryError>;
}

#[cfg(test)]
mod tests {
    use super::DirectoryError;

    #[test]
    fn result_codes_by_what_the_caller_can_do() {
        let e = |code| DirectoryError::from_result_code("dc1", code, "why".into());
        assert!(matches!(e(49), DirectoryError::InvalidCredentials { .. }));
        assert!(matches!(e(32), DirectoryError::NoSuchObject { .. }));
        assert!(e(52).is_failover());
        for code in [19, 21, 34, 64] {
            let err = e(code);
            assert!(matches!(err, DirectoryError::Rejected { .. }), "{code}");
            assert!(!err.is_failover());
        }
        assert_eq!(
            e(34).to_string(),
            "dc1 refused the request: LDAP error 34 (invalidDNSyntax): why"
        );
        assert!(matches!(e(68), DirectoryError::AlreadyExists { .. }));
    }

    #[test]
    fn sd_flags_ber() {
        // The value the lab notes use for DACL only: MAMCAQQ= → 30 03 02 01 04.
        assert_eq!(super::sd_flags_value(4), [0x30, 0x03, 0x02, 0x01, 0x04]);
        assert_eq!(
            super::sd_flags_value(0x80),
            [0x30, 0x04, 0x02, 0x02, 0x00, 0x80]
        );
    }
}
