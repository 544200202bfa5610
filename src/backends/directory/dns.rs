//! DNS for DC discovery: SRV and address lookups against configured DNS
//! servers (the lab's DNS is not the host's resolver) or the system's.

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use super::{DirectoryError, SrvTarget};

pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// `servers` empty: the system resolver configuration.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, DirectoryError> {
        let resolver = if servers.is_empty() {
            Resolver::builder_tokio()
                .map_err(|e| DirectoryError::Config(format!("system DNS configuration: {e}")))?
                .build()
        } else {
            let name_servers = servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                    // A lab DNS may not know a name the next server does.
                    server.trust_negative_responses = false;
                    server.connections = vec![udp, tcp];
                    server
                })
                .collect();
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(name_servers),
                TokioRuntimeProvider::default(),
            )
            .build()
        }
        .map_err(|e| DirectoryError::Config(format!("DNS resolver: {e}")))?;
        Ok(Self { resolver })
    }

    pub async fn srv(&self, domain: &str) -> Result<Vec<SrvTarget>, DirectoryError> {
        let name = format!("_ldap._tcp.dc._msdcs.{domain}");
        let lookup = self
            .resolver
            .srv_lookup(format!("{name}.").as_str())
            .await
            .map_err(|e| lookup_error(e, name.clone(), "SRV"))?;
        let mut targets: Vec<SrvTarget> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(SrvTarget {
                    host: srv
                        .target
                        .to_string()
                        .trim_end_matches('.')
                        .to_ascii_lowercase(),
                    port: srv.port,
                    priority: srv.priority,
                    weight: srv.weight,
                }),
                _ => None,
            })
            .collect();
        targets.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(b.weight.cmp(&a.weight))
                .then(a.host.cmp(&b.host))
        });
        targets.dedup_by(|a, b| a.host == b.host);
        Ok(targets)
    }

    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DirectoryError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let fqdn = format!("{}.", host.trim_end_matches('.'));
        let lookup = self
            .resolver
            .lookup_ip(fqdn.as_str())
            .await
            .map_err(|e| lookup_error(e, host.to_owned(), "A or AAAA"))?;
        let addrs: Vec<IpAddr> = lookup.iter().collect();
        if addrs.is_empty() {
            return Err(DirectoryError::NoDnsRecords {
                name: host.to_owned(),
                kind: "A or AAAA",
            });
        }
        Ok(addrs)
    }
}

/// "No such record" is an answer, said in words: hickory's own message for
/// it is the query's Debug text.
fn lookup_error(err: NetError, name: String, kind: &'static str) -> DirectoryError {
    if err.is_no_records_found() {
        DirectoryError::NoDnsRecords { name, kind }
    } else {
        DirectoryError::Dns(format!("{kind} {name}: {err}"))
    }
}
