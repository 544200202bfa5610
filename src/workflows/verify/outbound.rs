//! Outbound reachability from the agent's host, through the proxy the
//! agent uses: `host.outbound.https` (one per TLS endpoint: reachable, and
//! the chain presented is issued by one of `[reachability]
//! expected_issuers`, else WARN "TLS inspection") and `host.outbound.crl`
//! (one per CRL host on port 80: any HTTP answer). The subject is the
//! endpoint's URL, or the wildcard Microsoft documents when there is no
//! concrete host to probe (SKIP, saying what to configure).
//!
//! The proxy is the `<defaultProxy>` of the agent's exe.config, read
//! through the host backend: none (or the agent not installed) is direct,
//! as the agent goes; `bypassonlocal` is honoured; the `<bypasslist>`'s
//! regular expressions are shown but not evaluated. Only where the host
//! backend is available, like the other host checks; credential-free.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::{Category, Check, Run, Status, check};
use crate::backends::host::{AgentProxy, HostError};
use crate::backends::outbound::endpoints::Endpoint;
use crate::backends::outbound::{
    HttpAnswer, Outbound, OutboundError, Proxy, ProxyAddressError, Target, TlsSeen,
};

const HTTPS: &str = "host.outbound.https";
const CRL: &str = "host.outbound.crl";

/// The firewall and proxy requirements of cloud sync's prerequisites.
pub const FIREWALL_PAGE: &str = "https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-prerequisites#firewall-and-proxy-requirements";
/// "Avoid all forms of inline inspection and termination on outbound TLS
/// communications" (the connector framework the agent is built on).
pub const NO_INSPECTION_PAGE: &str = "https://learn.microsoft.com/entra/global-secure-access/how-to-configure-connectors#allow-access-to-urls";
/// The CAs whose chains Microsoft's endpoints present.
pub const AZURE_CA_PAGE: &str =
    "https://learn.microsoft.com/azure/security/fundamentals/azure-ca-details";

/// What the outbound checks probe (`[reachability]`, resolved against the
/// cloud by the daemon's assembly).
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub endpoints: Vec<Endpoint>,
    /// CA names (CN) a chain's top issuer must be one of.
    pub expected_issuers: Vec<String>,
    /// Each probe's limit.
    pub timeout: Duration,
}

/// The backend and what it probes, as `VerifyWorkflows` holds them.
#[derive(Clone)]
pub struct OutboundProbes {
    pub outbound: Arc<dyn Outbound>,
    pub settings: Arc<OutboundSettings>,
}

/// The route the agent's traffic takes, from its exe.config.
struct AgentRoute {
    proxy: Result<Option<Proxy>, ProxyAddressError>,
    bypass_on_local: bool,
    bypass_list: Vec<String>,
    /// Where the route was read, or why it was not.
    from: String,
}

impl AgentRoute {
    fn read(settings: Result<crate::backends::host::AgentSettingsRead, HostError>) -> AgentRoute {
        let direct = |from: String| AgentRoute {
            proxy: Ok(None),
            bypass_on_local: false,
            bypass_list: Vec::new(),
            from,
        };
        let read = match settings {
            Ok(read) => read,
            // Before Install there is no exe.config: the agent-to-be goes
            // wherever this host goes, probed directly.
            Err(e) => return direct(format!("no exe.config read ({e}): direct")),
        };
        match read.proxy {
            AgentProxy::None => direct(format!("{}: no <defaultProxy>, direct", read.exe_config)),
            AgentProxy::Address { address, .. } if address.trim().is_empty() => direct(format!(
                "{}: <defaultProxy> off or without an address, direct",
                read.exe_config
            )),
            AgentProxy::Address {
                address,
                bypass_on_local,
                bypass_list,
            } => AgentRoute {
                proxy: Proxy::parse(&address).map(Some),
                bypass_on_local,
                bypass_list,
                from: read.exe_config,
            },
        }
    }

    /// The proxy for `host`, if any: none when `bypassonlocal` covers it.
    fn for_host(&self, host: &str) -> Result<Option<&Proxy>, &ProxyAddressError> {
        match &self.proxy {
            Ok(Some(_)) if self.bypass_on_local && Proxy::bypassed_on_local(host) => Ok(None),
            Ok(proxy) => Ok(proxy.as_ref()),
            Err(e) => Err(e),
        }
    }

    /// The attributes every check shows of the route it took.
    fn attrs(&self, c: Check, proxy: Option<&Proxy>) -> Check {
        let shown = match (proxy, &self.proxy) {
            (Some(p), _) => p.to_string(),
            (None, Ok(Some(_))) => "direct (bypassonlocal)".to_owned(),
            (None, _) => "direct".to_owned(),
        };
        let c = c
            .attr("proxy", shown)
            .attr("proxy_source", self.from.clone());
        if self.bypass_list.is_empty() {
            c
        } else {
            c.attr(
                "proxy_bypass_list",
                format!("{} (not evaluated by provd)", self.bypass_list.join("; ")),
            )
        }
    }
}

fn via(proxy: Option<&Proxy>) -> String {
    proxy.map_or_else(
        || "directly".to_owned(),
        |p| format!("through the proxy {p}"),
    )
}

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    // Without a host backend, host.backend.available already says so.
    if run.host.availability().is_err() {
        return Vec::new();
    }
    let route = AgentRoute::read(run.host.agent_settings().await);
    let probes = &run.outbound;
    join_all(
        probes
            .settings
            .endpoints
            .iter()
            .map(|e| one(probes, &route, e)),
    )
    .await
}

async fn one(probes: &OutboundProbes, route: &AgentRoute, endpoint: &Endpoint) -> Check {
    let target = match endpoint {
        Endpoint::Probe(target) => target,
        Endpoint::WildcardOnly { pattern, why } => {
            return check(HTTPS, Category::Host, Status::Skip, why.clone())
                .subject(*pattern)
                .attr("source", FIREWALL_PAGE);
        }
    };
    let id = match target {
        Target::Https { .. } => HTTPS,
        Target::Http { .. } => CRL,
    };
    let base = |status, message: String| {
        check(id, Category::Host, status, message)
            .subject(target.to_string())
            .attr("endpoint", target.authority())
            .attr("source", FIREWALL_PAGE)
    };
    let proxy = match route.for_host(target.host()) {
        Ok(proxy) => proxy,
        Err(e) => {
            return route
                .attrs(
                    base(
                        Status::Warn,
                        format!("provd cannot probe {target} the agent's way: {e}"),
                    ),
                    None,
                )
                .remedy(format!(
                    "write the proxy as http://host:port in <defaultProxy><proxy proxyaddress> of \
                     {} (or apply [agent.settings.proxy])",
                    route.from
                ));
        }
    };
    let limit = probes.settings.timeout;
    let c = match target {
        Target::Https { host, port } => tls(
            base,
            target,
            probes
                .outbound
                .tls_handshake(host, *port, proxy, limit)
                .await,
            proxy,
            &probes.settings.expected_issuers,
        ),
        Target::Http { host, port, path } => crl(
            base,
            target,
            probes
                .outbound
                .http_get(host, *port, path, proxy, limit)
                .await,
            proxy,
        ),
    };
    route.attrs(c, proxy)
}

/// A proxy asking for authentication: the agent answers as its service
/// account (`useDefaultCredentials`), which the probe cannot, so the
/// outcome for the agent is unknown rather than a failure.
fn proxy_auth(c: Check, proxy: Option<&Proxy>, what: &str) -> Check {
    Check {
        status: Status::Warn,
        message: format!(
            "the proxy {} asks for authentication (407) for {what}: the agent signs in to it as its \
             service account, provd's probe cannot, so whether the agent gets through is not known",
            proxy.map(ToString::to_string).unwrap_or_default()
        ),
        ..c
    }
    .remedy("check the agent's trace log for proxy errors, or let this host reach the endpoint without proxy authentication")
}

fn tls(
    base: impl Fn(Status, String) -> Check,
    target: &Target,
    result: Result<TlsSeen, OutboundError>,
    proxy: Option<&Proxy>,
    expected: &[String],
) -> Check {
    let seen = match result {
        Ok(seen) => seen,
        Err(OutboundError::ProxyRefused { answer, .. }) if answer.status == 407 => {
            return proxy_auth(
                base(Status::Warn, String::new()),
                proxy,
                &format!("CONNECT {}", target.authority()),
            );
        }
        Err(e) => {
            let remedy = match proxy {
                Some(p) => format!(
                    "let the proxy {p} CONNECT to {} and reach it on 443",
                    target.authority()
                ),
                None => format!(
                    "allow outbound HTTPS (443) from this host to {} in the firewall, or give \
                     the agent a proxy that may ([agent.settings.proxy])",
                    target.host()
                ),
            };
            return base(
                Status::Fail,
                format!(
                    "{} is not reachable {}: {e}",
                    target.authority(),
                    via(proxy)
                ),
            )
            .remedy(remedy);
        }
    };
    let chain: Vec<&str> = seen.chain.iter().map(|c| c.subject.as_str()).collect();
    let c = base(Status::Pass, String::new())
        .attr("tls_version", seen.version.clone())
        .attr("chain", chain.join(" | "));
    let Some(top) = seen.top_issuer() else {
        return Check {
            status: Status::Warn,
            message: format!("{} presented no certificate", target.authority()),
            ..c
        };
    };
    let name = top.issuer_cn.as_deref().unwrap_or(&top.issuer);
    let c = c.attr("issuer", top.issuer.clone());
    if expected.iter().any(|e| e.eq_ignore_ascii_case(name)) {
        return Check {
            message: format!(
                "{} answers {} {}; the chain is issued by {}",
                target.authority(),
                seen.version,
                via(proxy),
                top.issuer
            ),
            ..c
        };
    }
    Check {
        status: Status::Warn,
        message: format!(
            "TLS inspection: the chain presented for {} is issued by {}, not one of Microsoft's CAs",
            target.host(),
            top.issuer
        ),
        ..c
    }
    .attr("source", NO_INSPECTION_PAGE)
    .attr("issuers_source", AZURE_CA_PAGE)
    .remedy(format!(
        "exclude {} from TLS inspection on {} (Microsoft: avoid all forms of inline inspection \
         and termination on the agent's outbound TLS); if {name} is a CA Microsoft added since \
         the Azure CA page provd follows, add it to [reachability] expected_issuers",
        target.host(),
        proxy.map_or_else(|| "the firewall".to_owned(), |p| format!("the proxy {p} or the firewall"))
    ))
}

/// What a proxy answers when it did not get the CRL host's answer.
const PROXY_FAILURES: [u16; 3] = [403, 502, 504];

fn crl(
    base: impl Fn(Status, String) -> Check,
    target: &Target,
    result: Result<HttpAnswer, OutboundError>,
    proxy: Option<&Proxy>,
) -> Check {
    let remedy = format!(
        "allow outbound HTTP (80) to {}{}: the agent downloads certificate revocation lists \
         there while it validates the service's TLS certificates",
        target.host(),
        proxy.map_or_else(String::new, |p| format!(" on the proxy {p}"))
    );
    match (result, proxy) {
        (Ok(answer), Some(p)) if answer.status == 407 => proxy_auth(
            base(Status::Warn, String::new()),
            Some(p),
            &format!("GET {target}"),
        )
        .attr("http_status", answer.to_string()),
        (Ok(answer), Some(p)) if PROXY_FAILURES.contains(&answer.status) => base(
            Status::Fail,
            format!(
                "the proxy {p} answered GET {target} with {answer}: it did not reach the CRL host"
            ),
        )
        .attr("http_status", answer.to_string())
        .remedy(remedy),
        (Ok(answer), _) => base(
            Status::Pass,
            format!("{target} answers HTTP ({answer}) {}", via(proxy)),
        )
        .attr("http_status", answer.to_string()),
        (Err(e), _) => base(
            Status::Fail,
            format!("{target} is not reachable {}: {e}", via(proxy)),
        )
        .remedy(remedy),
    }
}
