//! DiagnosticsService on the fakes: the bundle streams as chunks that add
//! up to the summary's size and SHA-256; a secret planted in every source
//! (trace files in several shapes, an event log, the exe.config, provd's
//! own log) is nowhere in the zip; a part the host cannot read is listed in
//! MISSING.txt and does not fail the bundle; a part over the size budget is
//! left out and listed; bad bounds name their field; a viewer is refused.
//! The verbose-trace window: an operation in the writer slot, Start then
//! Stop on the fake module, Stop after a cancel, after the caller went away
//! and after a failed Start, each failure in MISSING.txt.

use std::collections::BTreeMap;
use std::io::Read;

use super::support_tb::{precondition, violations};
use crate::common::hermetic::*;
use crate::common::sha256_hex;
use provd::pki::Role;
use provd::testkit::{AgentConfigAction, AgentConfigCall, AgentConfigFault, FakeHost};
use provd_proto::v1;
use provd_proto::v1::diagnostics_service_client::DiagnosticsServiceClient;
use provd_proto::v1::export_diagnostics_response::Item;
use tonic::Code;
use tonic::transport::Channel;

/// Every planted secret, by where it was planted.
const SECRETS: [(&str, &str); 8] = [
    ("trace: password=", "Tr4ce-pa55word"),
    (
        "trace: JWT",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXZhbHVl",
    ),
    ("trace: private key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
    ("trace: device code", "GAQABAAEAAAD-device-code"),
    ("trace: Graph secret", "QXBwS2V5LXZhbHVlLWJhc2U2NA=="),
    ("event log", "Ev3nt-l0g-secret"),
    ("exe.config", "C0nfig-AppKey-value"),
    ("provd.log", "pr0vd-log-token-value"),
];

fn planted_host() -> FakeHost {
    let host = FakeHost::new().with_agent("1.1.1370.0");
    let s = |i: usize| SECRETS[i].1;
    let trace = format!(
        "2026-12-06 connecting with password={}\r\n\
         Authorization: Bearer {}\r\n\
         -----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n\
         {{\"device_code\": \"{}\", \"interval\": 5}}\n\
         PUT secrets {{\"value\":[{{\"key\":\"AppKey\",\"value\":\"{}\"}}]}}\n",
        s(0),
        s(1),
        s(2),
        s(3),
        s(4)
    );
    host.add_diagnostic_part(
        "agent/trace/ProvAgentTrace-20261206.log",
        Ok(trace.into_bytes()),
    );
    let event = format!(
        "<Events><Event><EventData><Data Name=\"Password\">{}</Data></EventData></Event></Events>",
        s(5)
    );
    host.add_diagnostic_part("eventlog/Application.xml", Ok(event.into_bytes()));
    host.add_diagnostic_part(
        "eventlog/System.xml",
        Err("EvtQuery(System) failed: error 120".into()),
    );
    // Over any budget the tests set: left out, listed.
    host.add_diagnostic_part(
        "agent/trace/ProvAgentTrace-old.log",
        Ok(vec![b'x'; 3 << 20]),
    );
    let config = format!(
        "<?xml version=\"1.0\"?>\r\n<configuration>\r\n  <appSettings>\r\n    \
         <add key=\"AppKey\" value=\"{}\" />\r\n  </appSettings>\r\n</configuration>\r\n",
        s(6)
    );
    host.set_exe_config(config.as_bytes());
    host
}

fn client(channel: Channel) -> DiagnosticsServiceClient<Channel> {
    DiagnosticsServiceClient::new(channel)
}

struct Bundle {
    operation: Option<v1::Operation>,
    progress: Vec<v1::DiagnosticsProgress>,
    zip: Vec<u8>,
    summary: v1::DiagnosticsSummary,
    files: BTreeMap<String, String>,
}

async fn export(channel: Channel, max_bytes: u64) -> Bundle {
    let stream = client(channel)
        .export_diagnostics(v1::ExportDiagnosticsRequest {
            max_bytes,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    read_bundle(stream, None, |_| {}).await
}

/// The rest of an export's stream (after `operation`, when the caller read
/// it already), `on_progress` called as each PROGRESS item arrives.
async fn read_bundle(
    mut stream: tonic::Streaming<v1::ExportDiagnosticsResponse>,
    mut operation: Option<v1::Operation>,
    mut on_progress: impl FnMut(&v1::DiagnosticsProgress),
) -> Bundle {
    let (mut progress, mut zip, mut summary) = (Vec::new(), Vec::new(), None);
    while let Some(msg) = stream.message().await.unwrap() {
        assert!(summary.is_none(), "nothing after the summary");
        match msg.item.unwrap() {
            Item::Operation(op) => {
                assert!(
                    operation.is_none() && progress.is_empty(),
                    "the operation first"
                );
                operation = Some(op);
            }
            Item::Progress(p) => {
                assert!(zip.is_empty(), "progress comes before the bytes");
                on_progress(&p);
                progress.push(p);
            }
            Item::Chunk(c) => {
                assert!(!c.is_empty() && c.len() <= 64 << 10);
                zip.extend(c);
            }
            Item::Summary(s) => summary = Some(s),
        }
    }
    let summary = summary.expect("a summary last");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.clone())).unwrap();
    let mut files = BTreeMap::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let mut text = Vec::new();
        f.read_to_end(&mut text).unwrap();
        files.insert(
            f.name().to_owned(),
            String::from_utf8_lossy(&text).into_owned(),
        );
    }
    Bundle {
        operation,
        progress,
        zip,
        summary,
        files,
    }
}

#[tokio::test]
async fn no_planted_secret_reaches_the_bundle_and_a_missing_part_does_not_fail_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("provd.log");
    std::fs::write(&log, format!("WARN leaked access_token={}\n", SECRETS[7].1)).unwrap();
    let d = Hermetic::start_configured(
        Fakes {
            host: planted_host(),
            ..Default::default()
        },
        |c| c.log.file = Some(log.clone()),
    )
    .await;
    let b = export(d.channel.clone(), 2 << 20).await;

    // The stream adds up.
    assert_eq!(b.summary.size_bytes, b.zip.len() as u64);
    assert_eq!(b.summary.sha256, sha256_hex(&b.zip));
    assert_eq!(b.summary.files as usize, b.files.len());

    // Every source is there, none of its secrets.
    for name in [
        "agent/trace/ProvAgentTrace-20261206.log",
        "eventlog/Application.xml",
        "agent/AADConnectProvisioningAgent.exe.config",
        "agent/status.txt",
        "agent/registry-options.txt",
        "provd/verify.txt",
        "provd/operations.json",
        "provd/provd.log",
        "MANIFEST.txt",
        "MISSING.txt",
    ] {
        assert!(b.files.contains_key(name), "{name} in {:?}", b.files.keys());
    }
    for (name, text) in &b.files {
        for (source, secret) in SECRETS {
            assert!(
                !text.contains(secret),
                "{source}'s secret in {name}:\n{text}"
            );
        }
    }
    assert!(
        b.summary.redactions >= SECRETS.len() as u32,
        "{:?}",
        b.summary
    );
    assert!(b.files["provd/verify.txt"].contains("report:"));
    assert!(
        b.files["eventlog/Application.xml"].contains("<Data Name=\"Password\">[REDACTED]</Data>")
    );

    // What could not be read, and what did not fit, is listed and reported.
    let missing = &b.files["MISSING.txt"];
    assert!(
        missing.contains("eventlog/System.xml\tEvtQuery(System) failed"),
        "{missing}"
    );
    assert!(
        missing.contains("agent/trace/ProvAgentTrace-old.log\tleft out"),
        "{missing}"
    );
    assert_eq!(b.summary.missing, 2);
    let reported: Vec<_> = b
        .progress
        .iter()
        .filter(|p| !p.missing_reason.is_empty())
        .map(|p| p.path.as_str())
        .collect();
    assert_eq!(
        reported,
        ["eventlog/System.xml", "agent/trace/ProvAgentTrace-old.log"]
    );
}

#[tokio::test]
async fn a_host_that_cannot_be_read_still_gives_provds_own_parts() {
    let d = Hermetic::start().await;
    d.fakes.host.set_unavailable(Some("not a Windows host"));
    let b = export(d.channel.clone(), 0).await;
    assert!(b.files["MISSING.txt"].contains("agent\tnot a Windows host"));
    assert!(b.files.contains_key("provd/verify.txt"));
}

#[tokio::test]
async fn bounds_name_their_field_and_viewers_are_refused() {
    let d = Hermetic::start().await;
    let err = client(d.channel.clone())
        .export_diagnostics(v1::ExportDiagnosticsRequest {
            event_log_hours: 169,
            max_bytes: 1,
            verbose_trace_minutes: 61,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&err),
        ["verbose_trace_minutes", "event_log_hours", "max_bytes"]
    );
    let err = client(d.channel_as(Role::Viewer).await)
        .export_diagnostics(v1::ExportDiagnosticsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// The module calls of the verbose-trace window, in order (true: Start).
fn trace_calls(d: &Hermetic) -> Vec<bool> {
    d.fakes
        .agent_config
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            AgentConfigCall::VerboseTrace { on } => Some(on),
            _ => None,
        })
        .collect()
}

async fn start_window(d: &Hermetic) -> tonic::Streaming<v1::ExportDiagnosticsResponse> {
    client(d.channel.clone())
        .export_diagnostics(v1::ExportDiagnosticsRequest {
            verbose_trace_minutes: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next item of the stream, which must be there.
async fn next_item(stream: &mut tonic::Streaming<v1::ExportDiagnosticsResponse>) -> Item {
    stream.message().await.unwrap().unwrap().item.unwrap()
}

#[tokio::test]
async fn a_verbose_trace_window_holds_the_writer_slot_and_stop_follows_a_cancel() {
    let d = Hermetic::start_with(Fakes {
        host: FakeHost::new().with_agent("1.1.1370.0"),
        ..Default::default()
    })
    .await;
    let mut stream = start_window(&d).await;
    let Item::Operation(op) = next_item(&mut stream).await else {
        panic!("the window's operation first")
    };
    assert_eq!(op.kind, v1::OperationKind::VerboseTrace as i32);
    let Item::Progress(started) = next_item(&mut stream).await else {
        panic!("then the window's start")
    };
    assert_eq!(started.path, "verbose-trace/start");
    assert_eq!(started.missing_reason, "");
    assert!(started.detail.contains(&op.id), "{}", started.detail);
    assert!(d.fakes.agent_config.verbose_tracing());
    assert_eq!(trace_calls(&d), [true]);

    // The window changes the host: no other operation meanwhile, no second
    // window; a bundle without a window is read-only and runs.
    let err = d.add_directory_refused().await;
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        precondition(&err),
        ("OPERATION_RUNNING".into(), format!("operations/{}", op.id))
    );
    let err = client(d.channel.clone())
        .export_diagnostics(v1::ExportDiagnosticsRequest {
            verbose_trace_minutes: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&op.id), "{}", err.message());
    let plain = export(d.channel.clone(), 0).await;
    assert!(plain.operation.is_none());
    assert!(!plain.files.contains_key("provd/verbose-trace.txt"));
    assert_eq!(trace_calls(&d), [true]);

    // Cut short: Stop runs, the bundle still comes, the operation says so.
    d.cancel(&op.id).await.unwrap();
    let b = read_bundle(stream, Some(op.clone()), |_| {}).await;
    assert_eq!(trace_calls(&d), [true, false]);
    assert!(!d.fakes.agent_config.verbose_tracing());
    let stopped = &b.progress[0];
    assert_eq!(stopped.path, "verbose-trace/stop");
    assert_eq!(stopped.missing_reason, "");
    assert!(stopped.detail.contains("cut short"), "{}", stopped.detail);
    let record = &b.files["provd/verbose-trace.txt"];
    assert!(
        record.contains(&op.id) && record.contains("verbose-trace/stop\t"),
        "{record}"
    );
    assert!(b.files.contains_key("agent/status.txt"));
    let (events, done) = d.finish(Some(op)).await;
    assert_eq!(state(&done), v1::OperationState::Cancelled);
    assert!(events.iter().any(|e| e.step == "verbose-trace"));
}

#[tokio::test]
async fn a_caller_that_goes_away_cancels_the_window_and_stop_still_runs() {
    let d = Hermetic::start().await;
    let mut stream = start_window(&d).await;
    let Item::Operation(op) = next_item(&mut stream).await else {
        panic!("the window's operation first")
    };
    let Item::Progress(_) = next_item(&mut stream).await else {
        panic!("then the window's start")
    };
    drop(stream);
    let (events, done) = d.finish(Some(op)).await;
    assert_eq!(state(&done), v1::OperationState::Cancelled);
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("ExportDiagnostics caller")),
        "{events:#?}"
    );
    assert_eq!(trace_calls(&d), [true, false]);
    assert!(!d.fakes.agent_config.verbose_tracing());
}

#[tokio::test]
async fn a_failed_start_skips_the_wait_still_stops_and_the_bundle_names_it() {
    let d = Hermetic::start().await;
    d.fakes.agent_config.fail(
        AgentConfigAction::StartVerboseTrace,
        AgentConfigFault::ModuleMissing,
    );
    d.fakes.agent_config.fail(
        AgentConfigAction::StopVerboseTrace,
        AgentConfigFault::Cmdlet,
    );
    let b = read_bundle(start_window(&d).await, None, |_| {}).await;
    let op = b.operation.clone().expect("the window's operation");
    // Stop follows a failed Start: Start may have edited exe.config first.
    assert_eq!(trace_calls(&d), [true, false]);
    let reasons: Vec<_> = b
        .progress
        .iter()
        .take(2)
        .map(|p| (p.path.as_str(), p.missing_reason.as_str()))
        .collect();
    assert_eq!(reasons[0].0, "verbose-trace/start");
    assert!(reasons[0].1.contains("is not installed"), "{reasons:?}");
    assert_eq!(reasons[1].0, "verbose-trace/stop");
    assert!(
        reasons[1].1.contains("may still trace verbosely"),
        "{reasons:?}"
    );
    let missing = &b.files["MISSING.txt"];
    assert!(
        missing.contains("verbose-trace/start\tStart-AADCloudSyncToolsVerboseLogs: "),
        "{missing}"
    );
    assert!(
        missing.contains("verbose-trace/stop\tStop-AADCloudSyncToolsVerboseLogs: "),
        "{missing}"
    );
    // The rest of the bundle is there.
    assert!(b.files.contains_key("provd/verify.txt"));
    let (_, done) = d.finish(Some(op)).await;
    assert_eq!(state(&done), v1::OperationState::Failed);
}
