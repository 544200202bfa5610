//! OperationsService (`operations.proto`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::transport::convert;
use crate::workflows::App;
use crate::workflows::operations::{ListFilter, WatchItem};
use provd_proto::v1;

use super::{BoxStream, caller, known_or_unset, required_id, started};

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
        let record = self.app.operations.get(&id).await.map_err(Status::from)?;
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
        let filter = ListFilter {
            state: known_or_unset("state", req.state, convert::state_from_proto)?,
            kind: known_or_unset("kind", req.kind, convert::kind_from_proto)?,
            initiator: req.initiator,
            started_after: req.started_after.map(|t| (t.seconds, t.nanos)),
            started_before: req.started_before.map(|t| (t.seconds, t.nanos)),
        };
        let page = self
            .app
            .operations
            .list(page_size, &req.page_token, filter)
            .await
            .map_err(Status::from)?;
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
            .map_err(Status::from)?;
        let stream = tokio_stream::StreamExt::map(items, |item| match item {
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
            .map_err(Status::from)?;
        Ok(started(v1::CancelOperationResponse {
            operation: Some(convert::operation(&record)),
        }))
    }
}
