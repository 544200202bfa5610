//! The gRPC services: each method converts its request, calls a workflow,
//! and converts the answer or error back. The HTTP/JSON routes call these
//! same methods, so both transports give the same answers.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert;
use super::server::Peer;
use super::status::to_status;
use crate::workflows::operations::WatchItem;
use crate::workflows::{App, Caller, Error, agent, validate};
use provd_proto::v1;

pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub fn caller<T>(request: &Request<T>) -> Caller {
    Caller {
        name: request
            .extensions()
            .get::<Peer>()
            .map(|p| p.name.clone())
            .unwrap_or_default(),
    }
}

fn status(err: Error) -> Status {
    to_status(&err)
}

fn required_id(field: &str, value: &str) -> Result<String, Status> {
    validate::operation_id(field, value).map_err(|v| status(Error::InvalidArgument(vec![v])))
}

#[derive(Clone)]
pub struct OperationsApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl v1::operations_service_server::OperationsService for OperationsApi {
    async fn get_operation(
        &self,
        request: Request<v1::GetOperationRequest>,
    ) -> Result<Response<v1::GetOperationResponse>, Status> {
        let id = required_id("id", &request.get_ref().id)?;
        let record = self.app.operations.get(&id).await.map_err(status)?;
        Ok(Response::new(v1::GetOperationResponse {
            operation: Some(convert::operation(&record)),
        }))
    }

    async fn list_operations(
        &self,
        request: Request<v1::ListOperationsRequest>,
    ) -> Result<Response<v1::ListOperationsResponse>, Status> {
        let req = request.into_inner();
        let page_size = usize::try_from(req.page_size).unwrap_or(usize::MAX);
        let page = self
            .app
            .operations
            .list(
                page_size,
                &req.page_token,
                convert::state_from_proto(req.state),
                convert::kind_from_proto(req.kind),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(v1::ListOperationsResponse {
            operations: page.operations.iter().map(convert::operation).collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    type WatchOperationStream = BoxStream<v1::WatchOperationResponse>;

    async fn watch_operation(
        &self,
        request: Request<v1::WatchOperationRequest>,
    ) -> Result<Response<Self::WatchOperationStream>, Status> {
        let id = required_id("id", &request.get_ref().id)?;
        let after = request.get_ref().after_sequence;
        let items = self
            .app
            .operations
            .watch(&id, after)
            .await
            .map_err(status)?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(items);
        let stream = tokio_stream::StreamExt::map(stream, |item| match item {
            WatchItem::Event(event) => Ok(v1::WatchOperationResponse {
                item: Some(v1::watch_operation_response::Item::Event(convert::event(
                    &event,
                ))),
            }),
            WatchItem::Finished(record) => Ok(v1::WatchOperationResponse {
                item: Some(v1::watch_operation_response::Item::Operation(
                    convert::operation(&record),
                )),
            }),
            WatchItem::Failed(message) => Err(Status::internal(message)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn cancel_operation(
        &self,
        request: Request<v1::CancelOperationRequest>,
    ) -> Result<Response<v1::CancelOperationResponse>, Status> {
        let id = required_id("id", &request.get_ref().id)?;
        let by = caller(&request);
        let record = self
            .app
            .operations
            .cancel(&id, &by.name)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::CancelOperationResponse {
            operation: Some(convert::operation(&record)),
        }))
    }
}

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
            cloud: convert::cloud_from_proto(req.cloud),
            request_id: req.request_id,
            skip_registration: req.skip_registration,
        };
        let record = self
            .app
            .agent
            .install(&who, install)
            .await
            .map_err(status)?;
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
            .map_err(status)?;
        Ok(Response::new(v1::UninstallResponse {
            operation: Some(convert::operation(&record)),
        }))
    }

    async fn get_agent(
        &self,
        _request: Request<v1::GetAgentRequest>,
    ) -> Result<Response<v1::GetAgentResponse>, Status> {
        let report = self.app.agent.get_agent().await.map_err(status)?;
        let tenant = self.app.agent.tenant_status().await.map_err(status)?;
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
            .map_err(status)?;
        Ok(Response::new(v1::SignInResponse {
            operation: Some(convert::operation(&record)),
        }))
    }
}
