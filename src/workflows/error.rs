//! The layer's one error type, its code families, and the conversion of
//! directory failures into it.

use crate::backends::directory::DirectoryError;
use crate::backends::store::StoreError;

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

/// Every directory call maps its failure the same way, so `?` suffices.
impl From<DirectoryError> for Error {
    fn from(err: DirectoryError) -> Self {
        match err {
            DirectoryError::InvalidCredentials { .. } => Error::Unauthenticated(err.to_string()),
            DirectoryError::InsufficientAccess { .. } => Error::PermissionDenied(err.to_string()),
            DirectoryError::NoSuchObject { .. } => Error::NotFound(err.to_string()),
            DirectoryError::Unreachable { .. }
            | DirectoryError::AllFailed(_)
            | DirectoryError::Dns(_) => Error::Unavailable(err.to_string()),
            DirectoryError::Ldap { .. } => Error::Internal(err.to_string()),
            DirectoryError::Config(_) => Error::FailedPrecondition {
                reason: "DIRECTORY_CONFIG",
                subject: "directory".into(),
                message: err.to_string(),
            },
        }
    }
}
