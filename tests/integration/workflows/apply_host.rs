//! ConfigurationService's `[host]` section on FakeHost: the plan lists the
//! document's fixes the host needs (and only those), apply makes them in
//! two steps around the agent (`host` first, `host-agent-service` after
//! the agent's own sections), the second apply does nothing, bad fix
//! values are named, a host that cannot be managed fails the step, and the
//! drift watch fixes again what a hand edit undid.

use super::support_tb::*;
use super::verify::verify_with;
use crate::common::configuration::*;
use crate::common::hermetic::*;
use crate::common::sha256_hex;
use provd::model::{RegValue, StartType};
use provd::testkit::FakeHost;
use provd_proto::v1;
use provd_proto::v1::CheckStatus::Pass;
use provd_proto::v1::EventKind::{StepSkipped, StepStarted, Warning};
use provd_proto::v1::HostFix;
use tonic::Code;

fn host_section(fixes: &[HostFix]) -> Option<v1::HostSpec> {
    Some(v1::HostSpec {
        remediate: fixes.iter().map(|f| *f as i32).collect(),
    })
}

/// `[host]` with `fixes`, and the installed agent's own package (nothing
/// to install, no registration) so the agent steps run between the two
/// host steps.
fn document(d: &Hermetic, fixes: &[HostFix]) -> v1::DesiredState {
    let bytes = msi_bytes("1.1.1370.0");
    v1::DesiredState {
        host: host_section(fixes),
        agent: Some(v1::AgentSpec {
            source: package(d, "agent.msi", &bytes),
            sha256: sha256_hex(&bytes),
            accept_license: true,
            skip_registration: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn broken_host() -> Hermetic {
    let host = FakeHost::new().with_agent("1.1.1370.0");
    host.break_fixable_prerequisites();
    Hermetic::start_with(Fakes {
        host,
        ..Default::default()
    })
    .await
}

fn started(events: &[v1::OperationEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.kind == StepStarted as i32)
        .map(|e| e.step.as_str())
        .collect()
}

#[tokio::test]
async fn the_listed_fixes_are_planned_made_around_the_agent_and_then_as_desired() {
    let d = broken_host().await;
    // VaultSvc is broken too, but not listed: left alone.
    let listed = [
        HostFix::ServiceAccountManaged,
        HostFix::Tls12,
        HostFix::ExecutionPolicyRemoteSigned,
        HostFix::Tls12,
    ];
    let desired = document(&d, &listed);
    assert_eq!(
        plan_actions(&d.channel, &desired).await,
        [
            ("host".to_owned(), "fix".to_owned()),
            ("host".into(), "fix".into()),
            ("host-agent-service".into(), "fix".into()),
        ]
    );
    let (events, op) = apply_document(&d.channel, &desired).await;
    ok(&op);
    let steps = started(&events);
    let at = |s: &str| steps.iter().position(|x| *x == s).unwrap();
    // Before the agent (registration needs the policy), the managed flag
    // after it (the installer makes the service).
    assert!(
        at("host") < at("tls12") && at("tls12") < at("agent"),
        "{steps:?}"
    );
    assert!(
        at("execution-policy-remote-signed") < at("agent"),
        "{steps:?}"
    );
    assert!(at("agent") < at("host-agent-service"), "{steps:?}");
    assert!(
        at("host-agent-service") < at("service-account-managed"),
        "{steps:?}"
    );
    assert!(!steps.contains(&"vault-service-manual"), "{steps:?}");
    assert!(
        events.iter().any(|e| e.kind == Warning as i32
            && e.step == "tls12"
            && e.message.contains("restart")),
        "TLS 1.2's restart is reported"
    );
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["changes"], "3");
    assert_eq!(op.result["changed_steps"], "host,host-agent-service");
    let made: Vec<HostFix> = d
        .fakes
        .host
        .fixes()
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(f, _)| match f {
            provd::model::HostFix::Tls12 => HostFix::Tls12,
            provd::model::HostFix::VaultSvcManual => HostFix::VaultServiceManual,
            provd::model::HostFix::ServiceAccountManaged => HostFix::ServiceAccountManaged,
            provd::model::HostFix::ExecutionPolicyRemoteSigned => {
                HostFix::ExecutionPolicyRemoteSigned
            }
        })
        .collect();
    assert_eq!(
        made,
        [
            HostFix::Tls12,
            HostFix::ExecutionPolicyRemoteSigned,
            HostFix::ServiceAccountManaged
        ]
    );

    // Verify agrees; the unlisted VaultSvc still fails.
    let request = v1::VerifyRequest {
        categories: vec![v1::CheckCategory::Host as i32],
        ..Default::default()
    };
    let checks = verify_with(&d, request).await.unwrap().0;
    let status = |id: &str| checks.iter().find(|c| c.id == id).unwrap().status;
    for id in [
        "host.tls12",
        "host.execution_policy",
        "host.service_managed",
    ] {
        assert_eq!(status(id), Pass as i32, "{id}");
    }
    assert_ne!(status("host.vault_service"), Pass as i32);

    // Again: nothing to do.
    assert!(plan_actions(&d.channel, &desired).await.is_empty());
    let (events, op) = apply_document(&d.channel, &desired).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    for step in ["host", "host-agent-service"] {
        assert!(
            events
                .iter()
                .any(|e| e.kind == StepSkipped as i32 && e.step == step),
            "{step} skipped"
        );
    }
    assert_eq!(d.fakes.host.fixes().len(), 3, "no fix asked again");
}

#[tokio::test]
async fn bad_fix_values_are_named_with_their_index() {
    let d = broken_host().await;
    let mut desired = document(&d, &[HostFix::Tls12]);
    desired.host.as_mut().unwrap().remediate = vec![1, 0, 99];
    let err = configuration(&d)
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(desired.clone()),
            credential: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&err),
        ["desired.host.remediate[1]", "desired.host.remediate[2]"]
    );
    desired.host.as_mut().unwrap().remediate = vec![1; 17];
    let err = configuration(&d)
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), ["desired.host.remediate"]);
    assert!(d.fakes.host.fixes().is_empty());
}

#[tokio::test]
async fn a_host_provd_cannot_manage_lists_the_fix_and_fails_its_step() {
    let d = broken_host().await;
    d.fakes.host.set_unavailable(Some("not a Windows host"));
    let desired = v1::DesiredState {
        host: host_section(&[HostFix::VaultServiceManual]),
        ..Default::default()
    };
    let changes = plan_changes(&d.channel, &desired).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert!(
        changes[0].detail.contains("vault-service-manual")
            && changes[0].detail.contains("not a Windows host"),
        "{changes:#?}"
    );
    let (_, op) = apply_document(&d.channel, &desired).await;
    let err = op.error.expect("the step fails");
    assert_eq!(
        (err.code.as_str(), err.step.as_str()),
        ("FAILED_PRECONDITION", "host"),
        "{err:#?}"
    );
    assert!(d.fakes.host.fixes().is_empty());
}

#[tokio::test]
async fn drift_fixes_again_what_a_hand_edit_undid() {
    let host = FakeHost::new().with_agent("1.1.1370.0");
    host.break_fixable_prerequisites();
    let d = with_drift_reapply(host).await;
    let host = d.fakes.host.clone();
    let desired = v1::DesiredState {
        host: host_section(&[HostFix::VaultServiceManual]),
        ..Default::default()
    };
    ok(&apply_document(&d.channel, &desired).await.1);
    assert_eq!(host.fixes().len(), 1);
    let reads = host.status_reads();
    wait_until(|| host.status_reads() > reads + 1).await;
    assert_eq!(host.fixes().len(), 1, "no drift, no re-apply");

    // A GPO (or a person) disables the Credential Manager again.
    host.edit_prerequisites(|p| p.vault_service = Ok(Some(StartType::Disabled)));
    wait_until(|| host.fixes().len() == 2).await;
    let reapplied = drift_operation(&d, |_| true).await;
    assert!(
        reapplied.description.contains("vault-service-manual"),
        "{reapplied:#?}"
    );
    let (_, op) = d.finish(Some(reapplied)).await;
    ok(&op);
    assert_eq!(op.result["changed_steps"], "host");
    // The other broken values were not in the document: untouched.
    host.edit_prerequisites(|p| {
        assert_eq!(p.vault_service, Ok(Some(StartType::Manual)));
        assert_eq!(
            p.execution_policy.value,
            RegValue::Text("Unrestricted".into())
        );
    });
}

#[tokio::test]
async fn the_managed_flag_is_planned_for_after_the_install_and_skipped_without_a_service() {
    let host = FakeHost::new();
    host.edit_prerequisites(|p| p.service_account_managed = None);
    let d = Hermetic::start_with(Fakes {
        host,
        ..Default::default()
    })
    .await;
    let desired = v1::DesiredState {
        host: host_section(&[HostFix::ServiceAccountManaged]),
        ..Default::default()
    };
    let changes = plan_changes(&d.channel, &desired).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].step, "host-agent-service");
    assert!(
        changes[0]
            .detail
            .contains("once the agent's installer has created its service"),
        "{changes:#?}"
    );
    // Still no agent service at the step: nothing to fix, nothing done.
    let (events, op) = apply_document(&d.channel, &desired).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert!(
        events
            .iter()
            .any(|e| e.kind == StepSkipped as i32 && e.step == "host-agent-service"),
        "{events:#?}"
    );
    assert!(d.fakes.host.fixes().is_empty());
}
