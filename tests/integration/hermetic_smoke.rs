//! The hermetic tier's smoke tests: the real workflows, driven through the
//! gRPC API of an in-process daemon whose directory, tenant and host are
//! the testkit's fakes. No root, no lab, no network.

use crate::common::hermetic::*;
use provd::testkit::{FakeDirectory, FakeHost, WriteOp};
use provd_proto::v1;
use provd_sd::Sid;

#[tokio::test]
async fn add_directory_reads_the_fake_domain() {
    let d = Hermetic::start().await;
    let (events, op) = d.add_directory().await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    let list = d
        .directories()
        .list_directories(v1::ListDirectoriesRequest {})
        .await
        .unwrap()
        .into_inner();
    let dir = &list.directories[0];
    assert_eq!(dir.netbios_name, "LAB");
    assert_eq!(dir.domain_sid, d.fakes.directory.domain_sid().to_string());
    assert_eq!(
        dir.domain_behavior_version, 7,
        "the fixture is Samba 4.22 at 2016"
    );
    let prereq = |n: &str| dir.prerequisites.iter().find(|p| p.name == n).unwrap().ok;
    assert!(prereq("schema.gmsa_class") && prereq("kds.root_key"));
    assert!(
        events
            .iter()
            .any(|e| e.attributes.get("dc").map(String::as_str) == Some(DC1))
    );
    d.shutdown().await;
}

#[tokio::test]
async fn add_directory_with_bind_refused_is_unauthenticated() {
    let fakes = Fakes::default();
    fakes.directory.refuse_bind(DC1, true);
    fakes.directory.refuse_bind(DC2, true);
    let d = Hermetic::start_with(fakes).await;
    let (_, op) = d.add_directory().await;
    // The same code and wording as the lab's wrong-password test.
    let error = failed(&op);
    assert_eq!(error.code, "UNAUTHENTICATED", "{}", error.message);
    assert!(
        error.message.contains("rejected the credentials"),
        "{}",
        error.message
    );
    let list = d
        .directories()
        .list_directories(v1::ListDirectoriesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(list.directories.is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn create_gmsa_creates_the_account_and_the_service_logs_on_as_it() {
    let fakes = Fakes {
        host: FakeHost::new().with_agent("1.1.1370.0"),
        ..Fakes::default()
    };
    let d = Hermetic::start_with(fakes).await;
    ok(&d.add_directory().await.1);
    let agent = d.make_computer("AGENT1");
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    ok(&op);
    assert_eq!(op.result["sam_account_name"], "provAgentgMSA$");
    let dn = op.result["distinguished_name"].clone();
    let entry = d.fakes.directory.entry(&dn).expect("the gMSA exists");
    assert!(
        entry
            .all("objectClass")
            .iter()
            .any(|c| c == "msDS-GroupManagedServiceAccount")
    );
    assert_eq!(entry.first("msDS-ManagedPasswordInterval"), Some("30"));
    let agent_sid = Sid::from_bytes(
        d.fakes
            .directory
            .entry(&agent)
            .unwrap()
            .first_bin("objectSid")
            .unwrap(),
    )
    .unwrap();
    let membership =
        provd_sd::SecurityDescriptor::parse(entry.first_bin("msDS-GroupMSAMembership").unwrap())
            .unwrap();
    assert_eq!(membership.dacl.unwrap().aces[0].sid(), Some(&agent_sid));
    assert_eq!(
        d.fakes
            .host
            .service_account("AADConnectProvisioningAgent")
            .as_deref(),
        Some("LAB\\provAgentgMSA$")
    );
    // Again: nothing changes.
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    d.shutdown().await;
}

#[tokio::test]
async fn create_gmsa_without_a_kds_root_key_is_the_documented_precondition() {
    let fakes = Fakes {
        directory: FakeDirectory::fresh_samba(),
        ..Fakes::default()
    };
    let d = Hermetic::start_with(fakes).await;
    d.make_computer("AGENT1");
    let (_, op) = d.create_gmsa(&["AGENT1$"]).await;
    let error = failed(&op);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert_eq!(error.step, "check-prerequisites");
    assert!(
        error.message.contains("Add-KdsRootKey"),
        "{}",
        error.message
    );
    assert!(
        d.fakes.directory.writes().is_empty(),
        "{:?}",
        d.fakes.directory.writes()
    );

    // With a key the same request succeeds.
    d.fakes.directory.add_kds_key();
    ok(&d.create_gmsa(&["AGENT1$"]).await.1);
    d.shutdown().await;
}

#[tokio::test]
async fn grant_permissions_plans_then_applies_password_writeback() {
    let d = Hermetic::start().await;
    ok(&d.add_directory().await.1);
    let trustee = d.make_computer("TRUSTEE1");
    let trustee_sid = Sid::from_bytes(
        d.fakes
            .directory
            .entry(&trustee)
            .unwrap()
            .first_bin("objectSid")
            .unwrap(),
    )
    .unwrap();
    let base = d.fakes.directory.base_dn();
    let before = d.fakes.directory.security_descriptor(&base).unwrap();
    let profile = [v1::PermissionProfile::PasswordWriteBack];

    let (_, op) = d.grant(&profile, v1::GrantMode::Plan, "TRUSTEE1$").await;
    ok(&op);
    assert_eq!(op.result["added"], "4");
    assert_eq!(
        d.fakes.directory.security_descriptor(&base).unwrap(),
        before,
        "a plan writes nothing"
    );

    let (_, op) = d.grant(&profile, v1::GrantMode::Apply, "TRUSTEE1$").await;
    ok(&op);
    let after = d.fakes.directory.security_descriptor(&base).unwrap();
    let granted = after
        .dacl
        .as_ref()
        .unwrap()
        .aces
        .iter()
        .filter(|a| a.sid() == Some(&trustee_sid))
        .count();
    assert_eq!(granted, 4);
    assert_eq!(after.owner, before.owner, "only the DACL was written");
    assert!(
        d.fakes
            .directory
            .writes()
            .iter()
            .any(|w| w.op == WriteOp::WriteSecurityDescriptor && w.dn.eq_ignore_ascii_case(&base))
    );

    // A DACL the account may not write: PERMISSION_DENIED.
    d.fakes
        .directory
        .deny_write(&base, Some(WriteOp::WriteSecurityDescriptor));
    let (_, op) = d.grant(&profile, v1::GrantMode::Remove, "TRUSTEE1$").await;
    assert_eq!(failed(&op).code, "PERMISSION_DENIED");
    d.shutdown().await;
}

#[tokio::test]
async fn a_dc_gone_mid_operation_fails_it_and_the_retry_fails_over() {
    let d = Hermetic::start().await;
    ok(&d.set_priority(&[DC1, DC2]).await);
    // DC1 answers the bind and two reads, then goes away.
    d.fakes.directory.fail_after(DC1, 2);
    let (_, op) = d.add_directory().await;
    let error = failed(&op);
    assert_eq!(error.code, "UNAVAILABLE", "{}", error.message);
    assert!(error.message.contains(DC1), "{}", error.message);

    // The retry skips the DC that went away, with a warning, and DC2 serves.
    let (events, op) = d.add_directory().await;
    ok(&op);
    let warned = events.iter().any(|e| {
        e.kind == v1::EventKind::Warning as i32
            && e.attributes.get("dc").map(String::as_str) == Some(DC1)
    });
    assert!(warned, "{events:#?}");
    let list = d
        .directories()
        .list_directories(v1::ListDirectoriesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.directories[0].last_domain_controller, DC2);
    d.shutdown().await;
}

async fn install(
    d: &Hermetic,
    skip_registration: bool,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let pkg = d.h.dir.path().join("AADConnectProvisioningAgentSetup.exe");
    std::fs::write(&pkg, b"not really an installer").unwrap();
    let op = d
        .agent()
        .install(v1::InstallRequest {
            source: format!("file://{}", pkg.display()),
            sha256: crate::common::sha256_hex(b"not really an installer"),
            accept_license: true,
            skip_registration,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    d.finish(op).await
}

#[tokio::test]
async fn install_with_installer_exit_code_1603_fails_naming_it() {
    let d = Hermetic::start().await;
    d.fakes.host.set_install_exit_code(1603);
    let (_, op) = install(&d, true).await;
    let error = failed(&op);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert_eq!(error.step, "install-package");
    assert!(
        error.message.contains("exit code 1603"),
        "{}",
        error.message
    );
    assert_eq!(d.fakes.host.installs().len(), 1);
    assert_eq!(d.fakes.host.installed_version(), None);
    d.shutdown().await;
}

#[tokio::test]
async fn install_signs_in_registers_the_agent_and_starts_it() {
    let d = Hermetic::start().await;
    let (events, op) = install(&d, false).await;
    ok(&op);
    assert!(
        events
            .iter()
            .any(|e| e.kind == v1::EventKind::ActionRequired as i32)
    );
    let agent_id = op.result["agent_id"].clone();
    assert_eq!(d.fakes.tenant.agents()[0].id, agent_id);
    assert_eq!(
        d.fakes
            .agent_config
            .module_info_now()
            .registered_tenant
            .as_deref(),
        Some(provd::testkit::tenant::FAKE_TENANT_ID),
        "the agent's module was connected"
    );
    assert_eq!(
        d.fakes.host.installed_version().as_deref(),
        Some("1.1.1370.0")
    );
    assert_eq!(
        d.fakes.host.service_state("AADConnectProvisioningAgent"),
        provd::backends::host::ServiceState::Running
    );
    d.shutdown().await;
}
