//! AgentService (`agent.proto`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::transport::convert;
use crate::workflows::{App, agent};
use provd_proto::v1;

use super::{caller, known_or_unset};

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
        Ok(Response::new(v1::InstallResponse {
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
        Ok(Response::new(v1::UninstallResponse {
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
        Ok(Response::new(v1::SignInResponse {
            operation: Some(convert::operation(&record)),
        }))
    }
}
