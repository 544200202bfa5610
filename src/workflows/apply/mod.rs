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
mod sections;
mod settings;

use std::sync::Arc;

use super::agent::{AgentWorkflows, InstallRequest};
use super::cloud_sync::CloudSyncWorkflows;
use super::directory::{AddDirectoryRequest, DirectoryWorkflows};
use super::domain_controllers::{DomainControllerWorkflows, SetPriorityRequest};
use super::drift::AgentChanges;
use super::operations::{Job, OperationSpec, Outcome, Progress};
use super::permissions::Profile;
use super::permissions::{GrantMode, GrantPermissionsRequest, ProfileChoice};
use super::service_account::{CreateGmsaRequest, ServiceAccountWorkflows, UseCustomGmsaRequest};
use super::tenant::TenantWorkflows;
use super::writeback::{SetWritebackRequest, WritebackWorkflows};
use super::{Caller, Error, Operations, validate};
use crate::backends::directory::BindCredential;
use crate::backends::host::{AgentSettings, Host};
use crate::backends::store::{OperationKind, OperationRecord, Store};

pub use document::{AccountChoice, AccountSpec, AgentSpec, DesiredState, DomainSpec};
pub use sections::Change;
pub use settings::{AgentSettingsInput, ProxyInput};

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
            changes,
        }
    }

    /// PlanConfiguration.
    pub async fn plan(
        &self,
        desired: Option<DesiredState>,
        credential: Option<BindCredential>,
    ) -> Result<Vec<Change>, Error> {
        let plan = self.validate(desired, credential.as_ref()).await?;
        let mut changes = Vec::new();
        if let Some(spec) = &plan.agent {
            changes.extend(self.agent_changes(spec, None).await?);
        }
        if let Some(wanted) = &plan.agent_settings {
            changes.extend(self.agent_settings_changes(wanted).await?.1);
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
        if plan.agent.is_some() {
            sections.push("agent".to_owned());
        }
        if plan.agent_settings.is_some() {
            sections.push(settings::STEP.to_owned());
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
        if let Some(spec) = &plan.agent {
            begin(progress, "agent").await?;
            let changes = self
                .agent_changes(spec, Some(progress.cancellation()))
                .await?;
            let work = if changes.is_empty() {
                None
            } else {
                Some(
                    self.agent
                        .prepare_install(caller, install_request(spec))
                        .await?,
                )
            };
            total += section(
                progress,
                "agent",
                changes,
                work.map(job_of),
                &mut changed_steps,
            )
            .await?;
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
    /// `[drift] reapply`: the agent settings apply last put in place,
    /// applied again as an APPLY_CONFIGURATION operation of its own (the
    /// `agent-settings` section alone, initiator `drift`); `None` when no
    /// apply has set any. `why` goes into the operation's description.
    pub async fn reapply_agent_settings(
        self: &Arc<Self>,
        why: &str,
    ) -> Result<Option<OperationRecord>, Error> {
        let Some(wanted) = settings::load(&self.store).await? else {
            return Ok(None);
        };
        let plan = Plan {
            agent: None,
            agent_settings: Some(wanted),
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
                "re-apply the last applied agent settings ({})",
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
