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

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{EventRecord, ListPage, ListQuery, OperationRecord, SCHEMA_VERSION, Store, StoreError};

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
        let db = Database::create(path).map_err(|e| open_err(e.to_string()))?;

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
        let txn = self.db.begin_write().map_err(io)?;
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
        let range = match &cursor {
            Some((ms, id)) => order.range((Bound::Unbounded, Bound::Excluded((*ms, id.as_str())))),
            None => order.iter(),
        }
        .map_err(io)?;

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
mod tests {
    use super::*;
    use crate::backends::store::{EventKind, OperationKind, OperationState};
    use std::collections::BTreeMap;

    fn op(id: &str, t: i64, kind: OperationKind, state: OperationState) -> OperationRecord {
        OperationRecord {
            id: id.to_string(),
            kind,
            state,
            request_id: None,
            description: format!("op {id}"),
            initiator: "tester".to_string(),
            create_time_ms: t,
            update_time_ms: t,
            end_time_ms: None,
            error: None,
            cancel_requested: false,
            event_count: 0,
            result: BTreeMap::new(),
        }
    }

    fn event(seq: u64) -> EventRecord {
        EventRecord {
            sequence: seq,
            time_ms: 1000 + seq as i64,
            step: "step".to_string(),
            kind: EventKind::Progress,
            message: format!("event {seq}"),
            percent: seq as u32,
            attributes: BTreeMap::from([("k".to_string(), seq.to_string())]),
        }
    }

    fn open_tmp() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("nested/dir/state.redb")).unwrap();
        (dir, store)
    }

    #[test]
    fn create_and_get() {
        let (_dir, store) = open_tmp();
        let mut rec = op("a", 10, OperationKind::Install, OperationState::Pending);
        rec.result.insert("x".into(), "y".into());
        store.create_operation(&rec).unwrap();
        assert_eq!(store.get_operation("a").unwrap(), Some(rec));
        assert_eq!(store.get_operation("missing").unwrap(), None);
    }

    #[test]
    fn duplicate_operation_id_rejected() {
        let (_dir, store) = open_tmp();
        let rec = op("a", 10, OperationKind::Install, OperationState::Pending);
        store.create_operation(&rec).unwrap();
        assert!(store.create_operation(&rec).is_err());
    }

    #[test]
    fn request_id_collision() {
        let (_dir, store) = open_tmp();
        let mut first = op("a", 10, OperationKind::Install, OperationState::Pending);
        first.request_id = Some("req-1".into());
        store.create_operation(&first).unwrap();
        assert_eq!(
            store.operation_for_request_id("req-1").unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(store.operation_for_request_id("req-2").unwrap(), None);

        let mut second = op("b", 11, OperationKind::Install, OperationState::Pending);
        second.request_id = Some("req-1".into());
        match store.create_operation(&second) {
            Err(StoreError::RequestIdTaken { existing }) => assert_eq!(existing, "a"),
            other => panic!("expected RequestIdTaken, got {other:?}"),
        }
        // The failed create left nothing behind.
        assert_eq!(store.get_operation("b").unwrap(), None);
        let page = store
            .list_operations(&ListQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.operations.len(), 1);
    }

    #[test]
    fn update_and_append_require_existing_operation() {
        let (_dir, store) = open_tmp();
        let rec = op("ghost", 10, OperationKind::Install, OperationState::Running);
        assert!(matches!(
            store.update_operation(&rec),
            Err(StoreError::NotFound(id)) if id == "ghost"
        ));
        assert!(matches!(
            store.append_event(&rec, &event(1)),
            Err(StoreError::NotFound(id)) if id == "ghost"
        ));
        assert!(store.events_after("ghost", 0).unwrap().is_empty());
    }

    #[test]
    fn update_replaces_record() {
        let (_dir, store) = open_tmp();
        let mut rec = op("a", 10, OperationKind::Install, OperationState::Pending);
        store.create_operation(&rec).unwrap();
        rec.state = OperationState::Succeeded;
        rec.end_time_ms = Some(20);
        store.update_operation(&rec).unwrap();
        assert_eq!(store.get_operation("a").unwrap(), Some(rec));
    }

    #[test]
    fn events_after_ordering() {
        let (_dir, store) = open_tmp();
        let mut a = op("a", 10, OperationKind::Install, OperationState::Running);
        let mut b = op("b", 11, OperationKind::Install, OperationState::Running);
        store.create_operation(&a).unwrap();
        store.create_operation(&b).unwrap();
        // Interleave, and go past 9 so lexical vs numeric order would differ.
        for seq in 1..=12 {
            a.event_count = seq;
            a.update_time_ms = 100 + seq as i64;
            store.append_event(&a, &event(seq)).unwrap();
            if seq <= 3 {
                b.event_count = seq;
                store.append_event(&b, &event(seq)).unwrap();
            }
        }
        let all = store.events_after("a", 0).unwrap();
        assert_eq!(
            all.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            (1..=12).collect::<Vec<_>>()
        );
        assert_eq!(all[4], event(5));
        let tail = store.events_after("a", 9).unwrap();
        assert_eq!(
            tail.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![10, 11, 12]
        );
        assert!(store.events_after("a", 12).unwrap().is_empty());
        assert!(store.events_after("a", u64::MAX).unwrap().is_empty());
        assert_eq!(store.events_after("b", 1).unwrap().len(), 2);
        // The operation record was stored with the event.
        let stored = store.get_operation("a").unwrap().unwrap();
        assert_eq!(stored.event_count, 12);
        assert_eq!(stored.update_time_ms, 112);
    }

    fn ids(page: &ListPage) -> Vec<&str> {
        page.operations.iter().map(|o| o.id.as_str()).collect()
    }

    #[test]
    fn list_paging_newest_first_with_filters() {
        let (_dir, store) = open_tmp();
        use OperationKind::*;
        use OperationState::*;
        let records = [
            op("op01", 100, Install, Succeeded),
            op("op02", 200, CreateGmsa, Running),
            op("op03", 300, Install, Running),
            op("op04", 300, Install, Failed), // same time as op03: id breaks tie
            op("op05", 400, AddDirectory, Running),
            op("op06", 500, Install, Running),
            op("op07", -50, Install, Running), // negative times sort oldest
            op("op08", 600, CreateGmsa, Succeeded),
        ];
        for r in &records {
            store.create_operation(r).unwrap();
        }

        // Unfiltered, pages of 3.
        let mut query = ListQuery {
            limit: 3,
            ..Default::default()
        };
        let p1 = store.list_operations(&query).unwrap();
        assert_eq!(ids(&p1), ["op08", "op06", "op05"]);
        query.after = p1.next.clone();
        let p2 = store.list_operations(&query).unwrap();
        assert_eq!(ids(&p2), ["op04", "op03", "op02"]);
        query.after = p2.next.clone();
        let p3 = store.list_operations(&query).unwrap();
        assert_eq!(ids(&p3), ["op01", "op07"]);
        assert_eq!(p3.next, None);

        // Exactly-full last page: no next cursor.
        let all = store
            .list_operations(&ListQuery {
                limit: 8,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.operations.len(), 8);
        assert_eq!(all.next, None);

        // Filter by kind + state across pages of 2.
        let mut query = ListQuery {
            state: Some(Running),
            kind: Some(Install),
            limit: 2,
            after: None,
        };
        let p1 = store.list_operations(&query).unwrap();
        assert_eq!(ids(&p1), ["op06", "op03"]);
        assert!(p1.next.is_some());
        query.after = p1.next.clone();
        let p2 = store.list_operations(&query).unwrap();
        assert_eq!(ids(&p2), ["op07"]);
        assert_eq!(p2.next, None);

        // Filter where the page fills exactly and no more matches follow.
        let p = store
            .list_operations(&ListQuery {
                kind: Some(CreateGmsa),
                limit: 2,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&p), ["op08", "op02"]);
        assert_eq!(p.next, None);

        // State-only filter.
        let p = store
            .list_operations(&ListQuery {
                state: Some(Succeeded),
                limit: 1,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&p), ["op08"]);
        let p = store
            .list_operations(&ListQuery {
                state: Some(Succeeded),
                limit: 1,
                after: p.next,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&p), ["op01"]);
        assert_eq!(p.next, None);

        // Malformed cursors.
        for bad in ["", "nocolon", "abc:op01", "12:"] {
            let r = store.list_operations(&ListQuery {
                limit: 2,
                after: Some(bad.to_string()),
                ..Default::default()
            });
            assert!(
                matches!(r, Err(StoreError::Corrupt { ref key, .. }) if key == "page_token"),
                "cursor {bad:?}: {r:?}"
            );
        }
    }

    #[test]
    fn list_tracks_create_time_changes() {
        let (_dir, store) = open_tmp();
        let mut a = op("a", 10, OperationKind::Install, OperationState::Pending);
        store
            .create_operation(&op(
                "b",
                20,
                OperationKind::Install,
                OperationState::Pending,
            ))
            .unwrap();
        store.create_operation(&a).unwrap();
        a.create_time_ms = 30;
        store.update_operation(&a).unwrap();
        let page = store
            .list_operations(&ListQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids(&page), ["a", "b"]);
    }

    #[test]
    fn unfinished_operations_excludes_terminal() {
        let (_dir, store) = open_tmp();
        use OperationState::*;
        for (i, state) in [Pending, Running, Succeeded, Failed, Cancelled, Interrupted]
            .into_iter()
            .enumerate()
        {
            store
                .create_operation(&op(
                    &format!("op{i}"),
                    i as i64,
                    OperationKind::Install,
                    state,
                ))
                .unwrap();
        }
        let unfinished = store.unfinished_operations().unwrap();
        assert_eq!(
            unfinished.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
            ["op0", "op1"]
        );
    }

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let mut rec = op("a", 10, OperationKind::Install, OperationState::Running);
        rec.request_id = Some("req".into());
        {
            let store = RedbStore::open(&path).unwrap();
            store.create_operation(&rec).unwrap();
            rec.event_count = 1;
            store.append_event(&rec, &event(1)).unwrap();
            store.put_config("ns", "k", Some(b"v")).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.get_operation("a").unwrap(), Some(rec));
        assert_eq!(
            store.operation_for_request_id("req").unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(store.events_after("a", 0).unwrap(), vec![event(1)]);
        assert_eq!(store.get_config("ns", "k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(store.unfinished_operations().unwrap().len(), 1);
    }

    #[test]
    fn second_open_while_open_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let _store = RedbStore::open(&path).unwrap();
        assert!(matches!(
            RedbStore::open(&path),
            Err(StoreError::Open { .. })
        ));
    }

    #[test]
    fn unopenable_path_is_open_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be.
        let path = dir.path().join("is-a-dir");
        std::fs::create_dir(&path).unwrap();
        match RedbStore::open(&path) {
            Err(StoreError::Open { path: p, reason }) => {
                assert!(p.contains("is-a-dir"));
                assert!(!reason.is_empty());
            }
            other => panic!("expected Open error, got {other:?}"),
        }
    }

    #[test]
    fn schema_too_new_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        drop(RedbStore::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(SCHEMA_VERSION_KEY, u64::from(SCHEMA_VERSION) + 1)
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        match RedbStore::open(&path) {
            Err(StoreError::SchemaTooNew { found, supported }) => {
                assert_eq!(found, SCHEMA_VERSION + 1);
                assert_eq!(supported, SCHEMA_VERSION);
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn config_put_get_delete_list() {
        let (_dir, store) = open_tmp();
        store.put_config("ns", "b", Some(b"2")).unwrap();
        store.put_config("ns", "a", Some(b"1")).unwrap();
        store.put_config("ns2", "a", Some(b"other")).unwrap();
        store.put_config("n", "z", Some(b"prefix")).unwrap();
        store.put_config("ns", "", Some(b"empty key")).unwrap();
        assert_eq!(store.get_config("ns", "a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get_config("ns", "missing").unwrap(), None);

        store.put_config("ns", "a", Some(b"1b")).unwrap();
        assert_eq!(
            store.list_config("ns").unwrap(),
            vec![
                (String::new(), b"empty key".to_vec()),
                ("a".to_string(), b"1b".to_vec()),
                ("b".to_string(), b"2".to_vec()),
            ]
        );

        store.put_config("ns", "a", None).unwrap();
        store.put_config("ns", "never-existed", None).unwrap();
        assert_eq!(store.get_config("ns", "a").unwrap(), None);
        assert_eq!(
            store.list_config("ns").unwrap(),
            vec![
                (String::new(), b"empty key".to_vec()),
                ("b".to_string(), b"2".to_vec())
            ]
        );
        assert_eq!(
            store.list_config("ns2").unwrap(),
            vec![("a".to_string(), b"other".to_vec())]
        );
        assert!(store.list_config("none").unwrap().is_empty());
    }
}
