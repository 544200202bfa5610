//! Helpers shared by the hermetic agent, writeback, verify, apply and
//! operations tests: packages on disk (an .exe stand-in, a real MSI with a
//! ProductVersion), installs held open on a named pipe, a fully set-up
//! host, and readers for events and google.rpc error details.
#![allow(dead_code)]

use std::path::PathBuf;

use crate::common::hermetic::*;
use crate::common::sha256_hex;
use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use tonic::Status;
use tonic::transport::Channel;
use tonic_types::StatusExt;

pub const AGENT_SERVICE: &str = "AADConnectProvisioningAgent";
pub const EXE_BYTES: &[u8] = b"not really an installer";

pub fn configuration(d: &Hermetic) -> ConfigurationServiceClient<Channel> {
    ConfigurationServiceClient::new(d.channel.clone())
}

/// Writes `bytes` as `name` in the daemon's temp dir; its file:// URI.
pub fn package(d: &Hermetic, name: &str, bytes: &[u8]) -> String {
    let path = d.h.dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    format!("file://{}", path.display())
}

/// A minimal MSI whose Property table says `ProductVersion = version`.
pub fn msi_bytes(version: &str) -> Vec<u8> {
    use msi::{Column, Insert, Package, PackageType, Value};
    let cursor = std::io::Cursor::new(Vec::new());
    let mut pkg = Package::create(PackageType::Installer, cursor).unwrap();
    pkg.create_table(
        "Property",
        vec![
            Column::build("Property").primary_key().id_string(72),
            Column::build("Value").text_string(0),
        ],
    )
    .unwrap();
    pkg.insert_rows(
        Insert::into("Property")
            .row(vec![
                Value::from("ProductName"),
                Value::from("Microsoft Entra Connect Provisioning Agent"),
            ])
            .row(vec![Value::from("ProductVersion"), Value::from(version)]),
    )
    .unwrap();
    pkg.into_inner().unwrap().into_inner()
}

pub fn install_request(source: String, sha256: String, skip: bool) -> v1::InstallRequest {
    v1::InstallRequest {
        source,
        sha256,
        accept_license: true,
        skip_registration: skip,
        ..Default::default()
    }
}

/// Starts Install and returns the call's answer.
pub async fn start_install(
    d: &Hermetic,
    request: v1::InstallRequest,
) -> Result<v1::Operation, Status> {
    d.agent()
        .install(request)
        .await
        .map(|r| r.into_inner().operation.unwrap())
}

/// Install of the .exe stand-in, watched to its end.
pub async fn install_exe(d: &Hermetic, skip: bool) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let source = package(d, "AADConnectProvisioningAgentSetup.exe", EXE_BYTES);
    let op = start_install(d, install_request(source, sha256_hex(EXE_BYTES), skip))
        .await
        .unwrap();
    d.finish(Some(op)).await
}

/// Install of an MSI that says `version`, watched to its end.
pub async fn install_msi(
    d: &Hermetic,
    version: &str,
    skip: bool,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let bytes = msi_bytes(version);
    let source = package(d, &format!("agent-{version}.msi"), &bytes);
    let op = start_install(d, install_request(source, sha256_hex(&bytes), skip))
        .await
        .unwrap();
    d.finish(Some(op)).await
}

/// An Install whose package is a named pipe nobody writes yet: the
/// operation stays RUNNING in fetch-package until the pipe is fed.
#[cfg(unix)]
pub async fn held_install(d: &Hermetic, request_id: &str) -> (v1::Operation, PathBuf) {
    let name = format!("held-{}.msi", uuid_like());
    let pipe = crate::common::fifo(d.h.dir.path(), &name);
    let mut request = install_request(
        format!("file://{}", pipe.display()),
        sha256_hex(EXE_BYTES),
        true,
    );
    request.request_id = request_id.into();
    let op = start_install(d, request).await.unwrap();
    (op, pipe)
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Installs and registers the agent (a tenant that approves at once);
/// returns the agent id.
pub async fn registered(d: &Hermetic) -> String {
    let (_, op) = install_exe(d, false).await;
    ok(&op);
    op.result["agent_id"].clone()
}

/// Agent installed and registered, the domain added, HOST1's computer
/// account, gMSA provAgentgMSA$ for it, BASIC_READ granted. The agent id.
pub async fn full_setup(d: &Hermetic) -> String {
    let agent_id = registered(d).await;
    ok(&d.add_directory().await.1);
    d.make_computer("HOST1");
    ok(&d.create_gmsa(&["HOST1$"]).await.1);
    // Microsoft's order is the gMSA, then the domains: AddDirectory again
    // now tells the agent its domain (the first one skipped that step).
    ok(&d.add_directory().await.1);
    let (_, op) = d
        .grant(
            &[v1::PermissionProfile::BasicRead],
            v1::GrantMode::Apply,
            "provAgentgMSA$",
        )
        .await;
    ok(&op);
    agent_id
}

/// The field names of a google.rpc.BadRequest detail.
pub fn violations(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// (type, subject) of a google.rpc.PreconditionFailure detail's first
/// violation.
pub fn precondition(status: &Status) -> (String, String) {
    let details = status.get_error_details();
    let v = &details
        .precondition_failure()
        .expect("a PreconditionFailure detail")
        .violations[0];
    (v.r#type.clone(), v.subject.clone())
}

/// Whether an event of `kind` was recorded for `step`.
pub use super::support_ta::step_is as has;

/// The steps that were started, in order, without repeats.
pub fn steps_started(events: &[v1::OperationEvent]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in events {
        if e.kind == v1::EventKind::StepStarted as i32 && !out.contains(&e.step) {
            out.push(e.step.clone());
        }
    }
    out
}

pub async fn get_op(d: &Hermetic, id: &str) -> v1::Operation {
    d.operations()
        .get_operation(v1::GetOperationRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap()
}

/// Polls until the operation has recorded an event of `step`.
pub async fn wait_for_step(d: &Hermetic, id: &str, step: &str) {
    for _ in 0..200 {
        let (events, done) = replay(d, id).await;
        if events.iter().any(|e| e.step == step) || done {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("operation {id} never reached {step}");
}

/// The events recorded so far (a watch read until it would block), and
/// whether the operation has ended.
pub async fn replay(d: &Hermetic, id: &str) -> (Vec<v1::OperationEvent>, bool) {
    let mut stream = d
        .operations()
        .watch_operation(v1::WatchOperationRequest {
            id: id.into(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(100), stream.message()).await {
            Err(_) => return (events, false),
            Ok(item) => match item.unwrap().and_then(|i| i.item) {
                Some(v1::watch_operation_response::Item::Event(e)) => events.push(e),
                Some(v1::watch_operation_response::Item::Operation(_)) | None => {
                    return (events, true);
                }
            },
        }
    }
}

/// Polls `done` every 50 ms for up to 15 s.
pub async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..300 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out");
}

/// The drift watch's re-apply operation `matching` (initiator `drift`).
pub async fn drift_operation(
    d: &Hermetic,
    matching: impl Fn(&v1::Operation) -> bool,
) -> v1::Operation {
    let ops = d
        .operations()
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operations;
    ops.iter()
        .find(|o| o.initiator == "drift" && matching(o))
        .cloned()
        .unwrap_or_else(|| panic!("no such drift operation: {ops:#?}"))
}

/// A daemon on `host` whose drift watch runs every second and re-applies.
pub async fn with_drift_reapply(host: provd::testkit::FakeHost) -> Hermetic {
    Hermetic::start_configured(
        Fakes {
            host,
            ..Default::default()
        },
        |c| {
            c.drift.verify_interval = Some(std::time::Duration::from_secs(1));
            c.drift.reapply = true;
        },
    )
    .await
}
