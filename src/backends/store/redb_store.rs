//! [`Store`] on redb: one embedded file, every method one transaction, every
//! write committed with immediate durability (fsync before returning).
//!
//! Layout:
//! - `operations`: op id → JSON [`OperationRecord`]
//! - `events`: (op id, sequence) → JSON [`EventRecord`]; `events_after` is a
//!   range scan
//! - `request_ids`: request id → op id (first use wins)
//! - `op_order`: (create_time_ms, op id) → () — newest-first listing index
//! - `config`: (namespace, key) → opaque bytes
//! - `meta`: name → u64 (`schema_version`)

use std::fmt::Display;
use std::ops::Bound;
use std::path::Path;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};

use super::{
    EventKind, EventRecord, ListPage, ListQuery, OperationRecord, SCHEMA_VERSION, Store, StoreError,
};

const OPERATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("operations");
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events");
const REQUEST_IDS: TableDefinition<&str, &str> = TableDefinition::new("request_ids");
const OP_ORDER: TableDefinition<(i64, &str), ()> = TableDefinition::new("op_order");
const CONFIG: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("config");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const SCHEMA_VERSION_KEY: &str = "schema_version";

/// Maps any redb (or other engine-level) error into [`StoreError::Io`].
fn io(e: impl Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn op_key(id: &str) -> String {
    format!("operations/{id}")
}

fn encode<T: serde::Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Io(format!("encoding {what}: {e}")))
}

fn decode_op(id: &str, bytes: &[u8]) -> Result<OperationRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: op_key(id),
        reason: e.to_string(),
    })
}

fn decode_event(id: &str, seq: u64, bytes: &[u8]) -> Result<EventRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: format!("events/{id}/{seq}"),
        reason: e.to_string(),
    })
}

fn make_cursor(create_time_ms: i64, id: &str) -> String {
    format!("{create_time_ms}:{id}")
}

fn parse_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let malformed = |reason: &str| StoreError::Corrupt {
        key: "page_token".to_string(),
        reason: reason.to_string(),
    };
    let (ms, id) = cursor
        .split_once(':')
        .ok_or_else(|| malformed("missing ':' separator"))?;
    let ms: i64 = ms
        .parse()
        .map_err(|_| malformed("time component is not an integer"))?;
    if id.is_empty() {
        return Err(malformed("empty operation id"));
    }
    Ok((ms, id.to_string()))
}

/// The redb-backed [`Store`].
pub struct RedbStore {
    db: Database,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens (creating if missing, along with its parent directory) the store
    /// at `path`, creates every table, and writes or checks the schema version.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| open_err(format!("creating directory {}: {e}", parent.display())))?;
        }
        // Only a missing file means "new store": an emptied or foreign file
        // must not silently become one, losing every record.
        let existed = match std::fs::metadata(path) {
            Ok(m) if m.is_file() && m.len() == 0 => {
                return Err(open_err(
                    "the file is empty (0 bytes), so every operation and setting it held is \
                     gone; restore it from a backup, or move it away to start with an empty \
                     store"
                        .into(),
                ));
            }
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(open_err(e.to_string())),
        };
        let db = if existed {
            Database::open(path)
        } else {
            Database::create(path)
        }
        .map_err(|e| open_err(e.to_string()))?;

        let txn = db.begin_write().map_err(io)?;
        {
            let mut meta = txn.open_table(META).map_err(io)?;
            let found = meta
                .get(SCHEMA_VERSION_KEY)
                .map_err(io)?
                .map(|guard| guard.value());
            match found {
                Some(v) if v > u64::from(SCHEMA_VERSION) => {
                    // Dropping `txn` uncommitted aborts it; nothing is written.
                    return Err(StoreError::SchemaTooNew {
                        found: u32::try_from(v).unwrap_or(u32::MAX),
                        supported: SCHEMA_VERSION,
                    });
                }
                Some(v) if v == u64::from(SCHEMA_VERSION) => {}
                // A store file provd did not write (or whose marker is gone).
                None if existed => {
                    return Err(open_err(
                        "it holds no provd schema marker: not a provd state store, or its \
                         contents were lost; restore it from a backup, or move it away to \
                         start with an empty store"
                            .into(),
                    ));
                }
                // New store, or an older schema. There are no migrations yet
                // (version 1 is the first); add them here when bumping.
                _ => {
                    meta.insert(SCHEMA_VERSION_KEY, u64::from(SCHEMA_VERSION))
                        .map_err(io)?;
                }
            }
        }
        create_tables(&txn)?;
        txn.commit().map_err(io)?;
        Ok(RedbStore { db })
    }
}

fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(OPERATIONS).map_err(io)?;
    txn.open_table(EVENTS).map_err(io)?;
    txn.open_table(REQUEST_IDS).map_err(io)?;
    txn.open_table(OP_ORDER).map_err(io)?;
    txn.open_table(CONFIG).map_err(io)?;
    txn.open_table(META).map_err(io)?;
    Ok(())
}

/// Replaces an existing operation record inside `txn`, keeping the order
/// index in step if `create_time_ms` changed. `NotFound` if it doesn't exist.
fn replace_operation(txn: &WriteTransaction, op: &OperationRecord) -> Result<(), StoreError> {
    let bytes = encode("operation", op)?;
    let mut ops = txn.open_table(OPERATIONS).map_err(io)?;
    let old_time = match ops.get(op.id.as_str()).map_err(io)? {
        None => return Err(StoreError::NotFound(op.id.clone())),
        Some(old) => decode_op(&op.id, old.value())?.create_time_ms,
    };
    ops.insert(op.id.as_str(), bytes.as_slice()).map_err(io)?;
    if old_time != op.create_time_ms {
        let mut order = txn.open_table(OP_ORDER).map_err(io)?;
        order.remove((old_time, op.id.as_str())).map_err(io)?;
        order
            .insert((op.create_time_ms, op.id.as_str()), ())
            .map_err(io)?;
    }
    Ok(())
}

/// Whether an event is committed to disk before `append_event` returns:
/// a step's start (so after a crash the store names the step the operation
/// was in, with every earlier step's events), what a caller acts on (a
/// warning, an action asked of someone) and a state change are; the
/// progress and end of the step in flight are not.
fn must_be_durable(event: &EventRecord) -> bool {
    matches!(
        event.kind,
        EventKind::StepStarted
            | EventKind::Warning
            | EventKind::ActionRequired
            | EventKind::StateChanged
    )
}

impl Store for RedbStore {
    fn create_operation(&self, op: &OperationRecord) -> Result<(), StoreError> {
        let bytes = encode("operation", op)?;
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut ops = txn.open_table(OPERATIONS).map_err(io)?;
            if ops.get(op.id.as_str()).map_err(io)?.is_some() {
                return Err(StoreError::Io(format!(
                    "operation {} already exists",
                    op.id
                )));
            }
            if let Some(request_id) = &op.request_id {
                let mut rids = txn.open_table(REQUEST_IDS).map_err(io)?;
                let existing = rids
                    .get(request_id.as_str())
                    .map_err(io)?
                    .map(|guard| guard.value().to_string());
                if let Some(existing) = existing {
                    return Err(StoreError::RequestIdTaken { existing });
                }
                rids.insert(request_id.as_str(), op.id.as_str())
                    .map_err(io)?;
            }
            ops.insert(op.id.as_str(), bytes.as_slice()).map_err(io)?;
            let mut order = txn.open_table(OP_ORDER).map_err(io)?;
            order
                .insert((op.create_time_ms, op.id.as_str()), ())
                .map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    fn operation_for_request_id(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let rids = txn.open_table(REQUEST_IDS).map_err(io)?;
        Ok(rids
            .get(request_id)
            .map_err(io)?
            .map(|guard| guard.value().to_string()))
    }

    fn get_operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let ops = txn.open_table(OPERATIONS).map_err(io)?;
        match ops.get(id).map_err(io)? {
            None => Ok(None),
            Some(guard) => decode_op(id, guard.value()).map(Some),
        }
    }

    fn update_operation(&self, op: &OperationRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        replace_operation(&txn, op)?;
        txn.commit().map_err(io)
    }

    fn append_event(&self, op: &OperationRecord, event: &EventRecord) -> Result<(), StoreError> {
        let bytes = encode("event", event)?;
        let mut txn = self.db.begin_write().map_err(io)?;
        if !must_be_durable(event) {
            // A step's progress and end are many events (tens per apply)
            // and each fsync costs the host more than the step itself; the
            // next durable commit (the next step's start, a state change,
            // any record, a clean shutdown) persists them with it.
            txn.set_durability(Durability::None).map_err(io)?;
        }
        replace_operation(&txn, op)?;
        {
            let mut events = txn.open_table(EVENTS).map_err(io)?;
            events
                .insert((op.id.as_str(), event.sequence), bytes.as_slice())
                .map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    fn events_after(&self, id: &str, after: u64) -> Result<Vec<EventRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let events = txn.open_table(EVENTS).map_err(io)?;
        let range = events
            .range((
                Bound::Excluded((id, after)),
                Bound::Included((id, u64::MAX)),
            ))
            .map_err(io)?;
        let mut out = Vec::new();
        for entry in range {
            let (key, value) = entry.map_err(io)?;
            let (_, seq) = key.value();
            out.push(decode_event(id, seq, value.value())?);
        }
        Ok(out)
    }

    fn list_operations(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let cursor = query.after.as_deref().map(parse_cursor).transpose()?;
        // The caller validates limit ≥ 1; guard anyway so a 0 can't produce
        // an empty page with a cursor that never advances.
        let limit = query.limit.max(1);

        let txn = self.db.begin_read().map_err(io)?;
        let order = txn.open_table(OP_ORDER).map_err(io)?;
        let ops = txn.open_table(OPERATIONS).map_err(io)?;
        // The creation-time bounds and the cursor narrow the index range;
        // the other filters are read from each record.
        let lower = match query.created_from_ms {
            Some(ms) => Bound::Included((ms, "")),
            None => Bound::Unbounded,
        };
        let upper = match (&cursor, query.created_before_ms) {
            (Some((ms, id)), Some(before)) if *ms < before => Bound::Excluded((*ms, id.as_str())),
            (_, Some(before)) => Bound::Excluded((before, "")),
            (Some((ms, id)), None) => Bound::Excluded((*ms, id.as_str())),
            (None, None) => Bound::Unbounded,
        };
        // redb refuses a range whose start is past its end.
        let empty = match (&lower, &upper) {
            (Bound::Included(from), Bound::Excluded(to)) => from >= to,
            _ => false,
        };
        if empty {
            return Ok(ListPage::default());
        }
        let range = order.range((lower, upper)).map_err(io)?;

        let mut page = ListPage::default();
        let mut last: Option<(i64, String)> = None;
        for entry in range.rev() {
            let (key, _) = entry.map_err(io)?;
            let (ms, id) = key.value();
            let record = match ops.get(id).map_err(io)? {
                Some(guard) => decode_op(id, guard.value())?,
                None => {
                    return Err(StoreError::Corrupt {
                        key: format!("op_order/{}", make_cursor(ms, id)),
                        reason: "index entry names a missing operation".to_string(),
                    });
                }
            };
            if query.state.is_some_and(|s| s != record.state)
                || query.kind.is_some_and(|k| k != record.kind)
                || query
                    .initiator
                    .as_ref()
                    .is_some_and(|i| *i != record.initiator)
            {
                continue;
            }
            if page.operations.len() == limit {
                // One more match exists beyond this page.
                page.next = last.as_ref().map(|(ms, id)| make_cursor(*ms, id));
                break;
            }
            last = Some((ms, id.to_string()));
            page.operations.push(record);
        }
        Ok(page)
    }

    fn unfinished_operations(&self) -> Result<Vec<OperationRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let ops = txn.open_table(OPERATIONS).map_err(io)?;
        let mut out = Vec::new();
        for entry in ops.iter().map_err(io)? {
            let (key, value) = entry.map_err(io)?;
            let record = decode_op(key.value(), value.value())?;
            if !record.state.is_terminal() {
                out.push(record);
            }
        }
        out.sort_by(|a, b| {
            (a.create_time_ms, a.id.as_str()).cmp(&(b.create_time_ms, b.id.as_str()))
        });
        Ok(out)
    }

    fn put_config(
        &self,
        namespace: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut config = txn.open_table(CONFIG).map_err(io)?;
            match value {
                Some(bytes) => {
                    config.insert((namespace, key), bytes).map_err(io)?;
                }
                None => {
                    config.remove((namespace, key)).map_err(io)?;
                }
            }
        }
        txn.commit().map_err(io)
    }

    fn get_config(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let config = txn.open_table(CONFIG).map_err(io)?;
        Ok(config
            .get((namespace, key))
            .map_err(io)?
            .map(|guard| guard.value().to_vec()))
    }

    fn list_config(&self, namespace: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let config = txn.open_table(CONFIG).map_err(io)?;
        let range = config
            .range((Bound::Included((namespace, "")), Bound::Unbounded))
            .map_err(io)?;
        let mut out = Vec::new();
        for entry in range {
            let (key, value) = entry.map_err(io)?;
            let (ns, k) = key.value();
            if ns != namespace {
                break;
            }
            out.push((k.to_string(), value.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "redb_store_tests.rs"]
mod tests;
