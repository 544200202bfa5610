//! DirectoryService: add (bind, read the domain's facts, check the
//! prerequisites, persist without the password), list, remove.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::agent_module::{AgentSide, add_to_agent, same_order};
use super::domain_controllers::{self, Connect, DcSession, DomainControllerWorkflows};
use super::operations::{
    Job, NewEvent, OperationSpec, Outcome, Progress, RequestFingerprint, blocking, job, now_ms,
    read,
};
use super::validate::{self, dc_list, dns_name};
use super::{Caller, Error};
use crate::backends::agent_config::RunContext;
use crate::backends::directory::{BindCredential, DirectorySession, Entry, Scope, escape};
use crate::backends::store::{EventKind, OperationKind, OperationRecord, Store};
use tokio_util::sync::CancellationToken;

const DIRECTORY_NS: &str = "directories";
/// msDS-Behavior-Version of Windows Server 2012.
pub const LEVEL_2012: i32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prerequisite {
    pub name: String,
    pub ok: bool,
    pub message: String,
    pub blocking: bool,
}

/// A domain as stored: facts read by AddDirectory, never a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRecord {
    pub domain: String,
    pub netbios_name: String,
    pub domain_dn: String,
    pub domain_sid: String,
    pub forest: String,
    pub configuration_dn: String,
    pub schema_dn: String,
    pub domain_behavior_version: i32,
    pub forest_behavior_version: i32,
    pub prerequisites: Vec<Prerequisite>,
    pub last_domain_controller: String,
    pub add_time_ms: i64,
    pub update_time_ms: i64,
}

impl DirectoryRecord {
    /// Facts that differ from `older`, as (name, old, new).
    fn changes(&self, older: &DirectoryRecord) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        let mut cmp = |name, a: String, b: String| {
            if a != b {
                out.push((name, a, b));
            }
        };
        cmp(
            "netbios_name",
            older.netbios_name.clone(),
            self.netbios_name.clone(),
        );
        cmp("domain_dn", older.domain_dn.clone(), self.domain_dn.clone());
        cmp(
            "domain_sid",
            older.domain_sid.clone(),
            self.domain_sid.clone(),
        );
        cmp("forest", older.forest.clone(), self.forest.clone());
        cmp(
            "domain_behavior_version",
            older.domain_behavior_version.to_string(),
            self.domain_behavior_version.to_string(),
        );
        cmp(
            "forest_behavior_version",
            older.forest_behavior_version.to_string(),
            self.forest_behavior_version.to_string(),
        );
        let summary = |p: &[Prerequisite]| {
            p.iter()
                .map(|p| format!("{}={}", p.name, if p.ok { "ok" } else { "missing" }))
                .collect::<Vec<_>>()
                .join(",")
        };
        cmp(
            "prerequisites",
            summary(&older.prerequisites),
            summary(&self.prerequisites),
        );
        out
    }
}

/// AddDirectory as the transport hands it over.
#[derive(Debug, Default)]
pub struct AddDirectoryRequest {
    pub domain: String,
    pub credential: Option<BindCredential>,
    pub preferred_domain_controllers: Vec<String>,
    pub request_id: String,
}

pub struct DirectoryWorkflows {
    operations: Arc<Operations>,
    store: Arc<dyn Store>,
    dcs: Arc<DomainControllerWorkflows>,
    /// Tells the agent which domains it serves (`Add-AADCloudSyncADDomain`).
    agent: AgentSide,
}

use super::Operations;
use crate::workflows::PreconditionReason;

pub fn level_name(version: i32) -> &'static str {
    match version {
        0 => "Windows 2000",
        1 => "Windows Server 2003 interim",
        2 => "Windows Server 2003",
        3 => "Windows Server 2008",
        4 => "Windows Server 2008 R2",
        5 => "Windows Server 2012",
        6 => "Windows Server 2012 R2",
        7 => "Windows Server 2016",
        10 => "Windows Server 2025",
        _ => "unknown",
    }
}

impl DirectoryWorkflows {
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        dcs: Arc<DomainControllerWorkflows>,
        agent: AgentSide,
    ) -> Self {
        Self {
            operations,
            store,
            dcs,
            agent,
        }
    }

    /// Of `domains` (each with the DCs it should prefer; none: provd's
    /// stored priority), those the agent does not serve that way, with the
    /// DCs wanted. Empty where the agent's module cannot run here; every
    /// domain where its list cannot be read (e.g. not installed yet).
    pub(crate) async fn agent_lacks(
        &self,
        domains: &[(String, Vec<String>)],
    ) -> Result<Vec<(String, Vec<String>)>, Error> {
        if self.agent.unavailable().is_some() {
            return Ok(Vec::new());
        }
        let cancel = CancellationToken::new();
        let ignore = |_line: String| {};
        let cx = RunContext {
            cancel: &cancel,
            transcript: &ignore,
        };
        let listed = self
            .agent
            .agent_config
            .list_domains(&cx)
            .await
            .unwrap_or_default();
        let mut lacking = Vec::new();
        for (domain, preferred) in domains {
            let wanted = if preferred.is_empty() {
                self.dcs.priority(domain).await?.dcs
            } else {
                preferred.clone()
            };
            let served = listed.iter().any(|d| {
                d.domain.eq_ignore_ascii_case(domain) && same_order(&d.preferred_dcs, &wanted)
            });
            if !served {
                lacking.push((domain.clone(), wanted));
            }
        }
        Ok(lacking)
    }

    /// Step `add-domain` for each of `domains`, in order.
    pub(crate) fn add_to_agent_job(&self, domains: Vec<String>, credential: BindCredential) -> Job {
        let (agent, store, dcs) = (self.agent.clone(), self.store.clone(), self.dcs.clone());
        job(move |progress| async move {
            let mut changed = false;
            for domain in &domains {
                let wanted = dcs.priority(domain).await?.dcs;
                changed |=
                    add_to_agent(&progress, &agent, &store, domain, &wanted, &credential).await?;
            }
            Ok(Outcome::from([("changed".into(), changed.to_string())]))
        })
    }

    pub async fn list(&self) -> Result<Vec<(DirectoryRecord, Vec<String>)>, Error> {
        let rows = read(&self.store, |s| s.list_config(DIRECTORY_NS))?;
        let mut out = Vec::new();
        for (domain, bytes) in rows {
            let record: DirectoryRecord = serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("stored directory {domain}"), e))?;
            let priority = self.dcs.priority(&domain).await?;
            out.push((record, priority.dcs));
        }
        Ok(out)
    }

    /// The added domains' names, sorted.
    pub async fn list_domains(store: &Arc<dyn Store>) -> Result<Vec<String>, Error> {
        Ok(read(store, |s| s.list_config(DIRECTORY_NS))?
            .into_iter()
            .map(|(domain, _)| domain)
            .collect())
    }

    pub async fn add(
        &self,
        caller: &Caller,
        request: AddDirectoryRequest,
    ) -> Result<OperationRecord, Error> {
        let (spec, job) = self.prepare_add(caller, request).await?;
        self.operations.start(spec, job).await
    }

    /// Validates and checks preconditions now; the job does the work, in
    /// its own operation or as a step of an apply.
    pub async fn prepare_add(
        &self,
        caller: &Caller,
        mut request: AddDirectoryRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let mut violations = Vec::new();
        let domain = dns_name("domain", &request.domain)
            .map_err(|v| violations.push(v))
            .ok();
        // The add-domain step hands it to the agent's module.
        violations.extend(validate::password_credential(
            "credential",
            request.credential.as_ref(),
        ));
        let preferred = dc_list(
            "preferred_domain_controllers",
            &request.preferred_domain_controllers,
        )
        .map_err(|v| violations.push(v))
        .ok();
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|v| violations.push(v))
            .ok()
            .flatten();
        let (Some(domain), Some(preferred), Some(credential)) =
            (domain, preferred, request.credential.take())
        else {
            return Err(Error::InvalidArgument(violations));
        };
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let spec = OperationSpec {
            kind: OperationKind::AddDirectory,
            request_id,
            fingerprint: RequestFingerprint::new()
                .text("domain", &domain)
                .list("preferred_domain_controllers", &preferred),
            description: format!("add the directory {domain}"),
            initiator: caller.name.clone(),
        };
        let store = self.store.clone();
        let dcs = self.dcs.clone();
        let agent = self.agent.clone();
        Ok((
            spec,
            job(move |progress| async move {
                // The credential lives only inside this task and drops (and
                // zeroizes) when it ends.
                let mut outcome =
                    run_add(&progress, &store, &dcs, &domain, &credential, preferred).await?;
                let wanted = dcs.priority(&domain).await?.dcs;
                if add_to_agent(&progress, &agent, &store, &domain, &wanted, &credential).await? {
                    outcome.insert("changed".into(), "true".into());
                }
                Ok(outcome)
            }),
        ))
    }

    pub async fn remove(
        &self,
        caller: &Caller,
        domain: &str,
        request_id: &str,
    ) -> Result<OperationRecord, Error> {
        let mut violations = Vec::new();
        let domain = dns_name("domain", domain)
            .map_err(|v| violations.push(v))
            .ok();
        let request_id = validate::request_id("request_id", request_id)
            .map_err(|v| violations.push(v))
            .ok()
            .flatten();
        let Some(domain) = domain.filter(|_| violations.is_empty()) else {
            return Err(Error::InvalidArgument(violations));
        };
        let retried = self.operations.is_retry(request_id.as_deref()).await?;
        if !retried && load(&self.store, &domain).await?.is_none() {
            return Err(Error::NotFound(format!("directory {domain}")));
        }
        let spec = OperationSpec {
            kind: OperationKind::RemoveDirectory,
            request_id,
            fingerprint: RequestFingerprint::new().text("domain", &domain),
            description: format!("remove the directory {domain}"),
            initiator: caller.name.clone(),
        };
        let store = self.store.clone();
        self.operations
            .start(spec, move |progress| async move {
                progress
                    .step_started(
                        "remove",
                        format!("removing {domain} from provd's configuration"),
                    )
                    .await?;
                let key = domain.clone();
                blocking(&store, move |s| s.put_config(DIRECTORY_NS, &key, None)).await?;
                domain_controllers::clear_priority(&store, &domain).await?;
                let account = super::service_account::load_account(&store).await?;
                if let Some(account) = account.filter(|a| a.domain.eq_ignore_ascii_case(&domain)) {
                    progress
                        .warning(
                            "remove",
                            format!(
                                "the agent's service account {} lives in {domain}; it stays \
                                 in the directory, but provd no longer manages this domain",
                                account.sam_account_name
                            ),
                        )
                        .await?;
                }
                progress
                    .step_succeeded(
                        "remove",
                        "removed; nothing in the directory itself was changed",
                    )
                    .await?;
                Ok(Outcome::from([("domain".into(), domain)]))
            })
            .await
    }
}

async fn load(store: &Arc<dyn Store>, domain: &str) -> Result<Option<DirectoryRecord>, Error> {
    let key = domain.to_owned();
    match read(store, |s| s.get_config(DIRECTORY_NS, &key))? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::internal(format!("stored directory {domain}"), e)),
    }
}

async fn run_add(
    progress: &Progress,
    store: &Arc<dyn Store>,
    dcs: &Arc<DomainControllerWorkflows>,
    domain: &str,
    credential: &BindCredential,
    preferred: Vec<String>,
) -> Result<Outcome, Error> {
    let domain = domain.to_owned();
    let mut session = DcSession::open_preferring(
        dcs,
        &domain,
        &preferred,
        credential,
        Connect::Step(progress),
    )
    .await?;
    let served_by = session.server().to_owned();
    let from_preferred = preferred
        .iter()
        .any(|dc| dc.eq_ignore_ascii_case(&served_by));
    let read = read_facts(progress, session.as_mut(), &domain, from_preferred).await;
    drop(session);
    let mut record = read?;
    record.last_domain_controller = served_by;

    progress
        .step_started("check-prerequisites", "checking what the agent needs")
        .await?;
    for p in &record.prerequisites {
        progress
            .emit(NewEvent {
                step: "check-prerequisites".into(),
                kind: Some(if p.ok {
                    EventKind::Progress
                } else {
                    EventKind::Warning
                }),
                message: format!("{}: {}", p.name, p.message),
                attributes: BTreeMap::from([
                    ("prerequisite".into(), p.name.clone()),
                    ("ok".into(), p.ok.to_string()),
                ]),
                ..NewEvent::default()
            })
            .await?;
    }
    if let Some(p) = record.prerequisites.iter().find(|p| p.blocking && !p.ok) {
        return Err(Error::FailedPrecondition {
            reason: PreconditionReason::DirectoryPrerequisite,
            subject: p.name.clone(),
            message: format!("{domain}: {}", p.message),
        });
    }
    progress
        .step_succeeded("check-prerequisites", "no blocking prerequisite is missing")
        .await?;

    progress.checkpoint()?;
    if !preferred.is_empty() {
        progress
            .step_started("set-priority", "storing the preferred domain controllers")
            .await?;
        domain_controllers::check_members(&**dcs.directory(), &domain, &preferred, false, progress)
            .await?;
        let (_, changed) =
            domain_controllers::store_priority(store, &domain, preferred, None).await?;
        if changed {
            progress.step_succeeded("set-priority", "stored").await?;
        } else {
            progress.step_skipped("set-priority", "unchanged").await?;
        }
    }

    progress
        .step_started("persist", "storing the directory (without any password)")
        .await?;
    let existing = load(store, &domain).await?;
    let now = now_ms();
    let changed = match &existing {
        Some(old) => {
            record.add_time_ms = old.add_time_ms;
            let changes = record.changes(old);
            for (name, before, after) in &changes {
                progress
                    .emit(NewEvent {
                        step: "persist".into(),
                        kind: Some(EventKind::Progress),
                        message: format!("{name} changed from {before:?} to {after:?}"),
                        attributes: BTreeMap::from([("changed".into(), (*name).to_owned())]),
                        ..NewEvent::default()
                    })
                    .await?;
            }
            !changes.is_empty() || old.last_domain_controller != record.last_domain_controller
        }
        None => {
            record.add_time_ms = now;
            true
        }
    };
    if changed {
        record.update_time_ms = now;
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| Error::internal("encoding a record for the store", e))?;
        let key = domain.clone();
        blocking(store, move |s| {
            s.put_config(DIRECTORY_NS, &key, Some(&bytes))
        })
        .await?;
        progress.step_succeeded("persist", "stored").await?;
    } else {
        progress
            .step_skipped("persist", "nothing changed since the last AddDirectory")
            .await?;
    }
    let facts_changed = existing
        .as_ref()
        .is_none_or(|old| !record.changes(old).is_empty());
    Ok(Outcome::from([
        ("domain".into(), domain),
        ("domain_sid".into(), record.domain_sid.clone()),
        ("netbios_name".into(), record.netbios_name.clone()),
        ("changed".into(), facts_changed.to_string()),
    ]))
}

/// `from_preferred`: the serving DC was named by the request, so a DC of
/// another domain is the request's mistake, not the environment's.
async fn read_facts(
    progress: &Progress,
    session: &mut dyn DirectorySession,
    domain: &str,
    from_preferred: bool,
) -> Result<DirectoryRecord, Error> {
    progress
        .step_started("read-rootdse", "reading the RootDSE")
        .await?;
    let root = session.root_dse().await?;
    let need = |name: &str| -> Result<String, Error> {
        root.first(name).map(str::to_owned).ok_or_else(|| {
            Error::internal_msg(format!("RootDSE of {} has no {name}", session_name(&root)))
        })
    };
    let domain_dn = need("defaultNamingContext")?;
    let expected = escape::domain_dn(domain);
    if !domain_dn.eq_ignore_ascii_case(&expected) {
        let message = format!(
            "{} serves {domain_dn}, not {domain} ({expected})",
            session.server()
        );
        return Err(if from_preferred {
            Error::invalid("preferred_domain_controllers", message)
        } else {
            Error::FailedPrecondition {
                reason: PreconditionReason::WrongDomain,
                subject: domain.to_owned(),
                message,
            }
        });
    }
    let configuration_dn = need("configurationNamingContext")?;
    let schema_dn = need("schemaNamingContext")?;
    let root_domain = need("rootDomainNamingContext")?;
    let level = |name: &str| {
        root.first(name)
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(-1)
    };
    let domain_level = level("domainFunctionality");
    let forest_level = level("forestFunctionality");
    progress
        .step_succeeded(
            "read-rootdse",
            format!(
                "domain functional level {} ({domain_level}), forest {} ({forest_level})",
                level_name(domain_level),
                level_name(forest_level)
            ),
        )
        .await?;

    progress
        .step_started("read-domain", "reading the domain SID and NetBIOS name")
        .await?;
    let domain_entry = one(
        session,
        &domain_dn,
        Scope::Base,
        "(objectClass=*)",
        &["objectSid"],
    )
    .await?
    .ok_or_else(|| Error::internal_msg(format!("{domain_dn} cannot be read")))?;
    let domain_sid = domain_entry
        .first_bin("objectSid")
        .ok_or_else(|| Error::internal_msg(format!("{domain_dn} has no objectSid")))
        .and_then(|b| {
            provd_sd::Sid::from_bytes(b)
                .map(|s| s.to_string())
                .map_err(|e| Error::internal(format!("objectSid of {domain_dn}"), e))
        })?;
    let partitions = format!("CN=Partitions,{configuration_dn}");
    let filter = format!(
        "(&(objectClass=crossRef){})",
        escape::eq("nCName", &domain_dn)
    );
    let netbios_name = one(
        session,
        &partitions,
        Scope::OneLevel,
        &filter,
        &["nETBIOSName"],
    )
    .await?
    .and_then(|e| e.first("nETBIOSName").map(str::to_owned))
    .unwrap_or_default();
    progress
        .step_succeeded(
            "read-domain",
            format!("domain SID {domain_sid}, NetBIOS name {netbios_name}"),
        )
        .await?;

    let gmsa_class = one(
        session,
        &schema_dn,
        Scope::OneLevel,
        crate::workflows::service_account::GMSA_CLASS_FILTER,
        &["cn"],
    )
    .await?
    .is_some();
    let kds_key = !crate::workflows::service_account::read_kds_keys(session, &configuration_dn)
        .await?
        .is_empty();
    let level_check = |what: &str, version: i32| Prerequisite {
        name: format!("{what}.functional_level"),
        ok: version >= LEVEL_2012,
        message: if version >= LEVEL_2012 {
            format!(
                "{what} functional level is {} ({version})",
                level_name(version)
            )
        } else {
            format!(
                "{what} functional level is {} ({version}); Windows Server 2012 or later is \
                 recommended for gMSAs: raise it with Set-AD{}Mode",
                level_name(version),
                if what == "domain" { "Domain" } else { "Forest" }
            )
        },
        blocking: false,
    };
    let prerequisites = vec![
        Prerequisite {
            name: "schema.gmsa_class".into(),
            ok: gmsa_class,
            message: if gmsa_class {
                "the schema defines msDS-GroupManagedServiceAccount".into()
            } else {
                "the schema lacks msDS-GroupManagedServiceAccount: extend it to the Windows \
                 Server 2012 schema (adprep /forestprep)"
                    .into()
            },
            blocking: true,
        },
        level_check("domain", domain_level),
        level_check("forest", forest_level),
        Prerequisite {
            name: "kds.root_key".into(),
            ok: kds_key,
            message: if kds_key {
                "a KDS root key exists".into()
            } else {
                "no KDS root key: CreateGmsa needs one (Add-KdsRootKey -EffectiveImmediately)"
                    .into()
            },
            blocking: false,
        },
    ];
    Ok(DirectoryRecord {
        domain: domain.to_owned(),
        netbios_name,
        domain_dn,
        domain_sid,
        forest: dn_to_dns(&root_domain),
        configuration_dn,
        schema_dn,
        domain_behavior_version: domain_level,
        forest_behavior_version: forest_level,
        prerequisites,
        last_domain_controller: String::new(),
        add_time_ms: 0,
        update_time_ms: 0,
    })
}

fn session_name(root: &Entry) -> String {
    root.first("dnsHostName").unwrap_or("the DC").to_owned()
}

async fn one(
    session: &mut dyn DirectorySession,
    base: &str,
    scope: Scope,
    filter: &str,
    attrs: &[&str],
) -> Result<Option<Entry>, Error> {
    Ok(session
        .search(base, scope, filter, attrs)
        .await?
        .into_iter()
        .next())
}

/// `DC=lab,DC=example,DC=test` → `lab.example.test`.
fn dn_to_dns(dn: &str) -> String {
    dn.split(',')
        .filter_map(|rdn| rdn.trim().split_once('='))
        .filter(|(k, _)| k.eq_ignore_ascii_case("DC"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forest_names() {
        assert_eq!(dn_to_dns("DC=Lab,DC=example,DC=test"), "lab.example.test");
    }
}
