//! The audit trail's records as OpenTelemetry log records (issue 17): a
//! denied call and a mutating one arrive with who, what and how it ended,
//! and the same `seq` and `hash` as the file, so the exported copy can
//! vouch for the file; no secret is exported.

use provd::pki::Role;
use provd_proto::v1;
use tonic::Code;

use crate::common::hermetic::{Fakes, Hermetic, ok};
use crate::common::otlp;

#[tokio::test]
async fn denied_and_mutating_calls_arrive_as_log_records_matching_the_file() {
    let receiver = otlp::receiver();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let file = path.clone();
    let d = Hermetic::start_configured(Fakes::default(), move |config| {
        config.audit.path = Some(file);
    })
    .await;
    // A caller no other test of this process uses.
    let cn = format!("otel-audit-{}", uuid::Uuid::new_v4().simple());
    let pair = d.h.pki.client(&cn, &[Role::Viewer]);
    let viewer = crate::common::channel(d.h.addr, &d.h.pki.ca_pem(), &pair)
        .await
        .unwrap();
    let err = v1::agent_service_client::AgentServiceClient::new(viewer)
        .install(v1::InstallRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let op = d.start_add_directory(&format!("otel-{cn}")).await;
    ok(&d.finish(Some(op.clone())).await.1);

    let denied = receiver
        .wait_for_log(|r| {
            r.event_name == "provd.audit" && r.attr("audit.caller.cn") == Some(cn.as_str())
        })
        .await;
    assert_eq!(denied.body, "/provd.v1.AgentService/Install");
    assert_eq!(denied.severity, "WARN");
    assert_eq!(denied.attr("audit.kind"), Some("denied"));
    assert_eq!(denied.attr("audit.code"), Some("PERMISSION_DENIED"));
    assert_eq!(denied.attr("audit.caller.roles"), Some("viewer"));
    assert_eq!(denied.attr("audit.caller.issuer"), Some("CN=provd test CA"));
    assert!(
        denied
            .attr("client.address")
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(denied.time_unix_nano > 0);

    let call = receiver
        .wait_for_log(|r| r.attr("audit.operation_id") == Some(op.id.as_str()))
        .await;
    assert_eq!(call.severity, "INFO");
    assert_eq!(call.attr("audit.kind"), Some("call"));
    assert_eq!(
        call.attr("rpc.method"),
        Some("/provd.v1.DirectoryService/AddDirectory")
    );
    assert_eq!(call.attr("audit.code"), Some("OK"));
    assert_eq!(call.attr("audit.caller.cn"), Some("admin"));
    assert_eq!(
        call.attr("audit.request_id"),
        Some(format!("otel-{cn}").as_str())
    );
    assert_eq!(call.attr("audit.request_digest").map(str::len), Some(64));
    d.shutdown().await;

    // The exported records are the file's, seq and hash included.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for exported in [&denied, &call] {
        let seq: u64 = exported.attr("audit.seq").unwrap().parse().unwrap();
        let line = lines.iter().find(|l| l["seq"] == seq).unwrap();
        assert_eq!(
            Some(line["hash"].as_str().unwrap()),
            exported.attr("audit.hash")
        );
        assert_eq!(
            Some(line["prev_hash"].as_str().unwrap()),
            exported.attr("audit.prev_hash")
        );
    }
    receiver.assert_absent(provd::testkit::directory::ADMIN_PASSWORD);
}
