//! The directory: Active Directory over LDAP (LDAPS or StartTLS, simple bind
//! over TLS only), DC lookup through DNS SRV records, and DC probes. The
//! trait speaks plain Rust types so workflows never see ldap3 or hickory.

pub mod dns;
pub mod escape;
pub mod ldap;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

pub use ldap::LdapDirectory;

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
    /// Any other LDAP result code.
    #[error("{dc}: LDAP error {code}: {reason}")]
    Ldap {
        dc: String,
        code: u32,
        reason: String,
    },
    /// A DNS query failed or returned nothing.
    #[error("DNS: {0}")]
    Dns(String),
    /// Local configuration (CA bundle, etc.) is unusable.
    #[error("directory configuration: {0}")]
    Config(String),
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

impl DirectoryError {
    /// True when trying the next DC may help.
    pub fn is_failover(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// Credentials for a simple bind: a UPN, `DOMAIN\user` or a DN.
pub struct BindCredential {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for BindCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindCredential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
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

/// What a probe of one DC saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeReport {
    pub address: Option<IpAddr>,
    pub reachable: bool,
    pub error: Option<String>,
    pub handshake_latency: Option<Duration>,
    pub bind_latency: Option<Duration>,
    pub certificate_subject: Option<String>,
    pub certificate_not_after: Option<SystemTime>,
    pub certificate_trusted: bool,
    /// DC clock minus ours, in seconds (positive: DC ahead).
    pub clock_skew_secs: Option<i64>,
    pub dns_host_name: Option<String>,
    pub default_naming_context: Option<String>,
    pub started: Option<SystemTime>,
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
    async fn unbind(self: Box<Self>);
}

#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// `_ldap._tcp.dc._msdcs.<domain>` SRV records.
    async fn srv_lookup(&self, domain: &str) -> Result<Vec<SrvTarget>, DirectoryError>;
    /// A and AAAA records of `host`.
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, DirectoryError>;
    /// Connects and binds to one DC.
    async fn connect(
        &self,
        dc: &str,
        credential: &BindCredential,
    ) -> Result<Box<dyn DirectorySession>, DirectoryError>;
    /// Probes one DC: TCP + TLS handshake (recording the certificate even if
    /// untrusted), a bind (anonymous without a credential), the RootDSE.
    async fn probe(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        timeout: Duration,
    ) -> ProbeReport;
}
