//! The directory as the domain sees it: who binds, and what a DC probe saw.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

/// Who binds to the directory, and how it proves it. Each copy zeroizes its
/// password when dropped; a Kerberos credential holds no secret, only where
/// the host keeps one.
#[derive(Clone)]
pub struct BindCredential {
    /// A UPN, `DOMAIN\user` or a DN for a password; the Kerberos principal
    /// (`HOST$@REALM`) for Kerberos.
    pub username: String,
    pub secret: BindSecret,
}

/// How a [`BindCredential`] proves its identity.
#[derive(Clone)]
pub enum BindSecret {
    /// A simple bind over TLS.
    Password(SecretString),
    /// A Kerberos (GSSAPI) bind with credentials the host already holds.
    Kerberos(KerberosSource),
}

/// Where the host keeps a principal's Kerberos credentials: paths and cache
/// names on the provd host, never key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KerberosSource {
    /// A keytab file holding the principal's keys (`/etc/krb5.keytab`).
    Keytab(PathBuf),
    /// An existing credential cache holding a TGT (`FILE:/tmp/krb5cc_0`,
    /// `KCM:`, `KEYRING:persistent:0`).
    Ccache(String),
    /// The provd service's own logon identity, through SSPI's default
    /// credentials: under LocalSystem on a joined Windows host, the computer
    /// account. Windows only; never a request's credential (the contract has
    /// no field for it): the daemon's assembly makes it.
    ServiceIdentity,
}

impl KerberosSource {
    /// Where the credentials come from, for messages: never key material.
    pub fn describe(&self) -> String {
        match self {
            Self::Keytab(path) => format!("keytab {}", path.display()),
            Self::Ccache(name) => format!("credential cache {name}"),
            Self::ServiceIdentity => "this service's own identity (SSPI)".to_owned(),
        }
    }
}

impl BindCredential {
    /// A simple bind with a password.
    pub fn simple(username: impl Into<String>, password: impl Into<SecretString>) -> Self {
        Self {
            username: username.into(),
            secret: BindSecret::Password(password.into()),
        }
    }

    /// The password of a simple-bind credential; `None` for Kerberos.
    pub fn password(&self) -> Option<&SecretString> {
        match &self.secret {
            BindSecret::Password(p) => Some(p),
            BindSecret::Kerberos(_) => None,
        }
    }
}

impl std::fmt::Debug for BindCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = match &self.secret {
            BindSecret::Password(_) => "password <redacted>".to_owned(),
            BindSecret::Kerberos(source) => format!("kerberos {source:?}"),
        };
        f.debug_struct("BindCredential")
            .field("username", &self.username)
            .field("secret", &secret)
            .finish()
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
