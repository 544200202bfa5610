//! gMSA and permission profiles against the Samba AD lab: create a gMSA
//! (KDS root key precondition, read-back, idempotency, conflicts), adopt a
//! custom one, and grant / plan / remove profiles — checked by their effect:
//! a trustee granted PasswordWriteBack can reset a user's password, and
//! cannot once it is removed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use crate::common::fixtures::*;
use crate::common::lab::*;
use provd::backends::directory::{Change, DirectoryError, DirectorySession, Scope};
use provd_proto::v1;
use provd_proto::v1::service_account_service_client::ServiceAccountServiceClient;
use provd_sd::{SecurityDescriptor, Sid};
use tonic::Code;
use tonic::transport::Channel;

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn create_gmsa_needs_a_kds_key_reads_back_and_is_idempotent() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    pin_dc1(&lab.channel).await;
    let mut s = admin_session().await;
    let agent = make_computer(s.as_mut(), "AGENT1").await;
    let agent_sid = sid_of(s.as_mut(), &agent).await;
    delete_gmsa(s.as_mut(), "provAgentgMSA").await;
    remove_kds_keys(s.as_mut()).await;

    // No KDS root key: the documented error, nothing created.
    let (_, op) = create(&lab.channel, gmsa_request("", &["AGENT1$"])).await;
    let error = op.error.unwrap();
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert!(
        error.message.contains("Add-KdsRootKey"),
        "{}",
        error.message
    );
    assert_eq!(error.step, "check-prerequisites");

    add_kds_key(s.as_mut()).await;
    let (_, op) = create(&lab.channel, gmsa_request("", &["AGENT1$"])).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["sam_account_name"], "provAgentgMSA$");

    // Every attribute as requested, read straight from the DC.
    let dn = op.result["distinguished_name"].clone();
    assert_eq!(
        dn,
        format!("CN=provAgentgMSA,CN=Managed Service Accounts,{}", base())
    );
    let entry = s
        .search(
            &dn,
            Scope::Base,
            "(objectClass=*)",
            &[
                "objectClass",
                "sAMAccountName",
                "dNSHostName",
                "msDS-ManagedPasswordInterval",
                "msDS-SupportedEncryptionTypes",
                "userAccountControl",
                "msDS-GroupMSAMembership",
            ],
        )
        .await
        .unwrap()
        .remove(0);
    assert!(
        entry
            .all("objectClass")
            .iter()
            .any(|c| c == "msDS-GroupManagedServiceAccount")
    );
    assert_eq!(
        entry.first("dNSHostName"),
        Some("provagentgmsa.lab.example.test")
    );
    assert_eq!(entry.first("msDS-ManagedPasswordInterval"), Some("30"));
    assert_eq!(entry.first("msDS-SupportedEncryptionTypes"), Some("24"));
    assert_eq!(entry.first("userAccountControl"), Some("4096"));
    let membership =
        SecurityDescriptor::parse(entry.first_bin("msDS-GroupMSAMembership").unwrap()).unwrap();
    let sids: Vec<Sid> = membership
        .dacl
        .unwrap()
        .aces
        .iter()
        .filter_map(|a| a.sid().copied())
        .collect();
    assert_eq!(sids, [agent_sid]);

    // The same request again: no change.
    let (events, op) = create(&lab.channel, gmsa_request("", &["AGENT1$"])).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert!(
        events
            .iter()
            .any(|e| e.step == "create-account" && e.kind == v1::EventKind::StepSkipped as i32)
    );

    // GetServiceAccount reports it, live.
    let report = ServiceAccountServiceClient::new(lab.channel.clone())
        .get_service_account(v1::GetServiceAccountRequest {
            domain: String::new(),
            credential: Some(cred()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        report.configured && report.live,
        "{}",
        report.live_unavailable_reason
    );
    let account = report.account.unwrap();
    assert_eq!(account.logon_name, "LAB\\provAgentgMSA$");
    assert_eq!(
        account.encryption_types,
        [
            v1::EncryptionType::Aes128 as i32,
            v1::EncryptionType::Aes256 as i32
        ]
    );
    assert_eq!(
        account.principals_allowed_to_retrieve_password[0].kind,
        v1::PrincipalKind::Computer as i32
    );
    assert_eq!(report.permissions.len(), 7);
    assert!(report.permissions.iter().all(|p| !p.present));

    // A different interval: refused, naming it, nothing changed.
    let mut longer = gmsa_request("", &["AGENT1$"]);
    longer.password_interval_days = 60;
    let (_, op) = create(&lab.channel, longer).await;
    let error = op.error.unwrap();
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert!(
        error
            .message
            .contains("password interval is 30 days, requested 60"),
        "{}",
        error.message
    );

    // Different principals: reconciled.
    let agent2 = make_computer(s.as_mut(), "AGENT2").await;
    let (events, op) = create(&lab.channel, gmsa_request("", &["AGENT2$", &agent])).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    let agent2_sid = sid_of(s.as_mut(), &agent2).await.to_string();
    assert!(events.iter().any(|e| e.message.contains(&agent2_sid)));

    // A user is not an allowed principal kind.
    let (_, op) = create(&lab.channel, gmsa_request("", &["Administrator"])).await;
    assert_eq!(op.error.unwrap().code, "INVALID_ARGUMENT");
    s.unbind().await;
    lab.h.shutdown().await;
}

async fn sid_of(s: &mut dyn DirectorySession, dn: &str) -> Sid {
    let e = s
        .search(dn, Scope::Base, "(objectClass=*)", &["objectSid"])
        .await
        .unwrap()
        .remove(0);
    Sid::from_bytes(e.first_bin("objectSid").unwrap()).unwrap()
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn bad_gmsa_requests_name_their_fields() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    let mut accounts = ServiceAccountServiceClient::new(lab.channel.clone());
    let cases: Vec<(v1::CreateGmsaRequest, &str)> = vec![
        (gmsa_request("bad*name", &["A$"]), "name"),
        (gmsa_request("sixteen-chars-xx", &["A$"]), "name"),
        (
            v1::CreateGmsaRequest {
                container_dn: "CN=x,DC=evil,DC=test".into(),
                ..gmsa_request("", &["A$"])
            },
            "container_dn",
        ),
        (
            gmsa_request("", &[]),
            "principals_allowed_to_retrieve_password",
        ),
        (
            v1::CreateGmsaRequest {
                encryption_types: vec![0],
                ..gmsa_request("", &["A$"])
            },
            "encryption_types[0]",
        ),
        (
            v1::CreateGmsaRequest {
                domain: "*)(uid=*".into(),
                ..gmsa_request("", &["A$"])
            },
            "domain",
        ),
    ];
    for (req, field) in cases {
        let err = accounts.create_gmsa(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    lab.h.shutdown().await;
}

async fn grant(
    channel: &Channel,
    profiles: &[v1::PermissionProfile],
    mode: v1::GrantMode,
    trustee: &str,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = ServiceAccountServiceClient::new(channel.clone())
        .grant_permissions(v1::GrantPermissionsRequest {
            domain: var("LAB_DOMAIN"),
            profiles: profiles.iter().map(|p| *p as i32).collect(),
            mode: mode as i32,
            trustee: trustee.into(),
            credential: Some(cred()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    finish(channel, op).await
}

fn planned(events: &[v1::OperationEvent]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = events
        .iter()
        .filter(|e| e.step == "plan" && e.attributes.contains_key("ace"))
        .map(|e| {
            (
                e.attributes["object"].clone(),
                e.attributes["ace"].clone(),
                e.attributes["action"].clone(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn password_writeback_grant_has_effect_and_removal_takes_it_away() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    pin_dc1(&lab.channel).await;
    let mut s = admin_session().await;
    let trustee_pw = "Trustee!Pw1";
    make_user(s.as_mut(), "wbtrustee", trustee_pw).await;
    let alice = make_user(s.as_mut(), "wbalice", "Alice!Pw1start").await;
    let trustee_upn = format!("wbtrustee@{}", var("LAB_DOMAIN"));
    let profile = [v1::PermissionProfile::PasswordWriteBack];

    // Before: the trustee cannot reset alice's password.
    let mut t = bind(&trustee_upn, trustee_pw).await.unwrap();
    let denied = t
        .modify(
            &alice,
            &[Change::Replace(
                "unicodePwd".into(),
                vec![unicode_pwd("Reset!Pw2a")],
            )],
        )
        .await;
    assert!(
        matches!(denied, Err(DirectoryError::InsufficientAccess { .. })),
        "{denied:?}"
    );
    t.unbind().await;

    let before = s
        .read_security_descriptor(&base(), 4)
        .await
        .unwrap()
        .unwrap();

    // Plan shows exactly what apply then writes.
    let (plan_events, op) = grant(&lab.channel, &profile, v1::GrantMode::Plan, "wbtrustee").await;
    ok(&op);
    assert_eq!(op.result["added"], "4");
    assert_eq!(
        s.read_security_descriptor(&base(), 4)
            .await
            .unwrap()
            .unwrap(),
        before,
        "PLAN wrote"
    );
    let (apply_events, op) = grant(&lab.channel, &profile, v1::GrantMode::Apply, "wbtrustee").await;
    ok(&op);
    assert_eq!(op.result["added"], "4");
    assert_eq!(planned(&plan_events), planned(&apply_events));
    assert_eq!(planned(&plan_events).len(), 4);

    // Apply twice adds nothing.
    let (again, op) = grant(&lab.channel, &profile, v1::GrantMode::Apply, "wbtrustee").await;
    ok(&op);
    assert_eq!(
        (op.result["added"].as_str(), op.result["unchanged"].as_str()),
        ("0", "4")
    );
    assert!(planned(&again).is_empty());

    // Effect: reset, pwdLastSet and lockoutTime work; other attributes do not.
    let mut t = bind(&trustee_upn, trustee_pw).await.unwrap();
    t.modify(
        &alice,
        &[Change::Replace(
            "unicodePwd".into(),
            vec![unicode_pwd("Reset!Pw2a")],
        )],
    )
    .await
    .unwrap();
    t.modify(&alice, &[Change::Replace("pwdLastSet".into(), text("0"))])
        .await
        .unwrap();
    t.modify(&alice, &[Change::Replace("lockoutTime".into(), text("0"))])
        .await
        .unwrap();
    let other = t
        .modify(
            &alice,
            &[Change::Replace("description".into(), text("nope"))],
        )
        .await;
    assert!(
        matches!(other, Err(DirectoryError::InsufficientAccess { .. })),
        "{other:?}"
    );
    t.unbind().await;

    // Remove takes exactly ours: the DACL is byte for byte what it was.
    let (events, op) = grant(&lab.channel, &profile, v1::GrantMode::Remove, "wbtrustee").await;
    ok(&op);
    assert_eq!(op.result["removed"], "4");
    assert_eq!(planned(&events).len(), 4);
    assert_eq!(
        s.read_security_descriptor(&base(), 4)
            .await
            .unwrap()
            .unwrap(),
        before
    );
    let mut t = bind(&trustee_upn, trustee_pw).await.unwrap();
    let denied = t
        .modify(
            &alice,
            &[Change::Replace(
                "unicodePwd".into(),
                vec![unicode_pwd("Reset!Pw3b")],
            )],
        )
        .await;
    assert!(
        matches!(denied, Err(DirectoryError::InsufficientAccess { .. })),
        "{denied:?}"
    );
    t.unbind().await;
    s.unbind().await;
    lab.h.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn all_profiles_apply_keep_other_aces_in_order_and_remove_cleanly() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    pin_dc1(&lab.channel).await;
    let mut s = admin_session().await;
    make_user(s.as_mut(), "allprofiles", "All!Profiles1").await;
    let before_bytes = s
        .read_security_descriptor(&base(), 4)
        .await
        .unwrap()
        .unwrap();
    let before = SecurityDescriptor::parse(&before_bytes)
        .unwrap()
        .dacl
        .unwrap();

    let all = [v1::PermissionProfile::All];
    let (events, op) = grant(&lab.channel, &all, v1::GrantMode::Apply, "allprofiles").await;
    ok(&op);
    // publicFolder is not in a schema without Exchange: left out, with a warning.
    assert!(
        events
            .iter()
            .any(|e| e.kind == v1::EventKind::Warning as i32 && e.message.contains("publicFolder"))
    );
    let added: usize = op.result["added"].parse().unwrap();
    let after = SecurityDescriptor::parse(
        &s.read_security_descriptor(&base(), 4)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap()
    .dacl
    .unwrap();
    assert_eq!(after.aces.len(), before.aces.len() + added);
    // Every ACE that was there is still there, in the same relative order.
    let kept: Vec<_> = after
        .aces
        .iter()
        .filter(|a| before.aces.contains(a))
        .cloned()
        .collect();
    assert_eq!(kept, before.aces);

    let (_, op) = grant(&lab.channel, &all, v1::GrantMode::Apply, "allprofiles").await;
    assert_eq!(op.result["added"], "0");

    // GetServiceAccount-style status is visible through UseCustomGmsa-free
    // planning: PLAN_REMOVE lists what REMOVE takes; REMOVE restores the DACL.
    let (plan, op) = grant(&lab.channel, &all, v1::GrantMode::PlanRemove, "allprofiles").await;
    ok(&op);
    assert_eq!(op.result["removed"], added.to_string());
    let (done, op) = grant(&lab.channel, &all, v1::GrantMode::Remove, "allprofiles").await;
    ok(&op);
    assert_eq!(planned(&plan), planned(&done));
    assert_eq!(
        s.read_security_descriptor(&base(), 4)
            .await
            .unwrap()
            .unwrap(),
        before_bytes
    );

    // REMOVE of one profile keeps an ACE another held profile needs.
    let both = [
        v1::PermissionProfile::BasicRead,
        v1::PermissionProfile::PasswordHashSync,
    ];
    let (_, op) = grant(&lab.channel, &both, v1::GrantMode::Apply, "allprofiles").await;
    ok(&op);
    let (events, op) = grant(
        &lab.channel,
        &[v1::PermissionProfile::PasswordHashSync],
        v1::GrantMode::Remove,
        "allprofiles",
    )
    .await;
    ok(&op);
    assert_eq!(
        op.result["removed"], "1",
        "only Get-Changes-All goes; Get-Changes stays for BasicRead"
    );
    assert!(events.iter().any(|e| e.message.contains("keeping")));
    let (_, op) = grant(&lab.channel, &both, v1::GrantMode::Remove, "allprofiles").await;
    ok(&op);
    assert_eq!(
        s.read_security_descriptor(&base(), 4)
            .await
            .unwrap()
            .unwrap(),
        before_bytes
    );
    s.unbind().await;
    lab.h.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn use_custom_gmsa_validates_and_reports_missing_permissions() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    pin_dc1(&lab.channel).await;
    let mut s = admin_session().await;
    make_computer(s.as_mut(), "CUSTHOST").await;
    make_computer(s.as_mut(), "OTHERHOST").await;
    if s.search(
        &kds_container(),
        Scope::OneLevel,
        "(objectClass=msKds-ProvRootKey)",
        &["cn"],
    )
    .await
    .map(|k| k.is_empty())
    .unwrap_or(true)
    {
        add_kds_key(s.as_mut()).await;
    }
    delete_gmsa(s.as_mut(), "svcCustom").await;
    let (_, op) = create(&lab.channel, gmsa_request("svcCustom", &["CUSTHOST$"])).await;
    ok(&op);

    let use_custom = |host: &str| v1::UseCustomGmsaRequest {
        name: "svcCustom".into(),
        domain: var("LAB_DOMAIN"),
        credential: Some(cred()),
        host_account: host.into(),
        request_id: String::new(),
    };
    let mut accounts = ServiceAccountServiceClient::new(lab.channel.clone());
    let op = accounts
        .use_custom_gmsa(use_custom("CUSTHOST$"))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (events, op) = finish(&lab.channel, op).await;
    ok(&op);
    assert!(op.result["missing_profiles"].contains("PERMISSION_PROFILE_PASSWORD_WRITE_BACK"));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.attributes.contains_key("profile"))
            .count(),
        7
    );

    // A host that may not retrieve the password: refused with the reason.
    let op = accounts
        .use_custom_gmsa(use_custom("OTHERHOST$"))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(&lab.channel, op).await;
    let error = op.error.unwrap();
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert!(
        error
            .message
            .contains("OTHERHOST$ may not retrieve the password"),
        "{}",
        error.message
    );

    // Not a gMSA at all.
    let mut wrong = use_custom("CUSTHOST$");
    wrong.name = var("LAB_ADMIN_DN");
    let op = accounts
        .use_custom_gmsa(wrong)
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(&lab.channel, op).await;
    let error = op.error.unwrap();
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert!(
        error
            .message
            .contains("not msDS-GroupManagedServiceAccount"),
        "{}",
        error.message
    );
    // A name that does not exist: NOT_FOUND.
    let mut missing = use_custom("CUSTHOST$");
    missing.name = "nosuchgmsa".into();
    let op = accounts
        .use_custom_gmsa(missing)
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(&lab.channel, op).await;
    assert_eq!(op.error.unwrap().code, "NOT_FOUND");
    s.unbind().await;
    lab.h.shutdown().await;
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn writeback_needs_a_registered_agent_and_readiness_follows_the_profile() {
    use provd_proto::v1::writeback_service_client::WritebackServiceClient;
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    pin_dc1(&lab.channel).await;
    let mut writeback = WritebackServiceClient::new(lab.channel.clone());

    // Preconditions are checked at call time.
    let err = writeback
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: true,
            domains: vec!["other.example.test".into()],
            credential: Some(cred()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    let (_, op) = add_directory(&lab.channel, admin(), &[]).await;
    ok(&op);
    let mut s = admin_session().await;
    make_computer(s.as_mut(), "WBHOST").await;
    if s.search(
        &kds_container(),
        Scope::OneLevel,
        "(objectClass=msKds-ProvRootKey)",
        &["cn"],
    )
    .await
    .map(|k| k.is_empty())
    .unwrap_or(true)
    {
        add_kds_key(s.as_mut()).await;
    }
    delete_gmsa(s.as_mut(), "svcWriteback").await;
    let (_, op) = create(&lab.channel, gmsa_request("svcWriteback", &["WBHOST$"])).await;
    ok(&op);

    let get = |credential: Option<v1::Credential>| v1::GetPasswordWritebackRequest {
        domain: String::new(),
        credential,
        user_sample_size: 0,
    };
    let before = writeback
        .get_password_writeback(get(Some(cred())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        before.tenant_state,
        v1::WritebackTenantState::Unknown as i32
    );
    assert!(!before.consistent);
    let d = &before.domains[0];
    assert!(d.read && !d.aces_present && !d.ready, "{d:?}");
    assert_eq!(d.missing_aces.len(), 4);
    assert!(d.sampled_user_count > 0);

    // The tenant half needs this machine's agent registered, which Linux
    // cannot do (tests/wine.rs covers it): refused before anything changes.
    let err = writeback
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: true,
            domains: vec![],
            credential: Some(cred()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("Install"), "{}", err.message());
    let still = writeback
        .get_password_writeback(get(Some(cred())))
        .await
        .unwrap()
        .into_inner();
    assert!(!still.domains[0].aces_present);

    // The directory half alone: the PasswordWriteBack profile.
    let profile = [v1::PermissionProfile::PasswordWriteBack];
    let (_, op) = grant(&lab.channel, &profile, v1::GrantMode::Apply, "").await;
    ok(&op);
    assert_eq!(op.result["added"], "4");
    let after = writeback
        .get_password_writeback(get(Some(cred())))
        .await
        .unwrap()
        .into_inner();
    assert!(after.domains[0].aces_present && after.domains[0].ready);

    // Without a credential the domain is reported unread, not an error.
    let unread = writeback
        .get_password_writeback(get(None))
        .await
        .unwrap()
        .into_inner();
    assert!(!unread.domains[0].read && !unread.domains[0].read_error.is_empty());

    let (_, op) = grant(&lab.channel, &profile, v1::GrantMode::Remove, "").await;
    ok(&op);
    assert_eq!(op.result["removed"], "4");
    let revoked = writeback
        .get_password_writeback(get(Some(cred())))
        .await
        .unwrap()
        .into_inner();
    assert!(!revoked.domains[0].aces_present);
    s.unbind().await;
    lab.h.shutdown().await;
}
