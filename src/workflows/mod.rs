//! The domain: one module per capability plus the durable operations engine.
//! Workflows decide; they see neither tonic nor ldap3 types, only backend
//! traits and plain Rust requests.

pub mod agent;
pub mod apply;
pub mod dc;
pub mod directory;
pub mod gmsa;
pub mod operations;
pub mod permissions;
pub mod tenant;
pub mod validate;
pub mod verify;
pub mod writeback;

use std::sync::Arc;

use crate::backends::directory::Directory;
use crate::backends::host::{Cloud, Host};
use crate::backends::store::{Store, StoreError};
use crate::backends::tenant::Tenant;

pub use operations::Operations;

/// A bad field in a request: which field (proto field path) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Every way a workflow call can fail. The transport maps each variant to a
/// gRPC code and HTTP status in one exhaustive match (`transport::status`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; each violation names its field.
    #[error("invalid argument: {}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Another mutating operation holds the daemon's single writer slot.
    #[error("operation {id} ({kind}) is running; wait for it or cancel it, then retry")]
    OperationRunning { id: String, kind: String },
    /// The system is not in a state that allows the request; `remedy` says
    /// what the operator can do.
    #[error("{message}")]
    FailedPrecondition {
        /// Short machine-readable category, e.g. "HOST_UNAVAILABLE".
        reason: &'static str,
        /// What the precondition is about, e.g. "operations/<id>"; may be empty.
        subject: String,
        message: String,
    },
    /// A compare-and-set lost (e.g. a stale etag).
    #[error("{0}")]
    Aborted(String),
    /// Credentials were rejected by the system they were meant for.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credentials are valid but lack a right.
    #[error("{0}")]
    PermissionDenied(String),
    /// A dependency did not answer; a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// The capability is not built yet.
    #[error("{0} is not implemented yet")]
    Unimplemented(&'static str),
    /// The operation was cancelled by CancelOperation.
    #[error("cancelled")]
    Cancelled,
    /// A bug or an unexpected local failure (I/O on the state directory).
    #[error("internal error: {0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn describe_violations(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The canonical code families of [`Error`]; their names are the gRPC code
/// names, which is also what operations record in `OperationError.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    Aborted,
    Unauthenticated,
    PermissionDenied,
    Unavailable,
    Unimplemented,
    Cancelled,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::NotFound => "NOT_FOUND",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Unavailable => "UNAVAILABLE",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Cancelled => "CANCELLED",
            Self::Internal => "INTERNAL",
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::OperationRunning { .. } | Self::FailedPrecondition { .. } => {
                ErrorKind::FailedPrecondition
            }
            Self::Aborted(_) => ErrorKind::Aborted,
            Self::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Self::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Unimplemented(_) => ErrorKind::Unimplemented,
            Self::Cancelled => ErrorKind::Cancelled,
            Self::Internal(_) => ErrorKind::Internal,
            Self::Store(StoreError::NotFound(_)) => ErrorKind::NotFound,
            Self::Store(_) => ErrorKind::Internal,
        }
    }

    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

/// Who is calling: from the verified client certificate.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub name: String,
}

/// The domain facade the transport calls: one per daemon.
pub struct App {
    pub operations: Arc<Operations>,
    pub agent: Arc<agent::AgentWorkflows>,
    pub dcs: Arc<dc::DcWorkflows>,
    pub directories: Arc<directory::DirectoryWorkflows>,
    pub gmsa: Arc<gmsa::GmsaWorkflows>,
    pub writeback: Arc<writeback::WritebackWorkflows>,
    pub tenant: Arc<tenant::TenantWorkflows>,
    pub verify: verify::VerifyWorkflows,
    pub apply: Arc<apply::ApplyWorkflows>,
}

/// The backends a daemon runs with; chosen by `lib.rs` (the only place that
/// names concrete backends).
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub host: Arc<dyn Host>,
    pub directory: Arc<dyn Directory>,
    pub tenant: Arc<dyn Tenant>,
}

/// Settings of the tenant side that workflows act on.
#[derive(Debug, Clone, Default)]
pub struct TenantSettings {
    /// The cloud the tenant client is configured for.
    pub cloud: Cloud,
    /// PEM the registered agent trusts for the agent service (lab CA).
    pub service_ca_pem: Option<String>,
}

/// Filesystem locations workflows may write to.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Where fetched packages are staged before they are verified and run.
    pub staging_dir: std::path::PathBuf,
}

impl App {
    /// Builds the workflows and recovers operations a previous run left
    /// unfinished (they become INTERRUPTED).
    pub async fn start(
        backends: Backends,
        paths: Paths,
        tenant_settings: TenantSettings,
    ) -> Result<Arc<App>, Error> {
        let operations = Operations::recover(backends.store.clone()).await?;
        let tenant = Arc::new(tenant::TenantWorkflows::new(
            operations.clone(),
            backends.tenant.clone(),
            backends.store.clone(),
            backends.host.clone(),
            tenant_settings.service_ca_pem,
        ));
        let agent = Arc::new(agent::AgentWorkflows::new(
            operations.clone(),
            backends.host.clone(),
            paths,
            tenant.clone(),
            tenant_settings.cloud,
        ));
        let dcs = Arc::new(dc::DcWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            backends.directory.clone(),
        ));
        let directories = Arc::new(directory::DirectoryWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            dcs.clone(),
        ));
        let gmsa = Arc::new(gmsa::GmsaWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            dcs.clone(),
            backends.host.clone(),
        ));
        let writeback = Arc::new(writeback::WritebackWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            dcs.clone(),
            backends.host.clone(),
            tenant.clone(),
        ));
        let verify = verify::VerifyWorkflows::new(
            backends.store.clone(),
            dcs.clone(),
            backends.host.clone(),
            tenant.clone(),
            gmsa.clone(),
            writeback.clone(),
        );
        let apply = Arc::new(apply::ApplyWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            backends.host.clone(),
            tenant.clone(),
            agent.clone(),
            directories.clone(),
            dcs.clone(),
            gmsa.clone(),
            writeback.clone(),
        ));
        Ok(Arc::new(App {
            apply,
            operations,
            agent,
            dcs,
            directories,
            gmsa,
            writeback,
            tenant,
            verify,
        }))
    }
}
