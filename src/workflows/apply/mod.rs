//! ConfigurationService: one desired-state document reconciled section by
//! section (agent → domains → service account → permissions → the agent's
//! domains (`Add-AADCloudSyncADDomain`, after the gMSA as Microsoft orders
//! it) → writeback),
//! the same order the wizard walks. Each section first works out what
//! differs (the same code PlanConfiguration runs); nothing differing is a
//! skip, anything else runs the single-RPC workflow's job under this
//! operation's progress, so apply does exactly what the plan listed.
//!
//! `document` holds the desired-state types and their validation (field
//! paths under `desired.`); `sections` works out what differs per section.

mod document;
mod host;
mod sections;
mod settings;
mod stored;

use std::sync::Arc;

use super::agent::{AgentWorkflows, InstallRequest};
use super::cloud_sync::CloudSyncWorkflows;
use super::decommission::{DecommissionRequest, DecommissionWorkflows};
use super::directory::{AddDirectoryRequest, DirectoryWorkflows};
use super::domain_controllers::{DomainControllerWorkflows, SetPriorityRequest, shared_sessions};
use super::drift::AgentChanges;
use super::operations::{Job, OperationSpec, Outcome, Progress};
use super::permissions::Profile;
use super::permissions::{GrantMode, GrantPermissionsRequest, ProfileChoice};
use super::service_account::{CreateGmsaRequest, ServiceAccountWorkflows, UseCustomGmsaRequest};
use super::tenant::TenantWorkflows;
use super::writeback::{SetWritebackRequest, WritebackWorkflows};
use super::{Caller, Error, Operations, validate};
use crate::backends::directory::BindCredential;
use crate::backends::host::{AgentSettings, Host, HostFix};
use crate::backends::store::{OperationKind, OperationRecord, Store};

pub use document::{AccountChoice, AccountSpec, AgentSpec, DesiredState, DomainSpec, HostSpec};
pub use sections::Change;
pub use settings::{AgentSettingsInput, ProxyInput};

/// The host fixes and agent settings apply keeps for drift's re-apply,
/// cleared unless `dry` (DecommissionAgent's `forget`): the names of those
/// there were.
pub(crate) async fn forget_kept(
    store: &Arc<dyn Store>,
    dry: bool,
) -> Result<Vec<&'static str>, Error> {
    let mut forgotten = Vec::new();
    if host::forget(store, dry).await? {
        forgotten.push("the host fixes apply keeps");
    }
    if settings::forget(store, dry).await? {
        forgotten.push("the agent settings apply keeps");
    }
    Ok(forgotten)
}

use document::Plan;

pub struct ApplyWorkflows {
    operations: Arc<Operations>,
    store: Arc<dyn Store>,
    host: Arc<dyn Host>,
    tenant: Arc<TenantWorkflows>,
    agent: Arc<AgentWorkflows>,
    directories: Arc<DirectoryWorkflows>,
    dcs: Arc<DomainControllerWorkflows>,
    gmsa: Arc<ServiceAccountWorkflows>,
    writeback: Arc<WritebackWorkflows>,
    cloud_sync: Arc<CloudSyncWorkflows>,
    /// The step `agent` of a document whose agent is absent.
    decommission: Arc<DecommissionWorkflows>,
    /// Held while the `agent-settings` section writes, so the drift watch
    /// tells provd's own changes from others.
    changes: Arc<AgentChanges>,
}

impl ApplyWorkflows {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        host: Arc<dyn Host>,
        tenant: Arc<TenantWorkflows>,
        agent: Arc<AgentWorkflows>,
        directories: Arc<DirectoryWorkflows>,
        dcs: Arc<DomainControllerWorkflows>,
        gmsa: Arc<ServiceAccountWorkflows>,
        writeback: Arc<WritebackWorkflows>,
        cloud_sync: Arc<CloudSyncWorkflows>,
        decommission: Arc<DecommissionWorkflows>,
        changes: Arc<AgentChanges>,
    ) -> Self {
        Self {
            operations,
            store,
            host,
            tenant,
            agent,
            directories,
            dcs,
            gmsa,
            writeback,
            cloud_sync,
            decommission,
            changes,
        }
    }

    /// PlanConfiguration.
    pub async fn plan(
        &self,
        desired: Option<DesiredState>,
        credential: Option<BindCredential>,
    ) -> Result<Vec<Change>, Error> {
        // Every section's reads over one session per domain, as apply does.
        shared_sessions(self.plan_changes(desired, credential)).await
    }

    async fn plan_changes(
        &self,
        desired: Option<DesiredState>,
        credential: Option<BindCredential>,
    ) -> Result<Vec<Change>, Error> {
        let plan = self.validate(desired, credential.as_ref()).await?;
        let mut changes = Vec::new();
        if let Some(fixes) = &plan.host {
            changes.extend(
                host::changes(self.host.as_ref(), fixes, host::STEP)
                    .await?
                    .1,
            );
        }
        match &plan.agent {
            Some(spec) if spec.absent => {
                changes.extend(self.absent_changes(spec, credential.clone()).await?);
            }
            Some(spec) => changes.extend(self.agent_changes(spec, None).await?),
            None => {}
        }
        if let Some(wanted) = &plan.agent_settings {
            changes.extend(self.agent_settings_changes(wanted).await?.1);
        }
        if let Some(fixes) = &plan.host {
            let step = host::AGENT_SERVICE_STEP;
            changes.extend(host::changes(self.host.as_ref(), fixes, step).await?.1);
        }
        for d in &plan.domains {
            changes.extend(self.domain_changes(d).await?);
        }
        if let Some((domain, choice, profiles)) = &plan.account {
            let credential = credential.clone().ok_or_else(missing_credential)?;
            changes.extend(self.account_changes(domain, choice).await?);
            changes.extend(
                self.permission_changes(domain, profiles, &credential)
                    .await?,
            );
        }
        if self.agent_gets_domains(&plan).await? {
            let lacking = self
                .directories
                .agent_lacks(&wanted_dcs(&plan.domains))
                .await?;
            changes.extend(agent_domain_changes(&lacking));
        }
        if let Some(enabled) = plan.writeback {
            let credential = credential.clone().ok_or_else(missing_credential)?;
            changes.extend(
                self.writeback_changes(enabled, &plan.domains, &credential)
                    .await?,
            );
        }
        for (domain, spec) in &plan.cloud_sync {
            changes.extend(self.cloud_sync.changes(domain, spec.as_ref()).await?);
        }
        Ok(changes)
    }

    /// ApplyConfiguration: one operation, one step per section.
    pub async fn apply(
        self: &Arc<Self>,
        caller: &Caller,
        desired: Option<DesiredState>,
        credential: Option<BindCredential>,
        request_id: &str,
    ) -> Result<OperationRecord, Error> {
        let request_id = validate::request_id("request_id", request_id);
        let (plan, request_id) = match (
            self.validate(desired, credential.as_ref()).await,
            request_id,
        ) {
            (Ok(plan), Ok(request_id)) => (plan, request_id),
            (Err(Error::InvalidArgument(mut v)), Err(bad_id)) => {
                v.push(bad_id);
                return Err(Error::InvalidArgument(v));
            }
            (Ok(_), Err(bad_id)) => return Err(Error::InvalidArgument(vec![bad_id])),
            (Err(err), _) => return Err(err),
        };
        let mut sections = Vec::new();
        if plan.host.is_some() {
            sections.push(host::STEP.to_owned());
        }
        if plan.agent.is_some() {
            sections.push("agent".to_owned());
        }
        if plan.agent_settings.is_some() {
            sections.push(settings::STEP.to_owned());
        }
        if plan.host.is_some() {
            sections.push(host::AGENT_SERVICE_STEP.to_owned());
        }
        sections.extend(plan.domains.iter().map(|d| format!("domain {}", d.domain)));
        if plan.account.is_some() {
            sections.push("service-account".into());
            sections.push("permissions".into());
        }
        if plan.writeback.is_some() {
            sections.push("writeback".into());
        }
        for (domain, spec) in &plan.cloud_sync {
            if self.cloud_sync.has_section(domain, spec.as_ref()).await? {
                sections.push(super::cloud_sync::step_of(domain));
            }
        }
        let spec = OperationSpec {
            kind: OperationKind::ApplyConfiguration,
            request_id,
            fingerprint: plan.fingerprint(),
            description: format!("apply a configuration ({})", sections.join(", ")),
            initiator: caller.name.clone(),
        };
        let this = self.clone();
        let caller = caller.clone();
        self.operations
            .start(spec, move |progress| async move {
                this.run(&progress, &caller, plan, credential).await
            })
            .await
    }

    async fn run(
        &self,
        progress: &Progress,
        caller: &Caller,
        plan: Plan,
        credential: Option<BindCredential>,
    ) -> Result<Outcome, Error> {
        let mut total = 0usize;
        let mut changed_steps = Vec::new();
        let cred = || credential.clone().ok_or_else(missing_credential);
        if let Some(fixes) = &plan.host {
            total += self
                .host_section(progress, fixes, host::STEP, &mut changed_steps)
                .await?;
        }
        if let Some(spec) = &plan.agent {
            begin(progress, "agent").await?;
            let (changes, work) = if spec.absent {
                let changes = self.absent_changes(spec, credential.clone()).await?;
                let request = decommission_request(spec, credential.clone());
                let work = match changes.is_empty() {
                    true => None,
                    false => Some(self.decommission.prepare(caller, request).await?),
                };
                (changes, work)
            } else {
                let cancel = Some(progress.cancellation());
                let changes = self.agent_changes(spec, cancel).await?;
                let work = match changes.is_empty() {
                    true => None,
                    false => Some(
                        self.agent
                            .prepare_install(caller, install_request(spec))
                            .await?,
                    ),
                };
                (changes, work)
            };
            let work = work.map(job_of);
            total += section(progress, "agent", changes, work, &mut changed_steps).await?;
        }
        if let Some(wanted) = &plan.agent_settings {
            // provd's own change for the whole section, stored record
            // included: the drift watch does not count it.
            let _provds = self.changes.begin();
            begin(progress, settings::STEP).await?;
            let (write, changes) = self.agent_settings_changes(wanted).await?;
            let work = (!changes.is_empty()).then(|| settings::job_of(self.host.clone(), write));
            total += section(progress, settings::STEP, changes, work, &mut changed_steps).await?;
            // In place now: what the drift watch puts back.
            settings::save(&self.store, wanted).await?;
        }
        if let Some(fixes) = &plan.host {
            let step = host::AGENT_SERVICE_STEP;
            total += self
                .host_section(progress, fixes, step, &mut changed_steps)
                .await?;
            // Both host steps done: what the drift watch keeps made.
            host::save(&self.store, fixes).await?;
        }
        for d in &plan.domains {
            let step = format!("domain {}", d.domain);
            begin(progress, &step).await?;
            let changes = self.domain_changes(d).await?;
            let work = match changes.first().map(|c| c.action) {
                None => None,
                Some("add") => Some(
                    self.directories
                        .prepare_add(
                            caller,
                            AddDirectoryRequest {
                                domain: d.domain.clone(),
                                credential: Some(cred()?),
                                preferred_domain_controllers: d.preferred.clone(),
                                request_id: String::new(),
                            },
                        )
                        .await?,
                ),
                Some(_) => Some(
                    self.dcs
                        .prepare_set_priority(
                            caller,
                            SetPriorityRequest {
                                domain: d.domain.clone(),
                                domain_controllers: d.preferred.clone(),
                                ..Default::default()
                            },
                        )
                        .await?,
                ),
            };
            total += section(
                progress,
                &step,
                changes,
                work.map(job_of),
                &mut changed_steps,
            )
            .await?;
        }
        if let Some((domain, choice, profiles)) = &plan.account {
            begin(progress, "service-account").await?;
            let changes = self.account_changes(domain, choice).await?;
            let work = if changes.is_empty() {
                None
            } else {
                Some(self.account_job(caller, domain, choice, cred()?).await?)
            };
            total += section(
                progress,
                "service-account",
                changes,
                work.map(job_of),
                &mut changed_steps,
            )
            .await?;

            begin(progress, "permissions").await?;
            let changes = self.permission_changes(domain, profiles, &cred()?).await?;
            let work = if changes.is_empty() {
                None
            } else {
                let missing = changes
                    .iter()
                    .filter_map(|c| Profile::from_name(&c.detail))
                    .map(|p| Some(ProfileChoice::One(p)))
                    .collect();
                Some(
                    self.gmsa
                        .prepare_grant(
                            caller,
                            GrantPermissionsRequest {
                                domain: domain.clone(),
                                profiles: missing,
                                mode: Some(GrantMode::Apply),
                                credential: Some(cred()?),
                                ..Default::default()
                            },
                        )
                        .await?,
                )
            };
            total += section(
                progress,
                "permissions",
                changes,
                work.map(job_of),
                &mut changed_steps,
            )
            .await?;
        }
        if self.agent_gets_domains(&plan).await? {
            // After the service account: Microsoft's order is the gMSA, then
            // the domains.
            begin(progress, AGENT_DOMAINS).await?;
            let lacking = self
                .directories
                .agent_lacks(&wanted_dcs(&plan.domains))
                .await?;
            let changes = agent_domain_changes(&lacking);
            let work = if lacking.is_empty() {
                None
            } else {
                let domains = lacking.into_iter().map(|(d, _)| d).collect();
                Some(self.directories.add_to_agent_job(domains, cred()?))
            };
            total += section(progress, AGENT_DOMAINS, changes, work, &mut changed_steps).await?;
        }
        if let Some(enabled) = plan.writeback {
            begin(progress, "writeback").await?;
            let changes = self
                .writeback_changes(enabled, &plan.domains, &cred()?)
                .await?;
            let work = if changes.is_empty() {
                None
            } else {
                Some(
                    self.writeback
                        .prepare_set(
                            caller,
                            SetWritebackRequest {
                                enable: enabled,
                                domains: Vec::new(),
                                credential: Some(cred()?),
                                request_id: String::new(),
                            },
                        )
                        .await?,
                )
            };
            total += section(
                progress,
                "writeback",
                changes,
                work.map(job_of),
                &mut changed_steps,
            )
            .await?;
        }
        drop(credential);
        for (domain, spec) in plan.cloud_sync {
            if !self.cloud_sync.has_section(&domain, spec.as_ref()).await? {
                continue;
            }
            // The job reports its own step (`cloud-sync <domain>`): the
            // changes are read after the sign-in it begins with.
            let outcome =
                self.cloud_sync.section_job(domain.clone(), spec)(progress.clone()).await?;
            let made: usize = outcome
                .get("changes")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if made > 0 {
                total += made;
                changed_steps.push(super::cloud_sync::step_of(&domain));
            }
        }
        Ok(Outcome::from([
            ("changed".into(), (total > 0).to_string()),
            ("changes".into(), total.to_string()),
            ("changed_steps".into(), changed_steps.join(",")),
        ]))
    }

    /// One of the `[host]` section's two steps.
    async fn host_section(
        &self,
        progress: &Progress,
        fixes: &[HostFix],
        step: &'static str,
        changed_steps: &mut Vec<String>,
    ) -> Result<usize, Error> {
        begin(progress, step).await?;
        let (planned, changes) = host::changes(self.host.as_ref(), fixes, step).await?;
        // Nothing to fix now (a fix only listed for later): skipped.
        let unavailable = self.host.availability().is_err();
        let work =
            (unavailable || !planned.is_empty()).then(|| host::job_of(self.host.clone(), planned));
        section(progress, step, changes, work, changed_steps).await
    }

    /// The absent agent's changes: each DecommissionAgent step that would
    /// act, as "<step>: <detail>".
    async fn absent_changes(
        &self,
        spec: &AgentSpec,
        credential: Option<BindCredential>,
    ) -> Result<Vec<Change>, Error> {
        let steps = self
            .decommission
            .plan(decommission_request(spec, credential))
            .await?;
        Ok(steps
            .into_iter()
            .filter(|c| c.action != "skip")
            .map(|c| Change {
                step: "agent".into(),
                action: c.action,
                detail: format!("{}: {}", c.step, c.detail),
            })
            .collect())
    }

    /// Whether the agent-domains section applies: the document names
    /// domains, and the agent has (or this apply gives it) a gMSA, which
    /// Microsoft's order puts before the domains.
    async fn agent_gets_domains(&self, plan: &Plan) -> Result<bool, Error> {
        Ok(!plan.domains.is_empty()
            && (plan.account.is_some()
                || super::service_account::load_account(&self.store)
                    .await?
                    .is_some()))
    }

    async fn account_job(
        &self,
        caller: &Caller,
        domain: &str,
        choice: &AccountChoice,
        credential: BindCredential,
    ) -> Result<(OperationSpec, Job), Error> {
        match choice {
            AccountChoice::Create {
                name,
                principals,
                container_dn,
                encryption_types,
            } => {
                self.gmsa
                    .prepare_create(
                        caller,
                        CreateGmsaRequest {
                            name: name.clone(),
                            container_dn: container_dn.clone(),
                            encryption_types: encryption_types.clone(),
                            principals: principals.clone(),
                            domain: domain.to_owned(),
                            credential: Some(credential),
                            ..Default::default()
                        },
                    )
                    .await
            }
            AccountChoice::Custom { name, host_account } => {
                self.gmsa
                    .prepare_use_custom(
                        caller,
                        UseCustomGmsaRequest {
                            name: name.clone(),
                            domain: domain.to_owned(),
                            credential: Some(credential),
                            host_account: host_account.clone(),
                            request_id: String::new(),
                        },
                    )
                    .await
            }
        }
    }
}

/// DecommissionAgent's request for a document whose agent is absent.
fn decommission_request(
    spec: &AgentSpec,
    credential: Option<BindCredential>,
) -> DecommissionRequest {
    DecommissionRequest {
        credential,
        keep_gmsa: spec.keep_gmsa,
        ..DecommissionRequest::default()
    }
}

fn missing_credential() -> Error {
    Error::invalid(
        "credential",
        "is required: the document changes the directory",
    )
}

fn install_request(spec: &AgentSpec) -> InstallRequest {
    InstallRequest {
        source: spec.source.clone(),
        sha256: spec.sha256.clone(),
        accept_license: spec.accept_license,
        cloud: spec.cloud,
        request_id: String::new(),
        skip_registration: spec.skip_registration,
    }
}

impl ApplyWorkflows {
    /// `[drift] reapply`: the last applied document's host and agent
    /// sections (`[host]`'s fixes and `[agent.settings]`, as apply last put
    /// them in place), applied again as an APPLY_CONFIGURATION operation of
    /// its own (initiator `drift`); never a directory or tenant section,
    /// which need a credential. `None` when no apply has set either. `why`
    /// goes into the operation's description.
    pub async fn reapply_host_and_agent(
        self: &Arc<Self>,
        why: &str,
    ) -> Result<Option<OperationRecord>, Error> {
        let host = host::load(&self.store).await?;
        let agent_settings = settings::load(&self.store).await?;
        if host.is_none() && agent_settings.is_none() {
            return Ok(None);
        }
        let plan = Plan {
            host,
            agent: None,
            agent_settings,
            domains: Vec::new(),
            account: None,
            writeback: None,
            cloud_sync: Vec::new(),
        };
        let spec = OperationSpec {
            kind: OperationKind::ApplyConfiguration,
            request_id: None,
            fingerprint: plan.fingerprint(),
            description: format!(
                "re-apply the last applied host and agent sections ({})",
                why.chars().take(200).collect::<String>()
            ),
            initiator: DRIFT.into(),
        };
        let this = self.clone();
        let caller = Caller { name: DRIFT.into() };
        self.operations
            .start(spec, move |progress| async move {
                this.run(&progress, &caller, plan, None).await
            })
            .await
            .map(Some)
    }

    /// For the drift watch: the fixes apply last made that the host needs
    /// again (`None`: no apply has kept any, or the host cannot tell).
    pub async fn host_drift(&self) -> Option<Vec<Change>> {
        let wanted = host::load(&self.store).await.ok()??;
        self.host.availability().ok()?;
        // What needs fixing now; not the fixes listed for after an install.
        let mut changes = Vec::new();
        for step in [host::STEP, host::AGENT_SERVICE_STEP] {
            let (planned, _) = host::changes(self.host.as_ref(), &wanted, step)
                .await
                .ok()?;
            changes.extend(planned.iter().map(|p| host::described(p, step)));
        }
        Some(changes)
    }

    /// For the drift watch: how the host's agent settings differ from what
    /// apply last put in place (`None`: no apply has set any, or the host
    /// cannot tell: unavailable, the agent not installed, unreadable).
    pub async fn settings_drift(&self) -> Option<Vec<Change>> {
        let wanted = settings::load(&self.store).await.ok()??;
        self.host.availability().ok()?;
        self.host.agent_status().await.ok()?.installed_version?;
        let have = self.host.agent_settings().await.ok()?;
        let (_, mut changes) = settings::diff(&wanted, Some(&have), "");
        changes.retain(|c| c.action != "restart");
        Some(changes)
    }

    /// What to write and the changes of the `agent-settings` section. On a
    /// host that cannot manage the agent, or before the agent is installed
    /// (apply installs it first), every wanted setting is listed.
    async fn agent_settings_changes(
        &self,
        wanted: &AgentSettings,
    ) -> Result<(AgentSettings, Vec<Change>), Error> {
        if let Err(reason) = self.host.availability() {
            return Ok(settings::diff(
                wanted,
                None,
                &format!("this host cannot: {reason}"),
            ));
        }
        let status = self.host.agent_status().await?;
        if status.installed_version.is_none() {
            return Ok(settings::diff(
                wanted,
                None,
                "the agent is not installed yet",
            ));
        }
        let have = self.host.agent_settings().await?;
        Ok(settings::diff(wanted, Some(&have), ""))
    }
}

/// The initiator of drift's re-apply.
const DRIFT: &str = "drift";

/// The apply step that tells the agent its domains.
const AGENT_DOMAINS: &str = "agent-domains";

/// A single RPC's prepared work, run as a section of the apply.
fn job_of((_, job): (OperationSpec, Job)) -> Job {
    job
}

/// Each document domain with the DCs it should prefer (none: provd's
/// stored priority).
fn wanted_dcs(domains: &[DomainSpec]) -> Vec<(String, Vec<String>)> {
    domains
        .iter()
        .map(|d| (d.domain.clone(), d.preferred.clone()))
        .collect()
}

/// One planned `add-domain` per domain the agent lacks.
fn agent_domain_changes(lacking: &[(String, Vec<String>)]) -> Vec<Change> {
    lacking
        .iter()
        .map(|(domain, dcs)| Change {
            step: AGENT_DOMAINS.into(),
            action: "add-domain",
            detail: if dcs.is_empty() {
                domain.clone()
            } else {
                format!("{domain} preferring {}", dcs.join(", "))
            },
        })
        .collect()
}

/// Starts a section's step; what differs is read inside it.
async fn begin(progress: &Progress, step: &str) -> Result<(), Error> {
    progress
        .step_started(step, format!("checking {step}"))
        .await
}

/// Ends a section's step: skipped when nothing differs; else each planned
/// change as a PROGRESS event, the nested job, and STEP_SUCCEEDED.
async fn section(
    progress: &Progress,
    step: &str,
    changes: Vec<Change>,
    work: Option<Job>,
    changed_steps: &mut Vec<String>,
) -> Result<usize, Error> {
    let Some(work) = work.filter(|_| !changes.is_empty()) else {
        progress.step_skipped(step, "as desired").await?;
        return Ok(0);
    };
    for c in &changes {
        progress
            .progress(step, format!("{}: {}", c.action, c.detail), 0)
            .await?;
    }
    work(progress.clone()).await?;
    progress
        .step_succeeded(step, format!("{} change(s) made", changes.len()))
        .await?;
    changed_steps.push(step.to_owned());
    Ok(changes.len())
}
