//! AgentService (`agent.proto`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::transport::convert;
use crate::workflows::tenant::RepairRequest;
use crate::workflows::{App, agent, decommission};
use provd_proto::v1;

use super::{caller, known_or_unset, started};

#[derive(Clone)]
pub struct AgentApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl v1::agent_service_server::AgentService for AgentApi {
    async fn install(
        &self,
        request: Request<v1::InstallRequest>,
    ) -> Result<Response<v1::InstallResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let install = agent::InstallRequest {
            source: req.source,
            sha256: req.sha256,
            accept_license: req.accept_license,
            cloud: known_or_unset("cloud", req.cloud, convert::cloud_from_proto)?,
            request_id: req.request_id,
            skip_registration: req.skip_registration,
        };
        let record = self
            .app
            .agent
            .install(&who, install)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::InstallResponse {
            operation: Some(convert::operation(&record)),
        }))
    }

    async fn uninstall(
        &self,
        request: Request<v1::UninstallRequest>,
    ) -> Result<Response<v1::UninstallResponse>, Status> {
        let who = caller(&request);
        let record = self
            .app
            .agent
            .uninstall(&who, &request.get_ref().request_id)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::UninstallResponse {
            operation: Some(convert::operation(&record)),
        }))
    }

    async fn get_agent(
        &self,
        _request: Request<v1::GetAgentRequest>,
    ) -> Result<Response<v1::GetAgentResponse>, Status> {
        let report = self.app.agent.get_agent().await.map_err(Status::from)?;
        let tenant = self.app.agent.tenant_status().await.map_err(Status::from)?;
        let tenant = convert::tenant_session(self.app.agent.tenant_name(), tenant);
        Ok(Response::new(convert::agent_report(report, tenant)))
    }

    async fn plan_decommission(
        &self,
        request: Request<v1::PlanDecommissionRequest>,
    ) -> Result<Response<v1::PlanDecommissionResponse>, Status> {
        let req = request.into_inner();
        let plan = decommission::DecommissionRequest {
            credential: convert::bind_credential(req.credential).map_err(Status::from)?,
            keep_gmsa: req.keep_gmsa,
            delete_gmsa: req.delete_gmsa,
            confirm_gmsa_name: req.confirm_gmsa_name,
            delete_cloud_sync: req.delete_cloud_sync,
            confirm_cloud_sync_domain: req.confirm_cloud_sync_domain,
            request_id: String::new(),
        };
        let steps = self
            .app
            .decommission
            .plan(plan)
            .await
            .map_err(Status::from)?;
        Ok(Response::new(v1::PlanDecommissionResponse {
            steps: convert::planned(steps),
        }))
    }

    async fn decommission_agent(
        &self,
        request: Request<v1::DecommissionAgentRequest>,
    ) -> Result<Response<v1::DecommissionAgentResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let decommission = decommission::DecommissionRequest {
            credential: convert::bind_credential(req.credential).map_err(Status::from)?,
            keep_gmsa: req.keep_gmsa,
            delete_gmsa: req.delete_gmsa,
            confirm_gmsa_name: req.confirm_gmsa_name,
            delete_cloud_sync: req.delete_cloud_sync,
            confirm_cloud_sync_domain: req.confirm_cloud_sync_domain,
            request_id: req.request_id,
        };
        let record = self
            .app
            .decommission
            .decommission(&who, decommission)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::DecommissionAgentResponse {
            operation: Some(convert::operation(&record)),
        }))
    }

    async fn repair_agent(
        &self,
        request: Request<v1::RepairAgentRequest>,
    ) -> Result<Response<v1::RepairAgentResponse>, Status> {
        let who = caller(&request);
        let req = request.into_inner();
        let repair = RepairRequest {
            request_id: req.request_id,
            force: req.force,
        };
        let record = self
            .app
            .agent
            .repair(&who, repair)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::RepairAgentResponse {
            operation: Some(convert::operation(&record)),
        }))
    }

    async fn sign_in(
        &self,
        request: Request<v1::SignInRequest>,
    ) -> Result<Response<v1::SignInResponse>, Status> {
        let who = caller(&request);
        let record = self
            .app
            .agent
            .sign_in(&who, &request.get_ref().request_id)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::SignInResponse {
            operation: Some(convert::operation(&record)),
        }))
    }
}
