//! The durable state store: operations with their event history, and the
//! configuration later workflows persist. One trait, one real implementation
//! ([`redb_store::RedbStore`]).

pub mod redb_store;

use serde::{Deserialize, Serialize};

pub use redb_store::RedbStore;

/// Schema version written to the store's metadata table. Bump it (and add a
/// migration in `redb_store`) when a record's encoding changes incompatibly.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store files could not be opened or created.
    #[error("cannot open state store at {path}: {reason}")]
    Open { path: String, reason: String },
    /// The store on disk was written by a newer provd.
    #[error("state store schema version {found} is newer than this provd supports ({supported})")]
    SchemaTooNew { found: u32, supported: u32 },
    /// A read or write failed inside the store engine.
    #[error("state store I/O: {0}")]
    Io(String),
    /// A stored record could not be decoded.
    #[error("state store record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    /// `create_operation` was given a request id that already names an operation.
    #[error("request id already used by operation {existing}")]
    RequestIdTaken { existing: String },
    /// The operation does not exist.
    #[error("operation {0} not found")]
    NotFound(String),
}

/// Kinds mirror `provd.v1.OperationKind` without depending on generated code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Install,
    CreateGmsa,
    UseCustomGmsa,
    GrantPermissions,
    AddDirectory,
    RemoveDirectory,
    SetDcPriority,
    SetPasswordWriteback,
    Uninstall,
    SignIn,
    ApplyConfiguration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl OperationState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Interrupted
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationErrorRecord {
    /// Canonical gRPC code name, e.g. "FAILED_PRECONDITION".
    pub code: String,
    pub message: String,
    pub step: String,
}

/// Times are milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub id: String,
    pub kind: OperationKind,
    pub state: OperationState,
    pub request_id: Option<String>,
    pub description: String,
    pub initiator: String,
    pub create_time_ms: i64,
    pub update_time_ms: i64,
    pub end_time_ms: Option<i64>,
    pub error: Option<OperationErrorRecord>,
    pub cancel_requested: bool,
    pub event_count: u64,
    pub result: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    StepStarted,
    Progress,
    StepSucceeded,
    StepSkipped,
    Warning,
    ActionRequired,
    StateChanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// 1-based, dense within one operation.
    pub sequence: u64,
    pub time_ms: i64,
    pub step: String,
    pub kind: EventKind,
    pub message: String,
    pub percent: u32,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Filter and page for [`Store::list_operations`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub state: Option<OperationState>,
    pub kind: Option<OperationKind>,
    /// Maximum records to return (already validated by the caller, ≥ 1).
    pub limit: usize,
    /// Resume after this cursor (an opaque value from a previous [`ListPage`]).
    pub after: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Newest first.
    pub operations: Vec<OperationRecord>,
    /// Cursor for the next page; `None` when there are no more.
    pub next: Option<String>,
}

/// The durable store. Every method is one atomic transaction; a crash never
/// leaves a record half-written. Methods block (they may fsync), so async
/// callers run them on the blocking pool.
pub trait Store: Send + Sync + 'static {
    /// Inserts a new operation and, if it has one, its request-id index entry,
    /// atomically. Fails with [`StoreError::RequestIdTaken`] if the request id
    /// is already indexed.
    fn create_operation(&self, op: &OperationRecord) -> Result<(), StoreError>;
    /// The operation id a request id was first used for.
    fn operation_for_request_id(&self, request_id: &str) -> Result<Option<String>, StoreError>;
    fn get_operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError>;
    /// Replaces the operation record (state, error, flags, result).
    fn update_operation(&self, op: &OperationRecord) -> Result<(), StoreError>;
    /// Appends an event and stores the updated operation record (its
    /// `event_count` and `update_time_ms` already advanced by the caller) in
    /// one transaction.
    fn append_event(&self, op: &OperationRecord, event: &EventRecord) -> Result<(), StoreError>;
    /// Events with `sequence > after`, in order.
    fn events_after(&self, id: &str, after: u64) -> Result<Vec<EventRecord>, StoreError>;
    fn list_operations(&self, query: &ListQuery) -> Result<ListPage, StoreError>;
    /// Operations not in a terminal state (used at start-up to interrupt them).
    fn unfinished_operations(&self) -> Result<Vec<OperationRecord>, StoreError>;
    /// Configuration records of later workflows, as opaque bytes by namespace
    /// and key. `None` deletes.
    fn put_config(
        &self,
        namespace: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError>;
    fn get_config(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn list_config(&self, namespace: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
}
