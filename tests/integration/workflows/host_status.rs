//! StatusService.GetHostStatus on FakeHost: the agent as GetAgent says,
//! the newest operation (running, then ended, FAILED too), and the drift
//! watch — OFF (unknown) without `[drift] verify_interval`, PENDING then ON
//! with it, a version change outside provd as a present finding, and one a
//! re-apply put back as no longer present. Same answer over HTTP/JSON, for
//! a viewer.

use super::support_tb::*;
use crate::common::configuration::*;
use crate::common::hermetic::*;
use crate::common::sha256_hex;
use provd::backends::host::{AGENT_SERVICES, ServiceState};
use provd::model::StartType;
use provd::pki::Role;
use provd::testkit::FakeHost;
use provd_proto::v1;
use provd_proto::v1::status_service_client::StatusServiceClient;

async fn status(d: &Hermetic) -> v1::GetHostStatusResponse {
    StatusServiceClient::new(d.channel_as(Role::Viewer).await)
        .get_host_status(v1::GetHostStatusRequest {})
        .await
        .unwrap()
        .into_inner()
}

fn drift(s: &v1::GetHostStatusResponse) -> &v1::DriftStatus {
    s.drift.as_ref().unwrap()
}

async fn with_drift(host: FakeHost) -> Hermetic {
    Hermetic::start_configured(
        Fakes {
            host,
            ..Default::default()
        },
        |c| c.drift.verify_interval = Some(std::time::Duration::from_secs(1)),
    )
    .await
}

#[tokio::test]
async fn without_the_drift_watch_drift_is_unknown_and_the_agent_as_get_agent_says() {
    let d = Hermetic::start_with(Fakes {
        host: FakeHost::new().with_agent("1.1.1370.0"),
        ..Default::default()
    })
    .await;
    d.fakes
        .host
        .set_service_state(AGENT_SERVICES[1].0, ServiceState::Stopped);
    let s = status(&d).await;
    assert!(s.host_available);
    assert!(s.agent_installed);
    assert_eq!(s.agent_version, "1.1.1370.0");
    let agent = d
        .agent()
        .get_agent(v1::GetAgentRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.services, agent.services);
    assert_eq!(s.tenant, agent.tenant);
    assert!(s.last_operation.is_none(), "no operation ever ran");
    let drift = drift(&s);
    assert_eq!(drift.watch, v1::DriftWatch::Off as i32);
    assert!(drift.verify_interval.is_none() && drift.last_round_time.is_none());
    assert!(drift.findings.is_empty());
    assert!(s.read_time.is_some());

    // The same answer over HTTP/JSON (proto3 JSON names).
    let json: serde_json::Value =
        d.h.http(Role::Viewer)
            .post(d.h.url("/provd.v1.StatusService/GetHostStatus"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(json["agentVersion"], "1.1.1370.0", "{json}");
    assert_eq!(json["drift"]["watch"], "DRIFT_WATCH_OFF", "{json}");
    assert_eq!(
        json["services"][1]["state"], "SERVICE_STATE_STOPPED",
        "{json}"
    );

    // A host without the Windows backend: said so, nothing else invented.
    d.fakes.host.set_unavailable(Some("not Windows"));
    let s = status(&d).await;
    assert!(!s.host_available);
    assert_eq!(s.host_unavailable_reason, "not Windows");
    assert!(!s.agent_installed && s.services.is_empty());
}

#[cfg(unix)]
#[tokio::test]
async fn the_last_operation_is_the_newest_running_or_ended() {
    let d = Hermetic::start().await;
    let (op, pipe) = held_install(&d, "status-held").await;
    let s = status(&d).await;
    let last = s.last_operation.unwrap();
    assert_eq!(last.id, op.id);
    assert_eq!(last.kind, v1::OperationKind::Install as i32);
    assert!(
        [v1::OperationState::Pending, v1::OperationState::Running]
            .map(|s| s as i32)
            .contains(&last.state),
        "{last:?}"
    );
    let writer = crate::common::feed_fifo(pipe, EXE_BYTES.to_vec());
    let (_, ended) = d.finish(Some(op)).await;
    writer.await.unwrap();
    ok(&ended);
    let last = status(&d).await.last_operation.unwrap();
    assert_eq!(last.id, ended.id);
    assert_eq!(last.state, v1::OperationState::Succeeded as i32);
    assert!(last.end_time.is_some());

    // A failed one is the newest now.
    let source = package(&d, "other.exe", b"other bytes");
    let failed = start_install(&d, install_request(source, sha256_hex(EXE_BYTES), true))
        .await
        .unwrap();
    let (_, failed) = d.finish(Some(failed)).await;
    assert_eq!(failed.state, v1::OperationState::Failed as i32);
    let last = status(&d).await.last_operation.unwrap();
    assert_eq!(last.id, failed.id);
    assert_eq!(last.state, v1::OperationState::Failed as i32);
    assert!(last.error.is_some());
}

/// Polls GetHostStatus until `done` holds (15 s at most).
async fn status_until(
    d: &Hermetic,
    done: impl Fn(&v1::GetHostStatusResponse) -> bool,
) -> v1::GetHostStatusResponse {
    for _ in 0..300 {
        let s = status(d).await;
        if done(&s) {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("GetHostStatus never got there: {:#?}", status(d).await);
}

#[tokio::test]
async fn a_version_change_outside_provd_is_a_present_finding() {
    let d = with_drift(FakeHost::new().with_agent("1.1.1370.0")).await;
    let first = drift(&status(&d).await).clone();
    assert!(
        [v1::DriftWatch::Pending, v1::DriftWatch::On]
            .map(|w| w as i32)
            .contains(&first.watch),
        "{first:?}"
    );
    assert_eq!(first.verify_interval.unwrap().seconds, 1);
    assert!(!first.reapply);
    // After a round: ON, and none seen.
    let s = status_until(&d, |s| drift(s).watch == v1::DriftWatch::On as i32).await;
    assert!(drift(&s).findings.is_empty(), "{s:#?}");
    assert!(drift(&s).last_round_time.is_some());

    d.fakes.host.upgrade_outside_provd("1.1.1400.0");
    let s = status_until(&d, |s| !drift(s).findings.is_empty()).await;
    let f = &drift(&s).findings[0];
    assert_eq!(f.what, v1::DriftKind::AgentVersion as i32);
    assert_eq!(f.detail, "1.1.1370.0 -> 1.1.1400.0");
    assert!(f.present);
    assert!(f.observed_time.is_some());
    assert!(f.reapply_operation_id.is_empty(), "reapply is off");
    assert_eq!(f.reapply_state, v1::OperationState::Unspecified as i32);

    // provd installing the agent makes its version provd's again.
    let (_, op) = install_exe(&d, true).await;
    ok(&op);
    let s = status_until(&d, |s| drift(s).findings.iter().all(|f| !f.present)).await;
    assert_eq!(drift(&s).findings.len(), 1, "kept, as no longer present");
}

#[tokio::test]
async fn drift_a_reapply_put_back_is_no_longer_present() {
    let host = FakeHost::new().with_agent("1.1.1370.0");
    host.break_fixable_prerequisites();
    let d = with_drift_reapply(host).await;
    let host = d.fakes.host.clone();
    // Something applied to put back: a host prerequisite fix, kept.
    let desired = v1::DesiredState {
        host: Some(v1::HostSpec {
            remediate: vec![v1::HostFix::VaultServiceManual as i32],
        }),
        ..Default::default()
    };
    ok(&apply_document(&d.channel, &desired).await.1);
    let s = status_until(&d, |s| drift(s).watch == v1::DriftWatch::On as i32).await;
    assert!(drift(&s).reapply);

    // A GPO (or a person) disables the Credential Manager again.
    host.edit_prerequisites(|p| p.vault_service = Ok(Some(StartType::Disabled)));
    let s = status_until(&d, |s| {
        drift(s)
            .findings
            .iter()
            .any(|f| f.reapply_state == v1::OperationState::Succeeded as i32)
    })
    .await;
    let f = &drift(&s).findings[0];
    assert_eq!(f.what, v1::DriftKind::HostPrerequisites as i32);
    assert!(f.detail.contains("vault-service-manual"), "{f:?}");
    assert!(!f.present, "{f:?}");
    let reapplied = drift_operation(&d, |_| true).await;
    assert_eq!(f.reapply_operation_id, reapplied.id);
}
