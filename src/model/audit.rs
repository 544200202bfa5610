//! The audit trail as the domain records it: who made a call (their client
//! certificate), from where, what they asked (the method, the request id,
//! a digest of the request without its secrets) and how it ended (the gRPC
//! code and the operation it started). The audit log backend chains these
//! into its file; its format is these fields' serde names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The verified client certificate a call came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCaller {
    /// Subject common name: provd's name for the client (an operation's
    /// initiator).
    pub cn: String,
    /// Serial number, lowercase hex without separators.
    pub serial: String,
    /// Issuer distinguished name (RFC 4514 string form).
    pub issuer: String,
    /// The roles the certificate grants (`viewer`, `operator`, `admin`).
    pub roles: Vec<String>,
}

/// One call: a mutating call, whatever its outcome, or a denied one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCall {
    pub caller: AuditCaller,
    /// The client's address and port as the listener saw them.
    pub peer: String,
    /// `grpc` or `http` (the HTTP/JSON gateway).
    pub transport: String,
    /// The full gRPC path, `/provd.v1.AgentService/Install` (for a path that
    /// names no method, as sent, cut at 256 bytes).
    pub method: String,
    /// The request's `request_id` field, when it had one (cut at 256 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// SHA-256 (hex) of the request re-encoded as protobuf without its
    /// secret fields; absent when the request was not read (a denied call)
    /// or did not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_digest: Option<String>,
    /// The gRPC code the call ended with (`OK`, `PERMISSION_DENIED`, …; the
    /// HTTP/JSON gateway's calls carry the code of the same answer over
    /// gRPC).
    pub code: String,
    /// The operation the call started or named (for a retry, the one the
    /// first request started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
}

/// Denied calls not recorded one by one because they came faster than the
/// configured rate: how many, over which time, by whom.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditSuppressed {
    pub count: u64,
    /// When the first and the last of them were denied (ms since the epoch).
    pub first_ms: i64,
    pub last_ms: i64,
    /// Count per caller common name, for at most
    /// [`AuditSuppressed::MAX_CALLERS`] callers.
    pub callers: BTreeMap<String, u64>,
    /// Calls of callers beyond those.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_callers: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl AuditSuppressed {
    /// Callers named one by one in a summary.
    pub const MAX_CALLERS: usize = 16;

    /// Counts one more suppressed call of `caller` at `time_ms`.
    pub fn add(&mut self, caller: &str, time_ms: i64) {
        if self.count == 0 {
            self.first_ms = time_ms;
        }
        self.count += 1;
        self.last_ms = time_ms;
        if let Some(n) = self.callers.get_mut(caller) {
            *n += 1;
        } else if self.callers.len() < Self::MAX_CALLERS {
            self.callers.insert(caller.to_owned(), 1);
        } else {
            self.other_callers += 1;
        }
    }
}

/// What the workflows hand the audit log, at `time_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub time_ms: i64,
    pub event: AuditEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    /// A mutating call that passed authorization, with its outcome.
    Call(AuditCall),
    /// A call refused before routing: no role for the method, a path that
    /// names no method, a foreign `Origin`.
    Denied(AuditCall),
    /// Denied calls over the rate, in one record.
    Suppressed(AuditSuppressed),
}
