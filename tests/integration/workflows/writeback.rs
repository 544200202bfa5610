//! WritebackService on the fakes: SetPasswordWriteback's preconditions,
//! on (PasswordWriteBack ACEs, then the tenant flag) and off (flag first,
//! then the ACEs), idempotency, GetPasswordWriteback's agreement, the
//! agent module's failures, and Graph's 403 / 429 / 5xx on the reads.

use super::support_tb::*;
use crate::common::hermetic::*;
use provd::testkit::tenant::{TenantCall, TenantFault};
use provd::testkit::{AgentConfigAction, AgentConfigCall, AgentConfigFault, FakeHost, WriteOp};
use provd_proto::v1;
use provd_proto::v1::EventKind::{StepSkipped, StepSucceeded};
use provd_sd::Sid;
use tonic::{Code, Status};

async fn start_set(d: &Hermetic, enable: bool) -> Result<v1::Operation, Status> {
    d.writeback()
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable,
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().operation.unwrap())
}

async fn set(d: &Hermetic, enable: bool) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = start_set(d, enable).await.unwrap();
    d.finish(Some(op)).await
}

async fn get(d: &Hermetic) -> v1::GetPasswordWritebackResponse {
    d.writeback()
        .get_password_writeback(v1::GetPasswordWritebackRequest {
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// ACEs on the domain root whose trustee is the recorded gMSA.
fn gmsa_aces(d: &Hermetic) -> usize {
    let base = d.fakes.directory.base_dn();
    let dn = d
        .fakes
        .directory
        .find(&base, "(sAMAccountName=provAgentgMSA$)")
        .pop()
        .expect("the gMSA exists");
    let sid = Sid::from_bytes(
        d.fakes
            .directory
            .entry(&dn)
            .unwrap()
            .first_bin("objectSid")
            .unwrap(),
    )
    .unwrap();
    let sd = d.fakes.directory.security_descriptor(&base).unwrap();
    sd.dacl
        .unwrap()
        .aces
        .iter()
        .filter(|a| a.sid() == Some(&sid))
        .count()
}

#[tokio::test]
async fn enabling_without_a_registered_agent_is_not_registered() {
    let d = Hermetic::start_with(Fakes {
        host: FakeHost::new().with_agent("1.1.1370.0"),
        ..Fakes::default()
    })
    .await;
    ok(&d.add_directory().await.1);
    d.make_computer("HOST1");
    ok(&d.create_gmsa(&["HOST1$"]).await.1);
    let writes = d.fakes.directory.writes().len();
    let err = start_set(&d, true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert_eq!(
        precondition(&err),
        ("NOT_REGISTERED".into(), "agent".into())
    );
    assert!(err.message().contains("Install"), "{}", err.message());
    assert_eq!(d.fakes.directory.writes().len(), writes, "nothing written");
    d.shutdown().await;
}

#[tokio::test]
async fn enabling_needs_a_domain_and_a_service_account() {
    let d = Hermetic::start().await;
    registered(&d).await;
    let err = start_set(&d, true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(precondition(&err).0, "NO_DIRECTORY");

    ok(&d.add_directory().await.1);
    let err = start_set(&d, true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(
        precondition(&err),
        ("NO_SERVICE_ACCOUNT".into(), "service_account".into())
    );

    let err = d
        .writeback()
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: true,
            domains: vec!["other.example.test".into()],
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("other.example.test"));
    d.shutdown().await;
}

#[tokio::test]
async fn bad_request_fields_are_named() {
    let d = Hermetic::start().await;
    let err = d
        .writeback()
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: true,
            domains: vec![DOMAIN.into(), DOMAIN.to_uppercase()],
            credential: None,
            request_id: "no spaces allowed".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["domains[1]", "credential", "request_id"]);
    let err = d
        .writeback()
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: true,
            domains: (0..65).map(|i| format!("d{i}.example.test")).collect(),
            credential: Some(admin()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&err), ["domains"]);
    assert!(err.message().contains("at most 64"), "{}", err.message());

    let err = d
        .writeback()
        .get_password_writeback(v1::GetPasswordWritebackRequest {
            domain: "bad domain!".into(),
            user_sample_size: 10_001,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["domain", "user_sample_size"]);
    d.shutdown().await;
}

#[tokio::test]
async fn enabling_grants_the_aces_then_sets_the_tenant_flag() {
    let d = Hermetic::start().await;
    let agent_id = full_setup(&d).await;
    let before = gmsa_aces(&d);
    let (events, op) = set(&d, true).await;
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::SetPasswordWriteback as i32);
    let grant = format!("grant {DOMAIN}");
    // The top-level steps in this order (the grant's own steps nest in it).
    let started = steps_started(&events);
    let at = |s: &str| started.iter().position(|x| x == s).expect(s);
    let order = ["check-agent", "sign-in", grant.as_str(), "set-tenant-flag"].map(at);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{started:?}");
    assert!(has(&events, "sign-in", StepSkipped), "session from Install");
    assert_eq!(op.result["enabled"], "true");
    assert_eq!(op.result["domains"], DOMAIN);
    assert_eq!(op.result["added"], "4");
    assert_eq!(gmsa_aces(&d), before + 4);
    assert_eq!(d.fakes.tenant.writeback_flag(&agent_id), Some(true));
    let base = d.fakes.directory.base_dn();
    assert!(
        d.fakes.directory.writes().iter().any(|w| {
            w.op == WriteOp::WriteSecurityDescriptor && w.dn.eq_ignore_ascii_case(&base)
        })
    );
    d.shutdown().await;
}

#[tokio::test]
async fn enabling_twice_changes_nothing_the_second_time() {
    let d = Hermetic::start().await;
    let agent_id = full_setup(&d).await;
    ok(&set(&d, true).await.1);
    let writes = d.fakes.directory.writes().len();
    let aces = gmsa_aces(&d);
    let (_, op) = set(&d, true).await;
    ok(&op);
    assert_eq!(op.result["added"], "0");
    assert_eq!(op.result["removed"], "0");
    assert_eq!(d.fakes.directory.writes().len(), writes, "no DACL written");
    assert_eq!(gmsa_aces(&d), aces);
    assert_eq!(d.fakes.tenant.writeback_flag(&agent_id), Some(true));
    d.shutdown().await;
}

#[tokio::test]
async fn enabling_twice_records_each_step_as_a_skip() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    ok(&set(&d, true).await.1);
    let (events, op) = set(&d, true).await;
    ok(&op);
    for step in [format!("grant {DOMAIN}"), "set-tenant-flag".into()] {
        assert!(has(&events, &step, StepSkipped), "{step}: {events:#?}");
    }
    d.shutdown().await;
}

#[tokio::test]
async fn disabling_clears_the_flag_first_then_revokes_only_writeback_aces() {
    let d = Hermetic::start().await;
    let agent_id = full_setup(&d).await;
    let basic = gmsa_aces(&d);
    ok(&set(&d, true).await.1);
    let (events, op) = set(&d, false).await;
    ok(&op);
    let revoke = format!("revoke {DOMAIN}");
    let started = steps_started(&events);
    let clear = started
        .iter()
        .position(|s| s == "clear-tenant-flag")
        .unwrap();
    let rev = started.iter().position(|s| *s == revoke).unwrap();
    assert!(clear < rev, "{started:?}");
    assert!(!started.contains(&"check-agent".to_owned()));
    assert_eq!(op.result["enabled"], "false");
    assert_eq!(op.result["removed"], "4");
    assert_eq!(d.fakes.tenant.writeback_flag(&agent_id), Some(false));
    assert_eq!(gmsa_aces(&d), basic, "BASIC_READ's ACEs are kept");
    d.shutdown().await;
}

#[tokio::test]
async fn get_reports_agreement_and_then_the_missing_aces() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    let off = get(&d).await;
    assert_eq!(off.tenant_state, v1::WritebackTenantState::Disabled as i32);
    assert!(off.consistent, "{}", off.message);
    assert!(!off.domains[0].aces_present);

    ok(&set(&d, true).await.1);
    let on = get(&d).await;
    assert_eq!(on.tenant_state, v1::WritebackTenantState::Enabled as i32);
    assert!(on.consistent, "{}", on.message);
    assert_eq!(on.agent_version, "1.1.1370.0");
    assert!(on.agent_version_ok);
    let domain = &on.domains[0];
    assert_eq!(domain.domain, DOMAIN);
    assert!(domain.read && domain.aces_present && domain.ready);
    assert!(domain.missing_aces.is_empty());

    // The ACEs removed behind provd's back: the tenant and AD disagree.
    let (_, op) = d
        .grant(
            &[v1::PermissionProfile::PasswordWriteBack],
            v1::GrantMode::Remove,
            "provAgentgMSA$",
        )
        .await;
    ok(&op);
    let broken = get(&d).await;
    assert_eq!(
        broken.tenant_state,
        v1::WritebackTenantState::Enabled as i32
    );
    assert!(!broken.consistent);
    assert!(broken.message.contains(DOMAIN), "{}", broken.message);
    assert!(!broken.domains[0].ready);
    assert_eq!(broken.domains[0].missing_aces.len(), 4);
    d.shutdown().await;
}

/// The flag is set by the agent's module (`set-writeback.ps1`); its
/// failures end `set-tenant-flag` with their typed errors, after the
/// directory was made ready, and the flag stays off.
#[tokio::test]
async fn module_failures_fail_set_tenant_flag_with_their_typed_errors() {
    for (fault, code, reason) in [
        (
            AgentConfigFault::ExecutionPolicy,
            "FAILED_PRECONDITION",
            "AGENT_EXECUTION_POLICY",
        ),
        (AgentConfigFault::TokenRejected, "UNAUTHENTICATED", ""),
        (AgentConfigFault::Timeout, "UNAVAILABLE", ""),
    ] {
        let d = Hermetic::start().await;
        let agent_id = full_setup(&d).await;
        d.fakes
            .agent_config
            .fail(AgentConfigAction::SetWriteback, fault);
        let (events, op) = set(&d, true).await;
        let error = failed(&op);
        assert_eq!(
            (
                error.code.as_str(),
                error.reason.as_str(),
                error.step.as_str()
            ),
            (code, reason, "set-tenant-flag"),
            "{fault:?}: {}",
            error.message
        );
        assert!(has(&events, &format!("grant {DOMAIN}"), StepSucceeded));
        assert_eq!(d.fakes.tenant.writeback_flag(&agent_id), Some(false));
        d.shutdown().await;
    }
}

/// Microsoft documents no read of the setting: when the tenant backend's
/// read fails, a WARNING says so and the module still sets it.
#[tokio::test]
async fn an_unreadable_flag_is_a_warning_and_the_module_still_sets_it() {
    for fault in [TenantFault::Forbidden, TenantFault::ServerError] {
        let d = Hermetic::start().await;
        let agent_id = full_setup(&d).await;
        d.fakes.tenant.fail(TenantCall::Writeback, fault);
        let (events, op) = set(&d, true).await;
        ok(&op);
        let warning = events
            .iter()
            .find(|e| e.step == "set-tenant-flag" && e.kind == v1::EventKind::Warning as i32)
            .unwrap_or_else(|| panic!("{fault:?}: no warning: {events:#?}"));
        assert!(
            warning.message.contains("cannot be read"),
            "{}",
            warning.message
        );
        assert!(has(&events, "set-tenant-flag", StepSucceeded));
        assert!(
            d.fakes
                .agent_config
                .calls()
                .iter()
                .any(|c| matches!(c, AgentConfigCall::SetWriteback { enable: true, .. })),
            "the module was called"
        );
        assert_eq!(d.fakes.tenant.writeback_flag(&agent_id), Some(true));
        d.shutdown().await;
    }
}

#[tokio::test]
async fn a_refused_flag_clear_leaves_the_aces_in_place() {
    let d = Hermetic::start().await;
    let agent_id = full_setup(&d).await;
    ok(&set(&d, true).await.1);
    let aces = gmsa_aces(&d);
    d.fakes
        .agent_config
        .fail(AgentConfigAction::SetWriteback, AgentConfigFault::Cmdlet);
    let (events, op) = set(&d, false).await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAVAILABLE", "{}", error.message);
    assert_eq!(error.step, "clear-tenant-flag");
    assert!(
        !steps_started(&events)
            .iter()
            .any(|s| s.starts_with("revoke"))
    );
    assert_eq!(gmsa_aces(&d), aces);
    assert_eq!(d.fakes.tenant.writeback_flag(&agent_id), Some(true));
    d.shutdown().await;
}

#[tokio::test]
async fn get_with_graph_down_reports_the_flag_unknown_and_still_answers() {
    let d = Hermetic::start().await;
    full_setup(&d).await;
    d.fakes
        .tenant
        .fail(TenantCall::Writeback, TenantFault::ServerError);
    let report = get(&d).await;
    assert_eq!(
        report.tenant_state,
        v1::WritebackTenantState::Unknown as i32
    );
    assert!(
        report.tenant_message.contains("503"),
        "{}",
        report.tenant_message
    );
    assert!(!report.consistent);
    assert!(report.domains[0].read, "the directory part is still read");
    d.shutdown().await;
}

#[tokio::test]
async fn an_agent_too_old_fails_check_agent_before_anything_changes() {
    let d = Hermetic::start_with(Fakes {
        host: FakeHost::new().with_agent("1.1.500.0"),
        ..Fakes::default()
    })
    .await;
    ok(&install_msi(&d, "1.1.500.0", false).await.1);
    ok(&d.add_directory().await.1);
    d.make_computer("HOST1");
    ok(&d.create_gmsa(&["HOST1$"]).await.1);
    let writes = d.fakes.directory.writes().len();
    let error = failed(&set(&d, true).await.1);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert_eq!(error.step, "check-agent");
    assert!(error.message.contains("1.1.977.0"), "{}", error.message);
    assert_eq!(d.fakes.directory.writes().len(), writes);
    d.shutdown().await;
}
