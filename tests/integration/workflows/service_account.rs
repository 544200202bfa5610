//! ServiceAccountService on the hermetic tier: CreateGmsa (KDS precondition,
//! the attributes written, idempotency, principals reconciled, conflicts,
//! write faults, the agent service's logon), UseCustomGmsa and
//! GetServiceAccount.

use std::collections::BTreeSet;

use super::support_ta::*;
use crate::common::hermetic::*;
use provd::testkit::{AgentConfigAction, AgentConfigCall, AgentConfigFault, FakeHost, WriteOp};
use provd_proto::v1;
use provd_proto::v1::EventKind;
use tonic::Code;

const SERVICE: &str = "AADConnectProvisioningAgent";

fn assert_attrs(d: &Hermetic, dn: &str, wanted: &[(&str, &str)]) {
    let entry = d.fakes.directory.entry(dn).unwrap();
    for (name, value) in wanted {
        assert_eq!(entry.first(name), Some(*value), "{name} of {dn}");
    }
}

#[tokio::test]
async fn create_gmsa_writes_the_documented_defaults_once() {
    let d = Hermetic::start().await;
    let agent = d.make_computer("AGENT1");
    let (events, op) = d.create_gmsa(&["AGENT1$"]).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    let dn = gmsa_dn(&d);
    assert_eq!(op.result["distinguished_name"], dn);
    let steps = [
        "connect",
        "check-prerequisites",
        "resolve-principals",
        "create-account",
        "record",
        "configure-service",
    ];
    assert_eq!(steps_started(&events), steps);
    let writes = d.fakes.directory.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].op, writes[0].dn.as_str()),
        (WriteOp::Add, dn.as_str())
    );
    let wanted = [
        ("sAMAccountName", "provAgentgMSA$"),
        ("dNSHostName", "provagentgmsa.lab.example.test"),
        ("msDS-ManagedPasswordInterval", "30"),
        ("msDS-SupportedEncryptionTypes", "24"),
        ("userAccountControl", "4096"),
    ];
    assert_attrs(&d, &dn, &wanted);
    assert_eq!(op.result["sid"], sid_of(&d, &dn).to_string());
    assert_eq!(allowed(&d, &dn), BTreeSet::from([sid_of(&d, &agent)]));
    // No agent on this host: the logon step warns and skips.
    assert!(!events_of(&events, "configure-service", EventKind::Warning).is_empty());
    assert!(skipped(&events, "configure-service"));
    assert_eq!(d.fakes.host.service_account(SERVICE), None);
    d.shutdown().await;
}

/// Two hosts of a fleet rolled out at once both find no account and both
/// add it: the one that loses the race adopts what the other made, and
/// writes nothing when it is as requested.
#[tokio::test]
async fn a_gmsa_another_host_created_meanwhile_is_adopted() {
    let d = Hermetic::start().await;
    let agent = d.make_computer("AGENT1");
    let dn = gmsa_dn(&d);
    d.fakes.directory.race_next_add(&dn);
    let (events, op) = d.create_gmsa(&["AGENT1$"]).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["distinguished_name"], dn);
    assert_eq!(op.result["sid"], sid_of(&d, &dn).to_string());
    assert!(skipped(&events, "create-account"));
    let notes = events_of(&events, "create-account", EventKind::Progress);
    assert!(
        notes
            .iter()
            .any(|e| e.message.contains("created meanwhile")),
        "{notes:?}"
    );
    assert_eq!(allowed(&d, &dn), BTreeSet::from([sid_of(&d, &agent)]));
    // Only the other writer's add reached the directory.
    let writes = d.fakes.directory.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    d.shutdown().await;
}

#[tokio::test]
async fn create_gmsa_honours_every_requested_attribute() {
    let d = Hermetic::start().await;
    d.make_computer("AGENT1");
    let container = format!("CN=Users,{}", d.fakes.directory.base_dn());
    let (_, op) = create(
        &d,
        gmsa_with(|r| {
            r.name = "svcSync".into();
            r.container_dn = container.clone();
            r.dns_host_name = "sync.lab.example.test".into();
            r.password_interval_days = 45;
            r.encryption_types = vec![
                v1::EncryptionType::Aes256 as i32,
                v1::EncryptionType::Rc4 as i32,
            ];
        }),
    )
    .await;
    ok(&op);
    let dn = format!("CN=svcSync,{container}");
    assert_eq!(op.result["distinguished_name"], dn);
    assert_eq!(op.result["sam_account_name"], "svcSync$");
    let wanted = [
        ("dNSHostName", "sync.lab.example.test"),
        ("msDS-ManagedPasswordInterval", "45"),
        ("msDS-SupportedEncryptionTypes", "20"),
    ];
    assert_attrs(&d, &dn, &wanted);
    d.shutdown().await;
}

#[tokio::test]
async fn without_an_effective_kds_root_key_nothing_is_written() {
    let d = Hermetic::start().await;
    d.make_computer("AGENT1");
    d.fakes.directory.remove_kds_keys();
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    let error = failed_with(&op, "FAILED_PRECONDITION", "check-prerequisites");
    assert_contains(
        &error.message,
        &["no KDS root key", "Add-KdsRootKey -EffectiveImmediately"],
    );

    // A key that is not effective yet fails the same way and says when.
    let gkds = format!(
        "CN=Group Key Distribution Service,CN=Services,{}",
        d.fakes.directory.configuration_dn()
    );
    let keys = format!("CN=Master Root Keys,{gkds}");
    for dn in [&gkds, &keys] {
        let container = [("objectClass", text("container"))];
        d.fakes.directory.seed_object(dn, &container).unwrap();
    }
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let in_two_hours = (unix.as_secs() + 11_644_473_600 + 7_200) * 10_000_000;
    let key = [
        ("objectClass", text("msKds-ProvRootKey")),
        ("msKds-UseStartTime", text(&in_two_hours.to_string())),
    ];
    d.fakes
        .directory
        .seed_object(&format!("CN=future,{keys}"), &key)
        .unwrap();
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    let error = failed_with(&op, "FAILED_PRECONDITION", "check-prerequisites");
    assert_contains(&error.message, &["not effective yet"]);
    assert!(
        d.fakes.directory.writes().is_empty(),
        "{:?}",
        d.fakes.directory.writes()
    );
    assert!(!configured(&d).await);
    d.shutdown().await;
}

#[tokio::test]
async fn creating_the_same_gmsa_again_does_no_work_and_says_so() {
    let d = Hermetic::start().await;
    d.make_computer("AGENT1");
    ok(&d.create_gmsa(&["AGENT1$"]).await.1);
    let writes = d.fakes.directory.writes().len();
    let (events, op) = d.create_gmsa(&["AGENT1$"]).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert!(skipped(&events, "create-account"));
    assert!(skipped(&events, "record"));
    assert_eq!(d.fakes.directory.writes().len(), writes, "no new write");
    d.shutdown().await;
}

#[tokio::test]
async fn different_principals_are_reconciled_with_an_event_each() {
    let d = Hermetic::start().await;
    let agent1 = d.make_computer("AGENT1");
    let agent2 = d.make_computer("AGENT2");
    let group = make_group(&d, "ProvAgentHosts", &[]);
    ok(&d.create_gmsa(&["AGENT1$"]).await.1);
    let dn = gmsa_dn(&d);
    let (events, op) = d.create_gmsa(&["AGENT2$", &group]).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    let (s1, s2, sg) = (sid_of(&d, &agent1), sid_of(&d, &agent2), sid_of(&d, &group));
    assert_eq!(allowed(&d, &dn), BTreeSet::from([s2, sg]));
    let principals = |k| -> BTreeSet<String> {
        let events = events_of(&events, "create-account", k);
        events
            .iter()
            .filter_map(|e| e.attributes.get("principal").cloned())
            .collect()
    };
    assert_eq!(
        principals(EventKind::Progress),
        BTreeSet::from([s2.to_string(), sg.to_string()])
    );
    assert_eq!(
        principals(EventKind::Warning),
        BTreeSet::from([s1.to_string()]),
        "removal warns"
    );
    let last = d.fakes.directory.writes().pop().unwrap();
    assert_eq!((last.op, last.dn), (WriteOp::Modify, dn));
    d.shutdown().await;
}

#[tokio::test]
async fn a_conflicting_existing_gmsa_is_refused_naming_each_difference() {
    let d = Hermetic::start().await;
    d.make_computer("AGENT1");
    ok(&d.create_gmsa(&["AGENT1$"]).await.1);
    let writes = d.fakes.directory.writes();
    let (_, op) = create(
        &d,
        gmsa_with(|r| {
            r.password_interval_days = 60;
            r.encryption_types = vec![v1::EncryptionType::Aes256 as i32];
        }),
    )
    .await;
    let error = failed_with(&op, "FAILED_PRECONDITION", "create-account");
    let parts = [
        "password interval is 30 days, requested 60",
        "encryption types are",
        "nothing was changed",
    ];
    assert_contains(&error.message, &parts);
    assert_eq!(d.fakes.directory.writes(), writes);
    d.shutdown().await;
}

#[tokio::test]
async fn missing_principals_or_container_and_wrong_kinds_are_named() {
    let d = Hermetic::start().await;
    d.make_computer("AGENT1");
    let (_, op) = d.create_gmsa(&["AGENT1$", "NOPE$"]).await;
    let error = failed_with(&op, "NOT_FOUND", "resolve-principals");
    assert_contains(
        &error.message,
        &["NOPE$", "principals_allowed_to_retrieve_password[1]"],
    );
    let (_, op) = d.create_gmsa(&["AGENT1$", "Administrator"]).await;
    let error = failed_with(&op, "INVALID_ARGUMENT", "resolve-principals");
    assert_contains(
        &error.message,
        &["password[1]", "neither a computer nor a group"],
    );
    let container = format!("OU=Nowhere,{}", d.fakes.directory.base_dn());
    let (_, op) = create(&d, gmsa_with(|r| r.container_dn = container.clone())).await;
    let error = failed_with(&op, "NOT_FOUND", "create-account");
    assert_contains(&error.message, &[&container]);
    assert!(d.fakes.directory.writes().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn write_faults_fail_the_create_without_a_partial_account() {
    let d = Hermetic::start().await;
    let agent1 = d.make_computer("AGENT1");
    let (dn, dir) = (gmsa_dn(&d), d.fakes.directory.clone());
    dir.deny_write(&dn, Some(WriteOp::Add));
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    failed_with(&op, "PERMISSION_DENIED", "create-account");
    assert!(dir.entry(&dn).is_none());
    assert!(!configured(&d).await, "nothing recorded");

    dir.clear_write_faults();
    dir.constraint_on_write(&dn, Some(WriteOp::Add));
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    let error = failed(&op);
    assert_eq!(error.step, "create-account");
    assert_contains(&error.message, &["constraint violation"]);
    // Not a DC outage, nor provd's fault: the DC refused the value.
    assert_eq!(error.code, "FAILED_PRECONDITION", "{error:?}");
    assert_eq!(error.reason, "DIRECTORY_REJECTED");
    assert!(d.fakes.directory.entry(&dn).is_none());
    assert!(!configured(&d).await);

    // Reconciling principals meets the same fault on the modify.
    dir.clear_write_faults();
    ok(&d.create_gmsa(&["AGENT1$"]).await.1);
    d.make_computer("AGENT2");
    dir.constraint_on_write(&dn, Some(WriteOp::Modify));
    let (_, op) = d.create_gmsa(&["AGENT2$"]).await;
    assert_eq!(failed(&op).step, "create-account");
    assert_eq!(allowed(&d, &dn), BTreeSet::from([sid_of(&d, &agent1)]));
    d.shutdown().await;
}

/// A daemon whose host has the agent installed, and the computer AGENT1.
async fn with_installed_agent() -> Hermetic {
    let host = FakeHost::new().with_agent("1.1.1370.0");
    let d = Hermetic::start_with(Fakes {
        host,
        ..Fakes::default()
    })
    .await;
    d.make_computer("AGENT1");
    d
}

#[tokio::test]
async fn the_agent_service_logs_on_as_the_gmsa_when_the_agent_is_installed() {
    let d = with_installed_agent().await;
    assert_eq!(
        d.fakes.host.service_account(SERVICE).as_deref(),
        Some("LocalSystem")
    );
    let (events, op) = d.create_gmsa(&["AGENT1$"]).await;
    ok(&op);
    assert!(succeeded(&events, "configure-service"));
    assert_eq!(op.result["service_account"], "LAB\\provAgentgMSA$");
    let logon = d.fakes.host.service_account(SERVICE);
    assert_eq!(logon.as_deref(), Some("LAB\\provAgentgMSA$"));
    let running = provd::backends::host::ServiceState::Running;
    assert_eq!(d.fakes.host.service_state(SERVICE), running);
    // The logon was set through the agent's module, as Microsoft documents.
    let used: Vec<_> = d
        .fakes
        .agent_config
        .calls()
        .into_iter()
        .filter(|c| matches!(c, AgentConfigCall::UseGmsa { .. }))
        .collect();
    assert_eq!(
        used,
        [AgentConfigCall::UseGmsa {
            sam_account_name: "provAgentgMSA$".into()
        }]
    );
    let (events, _) = d.create_gmsa(&["AGENT1$"]).await;
    assert!(skipped(&events, "configure-service"));
    d.shutdown().await;
}

/// The module's own refusal reaches the operation as its typed error with
/// Microsoft's remedy, and the service keeps its old logon.
#[tokio::test]
async fn a_service_not_flagged_managed_fails_configure_service_with_the_remedy() {
    let d = with_installed_agent().await;
    d.fakes.agent_config.fail(
        AgentConfigAction::UseGmsa,
        AgentConfigFault::ServiceAccountNotManaged,
    );
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    let error = failed_with(&op, "FAILED_PRECONDITION", "configure-service");
    assert_eq!(error.reason, "AGENT_SERVICE_NOT_MANAGED");
    assert!(
        error.message.contains("sc.exe managedaccount"),
        "{}",
        error.message
    );
    assert_eq!(
        d.fakes.host.service_account(SERVICE).as_deref(),
        Some("LocalSystem")
    );
    d.shutdown().await;
}

#[tokio::test]
async fn malformed_create_gmsa_requests_name_their_fields() {
    let d = Hermetic::start().await;
    let cases: Vec<(v1::CreateGmsaRequest, &str)> = vec![
        (gmsa_with(|r| r.name = "bad*name".into()), "name"),
        (gmsa_with(|r| r.name = "sixteen-chars-xx".into()), "name"),
        (
            gmsa_with(|r| r.container_dn = "CN=x,DC=evil,DC=test".into()),
            "container_dn",
        ),
        (
            gmsa_with(|r| r.dns_host_name = "not a host".into()),
            "dns_host_name",
        ),
        (
            gmsa_with(|r| r.password_interval_days = 36_501),
            "password_interval_days",
        ),
        (
            gmsa_with(|r| r.encryption_types = vec![0]),
            "encryption_types[0]",
        ),
        (
            gmsa_request("", &[]),
            "principals_allowed_to_retrieve_password",
        ),
        (
            gmsa_request("", &["A$", " "]),
            "principals_allowed_to_retrieve_password[1]",
        ),
        (gmsa_with(|r| r.domain = "*)(uid=*".into()), "domain"),
        (gmsa_with(|r| r.credential = None), "credential"),
        (gmsa_with(|r| r.request_id = "é".into()), "request_id"),
    ];
    let mut accounts = d.service_accounts();
    for (request, field) in cases {
        let err = accounts.create_gmsa(request).await.unwrap_err();
        assert_fields(&err, &[field]);
    }
    assert_eq!(started(&d, v1::OperationKind::CreateGmsa).await, 0);
    d.shutdown().await;
}

#[tokio::test]
async fn use_custom_gmsa_adopts_a_valid_account_writing_nothing() {
    let d = Hermetic::start().await;
    let agent = d.make_computer("AGENT1");
    make_group(&d, "ProvAgentHosts", &[&agent]);
    ok(&d.create_gmsa(&["ProvAgentHosts"]).await.1);
    let writes = d.fakes.directory.writes();
    // AGENT1 may retrieve the password through the group.
    let (events, op) = use_custom(&d, custom("provAgentgMSA", "AGENT1$")).await;
    ok(&op);
    assert_eq!(op.kind, v1::OperationKind::UseCustomGmsa as i32);
    assert_eq!(op.result["changed"], "true", "the origin changed to custom");
    assert_contains(
        &op.result["missing_profiles"],
        &["PERMISSION_PROFILE_PASSWORD_WRITE_BACK"],
    );
    let profiles = events_of(&events, "check-permissions", EventKind::Progress);
    let absent = profiles
        .iter()
        .filter(|e| e.attributes.get("present").is_some_and(|p| p == "false"));
    assert_eq!(absent.count(), 7);
    assert!(!events_of(&events, "check-permissions", EventKind::Warning).is_empty());
    assert_eq!(d.fakes.directory.writes(), writes, "nothing written");
    let account = service_account(&d, None).await.unwrap().account.unwrap();
    assert_eq!(account.origin, v1::ServiceAccountOrigin::Custom as i32);

    // The same account again: validated again, record skipped.
    let (events, op) = use_custom(&d, custom("provAgentgMSA$", "AGENT1$")).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert!(skipped(&events, "record"));
    d.shutdown().await;
}

#[tokio::test]
async fn use_custom_gmsa_refuses_missing_unusable_or_unreachable_accounts() {
    let d = Hermetic::start().await;
    d.make_computer("AGENT1");
    d.make_computer("OTHERHOST");
    ok(&d.create_gmsa(&["AGENT1$"]).await.1);

    let (_, op) = use_custom(&d, custom("nosuchgmsa", "AGENT1$")).await;
    let error = failed_with(&op, "NOT_FOUND", "read-account");
    assert_contains(&error.message, &["nosuchgmsa$"]);
    let (_, op) = use_custom(&d, custom("provAgentgMSA", "OTHERHOST$")).await;
    let error = failed_with(&op, "FAILED_PRECONDITION", "validate-account");
    assert_contains(
        &error.message,
        &["OTHERHOST$ may not retrieve the password"],
    );
    let (_, op) = use_custom(&d, custom("AGENT1", "AGENT1$")).await;
    let error = failed_with(&op, "FAILED_PRECONDITION", "validate-account");
    assert_contains(&error.message, &["not msDS-GroupManagedServiceAccount"]);
    let account = service_account(&d, None).await.unwrap().account.unwrap();
    assert_eq!(account.origin, v1::ServiceAccountOrigin::Created as i32);

    let with = |f: &dyn Fn(&mut v1::UseCustomGmsaRequest)| {
        let mut r = custom("svc", "AGENT1$");
        f(&mut r);
        r
    };
    let cases = [
        (with(&|r| r.name = String::new()), "name"),
        (with(&|r| r.host_account = String::new()), "host_account"),
        (with(&|r| r.domain = "x..y".into()), "domain"),
        (with(&|r| r.credential = None), "credential"),
    ];
    let mut accounts = d.service_accounts();
    for (request, field) in cases {
        let err = accounts.use_custom_gmsa(request).await.unwrap_err();
        assert_fields(&err, &[field]);
    }
    d.shutdown().await;
}

#[tokio::test]
async fn get_service_account_reports_recorded_and_live_facts() {
    let d = Hermetic::start().await;
    let none = service_account(&d, Some(admin())).await.unwrap();
    assert!(!none.configured && none.account.is_none());

    d.make_computer("AGENT1");
    ok(&d.create_gmsa(&["AGENT1$"]).await.1);
    let recorded = service_account(&d, None).await.unwrap();
    assert!(recorded.configured && !recorded.live && recorded.permissions.is_empty());
    assert!(!recorded.live_unavailable_reason.is_empty());
    assert_eq!(recorded.account.unwrap().logon_name, "LAB\\provAgentgMSA$");

    let live = service_account(&d, Some(admin())).await.unwrap();
    assert!(live.live, "{}", live.live_unavailable_reason);
    assert_eq!(live.domain, DOMAIN);
    let account = live.account.unwrap();
    assert_eq!(account.origin, v1::ServiceAccountOrigin::Created as i32);
    assert_eq!(account.password_interval_days, 30);
    assert_eq!(account.supported_encryption_types, 24);
    let aes = [
        v1::EncryptionType::Aes128 as i32,
        v1::EncryptionType::Aes256 as i32,
    ];
    assert_eq!(account.encryption_types, aes);
    assert!(account.enabled);
    let principal = &account.principals_allowed_to_retrieve_password[0];
    assert_eq!(principal.sam_account_name, "AGENT1$");
    assert_eq!(principal.kind, v1::PrincipalKind::Computer as i32);
    assert_eq!(live.permissions.len(), 7);
    let all = v1::PermissionProfile::All as i32;
    assert!(
        live.permissions
            .iter()
            .all(|p| !p.present && p.profile != all)
    );

    // A grant shows up live.
    let phs = v1::PermissionProfile::PasswordHashSync;
    ok(&d.grant(&[phs], v1::GrantMode::Apply, "").await.1);
    let live = service_account(&d, Some(admin())).await.unwrap();
    let status = live
        .permissions
        .iter()
        .find(|p| p.profile == phs as i32)
        .unwrap();
    assert!(
        status.present && status.missing_aces.is_empty(),
        "{status:?}"
    );

    let mut wrong = admin();
    wrong.password = "nope-nope".into();
    let err = service_account(&d, Some(wrong)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let bad = v1::GetServiceAccountRequest {
        domain: "bad domain".into(),
        credential: None,
    };
    let mut accounts = d.service_accounts();
    let err = accounts.get_service_account(bad).await.unwrap_err();
    assert_fields(&err, &["domain"]);
    d.shutdown().await;
}

#[tokio::test]
async fn a_retried_create_gmsa_request_id_returns_the_first_operation() {
    let d = Hermetic::start().await;
    d.make_computer("AGENT1");
    let request = gmsa_with(|r| r.request_id = "gmsa-1".into());
    let (_, first) = create(&d, request.clone()).await;
    ok(&first);
    let (_, again) = create(&d, request).await;
    assert_eq!(again.id, first.id);
    assert_eq!(again.result["changed"], "true", "the first result");
    assert_eq!(d.fakes.directory.writes().len(), 1);
    d.shutdown().await;
}
