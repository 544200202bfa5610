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
mod directory;
mod domain_controller;
mod host;
mod operations;
mod service_account;
mod verify;
mod writeback;

pub use agent::AgentApi;
pub use cloud_sync::CloudSyncApi;
pub use configuration::ConfigurationApi;
pub use directory::DirectoryApi;
pub use domain_controller::DomainControllerApi;
pub use host::HostApi;
pub use operations::OperationsApi;
pub use service_account::ServiceAccountApi;
pub use verify::VerifyApi;
pub use writeback::WritebackApi;

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Status};

use crate::transport::server::Peer;
use crate::workflows::{Caller, Error, validate};

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
