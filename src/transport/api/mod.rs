//! The gRPC services, one file per proto service (`proto/provd/v1/<name>.proto`
//! ↔ `<name>.rs`): each method converts its request, calls a workflow, and
//! converts the answer or error back. The HTTP/JSON routes call these same
//! methods, so both transports give the same answers.
//!
//! Architecture invariant: nothing here decides. Validation that needs no
//! state is the workflows' (`workflows::validate`); errors become statuses
//! only through `impl From<workflows::Error> for Status` (`status.rs`).

mod agent;
mod cloud_sync;
mod configuration;
mod diagnostics;
mod directory;
mod domain_controller;
mod host;
mod operations;
mod package;
mod service_account;
mod status;
mod verify;
mod writeback;

pub use agent::AgentApi;
pub use cloud_sync::CloudSyncApi;
pub use configuration::ConfigurationApi;
pub use diagnostics::DiagnosticsApi;
pub use directory::DirectoryApi;
pub use domain_controller::DomainControllerApi;
pub use host::HostApi;
pub use operations::OperationsApi;
pub use package::PackageApi;
pub use service_account::ServiceAccountApi;
pub use status::StatusApi;
pub use verify::VerifyApi;
pub use writeback::WritebackApi;

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::transport::audit::AuditedOperation;
use crate::transport::server::Peer;
use crate::workflows::{Caller, Error, validate};
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

/// The answer of a mutating call: one operation, started or named.
pub trait AnswersOperation {
    fn operation(&self) -> Option<&v1::Operation>;
}

macro_rules! answers_operation {
    ($($response:ident),* $(,)?) => {
        $(impl AnswersOperation for v1::$response {
            fn operation(&self) -> Option<&v1::Operation> {
                self.operation.as_ref()
            }
        })*
    };
}

answers_operation!(
    CancelOperationResponse,
    InstallResponse,
    UninstallResponse,
    DecommissionAgentResponse,
    RepairAgentResponse,
    SignInResponse,
    RemediateHostResponse,
    CreateGmsaResponse,
    UseCustomGmsaResponse,
    GrantPermissionsResponse,
    AddDirectoryResponse,
    RemoveDirectoryResponse,
    SetPriorityResponse,
    ApplyConfigurationResponse,
    SetPasswordWritebackResponse,
    SetCloudSyncResponse,
    StartCloudSyncResponse,
    PauseCloudSyncResponse,
    RestartCloudSyncResponse,
);

/// `message` as the answer of a mutating call, the operation's id in its
/// extensions for the audit record (`transport::audit`).
fn started<T: AnswersOperation>(message: T) -> Response<T> {
    let id = message.operation().map(|op| op.id.clone());
    let mut response = Response::new(message);
    if let Some(id) = id {
        response.extensions_mut().insert(AuditedOperation(id));
    }
    response
}

fn required_id(field: &str, value: &str) -> Result<String, Status> {
    validate::operation_id(field, value).map_err(|v| Status::from(Error::InvalidArgument(vec![v])))
}

/// An optional enum field: 0 (unspecified) is unset; a number the contract
/// does not define is the caller's mistake, not "unset".
fn known_or_unset<T>(
    field: &str,
    value: i32,
    parse: fn(i32) -> Option<T>,
) -> Result<Option<T>, Status> {
    if value == 0 {
        return Ok(None);
    }
    parse(value).map(Some).ok_or_else(|| {
        Status::from(Error::invalid(
            field,
            format!("{value} is not a value of the enum"),
        ))
    })
}
