//! `[tls]`: the certificate and key of the one port, the CA its clients
//! must chain to and the CRL that revokes some of them.

use std::path::PathBuf;
use std::time::Duration;

use super::declare::section;
use super::parse;

pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

section! {
    #[derive(Debug, Clone)]
    pub struct TlsConfig {
        /// Server certificate chain (PEM).
        pub cert: PathBuf {
            toml: "tls.cert", env: "PROVD_TLS_CERT", flag: "--tls-cert",
            example: "/etc/provd/pki/server.pem", parse: parse::path, default: required
        }
        /// Server private key (PEM).
        pub key: PathBuf {
            toml: "tls.key", env: "PROVD_TLS_KEY", flag: "--tls-key",
            example: "/etc/provd/pki/server.key", parse: parse::path, default: required
        }
        /// CA bundle (PEM) that client certificates must chain to.
        pub client_ca: PathBuf {
            toml: "tls.client_ca", env: "PROVD_TLS_CLIENT_CA", flag: "--tls-client-ca",
            example: "/etc/provd/pki/ca.pem", parse: parse::path, default: required
        }
        /// Revoked client certificates: a CRL file (PEM, one or more
        /// `X509 CRL` blocks, or one DER CRL) signed by a CA in `client_ca`
        /// (`provd pki crl` makes one); a revoked client is refused at the
        /// TLS handshake. Unset: no revocation check.
        pub client_crl: Option<PathBuf> {
            toml: "tls.client_crl", env: "PROVD_TLS_CLIENT_CRL", flag: "--tls-client-crl",
            example: "/etc/provd/pki/crl.pem", parse: parse::some_path, default: None
        }
        /// How often the files above are checked for changes.
        pub reload_interval: Duration {
            toml: "tls.reload_interval", env: "PROVD_TLS_RELOAD_INTERVAL",
            flag: "--tls-reload-interval",
            example: "30s", parse: parse::duration, default: DEFAULT_RELOAD_INTERVAL
        }
    }
}
