//! CloudSyncService: a domain's Microsoft Entra cloud sync configuration,
//! made through Microsoft Graph as the how-to documents it
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-inbound-synch-ms-graph>).
//!
//! `spec` validates, `observe` reads the tenant, `diff` works out the
//! ordered changes (the code PlanCloudSync, PlanConfiguration and the job
//! share), `steps` carries them out, `record` is what provd remembers,
//! `remedy` says what to do about a quarantine.

mod diff;
mod observe;
mod record;
pub mod remedy;
mod spec;
mod steps;
mod types;
mod view;

use std::sync::Arc;

use super::apply::Change;
use super::directory::DirectoryWorkflows;
use super::operations::{Job, OperationSpec, Outcome, Progress, RequestFingerprint, job};
use super::tenant::TenantWorkflows;
use super::validate::{self, dns_name};
use super::{Caller, Error, FieldViolation, Operations, PreconditionReason};
use crate::backends::store::{OperationKind, OperationRecord, Store};
use crate::backends::tenant::{CloudSyncApi, Tokens};
use crate::model::{JobCode, ResetScope, Schedule, SyncScope};

pub(crate) use observe::{agents_of, find_app};
pub(crate) use record::{load as load_record, save as save_record};
pub use spec::validate as validate_spec;
pub use types::*;

use diff::SyncChange;
use observe::{Observed, observe};

pub struct CloudSyncWorkflows {
    operations: Arc<Operations>,
    store: Arc<dyn Store>,
    tenant: Arc<TenantWorkflows>,
    api: Arc<dyn CloudSyncApi>,
}

/// The step every change of `domain` is reported under.
pub fn step_of(domain: &str) -> String {
    format!("cloud-sync {domain}")
}

impl CloudSyncWorkflows {
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        tenant: Arc<TenantWorkflows>,
        api: Arc<dyn CloudSyncApi>,
    ) -> Self {
        Self {
            operations,
            store,
            tenant,
            api,
        }
    }

    /// `domain` checked and added, or the violation / NOT_FOUND.
    async fn added(&self, field: &str, domain: &str) -> Result<String, Error> {
        let domain = dns_name(field, domain).map_err(|e| Error::InvalidArgument(vec![e]))?;
        if !DirectoryWorkflows::list_domains(&self.store)
            .await?
            .contains(&domain)
        {
            return Err(Error::NotFound(format!(
                "directory {domain} (add it with AddDirectory)"
            )));
        }
        Ok(domain)
    }

    async fn this_agent_id(&self) -> Result<Option<String>, Error> {
        Ok(self.tenant.registration().await?.map(|r| r.agent_id))
    }

    async fn observe(&self, tokens: &Tokens, domain: &str) -> Result<Observed, Error> {
        let agent = self.this_agent_id().await?;
        observe(
            &self.api,
            self.tenant.tenant(),
            &self.store,
            tokens,
            domain,
            agent.as_deref(),
        )
        .await
    }

    /// The changes that would make `domain` as `spec` says (`None`: the
    /// document no longer configures it); read-only.
    pub async fn changes(
        &self,
        domain: &str,
        spec: Option<&CloudSyncSpec>,
    ) -> Result<Vec<Change>, Error> {
        let step = step_of(domain);
        let managed = record::load(&self.store, domain).await?.is_some();
        if spec.is_none() && !managed {
            return Ok(Vec::new());
        }
        let Some(tokens) = self.tenant.tokens().await? else {
            let what = if spec.is_some() {
                "configure"
            } else {
                "release"
            };
            return Ok(vec![Change {
                step,
                action: what,
                detail: "the tenant is not read (no session: sign in with AgentService.SignIn); \
                         apply signs in first and then works out the Graph changes"
                    .into(),
            }]);
        };
        let obs = self.observe(&tokens, domain).await?;
        let changes = match spec {
            Some(spec) => diff::changes(&obs, spec),
            None => diff::release(&obs),
        };
        Ok(changes.iter().map(|c| c.describe(&step, &obs)).collect())
    }

    /// PlanCloudSync.
    pub async fn plan(
        &self,
        domain: &str,
        input: Option<CloudSyncInput>,
    ) -> Result<Vec<Change>, Error> {
        let (domain, spec) = self.validated(domain, input.as_ref()).await?;
        self.changes(&domain, Some(&spec)).await
    }

    async fn validated(
        &self,
        domain: &str,
        input: Option<&CloudSyncInput>,
    ) -> Result<(String, CloudSyncSpec), Error> {
        let mut v = Vec::new();
        let name = dns_name("domain", domain).map_err(|e| v.push(e)).ok();
        let spec = match input {
            None => {
                v.push(FieldViolation::new("spec", "is required"));
                None
            }
            Some(i) => spec::validate("spec", name.as_deref(), i)
                .map_err(|e| v.extend(e))
                .ok(),
        };
        match (name, spec) {
            (Some(name), Some(spec)) if v.is_empty() => {
                Ok((self.added("domain", &name).await?, spec))
            }
            _ => Err(Error::InvalidArgument(v)),
        }
    }

    /// SetCloudSync.
    pub async fn set(
        self: &Arc<Self>,
        caller: &Caller,
        request: SetCloudSyncRequest,
    ) -> Result<OperationRecord, Error> {
        let request_id = validate::request_id("request_id", &request.request_id);
        let validated = self.validated(&request.domain, request.spec.as_ref()).await;
        let ((domain, spec), request_id) = match (validated, request_id) {
            (Ok(ok), Ok(id)) => (ok, id),
            (Err(Error::InvalidArgument(mut v)), Err(bad)) => {
                v.push(bad);
                return Err(Error::InvalidArgument(v));
            }
            (Ok(_), Err(bad)) => return Err(Error::InvalidArgument(vec![bad])),
            (Err(e), _) => return Err(e),
        };
        let retried = self.operations.is_retry(request_id.as_deref()).await?;
        if !retried {
            self.require_registration().await?;
        }
        let spec_of_op = OperationSpec {
            kind: OperationKind::SetCloudSync,
            request_id,
            fingerprint: fingerprint(&domain, &spec),
            description: format!("configure cloud sync for {domain}"),
            initiator: caller.name.clone(),
        };
        let work = self.section_job(domain, Some(spec));
        self.operations.start(spec_of_op, work).await
    }

    async fn require_registration(&self) -> Result<(), Error> {
        match self.tenant.registration().await? {
            Some(_) => Ok(()),
            None => Err(Error::FailedPrecondition {
                reason: PreconditionReason::NotRegistered,
                subject: "agent".into(),
                message: "this machine's agent is not registered with the tenant: run Install \
                          first"
                    .into(),
            }),
        }
    }

    /// Whether apply has a cloud sync section for `domain`: the document
    /// configures it, or provd manages a configuration it must release.
    pub async fn has_section(
        &self,
        domain: &str,
        spec: Option<&CloudSyncSpec>,
    ) -> Result<bool, Error> {
        Ok(spec.is_some() || record::load(&self.store, domain).await?.is_some())
    }

    /// The work of SetCloudSync (`Some`) or of releasing (`None`), as one
    /// step `cloud-sync <domain>`: run alone or as a section of an apply.
    /// The outcome's `changes` counts what was done.
    pub fn section_job(self: &Arc<Self>, domain: String, spec: Option<CloudSyncSpec>) -> Job {
        let this = self.clone();
        job(move |progress| async move {
            let tokens = this.tenant.ensure_signed_in(&progress).await?;
            let step = step_of(&domain);
            progress
                .step_started(&step, format!("the cloud sync configuration of {domain}"))
                .await?;
            if spec.is_some() {
                // The agent serves the configuration: it must be registered
                // (an apply's agent section may just have done it).
                this.require_registration().await?;
                this.await_publication(&progress, &step, &tokens, &domain)
                    .await?;
            }
            let obs = this.observe(&tokens, &domain).await?;
            let changes = match &spec {
                Some(spec) => diff::changes(&obs, spec),
                None if obs.record.is_some() => diff::release(&obs),
                None => Vec::new(),
            };
            if changes.is_empty() {
                progress.step_skipped(&step, "as desired").await?;
            } else {
                this.execute(&progress, &step, &tokens, &obs, spec.as_ref(), &changes)
                    .await?;
                progress
                    .step_succeeded(&step, format!("{} change(s) made", changes.len()))
                    .await?;
            }
            Ok(Outcome::from([
                ("changed".into(), (!changes.is_empty()).to_string()),
                ("changes".into(), changes.len().to_string()),
                ("domain".into(), domain.clone()),
            ]))
        })
    }

    /// StartCloudSync, PauseCloudSync, RestartCloudSync.
    pub async fn control(
        self: &Arc<Self>,
        caller: &Caller,
        request: ControlCloudSyncRequest,
    ) -> Result<OperationRecord, Error> {
        let mut v = Vec::new();
        let domain = dns_name("domain", &request.domain)
            .map_err(|e| v.push(e))
            .ok();
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        let scopes = match &request.action {
            ControlAction::Restart { scopes } => reset_scopes(scopes).map_err(|e| v.push(e)).ok(),
            _ => Some(Vec::new()),
        };
        let (Some(domain), Some(scopes)) = (domain, scopes) else {
            return Err(Error::InvalidArgument(v));
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let domain = self.added("domain", &domain).await?;
        let (what, fingerprint) = match &request.action {
            ControlAction::Start => ("start", RequestFingerprint::new().text("action", "start")),
            ControlAction::Pause { release } => (
                "pause",
                RequestFingerprint::new()
                    .text("action", "pause")
                    .flag("release", *release),
            ),
            ControlAction::Restart { .. } => (
                "restart",
                RequestFingerprint::new().text("action", "restart").list(
                    "reset_scope",
                    &scopes.iter().map(|s| s.word()).collect::<Vec<_>>(),
                ),
            ),
        };
        let spec = OperationSpec {
            kind: OperationKind::ControlCloudSync,
            request_id,
            fingerprint: fingerprint.text("domain", &domain),
            description: format!("{what} cloud sync for {domain}"),
            initiator: caller.name.clone(),
        };
        let this = self.clone();
        let action = request.action;
        self.operations
            .start(spec, move |progress| async move {
                this.run_control(&progress, &domain, action, &scopes).await
            })
            .await
    }

    async fn run_control(
        &self,
        progress: &Progress,
        domain: &str,
        action: ControlAction,
        scopes: &[ResetScope],
    ) -> Result<Outcome, Error> {
        let tokens = self.tenant.ensure_signed_in(progress).await?;
        let step = step_of(domain);
        progress
            .step_started(&step, format!("the cloud sync jobs of {domain}"))
            .await?;
        let obs = self.observe(&tokens, domain).await?;
        let Some(app) = &obs.app else {
            return Err(Error::NotFound(format!(
                "cloud sync configuration for {domain} (create one with SetCloudSync)"
            )));
        };
        let sp = &app.service_principal_id;
        let mut done = 0usize;
        for j in &obs.jobs {
            let running = j.schedule == Schedule::Active;
            let quarantined = j.status.code == JobCode::Quarantine;
            let act = match &action {
                ControlAction::Start if !running || quarantined => "start",
                ControlAction::Pause { .. } if running => "pause",
                ControlAction::Restart { .. } => "restart",
                _ => continue,
            };
            progress
                .progress(&step, format!("{act}: {} job {}", j.template_id, j.id), 0)
                .await?;
            match act {
                "start" => self.api.start_job(&tokens, sp, &j.id).await?,
                "pause" => self.api.pause_job(&tokens, sp, &j.id).await?,
                _ => self.api.restart_job(&tokens, sp, &j.id, scopes).await?,
            }
            done += 1;
        }
        if let ControlAction::Pause { release: true } = action {
            let release = SyncChange::Release.describe(&step, &obs);
            progress
                .progress(&step, format!("{}: {}", release.action, release.detail), 0)
                .await?;
            record::save(&self.store, domain, None).await?;
            done += 1;
        }
        if done == 0 {
            progress.step_skipped(&step, "as asked already").await?;
        } else {
            progress
                .step_succeeded(&step, format!("{done} change(s) made"))
                .await?;
        }
        Ok(Outcome::from([
            ("changes".into(), done.to_string()),
            ("service_principal_id".into(), sp.clone()),
        ]))
    }
}

/// The reset scopes as given: at least one, each defined, none twice.
fn reset_scopes(given: &[Option<ResetScope>]) -> Result<Vec<ResetScope>, FieldViolation> {
    if given.is_empty() {
        return Err(FieldViolation::new(
            "reset_scope",
            "is required: ESCROWS, WATERMARK, QUARANTINE_STATE, FULL or FORCE_DELETES",
        ));
    }
    let mut out = Vec::new();
    for (i, scope) in given.iter().enumerate() {
        match scope {
            None => {
                return Err(FieldViolation::new(
                    format!("reset_scope[{i}]"),
                    "must be ESCROWS, WATERMARK, QUARANTINE_STATE, FULL or FORCE_DELETES",
                ));
            }
            Some(s) if out.contains(s) => {
                return Err(FieldViolation::new(
                    format!("reset_scope[{i}]"),
                    "is listed twice",
                ));
            }
            Some(s) => out.push(*s),
        }
    }
    Ok(out)
}

/// The request's fields for `request_id` reuse; the email only as "set":
/// a digest of one address could be guessed back.
fn fingerprint(domain: &str, spec: &CloudSyncSpec) -> RequestFingerprint {
    let (kind, list): (&str, &[String]) = match &spec.scope {
        SyncScope::AllUsers => ("all", &[]),
        SyncScope::OrganizationalUnits(l) => ("ous", l),
        SyncScope::SecurityGroups(l) => ("groups", l),
    };
    RequestFingerprint::new()
        .text("domain", domain)
        .flag("enabled", spec.enabled)
        .flag("password_hash_sync", spec.password_hash_sync)
        .text("scope", kind)
        .list("scope_entries", list)
        .number(
            "delete_threshold",
            spec.delete_threshold.map_or(0, u64::from),
        )
        .flag("notification_email_set", spec.notification_email.is_some())
}
