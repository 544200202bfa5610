//! `agent.absent` in a document (ConfigurationService): the step `agent` is
//! DecommissionAgent, planned as its acting steps; a second apply does no
//! work; the fields an absent agent cannot have are named.

use super::support_tb::*;
use crate::common::configuration::{apply_document_as, plan_changes_as, start_document};
use crate::common::hermetic::*;
use provd_proto::v1;
use tonic::Code;

fn absent() -> v1::DesiredState {
    v1::DesiredState {
        agent: Some(v1::AgentSpec {
            absent: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_absent_agent_is_decommissioned_by_apply_and_then_as_desired() {
    let d = Hermetic::start().await;
    let agent_id = full_setup(&d).await;
    let desired = absent();
    let planned = plan_changes_as(&d.channel, &desired, Some(admin())).await;
    assert!(planned.iter().all(|c| c.step == "agent"), "{planned:#?}");
    let details: Vec<&str> = planned.iter().map(|c| c.detail.as_str()).collect();
    for step in [
        "stop-services:",
        "leave-agent-groups:",
        "uninstall-package:",
        "gmsa-principals:",
        "permissions:",
        "forget:",
    ] {
        assert!(
            details.iter().any(|d| d.starts_with(step)),
            "{step} {details:#?}"
        );
    }

    let (events, op) = apply_document_as(&d.channel, &desired, Some(admin())).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    let acted = ["leave-agent-groups", "uninstall-package", "gmsa-principals"];
    let done = |s: &&str| has(&events, s, v1::EventKind::StepSucceeded);
    assert!(acted.iter().chain(&["forget"]).all(done), "{events:#?}");
    super::decommission::assert_undone(&d, &agent_id);

    assert!(
        plan_changes_as(&d.channel, &desired, Some(admin()))
            .await
            .is_empty()
    );
    let (events, op) = apply_document_as(&d.channel, &desired, Some(admin())).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert!(
        has(&events, "agent", v1::EventKind::StepSkipped),
        "{events:#?}"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn an_absent_agent_allows_only_host_and_needs_a_credential_unless_keep_gmsa() {
    let d = Hermetic::start().await;
    let mut desired = absent();
    let agent = desired.agent.as_mut().unwrap();
    agent.source = "file:///srv/agent.msi".into();
    agent.accept_license = true;
    desired.writeback = Some(v1::WritebackSpec { enabled: true });
    desired.domains.push(v1::DomainSpec {
        domain: DOMAIN.into(),
        ..Default::default()
    });
    let status = start_document(&d.channel, &desired, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields = violations(&status);
    for field in [
        "desired.agent.source",
        "desired.agent.accept_license",
        "desired.domains",
        "desired.writeback",
        "credential",
    ] {
        assert!(fields.contains(&field.to_owned()), "{field}: {fields:?}");
    }
    // keep_gmsa: no credential needed; nothing installed, nothing to do.
    let mut desired = absent();
    desired.agent.as_mut().unwrap().keep_gmsa = true;
    let op = start_document(&d.channel, &desired, None).await.unwrap();
    let (_, op) = d.finish(Some(op)).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    d.shutdown().await;
}
