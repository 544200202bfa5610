//! Carrying out the changes, one Graph call each, in the order `diff`
//! listed them. A create that may have reached Graph without an answer is
//! never sent again blindly: the configuration is read first (Graph has no
//! idempotency key, and a second application or job is a mess to undo).

use std::time::{Duration, Instant};

use super::CloudSyncWorkflows;
use super::diff::{SyncChange, secrets_of};
use super::observe::Observed;
use super::record::{self, SyncRecord};
use super::types::CloudSyncSpec;
use crate::backends::tenant::{TenantError, Tokens};
use crate::model::{JobTemplate, ResetScope, SyncApp};
use crate::workflows::operations::Progress;
use crate::workflows::{Error, PreconditionReason};

/// How long a step waits for the agent to publish the domain.
const PUBLICATION_WAIT: Duration = Duration::from_secs(60);
const PUBLICATION_POLL: Duration = Duration::from_secs(2);

impl CloudSyncWorkflows {
    /// Waits (cancellably) until the tenant lists a published resource for
    /// `domain`: the agent publishes it when the domain is added to it,
    /// which an apply may have done a moment ago.
    pub(super) async fn await_publication(
        &self,
        progress: &Progress,
        step: &str,
        tokens: &Tokens,
        domain: &str,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + PUBLICATION_WAIT;
        let mut told = false;
        loop {
            let published = self
                .tenant
                .tenant()
                .list_published_resources(tokens)
                .await?
                .iter()
                .any(|r| r.domain.eq_ignore_ascii_case(domain));
            if published {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::FailedPrecondition {
                    reason: PreconditionReason::CloudSyncDomainNotPublished,
                    subject: domain.to_owned(),
                    message: format!(
                        "the tenant has not published {domain} after {} s: the agent publishes a \
                         domain when it is added to it (AddDirectory with the agent installed, \
                         registered and running)",
                        PUBLICATION_WAIT.as_secs()
                    ),
                });
            }
            if !told {
                progress
                    .progress(
                        step,
                        format!("waiting for the tenant to publish {domain}"),
                        0,
                    )
                    .await?;
                told = true;
            }
            tokio::select! {
                () = progress.cancellation().cancelled() => return Err(Error::Cancelled),
                () = tokio::time::sleep(PUBLICATION_POLL) => {}
            }
        }
    }

    /// Makes each change, announcing it first as a PROGRESS event with the
    /// words plan shows.
    pub(super) async fn execute(
        &self,
        progress: &Progress,
        step: &str,
        tokens: &Tokens,
        obs: &Observed,
        spec: Option<&CloudSyncSpec>,
        changes: &[SyncChange],
    ) -> Result<(), Error> {
        let domain = obs.domain.as_str();
        let mut app = obs.app.clone();
        let mut record = obs.record.clone();
        let mut jobs: Vec<(JobTemplate, String)> = obs
            .jobs
            .iter()
            .filter_map(|j| Some((j.template()?, j.id.clone())))
            .collect();
        for change in changes {
            let c = change.describe(step, obs);
            progress
                .progress(step, format!("{}: {}", c.action, c.detail), 0)
                .await?;
            let sp = || {
                app.as_ref()
                    .map(|a| a.service_principal_id.clone())
                    .ok_or_else(|| Error::internal("cloud sync", "no application to change"))
            };
            let job_id = |jobs: &[(JobTemplate, String)], t: JobTemplate| {
                jobs.iter()
                    .find(|(have, _)| *have == t)
                    .map(|(_, id)| id.clone())
                    .ok_or_else(|| Error::internal("cloud sync", "no job to change"))
            };
            match change {
                SyncChange::EnableTenantSync => {
                    self.api.enable_sync(tokens, &obs.organization.id).await?;
                }
                SyncChange::AwaitPublication => {}
                SyncChange::AssignAgentGroup { group_id, .. } => {
                    let agent = obs.this_agent.as_ref().ok_or_else(|| {
                        Error::NotFound("this machine's agent in the tenant".into())
                    })?;
                    self.api.assign_agent(tokens, &agent.id, group_id).await?;
                }
                SyncChange::CreateApp => {
                    let made = self.create_app(tokens, domain).await?;
                    let r = SyncRecord::new(made.service_principal_id.clone(), made.app_id.clone());
                    record::save(&self.store, domain, Some(&r)).await?;
                    record = Some(r);
                    app = Some(made);
                }
                SyncChange::AdoptApp => {
                    let a = app
                        .as_ref()
                        .ok_or_else(|| Error::internal("cloud sync", "nothing to adopt"))?;
                    let r = SyncRecord::new(a.service_principal_id.clone(), a.app_id.clone());
                    record::save(&self.store, domain, Some(&r)).await?;
                    record = Some(r);
                }
                SyncChange::CreateJob(t) => {
                    let id = self.create_job(tokens, &sp()?, *t).await?;
                    jobs.push((*t, id));
                }
                SyncChange::PutSecrets { .. } => {
                    let spec = spec.ok_or_else(|| Error::internal("cloud sync", "no spec"))?;
                    let secrets = secrets_of(domain, spec);
                    self.api.put_secrets(tokens, &sp()?, &secrets).await?;
                    if let Some(r) = record.as_mut() {
                        r.remember(&secrets);
                        record::save(&self.store, domain, Some(r)).await?;
                    }
                }
                SyncChange::SetScope { .. } => {
                    let spec = spec.ok_or_else(|| Error::internal("cloud sync", "no spec"))?;
                    let job = job_id(&jobs, JobTemplate::Provisioning)?;
                    self.api
                        .set_schema(tokens, &sp()?, &job, &spec.scope, spec.password_hash_sync)
                        .await?;
                }
                SyncChange::Restart(t) => {
                    let job = job_id(&jobs, *t)?;
                    self.api
                        .restart_job(tokens, &sp()?, &job, &[ResetScope::Watermark])
                        .await?;
                }
                SyncChange::Start(t) => {
                    let job = job_id(&jobs, *t)?;
                    self.api.start_job(tokens, &sp()?, &job).await?;
                }
                SyncChange::Pause(t) => {
                    let job = job_id(&jobs, *t)?;
                    self.api.pause_job(tokens, &sp()?, &job).await?;
                }
                SyncChange::Release => {
                    record::save(&self.store, domain, None).await?;
                    record = None;
                }
            }
        }
        Ok(())
    }

    /// Instantiates the template; when the answer was lost, the
    /// application may exist: read before trying again.
    async fn create_app(&self, tokens: &Tokens, domain: &str) -> Result<SyncApp, Error> {
        match self.api.instantiate(tokens, domain).await {
            Ok(app) => Ok(app),
            Err(e @ TenantError::Unavailable(_)) => {
                let apps = self.api.sync_apps(tokens).await?;
                match super::observe::find_app(domain, None, apps)? {
                    Some(app) => Ok(app),
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the job; when the answer was lost or someone made it
    /// meanwhile (409), the job of that template is read back.
    async fn create_job(&self, tokens: &Tokens, sp: &str, t: JobTemplate) -> Result<String, Error> {
        match self.api.create_job(tokens, sp, t).await {
            Ok(job) => Ok(job.id),
            Err(e @ (TenantError::Unavailable(_) | TenantError::Conflict(_))) => {
                let jobs = self.api.jobs(tokens, sp).await?;
                match jobs.into_iter().find(|j| j.template() == Some(t)) {
                    Some(job) => Ok(job.id),
                    None => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
