//! DecommissionAgent and PlanDecommission on the fakes: every step after
//! the full setup, a second run that is all skips, the permissions kept
//! while another agent's host shares the gMSA (a second daemon on the same
//! directory and tenant fakes, with its own host HOST2) and removed once it
//! leaves too, `delete_gmsa` and its confirmation, `keep_gmsa`, roles.

use super::support_ta::{aces_for, allowed, gmsa_dn, sid_of, skipped, succeeded};
use super::support_tb::*;
use crate::common::hermetic::*;
use provd::backends::host::ServiceState;
use provd::backends::host::{AgentProduct, ProductRole, ProductUninstall};
use provd::pki::Role;
use provd::testkit::FakeHost;
use provd::testkit::host::{AGENT_PRODUCT_CODE, BUNDLE_ID, UPDATER_PRODUCT_CODE};
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use tonic::Code;

const STEPS: [&str; 8] = [
    "stop-services",
    "leave-agent-groups",
    "uninstall-package",
    "gmsa-principals",
    "permissions",
    "delete-gmsa",
    "delete-cloud-sync",
    "forget",
];

fn request(delete: Option<&str>) -> v1::DecommissionAgentRequest {
    v1::DecommissionAgentRequest {
        credential: Some(admin()),
        delete_gmsa: delete.is_some(),
        confirm_gmsa_name: delete.unwrap_or_default().into(),
        ..Default::default()
    }
}

pub(super) async fn decommission(
    d: &Hermetic,
    request: v1::DecommissionAgentRequest,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = d
        .agent()
        .decommission_agent(request)
        .await
        .unwrap()
        .into_inner()
        .operation;
    d.finish(op).await
}

async fn plan(d: &Hermetic, request: v1::PlanDecommissionRequest) -> Vec<v1::PlannedChange> {
    d.agent()
        .plan_decommission(request)
        .await
        .unwrap()
        .into_inner()
        .steps
}

fn plan_request() -> v1::PlanDecommissionRequest {
    v1::PlanDecommissionRequest {
        credential: Some(admin()),
        ..Default::default()
    }
}

fn action<'a>(steps: &'a [v1::PlannedChange], step: &str) -> &'a v1::PlannedChange {
    steps.iter().find(|s| s.step == step).expect(step)
}

fn warnings(events: &[v1::OperationEvent], step: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.step == step && e.kind == v1::EventKind::Warning as i32)
        .map(|e| e.message.clone())
        .collect()
}

/// Whether HOST1$ is among the gMSA's principals.
pub(super) fn host1_allowed(d: &Hermetic) -> bool {
    let host1 = format!("CN=HOST1,CN=Computers,{}", d.fakes.directory.base_dn());
    allowed(d, &gmsa_dn(d)).contains(&sid_of(d, &host1))
}

/// The tenant still lists the agent (no delete-agent API) in no group; the
/// package is gone; HOST1$ no longer retrieves the gMSA's password.
pub(super) fn assert_undone(d: &Hermetic, agent_id: &str) {
    let agent = d
        .fakes
        .tenant
        .agents()
        .into_iter()
        .find(|a| a.id == agent_id);
    let groups = agent.expect("still listed").groups;
    assert!(groups.is_empty(), "{groups:?}");
    assert_eq!(d.fakes.host.installed_version(), None);
    assert!(!host1_allowed(d));
}

fn basic_read_held(d: &Hermetic) -> bool {
    let sid = sid_of(d, &gmsa_dn(d));
    !aces_for(d, &d.fakes.directory.base_dn(), &sid).is_empty()
}

#[tokio::test]
async fn decommission_after_the_full_setup_undoes_it_and_a_second_run_does_nothing() {
    let d = Hermetic::start().await;
    let agent_id = full_setup(&d).await;
    assert!(basic_read_held(&d));
    assert!(host1_allowed(&d));

    let planned = plan(&d, plan_request()).await;
    let steps: Vec<&str> = planned.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, STEPS);
    assert_eq!(action(&planned, "stop-services").action, "stop");
    assert_eq!(action(&planned, "leave-agent-groups").action, "remove");
    assert_eq!(action(&planned, "uninstall-package").action, "uninstall");
    assert_eq!(action(&planned, "gmsa-principals").action, "remove");
    assert_eq!(action(&planned, "permissions").action, "remove");
    assert!(
        action(&planned, "permissions")
            .detail
            .contains("BASIC_READ")
    );
    assert_eq!(action(&planned, "delete-gmsa").action, "skip");
    assert_eq!(action(&planned, "forget").action, "forget");
    // The plan changed nothing.
    assert_eq!(
        d.fakes.host.installed_version().as_deref(),
        Some("1.1.1370.0")
    );

    let (events, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::Decommission as i32);
    assert_eq!(op.result["changed"], "true");
    for step in STEPS {
        let done = if step == "delete-gmsa" || step == "delete-cloud-sync" {
            skipped(&events, step)
        } else {
            succeeded(&events, step)
        };
        assert!(done, "{step}: {events:#?}");
    }
    assert!(
        warnings(&events, "leave-agent-groups")
            .iter()
            .any(|w| w.contains("inactive") && w.contains("no delete-agent")),
        "{events:#?}"
    );
    assert_undone(&d, &agent_id);
    for (service, _) in provd::backends::host::AGENT_SERVICES {
        assert_eq!(
            d.fakes.host.service_state(service),
            ServiceState::NotInstalled
        );
    }
    assert!(!basic_read_held(&d), "no other agent uses the account");
    assert!(
        d.fakes.directory.entry(&gmsa_dn(&d)).is_some(),
        "never deleted unasked"
    );
    let agent = d
        .agent()
        .get_agent(v1::GetAgentRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        agent.tenant.unwrap().agent_id,
        "",
        "the registration is forgotten"
    );

    // Idempotent: nothing left to do.
    let (events, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    for step in STEPS {
        assert!(skipped(&events, step), "{step}: {events:#?}");
    }
    let planned = plan(&d, plan_request()).await;
    assert!(planned.iter().all(|s| s.action == "skip"), "{planned:#?}");
    d.shutdown().await;
}

/// A second daemon on the same directory and tenant, on host HOST2, whose
/// agent uses the same gMSA.
async fn second_host(d: &Hermetic) -> Hermetic {
    let d2 = Hermetic::start_with(Fakes {
        directory: d.fakes.directory.clone(),
        tenant: d.fakes.tenant.clone(),
        host: FakeHost::new().with_machine("HOST2"),
        ..Fakes::default()
    })
    .await;
    registered(&d2).await;
    ok(&d2.add_directory().await.1);
    d2.make_computer("HOST2");
    ok(&d2.create_gmsa(&["HOST1$", "HOST2$"]).await.1);
    d2
}

#[tokio::test]
async fn the_permissions_stay_while_another_agent_uses_the_account_and_go_with_the_last() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let d2 = second_host(&d).await;

    let planned = plan(&d, plan_request()).await;
    let permissions = action(&planned, "permissions");
    assert_eq!(permissions.action, "skip");
    assert!(permissions.detail.contains("HOST2"), "{permissions:?}");

    let (events, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert!(skipped(&events, "permissions"), "{events:#?}");
    assert!(
        warnings(&events, "permissions")
            .iter()
            .any(|w| w.contains("HOST2")),
        "{events:#?}"
    );
    assert_eq!(op.result["permissions_kept_for"], "HOST2");
    assert!(basic_read_held(&d), "HOST2's agent still needs them");
    let host2 = sid_of(
        &d,
        &format!("CN=HOST2,CN=Computers,{}", d.fakes.directory.base_dn()),
    );
    assert_eq!(
        allowed(&d, &gmsa_dn(&d)).into_iter().collect::<Vec<_>>(),
        [host2]
    );

    // The last agent leaves: HOST1's agent is still listed (inactive) but its
    // computer no longer retrieves the password, so the ACEs go, and the
    // gMSA may now be deleted, with its confirmation.
    let gmsa_sid = sid_of(&d, &gmsa_dn(&d));
    let (events, op) = decommission(&d2, request(Some("provagentgmsa"))).await;
    ok(&op);
    for step in ["permissions", "gmsa-principals", "delete-gmsa"] {
        assert!(succeeded(&events, step), "{step}: {events:#?}");
    }
    assert!(aces_for(&d, &d.fakes.directory.base_dn(), &gmsa_sid).is_empty());
    assert!(d.fakes.directory.entry(&gmsa_dn(&d)).is_none(), "deleted");
    d2.shutdown().await;
    d.shutdown().await;
}

#[tokio::test]
async fn delete_gmsa_is_refused_while_other_hosts_remain_and_nothing_changes() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let d2 = second_host(&d).await;
    let (events, op) = decommission(&d, request(Some("provAgentgMSA$"))).await;
    let error = failed(&op);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert_eq!(error.reason, "GMSA_IN_USE");
    assert!(error.message.contains("HOST2$"), "{}", error.message);
    assert!(
        !events.iter().any(|e| e.step == "stop-services"),
        "{events:#?}"
    );
    assert_eq!(
        d.fakes.host.installed_version().as_deref(),
        Some("1.1.1370.0")
    );
    let planned = plan(
        &d,
        v1::PlanDecommissionRequest {
            delete_gmsa: true,
            confirm_gmsa_name: "provAgentgMSA$".into(),
            ..plan_request()
        },
    )
    .await;
    assert_eq!(action(&planned, "delete-gmsa").action, "refuse");
    d2.shutdown().await;
    d.shutdown().await;
}

#[tokio::test]
async fn keep_gmsa_needs_no_credential_and_leaves_the_account_alone() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let before = allowed(&d, &gmsa_dn(&d));
    let (events, op) = decommission(
        &d,
        v1::DecommissionAgentRequest {
            keep_gmsa: true,
            ..Default::default()
        },
    )
    .await;
    ok(&op);
    for step in ["gmsa-principals", "permissions", "delete-gmsa"] {
        assert!(skipped(&events, step), "{step}: {events:#?}");
    }
    assert!(succeeded(&events, "uninstall-package"));
    assert_eq!(allowed(&d, &gmsa_dn(&d)), before);
    assert!(basic_read_held(&d));
    // The account record stays, so a run without keep_gmsa can finish.
    let (events, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert!(succeeded(&events, "gmsa-principals"), "{events:#?}");
    assert!(succeeded(&events, "permissions"), "{events:#?}");
    d.shutdown().await;
}

#[tokio::test]
async fn the_fields_and_the_confirmation_are_checked_before_anything_starts() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let cases: [(v1::DecommissionAgentRequest, &str); 5] = [
        (v1::DecommissionAgentRequest::default(), "credential"),
        (request(Some("")), "confirm_gmsa_name"),
        (request(Some("otherGmsa$")), "confirm_gmsa_name"),
        (
            v1::DecommissionAgentRequest {
                confirm_gmsa_name: "provAgentgMSA$".into(),
                ..request(None)
            },
            "confirm_gmsa_name",
        ),
        (
            v1::DecommissionAgentRequest {
                keep_gmsa: true,
                ..request(Some("provAgentgMSA$"))
            },
            "delete_gmsa",
        ),
    ];
    for (req, field) in cases {
        let status = d.agent().decommission_agent(req).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            violations(&status).contains(&field.to_owned()),
            "{field}: {status:?}"
        );
    }
    assert_eq!(
        d.fakes.host.installed_version().as_deref(),
        Some("1.1.1370.0")
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_viewer_may_plan_but_not_decommission() {
    let d = Hermetic::start().await;
    let mut viewer = AgentServiceClient::new(d.channel_as(Role::Viewer).await);
    let status = viewer.decommission_agent(request(None)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let planned = viewer
        .plan_decommission(v1::PlanDecommissionRequest::default())
        .await
        .unwrap()
        .into_inner()
        .steps;
    assert_eq!(planned.len(), STEPS.len());
    assert!(planned.iter().all(|s| s.action == "skip"), "{planned:#?}");
    d.shutdown().await;
}

/// The real package's three uninstall entries: the bundle first (Burn
/// removes the MSIs it chained), so its one run takes all three.
#[tokio::test]
async fn the_package_s_three_entries_go_bundle_first_and_a_second_run_finds_none() {
    let d = Hermetic::start_with(Fakes {
        host: FakeHost::new().with_package(),
        ..Fakes::default()
    })
    .await;
    full_setup(&d).await;
    assert_eq!(d.fakes.host.products().len(), 3);
    let planned = plan(&d, plan_request()).await;
    let uninstall = action(&planned, "uninstall-package");
    assert_eq!(uninstall.action, "uninstall");
    for name in [
        "Microsoft Azure AD Connect Provisioning Agent Package",
        "Microsoft Azure AD Connect Agent Updater",
        "Microsoft Azure AD Connect Provisioning Agent\"",
        "QuietUninstallString",
        "msiexec /x",
    ] {
        assert!(uninstall.detail.contains(name), "{name}: {uninstall:?}");
    }
    let bundle = uninstall.detail.find("Package").unwrap();
    assert!(
        bundle < uninstall.detail.find("Updater").unwrap(),
        "{uninstall:?}"
    );

    let (events, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert!(succeeded(&events, "uninstall-package"), "{events:#?}");
    assert_eq!(
        d.fakes.host.uninstalled(),
        [BUNDLE_ID],
        "Burn took the MSIs"
    );
    assert!(d.fakes.host.products().is_empty());
    let (events, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert!(skipped(&events, "uninstall-package"), "{events:#?}");
    d.shutdown().await;
}

/// Without the bundle (removed by hand, or never there), the MSIs go one
/// by one: the updater, then the agent.
#[tokio::test]
async fn without_the_bundle_the_updater_goes_before_the_agent() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    d.fakes.host.add_product(updater());
    let (events, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert_eq!(
        d.fakes.host.uninstalled(),
        [UPDATER_PRODUCT_CODE, AGENT_PRODUCT_CODE],
        "{events:#?}"
    );
    d.shutdown().await;
}

fn updater() -> AgentProduct {
    AgentProduct {
        key: UPDATER_PRODUCT_CODE.into(),
        display_name: "Microsoft Azure AD Connect Agent Updater".into(),
        version: "1.1.1370.0".into(),
        role: ProductRole::Updater,
        uninstall: ProductUninstall::Msi {
            product_code: UPDATER_PRODUCT_CODE.into(),
        },
    }
}

/// A bundle entry whose QuietUninstallString is not an existing local
/// absolute path is refused, typed, with nothing run; a failing MSI
/// uninstall is typed as Install's exit codes are.
#[tokio::test]
async fn an_untrusted_uninstall_string_is_refused_and_exit_codes_are_typed() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    d.fakes.host.add_product(AgentProduct {
        key: "{bad}".into(),
        display_name: "Microsoft Azure AD Connect Provisioning Agent Package".into(),
        version: "1.1.1370.0".into(),
        role: ProductRole::Package,
        uninstall: ProductUninstall::Bundle {
            quiet_uninstall: "setup.exe /uninstall /quiet".into(),
            cache_path: None,
        },
    });
    let (_, op) = decommission(
        &d,
        v1::DecommissionAgentRequest {
            keep_gmsa: true,
            ..Default::default()
        },
    )
    .await;
    let error = failed(&op);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert_eq!(error.reason, "INSTALLER_FAILED");
    assert!(
        error.message.contains("not a local absolute path") && error.message.contains("{bad}"),
        "{}",
        error.message
    );
    assert!(d.fakes.host.uninstalled().is_empty(), "nothing was run");
    assert!(d.fakes.host.installed_version().is_some());

    let d = Hermetic::start().await;
    full_setup(&d).await;
    d.fakes.host.set_uninstall_exit_code(1603);
    let (_, op) = d.uninstall().await;
    let error = failed(&op);
    assert_eq!(error.reason, "INSTALLER_FAILED");
    assert!(error.message.contains("1603"), "{}", error.message);
    assert!(error.message.contains(".log"), "{error:?}");
    assert_eq!(error.step, "uninstall-package");
    d.shutdown().await;
}

/// "Clean" after a decommission: `host.agent.decommissioned` PASS (no
/// uninstall entry of the package, no agent service), the agent's own
/// checks SKIP, no FAIL. Something left is a FAIL naming it; an Install
/// takes the agent back and the record with it.
#[tokio::test]
async fn verify_after_decommission_reports_the_host_clean_or_names_what_is_left() {
    use super::verify::{find, status, verify};
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let (_, op) = decommission(&d, request(None)).await;
    ok(&op);
    let (checks, report) = verify(&d).await;
    let clean = find(&checks, "host.agent.decommissioned")[0];
    assert_eq!(status(clean), v1::CheckStatus::Pass, "{clean:#?}");
    assert!(clean.message.contains(&op.id), "{clean:#?}");
    for id in [
        "host.agent.installed",
        "agent.module",
        "agent.domains",
        "tenant.agent.registered",
    ] {
        let c = find(&checks, id)[0];
        assert_eq!(status(c), v1::CheckStatus::Skip, "{c:#?}");
        assert!(c.message.contains("decommissioned"), "{c:#?}");
    }
    assert!(
        !checks.iter().any(|c| c.id == "host.services.running"),
        "{checks:#?}"
    );
    assert_eq!(report.fail_count, 0, "{checks:#?}");

    // A half-removed agent: an entry left behind.
    d.fakes.host.add_product(updater());
    let (checks, _) = verify(&d).await;
    let left = find(&checks, "host.agent.decommissioned")[0];
    assert_eq!(status(left), v1::CheckStatus::Fail, "{left:#?}");
    assert!(left.message.contains("Agent Updater"), "{left:#?}");
    assert!(left.remedy.contains("DecommissionAgent"), "{left:#?}");
    let (_, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    let (checks, _) = verify(&d).await;
    let clean = find(&checks, "host.agent.decommissioned")[0];
    assert_eq!(status(clean), v1::CheckStatus::Pass, "{clean:#?}");

    // Install takes the agent back: no decommission record, the agent checked.
    registered(&d).await;
    let (checks, _) = verify(&d).await;
    assert!(
        !checks.iter().any(|c| c.id == "host.agent.decommissioned"),
        "{checks:#?}"
    );
    assert_eq!(
        status(find(&checks, "host.agent.installed")[0]),
        v1::CheckStatus::Pass
    );
    d.shutdown().await;
}

/// ACEs GrantPermissions put on an organizational unit are recorded, named
/// by the plan and taken out by the decommission with the root's.
#[tokio::test]
async fn ou_grants_are_recorded_and_removed_with_the_roots() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let ou = format!("OU=SyncPilot,{}", d.fakes.directory.base_dn());
    d.fakes
        .directory
        .seed_object(
            &ou,
            &[("objectClass", vec![b"organizationalUnit".to_vec()])],
        )
        .unwrap();
    let op = d
        .service_accounts()
        .grant_permissions(v1::GrantPermissionsRequest {
            domain: crate::common::hermetic::DOMAIN.into(),
            profiles: vec![v1::PermissionProfile::BasicRead as i32],
            mode: v1::GrantMode::Apply as i32,
            trustee: "provAgentgMSA$".into(),
            credential: Some(admin()),
            organizational_units: vec![ou.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    ok(&d.finish(op).await.1);
    let sid = sid_of(&d, &gmsa_dn(&d));
    assert!(!aces_for(&d, &ou, &sid).is_empty());

    let planned = plan(&d, plan_request()).await;
    let detail = &action(&planned, "permissions").detail;
    assert!(
        detail.contains(&ou) && detail.contains("the domain root"),
        "{detail}"
    );

    let (_, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert!(aces_for(&d, &ou, &sid).is_empty());
    assert!(!basic_read_held(&d));
    let (events, op) = decommission(&d, request(None)).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false", "{events:#?}");
}
