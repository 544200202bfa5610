//! Domain controllers: the per-domain priority (with an etag), the order
//! every directory operation tries DCs in, discovery (DNS SRV merged with
//! the directory's own list) and probes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::operations::{Job, NewEvent, OperationSpec, Outcome, Progress, blocking, job, now_ms};
use super::{Caller, Error, FieldViolation, Operations, validate};
use crate::backends::directory::{
    BindCredential, Directory, DirectoryError, DirectorySession, ProbeReport, Scope, SrvTarget,
    escape,
};
use crate::backends::store::{EventKind, OperationKind, OperationRecord, Store};

const PRIORITY_NS: &str = "dc_priority";
/// At most this many DCs in a priority list.
pub const MAX_PRIORITY_DCS: usize = 16;
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A domain's stored DC order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityRecord {
    pub dcs: Vec<String>,
    /// Bumped on every change; the etag is derived from it.
    pub generation: u64,
    pub update_time_ms: Option<i64>,
}

impl PriorityRecord {
    pub fn etag(&self) -> String {
        format!("g{}", self.generation)
    }
}

/// Lower-cases and checks a DNS domain or host name.
pub fn dns_name(field: &str, value: &str) -> Result<String, FieldViolation> {
    let name = value.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if name.len() > 253 {
        return Err(FieldViolation::new(field, "must be at most 253 characters"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(FieldViolation::new(
                field,
                "must be a DNS name: dot-separated labels of letters, digits and hyphens \
                 (1 to 63 characters each)",
            ));
        }
    }
    Ok(name)
}

/// The DC list of a request: valid names, no duplicates, at most 16.
pub fn dc_list(field: &str, values: &[String]) -> Result<Vec<String>, FieldViolation> {
    if values.len() > MAX_PRIORITY_DCS {
        return Err(FieldViolation::new(
            field,
            format!("at most {MAX_PRIORITY_DCS} domain controllers"),
        ));
    }
    let mut seen = BTreeSet::new();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = dns_name(&format!("{field}[{i}]"), v)?;
            if !seen.insert(name.clone()) {
                return Err(FieldViolation::new(
                    format!("{field}[{i}]"),
                    format!("{name} is listed twice"),
                ));
            }
            Ok(name)
        })
        .collect()
}

/// Checks a credential's fields (the password is never echoed).
pub fn credential(field: &str, credential: Option<&BindCredential>) -> Vec<FieldViolation> {
    use secrecy::ExposeSecret;
    let Some(c) = credential else {
        return vec![FieldViolation::new(field, "is required")];
    };
    let mut v = Vec::new();
    if c.username.trim().is_empty() {
        v.push(FieldViolation::new(
            format!("{field}.username"),
            "is required",
        ));
    } else if c.username.len() > 1024 || c.username.contains('\0') {
        v.push(FieldViolation::new(
            format!("{field}.username"),
            "must be at most 1024 bytes without NUL",
        ));
    }
    let password = c.password.expose_secret();
    if password.is_empty() {
        v.push(FieldViolation::new(
            format!("{field}.password"),
            "is required",
        ));
    } else if password.len() > 1024 || password.contains('\0') {
        v.push(FieldViolation::new(
            format!("{field}.password"),
            "must be at most 1024 bytes without NUL",
        ));
    }
    v
}

pub fn directory_error(err: DirectoryError) -> Error {
    match err {
        DirectoryError::InvalidCredentials { .. } => Error::Unauthenticated(err.to_string()),
        DirectoryError::InsufficientAccess { .. } => Error::PermissionDenied(err.to_string()),
        DirectoryError::NoSuchObject { .. } => Error::NotFound(err.to_string()),
        DirectoryError::Unreachable { .. }
        | DirectoryError::AllFailed(_)
        | DirectoryError::Dns(_) => Error::Unavailable(err.to_string()),
        DirectoryError::Ldap { .. } => Error::Internal(err.to_string()),
        DirectoryError::Config(_) => Error::FailedPrecondition {
            reason: "DIRECTORY_CONFIG",
            subject: "directory".into(),
            message: err.to_string(),
        },
    }
}

/// The DC workflows: priority, discovery, and the ordered connect every
/// directory operation uses.
pub struct DcWorkflows {
    operations: Arc<Operations>,
    store: Arc<dyn Store>,
    directory: Arc<dyn Directory>,
}

impl DcWorkflows {
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        directory: Arc<dyn Directory>,
    ) -> Self {
        Self {
            operations,
            store,
            directory,
        }
    }

    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.directory
    }

    pub async fn priority(&self, domain: &str) -> Result<PriorityRecord, Error> {
        load_priority(&self.store, domain).await
    }

    pub async fn get_priority(&self, domain: &str) -> Result<(String, PriorityRecord), Error> {
        let domain = dns_name("domain", domain).map_err(|v| Error::InvalidArgument(vec![v]))?;
        let record = self.priority(&domain).await?;
        Ok((domain, record))
    }

    /// The order to try `domain`'s DCs in: the stored priority, else the SRV
    /// records (lowest priority first, then highest weight, then name).
    pub async fn order(&self, domain: &str) -> Result<Vec<String>, Error> {
        let priority = self.priority(domain).await?;
        if !priority.dcs.is_empty() {
            return Ok(priority.dcs);
        }
        let srv = self
            .directory
            .srv_lookup(domain)
            .await
            .map_err(|e| Error::Unavailable(format!("cannot find the DCs of {domain}: {e}")))?;
        if srv.is_empty() {
            return Err(Error::Unavailable(format!(
                "DNS lists no domain controller for {domain}"
            )));
        }
        Ok(srv.into_iter().map(|t| t.host).collect())
    }

    /// Binds to the first DC of `order` that answers. Each failover is a
    /// WARNING event; the DC that serves is a PROGRESS event with
    /// attribute `dc`. A rejected bind stops at once.
    pub async fn connect_in_order(
        &self,
        order: &[String],
        credential: &BindCredential,
        progress: Option<&Progress>,
        step: &str,
    ) -> Result<Box<dyn DirectorySession>, Error> {
        let mut attempts = Vec::new();
        for dc in order {
            match self.directory.connect(dc, credential).await {
                Ok(session) => {
                    if let Some(p) = progress {
                        p.emit(NewEvent {
                            step: step.into(),
                            kind: Some(EventKind::Progress),
                            message: format!("connected to {dc}"),
                            attributes: BTreeMap::from([("dc".into(), dc.clone())]),
                            ..NewEvent::default()
                        })
                        .await?;
                    }
                    return Ok(session);
                }
                Err(err) if err.is_failover() => {
                    tracing::warn!(dc = %dc, error = %err, "DC did not answer; trying the next");
                    if let Some(p) = progress {
                        p.emit(NewEvent {
                            step: step.into(),
                            kind: Some(EventKind::Warning),
                            message: format!("{err}; trying the next domain controller"),
                            attributes: BTreeMap::from([("dc".into(), dc.clone())]),
                            ..NewEvent::default()
                        })
                        .await?;
                        p.checkpoint()?;
                    }
                    attempts.push((dc.clone(), err.to_string()));
                }
                Err(err) => return Err(directory_error(err)),
            }
        }
        Err(directory_error(DirectoryError::AllFailed(attempts)))
    }

    pub async fn discover(
        &self,
        domain: &str,
        credential: Option<BindCredential>,
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
        if credential.is_some() {
            violations.extend(self::credential("credential", credential.as_ref()));
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
            Err(e) => Some(e.to_string()),
        };
        let directory_unavailable_reason = match &credential {
            None => {
                Some("no credential given: the directory's own list of DCs needs a bind".to_owned())
            }
            Some(cred) => match self.directory_dcs(&domain, cred).await {
                Ok(listed) => {
                    for (host, site) in listed {
                        let entry = found.entry(host.clone()).or_default();
                        entry.host = host;
                        entry.from_directory = true;
                        entry.site = site;
                    }
                    None
                }
                Err(Error::Unauthenticated(m)) => return Err(Error::Unauthenticated(m)),
                Err(e) => Some(e.to_string()),
            },
        };
        if found.is_empty() {
            return Err(match srv_error {
                Some(e) if directory_unavailable_reason.is_some() => {
                    Error::Unavailable(format!("cannot find the DCs of {domain}: {e}"))
                }
                _ => Error::NotFound(format!("domain controllers of {domain}")),
            });
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
                .map(|dc| self.directory.probe(&dc.host, credential.as_ref(), timeout));
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
        let order = self.order(domain).await?;
        let mut session = self
            .connect_in_order(&order, credential, None, "discover")
            .await?;
        let result = async {
            let root = session.root_dse().await.map_err(directory_error)?;
            let config = root
                .first("configurationNamingContext")
                .ok_or_else(|| Error::Internal("RootDSE has no configurationNamingContext".into()))?
                .to_owned();
            let sites = format!("CN=Sites,{config}");
            let dsas = session
                .search(
                    &sites,
                    Scope::Subtree,
                    "(objectClass=nTDSDSA)",
                    &["objectClass"],
                )
                .await
                .map_err(directory_error)?;
            let servers = session
                .search(
                    &sites,
                    Scope::Subtree,
                    "(objectClass=server)",
                    &["dNSHostName"],
                )
                .await
                .map_err(directory_error)?;
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
        .await;
        session.unbind().await;
        result
    }

    pub async fn set_priority(
        &self,
        caller: &Caller,
        request: SetPriorityRequest,
    ) -> Result<OperationRecord, Error> {
        let (spec, job) = self.prepare_set_priority(caller, request).await?;
        self.operations.start(spec, job).await
    }

    /// Validates and checks preconditions now; the job does the work, in
    /// its own operation or as a step of an apply.
    pub async fn prepare_set_priority(
        &self,
        caller: &Caller,
        request: SetPriorityRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let mut violations = Vec::new();
        let domain = dns_name("domain", &request.domain)
            .map_err(|v| violations.push(v))
            .ok();
        let dcs = dc_list("domain_controllers", &request.domain_controllers)
            .map_err(|v| violations.push(v))
            .ok();
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|v| violations.push(v))
            .ok()
            .flatten();
        let (Some(domain), Some(dcs)) = (domain, dcs) else {
            return Err(Error::InvalidArgument(violations));
        };
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let current = self.priority(&domain).await?;
        // A retry of an accepted request returns its operation even though
        // the etag has moved on since.
        let retried = self.operations.is_retry(request_id.as_deref()).await?;
        if !retried && !request.etag.is_empty() && request.etag != current.etag() {
            return Err(Error::Aborted(format!(
                "the DC priority of {domain} changed (etag {} is stale, current is {}); \
                 read it again with GetPriority",
                request.etag,
                current.etag()
            )));
        }
        let spec = OperationSpec {
            kind: OperationKind::SetDcPriority,
            request_id,
            description: format!("set the DC priority of {domain}"),
            initiator: caller.name.clone(),
        };
        let store = self.store.clone();
        let directory = self.directory.clone();
        let etag = request.etag.clone();
        let allow_unreachable = request.allow_unreachable;
        Ok((
            spec,
            job(move |progress| async move {
                progress
                    .step_started(
                        "check-members",
                        format!("checking {} domain controllers", dcs.len()),
                    )
                    .await?;
                check_members(&*directory, &domain, &dcs, allow_unreachable, &progress).await?;
                progress
                    .step_succeeded("check-members", "all members of the domain")
                    .await?;
                progress
                    .step_started("persist", "storing the priority")
                    .await?;
                let (record, changed) =
                    store_priority(&store, &domain, dcs, (!etag.is_empty()).then_some(etag))
                        .await?;
                if changed {
                    progress
                        .step_succeeded("persist", format!("stored; etag {}", record.etag()))
                        .await?;
                } else {
                    progress
                        .step_skipped("persist", "the same list is already stored")
                        .await?;
                }
                Ok(Outcome::from([
                    ("etag".into(), record.etag()),
                    ("changed".into(), changed.to_string()),
                ]))
            }),
        ))
    }
}

/// SetPriority as the transport hands it over.
#[derive(Debug, Clone, Default)]
pub struct SetPriorityRequest {
    pub domain: String,
    pub domain_controllers: Vec<String>,
    pub etag: String,
    pub allow_unreachable: bool,
    pub request_id: String,
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

pub async fn load_priority(store: &Arc<dyn Store>, domain: &str) -> Result<PriorityRecord, Error> {
    let key = domain.to_owned();
    let bytes = blocking(store, move |s| s.get_config(PRIORITY_NS, &key)).await?;
    match bytes {
        None => Ok(PriorityRecord::default()),
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Internal(format!("stored DC priority of {domain}: {e}"))),
    }
}

/// Stores `dcs` as `domain`'s priority, if `expected_etag` (when given)
/// still matches. Returns the record and whether it changed.
pub async fn store_priority(
    store: &Arc<dyn Store>,
    domain: &str,
    dcs: Vec<String>,
    expected_etag: Option<String>,
) -> Result<(PriorityRecord, bool), Error> {
    let current = load_priority(store, domain).await?;
    if let Some(etag) = expected_etag
        && etag != current.etag()
    {
        return Err(Error::Aborted(format!(
            "the DC priority of {domain} changed meanwhile (etag {etag} is stale, current is {})",
            current.etag()
        )));
    }
    if current.dcs == dcs {
        return Ok((current, false));
    }
    let record = PriorityRecord {
        dcs,
        generation: current.generation + 1,
        update_time_ms: Some(now_ms()),
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| Error::Internal(e.to_string()))?;
    let key = domain.to_owned();
    blocking(store, move |s| {
        s.put_config(PRIORITY_NS, &key, Some(&bytes))
    })
    .await?;
    Ok((record, true))
}

pub async fn clear_priority(store: &Arc<dyn Store>, domain: &str) -> Result<(), Error> {
    let key = domain.to_owned();
    blocking(store, move |s| s.put_config(PRIORITY_NS, &key, None)).await
}

/// Each DC must be a member of `domain`: listed in its SRV records or
/// serving it (RootDSE defaultNamingContext). A DC serving another domain
/// is always refused; one that cannot be confirmed is refused unless
/// `allow_unreachable`, then kept with a warning.
pub async fn check_members(
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
        let report = directory.probe(dc, None, DEFAULT_PROBE_TIMEOUT).await;
        let serves = report
            .default_naming_context
            .as_ref()
            .map(|nc| nc.to_ascii_lowercase());
        let field = format!("domain_controllers[{i}]");
        match serves {
            Some(nc) if nc != domain_dn => {
                return Err(Error::invalid(
                    field,
                    format!("{dc} serves {nc}, not {domain}"),
                ));
            }
            Some(_) => {}
            None if srv.contains(dc) && report.reachable => {}
            None => {
                let why = report
                    .error
                    .clone()
                    .unwrap_or_else(|| "it is not in the domain's SRV records".into());
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
    fn dns_names() {
        assert_eq!(
            dns_name("d", "Lab.Example.TEST.").unwrap(),
            "lab.example.test"
        );
        for bad in [
            "",
            "*)(uid=*",
            ",DC=evil",
            "a..b",
            "-a.b",
            "a\0b",
            &"a".repeat(254),
        ] {
            assert!(dns_name("d", bad).is_err(), "{bad:?} accepted");
        }
        assert!(dns_name("d", &format!("{}.test", "a".repeat(64))).is_err());
    }

    #[test]
    fn dc_lists() {
        let list = dc_list("dcs", &["DC1.lab.test".into(), "dc2.lab.test".into()]).unwrap();
        assert_eq!(list, ["dc1.lab.test", "dc2.lab.test"]);
        let dup = dc_list("dcs", &["dc1.lab.test".into(), "DC1.lab.test".into()]).unwrap_err();
        assert_eq!(dup.field, "dcs[1]");
        assert!(dc_list("dcs", &vec!["a.b".to_owned(); 17]).is_err());
    }

    #[test]
    fn sites() {
        assert_eq!(
            site_of("CN=DC1,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,DC=x"),
            "Default-First-Site-Name"
        );
        assert_eq!(site_of("CN=x"), "");
    }
}
