//! Domain controllers: the per-domain priority (with an etag), the order
//! every directory operation tries DCs in ([`DcSession`]), and discovery
//! (DNS SRV merged with the directory's own list) with probes.

mod discovery;
mod memo;
mod pool;
mod reader;
mod session;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::agent_module::{AgentSide, add_to_agent};
use super::operations::{
    Job, OperationSpec, Outcome, Progress, RequestFingerprint, blocking, job, now_ms, read,
};
use super::validate::{self, dc_list, dns_name};
use super::{Caller, Error, Operations};
use crate::backends::directory::{BindCredential, Directory, DirectoryError};
use crate::backends::store::{OperationKind, OperationRecord, Store};

pub use discovery::DiscoveredDc;
pub(crate) use discovery::check_members;
pub(crate) use pool::{known_root_dse, shared_sessions};
pub(crate) use reader::{NO_READER, Reader};
pub(crate) use session::{Connect, DcSession, entry_sid, find_account, naming_contexts};

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

/// The DC workflows: priority, discovery, and the order every directory
/// operation connects in (see [`DcSession`]).
pub struct DomainControllerWorkflows {
    operations: Arc<Operations>,
    store: Arc<dyn Store>,
    directory: Arc<dyn Directory>,
    /// Gives the agent a new DC order (`Add-AADCloudSyncADDomain`).
    agent: AgentSide,
    /// This host's computer account, for read-only RPCs given no
    /// credential (see `reader`).
    host_identity: Option<BindCredential>,
}

impl DomainControllerWorkflows {
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        directory: Arc<dyn Directory>,
        agent: AgentSide,
        host_identity: Option<BindCredential>,
    ) -> Self {
        Self {
            operations,
            store,
            directory,
            agent,
            host_identity,
        }
    }

    pub(crate) fn directory(&self) -> &Arc<dyn Directory> {
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
    pub(crate) async fn order(&self, domain: &str) -> Result<Vec<String>, Error> {
        let priority = self.priority(domain).await?;
        if !priority.dcs.is_empty() {
            return Ok(priority.dcs);
        }
        let srv = match self.directory.srv_lookup(domain).await {
            Ok(srv) => srv,
            Err(DirectoryError::NoDnsRecords { .. }) => Vec::new(),
            Err(e) => {
                return Err(Error::Unavailable(format!(
                    "cannot find the DCs of {domain}: {e}"
                )));
            }
        };
        if srv.is_empty() {
            return Err(Error::Unavailable(format!(
                "DNS lists no domain controller for {domain} (no SRV record {})",
                srv_name(domain)
            )));
        }
        Ok(srv.into_iter().map(|t| t.host).collect())
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
        if let Err(v) = validate::etag("etag", &request.etag) {
            violations.push(v);
        }
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|v| violations.push(v))
            .ok()
            .flatten();
        if request.credential.is_some() {
            // The agent gets the domain again with the new order.
            violations.extend(validate::password_credential(
                "credential",
                request.credential.as_ref(),
            ));
        }
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
            fingerprint: RequestFingerprint::new()
                .text("domain", &domain)
                .list("domain_controllers", &dcs)
                .text("etag", &request.etag),
            description: format!("set the DC priority of {domain}"),
            initiator: caller.name.clone(),
        };
        let store = self.store.clone();
        let directory = self.directory.clone();
        let agent = self.agent.clone();
        let etag = request.etag.clone();
        let allow_unreachable = request.allow_unreachable;
        let credential = request.credential;
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
                let agent_changed = match &credential {
                    Some(c) => {
                        add_to_agent(&progress, &agent, &store, &domain, &record.dcs, c).await?
                    }
                    None => {
                        agent_keeps_its_order(&progress, &agent, &domain).await?;
                        false
                    }
                };
                Ok(Outcome::from([
                    ("etag".into(), record.etag()),
                    ("changed".into(), (changed || agent_changed).to_string()),
                ]))
            }),
        ))
    }
}

/// The SRV record that lists `domain`'s DCs.
pub(crate) fn srv_name(domain: &str) -> String {
    format!("_ldap._tcp.dc._msdcs.{domain}")
}

/// SetPriority as the transport hands it over.
#[derive(Debug, Clone, Default)]
pub struct SetPriorityRequest {
    pub domain: String,
    pub domain_controllers: Vec<String>,
    pub etag: String,
    pub allow_unreachable: bool,
    pub request_id: String,
    /// For re-applying the order to the agent (its module wants it).
    pub credential: Option<BindCredential>,
}

/// Without a credential the agent cannot be given the new order (its
/// module wants one): a WARNING says so where there is an agent to tell.
async fn agent_keeps_its_order(
    progress: &Progress,
    agent: &AgentSide,
    domain: &str,
) -> Result<(), Error> {
    if agent.unavailable().is_none() {
        progress
            .warning(
                "persist",
                format!(
                    "the agent keeps its preferred DCs for {domain}: SetPriority with a \
                     credential (or AddDirectory) gives it this order"
                ),
            )
            .await?;
    }
    Ok(())
}

pub(crate) async fn load_priority(
    store: &Arc<dyn Store>,
    domain: &str,
) -> Result<PriorityRecord, Error> {
    let key = domain.to_owned();
    let bytes = read(store, |s| s.get_config(PRIORITY_NS, &key))?;
    match bytes {
        None => Ok(PriorityRecord::default()),
        Some(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::internal(format!("stored DC priority of {domain}"), e)),
    }
}

/// Stores `dcs` as `domain`'s priority, if `expected_etag` (when given)
/// still matches. Returns the record and whether it changed.
pub(crate) async fn store_priority(
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
    let bytes = serde_json::to_vec(&record)
        .map_err(|e| Error::internal("encoding a record for the store", e))?;
    let key = domain.to_owned();
    blocking(store, move |s| {
        s.put_config(PRIORITY_NS, &key, Some(&bytes))
    })
    .await?;
    Ok((record, true))
}

pub(crate) async fn clear_priority(store: &Arc<dyn Store>, domain: &str) -> Result<(), Error> {
    let key = domain.to_owned();
    blocking(store, move |s| s.put_config(PRIORITY_NS, &key, None)).await
}
