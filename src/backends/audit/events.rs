//! What provd writes to the Windows Application event log, source `provd`:
//! each event's id, type and text. Pure, so the mapping is tested on every
//! platform; `eventlog.rs` (Windows only) reports the events. The ids and
//! types are documented once, in `deploy/windows/README.md`; a test holds
//! that table and [`EventId::ALL`] equal.
//!
//! No text carries a secret: an audit record is the file's line (digests,
//! never request bodies); an operation's is the fields the store keeps and
//! GetOperation returns (id, kind, state, initiator, the error's code,
//! reason, step and message), which the secret tests of the workflows
//! already hold free of secrets; the service's are its address and the
//! start-up error (paths, addresses, config keys).

use std::net::SocketAddr;

use serde::Serialize;

use super::line::{self, Line};
use super::{Entry, Sealed};
use crate::model::{OperationRecord, OperationState};

/// The source's registration under HKLM, written by `provd service install`
/// (`eventlog.rs`) and by provd's MSI (`deploy/windows/provd.wxs`, held
/// equal by a test): the key, .NET Framework 4's message file (message `%1`
/// for every id) and the types it reports (error, warning, information).
pub const SOURCE_KEY: &str = r"SYSTEM\CurrentControlSet\Services\EventLog\Application\provd";
pub const MESSAGE_FILE: &str =
    r"%SystemRoot%\Microsoft.NET\Framework64\v4.0.30319\EventLogMessages.dll";
pub const TYPES_SUPPORTED: u32 = 7;

/// The event type (what Event Viewer shows as the level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Information,
    Warning,
    Error,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Self::Information => "Information",
            Self::Warning => "Warning",
            Self::Error => "Error",
        }
    }
}

/// Every event provd reports, one id each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventId {
    ServiceStarted,
    ServiceStopped,
    ServiceFailed,
    CallOk,
    CallError,
    Denied,
    Suppressed,
    Pruned,
    Recovered,
    OperationSucceeded,
    OperationFailed,
    OperationCancelled,
    OperationInterrupted,
}

impl EventId {
    pub const ALL: [Self; 13] = [
        Self::ServiceStarted,
        Self::ServiceStopped,
        Self::ServiceFailed,
        Self::CallOk,
        Self::CallError,
        Self::Denied,
        Self::Suppressed,
        Self::Pruned,
        Self::Recovered,
        Self::OperationSucceeded,
        Self::OperationFailed,
        Self::OperationCancelled,
        Self::OperationInterrupted,
    ];

    /// The number administrators filter on: never reuse or renumber one
    /// (Windows Event Forwarding subscriptions and SIEM rules name them).
    pub fn id(self) -> u32 {
        match self {
            Self::ServiceStarted => 100,
            Self::ServiceStopped => 101,
            Self::ServiceFailed => 102,
            Self::CallOk => 1000,
            Self::CallError => 1001,
            Self::Denied => 1002,
            Self::Suppressed => 1003,
            Self::Pruned => 1004,
            Self::Recovered => 1005,
            Self::OperationSucceeded => 2000,
            Self::OperationFailed => 2001,
            Self::OperationCancelled => 2002,
            Self::OperationInterrupted => 2003,
        }
    }

    pub fn level(self) -> Level {
        match self {
            Self::ServiceStarted
            | Self::ServiceStopped
            | Self::CallOk
            // A call answered with an error is the caller's business; the
            // denied ones below are the host's.
            | Self::CallError
            | Self::Pruned
            | Self::OperationSucceeded
            // Cancelled because someone asked.
            | Self::OperationCancelled => Level::Information,
            Self::Denied
            | Self::Suppressed
            | Self::Recovered
            // Its steps may have taken effect: someone should start it again.
            | Self::OperationInterrupted => Level::Warning,
            Self::ServiceFailed | Self::OperationFailed => Level::Error,
        }
    }
}

/// One event: its id (and so its type) and its one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub text: String,
}

/// What the service glue reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceEvent {
    /// Serving on this address.
    Started { listen: SocketAddr },
    /// Stopped on the SCM's Stop or Shutdown, after a graceful shutdown.
    Stopped,
    /// Did not start, or ended on an error (the error, with its causes).
    Failed { error: String },
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn service(event: &ServiceEvent) -> Event {
    match event {
        ServiceEvent::Started { listen } => Event {
            id: EventId::ServiceStarted,
            text: format!(
                "provd {VERSION} started: serving gRPC and HTTP/JSON over mTLS on {listen}"
            ),
        },
        ServiceEvent::Stopped => Event {
            id: EventId::ServiceStopped,
            text: format!("provd {VERSION} stopped"),
        },
        ServiceEvent::Failed { error } => Event {
            id: EventId::ServiceFailed,
            text: format!("provd {VERSION} failed: {error}"),
        },
    }
}

/// A summary line, a blank line, then the record's line exactly as the
/// audit file holds it (its `seq` and `hash` tie the event to the file).
pub fn audit(record: &Sealed) -> Event {
    let (id, summary) = match &record.entry {
        Entry::Call(call) if call.code == "OK" => (
            EventId::CallOk,
            format!("{} called {}: OK", call.caller.cn, call.method),
        ),
        Entry::Call(call) => (
            EventId::CallError,
            format!("{} called {}: {}", call.caller.cn, call.method, call.code),
        ),
        Entry::Denied(call) => (
            EventId::Denied,
            format!(
                "{} was denied {} ({}) from {}",
                call.caller.cn, call.method, call.code, call.peer
            ),
        ),
        Entry::Suppressed(s) => (
            EventId::Suppressed,
            format!("{} denied calls suppressed (over the audit rate)", s.count),
        ),
        Entry::Checkpoint(c) => (
            EventId::Pruned,
            format!(
                "audit log pruned through record {} ({} in all)",
                c.last_seq, c.pruned
            ),
        ),
        Entry::Recovered(r) => (
            EventId::Recovered,
            format!(
                "audit log: a torn last line of {} bytes was removed at start",
                r.torn_bytes
            ),
        ),
    };
    let json = serde_json::to_string(&Line {
        seq: record.seq,
        time: line::format_time(record.time_ms),
        entry: record.entry.clone(),
        prev_hash: record.prev_hash.clone(),
        hash: record.hash.clone(),
    })
    .unwrap_or_default();
    Event {
        id,
        text: format!("{summary}\r\n\r\n{json}"),
    }
}

/// The JSON after an operation event's summary line.
#[derive(Serialize)]
struct OperationFields<'a> {
    operation_id: &'a str,
    kind: &'static str,
    state: &'static str,
    initiator: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a crate::model::OperationErrorRecord>,
}

/// An operation's outcome; `None` while it has none (PENDING, RUNNING).
pub fn operation(op: &OperationRecord) -> Option<Event> {
    let id = match op.state {
        OperationState::Pending | OperationState::Running => return None,
        OperationState::Succeeded => EventId::OperationSucceeded,
        OperationState::Failed => EventId::OperationFailed,
        OperationState::Cancelled => EventId::OperationCancelled,
        OperationState::Interrupted => EventId::OperationInterrupted,
    };
    let mut summary = format!(
        "{} operation {} started by {}: {}",
        op.kind.name(),
        op.id,
        op.initiator,
        op.state.name()
    );
    // A cancellation's error only repeats that it was asked for.
    if let Some(error) = op
        .error
        .as_ref()
        .filter(|_| id != EventId::OperationCancelled)
    {
        summary.push_str(&format!(" ({}", error.code));
        if let Some(reason) = &error.reason {
            summary.push_str(&format!(", {reason}"));
        }
        summary.push_str(&format!(") in step {:?}: {}", error.step, error.message));
    }
    let json = serde_json::to_string(&OperationFields {
        operation_id: &op.id,
        kind: op.kind.name(),
        state: op.state.name(),
        initiator: &op.initiator,
        error: op.error.as_ref(),
    })
    .unwrap_or_default();
    Some(Event {
        id,
        text: format!("{summary}\r\n\r\n{json}"),
    })
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
