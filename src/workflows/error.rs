//! The layer's one error type, its code families, and the conversion of
//! each backend's failures into it.

use crate::backends::agent_config::AgentConfigError;
use crate::backends::directory::DirectoryError;
use crate::backends::host::HostError;
use crate::backends::store::StoreError;
use crate::backends::tenant::TenantError;

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

/// Why a request failed with FAILED_PRECONDITION. `as_str` is the stable
/// string clients match (`PreconditionFailure.Violation.type`); the contract
/// documents each as `provd.v1.PreconditionReason` (`common.proto`), and a
/// transport test keeps the two lists equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreconditionReason {
    OperationRunning,
    OperationFinished,
    HostUnavailable,
    PackageNotFound,
    InstallerFailed,
    ServiceMissing,
    AgentTooOld,
    TenantNotConfigured,
    DeviceCodeExpired,
    NotRegistered,
    NoDirectory,
    DirectoryConfig,
    DirectoryPrerequisite,
    WrongDomain,
    NoGmsaClass,
    NoKdsRootKey,
    GmsaConflict,
    GmsaInvalid,
    BadGmsaMembership,
    NoServiceAccount,
    PackageTooLarge,
    DirectoryRejected,
    AgentModuleMissing,
    AgentExecutionPolicy,
    AgentModuleConflict,
    AgentServiceNotManaged,
    DaclFull,
    CloudSyncDomainNotPublished,
    CloudSyncScopeTooLarge,
    CloudSyncAmbiguous,
    /// DecommissionAgent's `delete_gmsa` while other principals remain.
    GmsaInUse,
}

impl PreconditionReason {
    pub const ALL: [Self; 31] = [
        Self::OperationRunning,
        Self::OperationFinished,
        Self::HostUnavailable,
        Self::PackageNotFound,
        Self::InstallerFailed,
        Self::ServiceMissing,
        Self::AgentTooOld,
        Self::TenantNotConfigured,
        Self::DeviceCodeExpired,
        Self::NotRegistered,
        Self::NoDirectory,
        Self::DirectoryConfig,
        Self::DirectoryPrerequisite,
        Self::WrongDomain,
        Self::NoGmsaClass,
        Self::NoKdsRootKey,
        Self::GmsaConflict,
        Self::GmsaInvalid,
        Self::BadGmsaMembership,
        Self::NoServiceAccount,
        Self::PackageTooLarge,
        Self::DirectoryRejected,
        Self::AgentModuleMissing,
        Self::AgentExecutionPolicy,
        Self::AgentModuleConflict,
        Self::AgentServiceNotManaged,
        Self::DaclFull,
        Self::CloudSyncDomainNotPublished,
        Self::CloudSyncScopeTooLarge,
        Self::CloudSyncAmbiguous,
        Self::GmsaInUse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OperationRunning => "OPERATION_RUNNING",
            Self::OperationFinished => "OPERATION_FINISHED",
            Self::HostUnavailable => "HOST_UNAVAILABLE",
            Self::PackageNotFound => "PACKAGE_NOT_FOUND",
            Self::InstallerFailed => "INSTALLER_FAILED",
            Self::ServiceMissing => "SERVICE_MISSING",
            Self::AgentTooOld => "AGENT_TOO_OLD",
            Self::TenantNotConfigured => "TENANT_NOT_CONFIGURED",
            Self::DeviceCodeExpired => "DEVICE_CODE_EXPIRED",
            Self::NotRegistered => "NOT_REGISTERED",
            Self::NoDirectory => "NO_DIRECTORY",
            Self::DirectoryConfig => "DIRECTORY_CONFIG",
            Self::DirectoryPrerequisite => "DIRECTORY_PREREQUISITE",
            Self::WrongDomain => "WRONG_DOMAIN",
            Self::NoGmsaClass => "NO_GMSA_CLASS",
            Self::NoKdsRootKey => "NO_KDS_ROOT_KEY",
            Self::GmsaConflict => "GMSA_CONFLICT",
            Self::GmsaInvalid => "GMSA_INVALID",
            Self::BadGmsaMembership => "BAD_GMSA_MEMBERSHIP",
            Self::NoServiceAccount => "NO_SERVICE_ACCOUNT",
            Self::PackageTooLarge => "PACKAGE_TOO_LARGE",
            Self::DirectoryRejected => "DIRECTORY_REJECTED",
            Self::AgentModuleMissing => "AGENT_MODULE_MISSING",
            Self::AgentExecutionPolicy => "AGENT_EXECUTION_POLICY",
            Self::AgentModuleConflict => "AGENT_MODULE_CONFLICT",
            Self::AgentServiceNotManaged => "AGENT_SERVICE_NOT_MANAGED",
            Self::DaclFull => "DACL_FULL",
            Self::CloudSyncDomainNotPublished => "CLOUD_SYNC_DOMAIN_NOT_PUBLISHED",
            Self::CloudSyncScopeTooLarge => "CLOUD_SYNC_SCOPE_TOO_LARGE",
            Self::CloudSyncAmbiguous => "CLOUD_SYNC_AMBIGUOUS",
            Self::GmsaInUse => "GMSA_IN_USE",
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
        reason: PreconditionReason,
        /// What the precondition is about, e.g. "operations/<id>"; may be empty.
        subject: String,
        message: String,
    },
    /// A `request_id` already names an operation that a different request
    /// started (another kind, or other fields).
    #[error(
        "request_id {request_id} already names operation {operation} ({kind}), started by a \
         different request; repeat that request to follow it, or use a new request_id"
    )]
    RequestIdReused {
        request_id: String,
        operation: String,
        kind: String,
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
    /// A bug or an unexpected local failure (I/O on the state directory),
    /// with the failure that caused it when there is one.
    #[error("internal error: {context}{}", cause_suffix(.source.as_deref()))]
    Internal {
        context: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The cause, as it followed the context in the message before the chain
/// was kept.
fn cause_suffix(source: Option<&(dyn std::error::Error + Send + Sync)>) -> String {
    source.map(|e| format!(": {e}")).unwrap_or_default()
}

/// The most violations one error reports: a request with thousands of bad
/// entries must not turn into an answer too large for a client's header
/// limits (gRPC carries details in a header).
pub const MAX_REPORTED_VIOLATIONS: usize = 32;

fn describe_violations(violations: &[FieldViolation]) -> String {
    let mut text = violations
        .iter()
        .take(MAX_REPORTED_VIOLATIONS)
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    if let Some(more) = violations
        .len()
        .checked_sub(MAX_REPORTED_VIOLATIONS)
        .filter(|n| *n > 0)
    {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

/// The canonical code families of [`Error`]; their names are the gRPC code
/// names, which is also what operations record in `OperationError.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NotFound,
    FailedPrecondition,
    AlreadyExists,
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
            Self::AlreadyExists => "ALREADY_EXISTS",
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
            Self::RequestIdReused { .. } => ErrorKind::AlreadyExists,
            Self::Aborted(_) => ErrorKind::Aborted,
            Self::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Self::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Unimplemented(_) => ErrorKind::Unimplemented,
            Self::Cancelled => ErrorKind::Cancelled,
            Self::Internal { .. } => ErrorKind::Internal,
            Self::Store(StoreError::NotFound(_)) => ErrorKind::NotFound,
            Self::Store(_) => ErrorKind::Internal,
        }
    }

    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// The reason of a FAILED_PRECONDITION, which operations record and the
    /// transport sends as the PreconditionFailure's type.
    pub fn precondition_reason(&self) -> Option<PreconditionReason> {
        match self {
            Self::FailedPrecondition { reason, .. } => Some(*reason),
            Self::OperationRunning { .. } => Some(PreconditionReason::OperationRunning),
            _ => None,
        }
    }

    /// An internal failure caused by `source`, described by `context`.
    pub fn internal(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// An internal failure with no underlying error (a broken invariant).
    pub fn internal_msg(context: impl Into<String>) -> Self {
        Self::Internal {
            context: context.into(),
            source: None,
        }
    }
}

/// Every directory call maps its failure the same way, so `?` suffices.
impl From<DirectoryError> for Error {
    fn from(err: DirectoryError) -> Self {
        match err {
            DirectoryError::InvalidCredentials { .. } | DirectoryError::KerberosRejected { .. } => {
                Error::Unauthenticated(err.to_string())
            }
            DirectoryError::InsufficientAccess { .. } => Error::PermissionDenied(err.to_string()),
            DirectoryError::NoSuchObject { .. } => Error::NotFound(err.to_string()),
            // Another writer got there between this one's read and its
            // write: reading again and retrying resolves it.
            DirectoryError::AlreadyExists { .. } => Error::Aborted(err.to_string()),
            DirectoryError::Unreachable { .. }
            | DirectoryError::AllFailed(_)
            | DirectoryError::Dns(_) => Error::Unavailable(err.to_string()),
            DirectoryError::NoDnsRecords { ref name, kind } => {
                Error::NotFound(format!("a DNS {kind} record for {name}"))
            }
            // A backstop: requests are validated first, but a DC may still
            // refuse a value it finds malformed; that is no provd fault.
            DirectoryError::Rejected { ref dc, .. } => Error::FailedPrecondition {
                reason: PreconditionReason::DirectoryRejected,
                subject: dc.clone(),
                message: err.to_string(),
            },
            DirectoryError::Ldap { .. } => Error::internal("the directory answered", err),
            DirectoryError::Config(_) => Error::FailedPrecondition {
                reason: PreconditionReason::DirectoryConfig,
                subject: "directory".into(),
                message: err.to_string(),
            },
            DirectoryError::Kerberos { ref dc, .. } => Error::FailedPrecondition {
                reason: PreconditionReason::DirectoryConfig,
                subject: dc.clone(),
                message: err.to_string(),
            },
        }
    }
}

/// Maps a tenant failure to the workflow error the operator can act on.
impl From<TenantError> for Error {
    fn from(err: TenantError) -> Self {
        match err {
            TenantError::Config(m) => Error::FailedPrecondition {
                reason: PreconditionReason::TenantNotConfigured,
                subject: "tenant".into(),
                message: m,
            },
            TenantError::Unavailable(m) => {
                Error::Unavailable(format!("the tenant did not answer: {m}"))
            }
            TenantError::Unauthorized(m) => {
                Error::Unauthenticated(format!("the tenant rejected the sign-in (401): {m}"))
            }
            TenantError::Forbidden(m) => Error::PermissionDenied(format!(
                "the signed-in account may not do this (403): {m}; sign in as a Hybrid Identity \
             Administrator or Global Administrator"
            )),
            TenantError::NotFound(m) => Error::NotFound(format!("in the tenant: {m}")),
            // provd reads before it creates: a conflict means someone else
            // created it meanwhile; reading again and retrying resolves it.
            TenantError::Conflict(m) => Error::Aborted(format!(
                "the tenant already has it (409): {m}; run the operation again"
            )),
            e @ TenantError::TooLarge { .. } => Error::FailedPrecondition {
                reason: PreconditionReason::CloudSyncScopeTooLarge,
                subject: "scope".into(),
                message: e.to_string(),
            },
            TenantError::DeviceCodeExpired => Error::FailedPrecondition {
                reason: PreconditionReason::DeviceCodeExpired,
                subject: "sign-in".into(),
                message: "the device code expired before anyone signed in with it; run the \
                      operation again and complete the sign-in within the code's lifetime"
                    .into(),
            },
            e @ TenantError::ConsentRequired { .. } => Error::PermissionDenied(format!(
                "{e}; the clients and scopes provd signs in with are configuration \
                 (tenant.registration_client_id, tenant.registration_scope, tenant.client_id, \
                 tenant.graph_scope): use ones this tenant allows, or have an administrator \
                 consent to them"
            )),
            TenantError::AccessDenied => {
                Error::PermissionDenied("the sign-in was declined at the verification page".into())
            }
            TenantError::Cancelled => Error::Cancelled,
            TenantError::Protocol(m) => {
                Error::Unavailable(format!("unexpected tenant answer: {m}"))
            }
        }
    }
}

/// A host failure outside the installer (whose exit codes Install maps with
/// the log path, in `agent.rs`).
impl From<HostError> for Error {
    fn from(err: HostError) -> Self {
        match err {
            HostError::Unavailable(m) => Error::FailedPrecondition {
                reason: PreconditionReason::HostUnavailable,
                subject: "host".into(),
                message: m,
            },
            other => Error::Unavailable(other.to_string()),
        }
    }
}

/// Maps a failure of the agent's PowerShell module. The message (with its
/// remedy) is the backend's; the reason says which kind of fix it is.
impl From<AgentConfigError> for Error {
    fn from(err: AgentConfigError) -> Self {
        let precondition =
            |reason, subject: &str, err: AgentConfigError| Error::FailedPrecondition {
                reason,
                subject: subject.into(),
                message: err.to_string(),
            };
        match err {
            AgentConfigError::Unavailable(_) => {
                precondition(PreconditionReason::HostUnavailable, "host", err)
            }
            AgentConfigError::ModuleMissing { .. } => {
                precondition(PreconditionReason::AgentModuleMissing, "agent", err)
            }
            AgentConfigError::ModuleTooOld { .. } | AgentConfigError::ParameterBinding { .. } => {
                precondition(PreconditionReason::AgentTooOld, "agent", err)
            }
            AgentConfigError::ExecutionPolicy { .. } => {
                precondition(PreconditionReason::AgentExecutionPolicy, "host", err)
            }
            AgentConfigError::AssemblyConflict { .. } => {
                precondition(PreconditionReason::AgentModuleConflict, "agent", err)
            }
            AgentConfigError::ServiceAccountNotManaged { ref service } => {
                let service = service.clone();
                precondition(PreconditionReason::AgentServiceNotManaged, &service, err)
            }
            AgentConfigError::TokenRejected { .. } => Error::Unauthenticated(err.to_string()),
            AgentConfigError::Cmdlet { .. }
            | AgentConfigError::Timeout { .. }
            | AgentConfigError::Io(_) => Error::Unavailable(err.to_string()),
            AgentConfigError::Cancelled => Error::Cancelled,
            AgentConfigError::Protocol(_) => Error::internal("the agent's module script", err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_value_is_a_precondition_and_no_dns_record_not_found() {
        let refused = Error::from(DirectoryError::from_result_code(
            "dc1.lab.example.test",
            34,
            "invalid basedn".into(),
        ));
        assert_eq!(refused.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(
            refused.precondition_reason(),
            Some(PreconditionReason::DirectoryRejected)
        );
        assert!(refused.to_string().contains("invalid basedn"), "{refused}");
        let missing = Error::from(DirectoryError::NoDnsRecords {
            name: "_ldap._tcp.dc._msdcs.x.test".into(),
            kind: "SRV",
        });
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert_eq!(
            missing.to_string(),
            "a DNS SRV record for _ldap._tcp.dc._msdcs.x.test not found"
        );
    }
}
