//! `[tls]`: the certificate and key of the one port, the CA its clients
//! must chain to and the CRL that revokes some of them. The certificate
//! and the client CAs come from files, or on Windows from the LocalMachine
//! certificate store (the key then never leaves the store).

use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::declare::section;
use super::layers::Source;
use super::parse;
use crate::pki::store::{CertQuery, Thumbprint};

pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// `tls.cert_store`'s default: the Personal store, where certlm and
/// certificate enrollment put a machine's certificates.
pub const DEFAULT_CERT_STORE: &str = "My";

section! {
    #[derive(Debug, Clone)]
    pub struct TlsConfig {
        /// Server certificate chain (PEM). Required unless
        /// `tls.cert_thumbprint` or `tls.cert_subject` is set.
        pub cert: Option<PathBuf> {
            toml: "tls.cert", env: "PROVD_TLS_CERT", flag: "--tls-cert",
            example: "/etc/provd/pki/server.pem", parse: parse::some_path, default: None
        }
        /// Server private key (PEM). Required with `tls.cert`.
        pub key: Option<PathBuf> {
            toml: "tls.key", env: "PROVD_TLS_KEY", flag: "--tls-key",
            example: "/etc/provd/pki/server.key", parse: parse::some_path, default: None
        }
        /// CA bundle (PEM) that client certificates must chain to. Required
        /// unless `tls.client_ca_store` is set.
        pub client_ca: Option<PathBuf> {
            toml: "tls.client_ca", env: "PROVD_TLS_CLIENT_CA", flag: "--tls-client-ca",
            example: "/etc/provd/pki/ca.pem", parse: parse::some_path, default: None
        }
        /// Revoked client certificates: a CRL file (PEM, one or more
        /// `X509 CRL` blocks, or one DER CRL) signed by a client CA
        /// (`provd pki crl` makes one); a revoked client is refused at the
        /// TLS handshake. Unset: no revocation check.
        pub client_crl: Option<PathBuf> {
            toml: "tls.client_crl", env: "PROVD_TLS_CLIENT_CRL", flag: "--tls-client-crl",
            example: "/etc/provd/pki/crl.pem", parse: parse::some_path, default: None
        }
        /// Windows: the server certificate's SHA-1 thumbprint in
        /// LocalMachine\<tls.cert_store>, as certlm shows it (spaces and
        /// colons allowed); its private key stays in the store. A renewal
        /// the store links to it is served in its place.
        pub cert_thumbprint: Option<Thumbprint> {
            toml: "tls.cert_thumbprint", env: "PROVD_TLS_CERT_THUMBPRINT",
            flag: "--tls-cert-thumbprint",
            example: "3b 7e 08 29 a1 c4 d5 e6 f7 08 19 2a 3b 4c 5d 6e 7f 80 91 02",
            parse: thumbprint, default: None
        }
        /// Windows: instead of a thumbprint, the subject (common name or
        /// whole DN) of the server certificate in LocalMachine\<tls.cert_store>:
        /// the newest one valid now, for Server Authentication, with a
        /// private key.
        pub cert_subject: Option<String> {
            toml: "tls.cert_subject", env: "PROVD_TLS_CERT_SUBJECT",
            flag: "--tls-cert-subject",
            example: "provd.contoso.com", parse: store_text, default: None
        }
        /// Windows: the LocalMachine store `tls.cert_thumbprint` and
        /// `tls.cert_subject` look in.
        pub cert_store: String {
            toml: "tls.cert_store", env: "PROVD_TLS_CERT_STORE", flag: "--tls-cert-store",
            example: "WebHosting", parse: store_name,
            default: DEFAULT_CERT_STORE.to_owned()
        }
        /// Windows: a LocalMachine store whose every certificate is a CA
        /// client certificates may be signed by, instead of `tls.client_ca`.
        pub client_ca_store: Option<String> {
            toml: "tls.client_ca_store", env: "PROVD_TLS_CLIENT_CA_STORE",
            flag: "--tls-client-ca-store",
            example: "provd-clients", parse: some_store_name, default: None
        }
        /// How often the files and stores above are checked for changes.
        pub reload_interval: Duration {
            toml: "tls.reload_interval", env: "PROVD_TLS_RELOAD_INTERVAL",
            flag: "--tls-reload-interval",
            example: "30s", parse: parse::duration, default: DEFAULT_RELOAD_INTERVAL
        }
    }
}

/// Where the server certificate and its key come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerCertSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// `LocalMachine\<store>`.
    Store {
        store: String,
        query: CertQuery,
    },
}

/// Where the client CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCaSource {
    File(PathBuf),
    /// Every certificate of `LocalMachine\<store>`.
    Store(String),
}

impl TlsConfig {
    /// The server certificate's source: the files, or the store; exactly
    /// one of them.
    pub fn server_source(&self) -> Result<ServerCertSource, ConfigError> {
        let query = match (&self.cert_thumbprint, &self.cert_subject) {
            (Some(_), Some(_)) => {
                return Err(conflict(
                    "tls.cert_thumbprint and tls.cert_subject",
                    "both name the server certificate: keep one",
                ));
            }
            (Some(thumbprint), None) => Some(CertQuery::Thumbprint(*thumbprint)),
            (None, Some(subject)) => Some(CertQuery::Subject(subject.clone())),
            (None, None) => None,
        };
        match (query, &self.cert, &self.key) {
            (Some(query), None, None) => Ok(ServerCertSource::Store {
                store: self.cert_store.clone(),
                query,
            }),
            (Some(_), _, _) => Err(conflict(
                "tls.cert/tls.key and tls.cert_thumbprint/tls.cert_subject",
                "the server certificate comes from files or from the certificate store, not both",
            )),
            (None, Some(cert), Some(key)) => Ok(ServerCertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, Some(_), None) => Err(missing(
                "tls.key",
                "PROVD_TLS_KEY",
                "--tls-key",
                "it is the private key of tls.cert",
            )),
            (None, None, _) => Err(missing(
                "tls.cert",
                "PROVD_TLS_CERT",
                "--tls-cert",
                "or, on Windows, set tls.cert_thumbprint or tls.cert_subject for a certificate \
                 of the LocalMachine store",
            )),
        }
    }

    /// The client CAs' source: the file, or the store; exactly one.
    pub fn client_ca_source(&self) -> Result<ClientCaSource, ConfigError> {
        match (&self.client_ca, &self.client_ca_store) {
            (Some(file), None) => Ok(ClientCaSource::File(file.clone())),
            (None, Some(store)) => Ok(ClientCaSource::Store(store.clone())),
            (Some(_), Some(_)) => Err(conflict(
                "tls.client_ca and tls.client_ca_store",
                "both name the client CAs: keep one",
            )),
            (None, None) => Err(missing(
                "tls.client_ca",
                "PROVD_TLS_CLIENT_CA",
                "--tls-client-ca",
                "or, on Windows, set tls.client_ca_store for a LocalMachine store of CA \
                 certificates",
            )),
        }
    }

    /// Both sources are well defined (what `Config::load` checks).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.server_source()?;
        self.client_ca_source()?;
        Ok(())
    }
}

fn conflict(place: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        place: format!("settings {place}"),
        reason: reason.to_owned(),
    }
}

fn missing(
    key: &'static str,
    env: &'static str,
    flag: &'static str,
    alternative: &'static str,
) -> ConfigError {
    ConfigError::MissingOneOf {
        key,
        env,
        flag,
        alternative,
    }
}

/// The certificate store is Windows': elsewhere its settings are refused,
/// naming where they were set, rather than ignored.
fn windows_only<T>(value: T) -> Result<T, String> {
    if cfg!(windows) {
        Ok(value)
    } else {
        Err(
            "the Windows certificate store exists only on Windows: use tls.cert, tls.key \
             and tls.client_ca"
                .into(),
        )
    }
}

fn thumbprint(value: &str, _: &Source) -> Result<Option<Thumbprint>, String> {
    windows_only(Some(Thumbprint::parse(value)?))
}

fn store_text(value: &str, _: &Source) -> Result<Option<String>, String> {
    match value.trim() {
        "" => Err("is empty".into()),
        text => windows_only(Some(text.to_owned())),
    }
}

/// A system store's name (`My`, `Root`, `WebHosting`, or one an
/// administrator made): no path separators.
fn store_name(value: &str, _: &Source) -> Result<String, String> {
    let name = value.trim();
    if name.is_empty() || name.contains(['\\', '/']) {
        return Err(format!(
            "{value:?} is not a store name like \"My\" (LocalMachine is implied)"
        ));
    }
    windows_only(name.to_owned())
}

fn some_store_name(value: &str, source: &Source) -> Result<Option<String>, String> {
    store_name(value, source).map(Some)
}
