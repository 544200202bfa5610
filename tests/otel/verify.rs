//! `provd.verify.check` and `provd.drift.detected`: a Verify RPC's checks
//! each arrive as gauge points with their status; the `[drift]` schedule
//! records them without any RPC and counts an agent version changed
//! outside provd (never one provd's Install made); shutdown stops it.
//!
//! The gauge is process-global and last-value: the tests that record
//! checks hold `SERIAL` so one's values are not overwritten by another's
//! before the export.

use std::time::Duration;

use provd::backends::host::{AGENT_SERVICES, ServiceState};
use provd_proto::v1;

use crate::common::hermetic::{Fakes, Hermetic};
use crate::common::otlp;

pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHECK: &str = "provd.verify.check";
const DRIFT: &str = "provd.drift.detected";

/// The metric label of a proto enum value: `CHECK_STATUS_FAIL` → `FAIL`.
fn label(name: &str) -> &str {
    name.rsplit('_').next().unwrap()
}

#[tokio::test]
async fn each_check_of_a_verify_run_arrives_as_a_gauge_point_with_its_status() {
    let _serial = SERIAL.lock().await;
    let receiver = otlp::receiver();
    let fakes = Fakes {
        host: provd::testkit::FakeHost::new().with_agent("1.1.1370.0"),
        ..Fakes::default()
    };
    let d = Hermetic::start_with(fakes).await;
    let mut stream = d
        .verify()
        .verify(v1::VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut checks = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        if let Some(v1::verify_response::Item::Check(c)) = item.item {
            checks.push(c);
        }
    }
    assert!(checks.len() >= 5, "{checks:#?}");
    for c in &checks {
        let status = v1::CheckStatus::try_from(c.status).unwrap();
        let category = v1::CheckCategory::try_from(c.category).unwrap();
        let labels = [
            ("check", c.id.as_str()),
            ("subject", c.subject.as_str()),
            ("category", label(category.as_str_name())),
        ];
        // 1 on the series of its status, 0 on the other three.
        for other in ["PASS", "WARN", "FAIL", "SKIP"] {
            let mut with_status = labels.to_vec();
            with_status.push(("status", other));
            let want = if other == label(status.as_str_name()) {
                1.0
            } else {
                0.0
            };
            receiver
                .wait_for_value(CHECK, &with_status, |v| v == want)
                .await;
        }
    }
    d.h.shutdown().await;
}

#[tokio::test]
async fn the_schedule_records_checks_without_an_rpc_counts_drift_and_stops_on_shutdown() {
    let _serial = SERIAL.lock().await;
    let receiver = otlp::receiver();
    let host = provd::testkit::FakeHost::new().with_agent("1.1.1000.0");
    // Only this test's host has a stopped updater: a FAIL no RPC made.
    host.set_service_state(AGENT_SERVICES[1].0, ServiceState::Stopped);
    let fakes = Fakes {
        host: host.clone(),
        ..Fakes::default()
    };
    let d = Hermetic::start_configured(fakes, |config| {
        config.drift.verify_interval = Some(Duration::from_secs(1));
    })
    .await;
    let updater = [
        ("check", "host.services.running"),
        ("subject", AGENT_SERVICES[1].0),
        ("category", "HOST"),
        ("status", "FAIL"),
    ];
    receiver.wait_for_value(CHECK, &updater, |v| v == 1.0).await;

    // The drift series exists before any drift (at 0 in a fresh process),
    // so Prometheus sees the first one as an increase.
    receiver
        .wait_for_point(DRIFT, &[("what", "agent_version")])
        .await;
    // An upgrade outside provd between two runs: drift, once.
    let drift_before = drift_count(receiver);
    host.upgrade_outside_provd("1.1.2000.0");
    let point = receiver
        .wait_for_value(DRIFT, &[("what", "agent_version")], |v| {
            v >= drift_before + 1.0
        })
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    otlp::flush().await;
    assert_eq!(drift_count(receiver), point.value, "counted more than once");

    // provd's own Install changes the version too: not drift.
    host.set_package_version("1.1.3000.0");
    let package = d.h.dir.path().join("agent.msi");
    std::fs::write(&package, b"the stand-in package").unwrap();
    let op = d
        .agent()
        .install(v1::InstallRequest {
            source: format!("file://{}", package.display()),
            sha256: crate::common::sha256_hex(b"the stand-in package"),
            accept_license: true,
            skip_registration: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    let (_, done) = d.finish(op).await;
    assert_eq!(
        done.state,
        v1::OperationState::Succeeded as i32,
        "{done:#?}"
    );
    assert_eq!(host.installed_version().as_deref(), Some("1.1.3000.0"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    otlp::flush().await;
    assert_eq!(
        drift_count(receiver),
        point.value,
        "provd's Install counted"
    );

    // The schedule records no operation: the Install is the only one.
    let listed = d
        .operations()
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.operations.len(), 1, "{listed:#?}");

    // After shutdown nothing reads the host any more.
    d.h.shutdown().await;
    let reads = host.status_reads();
    assert!(reads >= 3, "{reads}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(host.status_reads(), reads, "the schedule outlived shutdown");
}

/// The drift counter's latest value (0 before any).
fn drift_count(receiver: &otlp::Receiver) -> f64 {
    receiver
        .points()
        .iter()
        .filter(|p| {
            p.metric == DRIFT
                && p.attributes.get("what").map(String::as_str) == Some("agent_version")
        })
        .map(|p| p.value)
        .fold(0.0, f64::max)
}
