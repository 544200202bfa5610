//! DiagnosticsService gRPC impl: the request's bounds to the workflow, its
//! items to stream messages, the verbose-trace window's operation to the
//! audit record; the bundle is the workflow's (`diagnostics`).

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{BoxStream, caller};
use crate::transport::audit::AuditedOperation;
use crate::transport::convert::{operation, timestamp};
use crate::workflows::App;
use crate::workflows::diagnostics::{DiagnosticsItem, ExportRequest, Summary};
use provd_proto::v1;
use v1::export_diagnostics_response::Item;

#[derive(Clone)]
pub struct DiagnosticsApi {
    pub app: Arc<App>,
}

fn summary(s: Summary) -> v1::DiagnosticsSummary {
    let created_ms = s
        .created
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    v1::DiagnosticsSummary {
        files: s.files,
        missing: s.missing,
        redactions: s.redactions,
        size_bytes: s.size_bytes,
        sha256: s.sha256,
        created: Some(timestamp(created_ms)),
    }
}

#[tonic::async_trait]
impl v1::diagnostics_service_server::DiagnosticsService for DiagnosticsApi {
    type ExportDiagnosticsStream = BoxStream<v1::ExportDiagnosticsResponse>;

    async fn export_diagnostics(
        &self,
        request: Request<v1::ExportDiagnosticsRequest>,
    ) -> Result<Response<Self::ExportDiagnosticsStream>, Status> {
        let who = caller(&request);
        let r = request.into_inner();
        let asked = ExportRequest {
            event_log_hours: r.event_log_hours,
            max_bytes: r.max_bytes,
            verbose_trace_minutes: r.verbose_trace_minutes,
        };
        let export = self
            .app
            .diagnostics
            .export(asked, &who)
            .await
            .map_err(Status::from)?;
        let audited = export.operation.as_ref().map(|op| op.id.clone());
        let first = export.operation.map(|op| {
            Ok(v1::ExportDiagnosticsResponse {
                item: Some(Item::Operation(operation(&op))),
            })
        });
        let items = ReceiverStream::new(export.items).map(|item| {
            let item = item.map_err(Status::from)?;
            Ok(v1::ExportDiagnosticsResponse {
                item: Some(match item {
                    DiagnosticsItem::Progress {
                        path,
                        missing,
                        detail,
                    } => Item::Progress(v1::DiagnosticsProgress {
                        path,
                        missing_reason: missing.unwrap_or_default(),
                        detail,
                    }),
                    DiagnosticsItem::Chunk(bytes) => Item::Chunk(bytes),
                    DiagnosticsItem::Summary(s) => Item::Summary(summary(s)),
                }),
            })
        });
        let stream = tokio_stream::iter(first).chain(items);
        let mut response = Response::new(Box::pin(stream) as Self::ExportDiagnosticsStream);
        // The window's operation, for the audit record.
        if let Some(id) = audited {
            response.extensions_mut().insert(AuditedOperation(id));
        }
        Ok(response)
    }
}
