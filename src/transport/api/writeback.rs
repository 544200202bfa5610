//! WritebackService gRPC impl: conversions only.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::caller;
use super::service_account::ace_change;
use super::started;
use crate::transport::convert::bind_credential;
use crate::transport::convert::{operation, timestamp};
use crate::workflows::App;
use crate::workflows::writeback::{
    MIN_AGENT_VERSION, SetWritebackRequest, TenantState, version_at_least,
};
use provd_proto::v1;

#[derive(Clone)]
pub struct WritebackApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl v1::writeback_service_server::WritebackService for WritebackApi {
    async fn set_password_writeback(
        &self,
        request: Request<v1::SetPasswordWritebackRequest>,
    ) -> Result<Response<v1::SetPasswordWritebackResponse>, Status> {
        let who = caller(&request);
        let mut r = request.into_inner();
        let req = SetWritebackRequest {
            enable: r.enable,
            domains: std::mem::take(&mut r.domains),
            credential: bind_credential(r.credential.take()).map_err(Status::from)?,
            request_id: std::mem::take(&mut r.request_id),
        };
        let record = self
            .app
            .writeback
            .set(&who, req)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::SetPasswordWritebackResponse {
            operation: Some(operation(&record)),
        }))
    }

    async fn get_password_writeback(
        &self,
        request: Request<v1::GetPasswordWritebackRequest>,
    ) -> Result<Response<v1::GetPasswordWritebackResponse>, Status> {
        let mut r = request.into_inner();
        let report = self
            .app
            .writeback
            .get(
                &r.domain,
                bind_credential(r.credential.take()).map_err(Status::from)?,
                r.user_sample_size,
            )
            .await
            .map_err(Status::from)?;
        let (tenant_state, tenant_message) = match &report.tenant {
            TenantState::Enabled => (v1::WritebackTenantState::Enabled, String::new()),
            TenantState::Disabled => (v1::WritebackTenantState::Disabled, String::new()),
            TenantState::Unknown(why) => (v1::WritebackTenantState::Unknown, why.clone()),
        };
        let version = report.agent_version.clone().unwrap_or_default();
        Ok(Response::new(v1::GetPasswordWritebackResponse {
            tenant_state: tenant_state.into(),
            tenant_message,
            domains: report
                .domains
                .iter()
                .map(|d| v1::PasswordWritebackDomain {
                    domain: d.domain.clone(),
                    read: d.read_error.is_none(),
                    read_error: d.read_error.clone().unwrap_or_default(),
                    aces_present: d.status.as_ref().is_some_and(|s| s.present),
                    missing_aces: d
                        .status
                        .as_ref()
                        .map(|s| s.missing.iter().map(ace_change).collect())
                        .unwrap_or_default(),
                    sampled_user_count: u32::try_from(d.sampled).unwrap_or(u32::MAX),
                    inheritance_blocked_count: u32::try_from(d.blocked).unwrap_or(u32::MAX),
                    inheritance_blocked_samples: d.blocked_samples.clone(),
                    min_password_age: Some(pbjson_types::Duration {
                        seconds: i64::try_from(d.min_password_age_secs).unwrap_or(i64::MAX),
                        nanos: 0,
                    }),
                    ready: d.ready(),
                    observe_time: (d.observe_time_ms > 0).then(|| timestamp(d.observe_time_ms)),
                })
                .collect(),
            agent_version_ok: !version.is_empty() && version_at_least(&version, MIN_AGENT_VERSION),
            agent_version: version,
            consistent: report.consistent,
            message: report.message,
        }))
    }
}
