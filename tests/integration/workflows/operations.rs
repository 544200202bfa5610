//! OperationsService on the fakes: request-id idempotency, one mutating
//! operation at a time, Watch replay, Cancel, List paging and filters, and
//! the id field's errors. A running operation is an Install whose package
//! is a named pipe nobody has written yet.

use super::support_tb::*;
use crate::common::hermetic::*;
use crate::common::{feed_fifo, sha256_hex};
use provd_proto::v1;
use tonic::Code;

async fn sign_in(d: &Hermetic) -> v1::Operation {
    d.sign_in().await.1
}

#[cfg(unix)]
#[tokio::test]
async fn a_repeated_request_id_returns_the_same_operation() {
    let d = Hermetic::start().await;
    let (first, pipe) = held_install(&d, "req-1").await;
    let mut again = install_request(
        format!("file://{}", pipe.display()),
        sha256_hex(EXE_BYTES),
        true,
    );
    again.request_id = "req-1".into();
    let second = start_install(&d, again.clone()).await.unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.request_id, "req-1");

    let writer = feed_fifo(pipe, EXE_BYTES.to_vec());
    let (_, done) = d.finish(Some(first.clone())).await;
    writer.await.unwrap();
    ok(&done);
    // After the end the same id still names it, in its terminal state.
    let third = start_install(&d, again).await.unwrap();
    assert_eq!(third.id, first.id);
    assert_eq!(state(&third), v1::OperationState::Succeeded);
    assert_eq!(d.fakes.host.installs().len(), 1, "the work was done once");
    d.shutdown().await;
}

#[tokio::test]
async fn a_request_id_reused_for_another_kind_already_exists() {
    let d = Hermetic::start().await;
    let op = d
        .agent()
        .sign_in(v1::SignInRequest {
            request_id: "shared-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    let first = d.finish(op).await.1;
    ok(&first);
    let err = d
        .agent()
        .uninstall(v1::UninstallRequest {
            request_id: "shared-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
    assert_eq!(violations(&err), ["request_id"]);
    assert!(err.message().contains(&first.id), "{}", err.message());
    d.shutdown().await;
}

/// Issue 13, item 6: the same id with other fields of the same kind used to
/// return the first operation with OK, as if the new request ran.
#[tokio::test]
async fn a_request_id_reused_with_other_fields_already_exists() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let remove = |domain: &str| v1::RemoveDirectoryRequest {
        domain: domain.into(),
        request_id: "remove-1".into(),
    };
    let op = d
        .directories()
        .remove_directory(remove(DOMAIN))
        .await
        .unwrap()
        .into_inner()
        .operation;
    let first = d.finish(op).await.1;
    ok(&first);
    // The same request again, spelled differently, is a retry.
    let again = d
        .directories()
        .remove_directory(remove(&DOMAIN.to_uppercase()))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(again.id, first.id);
    // Another domain under the same id is not.
    let err = d
        .directories()
        .remove_directory(remove("other.example.test"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
    assert_eq!(violations(&err), ["request_id"]);
    assert!(err.message().contains(&first.id), "{}", err.message());
    assert!(
        err.message().contains("REMOVE_DIRECTORY"),
        "{}",
        err.message()
    );
    d.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_second_mutating_call_while_one_runs_names_the_running_operation() {
    let d = Hermetic::start().await;
    let (running, _pipe) = held_install(&d, "").await;
    let err = d.add_directory_refused().await;
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&running.id), "{}", err.message());
    assert!(
        err.message().to_ascii_lowercase().contains("install"),
        "{}",
        err.message()
    );
    let (kind, subject) = precondition(&err);
    assert_eq!(kind, "OPERATION_RUNNING");
    assert_eq!(subject, format!("operations/{}", running.id));
    assert!(d.fakes.directory.connects().is_empty(), "nothing ran");

    // Read-only calls still work meanwhile.
    let got = get_op(&d, &running.id).await;
    assert_eq!(state(&got), v1::OperationState::Running);
    d.operations()
        .cancel_operation(v1::CancelOperationRequest {
            id: running.id.clone(),
        })
        .await
        .unwrap();
    d.finish(Some(running)).await;
    d.shutdown().await;
}

#[tokio::test]
async fn watch_replays_every_event_then_ends_with_the_operation() {
    let d = Hermetic::start().await;
    let (events, op) = install_exe(&d, true).await;
    ok(&op);
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(sequences, (1..=op.event_count).collect::<Vec<_>>());

    // A late watcher of a finished operation: the same history, at once.
    let (replayed, done) = d.finish(Some(op.clone())).await;
    assert_eq!(replayed, events);
    assert_eq!(done.id, op.id);

    // after_sequence: only the later events, then the operation, then EOF.
    let mut stream = d
        .operations()
        .watch_operation(v1::WatchOperationRequest {
            id: op.id.clone(),
            after_sequence: 3,
        })
        .await
        .unwrap()
        .into_inner();
    let mut later = Vec::new();
    let mut last = None;
    while let Some(item) = stream.message().await.unwrap() {
        match item.item.unwrap() {
            v1::watch_operation_response::Item::Event(e) => later.push(e.sequence),
            v1::watch_operation_response::Item::Operation(o) => last = Some(o),
        }
    }
    assert_eq!(later, (4..=op.event_count).collect::<Vec<_>>());
    assert_eq!(state(&last.expect("the terminal operation")), state(&op));
    d.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn cancel_stops_a_running_operation_and_is_idempotent() {
    let d = Hermetic::start().await;
    let (running, _pipe) = held_install(&d, "").await;
    wait_for_step(&d, &running.id, "fetch-package").await;
    let cancel = || async {
        d.operations()
            .cancel_operation(v1::CancelOperationRequest {
                id: running.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .operation
            .unwrap()
    };
    let accepted = cancel().await;
    assert!(accepted.cancel_requested);
    let (events, done) = d.finish(Some(running.clone())).await;
    assert_eq!(state(&done), v1::OperationState::Cancelled);
    assert_eq!(done.error.as_ref().unwrap().code, "CANCELLED");
    assert!(done.end_time.is_some());
    assert!(
        events
            .iter()
            .all(|e| e.step != "install-package" && e.step != "verify-package"),
        "{events:#?}"
    );
    assert!(d.fakes.host.installs().is_empty());
    // Again: unchanged, no error.
    let again = cancel().await;
    assert_eq!(state(&again), v1::OperationState::Cancelled);
    assert_eq!(again.event_count, done.event_count);
    d.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_finished_operation_is_a_failed_precondition() {
    let d = Hermetic::start().await;
    let op = sign_in(&d).await;
    ok(&op);
    let err = d.cancel(&op.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(precondition(&err).0, "OPERATION_FINISHED");
    assert_eq!(
        state(&get_op(&d, &op.id).await),
        v1::OperationState::Succeeded
    );
    d.shutdown().await;
}

#[tokio::test]
async fn list_pages_newest_first() {
    let d = Hermetic::start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(sign_in(&d).await.id);
    }
    let dd = &d;
    let list = |page_size, page_token: String| async move {
        dd.operations()
            .list_operations(v1::ListOperationsRequest {
                page_size,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    };
    let first = list(2, String::new()).await;
    assert_eq!(first.operations.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = list(2, first.next_page_token.clone()).await;
    assert_eq!(second.operations.len(), 1);
    assert!(second.next_page_token.is_empty());
    let seen: Vec<String> = first
        .operations
        .iter()
        .chain(&second.operations)
        .map(|o| o.id.clone())
        .collect();
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");
    assert!(first.operations.iter().all(|o| o.initiator == "admin"));
    d.shutdown().await;
}

#[tokio::test]
async fn list_filters_by_kind_and_state() {
    let d = Hermetic::start().await;
    ok(&sign_in(&d).await);
    d.fakes.host.set_install_exit_code(1603);
    let failed_install = install_exe(&d, true).await.1;
    failed(&failed_install);
    let dd = &d;
    let list = |kind: v1::OperationKind, state: v1::OperationState| async move {
        dd.operations()
            .list_operations(v1::ListOperationsRequest {
                kind: kind as i32,
                state: state as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .operations
            .into_iter()
            .map(|o| o.id)
            .collect::<Vec<_>>()
    };
    use v1::OperationKind as K;
    use v1::OperationState as S;
    assert_eq!(
        list(K::Install, S::Unspecified).await,
        std::slice::from_ref(&failed_install.id)
    );
    assert_eq!(
        list(K::Unspecified, S::Failed).await,
        std::slice::from_ref(&failed_install.id)
    );
    assert_eq!(list(K::SignIn, S::Succeeded).await.len(), 1);
    assert!(list(K::SignIn, S::Failed).await.is_empty());
    assert_eq!(list(K::Unspecified, S::Unspecified).await.len(), 2);
    d.shutdown().await;
}

/// `initiator` and `[started_after, started_before)` (issue 17): who
/// started what, and when.
#[tokio::test]
async fn list_filters_by_initiator_and_creation_time() {
    let d = Hermetic::start().await;
    let alice = crate::common::channel(
        d.h.addr,
        &d.h.pki.ca_pem(),
        &d.h.pki.client("alice", &[provd::pki::Role::Admin]),
    )
    .await
    .unwrap();
    // Apart in time, so each has its own millisecond.
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(5));
    let first = sign_in(&d).await;
    ok(&first);
    pause().await;
    let op = v1::agent_service_client::AgentServiceClient::new(alice.clone())
        .sign_in(v1::SignInRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let by_alice = crate::common::finish(&alice, op).await.1;
    ok(&by_alice);
    assert_eq!(by_alice.initiator, "alice");
    pause().await;
    let last = sign_in(&d).await;
    ok(&last);

    let dd = &d;
    let list = |request: v1::ListOperationsRequest| async move {
        dd.operations().list_operations(request).await.map(|r| {
            r.into_inner()
                .operations
                .into_iter()
                .map(|o| o.id)
                .collect::<Vec<_>>()
        })
    };
    let by = |who: &str| v1::ListOperationsRequest {
        initiator: who.into(),
        ..Default::default()
    };
    assert_eq!(
        list(by("alice")).await.unwrap(),
        std::slice::from_ref(&by_alice.id)
    );
    assert_eq!(
        list(by("admin")).await.unwrap(),
        [last.id.clone(), first.id.clone()]
    );
    assert!(list(by("Alice")).await.unwrap().is_empty(), "exact match");
    // From alice's operation on: hers and the last; before it: the first.
    let created = by_alice.create_time.unwrap();
    let since = list(v1::ListOperationsRequest {
        started_after: Some(created),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(since, [last.id.clone(), by_alice.id.clone()]);
    let before = list(v1::ListOperationsRequest {
        started_before: Some(created),
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(before, std::slice::from_ref(&first.id));
    let window = list(v1::ListOperationsRequest {
        initiator: "admin".into(),
        started_after: first.create_time,
        started_before: last.create_time,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(window, std::slice::from_ref(&first.id));

    // Errors name their field.
    for (request, field) in [
        (
            v1::ListOperationsRequest {
                started_after: Some(created),
                started_before: Some(created),
                ..Default::default()
            },
            "started_before",
        ),
        (
            v1::ListOperationsRequest {
                started_after: Some(pbjson_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            },
            "started_after",
        ),
        (
            v1::ListOperationsRequest {
                started_before: Some(pbjson_types::Timestamp {
                    seconds: 253_402_300_800,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "started_before",
        ),
        (by(&"a".repeat(65)), "initiator"),
    ] {
        let err = list(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(violations(&err), [field], "{err:?}");
    }
    // Over HTTP/JSON, a time is RFC 3339.
    let answer =
        d.h.http(provd::pki::Role::Viewer)
            .post(d.h.url("/provd.v1.OperationsService/ListOperations"))
            .header("content-type", "application/json")
            .body(r#"{"initiator":"alice","startedAfter":"2000-01-01T00:00:00Z"}"#)
            .send()
            .await
            .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["operations"][0]["id"], by_alice.id.as_str(), "{body}");
    assert_eq!(body["operations"].as_array().unwrap().len(), 1);
    d.shutdown().await;
}

#[tokio::test]
async fn list_rejects_a_huge_page_and_a_foreign_token() {
    let d = Hermetic::start().await;
    let err = d
        .operations()
        .list_operations(v1::ListOperationsRequest {
            page_size: 1001,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["page_size"]);
    let err = d
        .operations()
        .list_operations(v1::ListOperationsRequest {
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["page_token"]);
    // Shaped like a token (time:id) but longer than any provd issues.
    let err = d
        .operations()
        .list_operations(v1::ListOperationsRequest {
            page_token: format!("1:{}", "a".repeat(127)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), ["page_token"]);
    assert!(err.message().contains("128 bytes"), "{}", err.message());
    d.shutdown().await;
}

/// GetOperation, WatchOperation and CancelOperation of `id`, each expected
/// to fail; their errors.
async fn errors_for_id(d: &Hermetic, id: &str) -> [tonic::Status; 3] {
    let mut ops = d.operations();
    let get = ops
        .get_operation(v1::GetOperationRequest { id: id.into() })
        .await
        .unwrap_err();
    let watch = ops
        .watch_operation(v1::WatchOperationRequest {
            id: id.into(),
            after_sequence: 0,
        })
        .await
        .map(|_| ())
        .expect_err("watch of this id fails");
    let cancel = ops
        .cancel_operation(v1::CancelOperationRequest { id: id.into() })
        .await
        .unwrap_err();
    [get, watch, cancel]
}

#[tokio::test]
async fn an_unknown_id_is_not_found_everywhere() {
    let d = Hermetic::start().await;
    let id = "0b6f7a52-3c4d-4e5f-8a9b-0c1d2e3f4a5b".to_owned();
    for err in errors_for_id(&d, &id).await {
        assert_eq!(err.code(), Code::NotFound, "{}", err.message());
        assert!(err.message().contains(&id), "{}", err.message());
    }
    d.shutdown().await;
}

#[tokio::test]
async fn a_malformed_or_empty_id_is_invalid_naming_the_field() {
    let d = Hermetic::start().await;
    for id in ["", "not-a-uuid", "operations/123"] {
        for err in errors_for_id(&d, id).await {
            assert_eq!(err.code(), Code::InvalidArgument, "{id:?}");
            assert_eq!(violations(&err), ["id"], "{id:?}");
        }
    }
    d.shutdown().await;
}

#[cfg(unix)]
#[tokio::test]
async fn two_watchers_of_a_running_operation_see_the_same_history() {
    let d = Hermetic::start().await;
    let (running, pipe) = held_install(&d, "").await;
    let a = d.finish(Some(running.clone()));
    let b = d.finish(Some(running.clone()));
    let writer = feed_fifo(pipe, EXE_BYTES.to_vec());
    let ((ea, oa), (eb, ob)) = tokio::join!(a, b);
    writer.await.unwrap();
    ok(&oa);
    assert_eq!(ea, eb);
    assert_eq!(oa.id, ob.id);
    assert_eq!(ea.len() as u64, oa.event_count);
    d.shutdown().await;
}
