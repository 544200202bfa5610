//! `[directory]`: how provd finds and talks to domain controllers.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::declare::{Each, section};
use super::layers::Source;
use super::parse;

/// How provd reaches domain controllers. There is deliberately no plaintext
/// option: simple binds happen only over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectoryTransport {
    #[default]
    Ldaps,
    StartTls,
}

fn transport(value: &str, _: &Source) -> Result<DirectoryTransport, String> {
    match value {
        "ldaps" => Ok(DirectoryTransport::Ldaps),
        "starttls" => Ok(DirectoryTransport::StartTls),
        other => Err(format!(
            "{other:?} is not one of \"ldaps\", \"starttls\" (plaintext LDAP binds are refused)"
        )),
    }
}

/// What protects a Kerberos (GSSAPI) bind's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KerberosLayer {
    /// Plain 389, every message sealed by the Kerberos security layer: what
    /// Samba's and AD's default signing requirement accept.
    #[default]
    Sealed,
    /// `transport` (LDAPS or StartTLS), no SASL layer, with the
    /// `tls-server-end-point` channel binding: for DCs that enforce LDAP
    /// channel binding on TLS (AD's LdapEnforceChannelBinding, Samba 4.22).
    Tls,
}

fn kerberos_layer(value: &str, _: &Source) -> Result<KerberosLayer, String> {
    match value {
        "sealed" => Ok(KerberosLayer::Sealed),
        "tls" => Ok(KerberosLayer::Tls),
        other => Err(format!("{other:?} is not one of \"sealed\", \"tls\"")),
    }
}

/// `127.0.0.2:53`, or `127.0.0.2` meaning port 53.
fn dns_server(value: &str, _: &Source) -> Result<SocketAddr, String> {
    value
        .parse::<SocketAddr>()
        .or_else(|_| value.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("{value:?} is not an IP address or ip:port"))
}

/// A paged search of zero entries per page would never finish.
fn page_size(value: &str, _: &Source) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{value:?} is not a whole number ({e})")),
    }
}

section! {
    #[derive(Debug, Clone)]
    pub struct DirectoryConfig: Default {
        /// CA bundle (PEM) DC certificates must chain to.
        pub ca_file: Option<PathBuf> {
            toml: "directory.ca_file", env: "PROVD_DIRECTORY_CA_FILE",
            flag: "--directory-ca-file",
            example: "/etc/provd/ad-ca.pem", parse: parse::some_path, default: None
        }
        /// DNS servers for DC discovery (`ip:port`); empty means the system's.
        pub dns_servers: Vec<SocketAddr> {
            toml: "directory.dns_servers", env: "PROVD_DIRECTORY_DNS_SERVERS",
            flag: "--directory-dns-server",
            example: "127.0.0.2:53", parse: Each(dns_server), default: Vec::new()
        }
        /// "ldaps" (port 636) or "starttls" (389, upgraded first).
        pub transport: DirectoryTransport {
            toml: "directory.transport", env: "PROVD_DIRECTORY_TRANSPORT",
            flag: "--directory-transport",
            example: "starttls", parse: transport, default: DirectoryTransport::Ldaps
        }
        /// Kerberos binds: "sealed" (389 with the Kerberos security layer) or
        /// "tls" (`transport` with channel binding, no layer).
        pub kerberos_layer: KerberosLayer {
            toml: "directory.kerberos_layer", env: "PROVD_DIRECTORY_KERBEROS_LAYER",
            flag: "--directory-kerberos-layer",
            example: "tls", parse: kerberos_layer, default: KerberosLayer::Sealed
        }
        /// TCP connect (and TLS handshake) limit per DC before failing over.
        pub connect_timeout: Duration {
            toml: "directory.connect_timeout", env: "PROVD_DIRECTORY_CONNECT_TIMEOUT",
            flag: "--directory-connect-timeout",
            example: "2s", parse: parse::duration, default: Duration::from_secs(5)
        }
        /// Limit for each LDAP operation.
        pub operation_timeout: Duration {
            toml: "directory.operation_timeout", env: "PROVD_DIRECTORY_OPERATION_TIMEOUT",
            flag: "--directory-operation-timeout",
            example: "1m", parse: parse::duration, default: Duration::from_secs(30)
        }
        /// Entries per page of a paged search.
        pub page_size: u32 {
            toml: "directory.page_size", env: "PROVD_DIRECTORY_PAGE_SIZE",
            flag: "--directory-page-size",
            example: "250", parse: page_size, default: 500
        }
    }
}
