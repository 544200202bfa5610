//! `[directory]`: how provd finds and talks to domain controllers.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
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

/// The host's own Kerberos identity is the service's on Windows (SSPI):
/// a keytab setting there is refused, naming where it was set.
fn unix_only<T>(value: T) -> Result<T, String> {
    if cfg!(windows) {
        Err(
            "not on Windows: there provd binds as its own service identity (the computer \
             account under LocalSystem); remove the setting"
                .into(),
        )
    } else {
        Ok(value)
    }
}

/// `NAME$@REALM`: a principal with a realm, so MIT need not guess one.
fn host_principal(value: &str, _: &Source) -> Result<Option<String>, String> {
    match value.rsplit_once('@') {
        Some((name, realm)) if !name.is_empty() && !realm.is_empty() && !value.contains('\0') => {
            unix_only(Some(value.to_owned()))
        }
        _ => Err(format!(
            "{value:?} is not a Kerberos principal with its realm, e.g. \"VM$@LAB.EXAMPLE.TEST\""
        )),
    }
}

fn host_keytab(value: &str, source: &Source) -> Result<Option<PathBuf>, String> {
    unix_only(parse::some_path(value, source)?)
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
        /// This host's computer account as a Kerberos principal (`VM$@REALM`):
        /// read-only RPCs without a credential bind as it, with
        /// `host_keytab`. Linux; set both or neither.
        pub host_principal: Option<String> {
            toml: "directory.host_principal", env: "PROVD_DIRECTORY_HOST_PRINCIPAL",
            flag: "--directory-host-principal",
            example: "VM$@LAB.EXAMPLE.TEST", parse: host_principal, default: None
        }
        /// The keytab holding `host_principal`'s keys (the joined host's
        /// /etc/krb5.keytab). Linux; set both or neither.
        pub host_keytab: Option<PathBuf> {
            toml: "directory.host_keytab", env: "PROVD_DIRECTORY_HOST_KEYTAB",
            flag: "--directory-host-keytab",
            example: "/etc/krb5.keytab", parse: host_keytab, default: None
        }
        /// Entries per page of a paged search.
        pub page_size: u32 {
            toml: "directory.page_size", env: "PROVD_DIRECTORY_PAGE_SIZE",
            flag: "--directory-page-size",
            example: "250", parse: page_size, default: 500
        }
    }
}

impl DirectoryConfig {
    /// The host's principal and keytab, when both are set.
    pub fn host_keytab_identity(&self) -> Option<(String, PathBuf)> {
        self.host_principal.clone().zip(self.host_keytab.clone())
    }

    /// The host's identity is named whole or not at all (what
    /// `Config::load` checks).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        if self.host_principal.is_some() == self.host_keytab.is_some() {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            place: "settings directory.host_principal and directory.host_keytab".into(),
            reason: "they name this host's computer account and the keytab holding its keys: \
                     set both or neither"
                .into(),
        })
    }
}
