//! The one place errors become wire statuses: workflow errors to gRPC
//! status (with google.rpc details), gRPC codes to HTTP statuses, and a
//! status to the HTTP/JSON error body. Every match is exhaustive, so a new
//! error variant or code forces a decision here.

use http::StatusCode;
use serde::Serialize;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation as RpcFieldViolation, StatusExt};

use crate::workflows::{Error, ErrorKind, MAX_REPORTED_VIOLATIONS, PreconditionReason};

/// Errors of the transport layer itself (before a workflow is reached).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The HTTP/JSON body does not decode into the request message.
    #[error("invalid JSON request body: {reason}")]
    BadJson { field: String, reason: String },
    /// The caller's certificate carries no role allowed for the method.
    #[error("{caller} may not call {method}")]
    Denied { caller: String, method: String },
    /// A browser request from a web origin not in `http.allowed_origins`.
    #[error("requests from origin {origin} are refused (http.allowed_origins)")]
    ForeignOrigin { origin: String },
    /// An HTTP/JSON call whose body is not declared as JSON.
    #[error("content-type must be application/json, not {found:?}")]
    NotJson { found: String },
    /// A path that names no method (nothing else is said about it).
    #[error("no method {path}")]
    NoSuchMethod { path: String },
    /// An HTTP/JSON route called with an HTTP method it does not take.
    #[error("{method} is not allowed on {path}; the allow header names the methods that are")]
    WrongMethod { method: String, path: String },
    /// A JSON body or a gRPC message over the limit (`limits.rs`).
    #[error("the request is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// Header fields and URI over the limit (`limits.rs`).
    #[error("the request's header fields are larger than the limit of {limit} bytes")]
    HeadersTooLarge { limit: usize },
}

fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
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
                .take(MAX_REPORTED_VIOLATIONS)
                .map(|v| RpcFieldViolation::new(v.field.clone(), v.description.clone()))
                .collect::<Vec<_>>(),
        )),
        Error::RequestIdReused { .. } => Some(ErrorDetails::with_bad_request_violation(
            "request_id",
            message.clone(),
        )),
        Error::OperationRunning { id, .. } => {
            Some(ErrorDetails::with_precondition_failure_violation(
                PreconditionReason::OperationRunning.as_str(),
                format!("operations/{id}"),
                message.clone(),
            ))
        }
        Error::FailedPrecondition {
            reason, subject, ..
        } => Some(ErrorDetails::with_precondition_failure_violation(
            reason.as_str(),
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
        | Error::Internal { .. }
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
        TransportError::Denied { .. } | TransportError::ForeignOrigin { .. } => {
            Status::permission_denied(err.to_string())
        }
        TransportError::NotJson { .. } => Status::with_error_details(
            Code::InvalidArgument,
            err.to_string(),
            ErrorDetails::with_bad_request_violation("content-type", err.to_string()),
        ),
        // gRPC's answer to a method it does not serve.
        TransportError::NoSuchMethod { .. } | TransportError::WrongMethod { .. } => {
            Status::unimplemented(err.to_string())
        }
        // gRPC's convention for a message over the size limit.
        TransportError::TooLarge { .. } | TransportError::HeadersTooLarge { .. } => {
            Status::resource_exhausted(err.to_string())
        }
    }
}

/// The HTTP status of a transport error: where HTTP has a more exact one
/// than its gRPC code's (`http_status`), that one. The JSON body still
/// carries the gRPC code.
pub fn transport_http_status(err: &TransportError) -> StatusCode {
    match err {
        TransportError::BadJson { .. } => StatusCode::BAD_REQUEST,
        TransportError::Denied { .. } | TransportError::ForeignOrigin { .. } => {
            StatusCode::FORBIDDEN
        }
        TransportError::NotJson { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        TransportError::NoSuchMethod { .. } => StatusCode::NOT_FOUND,
        TransportError::WrongMethod { .. } => StatusCode::METHOD_NOT_ALLOWED,
        TransportError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        TransportError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
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

#[cfg(test)]
mod tests {
    use super::*;
    use provd_proto::v1;

    /// The reasons workflows raise and the ones the contract documents are
    /// the same list, under the same stable strings.
    #[test]
    fn precondition_reasons_match_the_contract() {
        for reason in PreconditionReason::ALL {
            let name = format!("PRECONDITION_REASON_{}", reason.as_str());
            assert!(
                v1::PreconditionReason::from_str_name(&name).is_some(),
                "{name} is not in common.proto"
            );
        }
        let documented = (1..)
            .map_while(|n| v1::PreconditionReason::try_from(n).ok())
            .count();
        assert_eq!(documented, PreconditionReason::ALL.len());
    }

    #[test]
    fn a_failed_precondition_carries_its_reason_and_subject() {
        let status = Status::from(Error::FailedPrecondition {
            reason: PreconditionReason::NotRegistered,
            subject: "agent".into(),
            message: "register first".into(),
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        let violations = status
            .get_details_precondition_failure()
            .map(|p| p.violations)
            .unwrap_or_default();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].r#type, "NOT_REGISTERED");
        assert_eq!(violations[0].subject, "agent");
    }

    #[test]
    fn an_internal_error_keeps_its_cause_in_the_chain_and_the_message() {
        let cause = std::io::Error::other("disk full");
        let err = Error::internal("cannot write the staged package", cause);
        assert_eq!(
            err.to_string(),
            "internal error: cannot write the staged package: disk full"
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk full"));
        assert_eq!(Status::from(err).code(), Code::Internal);
    }

    #[test]
    fn thousands_of_violations_are_reported_as_the_first_few_and_a_count() {
        let violations = (0..10_000)
            .map(|i| crate::workflows::FieldViolation::new(format!("ous[{i}]"), "not a DN"))
            .collect();
        let status = Status::from(Error::InvalidArgument(violations));
        let reported = status
            .get_details_bad_request()
            .map_or(0, |b| b.field_violations.len());
        assert_eq!(reported, MAX_REPORTED_VIOLATIONS);
        assert!(
            status.message().ends_with("; and 9968 more"),
            "{}",
            status.message()
        );
        assert!(status.message().len() < 2048);
    }
}
