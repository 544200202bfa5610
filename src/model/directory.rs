//! The directory as the domain sees it: who binds, and what a DC probe saw.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use secrecy::SecretString;

/// Credentials for a simple bind: a UPN, `DOMAIN\user` or a DN. Each copy
/// zeroizes its password when dropped.
#[derive(Clone)]
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
