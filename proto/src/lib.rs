//! `provd-proto`: the wire contract of provd. Generated code for the
//! `provd.v1` services (see `provd/v1/*.proto` beside this crate), plus the few
//! hand-written pieces every side of the wire shares: a redacted `Debug` and a
//! zeroizing `Drop` for [`v1::Credential`], a `Debug` of [`v1::CloudSyncSpec`]
//! without its notification email, and the canonical gRPC code names
//! that errors carry in JSON bodies and `OperationError.code`.
//!
//! Architecture invariant: this crate knows nothing of the daemon. `provctl`
//! and any other client depend on it alone (plus tonic and rustls).

use tonic::Code;

pub mod codec;
pub mod secrets;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("provd.v1");
    include!(concat!(env!("OUT_DIR"), "/provd.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of every provd.v1 file, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("provd_descriptor");

impl std::fmt::Debug for v1::Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The notification email is part of a secret's value (Graph's
/// SyncNotificationSettings): shown only as set or not.
impl std::fmt::Debug for v1::CloudSyncSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudSyncSpec")
            .field("enabled", &self.enabled)
            .field("password_hash_sync", &self.password_hash_sync)
            .field("organizational_units", &self.organizational_units)
            .field("security_groups", &self.security_groups)
            .field("accidental_deletes", &self.accidental_deletes)
            .field(
                "notification_email",
                &if self.notification_email.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

impl Drop for v1::Credential {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}

/// The canonical upper-snake name of a code, as the JSON body carries it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
