//! CloudSyncService gRPC impl: conversions only; decisions live in
//! `workflows::cloud_sync`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tonic::{Request, Response, Status};

use super::caller;
use super::started;
use crate::model::{JobCode, ResetScope, RunState, Schedule, SyncRun, SyncScope};
use crate::transport::convert::{operation, timestamp};
use crate::workflows::App;
use crate::workflows::cloud_sync::{
    CloudSyncInput, CloudSyncSpec, ControlAction, ControlCloudSyncRequest, DeletePreventionInput,
    DomainSync, JobView, SetCloudSyncRequest,
};
use provd_proto::v1;

#[derive(Clone)]
pub struct CloudSyncApi {
    pub app: Arc<App>,
}

/// A spec as the workflow takes it (validated there).
pub fn cloud_sync_input(s: v1::CloudSyncSpec) -> CloudSyncInput {
    CloudSyncInput {
        enabled: s.enabled,
        password_hash_sync: s.password_hash_sync,
        organizational_units: s.organizational_units,
        security_groups: s.security_groups,
        accidental_deletes: s.accidental_deletes.map(|d| DeletePreventionInput {
            disabled: d.disabled,
            threshold: d.threshold,
        }),
        notification_email: s.notification_email,
    }
}

fn ts(t: Option<SystemTime>) -> Option<pbjson_types::Timestamp> {
    let ms = t?.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_millis();
    Some(timestamp(i64::try_from(ms).ok()?))
}

fn run(r: &SyncRun) -> v1::CloudSyncRun {
    v1::CloudSyncRun {
        state: match r.state {
            RunState::Succeeded => v1::CloudSyncRunState::Succeeded,
            RunState::Failed => v1::CloudSyncRunState::Failed,
            RunState::EntryLevelErrors => v1::CloudSyncRunState::EntryLevelErrors,
            RunState::Other(_) => v1::CloudSyncRunState::Other,
        }
        .into(),
        count_imported: r.imported,
        count_exported: r.exported,
        count_escrowed: r.escrowed,
        time_began: ts(r.began),
        time_ended: ts(r.ended),
        error_code: r.error_code.clone(),
        error_message: r.error_message.clone(),
    }
}

fn job(view: &JobView) -> v1::CloudSyncJob {
    let j = &view.job;
    let (state, raw) = match &j.status.code {
        JobCode::NotConfigured => (v1::CloudSyncJobState::NotConfigured, "NotConfigured"),
        JobCode::NotRun => (v1::CloudSyncJobState::NotRun, "NotRun"),
        JobCode::Active => (v1::CloudSyncJobState::Active, "Active"),
        JobCode::Paused => (v1::CloudSyncJobState::Paused, "Paused"),
        JobCode::Quarantine => (v1::CloudSyncJobState::Quarantine, "Quarantine"),
        JobCode::Other(word) => (v1::CloudSyncJobState::Other, word.as_str()),
    };
    v1::CloudSyncJob {
        id: j.id.clone(),
        template_id: j.template_id.clone(),
        state: state.into(),
        raw_code: raw.to_owned(),
        schedule: match j.schedule {
            Schedule::Active => v1::CloudSyncSchedule::Active,
            Schedule::Disabled => v1::CloudSyncSchedule::Disabled,
            Schedule::Paused => v1::CloudSyncSchedule::Paused,
            Schedule::Other(_) => v1::CloudSyncSchedule::Other,
        }
        .into(),
        quarantine: j
            .status
            .quarantine
            .as_ref()
            .map(|q| v1::CloudSyncQuarantine {
                reason: q.reason.clone(),
                error_code: q.error_code.clone(),
                error_message: q.error_message.clone(),
                current_began: ts(q.current_began),
                next_attempt: ts(q.next_attempt),
                series_count: q.series_count,
                remedy: view.remedy.clone().unwrap_or_default(),
            }),
        last_run: j.status.last_execution.as_ref().map(run),
        last_successful_run: j.status.last_successful_execution.as_ref().map(run),
        synchronized_by_type: j
            .status
            .synchronized_by_type
            .iter()
            .cloned()
            .collect::<HashMap<_, _>>(),
    }
}

fn spec(s: &CloudSyncSpec) -> v1::CloudSyncSpec {
    let (ous, groups) = match &s.scope {
        SyncScope::AllUsers => (Vec::new(), Vec::new()),
        SyncScope::OrganizationalUnits(l) => (l.clone(), Vec::new()),
        SyncScope::SecurityGroups(l) => (Vec::new(), l.clone()),
    };
    v1::CloudSyncSpec {
        enabled: s.enabled,
        password_hash_sync: s.password_hash_sync,
        organizational_units: ous,
        security_groups: groups,
        accidental_deletes: Some(v1::AccidentalDeletePrevention {
            disabled: s.delete_threshold.is_none(),
            threshold: s.delete_threshold.unwrap_or(0),
        }),
        // A secret's value: never on the wire from provd.
        notification_email: String::new(),
    }
}

fn domain(d: &DomainSync) -> v1::CloudSyncDomain {
    v1::CloudSyncDomain {
        domain: d.domain.clone(),
        configured: d.configured,
        managed: d.managed,
        service_principal_id: d
            .app
            .as_ref()
            .map(|a| a.service_principal_id.clone())
            .unwrap_or_default(),
        app_id: d.app.as_ref().map(|a| a.app_id.clone()).unwrap_or_default(),
        observed: d.observed.as_ref().map(spec),
        notification_email_set: d.notification_email_set,
        secret_keys: d.secret_keys.clone(),
        jobs: d.jobs.iter().map(job).collect(),
        agents: d
            .agents
            .iter()
            .map(|a| v1::CloudSyncAgent {
                id: a.agent.id.clone(),
                machine_name: a.agent.machine_name.clone(),
                active: a.agent.active,
                this_host: a.this_host,
            })
            .collect(),
        read_error: d.read_error.clone().unwrap_or_default(),
    }
}

fn reset_scope(value: i32) -> Option<ResetScope> {
    match v1::ResetScope::try_from(value).ok()? {
        v1::ResetScope::Unspecified => None,
        v1::ResetScope::Escrows => Some(ResetScope::Escrows),
        v1::ResetScope::Watermark => Some(ResetScope::Watermark),
        v1::ResetScope::QuarantineState => Some(ResetScope::QuarantineState),
        v1::ResetScope::Full => Some(ResetScope::Full),
        v1::ResetScope::ForceDeletes => Some(ResetScope::ForceDeletes),
    }
}

impl CloudSyncApi {
    async fn control(
        &self,
        who: &crate::workflows::Caller,
        domain: String,
        action: ControlAction,
        request_id: String,
    ) -> Result<Option<v1::Operation>, Status> {
        let record = self
            .app
            .cloud_sync
            .control(
                who,
                ControlCloudSyncRequest {
                    domain,
                    action,
                    request_id,
                },
            )
            .await
            .map_err(Status::from)?;
        Ok(Some(operation(&record)))
    }
}

#[tonic::async_trait]
impl v1::cloud_sync_service_server::CloudSyncService for CloudSyncApi {
    async fn get_cloud_sync(
        &self,
        request: Request<v1::GetCloudSyncRequest>,
    ) -> Result<Response<v1::GetCloudSyncResponse>, Status> {
        let r = request.into_inner();
        let report = self
            .app
            .cloud_sync
            .get(&r.domain)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(v1::GetCloudSyncResponse {
            tenant_sync_enabled: report.tenant_sync_enabled,
            domains: report.domains.iter().map(domain).collect(),
            tenant_readable: report.tenant_readable,
            tenant_message: report.tenant_message,
        }))
    }

    async fn plan_cloud_sync(
        &self,
        request: Request<v1::PlanCloudSyncRequest>,
    ) -> Result<Response<v1::PlanCloudSyncResponse>, Status> {
        let r = request.into_inner();
        let changes = self
            .app
            .cloud_sync
            .plan(&r.domain, r.spec.map(cloud_sync_input))
            .await
            .map_err(Status::from)?;
        Ok(Response::new(v1::PlanCloudSyncResponse {
            changes: crate::transport::convert::planned(changes),
        }))
    }

    async fn set_cloud_sync(
        &self,
        request: Request<v1::SetCloudSyncRequest>,
    ) -> Result<Response<v1::SetCloudSyncResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let record = self
            .app
            .cloud_sync
            .set(
                &who,
                SetCloudSyncRequest {
                    domain: r.domain,
                    spec: r.spec.map(cloud_sync_input),
                    request_id: r.request_id,
                },
            )
            .await
            .map_err(Status::from)?;
        Ok(started(v1::SetCloudSyncResponse {
            operation: Some(operation(&record)),
        }))
    }

    async fn start_cloud_sync(
        &self,
        request: Request<v1::StartCloudSyncRequest>,
    ) -> Result<Response<v1::StartCloudSyncResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let operation = self
            .control(&who, r.domain, ControlAction::Start, r.request_id)
            .await?;
        Ok(started(v1::StartCloudSyncResponse { operation }))
    }

    async fn pause_cloud_sync(
        &self,
        request: Request<v1::PauseCloudSyncRequest>,
    ) -> Result<Response<v1::PauseCloudSyncResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let action = ControlAction::Pause { release: r.release };
        let operation = self.control(&who, r.domain, action, r.request_id).await?;
        Ok(started(v1::PauseCloudSyncResponse { operation }))
    }

    async fn restart_cloud_sync(
        &self,
        request: Request<v1::RestartCloudSyncRequest>,
    ) -> Result<Response<v1::RestartCloudSyncResponse>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let action = ControlAction::Restart {
            scopes: r.reset_scope.iter().map(|s| reset_scope(*s)).collect(),
        };
        let operation = self.control(&who, r.domain, action, r.request_id).await?;
        Ok(started(v1::RestartCloudSyncResponse { operation }))
    }
}
