//! `FakeTenant`'s cloud sync configuration API ([`CloudSyncApi`]), in
//! memory, following Graph's documented behaviour: instantiate makes an
//! application and its service principal; jobs start Paused with schedule
//! Disabled (the how-to's example); a secrets PUT replaces all; start clears
//! a quarantine. Jobs move only when a test says so
//! ([`FakeTenant::run_sync_cycle`], [`FakeTenant::quarantine_sync`]).

use std::collections::BTreeMap;

use crate::backends::tenant::{CloudSyncApi, Organization, SyncCall, TenantError, Tokens};
use crate::model::{
    JobCode, JobSchema, JobStatus, JobTemplate, Quarantine, ResetScope, RunState, SECRET_KEYS,
    Schedule, SecretsRead, SyncApp, SyncJob, SyncRun, SyncScope, SyncSecrets,
};

use super::{AgentGroup, FakeTenant, ProvisioningAgent, TenantFault};

#[derive(Default)]
pub(super) struct SyncState {
    sync_enabled: Option<bool>,
    apps: Vec<SyncApp>,
    jobs: BTreeMap<String, Vec<SyncJob>>,
    secrets: BTreeMap<String, SyncSecrets>,
    schemas: BTreeMap<String, JobSchema>,
    calls: Vec<SyncCall>,
    faults: BTreeMap<SyncCall, TenantFault>,
    masked: bool,
    serial: u32,
}

fn new_status() -> JobStatus {
    JobStatus {
        code: JobCode::Paused,
        quarantine: None,
        last_execution: None,
        last_successful_execution: None,
        last_execution_with_exports: None,
        synchronized_by_type: Vec::new(),
        escrows_pruned: false,
        successive_failures: 0,
    }
}

impl FakeTenant {
    /// Every cloud sync call made, in order.
    pub fn sync_calls(&self) -> Vec<SyncCall> {
        self.lock().sync.calls.clone()
    }

    /// `call` fails with `fault` until [`FakeTenant::clear_faults`].
    pub fn fail_sync(&self, call: SyncCall, fault: TenantFault) {
        self.lock().sync.faults.insert(call, fault);
    }

    /// Secrets reads answer `*` for every value, as Graph may.
    pub fn mask_secrets(&self, masked: bool) {
        self.lock().sync.masked = masked;
    }

    /// The jobs of the application named `display_name`.
    pub fn sync_jobs(&self, display_name: &str) -> Vec<SyncJob> {
        let s = self.lock();
        s.sync
            .apps
            .iter()
            .find(|a| a.display_name.eq_ignore_ascii_case(display_name))
            .and_then(|a| s.sync.jobs.get(&a.service_principal_id).cloned())
            .unwrap_or_default()
    }

    /// An application made outside provd (the admin center).
    pub fn add_sync_app(&self, display_name: &str) -> SyncApp {
        self.lock().sync.instantiate(display_name)
    }

    /// One sync cycle: every running job that is not quarantined imports
    /// and exports `users`.
    pub fn run_sync_cycle(&self, users: i64) {
        let mut s = self.lock();
        for job in s.sync.jobs.values_mut().flatten() {
            if job.schedule == Schedule::Active && job.status.code != JobCode::Quarantine {
                let run = SyncRun {
                    state: RunState::Succeeded,
                    imported: users,
                    exported: users,
                    escrowed: 0,
                    began: Some(std::time::SystemTime::now()),
                    ended: Some(std::time::SystemTime::now()),
                    error_code: String::new(),
                    error_message: String::new(),
                };
                job.status.code = JobCode::Active;
                job.status.last_execution = Some(run.clone());
                job.status.last_successful_execution = Some(run.clone());
                job.status.last_execution_with_exports = Some(run);
                job.status.synchronized_by_type = vec![("user".into(), users)];
            }
        }
    }

    /// Quarantines every running job with `code` (e.g.
    /// `HybridIdentityServiceNoActiveAgents`).
    pub fn quarantine_sync(&self, code: &str) {
        let mut s = self.lock();
        for job in s.sync.jobs.values_mut().flatten() {
            if job.schedule == Schedule::Active {
                job.status.code = JobCode::Quarantine;
                job.status.quarantine = Some(Quarantine {
                    reason: "EncounteredQuarantineException".into(),
                    error_code: code.into(),
                    error_message: format!("{code} (fake)"),
                    current_began: Some(std::time::SystemTime::now()),
                    next_attempt: None,
                    series_count: 1,
                });
            }
        }
    }

    /// `change` on the tenant's agent `id`; NotFound when there is none.
    fn with_agent(
        &self,
        id: &str,
        change: impl FnOnce(&mut ProvisioningAgent) -> Result<(), TenantError>,
    ) -> Result<(), TenantError> {
        let mut s = self.lock();
        let agent = s
            .agents
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| TenantError::NotFound(format!("agent {id}")))?;
        change(agent)
    }

    /// Records the call, then fails it if a fault is set.
    fn sync_call(&self, call: SyncCall) -> Result<(), TenantError> {
        let mut s = self.lock();
        s.sync.calls.push(call);
        let Some(fault) = s.sync.faults.get(&call).copied() else {
            return Ok(());
        };
        Err(match fault {
            TenantFault::Throttled => TenantError::Unavailable(format!(
                "{} still failing after 6 attempts: HTTP 429",
                call.request()
            )),
            TenantFault::Forbidden => {
                TenantError::Forbidden(call.forbidden("Authorization_RequestDenied"))
            }
            _ => TenantError::Unavailable(format!(
                "{} still failing after 6 attempts: HTTP 503",
                call.request()
            )),
        })
    }
}

impl SyncState {
    pub(super) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    fn instantiate(&mut self, display_name: &str) -> SyncApp {
        self.serial += 1;
        let app = SyncApp {
            service_principal_id: format!("sp-{:04}", self.serial),
            app_id: format!("app-{:04}", self.serial),
            display_name: display_name.to_owned(),
        };
        self.apps.push(app.clone());
        app
    }

    fn jobs_of(&mut self, sp: &str) -> Result<&mut Vec<SyncJob>, TenantError> {
        if !self.apps.iter().any(|a| a.service_principal_id == sp) {
            return Err(TenantError::NotFound(format!("service principal {sp}")));
        }
        Ok(self.jobs.entry(sp.to_owned()).or_default())
    }

    fn job(&mut self, sp: &str, job: &str) -> Result<&mut SyncJob, TenantError> {
        self.jobs_of(sp)?
            .iter_mut()
            .find(|j| j.id == job)
            .ok_or_else(|| TenantError::NotFound(format!("job {job}")))
    }
}

#[async_trait::async_trait]
impl CloudSyncApi for FakeTenant {
    async fn organization(&self, _: &Tokens) -> Result<Organization, TenantError> {
        self.sync_call(SyncCall::ReadOrganization)?;
        Ok(Organization {
            id: "org-fake".into(),
            sync_enabled: self.lock().sync.sync_enabled,
        })
    }

    async fn enable_sync(&self, _: &Tokens, _org: &str) -> Result<(), TenantError> {
        self.sync_call(SyncCall::EnableSync)?;
        self.lock().sync.sync_enabled = Some(true);
        Ok(())
    }

    async fn sync_apps(&self, _: &Tokens) -> Result<Vec<SyncApp>, TenantError> {
        self.sync_call(SyncCall::ListApps)?;
        Ok(self.lock().sync.apps.clone())
    }

    async fn instantiate(&self, _: &Tokens, display_name: &str) -> Result<SyncApp, TenantError> {
        self.sync_call(SyncCall::Instantiate)?;
        Ok(self.lock().sync.instantiate(display_name))
    }

    async fn jobs(&self, _: &Tokens, sp: &str) -> Result<Vec<SyncJob>, TenantError> {
        self.sync_call(SyncCall::ListJobs)?;
        Ok(self.lock().sync.jobs_of(sp)?.clone())
    }

    async fn create_job(
        &self,
        _: &Tokens,
        sp: &str,
        template: JobTemplate,
    ) -> Result<SyncJob, TenantError> {
        self.sync_call(SyncCall::CreateJob)?;
        let mut s = self.lock();
        let serial = s.sync.serial;
        let jobs = s.sync.jobs_of(sp)?;
        if jobs.iter().any(|j| j.template() == Some(template)) {
            return Err(TenantError::Conflict(format!(
                "a {} job exists",
                template.id()
            )));
        }
        let job = SyncJob {
            id: format!("{}.{sp}{serial:04}", template.id()),
            template_id: template.id().into(),
            schedule: Schedule::Disabled,
            status: new_status(),
        };
        jobs.push(job.clone());
        s.sync.schemas.insert(
            job.id.clone(),
            JobSchema {
                scope: SyncScope::AllUsers,
                password_hash_mapping: false,
            },
        );
        Ok(job)
    }

    async fn start_job(&self, _: &Tokens, sp: &str, job: &str) -> Result<(), TenantError> {
        self.sync_call(SyncCall::StartJob)?;
        let mut s = self.lock();
        let job = s.sync.job(sp, job)?;
        job.schedule = Schedule::Active;
        job.status.code = JobCode::NotRun;
        job.status.quarantine = None;
        Ok(())
    }

    async fn pause_job(&self, _: &Tokens, sp: &str, job: &str) -> Result<(), TenantError> {
        self.sync_call(SyncCall::PauseJob)?;
        let mut s = self.lock();
        let job = s.sync.job(sp, job)?;
        job.schedule = Schedule::Paused;
        job.status.code = JobCode::Paused;
        Ok(())
    }

    async fn restart_job(
        &self,
        _: &Tokens,
        sp: &str,
        job: &str,
        scopes: &[ResetScope],
    ) -> Result<(), TenantError> {
        self.sync_call(SyncCall::RestartJob)?;
        let mut s = self.lock();
        let job = s.sync.job(sp, job)?;
        if scopes
            .iter()
            .any(|r| matches!(r, ResetScope::QuarantineState | ResetScope::Full))
        {
            job.status.quarantine = None;
            job.status.code = JobCode::NotRun;
        }
        Ok(())
    }

    async fn secrets(&self, _: &Tokens, sp: &str) -> Result<SecretsRead, TenantError> {
        self.sync_call(SyncCall::ReadSecrets)?;
        let s = self.lock();
        let values = s.sync.secrets.get(sp).cloned();
        Ok(SecretsRead {
            keys: match &values {
                Some(_) => SECRET_KEYS.iter().map(|k| (*k).to_owned()).collect(),
                None => Vec::new(),
            },
            values: values.filter(|_| !s.sync.masked),
        })
    }

    async fn put_secrets(
        &self,
        _: &Tokens,
        sp: &str,
        secrets: &SyncSecrets,
    ) -> Result<(), TenantError> {
        self.sync_call(SyncCall::PutSecrets)?;
        let mut s = self.lock();
        s.sync.jobs_of(sp)?;
        s.sync.secrets.insert(sp.to_owned(), secrets.clone());
        Ok(())
    }

    async fn schema(&self, _: &Tokens, sp: &str, job: &str) -> Result<JobSchema, TenantError> {
        self.sync_call(SyncCall::ReadSchema)?;
        let mut s = self.lock();
        s.sync.job(sp, job)?;
        s.sync
            .schemas
            .get(job)
            .cloned()
            .ok_or_else(|| TenantError::NotFound(format!("schema of {job}")))
    }

    async fn set_schema(
        &self,
        _: &Tokens,
        sp: &str,
        job: &str,
        scope: &SyncScope,
        password_hash_mapping: bool,
    ) -> Result<(), TenantError> {
        self.sync_call(SyncCall::PutSchema)?;
        let mut s = self.lock();
        s.sync.job(sp, job)?;
        s.sync.schemas.insert(
            job.to_owned(),
            JobSchema {
                scope: scope.clone(),
                password_hash_mapping,
            },
        );
        Ok(())
    }

    async fn assign_agent(&self, _: &Tokens, agent: &str, group: &str) -> Result<(), TenantError> {
        self.sync_call(SyncCall::AssignAgent)?;
        self.with_agent(agent, |a| {
            if a.groups.iter().any(|g| g.id == group) {
                return Err(TenantError::Protocol(format!(
                    "HTTP 400: already in {group}"
                )));
            }
            a.groups.push(AgentGroup {
                id: group.to_owned(),
                display_name: group.to_owned(),
            });
            Ok(())
        })
    }

    async fn remove_agent(&self, _: &Tokens, agent: &str, group: &str) -> Result<(), TenantError> {
        self.sync_call(SyncCall::RemoveAgent)?;
        self.with_agent(agent, |a| {
            a.groups.retain(|g| g.id != group);
            Ok(())
        })
    }

    async fn delete_app(&self, _: &Tokens, sp: &str) -> Result<(), TenantError> {
        self.sync_call(SyncCall::DeleteApp)?;
        let mut s = self.lock();
        s.sync.apps.retain(|a| a.service_principal_id != sp);
        s.sync.secrets.remove(sp);
        for job in s.sync.jobs.remove(sp).unwrap_or_default() {
            s.sync.schemas.remove(&job.id);
        }
        Ok(())
    }
}
