//! The one place errors become wire statuses: workflow errors to gRPC
//! status (with google.rpc details), gRPC codes to HTTP statuses, and a
//! status to the HTTP/JSON error body. Every match is exhaustive, so a new
//! error variant or code forces a decision here.

use http::StatusCode;
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation as RpcFieldViolation, StatusExt};

use crate::workflows::{Error, ErrorKind};

/// Errors of the transport layer itself (before a workflow is reached).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The HTTP/JSON body does not decode into the request message.
    #[error("invalid JSON request body: {reason}")]
    BadJson { field: String, reason: String },
    /// The caller's certificate carries no role allowed for the method.
    #[error("{caller} may not call {method}")]
    Denied { caller: String, method: String },
}

fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::Internal => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        to_status(&err)
    }
}

/// A workflow error as a gRPC status, with field violations as a
/// google.rpc.BadRequest and precondition failures as a
/// google.rpc.PreconditionFailure.
pub fn to_status(err: &Error) -> Status {
    let code = code_for(err.kind());
    let message = err.to_string();
    let details = match err {
        Error::InvalidArgument(violations) => Some(ErrorDetails::with_bad_request(
            violations
                .iter()
                .map(|v| RpcFieldViolation::new(v.field.clone(), v.description.clone()))
                .collect::<Vec<_>>(),
        )),
        Error::OperationRunning { id, .. } => {
            Some(ErrorDetails::with_precondition_failure_violation(
                "OPERATION_RUNNING",
                format!("operations/{id}"),
                message.clone(),
            ))
        }
        Error::FailedPrecondition {
            reason, subject, ..
        } => Some(ErrorDetails::with_precondition_failure_violation(
            *reason,
            subject.clone(),
            message.clone(),
        )),
        Error::NotFound(_)
        | Error::Aborted(_)
        | Error::Unauthenticated(_)
        | Error::PermissionDenied(_)
        | Error::Unavailable(_)
        | Error::Unimplemented(_)
        | Error::Cancelled
        | Error::Internal(_)
        | Error::Store(_) => None,
    };
    if matches!(code, Code::Internal) {
        tracing::error!(error = %err, "internal error");
    }
    match details {
        Some(details) => Status::with_error_details(code, message, details),
        None => Status::new(code, message),
    }
}

pub fn transport_status(err: &TransportError) -> Status {
    match err {
        TransportError::BadJson { field, reason } => Status::with_error_details(
            Code::InvalidArgument,
            err.to_string(),
            ErrorDetails::with_bad_request_violation(field.clone(), reason.clone()),
        ),
        TransportError::Denied { .. } => Status::permission_denied(err.to_string()),
    }
}

/// The HTTP status the JSON API answers for a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // google.rpc convention: a precondition failure is a client error.
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// The HTTP/JSON error body: `{"error": {...}}`.
#[derive(Debug, Serialize)]
pub struct JsonErrorBody {
    pub error: JsonError,
}

#[derive(Debug, Serialize)]
pub struct JsonError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty", rename = "fieldViolations")]
    pub field_violations: Vec<JsonFieldViolation>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        rename = "preconditionViolations"
    )]
    pub precondition_violations: Vec<JsonPreconditionViolation>,
}

#[derive(Debug, Serialize)]
pub struct JsonFieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Serialize)]
pub struct JsonPreconditionViolation {
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub description: String,
}

pub fn json_error(status: &Status) -> JsonErrorBody {
    let details = status.get_error_details();
    JsonErrorBody {
        error: JsonError {
            code: provd_proto::code_name(status.code()),
            message: status.message().to_owned(),
            field_violations: details
                .bad_request()
                .map(|b| {
                    b.field_violations
                        .iter()
                        .map(|v| JsonFieldViolation {
                            field: v.field.clone(),
                            description: v.description.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            precondition_violations: details
                .precondition_failure()
                .map(|p| {
                    p.violations
                        .iter()
                        .map(|v| JsonPreconditionViolation {
                            kind: v.r#type.clone(),
                            subject: v.subject.clone(),
                            description: v.description.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
    }
}
