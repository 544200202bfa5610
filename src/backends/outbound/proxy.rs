//! The agent's proxy as an address to connect to: the `proxyaddress` of
//! its exe.config's `<defaultProxy><proxy>`, read as .NET Framework reads
//! it (`http://host[:port]`, or `host:port`; port 80 when none). A user and
//! password in the address are dropped on reading and never shown: the
//! probe does not authenticate (the agent authenticates as its service
//! account, `useDefaultCredentials`), and the text reaches Verify's
//! attributes, logs and the metric's labels.

use std::fmt;

/// A proxy provd can speak HTTP/1.1 to (CONNECT and absolute-form GET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    host: String,
    port: u16,
}

/// Why a proxy address cannot be used; its text is the redacted address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the proxy address {shown:?} {reason}")]
pub struct ProxyAddressError {
    pub shown: String,
    pub reason: &'static str,
}

impl Proxy {
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `address` as .NET reads `proxyaddress`. Only http proxies: .NET
    /// Framework speaks plain HTTP to its proxy, and provd does not guess
    /// at any other scheme.
    pub fn parse(address: &str) -> Result<Proxy, ProxyAddressError> {
        let fail = |reason| ProxyAddressError {
            shown: redact(address),
            reason,
        };
        let text = address.trim();
        let rest = match text.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => {
                return Err(fail(
                    "is not http:// (provd probes through http proxies only)",
                ));
            }
            None => text,
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        // The user and password, if any, stop at the last '@'.
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| fail("has an unclosed '['"))?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        let port = match port {
            None | Some("") => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| fail("has no usable port"))?,
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(fail("has no host"));
        }
        Ok(Proxy {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// .NET's `bypassonlocal`: a target named without a dot, `localhost`,
    /// or a loopback address is reached directly. (.NET also counts this
    /// host's own addresses, which a Microsoft endpoint never is.)
    pub fn bypassed_on_local(host: &str) -> bool {
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .map_or(!host.contains('.'), |ip| ip.is_loopback())
    }
}

/// `http://host:port`: never a user or password.
impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", super::authority(&self.host, self.port))
    }
}

/// `address` with whatever stands before an '@' of its authority replaced
/// by `***`, for messages about an address that cannot be parsed.
pub fn redact(address: &str) -> String {
    let (scheme, rest) = match address.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), address),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}***@{host}{tail}"),
        None => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_dotnet_reads_them() {
        let p = Proxy::parse("http://proxy.contoso.com:8080").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.contoso.com", 8080));
        assert_eq!(p.to_string(), "http://proxy.contoso.com:8080");
        assert_eq!(Proxy::parse("proxy:3128").unwrap().port(), 3128);
        assert_eq!(
            Proxy::parse("HTTP://Proxy/").unwrap().to_string(),
            "http://proxy:80"
        );
        assert_eq!(
            Proxy::parse("http://[::1]:3128/").unwrap().to_string(),
            "http://[::1]:3128"
        );
        for bad in [
            "",
            "https://proxy:443",
            "socks5://proxy:1080",
            "http://proxy:0",
            "http://:8080",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn credentials_in_an_address_are_never_shown() {
        let p = Proxy::parse("http://svc:S3cret!@proxy.contoso.com:8080/").unwrap();
        assert_eq!(p.to_string(), "http://proxy.contoso.com:8080");
        assert!(!format!("{p:?}").contains("S3cret"));
        let err = Proxy::parse("https://svc:S3cret!@proxy:443").unwrap_err();
        assert!(!err.to_string().contains("S3cret"), "{err}");
        assert!(err.to_string().contains("***@proxy:443"), "{err}");
        assert_eq!(redact("http://a:b@h:1/p"), "http://***@h:1/p");
        assert_eq!(redact("a:b@h"), "***@h");
        assert_eq!(redact("http://h:1/p@x"), "http://h:1/p@x");
    }

    #[test]
    fn local_targets_bypass_the_proxy_when_bypassonlocal_says_so() {
        for local in ["localhost", "127.0.0.1", "::1", "intranet"] {
            assert!(Proxy::bypassed_on_local(local), "{local}");
        }
        for remote in ["login.microsoftonline.com", "10.0.0.1", "203.0.113.7"] {
            assert!(!Proxy::bypassed_on_local(remote), "{remote}");
        }
    }
}
