//! What the outbound checks probe by default, per cloud: the endpoints
//! Microsoft documents for the provisioning agent.
//!
//! Sources:
//! - "Prerequisites for Microsoft Entra Cloud Sync", Firewall and proxy
//!   requirements
//!   (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-prerequisites#firewall-and-proxy-requirements>):
//!   outbound 443 for all communication with the service and 80 for the
//!   certificate revocation lists; public cloud `*.msappproxy.net`,
//!   `*.servicebus.windows.net`, `*.microsoftonline.com` (…),
//!   `mscrl.microsoft.com:80`, `crl.microsoft.com:80`,
//!   `ocsp.msocsp.com:80`, `www.microsoft.com:80`, `login.windows.net`
//!   (registration); US Government `*.msappproxy.us`,
//!   `*.servicebus.usgovcloudapi.net`, `mscrl.microsoft.us:80`,
//!   `crl.microsoft.us:80`, `ocsp.msocsp.us:80`, `www.microsoft.us:80`,
//!   `login.windows.us`, `*.microsoftonline.us` (…).
//! - The private network connector's outbound requirements, the same
//!   connector framework
//!   (<https://learn.microsoft.com/entra/global-secure-access/how-to-configure-connectors#allow-access-to-urls>):
//!   the same two wildcards over 443, CRL and OCSP hosts over 80, and
//!   "Avoid all forms of inline inspection and termination on outbound TLS
//!   communications" — the TLS inspection WARN's remedy.
//!
//! MICROSOFT DOCUMENTS ONLY WILDCARDS for the two service suffixes. For
//! `*.msappproxy.net` a concrete host is documented for the connector
//! framework's registration, `<tenant id>.registration.msappproxy.net`
//! (Seamless SSO quickstart,
//! <https://learn.microsoft.com/entra/identity/hybrid/connect/how-to-connect-sso-quick-start>),
//! which the agent's registration uses too: it is probed when `[tenant]
//! tenant` is the tenant's id, and reported SKIP otherwise. No concrete
//! host is documented for `*.servicebus.windows.net` (the service assigns
//! the agent its namespace) nor for the US Government suffixes: their
//! checks are SKIP, asking for the host in `[reachability] endpoints`.
//! The login hosts are the ones the agent signs in and registers through
//! (`login.microsoftonline.*`, and `login.windows.*` named for
//! registration); the CRL hosts are probed at `/`, since any HTTP answer
//! shows the path is open.

use super::Target;
use crate::backends::host::Cloud;

/// One default entry: a probe, or a wildcard with nothing to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Probe(Target),
    /// Documented only as `pattern`; `why` says what to configure.
    WildcardOnly {
        pattern: &'static str,
        why: String,
    },
}

fn https(host: &str) -> Endpoint {
    Endpoint::Probe(Target::Https {
        host: host.to_owned(),
        port: 443,
    })
}

fn crl(host: &str) -> Endpoint {
    Endpoint::Probe(Target::Http {
        host: host.to_owned(),
        port: 80,
        path: "/".to_owned(),
    })
}

/// `8-4-4-4-12` hex digits: a tenant id, not a domain or `organizations`.
fn is_tenant_id(tenant: &str) -> bool {
    let groups: Vec<&str> = tenant.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

const NO_CONCRETE_HOST: &str = "Microsoft documents only this wildcard: to probe it, list the \
     host your agent uses (its trace log names it) in [reachability] endpoints, with the login and \
     CRL hosts (the list replaces the documented one)";

/// The documented endpoints of `cloud`; `tenant` is `[tenant] tenant`.
pub fn documented(cloud: Cloud, tenant: &str) -> Vec<Endpoint> {
    let wildcard = |pattern, why: &str| Endpoint::WildcardOnly {
        pattern,
        why: why.to_owned(),
    };
    match cloud {
        Cloud::AzurePublic => vec![
            https("login.microsoftonline.com"),
            https("login.windows.net"),
            if is_tenant_id(tenant) {
                https(&format!(
                    "{}.registration.msappproxy.net",
                    tenant.to_ascii_lowercase()
                ))
            } else {
                wildcard(
                    "*.msappproxy.net",
                    "Microsoft documents only this wildcard for cloud sync; its concrete \
                     registration host is <tenant id>.registration.msappproxy.net: set [tenant] \
                     tenant to the tenant's id (a GUID), or list the host in [reachability] \
                     endpoints (which replaces the documented list)",
                )
            },
            wildcard("*.servicebus.windows.net", NO_CONCRETE_HOST),
            crl("mscrl.microsoft.com"),
            crl("crl.microsoft.com"),
            crl("ocsp.msocsp.com"),
            crl("www.microsoft.com"),
        ],
        Cloud::AzureUsGovernment => vec![
            https("login.microsoftonline.us"),
            https("login.windows.us"),
            wildcard("*.msappproxy.us", NO_CONCRETE_HOST),
            wildcard("*.servicebus.usgovcloudapi.net", NO_CONCRETE_HOST),
            crl("mscrl.microsoft.us"),
            crl("crl.microsoft.us"),
            crl("ocsp.msocsp.us"),
            crl("www.microsoft.us"),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(list: &[Endpoint]) -> Vec<String> {
        list.iter()
            .map(|e| match e {
                Endpoint::Probe(t) => t.to_string(),
                Endpoint::WildcardOnly { pattern, .. } => (*pattern).to_owned(),
            })
            .collect()
    }

    #[test]
    fn each_cloud_has_its_login_service_and_crl_hosts() {
        let public = shown(&documented(Cloud::AzurePublic, "organizations"));
        assert_eq!(
            public,
            [
                "https://login.microsoftonline.com",
                "https://login.windows.net",
                "*.msappproxy.net",
                "*.servicebus.windows.net",
                "http://mscrl.microsoft.com/",
                "http://crl.microsoft.com/",
                "http://ocsp.msocsp.com/",
                "http://www.microsoft.com/",
            ]
        );
        let us = shown(&documented(Cloud::AzureUsGovernment, "organizations"));
        assert!(
            us.iter().all(|e| e.ends_with(".us")
                || e.ends_with(".us/")
                || e.ends_with("usgovcloudapi.net")),
            "{us:?}"
        );
        assert_eq!(us.len(), 8);
    }

    #[test]
    fn a_tenant_id_gives_the_registration_host() {
        let tenant = "00000000-0000-4000-8000-00000000BEEF";
        let public = shown(&documented(Cloud::AzurePublic, tenant));
        assert_eq!(
            public[2],
            "https://00000000-0000-4000-8000-00000000beef.registration.msappproxy.net"
        );
        for not_an_id in ["contoso.onmicrosoft.com", "organizations", "0000-0000"] {
            assert!(!is_tenant_id(not_an_id), "{not_an_id}");
        }
    }
}
