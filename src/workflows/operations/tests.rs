//! The engine's one exit: every terminal outcome, live or recovered,
//! reaches the operation mirrors once, after the store has it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::backends::store::{ListPage, ListQuery};

/// Operations in memory; what the engine needs of a store, nothing more.
#[derive(Default)]
struct MemoryStore {
    ops: Mutex<HashMap<String, OperationRecord>>,
}

impl Store for MemoryStore {
    fn create_operation(&self, op: &OperationRecord) -> Result<(), StoreError> {
        self.ops.lock().unwrap().insert(op.id.clone(), op.clone());
        Ok(())
    }
    fn operation_for_request_id(&self, _: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
    fn get_operation(&self, id: &str) -> Result<Option<OperationRecord>, StoreError> {
        Ok(self.ops.lock().unwrap().get(id).cloned())
    }
    fn update_operation(&self, op: &OperationRecord) -> Result<(), StoreError> {
        self.create_operation(op)
    }
    fn append_event(&self, op: &OperationRecord, _: &EventRecord) -> Result<(), StoreError> {
        self.create_operation(op)
    }
    fn events_after(&self, _: &str, _: u64) -> Result<Vec<EventRecord>, StoreError> {
        Ok(Vec::new())
    }
    fn list_operations(&self, _: &ListQuery) -> Result<ListPage, StoreError> {
        Ok(ListPage::default())
    }
    fn unfinished_operations(&self) -> Result<Vec<OperationRecord>, StoreError> {
        let ops = self.ops.lock().unwrap();
        Ok(ops
            .values()
            .filter(|o| !o.state.is_terminal())
            .cloned()
            .collect())
    }
    fn put_config(&self, _: &str, _: &str, _: Option<&[u8]>) -> Result<(), StoreError> {
        Ok(())
    }
    fn get_config(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    fn list_config(&self, _: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(Vec::new())
    }
}

/// What the mirror was given, with the stored record at that moment.
#[derive(Default)]
struct Recording {
    store: Mutex<Option<Arc<MemoryStore>>>,
    seen: Mutex<Vec<(OperationRecord, Option<OperationRecord>)>>,
}

impl OperationMirror for Recording {
    fn finished(&self, op: &OperationRecord) {
        let stored = self
            .store
            .lock()
            .unwrap()
            .as_ref()
            .map(|s| s.ops.lock().unwrap()[&op.id].clone());
        self.seen.lock().unwrap().push((op.clone(), stored));
    }
}

fn spec(kind: OperationKind) -> OperationSpec {
    OperationSpec {
        kind,
        request_id: None,
        fingerprint: RequestFingerprint::new(),
        description: "test".into(),
        initiator: "admin".into(),
    }
}

async fn ended(engine: &Arc<Operations>, id: &str) -> OperationRecord {
    for _ in 0..500 {
        if engine.live(id).is_none() {
            return engine.store.get_operation(id).unwrap().unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("operation {id} did not end");
}

#[tokio::test]
async fn each_outcome_reaches_the_mirrors_once_after_the_store_has_it() {
    let store = Arc::new(MemoryStore::default());
    let left = OperationRecord {
        state: OperationState::Running,
        ..stored_record("left-running")
    };
    store.create_operation(&left).unwrap();
    let mirror = Arc::new(Recording::default());
    *mirror.store.lock().unwrap() = Some(store.clone());
    let engine = Operations::recover(store.clone(), vec![mirror.clone()])
        .await
        .unwrap();

    let ok = engine
        .start(spec(OperationKind::SignIn), |_| async {
            Ok(Outcome::new())
        })
        .await
        .unwrap();
    ended(&engine, &ok.id).await;
    let failed = engine
        .start(spec(OperationKind::CreateGmsa), |_| async {
            Err(Error::internal_msg("boom"))
        })
        .await
        .unwrap();
    ended(&engine, &failed.id).await;
    let cancelled = engine
        .start(spec(OperationKind::Uninstall), |_| async {
            Err(Error::Cancelled)
        })
        .await
        .unwrap();
    ended(&engine, &cancelled.id).await;

    let seen = mirror.seen.lock().unwrap();
    let states: Vec<(&str, OperationState)> = seen
        .iter()
        .map(|(op, _)| (op.id.as_str(), op.state))
        .collect();
    assert_eq!(
        states,
        [
            ("left-running", OperationState::Interrupted),
            (ok.id.as_str(), OperationState::Succeeded),
            (failed.id.as_str(), OperationState::Failed),
            (cancelled.id.as_str(), OperationState::Cancelled),
        ]
    );
    for (op, stored) in seen.iter() {
        assert_eq!(Some(op), stored.as_ref(), "mirrored before it was stored");
    }
    assert_eq!(seen[2].0.error.as_ref().unwrap().code, "INTERNAL");
}

fn stored_record(id: &str) -> OperationRecord {
    OperationRecord {
        id: id.into(),
        kind: OperationKind::Install,
        state: OperationState::Pending,
        request_id: None,
        request_fingerprint: None,
        description: String::new(),
        initiator: "admin".into(),
        create_time_ms: 0,
        update_time_ms: 0,
        end_time_ms: None,
        error: None,
        cancel_requested: false,
        event_count: 0,
        result: BTreeMap::new(),
    }
}
