//! HostService (`host.proto`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::model::HostFix;
use crate::transport::convert;
use crate::workflows::App;
use crate::workflows::host_fix::fix_name;
use provd_proto::v1;

use super::caller;
use super::started;

#[derive(Clone)]
pub struct HostApi {
    pub app: Arc<App>,
}

/// `None` for UNSPECIFIED and numbers the contract does not define: the
/// workflow names the field.
pub(super) fn fix_from_proto(value: i32) -> Option<HostFix> {
    match v1::HostFix::try_from(value).ok()? {
        v1::HostFix::Unspecified => None,
        v1::HostFix::Tls12 => Some(HostFix::Tls12),
        v1::HostFix::VaultServiceManual => Some(HostFix::VaultSvcManual),
        v1::HostFix::ServiceAccountManaged => Some(HostFix::ServiceAccountManaged),
        v1::HostFix::ExecutionPolicyRemoteSigned => Some(HostFix::ExecutionPolicyRemoteSigned),
    }
}

fn fix_to_proto(fix: HostFix) -> v1::HostFix {
    match fix {
        HostFix::Tls12 => v1::HostFix::Tls12,
        HostFix::VaultSvcManual => v1::HostFix::VaultServiceManual,
        HostFix::ServiceAccountManaged => v1::HostFix::ServiceAccountManaged,
        HostFix::ExecutionPolicyRemoteSigned => v1::HostFix::ExecutionPolicyRemoteSigned,
    }
}

#[tonic::async_trait]
impl v1::host_service_server::HostService for HostApi {
    async fn plan_host_remediation(
        &self,
        _request: Request<v1::PlanHostRemediationRequest>,
    ) -> Result<Response<v1::PlanHostRemediationResponse>, Status> {
        let planned = self.app.host.plan().await.map_err(Status::from)?;
        Ok(Response::new(v1::PlanHostRemediationResponse {
            fixes: planned
                .into_iter()
                .map(|p| v1::PlannedHostFix {
                    fix: fix_to_proto(p.fix) as i32,
                    step: fix_name(p.fix).into(),
                    changes: p.changes,
                    reboot_required: p.reboot_required,
                })
                .collect(),
        }))
    }

    async fn remediate_host(
        &self,
        request: Request<v1::RemediateHostRequest>,
    ) -> Result<Response<v1::RemediateHostResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let fixes = req.fixes.iter().map(|f| fix_from_proto(*f)).collect();
        let record = self
            .app
            .host
            .remediate(&who, &req.request_id, fixes)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::RemediateHostResponse {
            operation: Some(convert::operation(&record)),
        }))
    }
}
