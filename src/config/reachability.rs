//! `[reachability]`: what Verify's outbound checks (`host.outbound.https`,
//! `host.outbound.crl`) probe from the agent's host, and whose certificate
//! chains count as Microsoft's.
//!
//! Unset, `endpoints` means the documented list of the configured cloud
//! (`backends::outbound::endpoints`); a lab or a test points it at its own
//! servers, so no probe leaves the machine. `expected_issuers` defaults to
//! the CA names of Microsoft's "Azure Certificate Authority details" page
//! (<https://learn.microsoft.com/azure/security/fundamentals/azure-ca-details>),
//! roots and subordinates: the top issuer of the chain a Microsoft endpoint
//! presents is one of them, and a chain ending anywhere else is a TLS
//! inspection (or a CA Microsoft added since: then add its name).

use std::fmt;
use std::time::Duration;

use super::declare::{Each, EachComma, section};
use super::layers::Source;
use super::parse;

/// Root and subordinate CAs "Any entity trying to access Microsoft Entra
/// identity services via the TLS/SSL protocols will be presented with
/// certificates from" (Azure Certificate Authority details, government
/// and national clouds included).
pub const AZURE_CA_NAMES: [&str; 39] = [
    // Roots.
    "Baltimore CyberTrust Root",
    "DigiCert Global Root CA",
    "DigiCert Global Root G2",
    "DigiCert Global Root G3",
    "Microsoft ECC Root Certificate Authority 2017",
    "Microsoft RSA Root Certificate Authority 2017",
    // Subordinates, each issued under one of the roots (some twice: the
    // "xsign" copy under a DigiCert root, same name). A server that sends
    // its leaf alone presents a chain whose top issuer is one of these.
    "DigiCert Basic RSA CN CA G2",
    "DigiCert Cloud Services CA-1",
    "DigiCert SHA2 Secure Server CA",
    "DigiCert TLS Hybrid ECC SHA384 2020 CA1",
    "DigiCert TLS RSA SHA256 2020 CA1",
    "GeoTrust Global TLS RSA4096 SHA256 2022 CA1",
    "GeoTrust TLS DV RSA Mixed SHA256 2020 CA-1",
    "Microsoft Azure ECC TLS Issuing CA 01",
    "Microsoft Azure ECC TLS Issuing CA 02",
    "Microsoft Azure ECC TLS Issuing CA 03",
    "Microsoft Azure ECC TLS Issuing CA 04",
    "Microsoft Azure ECC TLS Issuing CA 05",
    "Microsoft Azure ECC TLS Issuing CA 06",
    "Microsoft Azure ECC TLS Issuing CA 07",
    "Microsoft Azure ECC TLS Issuing CA 08",
    "Microsoft Azure RSA TLS Issuing CA 03",
    "Microsoft Azure RSA TLS Issuing CA 04",
    "Microsoft Azure RSA TLS Issuing CA 07",
    "Microsoft Azure RSA TLS Issuing CA 08",
    "Microsoft Azure TLS Issuing CA 01",
    "Microsoft Azure TLS Issuing CA 02",
    "Microsoft Azure TLS Issuing CA 05",
    "Microsoft Azure TLS Issuing CA 06",
    "Microsoft ECC TLS Issuing AOC CA 01",
    "Microsoft ECC TLS Issuing AOC CA 02",
    "Microsoft ECC TLS Issuing EOC CA 01",
    "Microsoft ECC TLS Issuing EOC CA 02",
    "Microsoft RSA TLS CA 01",
    "Microsoft RSA TLS CA 02",
    "Microsoft RSA TLS Issuing AOC CA 01",
    "Microsoft RSA TLS Issuing AOC CA 02",
    "Microsoft RSA TLS Issuing EOC CA 01",
    "Microsoft RSA TLS Issuing EOC CA 02",
];

/// How an outbound endpoint is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundScheme {
    /// A TLS handshake (port 443 by default): reachable, and whose chain.
    Https,
    /// A plain GET (port 80 by default): the CRL hosts.
    Http,
}

/// One endpoint of `reachability.endpoints`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundUrl {
    pub scheme: OutboundScheme,
    /// A DNS name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The GET's path (`/` when none); no meaning for https.
    pub path: String,
}

impl fmt::Display for OutboundUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, default_port) = match self.scheme {
            OutboundScheme::Https => ("https", 443),
            OutboundScheme::Http => ("http", 80),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "{scheme}://{host}")?;
        if self.port != default_port {
            write!(f, ":{}", self.port)?;
        }
        match self.scheme {
            OutboundScheme::Https => Ok(()),
            OutboundScheme::Http => f.write_str(&self.path),
        }
    }
}

/// `https://host[:port]` or `http://host[:port][/path]`: no user or
/// password (an endpoint is probed anonymously), no query.
fn endpoint(value: &str, _: &Source) -> Result<OutboundUrl, String> {
    let (scheme, rest) = if let Some(rest) = value.strip_prefix("https://") {
        (OutboundScheme::Https, rest)
    } else if let Some(rest) = value.strip_prefix("http://") {
        (OutboundScheme::Http, rest)
    } else {
        return Err(format!(
            "{value:?} is not an https:// or http:// URL (https for the TLS endpoints, http for \
             the CRL hosts on port 80)"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // Not echoed: what stands before '@' may be a password.
    if authority.contains('@') {
        return Err(
            "must not carry a user or password (user@host): endpoints are probed \
                    anonymously"
                .into(),
        );
    }
    if value.contains(char::is_whitespace) || path.contains(['?', '#']) {
        return Err(format!("{value:?} is not a URL without query or fragment"));
    }
    let default_port = match scheme {
        OutboundScheme::Https => 443,
        OutboundScheme::Http => 80,
    };
    let (host, port) = host_port(authority, default_port)
        .ok_or_else(|| format!("{value:?} has no usable host[:port]"))?;
    Ok(OutboundUrl {
        scheme,
        host,
        port,
        path: path.to_owned(),
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        None => default_port,
    };
    let name_ok = |h: &str| {
        !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
    };
    (authority.starts_with('[') || name_ok(host)).then(|| (host.to_ascii_lowercase(), port))
}

/// A CA's name (its certificate's CN), as the Azure CA page writes it.
fn issuer(value: &str, _: &Source) -> Result<String, String> {
    let name = value.trim();
    if name.is_empty() {
        return Err("is empty: give a CA's name (its certificate's CN)".into());
    }
    Ok(name.to_owned())
}

fn azure_ca_names() -> Vec<String> {
    AZURE_CA_NAMES.iter().map(|n| (*n).to_owned()).collect()
}

section! {
    #[derive(Debug, Clone)]
    pub struct ReachabilityConfig: Default {
        /// What the outbound checks probe, replacing the cloud's documented
        /// list: https:// URLs get a TLS handshake (reachable, and who issued
        /// the chain), http:// URLs a GET (the CRL hosts, port 80). Empty,
        /// the default: the documented endpoints of [tenant] cloud.
        pub endpoints: Vec<OutboundUrl> {
            toml: "reachability.endpoints", env: "PROVD_REACHABILITY_ENDPOINTS",
            flag: "--reachability-endpoint",
            example: "https://login.microsoftonline.us", parse: Each(endpoint), default: Vec::new()
        }
        /// CA names (CN) a presented chain's top issuer must be one of to
        /// count as Microsoft's; anything else is reported as TLS
        /// inspection. Default: the roots and subordinates of Microsoft's
        /// Azure Certificate Authority details page. A comma-separated
        /// variable (names hold spaces).
        pub expected_issuers: Vec<String> {
            toml: "reachability.expected_issuers", env: "PROVD_REACHABILITY_EXPECTED_ISSUERS",
            flag: "--reachability-expected-issuer",
            example: "Contoso Lab Root CA", parse: EachComma(issuer), default: azure_ca_names()
        }
        /// Limit for each probe (connect, proxy, handshake or response).
        /// Keep it under Verify's check_timeout (default 10s): the probes
        /// run at once, and a group over that limit reports one FAIL.
        pub timeout: Duration {
            toml: "reachability.timeout", env: "PROVD_REACHABILITY_TIMEOUT",
            flag: "--reachability-timeout",
            example: "3s", parse: parse::nonzero_duration, default: Duration::from_secs(5)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(v: &str) -> Result<OutboundUrl, String> {
        endpoint(v, &Source::Env)
    }

    #[test]
    fn endpoints_are_https_or_http_urls_with_default_ports() {
        let login = url("https://login.microsoftonline.com").unwrap();
        assert_eq!(login.scheme, OutboundScheme::Https);
        assert_eq!(
            (login.host.as_str(), login.port),
            ("login.microsoftonline.com", 443)
        );
        assert_eq!(login.to_string(), "https://login.microsoftonline.com");
        let crl = url("http://crl.microsoft.com").unwrap();
        assert_eq!((crl.port, crl.path.as_str()), (80, "/"));
        assert_eq!(crl.to_string(), "http://crl.microsoft.com/");
        let lab = url("http://127.0.0.1:8080/crl/x.crl").unwrap();
        assert_eq!((lab.host.as_str(), lab.port), ("127.0.0.1", 8080));
        assert_eq!(lab.to_string(), "http://127.0.0.1:8080/crl/x.crl");
        let v6 = url("https://[::1]:9443").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9443));
        assert_eq!(v6.to_string(), "https://[::1]:9443");
        for bad in [
            "login.microsoftonline.com",
            "ftp://x",
            "https://",
            "https://a..b",
            "https://host:0",
            "https://host:99999",
            "http://host/p?q=1",
            "https://[nope]",
            "https://ho st",
        ] {
            assert!(url(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn credentials_in_an_endpoint_are_refused_without_echoing_them() {
        let err = url("https://user:s3cret@host").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("user or password"), "{err}");
    }

    #[test]
    fn issuer_names_are_trimmed_and_not_empty() {
        assert_eq!(issuer("  Contoso CA ", &Source::Env).unwrap(), "Contoso CA");
        assert!(issuer(" ", &Source::Env).is_err());
        assert_eq!(azure_ca_names().len(), AZURE_CA_NAMES.len());
        assert!(AZURE_CA_NAMES.contains(&"DigiCert Global Root G2"));
    }
}
