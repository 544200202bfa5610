//! The audit log: every mutating call and every denied one, in an
//! append-only, tamper-evident file ([`FileAuditLog`]), mirrored to
//! OpenTelemetry log records ([`OtelMirror`]) and, on Windows, to the
//! Application event log ([`eventlog`]), which also gets every operation's
//! outcome ([`OperationMirror`]) and the service's start and stop; what
//! each event says is [`events`].
//!
//! # The file
//!
//! One JSON object per line (`line.rs`), in this key order: `seq` (1, 2, …
//! with no gap), `time` (RFC 3339, UTC, milliseconds; for a call, when its
//! answer ended), `kind` (`call`,
//! `denied`, `suppressed`, `recovered`, `checkpoint`), the kind's fields
//! (see `model::AuditCall`: `caller` {`cn`, `serial`, `issuer`, `roles`},
//! `peer`, `transport`, `method`, `request_id`, `request_digest`, `code`,
//! `operation_id`), `prev_hash`, `hash`. `hash` is the SHA-256 (hex) of the
//! line's bytes before `,"hash":"`; `prev_hash` is the previous record's
//! `hash` (64 zeros for record 1). Changing, removing, inserting or
//! reordering a record therefore breaks the chain at that record, unless
//! every later hash is recomputed: the chain makes tampering evident, it
//! does not stop someone who can rewrite the whole file (root on the host).
//! What catches that is a copy kept elsewhere: each exported log record
//! carries the record's `seq` and `hash`. Cutting whole lines off the end
//! leaves a shorter, intact chain; `provd audit verify` prints the last
//! `seq` and `hash` to compare with the exported copy.
//!
//! Writes: one writer (the workflows' audit task) appends batches; each
//! batch is one `write` of whole lines followed by `fdatasync`. A crash can
//! lose the records of a batch not yet synced (calls whose answers were
//! being sent at that moment) and leave at most a torn last line; at the
//! next start the torn bytes are cut off and a `recovered` record says how
//! many bytes, with their SHA-256, were removed. `provd audit verify` on a
//! file with a torn tail names it as such.
//!
//! Retention (`[audit] max_age`, `max_records`): pruning rewrites the file
//! (a temporary file, fsync, rename) as a `checkpoint` line followed by the
//! kept records, byte for byte. The checkpoint (`checkpoint.rs`) names the
//! last pruned record (`last_seq`, `last_hash`: the first kept record
//! follows it) and how many were pruned in all, and is signed with the
//! daemon's TLS server key, its certificate inside. Verify checks the
//! signature, and with `--cert` that the signer is the server certificate's
//! key. That proves the checkpoint was written by a holder of that key (the
//! daemon, or whoever can read its key file), so cutting records off the
//! front needs the key; it does not prove the pruned records were ever
//! sound (provd verifies the chain before pruning and refuses to prune a
//! broken one).

mod checkpoint;
#[cfg(windows)]
#[allow(unsafe_code)]
pub mod eventlog;
pub mod events;
mod file;
mod line;
mod otel;
#[cfg(test)]
mod tests;
mod verify;

use std::time::Duration;

pub use checkpoint::CheckpointSigner;
pub use file::FileAuditLog;
pub use line::{Checkpoint, Entry, GENESIS, Recovered};
pub use otel::OtelMirror;
pub use verify::{Break, BreakKind, Report, verify_bytes, verify_file};

use crate::model::OperationRecord;
pub use crate::model::{AuditCall, AuditCaller, AuditEntry, AuditEvent, AuditSuppressed};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log file could not be opened, read or written.
    #[error("audit log {path}: {reason}")]
    Io { path: String, reason: String },
    /// The file's last record cannot be read, so no record can follow it.
    #[error(
        "audit log {path}: its last record (line {line}) is unreadable ({reason}); keep the \
         file as evidence and move it away to start a new log"
    )]
    Unusable {
        path: String,
        line: usize,
        reason: String,
    },
    /// Pruning found the chain broken: nothing was pruned.
    #[error("audit log {path}: not pruned, the chain is broken: {broken}")]
    Broken { path: String, broken: Break },
    /// The checkpoint could not be signed: nothing was pruned.
    #[error("audit log {path}: not pruned, cannot sign the checkpoint: {reason}")]
    Sign { path: String, reason: String },
}

/// How long records are kept. Unset limits keep everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Records older than this go.
    pub max_age: Option<Duration>,
    /// At most this many records stay (the newest). Pruning starts once the
    /// count is a tenth over, so the file is not rewritten per record.
    pub max_records: Option<u64>,
}

/// What a prune removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Records removed by this prune.
    pub removed: u64,
    /// The last removed record's seq.
    pub through_seq: u64,
    /// Records kept.
    pub kept: u64,
}

/// A record as written: its place in the chain and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    pub seq: u64,
    pub time_ms: i64,
    pub hash: String,
    pub prev_hash: String,
    pub entry: Entry,
}

/// The audit log. Methods block (they write and fsync); one writer calls
/// them, so records are appended in the order they are given.
pub trait AuditLog: Send + Sync + 'static {
    /// Appends `entries` in order (one write, one fsync) and returns them
    /// as sealed. Nothing is appended when it fails.
    fn append(&self, entries: &[AuditEntry]) -> Result<Vec<Sealed>, AuditError>;
    /// True when [`AuditLog::prune`] has something to remove at `now_ms`
    /// (cheap: no I/O).
    fn prune_due(&self, retention: &Retention, now_ms: i64) -> bool;
    /// Removes what `retention` no longer keeps, leaving a signed
    /// checkpoint; `None` when nothing was due.
    fn prune(&self, retention: &Retention, now_ms: i64) -> Result<Option<Pruned>, AuditError>;
}

/// A copy of each record somewhere else (a collector, the Windows event
/// log). Best effort: a mirror that fails logs and carries on; the file is
/// the record.
pub trait AuditMirror: Send + Sync + 'static {
    fn mirror(&self, record: &Sealed);
}

/// Where each operation's outcome is copied (the Windows event log), once
/// the store has it. Best effort, like [`AuditMirror`]; may block briefly,
/// so the engine calls it off the async workers.
pub trait OperationMirror: Send + Sync + 'static {
    /// `op` has just reached its terminal state (SUCCEEDED, FAILED,
    /// CANCELLED, or INTERRUPTED at start-up).
    fn finished(&self, op: &OperationRecord);
}
