//! The durable state store: operations with their event history, and the
//! configuration later workflows persist. One trait, one real implementation
//! ([`redb_store::RedbStore`]).

pub mod redb_store;

pub use redb_store::RedbStore;

pub use crate::model::{
    EventKind, EventRecord, OperationErrorRecord, OperationKind, OperationRecord, OperationState,
};

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

/// Filter and page for [`Store::list_operations`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub state: Option<OperationState>,
    pub kind: Option<OperationKind>,
    /// Only operations with this initiator (exact).
    pub initiator: Option<String>,
    /// Only operations created at or after this time (ms, inclusive).
    pub created_from_ms: Option<i64>,
    /// Only operations created before this time (ms, exclusive).
    pub created_before_ms: Option<i64>,
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
/// leaves a record half-written. Writes block (they may fsync), so async
/// callers run them on the blocking pool; reads must stay short (no waiting
/// on a writer), so that async callers may run them in place.
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
    /// one transaction. The progress and end (succeeded, skipped) of the
    /// step in flight may be held in memory until the next durable commit —
    /// the next step's start, a warning, an action required, a state
    /// change, any other write, or closing the store: a crash can lose those
    /// of the step it interrupted, never half of one, never an earlier
    /// step's; the record always matches the events kept.
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
