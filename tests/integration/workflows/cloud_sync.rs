//! CloudSyncService and the document's `cloud_sync` section on the fakes:
//! plan = apply event for event, a second apply does nothing, the agent is
//! put in the domain's group, masked secrets still compare, a removed
//! section pauses and releases (nothing deleted), a quarantine fails Verify
//! with Microsoft's remedy, start/pause/restart, 403s name the permission
//! and role, and no secret value reaches an event, a response or the store.

use super::decommission::decommission;
use super::support_ta::{assert_not_echoed, assert_not_stored, fields};
use super::support_tb::*;
use crate::common::configuration::{apply_document_as, plan_changes_as};
use crate::common::hermetic::*;
use provd::backends::tenant::SyncCall;
use provd::testkit::tenant::TenantFault;
use provd_proto::v1;
use provd_proto::v1::EventKind::{Progress, StepSkipped};
use tonic::Code;

const STEP: &str = "cloud-sync lab.example.test";
const OU: &str = "OU=SyncPilot,DC=lab,DC=example,DC=test";
const EMAIL: &str = "sync-canary-5e1f@lab.example.test";

fn spec() -> v1::CloudSyncSpec {
    v1::CloudSyncSpec {
        enabled: true,
        password_hash_sync: true,
        organizational_units: vec![OU.into()],
        notification_email: EMAIL.into(),
        ..Default::default()
    }
}

/// The domain with HOST1's gMSA, and `cloud_sync` when given.
fn document(cloud_sync: Option<v1::CloudSyncSpec>) -> v1::DesiredState {
    v1::DesiredState {
        domains: vec![v1::DomainSpec {
            domain: DOMAIN.into(),
            cloud_sync,
            ..Default::default()
        }],
        service_account: Some(v1::ServiceAccountSpec {
            domain: DOMAIN.into(),
            account: Some(v1::service_account_spec::Account::Create(
                v1::CreateGmsaSpec {
                    principals_allowed_to_retrieve_password: vec!["HOST1$".into()],
                    ..Default::default()
                },
            )),
            permissions: vec![v1::PermissionProfile::BasicRead as i32],
        }),
        ..Default::default()
    }
}

async fn plan(d: &Hermetic, desired: v1::DesiredState) -> Vec<v1::PlannedChange> {
    plan_changes_as(&d.channel, &desired, Some(admin())).await
}

async fn apply(
    d: &Hermetic,
    desired: v1::DesiredState,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    apply_document_as(&d.channel, &desired, Some(admin())).await
}

async fn assert_schedules(d: &Hermetic, want: v1::CloudSyncSchedule) {
    let jobs = get(d).await.jobs;
    assert!(jobs.iter().all(|j| j.schedule == want as i32), "{jobs:#?}");
}

/// PauseCloudSync of the lab domain (no release), watched to its end.
async fn pause(d: &Hermetic) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let request = v1::PauseCloudSyncRequest {
        domain: DOMAIN.into(),
        ..Default::default()
    };
    let op = d.cloud_sync().pause_cloud_sync(request).await.unwrap();
    d.finish(op.into_inner().operation).await
}

/// SetCloudSync with `spec()`, watched to its end.
async fn set(d: &Hermetic) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let request = v1::SetCloudSyncRequest {
        domain: DOMAIN.into(),
        spec: Some(spec()),
        ..Default::default()
    };
    let op = d.cloud_sync().set_cloud_sync(request).await.unwrap();
    d.finish(op.into_inner().operation).await
}

/// "action: detail" of the cloud sync step's PROGRESS events.
fn progress_of(events: &[v1::OperationEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.step == STEP && e.kind == Progress as i32)
        .map(|e| e.message.clone())
        .collect()
}

fn as_events(changes: &[v1::PlannedChange]) -> Vec<String> {
    changes
        .iter()
        .filter(|c| c.step == STEP)
        .map(|c| format!("{}: {}", c.action, c.detail))
        .collect()
}

async fn get(d: &Hermetic) -> v1::CloudSyncDomain {
    let r = d
        .cloud_sync()
        .get_cloud_sync(v1::GetCloudSyncRequest {
            domain: DOMAIN.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.tenant_readable, "{}", r.tenant_message);
    r.domains.into_iter().next().unwrap()
}

/// The agent registered and the directory side applied (no cloud sync
/// yet): the domain is published for the agent's group.
async fn ready(d: &Hermetic) {
    registered(d).await;
    d.make_computer("HOST1");
    ok(&apply(d, document(None)).await.1);
}

fn mutating(calls: &[SyncCall]) -> Vec<SyncCall> {
    calls
        .iter()
        .copied()
        .filter(|c| {
            !matches!(
                c,
                SyncCall::ReadOrganization
                    | SyncCall::ListApps
                    | SyncCall::ListJobs
                    | SyncCall::ReadSecrets
                    | SyncCall::ReadSchema
            )
        })
        .collect()
}

#[tokio::test]
async fn apply_makes_the_configuration_as_planned_and_a_second_apply_does_nothing() {
    let d = Hermetic::start().await;
    ready(&d).await;
    let planned = plan(&d, document(Some(spec()))).await;
    let actions: Vec<&str> = planned.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "enable-tenant-sync",
            "create-app",
            "create-job",
            "create-job",
            "put-secrets",
            "set-scope",
            "start",
            "start"
        ],
        "{planned:#?}"
    );
    assert!(planned.iter().all(|c| c.step == STEP));
    let secrets = &planned[4].detail;
    assert!(
        secrets.contains("Domain, AppKey, SyncNotificationSettings"),
        "{secrets}"
    );

    let (events, op) = apply(&d, document(Some(spec()))).await;
    ok(&op);
    assert_eq!(
        progress_of(&events),
        as_events(&planned),
        "plan = apply, event for event"
    );
    assert_eq!(op.result["changed"], "true");
    let jobs = d.fakes.tenant.sync_jobs(DOMAIN);
    assert_eq!(jobs.len(), 2);
    assert!(
        jobs.iter()
            .all(|j| j.schedule == provd::model::Schedule::Active)
    );
    let view = get(&d).await;
    assert!(view.configured && view.managed);
    assert_eq!(view.observed.as_ref().unwrap().organizational_units, [OU]);
    assert!(view.notification_email_set);
    assert_eq!(
        view.secret_keys,
        ["Domain", "AppKey", "SyncNotificationSettings"]
    );

    let before = d.fakes.tenant.sync_calls().len();
    let (events, op) = apply(&d, document(Some(spec()))).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert!(has(&events, STEP, StepSkipped));
    let after = d.fakes.tenant.sync_calls();
    assert!(
        mutating(&after[before..]).is_empty(),
        "{:?}",
        &after[before..]
    );
    assert!(plan(&d, document(Some(spec()))).await.is_empty());

    assert_not_echoed(&events, &op, EMAIL);
    assert_not_stored(&d, EMAIL);
    assert_not_stored(&d, "appKeyScenario");
    d.shutdown().await;
}

#[tokio::test]
async fn masked_secrets_compare_by_what_provd_last_set() {
    let d = Hermetic::start().await;
    ready(&d).await;
    ok(&apply(&d, document(Some(spec()))).await.1);
    d.fakes.tenant.mask_secrets(true);
    assert!(plan(&d, document(Some(spec()))).await.is_empty());
    let mut other = spec();
    other.notification_email = "someone-else@lab.example.test".into();
    let changes = plan(&d, document(Some(other))).await;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].action, "put-secrets");
    assert!(changes[0].detail.contains("masks"), "{}", changes[0].detail);
    d.shutdown().await;
}

#[tokio::test]
async fn the_agent_joins_the_domains_group_and_the_others_are_named() {
    let d = Hermetic::start().await;
    // Another host's agent published the domain first, in its own group.
    d.fakes
        .tenant
        .add_agent(provd::backends::tenant::ProvisioningAgent {
            id: "agent-other".into(),
            machine_name: "OTHERHOST".into(),
            external_ip: "192.0.2.20".into(),
            active: true,
            groups: vec![provd::backends::tenant::AgentGroup {
                id: "group-lab".into(),
                display_name: "Group-lab".into(),
            }],
        });
    d.fakes.tenant.publish(DOMAIN, &["group-lab"]);
    ready(&d).await;
    let agent_id = d.fakes.tenant.agents()[1].id.clone();
    // The fake agent joined the published group when given the domain:
    // take it out, as an admin center user might.
    d.fakes.tenant.leave_group(&agent_id, "group-lab");
    let planned = plan(&d, document(Some(spec()))).await;
    let assign = planned
        .iter()
        .find(|c| c.action == "assign-agent-group")
        .expect("an assign-agent-group change");
    assert!(assign.detail.contains("group-lab"), "{}", assign.detail);
    assert!(
        assign.detail.contains("OTHERHOST (active)"),
        "{}",
        assign.detail
    );
    ok(&apply(&d, document(Some(spec()))).await.1);
    let view = get(&d).await;
    let mine: Vec<_> = view.agents.iter().filter(|a| a.this_host).collect();
    assert_eq!(mine.len(), 1, "{:?}", view.agents);
    assert_eq!(view.agents.len(), 2);
    d.shutdown().await;
}

#[tokio::test]
async fn removing_the_section_pauses_and_releases_and_deletes_nothing() {
    let d = Hermetic::start().await;
    ready(&d).await;
    ok(&apply(&d, document(Some(spec()))).await.1);
    let planned = plan(&d, document(None)).await;
    let actions: Vec<&str> = planned.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(actions, ["pause", "pause", "release"], "{planned:#?}");
    assert!(
        planned[2].detail.contains("no user is deleted"),
        "{}",
        planned[2].detail
    );
    let (events, op) = apply(&d, document(None)).await;
    ok(&op);
    assert_eq!(progress_of(&events), as_events(&planned));
    let jobs = d.fakes.tenant.sync_jobs(DOMAIN);
    assert_eq!(jobs.len(), 2, "no job deleted");
    assert!(
        jobs.iter()
            .all(|j| j.schedule == provd::model::Schedule::Paused)
    );
    let view = get(&d).await;
    assert!(view.configured && !view.managed, "{view:?}");
    // Released: a later apply without the section leaves it alone.
    let (events, op) = apply(&d, document(None)).await;
    ok(&op);
    assert!(!events.iter().any(|e| e.step == STEP));
    d.shutdown().await;
}

#[tokio::test]
async fn a_quarantine_fails_verify_with_microsofts_remedy_and_apply_leaves_it() {
    let d = Hermetic::start().await;
    ready(&d).await;
    ok(&apply(&d, document(Some(spec()))).await.1);
    d.fakes.tenant.run_sync_cycle(25);
    let checks = verify_checks(&d).await;
    for id in [
        "tenant.sync.job",
        "tenant.sync.last_run",
        "tenant.agent.group",
    ] {
        let c = checks.iter().find(|c| c.id == id).unwrap();
        assert_eq!(c.status, v1::CheckStatus::Pass as i32, "{c:?}");
    }
    let last = checks
        .iter()
        .find(|c| c.id == "tenant.sync.last_run")
        .unwrap();
    assert_eq!(last.attributes["synchronized_users"], "25");

    d.fakes
        .tenant
        .quarantine_sync("HybridIdentityServiceNoActiveAgents");
    let checks = verify_checks(&d).await;
    let job = checks.iter().find(|c| c.id == "tenant.sync.job").unwrap();
    assert_eq!(job.status, v1::CheckStatus::Fail as i32, "{job:?}");
    assert!(
        job.message.contains("HybridIdentityServiceNoActiveAgents"),
        "{}",
        job.message
    );
    assert!(
        job.remedy.contains("AADConnectProvisioningAgent"),
        "{}",
        job.remedy
    );
    let view = get(&d).await;
    let q = view.jobs[0].quarantine.as_ref().unwrap();
    assert!(q.remedy.contains("servicebus"), "{}", q.remedy);
    // Apply never lifts a quarantine; RestartCloudSync is the operator's act.
    assert!(plan(&d, document(Some(spec()))).await.is_empty());
    let op = d
        .cloud_sync()
        .restart_cloud_sync(v1::RestartCloudSyncRequest {
            domain: DOMAIN.into(),
            reset_scope: vec![v1::ResetScope::QuarantineState as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    let (_, op) = d.finish(op).await;
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::ControlCloudSync as i32);
    assert!(get(&d).await.jobs.iter().all(|j| j.quarantine.is_none()));
    d.shutdown().await;
}

async fn verify_checks(d: &Hermetic) -> Vec<v1::Check> {
    let request = v1::VerifyRequest {
        credential: Some(admin()),
        categories: vec![v1::CheckCategory::Tenant as i32],
        ..Default::default()
    };
    super::verify::verify_with(d, request).await.unwrap().0
}

#[tokio::test]
async fn start_pause_and_their_mistakes() {
    let d = Hermetic::start().await;
    ready(&d).await;
    // No configuration yet: the operation says so.
    let (_, op) = pause(&d).await;
    assert_eq!(failed(&op).code, "NOT_FOUND");
    ok(&apply(&d, document(Some(spec()))).await.1);
    let (_, op) = pause(&d).await;
    ok(&op);
    assert_eq!(op.result["changes"], "2");
    assert_schedules(&d, v1::CloudSyncSchedule::Paused).await;
    let op = d
        .cloud_sync()
        .start_cloud_sync(v1::StartCloudSyncRequest {
            domain: DOMAIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    ok(&d.finish(op).await.1);
    assert_schedules(&d, v1::CloudSyncSchedule::Active).await;

    let err = d
        .cloud_sync()
        .restart_cloud_sync(v1::RestartCloudSyncRequest {
            domain: DOMAIN.into(),
            reset_scope: vec![v1::ResetScope::Full as i32, 99],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(fields(&err), ["reset_scope[1]"]);
    let err = d
        .cloud_sync()
        .start_cloud_sync(v1::StartCloudSyncRequest {
            domain: "other.example.test".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    d.shutdown().await;
}

#[tokio::test]
async fn bad_specs_name_their_fields_in_both_entry_points() {
    let d = Hermetic::start().await;
    ready(&d).await;
    let mut bad = spec();
    bad.organizational_units = vec![OU.into(), "OU=X,DC=elsewhere,DC=test".into()];
    bad.notification_email = "not an email".into();
    let err = d
        .cloud_sync()
        .set_cloud_sync(v1::SetCloudSyncRequest {
            domain: DOMAIN.into(),
            spec: Some(bad.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        fields(&err),
        ["spec.organizational_units[1]", "spec.notification_email"]
    );
    assert!(!err.message().contains("not an email"), "{}", err.message());
    let err = configuration(&d)
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(document(Some(bad))),
            credential: Some(admin()),
        })
        .await
        .unwrap_err();
    assert_eq!(
        fields(&err),
        [
            "desired.domains[0].cloud_sync.organizational_units[1]",
            "desired.domains[0].cloud_sync.notification_email"
        ]
    );
    let err = d
        .cloud_sync()
        .set_cloud_sync(v1::SetCloudSyncRequest {
            domain: DOMAIN.into(),
            spec: None,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["spec"]);
    d.shutdown().await;
}

#[tokio::test]
async fn a_refused_secrets_put_names_the_permission_and_the_role() {
    let d = Hermetic::start().await;
    ready(&d).await;
    d.fakes
        .tenant
        .fail_sync(SyncCall::PutSecrets, TenantFault::Forbidden);
    let (events, op) = set(&d).await;
    let error = failed(&op);
    assert_eq!(error.code, "PERMISSION_DENIED");
    assert_eq!(error.step, STEP);
    for part in [
        "Synchronization.ReadWrite.All",
        "Hybrid Identity Administrator",
    ] {
        assert!(error.message.contains(part), "{part}: {}", error.message);
    }
    assert_not_echoed(&events, &op, EMAIL);
    // What was made stays recorded: applying again goes on from there.
    d.fakes.tenant.clear_faults();
    let (events, op) = set(&d).await;
    ok(&op);
    let made: Vec<String> = progress_of(&events);
    assert!(
        made.iter().all(|m| !m.starts_with("create-app")),
        "{made:?}"
    );
    assert_eq!(d.fakes.tenant.sync_jobs(DOMAIN).len(), 2);
    d.shutdown().await;
}

#[tokio::test]
async fn a_configuration_made_outside_provd_is_adopted_and_two_are_refused() {
    let d = Hermetic::start().await;
    ready(&d).await;
    // The admin center made one: provd takes it on, creating no second.
    let made = d.fakes.tenant.add_sync_app(DOMAIN);
    let planned = plan(&d, document(Some(spec()))).await;
    let actions: Vec<&str> = planned.iter().map(|c| c.action.as_str()).collect();
    assert!(actions.contains(&"adopt-app"), "{planned:#?}");
    assert!(!actions.contains(&"create-app"), "{planned:#?}");
    ok(&apply(&d, document(Some(spec()))).await.1);
    let view = get(&d).await;
    assert_eq!(view.service_principal_id, made.service_principal_id);
    assert!(view.managed);
    // A second application of the same name: with none recorded provd
    // would not guess (below)…
    d.fakes.tenant.add_sync_app(DOMAIN);
    // …unless it recorded one of them: that one is the configuration.
    let view = get(&d).await;
    assert_eq!(view.service_principal_id, made.service_principal_id);
    assert!(view.read_error.is_empty(), "{view:?}");
    d.shutdown().await;

    let d = Hermetic::start().await;
    ready(&d).await;
    d.fakes.tenant.add_sync_app(DOMAIN);
    d.fakes.tenant.add_sync_app(DOMAIN);
    let err = configuration(&d)
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(document(Some(spec()))),
            credential: Some(admin()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(precondition(&err).0, "CLOUD_SYNC_AMBIGUOUS");
    d.shutdown().await;
}

/// HybridIdentityServiceInvalidResource ("re-register your agent"): Verify's
/// remedy names RepairAgent, and RepairAgent finds the quarantine on its
/// own and registers the agent again.
#[tokio::test]
async fn an_invalid_resource_quarantine_is_a_reason_for_repair_agent() {
    let d = Hermetic::start().await;
    ready(&d).await;
    ok(&apply(&d, document(Some(spec()))).await.1);
    d.fakes
        .tenant
        .quarantine_sync("HybridIdentityServiceInvalidResource");
    let checks = verify_checks(&d).await;
    let job = checks.iter().find(|c| c.id == "tenant.sync.job").unwrap();
    assert!(job.remedy.contains("RepairAgent"), "{job:?}");

    let op = d
        .agent()
        .repair_agent(v1::RepairAgentRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operation;
    let (events, op) = d.finish(op).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true", "{events:#?}");
    assert!(
        op.result["reasons"].contains("HybridIdentityServiceInvalidResource"),
        "{:?}",
        op.result
    );
}

/// DecommissionAgent deletes the domain's configuration only with
/// `delete_cloud_sync` and the domain repeated; plan shows it first.
#[tokio::test]
async fn decommission_deletes_the_configuration_only_when_asked_and_confirmed() {
    let d = Hermetic::start().await;
    ready(&d).await;
    ok(&apply(&d, document(Some(spec()))).await.1);
    let sp = get(&d).await.service_principal_id;
    assert!(!sp.is_empty());

    let refused = d
        .agent()
        .decommission_agent(v1::DecommissionAgentRequest {
            keep_gmsa: true,
            delete_cloud_sync: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&refused), ["confirm_cloud_sync_domain"]);
    let refused = d
        .agent()
        .decommission_agent(v1::DecommissionAgentRequest {
            keep_gmsa: true,
            confirm_cloud_sync_domain: DOMAIN.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&refused), ["confirm_cloud_sync_domain"]);

    let planned = d
        .agent()
        .plan_decommission(v1::PlanDecommissionRequest {
            keep_gmsa: true,
            delete_cloud_sync: true,
            confirm_cloud_sync_domain: DOMAIN.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .steps;
    let step = planned
        .iter()
        .find(|s| s.step == "delete-cloud-sync")
        .unwrap();
    // The plan reads the tenant with the session Install left.
    assert_eq!(step.action, "delete", "{step:?}");
    assert!(step.detail.contains(&sp), "{step:?}");

    // Without the flag the configuration stays.
    let (events, op) = decommission(
        &d,
        v1::DecommissionAgentRequest {
            keep_gmsa: true,
            ..Default::default()
        },
    )
    .await;
    ok(&op);
    assert!(has(
        &events,
        "delete-cloud-sync",
        v1::EventKind::StepSkipped
    ));
    assert!(get(&d).await.configured);

    let (events, op) = decommission(
        &d,
        v1::DecommissionAgentRequest {
            keep_gmsa: true,
            delete_cloud_sync: true,
            confirm_cloud_sync_domain: DOMAIN.into(),
            ..Default::default()
        },
    )
    .await;
    ok(&op);
    assert!(has(
        &events,
        "delete-cloud-sync",
        v1::EventKind::StepSucceeded
    ));
    assert_eq!(op.result["changed"], "true");
    assert!(
        !d.fakes.tenant.sync_calls().is_empty()
            && d.fakes.tenant.sync_calls().contains(&SyncCall::DeleteApp)
    );
    assert!(
        get(&d).await.observed.is_none(),
        "the configuration is gone"
    );
}
