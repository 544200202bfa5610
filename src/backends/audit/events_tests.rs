//! The event ids against their documented table, and each event's id, type
//! and text.

use std::collections::BTreeMap;

use super::*;
use crate::backends::audit::line::tests::call;
use crate::backends::audit::{Checkpoint, Recovered};
use crate::model::{AuditSuppressed, OperationErrorRecord, OperationKind};

/// The rows `| id | type | … |` of README's "Event log" section.
fn documented() -> Vec<(u32, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/windows/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("The Windows event log"))
        .expect("README.md has a section \"The Windows event log\"");
    section
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix('|')?.split('|').map(str::trim);
            let id = cells.next()?.parse().ok()?;
            Some((id, cells.next()?.to_owned()))
        })
        .collect()
}

#[test]
fn every_event_id_is_in_the_readme_table_once_with_its_type_and_nothing_else_is() {
    let table = documented();
    let mut rows: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
    for (id, level) in &table {
        rows.entry(*id).or_default().push(level);
    }
    let twice: Vec<_> = rows.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(twice.is_empty(), "ids documented more than once: {twice:?}");
    let code: BTreeMap<u32, &str> = EventId::ALL
        .iter()
        .map(|e| (e.id(), e.level().name()))
        .collect();
    assert_eq!(code.len(), EventId::ALL.len(), "two events share an id");
    let documented: BTreeMap<u32, &str> = rows.iter().map(|(id, r)| (*id, r[0])).collect();
    assert_eq!(code, documented, "code (left) and README's table (right)");
}

#[test]
fn the_msi_registers_the_source_as_provd_service_install_does() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/windows/provd.wxs");
    let wxs = std::fs::read_to_string(path).unwrap();
    let wxs = wxs.split_whitespace().collect::<Vec<_>>().join(" ");
    // wixl 0.101 writes an expandable value as given: the "#%" is in the file.
    for value in [
        format!(
            r##"Key="{SOURCE_KEY}" Name="EventMessageFile" Type="expandable" Value="#%{MESSAGE_FILE}""##
        ),
        format!(
            r#"Key="{SOURCE_KEY}" Name="TypesSupported" Type="integer" Value="{TYPES_SUPPORTED}""#
        ),
    ] {
        assert!(wxs.contains(&value), "provd.wxs lacks {value}");
    }
}

fn sealed(entry: Entry) -> Sealed {
    Sealed {
        seq: 42,
        time_ms: 1_700_000_000_123,
        hash: "cd".repeat(32),
        prev_hash: "ab".repeat(32),
        entry,
    }
}

#[test]
fn each_audit_record_has_its_id_and_carries_the_files_line() {
    let mut failed = call(1);
    failed.code = "FAILED_PRECONDITION".into();
    let mut denied = call(2);
    denied.code = "PERMISSION_DENIED".into();
    let cases = [
        (
            Entry::Call(call(1)),
            1000,
            Level::Information,
            "admin called /provd.v1.AgentService/Install: OK",
        ),
        (
            Entry::Call(failed),
            1001,
            Level::Information,
            "admin called /provd.v1.AgentService/Install: FAILED_PRECONDITION",
        ),
        (
            Entry::Denied(denied),
            1002,
            Level::Warning,
            "admin was denied /provd.v1.AgentService/Install (PERMISSION_DENIED) from 127.0.0.1:50000",
        ),
        (
            Entry::Suppressed(AuditSuppressed {
                count: 7,
                ..AuditSuppressed::default()
            }),
            1003,
            Level::Warning,
            "7 denied calls suppressed (over the audit rate)",
        ),
        (
            Entry::Checkpoint(Checkpoint {
                pruned: 30,
                last_seq: 30,
                last_hash: "ef".repeat(32),
                signer: String::new(),
                scheme: String::new(),
                signature: String::new(),
            }),
            1004,
            Level::Information,
            "audit log pruned through record 30 (30 in all)",
        ),
        (
            Entry::Recovered(Recovered {
                torn_bytes: 12,
                torn_sha256: "00".repeat(32),
            }),
            1005,
            Level::Warning,
            "audit log: a torn last line of 12 bytes was removed at start",
        ),
    ];
    for (entry, id, level, summary) in cases {
        let event = audit(&sealed(entry));
        assert_eq!((event.id.id(), event.id.level()), (id, level), "{summary}");
        let (first, json) = event.text.split_once("\r\n\r\n").unwrap();
        assert_eq!(first, summary);
        let line: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(line["seq"], 42);
        assert_eq!(line["hash"], "cd".repeat(32));
    }
}

fn op(state: OperationState, error: Option<OperationErrorRecord>) -> OperationRecord {
    OperationRecord {
        id: "3f2a".into(),
        kind: OperationKind::CreateGmsa,
        state,
        request_id: Some("rid-1".into()),
        request_fingerprint: Some("ff".repeat(32)),
        description: "create gMSA provAgentgMSA in lab.example.test".into(),
        initiator: "admin".into(),
        create_time_ms: 1,
        update_time_ms: 2,
        end_time_ms: Some(2),
        error,
        cancel_requested: false,
        event_count: 5,
        result: BTreeMap::from([("sid".into(), "S-1-5-21-1".into())]),
    }
}

fn error(code: &str, reason: Option<&str>, message: &str) -> Option<OperationErrorRecord> {
    Some(OperationErrorRecord {
        code: code.into(),
        message: message.into(),
        step: "create".into(),
        reason: reason.map(str::to_owned),
    })
}

#[test]
fn an_operation_is_reported_once_it_ends_with_an_id_per_outcome() {
    for state in [OperationState::Pending, OperationState::Running] {
        assert_eq!(operation(&op(state, None)), None, "{state:?}");
    }
    let cases = [
        (OperationState::Succeeded, None, 2000, Level::Information),
        (
            OperationState::Failed,
            error(
                "FAILED_PRECONDITION",
                Some("NO_KDS_ROOT_KEY"),
                "no KDS root key",
            ),
            2001,
            Level::Error,
        ),
        (
            OperationState::Cancelled,
            error("CANCELLED", None, "cancelled by request"),
            2002,
            Level::Information,
        ),
        (
            OperationState::Interrupted,
            error(
                "ABORTED",
                None,
                "provd stopped while this operation was running",
            ),
            2003,
            Level::Warning,
        ),
    ];
    for (state, error, id, level) in cases {
        let event = operation(&op(state, error)).unwrap();
        assert_eq!((event.id.id(), event.id.level()), (id, level), "{state:?}");
    }
}

#[test]
fn an_operation_event_says_what_ended_how_and_nothing_else() {
    let done = operation(&op(OperationState::Succeeded, None)).unwrap();
    assert_eq!(
        done.text,
        "CREATE_GMSA operation 3f2a started by admin: SUCCEEDED\r\n\r\n\
         {\"operation_id\":\"3f2a\",\"kind\":\"CREATE_GMSA\",\"state\":\"SUCCEEDED\",\
         \"initiator\":\"admin\"}"
    );
    let failed = operation(&op(
        OperationState::Failed,
        error(
            "FAILED_PRECONDITION",
            Some("NO_KDS_ROOT_KEY"),
            "no KDS root key",
        ),
    ))
    .unwrap();
    assert_eq!(
        failed.text,
        "CREATE_GMSA operation 3f2a started by admin: FAILED (FAILED_PRECONDITION, \
         NO_KDS_ROOT_KEY) in step \"create\": no KDS root key\r\n\r\n\
         {\"operation_id\":\"3f2a\",\"kind\":\"CREATE_GMSA\",\"state\":\"FAILED\",\
         \"initiator\":\"admin\",\"error\":{\"code\":\"FAILED_PRECONDITION\",\
         \"message\":\"no KDS root key\",\"step\":\"create\",\"reason\":\"NO_KDS_ROOT_KEY\"}}"
    );
    // The request's fields and the result stay in the store.
    for text in [&done.text, &failed.text] {
        for absent in ["rid-1", "provAgentgMSA", "S-1-5-21-1", &"ff".repeat(32)] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }
    let cancelled = operation(&op(
        OperationState::Cancelled,
        error("CANCELLED", None, "cancelled by request"),
    ))
    .unwrap();
    assert!(
        cancelled
            .text
            .starts_with("CREATE_GMSA operation 3f2a started by admin: CANCELLED\r\n\r\n"),
        "{}",
        cancelled.text
    );
}

#[test]
fn the_service_says_it_started_where_stopped_or_why_it_failed() {
    let version = env!("CARGO_PKG_VERSION");
    let started = service(&ServiceEvent::Started {
        listen: "127.0.0.1:8443".parse().unwrap(),
    });
    assert_eq!(
        (started.id.id(), started.id.level(), started.text),
        (
            100,
            Level::Information,
            format!(
                "provd {version} started: serving gRPC and HTTP/JSON over mTLS on 127.0.0.1:8443"
            )
        )
    );
    let stopped = service(&ServiceEvent::Stopped);
    assert_eq!(
        (stopped.id.id(), stopped.id.level(), stopped.text),
        (101, Level::Information, format!("provd {version} stopped"))
    );
    let failed = service(&ServiceEvent::Failed {
        error: "cannot listen on 127.0.0.1:8443: address in use".into(),
    });
    assert_eq!(
        (failed.id.id(), failed.id.level(), failed.text),
        (
            102,
            Level::Error,
            format!("provd {version} failed: cannot listen on 127.0.0.1:8443: address in use")
        )
    );
}
