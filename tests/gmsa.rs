//! gMSA and permission profiles against the Samba AD lab: create a gMSA
//! (KDS root key precondition, read-back, idempotency, conflicts), adopt a
//! custom one, and grant / plan / remove profiles — checked by their effect:
//! a trustee granted PasswordWriteBack can reset a user's password, and
//! cannot once it is removed.

mod common;

use std::time::Duration;

use common::lab::*;
use provd::backends::directory::ldap::{LdapSettings, LdapTransport};
use provd::backends::directory::{
    BindCredential, Change, Directory, DirectoryError, DirectorySession, LdapDirectory, Scope,
};
use provd::proto::v1;
use provd::proto::v1::domain_controller_service_client::DomainControllerServiceClient;
use provd::proto::v1::service_account_service_client::ServiceAccountServiceClient;
use provd::security::{SecurityDescriptor, Sid};
use tonic::Code;
use tonic::transport::Channel;

const DC1: &str = "dc1.lab.example.test";

fn backend() -> LdapDirectory {
    provd::transport::tls::install_crypto_provider();
    let dns: Vec<_> = var("LAB_DNS_SERVERS")
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    LdapDirectory::new(
        Some(std::path::Path::new(&var("LAB_CA_PEM"))),
        &dns,
        LdapSettings {
            transport: LdapTransport::Ldaps,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
            page_size: 500,
        },
    )
    .unwrap()
}

async fn bind(user: &str, password: &str) -> Result<Box<dyn DirectorySession>, DirectoryError> {
    backend()
        .connect(
            DC1,
            &BindCredential {
                username: user.into(),
                password: password.to_owned().into(),
            },
        )
        .await
}

async fn admin_session() -> Box<dyn DirectorySession> {
    bind(&var("LAB_ADMIN_UPN"), &var("LAB_PASSWORD"))
        .await
        .unwrap()
}

fn base() -> String {
    var("LAB_BASE_DN")
}

fn config_dn() -> String {
    format!("CN=Configuration,{}", base())
}

fn text(v: &str) -> Vec<Vec<u8>> {
    vec![v.as_bytes().to_vec()]
}

/// Deletes `dn` if it exists (fixtures are made fresh by every test).
async fn delete_if_present(s: &mut dyn DirectorySession, dn: &str) {
    match s.delete(dn).await {
        Ok(()) | Err(DirectoryError::NoSuchObject { .. }) => {}
        Err(e) => panic!("delete {dn}: {e}"),
    }
}

fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// A user with a password, enabled, in CN=Users.
async fn make_user(s: &mut dyn DirectorySession, name: &str, password: &str) -> String {
    let dn = format!("CN={name},CN=Users,{}", base());
    delete_if_present(s, &dn).await;
    s.add(
        &dn,
        &[
            ("objectClass", text("user")),
            ("sAMAccountName", text(name)),
            (
                "userPrincipalName",
                text(&format!("{name}@{}", var("LAB_DOMAIN"))),
            ),
        ],
    )
    .await
    .unwrap();
    s.modify(
        &dn,
        &[Change::Replace(
            "unicodePwd".into(),
            vec![unicode_pwd(password)],
        )],
    )
    .await
    .unwrap();
    s.modify(
        &dn,
        &[Change::Replace("userAccountControl".into(), text("512"))],
    )
    .await
    .unwrap();
    dn
}

async fn make_computer(s: &mut dyn DirectorySession, name: &str) -> String {
    let dn = format!("CN={name},CN=Computers,{}", base());
    delete_if_present(s, &dn).await;
    s.add(
        &dn,
        &[
            ("objectClass", text("computer")),
            ("sAMAccountName", text(&format!("{name}$"))),
            ("userAccountControl", text("4096")),
        ],
    )
    .await
    .unwrap();
    dn
}

fn kds_container() -> String {
    format!(
        "CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,{}",
        config_dn()
    )
}

async fn remove_kds_keys(s: &mut dyn DirectorySession) {
    let keys = match s
        .search(
            &kds_container(),
            Scope::OneLevel,
            "(objectClass=*)",
            &["cn"],
        )
        .await
    {
        Ok(keys) => keys,
        Err(DirectoryError::NoSuchObject { .. }) => return,
        Err(e) => panic!("{e}"),
    };
    for key in keys {
        s.delete(&key.dn).await.unwrap();
    }
}

/// What `Add-KdsRootKey -EffectiveTime ((Get-Date).AddHours(-10))` makes.
async fn add_kds_key(s: &mut dyn DirectorySession) {
    let gkds = format!(
        "CN=Group Key Distribution Service,CN=Services,{}",
        config_dn()
    );
    for dn in [gkds.as_str(), kds_container().as_str()] {
        match s.add(dn, &[("objectClass", text("container"))]).await {
            Ok(()) => {}
            Err(DirectoryError::Ldap { code: 68, .. }) => {}
            Err(e) => panic!("add {dn}: {e}"),
        }
    }
    let filetime = |unix_secs: i64| ((unix_secs + 11_644_473_600) * 10_000_000).to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let id = uuid::Uuid::new_v4().to_string();
    s.add(
        &format!("CN={id},{}", kds_container()),
        &[
            ("objectClass", text("msKds-ProvRootKey")),
            ("cn", text(&id)),
            ("msKds-Version", text("1")),
            ("msKds-KDFAlgorithmID", text("SP800_108_CTR_HMAC")),
            ("msKds-SecretAgreementAlgorithmID", text("DH")),
            ("msKds-PrivateKeyLength", text("512")),
            ("msKds-PublicKeyLength", text("2048")),
            ("msKds-RootKeyData", vec![vec![7u8; 64]]),
            ("msKds-CreateTime", text(&filetime(now))),
            ("msKds-UseStartTime", text(&filetime(now - 36_000))),
            (
                "msKds-DomainID",
                text(&format!("CN=DC1,OU=Domain Controllers,{}", base())),
            ),
        ],
    )
    .await
    .unwrap();
}

fn cred() -> v1::Credential {
    admin()
}

async fn create(
    channel: &Channel,
    req: v1::CreateGmsaRequest,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = ServiceAccountServiceClient::new(channel.clone())
        .create_gmsa(req)
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    finish(channel, op).await
}

fn gmsa_request(name: &str, principals: &[&str]) -> v1::CreateGmsaRequest {
    v1::CreateGmsaRequest {
        name: name.into(),
        principals_allowed_to_retrieve_password: principals
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
        domain: var("LAB_DOMAIN"),
        credential: Some(cred()),
        ..Default::default()
    }
}

/// Pins DC1 first so fixtures (on DC1) and provd see the same DC at once.
async fn pin_dc1(channel: &Channel) {
    let op = DomainControllerServiceClient::new(channel.clone())
        .set_priority(v1::SetPriorityRequest {
            domain: var("LAB_DOMAIN"),
            domain_controllers: vec![var("LAB_DC1_HOST"), var("LAB_DC2_HOST")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(channel, op).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        op.error
    );
}

fn ok(op: &v1::Operation) {
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        op.error
    );
}

#[tokio::test]
async fn create_gmsa_needs_a_kds_key_reads_back_and_is_idempotent() {
    let _serial = SERIAL.lock().await;
    let lab = daemon().await;
    pin_dc1(&lab.channel).await;
    let mut s = admin_session().await;
    let agent = make_computer(s.as_mut(), "AGENT1").await;
    let agent_sid = sid_of(s.as_mut(), &agent).await;
    delete_if_present(
        s.as_mut(),
        &format!("CN=provAgentgMSA,CN=Managed Service Accounts,{}", base()),
    )
    .await;
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
    delete_if_present(
        s.as_mut(),
        &format!("CN=svcCustom,CN=Managed Service Accounts,{}", base()),
    )
    .await;
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
async fn password_writeback_grants_reports_readiness_and_revokes() {
    use provd::proto::v1::writeback_service_client::WritebackServiceClient;
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
    delete_if_present(
        s.as_mut(),
        &format!("CN=svcWriteback,CN=Managed Service Accounts,{}", base()),
    )
    .await;
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

    let op = writeback
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: true,
            domains: vec![],
            credential: Some(cred()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (events, op) = finish(&lab.channel, op).await;
    ok(&op);
    assert_eq!(op.result["added"], "4");
    assert!(
        events
            .iter()
            .any(|e| e.step == "set-tenant-flag" && e.kind == v1::EventKind::StepSkipped as i32)
    );
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

    let op = writeback
        .set_password_writeback(v1::SetPasswordWritebackRequest {
            enable: false,
            domains: vec![var("LAB_DOMAIN")],
            credential: Some(cred()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(&lab.channel, op).await;
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
