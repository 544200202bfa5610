//! Issue 17's audit trail: `provd audit verify` (the real binary) on a
//! 10,000-record log with a byte flipped in the middle, a removed line, a
//! swapped pair, a torn tail and a pruned log; and a daemon on the fakes
//! recording mutating and denied calls over both transports with who, what
//! and how it ended, never a secret, and a flood of denied calls summed up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use provd::backends::audit::{AuditLog, CheckpointSigner, FileAuditLog, Retention, verify_file};
use provd::model::{AuditCall, AuditCaller, AuditEntry, AuditEvent};
use provd::pki::Role;
use provd_proto::v1;
use tonic::Code;

use crate::common::hermetic::*;
use crate::common::{DAY, Pki, sha256_hex};

fn entry(n: u64) -> AuditEntry {
    AuditEntry {
        time_ms: 1_750_000_000_000 + n as i64,
        event: AuditEvent::Call(AuditCall {
            caller: AuditCaller {
                cn: "admin".into(),
                serial: "1f2e".into(),
                issuer: "CN=provd test CA".into(),
                roles: vec!["admin".into()],
            },
            peer: "127.0.0.1:50123".into(),
            transport: "grpc".into(),
            method: "/provd.v1.DirectoryService/AddDirectory".into(),
            request_id: Some(format!("rid-{n}")),
            request_digest: Some(sha256_hex(&n.to_be_bytes())),
            code: "OK".into(),
            operation_id: Some(format!("00000000-0000-4000-8000-{n:012}")),
        }),
    }
}

/// A log of `n` records written through the real backend, in batches.
fn log_of(dir: &Path, n: u64, signer: Option<CheckpointSigner>) -> (PathBuf, FileAuditLog) {
    let path = dir.join("audit.log");
    let log = FileAuditLog::open(&path, signer).unwrap();
    let entries: Vec<_> = (1..=n).map(entry).collect();
    for batch in entries.chunks(500) {
        log.append(batch).unwrap();
    }
    (path, log)
}

/// `provd audit verify --file path [--cert cert]`: exit code, stdout, time.
fn verify(path: &Path, cert: Option<&Path>) -> (i32, String, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provd"));
    command.args(["audit", "verify", "--file"]).arg(path);
    if let Some(cert) = cert {
        command.arg("--cert").arg(cert);
    }
    let started = Instant::now();
    let out = command.output().unwrap();
    let took = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text, took)
}

#[test]
fn verify_names_a_byte_flipped_in_the_middle_of_10000_records() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (path, log) = log_of(dir.path(), 10_000, None);
    drop(log);
    let written = started.elapsed();
    let (code, out, intact) = verify(&path, None);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("10000 records (seq 1-10000), chain intact"),
        "{out}"
    );

    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let line = bytes[..middle].iter().filter(|b| **b == b'\n').count() + 1;
    let (code, out, broken) = verify(&path, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("record {line} (line {line}): ")),
        "byte {middle} is on line {line}: {out}"
    );
    assert!(
        out.contains(&format!("{} records before it check out", line - 1)),
        "{out}"
    );
    println!(
        "10,000 records ({} bytes): written in {written:.0?}; provd audit verify: intact {intact:.0?}, \
         broken at record {line} {broken:.0?}",
        bytes.len()
    );
}

#[test]
fn verify_names_a_removed_line_a_swapped_pair_and_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, log) = log_of(dir.path(), 100, None);
    drop(log);
    let good = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let write = |lines: &[&str]| {
        std::fs::write(
            &path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
    };

    let mut removed = lines.clone();
    removed.remove(41);
    write(&removed);
    let (code, out, _) = verify(&path, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("record 42 (line 42): sequence gap, the line holds record 43"),
        "{out}"
    );

    let mut swapped = lines.clone();
    swapped.swap(60, 61);
    write(&swapped);
    let (code, out, _) = verify(&path, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 61 (line 61): sequence gap"), "{out}");

    std::fs::write(&path, &good[..good.len() - 40]).unwrap();
    let (code, out, _) = verify(&path, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 100 (line 100): torn line"), "{out}");

    // Unreadable: exit 2.
    let (code, out, _) = verify(&dir.path().join("absent.log"), None);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn a_pruned_log_verifies_against_the_server_certificate_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let signer = CheckpointSigner::Files {
        cert: pki.dir.join("server.pem"),
        key: pki.dir.join("server.key"),
    };
    let (path, log) = log_of(dir.path(), 1_000, Some(signer));
    let retention = Retention {
        max_age: None,
        max_records: Some(300),
    };
    let pruned = log.prune(&retention, 1_750_000_010_000).unwrap().unwrap();
    assert_eq!((pruned.removed, pruned.through_seq), (700, 700));
    log.append(&[entry(1_001)]).unwrap();
    drop(log);

    let (code, out, _) = verify(&path, Some(&pki.dir.join("server.pem")));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("301 records (seq 701-1001), chain intact"),
        "{out}"
    );
    assert!(out.contains("records 1-700 pruned"), "{out}");
    assert!(out.contains("the server certificate's key"), "{out}");

    // Another server's certificate: the checkpoint was not signed with its
    // key.
    let other = provd::pki::Ca::generate("another CA", DAY)
        .unwrap()
        .issue_server(&["localhost".into()], &[], DAY)
        .unwrap();
    let other_pem = dir.path().join("other.pem");
    std::fs::write(&other_pem, &other.cert_pem).unwrap();
    let (code, out, _) = verify(&path, Some(&other_pem));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("not with the given certificate's key"),
        "{out}"
    );

    // The first kept record removed: the checkpoint no longer leads to it.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(1);
    std::fs::write(
        &path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let (code, out, _) = verify(&path, None);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 701 (line 2): sequence gap"), "{out}");
}

/// The records of an audit file, parsed.
fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A daemon on the fakes whose audit log is `path` (outside the daemon's
/// own temporary directory, so it outlives the daemon).
async fn daemon(path: &Path, adjust: impl FnOnce(&mut provd::config::Config)) -> Hermetic {
    let path = path.to_owned();
    Hermetic::start_configured(Fakes::default(), move |config| {
        config.audit.path = Some(path);
        adjust(config);
    })
    .await
}

const PLANTED_JSON_PASSWORD: &str = "Json-Planted-Pa55word";
const PLANTED_EMAIL: &str = "planted-quarantine@example.test";

#[tokio::test]
async fn mutating_and_denied_calls_are_recorded_with_who_what_and_how_they_ended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let d = daemon(&path, |_| {}).await;

    // A mutating call over gRPC, with a request id and a password.
    let op = d.start_add_directory("audit-rid-1").await;
    let (_, done) = d.finish(Some(op.clone())).await;
    ok(&done);
    // A read: not recorded.
    d.directories()
        .list_directories(v1::ListDirectoriesRequest::default())
        .await
        .unwrap();
    // A mutating call that fails: recorded with its code.
    let err = d.cancel(&op.id).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    // A secret two levels down.
    let _ = d
        .cloud_sync()
        .set_cloud_sync(v1::SetCloudSyncRequest {
            domain: DOMAIN.into(),
            spec: Some(v1::CloudSyncSpec {
                enabled: true,
                notification_email: PLANTED_EMAIL.into(),
                ..Default::default()
            }),
            request_id: "audit-rid-2".into(),
        })
        .await;
    // A viewer trying to install: denied.
    let denied = provd_proto::v1::agent_service_client::AgentServiceClient::new(
        d.channel_as(Role::Viewer).await,
    )
    .install(v1::InstallRequest::default())
    .await
    .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    // The same AddDirectory over HTTP/JSON with another password: the
    // retry returns the first operation, and the digest is the same.
    let http = d.h.http(Role::Admin);
    let retry = http
        .post(d.h.url("/provd.v1.DirectoryService/AddDirectory"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"domain":"{DOMAIN}","requestId":"audit-rid-1",
                "credential":{{"username":"{}","password":"{PLANTED_JSON_PASSWORD}"}}}}"#,
            admin().username
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200, "{:?}", retry.text().await);
    // A body that does not decode: recorded, with no digest.
    let bad = http
        .post(d.h.url("/provd.v1.DirectoryService/AddDirectory"))
        .header("content-type", "application/json")
        .body(r#"{"domain": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // A path that names no method.
    let none = http
        .post(d.h.url("/provd.v1.AgentService/Nope"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    d.shutdown().await;

    let report = verify_file(&path, None).unwrap();
    assert!(report.broken.is_none(), "{report}");
    let all = records(&path);
    let methods: Vec<&str> = all.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(
        methods,
        [
            "/provd.v1.DirectoryService/AddDirectory",
            "/provd.v1.OperationsService/CancelOperation",
            "/provd.v1.CloudSyncService/SetCloudSync",
            "/provd.v1.AgentService/Install",
            "/provd.v1.DirectoryService/AddDirectory",
            "/provd.v1.DirectoryService/AddDirectory",
            "/provd.v1.AgentService/Nope",
        ],
        "{all:#?}"
    );
    let [add, cancel, cloud, install, retried, undecodable, nope] = all.as_slice() else {
        unreachable!()
    };

    assert_eq!(add["seq"], 1);
    assert_eq!(add["kind"], "call");
    assert_eq!(add["caller"]["cn"], "admin");
    assert_eq!(add["caller"]["roles"], serde_json::json!(["admin"]));
    assert_eq!(add["caller"]["issuer"], "CN=provd test CA");
    let serial = add["caller"]["serial"].as_str().unwrap();
    assert!(
        !serial.is_empty()
            && serial
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{serial}"
    );
    assert!(
        add["peer"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{add}"
    );
    assert_eq!(add["transport"], "grpc");
    assert_eq!(add["request_id"], "audit-rid-1");
    assert_eq!(add["code"], "OK");
    assert_eq!(add["operation_id"], op.id.as_str());
    let digest = add["request_digest"].as_str().unwrap();
    assert_eq!(digest.len(), 64);

    assert_eq!(cancel["code"], "FAILED_PRECONDITION");
    assert!(cancel.get("operation_id").is_none(), "{cancel}");
    assert!(cancel["request_digest"].is_string());

    assert_eq!(cloud["request_id"], "audit-rid-2");
    assert!(cloud["request_digest"].is_string(), "{cloud}");

    assert_eq!(install["kind"], "denied");
    assert_eq!(install["caller"]["cn"], "viewer");
    assert_eq!(install["caller"]["roles"], serde_json::json!(["viewer"]));
    assert_eq!(install["code"], "PERMISSION_DENIED");
    assert!(install.get("request_digest").is_none(), "{install}");

    assert_eq!(retried["transport"], "http");
    assert_eq!(retried["operation_id"], op.id.as_str());
    assert_eq!(
        retried["request_digest"], digest,
        "another password, the same digest"
    );

    assert_eq!(undecodable["code"], "INVALID_ARGUMENT");
    assert!(undecodable.get("request_digest").is_none(), "{undecodable}");

    assert_eq!(nope["kind"], "denied");
    assert_eq!(nope["code"], "UNIMPLEMENTED");

    // No secret, in any form a digest could be matched against.
    let text = std::fs::read_to_string(&path).unwrap();
    let base64 = base64::engine::general_purpose::STANDARD;
    for secret in [ADMIN_PASSWORD_TEXT, PLANTED_JSON_PASSWORD, PLANTED_EMAIL] {
        for form in [
            secret.to_owned(),
            sha256_hex(secret.as_bytes()),
            base64.encode(secret),
            hex::encode(secret),
        ] {
            assert!(!text.contains(&form), "the audit file holds {form:?}");
        }
    }
}

const ADMIN_PASSWORD_TEXT: &str = provd::testkit::directory::ADMIN_PASSWORD;

#[tokio::test]
async fn a_flood_of_denied_calls_is_summed_up_once_the_rate_allows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let d = daemon(&path, |config| {
        config.audit.denied_rate = 4.0;
        config.audit.denied_burst = 3;
    })
    .await;
    let mut viewer = provd_proto::v1::agent_service_client::AgentServiceClient::new(
        d.channel_as(Role::Viewer).await,
    );
    const FLOOD: u64 = 60;
    let started = Instant::now();
    for _ in 0..FLOOD {
        let err = viewer
            .install(v1::InstallRequest::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    let flood = started.elapsed();
    // The summary is written when a token is free again, not at shutdown.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !records(&path).iter().any(|r| r["kind"] == "suppressed") {
        assert!(
            Instant::now() < deadline,
            "no summary: {:#?}",
            records(&path)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.shutdown().await;

    let all = records(&path);
    let one_by_one = all.iter().filter(|r| r["kind"] == "denied").count() as u64;
    let summaries: Vec<_> = all.iter().filter(|r| r["kind"] == "suppressed").collect();
    let suppressed: u64 = summaries.iter().map(|s| s["count"].as_u64().unwrap()).sum();
    // The burst, plus what the rate refilled while the flood lasted.
    let allowed = 3 + (flood.as_secs_f64() * 4.0).ceil() as u64;
    assert!(
        one_by_one <= allowed,
        "{one_by_one} denied records in {flood:?}, at most {allowed} allowed"
    );
    assert!(!summaries.is_empty());
    assert_eq!(one_by_one + suppressed, FLOOD, "{all:#?}");
    for summary in &summaries {
        assert_eq!(summary["callers"]["viewer"], summary["count"], "{summary}");
    }
    assert!(verify_file(&path, None).unwrap().broken.is_none());
}

/// Every method that writes answers with the operation it started or
/// named, which the audit record carries.
#[test]
fn every_mutating_method_answers_with_an_operation() {
    use prost::Message;
    let set = prost_types::FileDescriptorSet::decode(provd_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut outputs = std::collections::BTreeMap::new();
    let mut messages = std::collections::BTreeMap::new();
    for file in &set.file {
        for message in &file.message_type {
            messages.insert(
                format!(".{}.{}", file.package(), message.name()),
                message.clone(),
            );
        }
        for service in &file.service {
            for method in &service.method {
                outputs.insert(
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    method.output_type().to_owned(),
                );
            }
        }
    }
    // Writes that start no operation: an upload only fills staging.
    const NO_OPERATION: &[&str] = &["/provd.v1.PackageService/UploadPackage"];
    let mut writes = 0;
    for (path, effect) in provd::authz::EFFECTS {
        if *effect != provd::authz::Effect::Write || NO_OPERATION.contains(path) {
            continue;
        }
        writes += 1;
        let output = &messages[&outputs[*path]];
        assert!(
            output
                .field
                .iter()
                .any(|f| f.name() == "operation" && f.type_name() == ".provd.v1.Operation"),
            "{path} answers {} without an operation",
            output.name()
        );
    }
    assert!(writes >= 17, "{writes}");
}
