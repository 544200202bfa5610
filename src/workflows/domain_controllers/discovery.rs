//! Discovery: the domain's DCs from DNS SRV records and from the directory
//! itself (server objects with an nTDSDSA child), probed; and the check that
//! a priority list names only DCs of the domain.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{
    Connect, DEFAULT_PROBE_TIMEOUT, DcSession, DomainControllerWorkflows, NO_READER, Reader,
};
use crate::backends::directory::{
    BindCredential, Directory, DirectoryError, ProbeReport, Scope, SrvTarget, escape,
};
use crate::backends::store::EventKind;
use crate::workflows::operations::{NewEvent, Progress};
use crate::workflows::validate::{self, dns_name};
use crate::workflows::{Error, FieldViolation};

impl DomainControllerWorkflows {
    /// DiscoverDomainControllers: as the request's credential, else as this
    /// host (see [`Reader`]).
    pub async fn discover(
        &self,
        domain: &str,
        credential: Option<BindCredential>,
        skip_probe: bool,
        probe_timeout: Option<Duration>,
    ) -> Result<Discovery, Error> {
        let reader = self.reader(credential);
        self.discover_as(domain, reader.as_ref(), skip_probe, probe_timeout)
            .await
    }

    /// Discovery read as `reader` (Verify resolves its own once per run).
    pub(crate) async fn discover_as(
        &self,
        domain: &str,
        reader: Option<&Reader>,
        skip_probe: bool,
        probe_timeout: Option<Duration>,
    ) -> Result<Discovery, Error> {
        let mut violations = Vec::new();
        let domain = dns_name("domain", domain)
            .map_err(|v| violations.push(v))
            .ok();
        let timeout = probe_timeout.unwrap_or(DEFAULT_PROBE_TIMEOUT);
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&timeout) {
            violations.push(FieldViolation::new(
                "probe_timeout",
                "must be from 100ms to 60s",
            ));
        }
        if let Some(Reader::Request(credential)) = reader {
            violations.extend(validate::credential("credential", Some(credential)));
        }
        let Some(domain) = domain.filter(|_| violations.is_empty()) else {
            return Err(Error::InvalidArgument(violations));
        };

        let priority = self.priority(&domain).await?;
        let srv = self.directory.srv_lookup(&domain).await;
        let mut found: BTreeMap<String, DiscoveredDc> = BTreeMap::new();
        let srv_error = match srv {
            Ok(targets) => {
                for t in targets {
                    let entry = found.entry(t.host.clone()).or_default();
                    entry.host = t.host.clone();
                    entry.from_dns = true;
                    entry.srv = Some(t);
                }
                None
            }
            // DNS answered: it lists no DC of the domain.
            Err(DirectoryError::NoDnsRecords { .. }) => None,
            Err(e) => Some(e.to_string()),
        };
        let directory_unavailable_reason = match reader {
            None => Some(format!(
                "{NO_READER}: the directory's own list of DCs needs a bind"
            )),
            Some(reader) => match self.directory_dcs(&domain, reader.credential()).await {
                Ok(listed) => {
                    for (host, site) in listed {
                        let entry = found.entry(host.clone()).or_default();
                        entry.host = host;
                        entry.from_directory = true;
                        entry.site = site;
                    }
                    None
                }
                Err(e) => Some(reader.unread(e)?),
            },
        };
        // The probes bind as the reader; as this host only if it could read
        // above: otherwise anonymously, as with no credential at all.
        let probe_as = match reader {
            Some(r) if !(r.is_host() && directory_unavailable_reason.is_some()) => {
                Some(r.credential())
            }
            _ => None,
        };
        if found.is_empty() {
            return Err(not_found(&domain, srv_error, directory_unavailable_reason));
        }
        for dc in found.values_mut() {
            dc.addresses = self
                .directory
                .resolve(&dc.host)
                .await
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect();
            dc.priority_rank = priority
                .dcs
                .iter()
                .position(|p| *p == dc.host)
                .map_or(0, |i| u32::try_from(i + 1).unwrap_or(u32::MAX));
        }
        let mut dcs: Vec<DiscoveredDc> = found.into_values().collect();
        if !skip_probe {
            let probes = dcs
                .iter()
                .map(|dc| self.directory.probe(&dc.host, probe_as, timeout));
            let reports = futures_util::future::join_all(probes).await;
            for (dc, report) in dcs.iter_mut().zip(reports) {
                dc.probe = Some(report);
            }
        }
        dcs.sort_by(|a, b| {
            let rank = |d: &DiscoveredDc| {
                if d.priority_rank == 0 {
                    u32::MAX
                } else {
                    d.priority_rank
                }
            };
            let srv_key = |d: &DiscoveredDc| {
                d.srv
                    .as_ref()
                    .map_or((u16::MAX, 0), |s| (s.priority, u16::MAX - s.weight))
            };
            rank(a)
                .cmp(&rank(b))
                .then(srv_key(a).cmp(&srv_key(b)))
                .then(a.host.cmp(&b.host))
        });
        Ok(Discovery {
            domain,
            dcs,
            directory_unavailable_reason,
        })
    }

    /// The DCs the directory lists (server objects with an nTDSDSA child),
    /// with their site.
    async fn directory_dcs(
        &self,
        domain: &str,
        credential: &BindCredential,
    ) -> Result<Vec<(String, String)>, Error> {
        let mut session = DcSession::open(self, domain, credential, Connect::Quiet).await?;
        let root = session.root_dse().await?;
        let config = root
            .first("configurationNamingContext")
            .ok_or_else(|| Error::internal_msg("RootDSE has no configurationNamingContext"))?
            .to_owned();
        let sites = format!("CN=Sites,{config}");
        let dsas = session
            .search(
                &sites,
                Scope::Subtree,
                "(objectClass=nTDSDSA)",
                &["objectClass"],
            )
            .await?;
        let servers = session
            .search(
                &sites,
                Scope::Subtree,
                "(objectClass=server)",
                &["dNSHostName"],
            )
            .await?;
        let parents: BTreeSet<String> = dsas
            .iter()
            .filter_map(|e| e.dn.split_once(',').map(|(_, p)| p.to_ascii_lowercase()))
            .collect();
        Ok(servers
            .into_iter()
            .filter(|s| parents.contains(&s.dn.to_ascii_lowercase()))
            .filter_map(|s| {
                let host = s.first("dNSHostName")?.to_ascii_lowercase();
                Some((host, site_of(&s.dn)))
            })
            .collect())
    }
}

/// Neither source knows a DC of `domain`: UNAVAILABLE when neither could
/// be read, else NOT_FOUND saying what each source said.
fn not_found(domain: &str, srv_error: Option<String>, directory: Option<String>) -> Error {
    let srv = super::srv_name(domain);
    match (srv_error, directory) {
        (Some(e), Some(_)) => Error::Unavailable(format!("cannot find the DCs of {domain}: {e}")),
        (srv_error, directory) => Error::NotFound(format!(
            "a domain controller of {domain} ({}; {})",
            match srv_error {
                None => format!("DNS has no SRV record {srv}"),
                Some(e) => format!("the SRV record {srv} could not be read: {e}"),
            },
            match directory {
                None => "the directory lists none".to_owned(),
                Some(why) => format!("the directory's own list was not read: {why}"),
            }
        )),
    }
}

/// `CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,…` → the site.
fn site_of(server_dn: &str) -> String {
    let parts: Vec<&str> = server_dn.split(',').collect();
    parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("CN=Servers"))
        .and_then(|i| parts.get(i + 1))
        .and_then(|p| p.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Default)]
pub struct DiscoveredDc {
    pub host: String,
    pub addresses: Vec<String>,
    pub site: String,
    pub from_dns: bool,
    pub from_directory: bool,
    pub srv: Option<SrvTarget>,
    pub priority_rank: u32,
    pub probe: Option<ProbeReport>,
}

#[derive(Debug, Clone)]
pub struct Discovery {
    pub domain: String,
    pub dcs: Vec<DiscoveredDc>,
    pub directory_unavailable_reason: Option<String>,
}

/// Each DC must be a member of `domain`: listed in its SRV records or
/// serving it (RootDSE defaultNamingContext). A DC serving another domain
/// is always refused; one that cannot be confirmed is refused unless
/// `allow_unreachable`, then kept with a warning.
pub(crate) async fn check_members(
    directory: &dyn Directory,
    domain: &str,
    dcs: &[String],
    allow_unreachable: bool,
    progress: &Progress,
) -> Result<(), Error> {
    let srv: BTreeSet<String> = directory
        .srv_lookup(domain)
        .await
        .map(|t| t.into_iter().map(|t| t.host).collect())
        .unwrap_or_default();
    let domain_dn = escape::domain_dn(domain).to_ascii_lowercase();
    for (i, dc) in dcs.iter().enumerate() {
        progress.checkpoint()?;
        // The RootDSE alone says which domain a DC serves: the one the
        // operation's session already read, else one anonymous read (a
        // full probe would cost the DC two TLS handshakes and a bind).
        let root = match super::known_root_dse(dc) {
            Some(root) => Ok(root),
            None => directory.read_root_dse(dc).await,
        };
        let (serves, reachable, error) = match &root {
            Ok(root) => (
                root.first("defaultNamingContext")
                    .map(str::to_ascii_lowercase),
                true,
                None,
            ),
            Err(err) => (None, !err.is_failover(), Some(err.to_string())),
        };
        let field = format!("domain_controllers[{i}]");
        match serves {
            Some(nc) if nc != domain_dn => {
                return Err(Error::invalid(
                    field,
                    format!("{dc} serves {nc}, not {domain}"),
                ));
            }
            Some(_) => {}
            None if srv.contains(dc) && reachable => {}
            None => {
                let why = error.unwrap_or_else(|| "it is not in the domain's SRV records".into());
                let message = format!("{dc} cannot be confirmed a member of {domain}: {why}");
                if !allow_unreachable {
                    return Err(Error::invalid(field, message));
                }
                progress
                    .emit(NewEvent {
                        step: "check-members".into(),
                        kind: Some(EventKind::Warning),
                        message: format!("{message}; kept because allow_unreachable is set"),
                        attributes: BTreeMap::from([("dc".into(), dc.clone())]),
                        ..NewEvent::default()
                    })
                    .await?;
                continue;
            }
        }
        progress
            .emit(NewEvent {
                step: "check-members".into(),
                kind: Some(EventKind::Progress),
                message: format!("{dc} is a domain controller of {domain}"),
                attributes: BTreeMap::from([("dc".into(), dc.clone())]),
                ..NewEvent::default()
            })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites() {
        assert_eq!(
            site_of("CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=x"),
            "Default-First-Site-Name"
        );
        assert_eq!(site_of("CN=x"), "");
    }
}
