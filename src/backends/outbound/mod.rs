//! Outbound reachability from this host: the probes behind Verify's
//! `host.outbound.https` and `host.outbound.crl`.
//!
//! An https target gets a TCP connection (through the agent's proxy with
//! `CONNECT` when it has one) and a TLS handshake that records the chain the
//! server presents WITHOUT trusting it ([`tls`]): the connection carries no
//! request and is closed at once, so trusting nothing costs nothing, and a
//! TLS-inspecting proxy's chain is seen as it is rather than refused. An
//! http target (the CRL hosts, port 80) gets one `GET` (through the proxy
//! in absolute form); any HTTP answer is reported as it came, and the
//! workflow decides what it means.
//!
//! [`NetOutbound`] is the one implementation (tokio + rustls, ring); what
//! to probe by default per cloud is in [`endpoints`], with Microsoft's
//! pages. Neither knows the agent: the workflow reads its proxy from the
//! exe.config through the host backend and passes it in as a [`Proxy`].

pub mod endpoints;
mod http1;
mod net;
mod proxy;
mod tls;

use std::fmt;
use std::time::Duration;

pub use net::NetOutbound;
pub use proxy::{Proxy, ProxyAddressError, redact};

/// What one probe reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A TLS handshake with `host:port`.
    Https { host: String, port: u16 },
    /// A `GET path` from `host:port` over plain HTTP.
    Http {
        host: String,
        port: u16,
        path: String,
    },
}

impl Target {
    pub fn host(&self) -> &str {
        match self {
            Target::Https { host, .. } | Target::Http { host, .. } => host,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Target::Https { port, .. } | Target::Http { port, .. } => *port,
        }
    }

    /// `host:port` (IPv6 in brackets), as a CONNECT line and errors name it.
    pub fn authority(&self) -> String {
        authority(self.host(), self.port())
    }
}

/// The target as a URL, ports shown only when not the scheme's default.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, default_port, path) = match self {
            Target::Https { .. } => ("https", 443, ""),
            Target::Http { path, .. } => ("http", 80, path.as_str()),
        };
        let host = bracketed(self.host());
        if self.port() == default_port {
            write!(f, "{scheme}://{host}{path}")
        } else {
            write!(f, "{scheme}://{host}:{}{path}", self.port())
        }
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

pub(crate) fn authority(host: &str, port: u16) -> String {
    format!("{}:{port}", bracketed(host))
}

/// One certificate of a presented chain, as read (never verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCert {
    /// RFC 4514-style, e.g. `CN=login.microsoftonline.com, O=…`.
    pub subject: String,
    pub issuer: String,
    /// The issuer's common name, when it has one.
    pub issuer_cn: Option<String>,
}

/// What a TLS handshake showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSeen {
    /// `TLS 1.2` or `TLS 1.3`.
    pub version: String,
    /// As presented: the server's own certificate first.
    pub chain: Vec<PresentedCert>,
}

impl TlsSeen {
    /// The issuer of the last certificate presented: the root (or the
    /// issuing CA, when the server sends its leaf alone) the chain claims.
    pub fn top_issuer(&self) -> Option<&PresentedCert> {
        self.chain.last()
    }
}

/// The status line of an HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub reason: String,
}

impl fmt::Display for HttpAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// Why a probe did not get as far as a handshake or an answer. Each names
/// the peer it was talking to; a proxy is named by [`Proxy`]'s display
/// (never its credentials).
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    /// No TCP connection to `peer` (the target, or the proxy).
    #[error("cannot connect to {peer}: {reason}")]
    Connect { peer: String, reason: String },
    /// The proxy answered CONNECT with something other than 2xx.
    #[error("the proxy {proxy} refused CONNECT {target}: {answer}")]
    ProxyRefused {
        proxy: String,
        target: String,
        answer: HttpAnswer,
    },
    /// The TLS handshake with the target failed.
    #[error("the TLS handshake with {target} failed: {reason}")]
    Tls { target: String, reason: String },
    /// `peer` did not speak HTTP/1.x as asked, or the connection broke.
    #[error("{peer} did not answer HTTP: {reason}")]
    Protocol { peer: String, reason: String },
    /// `stage` did not finish within the probe's limit.
    #[error("{stage} did not finish within {}s", limit.as_secs_f32())]
    Timeout { stage: String, limit: Duration },
}

/// The probes. Each call is one connection, closed before it returns, and
/// gives up after `limit`.
#[async_trait::async_trait]
pub trait Outbound: Send + Sync + 'static {
    /// Connects to `host:port` of an https target (through `proxy` with
    /// CONNECT when given) and completes a TLS handshake, recording the
    /// presented chain without trusting it.
    async fn tls_handshake(
        &self,
        host: &str,
        port: u16,
        proxy: Option<&Proxy>,
        limit: Duration,
    ) -> Result<TlsSeen, OutboundError>;
    /// Sends `GET path` to `host:port` (through `proxy` in absolute form
    /// when given) and reads the answer's status line.
    async fn http_get(
        &self,
        host: &str,
        port: u16,
        path: &str,
        proxy: Option<&Proxy>,
        limit: Duration,
    ) -> Result<HttpAnswer, OutboundError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_show_as_urls_with_non_default_ports() {
        let https = |host: &str, port| Target::Https {
            host: host.into(),
            port,
        };
        assert_eq!(
            https("login.microsoftonline.com", 443).to_string(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(https("::1", 9443).to_string(), "https://[::1]:9443");
        assert_eq!(https("::1", 9443).authority(), "[::1]:9443");
        let crl = Target::Http {
            host: "crl.microsoft.com".into(),
            port: 80,
            path: "/".into(),
        };
        assert_eq!(crl.to_string(), "http://crl.microsoft.com/");
        assert_eq!(crl.authority(), "crl.microsoft.com:80");
    }
}
