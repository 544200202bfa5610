//! VerifyService on the fakes: a full setup passes; a stopped service, an
//! inactive agent, a removed ACE, a tenant 403 each fail the check that
//! names them, with a remedy; bad request fields are named.

use super::support_tb::*;
use crate::common::hermetic::*;
use provd::backends::host::ServiceState;
use provd::testkit::tenant::{TenantCall, TenantFault};
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Fail, Pass, Skip};
use provd_proto::v1::verify_service_client::VerifyServiceClient;
use tonic::{Code, Status};

pub(super) async fn verify_with(
    d: &Hermetic,
    request: v1::VerifyRequest,
) -> Result<(Vec<v1::Check>, v1::VerifyReport), Status> {
    verify_on(&d.channel, request).await
}

/// [`verify_with`] over another channel (another client certificate).
pub(super) async fn verify_on(
    channel: &tonic::transport::Channel,
    request: v1::VerifyRequest,
) -> Result<(Vec<v1::Check>, v1::VerifyReport), Status> {
    let mut stream = VerifyServiceClient::new(channel.clone())
        .verify(request)
        .await?
        .into_inner();
    let mut checks = Vec::new();
    while let Some(item) = stream.message().await? {
        match item.item.unwrap() {
            v1::verify_response::Item::Check(c) => checks.push(c),
            v1::verify_response::Item::Report(r) => {
                assert!(stream.message().await?.is_none(), "the report is last");
                return Ok((checks, r));
            }
        }
    }
    panic!("the stream ended without a report");
}

pub(super) async fn verify(d: &Hermetic) -> (Vec<v1::Check>, v1::VerifyReport) {
    verify_with(
        d,
        v1::VerifyRequest {
            credential: Some(admin()),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The checks with `id` (several for per-subject checks).
pub(super) fn find<'a>(checks: &'a [v1::Check], id: &str) -> Vec<&'a v1::Check> {
    let found: Vec<_> = checks.iter().filter(|c| c.id == id).collect();
    assert!(!found.is_empty(), "no {id} among {checks:#?}");
    found
}

pub(super) fn status(c: &v1::Check) -> v1::CheckStatus {
    v1::CheckStatus::try_from(c.status).unwrap()
}

fn failing(checks: &[v1::Check]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| status(c) == Fail)
        .map(|c| format!("{} [{}]: {}", c.id, c.subject, c.message))
        .collect()
}

/// full_setup, the domain published for the agent's group, writeback on.
async fn healthy(d: &Hermetic) -> String {
    let agent_id = full_setup(d).await;
    d.fakes.tenant.publish(DOMAIN, &["group-default"]);
    let op = d
        .writeback()
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: true,
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    ok(&d.finish(op).await.1);
    agent_id
}

#[tokio::test]
async fn a_full_setup_passes_every_check_that_applies() {
    let d = Hermetic::start().await;
    healthy(&d).await;
    let (checks, report) = verify(&d).await;
    assert!(failing(&checks).is_empty(), "{:#?}", failing(&checks));
    assert_ne!(report.status, Fail as i32);
    for id in [
        "host.backend.available",
        "host.agent.installed",
        "host.services.running",
        "host.services.logon_account",
        "agent.module",
        "agent.domains",
        "tenant.endpoints.reachable",
        "tenant.agent.registered",
        "tenant.agent.active",
        "tenant.agent.group",
        "tenant.clock_skew",
        "directory.dc.reachable",
        "directory.msa_container",
        "directory.kds.effective",
        "directory.gmsa.account",
        "directory.permissions",
        "writeback.tenant_flag",
        "writeback.aces",
        "writeback.consistent",
    ] {
        for c in find(&checks, id) {
            assert_eq!(status(c), Pass, "{id}: {c:#?}");
            assert!(c.remedy.is_empty(), "{id}: {}", c.remedy);
        }
    }
    assert_eq!(
        (report.pass_count + report.warn_count + report.fail_count + report.skip_count) as usize,
        checks.len()
    );
    assert!(checks.iter().all(|c| c.category != 0 && c.status != 0));
    d.shutdown().await;
}

#[tokio::test]
async fn a_stopped_service_fails_host_services_running_with_a_remedy() {
    let d = Hermetic::start().await;
    healthy(&d).await;
    d.fakes
        .host
        .set_service_state(AGENT_SERVICE, ServiceState::Stopped);
    let (checks, report) = verify(&d).await;
    let failed: Vec<_> = find(&checks, "host.services.running")
        .into_iter()
        .filter(|c| status(c) == Fail)
        .collect();
    assert_eq!(failed.len(), 1, "{checks:#?}");
    assert!(failed[0].message.contains(AGENT_SERVICE), "{:?}", failed[0]);
    assert!(!failed[0].remedy.is_empty());
    assert_eq!(report.status, Fail as i32);
    assert!(report.fail_count >= 1);
    d.shutdown().await;
}

#[tokio::test]
async fn an_inactive_agent_fails_tenant_agent_active() {
    let d = Hermetic::start().await;
    let agent_id = healthy(&d).await;
    d.fakes.tenant.set_agent_active(&agent_id, false);
    let (checks, _) = verify(&d).await;
    let active = find(&checks, "tenant.agent.active")[0];
    assert_eq!(status(active), Fail, "{active:#?}");
    assert!(!active.remedy.is_empty());
    assert_eq!(status(find(&checks, "tenant.agent.registered")[0]), Pass);
    d.shutdown().await;
}

/// Removes `profile`'s ACEs for the recorded gMSA.
async fn remove_profile(d: &Hermetic, profile: v1::PermissionProfile) {
    let (_, op) = d
        .grant(&[profile], v1::GrantMode::Remove, "provAgentgMSA$")
        .await;
    ok(&op);
}

#[tokio::test]
async fn a_removed_ace_fails_directory_permissions() {
    let d = Hermetic::start().await;
    healthy(&d).await;
    remove_profile(&d, v1::PermissionProfile::BasicRead).await;
    let (checks, report) = verify(&d).await;
    let perms = find(&checks, "directory.permissions")[0];
    assert_eq!(status(perms), Fail, "{perms:#?}");
    assert_eq!(perms.subject, DOMAIN);
    assert!(perms.message.contains("BASIC_READ"), "{}", perms.message);
    assert!(!perms.remedy.is_empty());
    assert_eq!(report.status, Fail as i32);
    d.shutdown().await;
}

#[tokio::test]
async fn removed_writeback_aces_fail_the_writeback_checks() {
    let d = Hermetic::start().await;
    healthy(&d).await;
    remove_profile(&d, v1::PermissionProfile::PasswordWriteBack).await;
    let (checks, _) = verify(&d).await;
    let aces = find(&checks, "writeback.aces")[0];
    assert_eq!(status(aces), Fail, "{aces:#?}");
    assert_eq!(aces.subject, DOMAIN);
    assert_eq!(status(find(&checks, "writeback.consistent")[0]), Fail);
    d.shutdown().await;
}

#[tokio::test]
async fn a_tenant_403_fails_the_registration_check_naming_it() {
    let d = Hermetic::start().await;
    healthy(&d).await;
    d.fakes
        .tenant
        .fail(TenantCall::ListAgents, TenantFault::Forbidden);
    let (checks, _) = verify(&d).await;
    let registered = find(&checks, "tenant.agent.registered")[0];
    assert_eq!(status(registered), Fail);
    assert!(
        registered.message.contains("Insufficient privileges"),
        "{}",
        registered.message
    );
    assert!(!registered.remedy.is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn unreachable_tenant_endpoints_fail_their_check() {
    let d = Hermetic::start().await;
    healthy(&d).await;
    d.fakes.tenant.set_endpoints_down(true);
    let (checks, _) = verify_with(
        &d,
        v1::VerifyRequest {
            categories: vec![v1::CheckCategory::Tenant as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let endpoints = find(&checks, "tenant.endpoints.reachable")[0];
    assert_eq!(status(endpoints), Fail);
    assert!(endpoints.message.contains("login.fake.invalid"));
    assert!(
        checks
            .iter()
            .all(|c| c.category == v1::CheckCategory::Tenant as i32),
        "only the categories asked for"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn without_a_setup_the_checks_fail_or_skip_saying_why() {
    let d = Hermetic::start().await;
    let (checks, report) = verify(&d).await;
    let installed = find(&checks, "host.agent.installed")[0];
    assert_eq!(status(installed), Fail);
    assert!(installed.remedy.contains("Install"), "{}", installed.remedy);
    assert_eq!(report.status, Fail as i32);
    for c in checks.iter().filter(|c| status(c) == Skip) {
        assert!(!c.message.is_empty(), "a SKIP says why: {c:#?}");
    }
    d.shutdown().await;
}

#[tokio::test]
async fn bad_request_fields_are_named_and_unknown_domains_not_found() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let err = verify_with(
        &d,
        v1::VerifyRequest {
            domains: vec!["not a domain".into()],
            categories: vec![
                v1::CheckCategory::Host as i32,
                v1::CheckCategory::Unspecified as i32,
            ],
            check_timeout: Some(pbjson_types::Duration {
                seconds: 500,
                nanos: 0,
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&err),
        ["categories[1]", "domains[0]", "check_timeout"]
    );

    let err = verify_with(
        &d,
        v1::VerifyRequest {
            domains: vec!["other.example.test".into()],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("other.example.test"));
    d.shutdown().await;
}

#[tokio::test]
async fn without_a_credential_writeback_consistency_is_skip_saying_why() {
    let d = Hermetic::start().await;
    healthy(&d).await;
    let no_credential = v1::VerifyRequest {
        categories: vec![v1::CheckCategory::Writeback as i32],
        ..Default::default()
    };
    let (checks, _) = verify_with(&d, no_credential.clone()).await.unwrap();
    let consistent = find(&checks, "writeback.consistent")[0];
    assert_eq!(status(consistent), Skip, "{consistent:#?}");
    assert!(
        consistent.message.contains(DOMAIN),
        "{}",
        consistent.message
    );
    assert!(
        consistent.message.contains("no credential"),
        "{}",
        consistent.message
    );
    assert!(consistent.remedy.is_empty());

    // Off in the tenant, the ACEs it could not read are no PASS either.
    let op = d
        .writeback()
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: false,
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    ok(&d.finish(op).await.1);
    let (checks, _) = verify_with(&d, no_credential).await.unwrap();
    let consistent = find(&checks, "writeback.consistent")[0];
    assert_eq!(status(consistent), Skip, "{consistent:#?}");
    assert!(
        consistent.message.contains(DOMAIN),
        "{}",
        consistent.message
    );
    // With the credential it can look, and it agrees.
    let (checks, _) = verify(&d).await;
    assert_eq!(status(find(&checks, "writeback.consistent")[0]), Pass);
    d.shutdown().await;
}

/// `agent.module`: the agent's PowerShell module must be installed, answer,
/// and run under the execution policies Microsoft's troubleshooting page
/// asks for; each failure says what to do.
#[tokio::test]
async fn the_agent_module_check_names_a_missing_module_a_policy_or_a_failure() {
    use provd::backends::agent_config::ModuleInfo;
    use provd::testkit::{AgentConfigAction, AgentConfigFault};
    let d = Hermetic::start().await;
    let module_check = |checks: &[v1::Check]| find(checks, "agent.module")[0].clone();

    let (checks, _) = verify(&d).await;
    let c = module_check(&checks);
    assert_eq!(status(&c), Pass, "{c:#?}");
    assert!(c.message.contains("1.1.1370.0"), "{}", c.message);

    let healthy = ModuleInfo {
        dll_path: provd::backends::agent_config::MODULE_PATH.into(),
        version: Some("1.1.1370.0".into()),
        execution_policies: vec![("LocalMachine".into(), "RemoteSigned".into())],
        registered_tenant: None,
    };
    d.fakes.agent_config.set_module_info(ModuleInfo {
        version: None,
        ..healthy.clone()
    });
    let c = module_check(&verify(&d).await.0);
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert!(
        c.message.contains("Microsoft.CloudSync.PowerShell.dll"),
        "{}",
        c.message
    );
    assert!(c.remedy.contains("Install"), "{}", c.remedy);

    d.fakes.agent_config.set_module_info(ModuleInfo {
        execution_policies: vec![("LocalMachine".into(), "Unrestricted".into())],
        ..healthy.clone()
    });
    let c = module_check(&verify(&d).await.0);
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert!(c.message.contains("LocalMachine"), "{}", c.message);
    assert!(c.message.contains("RemoteSigned"), "{}", c.message);

    d.fakes.agent_config.set_module_info(healthy);
    d.fakes.agent_config.fail(
        AgentConfigAction::ModuleInfo,
        AgentConfigFault::AssemblyConflict,
    );
    let c = module_check(&verify(&d).await.0);
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert!(c.message.contains("Newtonsoft.Json"), "{}", c.message);
    d.shutdown().await;
}

/// SetPriority gives the agent the new order when it carries a credential
/// (the module wants one); without, the agent keeps its order, a WARNING
/// says so, and agent.domains FAILs naming both orders.
#[tokio::test]
async fn set_priority_reapplies_the_order_to_the_agent_only_with_a_credential() {
    use provd::testkit::AgentConfigCall;
    let d = Hermetic::start().await;
    healthy(&d).await;
    let agent_domains = |checks: &[v1::Check]| find(checks, "agent.domains")[0].clone();

    // Without a credential: stored, the agent not told.
    let op = d.set_priority(&[DC2, DC1]).await;
    ok(&op);
    let c = agent_domains(&verify(&d).await.0);
    assert_eq!(status(&c), Fail, "{c:#?}");
    assert!(
        c.message.contains(DC2) && c.message.contains(DC1),
        "{}",
        c.message
    );
    assert!(c.remedy.contains("AddDirectory"), "{}", c.remedy);

    // With one: the agent gets the order, and the check passes.
    let op = d
        .dcs()
        .set_priority(v1::SetPriorityRequest {
            domain: DOMAIN.into(),
            domain_controllers: vec![DC2.into(), DC1.into()],
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    let (events, op) = d.finish(op).await;
    ok(&op);
    assert!(
        events
            .iter()
            .any(|e| e.step == "add-domain" && e.kind == v1::EventKind::StepSucceeded as i32),
        "{events:#?}"
    );
    let last_add = d
        .fakes
        .agent_config
        .calls()
        .into_iter()
        .rev()
        .find_map(|c| match c {
            AgentConfigCall::AddDomain { preferred_dcs, .. } => Some(preferred_dcs),
            _ => None,
        });
    assert_eq!(last_add, Some(vec![DC2.to_owned(), DC1.to_owned()]));
    let c = agent_domains(&verify(&d).await.0);
    assert_eq!(status(&c), Pass, "{c:#?}");
    d.shutdown().await;
}
