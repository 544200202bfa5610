//! ConfigurationService: one desired-state document reconciled section by
//! section (agent → domains → service account → permissions → writeback),
//! the same order the wizard walks. Each section first works out what
//! differs (the same code PlanConfiguration runs); nothing differing is a
//! skip, anything else runs the single-RPC workflow's job under this
//! operation's progress, so apply does exactly what the plan listed.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::agent::{AgentWorkflows, InstallRequest};
use super::directory::{AddDirectoryRequest, DirectoryWorkflows};
use super::domain_controllers::{DomainControllerWorkflows, SetPriorityRequest};
use super::operations::{Job, OperationSpec, Outcome, Progress};
use super::permissions::{GrantMode, GrantPermissionsRequest, Profile, ProfileChoice};
use super::service_account::{
    self, CreateGmsaRequest, Origin, ServiceAccountWorkflows, UseCustomGmsaRequest,
};
use super::tenant::TenantWorkflows;
use super::validate::{self, dc_list, dns_name};
use super::writeback::{SetWritebackRequest, TenantState, WritebackWorkflows};
use super::{Caller, Error, FieldViolation, Operations};
use crate::backends::directory::BindCredential;
use crate::backends::host::{AGENT_SERVICES, Cloud, Host, ServiceState};
use crate::backends::store::{OperationKind, OperationRecord, Store};

/// Users sampled when planning writeback (only presence matters here).
const WRITEBACK_PLAN_SAMPLE: u32 = 1;

#[derive(Debug, Clone, Default)]
pub struct AgentSpec {
    pub source: String,
    pub sha256: String,
    pub accept_license: bool,
    pub cloud: Option<Cloud>,
    pub skip_registration: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DomainSpec {
    pub domain: String,
    pub preferred: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum AccountChoice {
    Create {
        name: String,
        principals: Vec<String>,
        container_dn: String,
        encryption_types: Vec<Option<u32>>,
    },
    Custom {
        name: String,
        host_account: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct AccountSpec {
    pub domain: String,
    /// `None`: the document named neither (rejected).
    pub choice: Option<AccountChoice>,
    /// `None` entries: values the transport could not map (rejected).
    pub permissions: Vec<Option<ProfileChoice>>,
}

#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    pub agent: Option<AgentSpec>,
    pub domains: Vec<DomainSpec>,
    pub service_account: Option<AccountSpec>,
    pub writeback: Option<bool>,
}

/// One change apply would make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub step: String,
    pub action: &'static str,
    pub detail: String,
}

fn change(step: &str, action: &'static str, detail: impl Into<String>) -> Change {
    Change {
        step: step.to_owned(),
        action,
        detail: detail.into(),
    }
}

/// A validated document: domain names normalized, profiles expanded.
#[derive(Debug, Clone)]
struct Plan {
    agent: Option<AgentSpec>,
    domains: Vec<DomainSpec>,
    account: Option<(String, AccountChoice, Vec<Profile>)>,
    writeback: Option<bool>,
}

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
        }
    }

    /// PlanConfiguration.
    pub async fn plan(
        &self,
        desired: DesiredState,
        credential: Option<BindCredential>,
    ) -> Result<Vec<Change>, Error> {
        let plan = self.validate(desired, credential.as_ref()).await?;
        let mut changes = Vec::new();
        if let Some(spec) = &plan.agent {
            changes.extend(self.agent_changes(spec).await?);
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
        if let Some(enabled) = plan.writeback {
            let credential = credential.clone().ok_or_else(missing_credential)?;
            changes.extend(
                self.writeback_changes(enabled, &plan.domains, &credential)
                    .await?,
            );
        }
        Ok(changes)
    }

    /// ApplyConfiguration: one operation, one step per section.
    pub async fn apply(
        self: &Arc<Self>,
        caller: &Caller,
        desired: DesiredState,
        credential: Option<BindCredential>,
        request_id: &str,
    ) -> Result<OperationRecord, Error> {
        let request_id = validate::request_id("request_id", request_id)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        let plan = self.validate(desired, credential.as_ref()).await?;
        let mut sections = Vec::new();
        if plan.agent.is_some() {
            sections.push("agent".to_owned());
        }
        sections.extend(plan.domains.iter().map(|d| format!("domain {}", d.domain)));
        if plan.account.is_some() {
            sections.push("service-account".into());
            sections.push("permissions".into());
        }
        if plan.writeback.is_some() {
            sections.push("writeback".into());
        }
        let spec = OperationSpec {
            kind: OperationKind::ApplyConfiguration,
            request_id,
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
            let changes = self.agent_changes(spec).await?;
            let work = if changes.is_empty() {
                None
            } else {
                Some(
                    self.agent
                        .prepare_install(caller, install_request(spec))
                        .await?,
                )
            };
            total += section(progress, "agent", changes, work, &mut changed_steps).await?;
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
            total += section(progress, &step, changes, work, &mut changed_steps).await?;
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
                work,
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
            total += section(progress, "permissions", changes, work, &mut changed_steps).await?;
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
            total += section(progress, "writeback", changes, work, &mut changed_steps).await?;
        }
        drop(credential);
        Ok(Outcome::from([
            ("changed".into(), (total > 0).to_string()),
            ("changes".into(), total.to_string()),
            ("changed_steps".into(), changed_steps.join(",")),
        ]))
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

    // ------------------------------------------------------------ validation

    async fn validate(
        &self,
        desired: DesiredState,
        credential: Option<&BindCredential>,
    ) -> Result<Plan, Error> {
        let mut v = Vec::new();
        let prefix = |path: &str, list: Vec<FieldViolation>| {
            list.into_iter()
                .map(|f| FieldViolation::new(format!("{path}.{}", f.field), f.description))
                .collect::<Vec<_>>()
        };
        if let Some(spec) = &desired.agent {
            v.extend(prefix(
                "desired.agent",
                self.agent.check_install(&install_request(spec)),
            ));
        }
        let mut domains = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, d) in desired.domains.iter().enumerate() {
            let path = format!("desired.domains[{i}]");
            let name = dns_name(&format!("{path}.domain"), &d.domain)
                .map_err(|e| v.push(e))
                .ok();
            let preferred = dc_list(
                &format!("{path}.preferred_domain_controllers"),
                &d.preferred,
            )
            .map_err(|e| v.push(e))
            .ok();
            if let (Some(domain), Some(preferred)) = (name, preferred) {
                if !seen.insert(domain.clone()) {
                    v.push(FieldViolation::new(
                        format!("{path}.domain"),
                        format!("{domain} is listed twice"),
                    ));
                }
                domains.push(DomainSpec { domain, preferred });
            }
        }
        let mut account = None;
        if let Some(spec) = &desired.service_account {
            let path = "desired.service_account";
            let domain = dns_name(&format!("{path}.domain"), &spec.domain)
                .map_err(|e| v.push(e))
                .ok();
            let added = DirectoryWorkflows::list_domains(&self.store).await?;
            if let Some(d) = &domain
                && !seen.contains(d)
                && !added.contains(d)
            {
                v.push(FieldViolation::new(
                    format!("{path}.domain"),
                    format!("{d} is neither in desired.domains nor added"),
                ));
            }
            let choice = match &spec.choice {
                None => {
                    v.push(FieldViolation::new(
                        format!("{path}.account"),
                        "name either `create` or `custom`",
                    ));
                    None
                }
                Some(AccountChoice::Create {
                    name, principals, ..
                }) => {
                    let _ = service_account::gmsa_name(&format!("{path}.create.name"), name)
                        .map_err(|e| v.push(e));
                    if principals.is_empty() {
                        v.push(FieldViolation::new(
                            format!("{path}.create.principals_allowed_to_retrieve_password"),
                            "at least one computer account or group (this host's, e.g. \"AGENT1$\")",
                        ));
                    }
                    spec.choice.clone()
                }
                Some(AccountChoice::Custom { name, host_account }) => {
                    if name.trim().is_empty() {
                        v.push(FieldViolation::new(
                            format!("{path}.custom.name"),
                            "is required",
                        ));
                    }
                    if host_account.trim().is_empty() {
                        v.push(FieldViolation::new(
                            format!("{path}.custom.host_account"),
                            "is required (this host's computer account, e.g. \"AGENT1$\")",
                        ));
                    }
                    spec.choice.clone()
                }
            };
            let mut profiles = BTreeSet::new();
            for (i, p) in spec.permissions.iter().enumerate() {
                match p {
                    Some(ProfileChoice::One(p)) => {
                        profiles.insert(*p);
                    }
                    Some(ProfileChoice::All) => profiles.extend(Profile::ALL),
                    None => v.push(FieldViolation::new(
                        format!("{path}.permissions[{i}]"),
                        "is not a permission profile",
                    )),
                }
            }
            if profiles.is_empty() {
                profiles.insert(Profile::BasicRead);
            }
            if let (Some(domain), Some(choice)) = (domain, choice) {
                account = Some((domain, choice, profiles.into_iter().collect()));
            }
        }
        let needs_credential = !desired.domains.is_empty()
            || desired.service_account.is_some()
            || desired.writeback.is_some();
        if needs_credential {
            match credential {
                None => v.push(FieldViolation::new(
                    "credential",
                    "is required: the document changes the directory",
                )),
                Some(c) => v.extend(validate::credential("credential", Some(c))),
            }
        }
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        Ok(Plan {
            agent: desired.agent,
            domains,
            account,
            writeback: desired.writeback,
        })
    }

    // ------------------------------------------------------------ what differs

    async fn agent_changes(&self, spec: &AgentSpec) -> Result<Vec<Change>, Error> {
        const STEP: &str = "agent";
        let mut out = Vec::new();
        let wanted = self.agent.package_version_of(&spec.source);
        let status = match self.host.availability() {
            Ok(()) => self
                .host
                .agent_status()
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?,
            Err(reason) => {
                out.push(change(
                    STEP,
                    "install",
                    format!("package from {} (this host cannot: {reason})", spec.source),
                ));
                return Ok(out);
            }
        };
        let installed = status.installed_version.clone();
        let up_to_date = match (&installed, &wanted) {
            (Some(have), Some(want)) => {
                crate::backends::host::installer::version_cmp(have, want).is_ge()
            }
            // An .exe does not say its version before it runs: installed is
            // taken as good (Install would run it; apply does not).
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !up_to_date {
            out.push(change(
                STEP,
                "install",
                format!(
                    "package {} (installed: {})",
                    wanted.as_deref().unwrap_or("of unknown version"),
                    installed.as_deref().unwrap_or("none")
                ),
            ));
        }
        if !spec.skip_registration {
            let recorded = self.tenant.registration().await?;
            let on_host = self
                .host
                .agent_identity()
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            let registered =
                matches!((&recorded, &on_host), (Some(r), Some(id)) if r.agent_id == *id);
            if !registered {
                out.push(change(
                    STEP,
                    "register",
                    "sign in by device code and register this machine's agent",
                ));
            }
        }
        let stopped: Vec<&str> = status
            .services
            .iter()
            .filter(|s| s.state != ServiceState::Running)
            .map(|s| s.name.as_str())
            .collect();
        if up_to_date && !stopped.is_empty() {
            out.push(change(STEP, "start", stopped.join(", ")));
        }
        Ok(out)
    }

    async fn domain_changes(&self, d: &DomainSpec) -> Result<Vec<Change>, Error> {
        let step = format!("domain {}", d.domain);
        let added = DirectoryWorkflows::list_domains(&self.store).await?;
        if !added.contains(&d.domain) {
            let detail = if d.preferred.is_empty() {
                d.domain.clone()
            } else {
                format!("{} preferring {}", d.domain, d.preferred.join(", "))
            };
            return Ok(vec![change(&step, "add", detail)]);
        }
        let stored = self.dcs.priority(&d.domain).await?;
        if !d.preferred.is_empty() && stored.dcs != d.preferred {
            return Ok(vec![change(
                &step,
                "set-priority",
                format!(
                    "{} (now: {})",
                    d.preferred.join(", "),
                    if stored.dcs.is_empty() {
                        "DNS order".to_owned()
                    } else {
                        stored.dcs.join(", ")
                    }
                ),
            )]);
        }
        Ok(Vec::new())
    }

    async fn account_changes(
        &self,
        domain: &str,
        choice: &AccountChoice,
    ) -> Result<Vec<Change>, Error> {
        const STEP: &str = "service-account";
        let recorded = service_account::load_account(&self.store).await?;
        let same_sam = |record: &service_account::AccountRecord, name: &str| {
            let want = if name.is_empty() {
                service_account::DEFAULT_GMSA
            } else {
                name
            };
            record
                .sam_account_name
                .trim_end_matches('$')
                .eq_ignore_ascii_case(want.trim_end_matches('$'))
                || record.distinguished_name.eq_ignore_ascii_case(name)
        };
        let record = match (&recorded, choice) {
            (
                Some(r),
                AccountChoice::Create {
                    name, principals, ..
                },
            ) if r.domain == domain && r.origin == Origin::Created && same_sam(r, name) => {
                let have: BTreeSet<String> = r
                    .principals
                    .iter()
                    .map(|p| p.sam_account_name.to_ascii_uppercase())
                    .collect();
                let want: BTreeSet<String> =
                    principals.iter().map(|p| p.to_ascii_uppercase()).collect();
                if have != want {
                    return Ok(vec![change(
                        STEP,
                        "update-principals",
                        format!(
                            "{}: {} (now: {})",
                            r.sam_account_name,
                            want.into_iter().collect::<Vec<_>>().join(", "),
                            have.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    )]);
                }
                r
            }
            (Some(r), AccountChoice::Custom { name, .. })
                if r.domain == domain && r.origin == Origin::Custom && same_sam(r, name) =>
            {
                r
            }
            (_, AccountChoice::Create { name, .. }) => {
                let name = if name.is_empty() {
                    service_account::DEFAULT_GMSA
                } else {
                    name
                };
                return Ok(vec![change(
                    STEP,
                    "create",
                    format!(
                        "gMSA {name} in {domain} (recorded: {})",
                        describe(&recorded)
                    ),
                )]);
            }
            (_, AccountChoice::Custom { name, .. }) => {
                return Ok(vec![change(
                    STEP,
                    "use-custom",
                    format!(
                        "gMSA {name} of {domain} (recorded: {})",
                        describe(&recorded)
                    ),
                )]);
            }
        };
        // The account is right; is the agent service logging on as it?
        if self.host.availability().is_ok() {
            let service = self
                .host
                .service_status(AGENT_SERVICES[0].0)
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            let logon = format!("{}\\{}", record.netbios, record.sam_account_name);
            if service.state != ServiceState::NotInstalled
                && !service.account.eq_ignore_ascii_case(&logon)
            {
                return Ok(vec![change(
                    STEP,
                    "set-logon",
                    format!(
                        "{} logs on as {logon} (now: {})",
                        AGENT_SERVICES[0].0, service.account
                    ),
                )]);
            }
        }
        Ok(Vec::new())
    }

    async fn permission_changes(
        &self,
        domain: &str,
        profiles: &[Profile],
        credential: &BindCredential,
    ) -> Result<Vec<Change>, Error> {
        const STEP: &str = "permissions";
        let recorded = service_account::load_account(&self.store).await?;
        let held: BTreeSet<Profile> = match recorded.filter(|a| a.domain == domain) {
            // Planned before the account exists: every profile is missing.
            None => BTreeSet::new(),
            Some(_) => {
                let report = self.gmsa.get(domain, Some(credential.clone())).await?;
                if !report.live {
                    return Err(Error::Unavailable(format!(
                        "cannot read the permissions in {domain}: {}",
                        report.live_unavailable_reason
                    )));
                }
                report
                    .permissions
                    .iter()
                    .filter(|p| p.present)
                    .map(|p| p.profile)
                    .collect()
            }
        };
        Ok(profiles
            .iter()
            .filter(|p| !held.contains(p))
            .map(|p| change(STEP, "grant", p.name()))
            .collect())
    }

    async fn writeback_changes(
        &self,
        enabled: bool,
        desired_domains: &[DomainSpec],
        credential: &BindCredential,
    ) -> Result<Vec<Change>, Error> {
        const STEP: &str = "writeback";
        let added = DirectoryWorkflows::list_domains(&self.store).await?;
        let report = if added.is_empty() {
            None
        } else {
            Some(
                self.writeback
                    .get("", Some(credential.clone()), WRITEBACK_PLAN_SAMPLE)
                    .await?,
            )
        };
        let tenant = match &report {
            Some(r) => r.tenant.clone(),
            None => self.writeback.tenant_state().await,
        };
        // Domains the document adds count as lacking the ACEs.
        let mut ready = BTreeSet::new();
        let mut not_ready = BTreeSet::new();
        for d in report.iter().flat_map(|r| &r.domains) {
            if d.ready() {
                ready.insert(d.domain.clone());
            } else {
                not_ready.insert(d.domain.clone());
            }
        }
        for d in desired_domains {
            if !added.contains(&d.domain) {
                not_ready.insert(d.domain.clone());
            }
        }
        let flag = match &tenant {
            TenantState::Enabled => "on",
            TenantState::Disabled => "off",
            TenantState::Unknown(_) => "unknown",
        };
        let detail = |what: String| match &tenant {
            TenantState::Unknown(why) => format!("{what}; the tenant flag is unknown ({why})"),
            _ => what,
        };
        let change_needed = if enabled {
            tenant != TenantState::Enabled || !not_ready.is_empty()
        } else {
            tenant != TenantState::Disabled || !ready.is_empty()
        };
        if !change_needed {
            return Ok(Vec::new());
        }
        let what = if enabled {
            format!(
                "tenant flag on (now {flag}); PasswordWriteBack ACEs on {}",
                if not_ready.is_empty() {
                    "every domain (present)".to_owned()
                } else {
                    not_ready.into_iter().collect::<Vec<_>>().join(", ")
                }
            )
        } else {
            format!(
                "tenant flag off (now {flag}); ACEs removed from {}",
                if ready.is_empty() {
                    "no domain (none left)".to_owned()
                } else {
                    ready.into_iter().collect::<Vec<_>>().join(", ")
                }
            )
        };
        Ok(vec![change(
            STEP,
            if enabled { "enable" } else { "disable" },
            detail(what),
        )])
    }
}

fn describe(record: &Option<service_account::AccountRecord>) -> String {
    match record {
        None => "none".into(),
        Some(r) => format!("{} in {}", r.sam_account_name, r.domain),
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
    work: Option<(OperationSpec, Job)>,
    changed_steps: &mut Vec<String>,
) -> Result<usize, Error> {
    let Some((_, work)) = work.filter(|_| !changes.is_empty()) else {
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
