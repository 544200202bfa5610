//! RedbStore against real files in temp directories.
use super::*;
use crate::backends::store::{EventKind, OperationKind, OperationState};
use std::collections::BTreeMap;

fn op(id: &str, t: i64, kind: OperationKind, state: OperationState) -> OperationRecord {
    OperationRecord {
        id: id.to_string(),
        kind,
        state,
        request_id: None,
        request_fingerprint: None,
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
        ..Default::default()
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
fn list_by_initiator_and_creation_time_across_pages() {
    let (_dir, store) = open_tmp();
    use OperationKind::*;
    use OperationState::*;
    for (id, t, who) in [
        ("op1", 100, "alice"),
        ("op2", 200, "bob"),
        ("op3", 300, "alice"),
        ("op4", 300, "alice"),
        ("op5", 400, "alice"),
        ("op6", 500, "bob"),
    ] {
        let mut r = op(id, t, Install, Succeeded);
        r.initiator = who.into();
        store.create_operation(&r).unwrap();
    }
    let list = |query: &ListQuery| store.list_operations(query).unwrap();
    // [200, 500): op2..op5, alice's only, pages of 2.
    let mut query = ListQuery {
        initiator: Some("alice".into()),
        created_from_ms: Some(200),
        created_before_ms: Some(500),
        limit: 2,
        ..Default::default()
    };
    let p1 = list(&query);
    assert_eq!(ids(&p1), ["op5", "op4"]);
    query.after = p1.next.clone();
    let p2 = list(&query);
    assert_eq!(ids(&p2), ["op3"]);
    assert_eq!(p2.next, None);
    // The lower bound is inclusive, the upper exclusive.
    let only = |from, before| {
        ids(&list(&ListQuery {
            created_from_ms: from,
            created_before_ms: before,
            limit: 10,
            ..Default::default()
        }))
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    assert_eq!(only(Some(300), Some(301)), ["op4", "op3"]);
    assert_eq!(only(Some(300), Some(300)), Vec::<String>::new());
    assert_eq!(only(Some(600), None), Vec::<String>::new());
    assert_eq!(only(None, Some(101)), ["op1"]);
    // A cursor past the upper bound, or one the bounds leave nothing after.
    let p = list(&ListQuery {
        created_from_ms: Some(300),
        limit: 1,
        ..Default::default()
    });
    assert_eq!(ids(&p), ["op6"]);
    let after = list(&ListQuery {
        created_from_ms: Some(300),
        created_before_ms: Some(450),
        limit: 10,
        after: p.next,
        ..Default::default()
    });
    assert_eq!(ids(&after), ["op5", "op4", "op3"]);
    let none = list(&ListQuery {
        created_from_ms: Some(300),
        limit: 10,
        after: Some("300:op3".into()),
        ..Default::default()
    });
    assert_eq!(ids(&none), Vec::<&str>::new());
    // An unknown initiator.
    assert!(
        list(&ListQuery {
            initiator: Some("Alice".into()),
            limit: 10,
            ..Default::default()
        })
        .operations
        .is_empty()
    );
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
fn an_emptied_or_foreign_file_is_refused_not_reinitialised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provd.redb");
    let store = RedbStore::open(&path).unwrap();
    store.put_config("ns", "k", Some(b"v")).unwrap();
    drop(store);
    // Reopening keeps what was stored.
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(
        store.get_config("ns", "k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    drop(store);

    std::fs::File::create(&path).unwrap(); // truncate -s 0
    match RedbStore::open(&path) {
        Err(StoreError::Open { path: p, reason }) => {
            assert!(p.ends_with("provd.redb"), "{p}");
            assert!(reason.contains("empty"), "{reason}");
        }
        other => panic!("expected Open error, got {other:?}"),
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "left as it was");

    // A redb file without provd's marker.
    let foreign = dir.path().join("foreign.redb");
    drop(redb::Database::create(&foreign).unwrap());
    match RedbStore::open(&foreign) {
        Err(StoreError::Open { reason, .. }) => assert!(reason.contains("marker"), "{reason}"),
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

/// Runs in a child process (see `a_crash_loses_only_the_progress_of_the_step_in_flight`):
/// writes `PROVD_STORE_CRASH_CHILD`'s store, then dies without closing it.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os("PROVD_STORE_CRASH_CHILD") else {
        return;
    };
    let with_warning = std::env::var_os("PROVD_STORE_CRASH_WARN").is_some();
    let store = RedbStore::open(std::path::Path::new(&path)).unwrap();
    let mut rec = op("a", 10, OperationKind::Install, OperationState::Running);
    store.create_operation(&rec).unwrap();
    let kinds = [
        EventKind::StateChanged,
        EventKind::StepStarted,
        EventKind::Progress,
        EventKind::StepSucceeded,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        rec.event_count = i as u64 + 1;
        store
            .append_event(
                &rec,
                &EventRecord {
                    kind,
                    ..event(rec.event_count)
                },
            )
            .unwrap();
    }
    if with_warning {
        rec.event_count = 5;
        let warning = EventRecord {
            kind: EventKind::Warning,
            ..event(5)
        };
        store.append_event(&rec, &warning).unwrap();
    }
    // Dies like a killed process: no destructor closes the store.
    std::process::abort();
}

#[test]
fn a_crash_loses_only_the_progress_of_the_step_in_flight() {
    // Kept without the warning: the state change and the step's start.
    for (with_warning, kept) in [(false, 2), (true, 5)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", "backends::store::redb_store::tests::crash_child"])
            .args(["--test-threads", "1"])
            .env("PROVD_STORE_CRASH_CHILD", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if with_warning {
            child.env("PROVD_STORE_CRASH_WARN", "1");
        }
        let status = child.status().unwrap();
        assert!(!status.success(), "the child must die, not finish");
        let store = RedbStore::open(&path).unwrap();
        let rec = store.get_operation("a").unwrap().expect("created durably");
        let events = store.events_after("a", 0).unwrap();
        assert_eq!(events.len(), kept, "warning written: {with_warning}");
        assert_eq!(
            rec.event_count, kept as u64,
            "the record matches its events"
        );
    }
}
