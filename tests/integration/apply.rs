//! ConfigurationService against the Samba lab (Linux: the directory
//! sections; the agent and writeback sections need the Windows host and run
//! in tests/wine.rs): the plan lists exactly what apply then does, a second
//! apply does nothing and says so, a cancel stops between steps and a later
//! apply finishes the job, and bad documents name their fields.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use crate::common::fixtures::*;
use crate::common::lab::*;
use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;
use tonic::Code;
use tonic::transport::Channel;

const GMSA: &str = "provApplyTest";

fn document(host: &str) -> v1::DesiredState {
    v1::DesiredState {
        domains: vec![v1::DomainSpec {
            domain: var("LAB_DOMAIN"),
            preferred_domain_controllers: vec![var("LAB_DC1_HOST"), var("LAB_DC2_HOST")],
            cloud_sync: None,
        }],
        service_account: Some(v1::ServiceAccountSpec {
            domain: var("LAB_DOMAIN"),
            account: Some(v1::service_account_spec::Account::Create(
                v1::CreateGmsaSpec {
                    name: GMSA.into(),
                    principals_allowed_to_retrieve_password: vec![format!("{host}$")],
                    ..Default::default()
                },
            )),
            permissions: vec![
                v1::PermissionProfile::BasicRead as i32,
                v1::PermissionProfile::ConsistencyGuid as i32,
            ],
        }),
        ..Default::default()
    }
}

async fn plan(channel: &Channel, desired: &v1::DesiredState) -> Vec<v1::PlannedChange> {
    ConfigurationServiceClient::new(channel.clone())
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(desired.clone()),
            credential: Some(admin()),
        })
        .await
        .unwrap()
        .into_inner()
        .changes
}

async fn start_apply(channel: &Channel, desired: &v1::DesiredState) -> v1::Operation {
    ConfigurationServiceClient::new(channel.clone())
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired.clone()),
            credential: Some(admin()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap()
}

/// The PROGRESS events apply emits for its planned changes, as
/// (step, "action: detail").
fn applied_changes(events: &[v1::OperationEvent]) -> Vec<(String, String)> {
    let sections = [
        "domain ",
        "service-account",
        "permissions",
        "writeback",
        "agent",
    ];
    events
        .iter()
        .filter(|e| {
            e.kind == v1::EventKind::Progress as i32
                && sections.iter().any(|s| e.step.starts_with(s))
        })
        .map(|e| (e.step.clone(), e.message.clone()))
        .collect()
}

/// A clean slate: no directory, no recorded account, no test gMSA.
async fn fresh(channel: &Channel) -> String {
    let mut s = admin_session().await;
    add_kds_key(s.as_mut()).await;
    let host = "APPLYHOST";
    make_computer(s.as_mut(), host).await;
    delete_gmsa(s.as_mut(), GMSA).await;
    s.unbind().await;
    let _ = channel;
    host.to_owned()
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn plan_is_what_apply_does_and_a_second_apply_does_nothing() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    let channel = &lab.channel;
    let host = fresh(channel).await;
    let desired = document(&host);

    let planned = plan(channel, &desired).await;
    let summary: Vec<(&str, &str)> = planned
        .iter()
        .map(|c| (c.step.as_str(), c.action.as_str()))
        .collect();
    let domain_step = format!("domain {}", var("LAB_DOMAIN"));
    assert_eq!(
        summary,
        [
            (domain_step.as_str(), "add"),
            ("service-account", "create"),
            ("permissions", "grant"),
            ("permissions", "grant"),
        ],
        "{planned:#?}"
    );
    assert!(planned[0].detail.contains(&var("LAB_DC1_HOST")));

    let op = start_apply(channel, &desired).await;
    assert_eq!(op.kind, v1::OperationKind::ApplyConfiguration as i32);
    let (events, op) = finish(channel, op).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["changes"], planned.len().to_string());
    // Exactly the planned changes, in order.
    let expected: Vec<(String, String)> = planned
        .iter()
        .map(|c| (c.step.clone(), format!("{}: {}", c.action, c.detail)))
        .collect();
    assert_eq!(applied_changes(&events), expected);
    // The nested workflows' own steps ran inside it.
    for step in ["connect", "create-account", "configure-service"] {
        assert!(
            events.iter().any(|e| e.step == step),
            "{step} missing: {events:#?}"
        );
    }

    assert!(
        plan(channel, &desired).await.is_empty(),
        "nothing left to do"
    );
    let (events, op) = finish(channel, start_apply(channel, &desired).await).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["changes"], "0");
    let skipped = events
        .iter()
        .filter(|e| e.kind == v1::EventKind::StepSkipped as i32 && e.message == "as desired")
        .count();
    assert_eq!(
        skipped, 4,
        "domain, service-account, permissions, agent-domains (no module off Windows)"
    );

    // A change to the document is a change to the plan: another DC order.
    // (Only the domain section: with DC2 first, the permission reads would
    // race the replication of what was just written on DC1.)
    let mut reordered = desired.clone();
    reordered.domains[0].preferred_domain_controllers.reverse();
    reordered.service_account = None;
    let planned = plan(channel, &reordered).await;
    assert_eq!(planned.len(), 1, "{planned:#?}");
    assert_eq!(planned[0].action, "set-priority");
    let (_, op) = finish(channel, start_apply(channel, &reordered).await).await;
    ok(&op);
    assert_eq!(op.result["changes"], "1");
    lab.h.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn a_cancelled_apply_stops_between_steps_and_a_later_one_finishes() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    let channel = &lab.channel;
    let host = fresh(channel).await;
    let desired = document(&host);

    let op = start_apply(channel, &desired).await;
    OperationsServiceClient::new(channel.clone())
        .cancel_operation(v1::CancelOperationRequest { id: op.id.clone() })
        .await
        .unwrap();
    let (_, op) = finish(channel, op).await;
    assert_eq!(op.state, v1::OperationState::Cancelled as i32, "{op:#?}");
    // The gMSA step never ran.
    let planned = plan(channel, &desired).await;
    assert!(
        planned.iter().any(|c| c.step == "service-account"),
        "{planned:#?}"
    );

    let (_, op) = finish(channel, start_apply(channel, &desired).await).await;
    ok(&op);
    assert!(plan(channel, &desired).await.is_empty());
    lab.h.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn bad_documents_name_their_fields() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    let desired = v1::DesiredState {
        agent: Some(v1::AgentSpec {
            source: "http://example.test/agent.msi".into(),
            sha256: "nope".into(),
            ..Default::default()
        }),
        domains: vec![
            v1::DomainSpec {
                domain: "not a domain".into(),
                ..Default::default()
            },
            v1::DomainSpec {
                domain: var("LAB_DOMAIN"),
                preferred_domain_controllers: vec!["bad name!".into()],
                cloud_sync: None,
            },
        ],
        service_account: Some(v1::ServiceAccountSpec {
            domain: "elsewhere.example.test".into(),
            account: None,
            permissions: vec![0],
        }),
        ..Default::default()
    };
    let err = ConfigurationServiceClient::new(lab.channel.clone())
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired),
            credential: None,
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for field in [
        "desired.agent.source",
        "desired.agent.sha256",
        "desired.agent.accept_license",
        "desired.domains[0].domain",
        "desired.domains[1].preferred_domain_controllers",
        "desired.service_account.domain",
        "desired.service_account.account",
        "desired.service_account.permissions[0]",
        "credential",
    ] {
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    lab.h.shutdown().await;
}
