//! The tenant side through provd (Linux): device-code sign-in relayed to the
//! operator and approved through the emulator's lab control, an expired
//! code, and Verify's directory checks against the Samba lab — FAIL with a
//! remedy once an ACE is removed behind provd's back, PASS once granted
//! again. The registered-agent half (install, heartbeats, writeback flag)
//! runs under Wine in `tests/wine.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::time::Duration;

use crate::common::fixtures::*;
use crate::common::lab::*;
use crate::common::tenant::TenantEmulator;
use provd::backends::directory::DirectorySession;
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_proto::v1::service_account_service_client::ServiceAccountServiceClient;
use provd_proto::v1::verify_service_client::VerifyServiceClient;
use provd_sd::SecurityDescriptor;
use tonic::transport::Channel;

fn emulator() -> String {
    crate::common::workspace_bin("provd-tenant-emulator")
}

async fn sign_in(channel: &Channel, request_id: &str) -> v1::Operation {
    AgentServiceClient::new(channel.clone())
        .sign_in(v1::SignInRequest {
            request_id: request_id.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap()
}

async fn tenant_session(channel: &Channel) -> v1::TenantSession {
    AgentServiceClient::new(channel.clone())
        .get_agent(v1::GetAgentRequest {})
        .await
        .unwrap()
        .into_inner()
        .tenant
        .unwrap()
}

async fn watch(channel: &Channel, id: &str) -> tonic::Streaming<v1::WatchOperationResponse> {
    v1::operations_service_client::OperationsServiceClient::new(channel.clone())
        .watch_operation(v1::WatchOperationRequest {
            id: id.into(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next ACTION_REQUIRED event of a watched operation.
async fn next_action(
    stream: &mut tonic::Streaming<v1::WatchOperationResponse>,
) -> v1::OperationEvent {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .unwrap()
            .unwrap()
            .expect("the operation ended without asking");
        if let Some(v1::watch_operation_response::Item::Event(e)) = item.item
            && e.kind == v1::EventKind::ActionRequired as i32
        {
            return e;
        }
    }
}

#[tokio::test]
async fn sign_in_waits_for_the_operator_then_proceeds() {
    // Tokens live 30 s: less than provd's 5-minute refresh margin, so every
    // use after sign-in goes through the refresh grant.
    let emu =
        TenantEmulator::start(&emulator(), &["--poll-interval", "1", "--token-ttl", "30"]).await;
    let h = crate::common::Harness::start_with(|c| emu.configure(c)).await;
    let channel = h.channel(provd::pki::Role::Admin).await;
    assert!(!tenant_session(&channel).await.signed_in);

    let op = sign_in(&channel, "").await;
    assert_eq!(op.kind, v1::OperationKind::SignIn as i32);
    // Read the event stream until the code shows up, as provctl does.
    let mut stream = watch(&channel, &op.id).await;
    let action = next_action(&mut stream).await;
    assert_eq!(action.step, "sign-in");
    let uri = &action.attributes["verification_uri"];
    let code = &action.attributes["user_code"];
    assert!(uri.starts_with(&emu.base()), "{uri}");
    assert!(action.message.contains(code.as_str()), "{}", action.message);
    // Nobody signed in yet: the operation waits (polling every second).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let waiting = v1::operations_service_client::OperationsServiceClient::new(channel.clone())
        .get_operation(v1::GetOperationRequest { id: op.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(waiting.state, v1::OperationState::Running as i32);
    assert!(!tenant_session(&channel).await.signed_in);

    emu.approve(code).await;
    let (_, done) = crate::common::finish(&channel, op).await;
    assert_eq!(
        done.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        done.error
    );
    let session = tenant_session(&channel).await;
    assert!(session.signed_in);
    assert!(
        (10..=30).contains(&session.token_expires_in_secs),
        "{session:?}"
    );
    assert!(session.agent_id.is_empty(), "nothing registered on Linux");

    // A second sign-in while the session can be refreshed asks nothing: the
    // refresh token gets a new access token.
    let again = sign_in(&channel, "").await;
    let (events, again) = crate::common::finish(&channel, again).await;
    assert_eq!(again.state, v1::OperationState::Succeeded as i32);
    assert!(
        events
            .iter()
            .any(|e| e.step == "sign-in" && e.kind == v1::EventKind::StepSkipped as i32)
    );
    assert!(
        !events
            .iter()
            .any(|e| e.kind == v1::EventKind::ActionRequired as i32)
    );
    emu.stop().await;
}

#[tokio::test]
async fn a_tenant_refusing_graph_to_the_registration_client_gets_a_second_device_code() {
    // This tenant gives the connector client only the registration
    // audience; Graph CLI (unlisted) may have Graph.
    let table = format!(
        "--client-audience={}=https://proxy.cloudwebappproxy.net/registerapp",
        provd::config::DEFAULT_REGISTRATION_CLIENT_ID
    );
    let emu = TenantEmulator::start(&emulator(), &["--poll-interval", "1", &table]).await;
    let h = crate::common::Harness::start_with(|c| emu.configure(c)).await;
    let channel = h.channel(provd::pki::Role::Admin).await;
    let op = sign_in(&channel, "").await;
    let mut stream = watch(&channel, &op.id).await;
    // The operator approves each code as it is relayed.
    let mut asked = Vec::new();
    for _ in 0..2 {
        let action = next_action(&mut stream).await;
        emu.approve(&action.attributes["user_code"]).await;
        asked.push(action.attributes["client_id"].clone());
    }
    assert_eq!(
        asked,
        [
            provd::config::DEFAULT_REGISTRATION_CLIENT_ID,
            provd::config::DEFAULT_TENANT_CLIENT_ID
        ]
    );
    let (events, done) = crate::common::finish(&channel, op).await;
    assert_eq!(
        done.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        done.error
    );
    let warning = events
        .iter()
        .find(|e| e.kind == v1::EventKind::Warning as i32)
        .expect("a WARNING says why a second code was asked");
    assert!(
        warning.message.contains("AADSTS65001"),
        "{}",
        warning.message
    );
    assert_eq!(done.result["tenant_id"], crate::common::tenant::TENANT);
    assert!(tenant_session(&channel).await.signed_in);
    emu.stop().await;
}

#[tokio::test]
async fn an_expired_device_code_is_a_clear_error() {
    let emu = TenantEmulator::start(
        &emulator(),
        &["--poll-interval", "1", "--device-code-ttl", "2"],
    )
    .await;
    let h = crate::common::Harness::start_with(|c| emu.configure(c)).await;
    let channel = h.channel(provd::pki::Role::Admin).await;
    let op = sign_in(&channel, "").await;
    let (events, done) = crate::common::finish(&channel, op).await;
    assert!(
        events
            .iter()
            .any(|e| e.kind == v1::EventKind::ActionRequired as i32)
    );
    assert_eq!(done.state, v1::OperationState::Failed as i32);
    let error = done.error.unwrap();
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert_eq!(error.step, "sign-in");
    assert!(error.message.contains("expired"), "{}", error.message);
    assert!(!tenant_session(&channel).await.signed_in);
    emu.stop().await;
}

#[tokio::test]
async fn sign_in_to_an_unreachable_tenant_is_unavailable() {
    let h = crate::common::Harness::start_with(|c| {
        // A port nothing listens on.
        c.tenant.authority = Some("https://127.0.0.1:9".into());
        c.tenant.request_timeout = Duration::from_secs(3);
    })
    .await;
    let channel = h.channel(provd::pki::Role::Admin).await;
    let (_, done) = crate::common::finish(&channel, sign_in(&channel, "").await).await;
    assert_eq!(done.state, v1::OperationState::Failed as i32);
    let error = done.error.unwrap();
    assert_eq!(error.code, "UNAVAILABLE", "{error:?}");
    assert!(error.message.contains("tenant"), "{}", error.message);
}

pub(crate) async fn verify(
    channel: &Channel,
    categories: &[v1::CheckCategory],
    credential: Option<v1::Credential>,
) -> (Vec<v1::Check>, v1::VerifyReport) {
    let mut stream = VerifyServiceClient::new(channel.clone())
        .verify(v1::VerifyRequest {
            categories: categories.iter().map(|c| *c as i32).collect(),
            credential,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut checks = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        match item.item.unwrap() {
            v1::verify_response::Item::Check(c) => checks.push(c),
            v1::verify_response::Item::Report(r) => {
                assert!(stream.message().await.unwrap().is_none(), "report is last");
                return (checks, r);
            }
        }
    }
    panic!("no report");
}

pub(crate) fn find<'a>(checks: &'a [v1::Check], id: &str) -> Vec<&'a v1::Check> {
    checks.iter().filter(|c| c.id == id).collect()
}

pub(crate) fn status(c: &v1::Check) -> v1::CheckStatus {
    v1::CheckStatus::try_from(c.status).unwrap()
}

async fn kds_key_present(s: &mut dyn DirectorySession, dn: String) -> bool {
    s.search(
        &dn,
        provd::backends::directory::Scope::Base,
        "(objectClass=*)",
        &["cn"],
    )
    .await
    .is_ok_and(|found| !found.is_empty())
}

/// Removes the first ACE of the gMSA's SID on the domain root (a read
/// right of BASIC_READ), as an admin editing the DACL by hand would.
async fn remove_one_ace(s: &mut dyn DirectorySession, sid: &str) {
    let raw = s
        .read_security_descriptor(&base(), 4)
        .await
        .unwrap()
        .unwrap();
    let mut sd = SecurityDescriptor::parse(&raw).unwrap();
    let mut dacl = sd.dacl.clone().unwrap();
    let at = dacl
        .aces
        .iter()
        .position(|a| a.sid().is_some_and(|s| s.to_string() == sid))
        .expect("the gMSA holds an ACE on the domain root");
    dacl.aces.remove(at);
    sd.set_dacl(Some(dacl));
    s.write_security_descriptor(&base(), 4, &sd.to_bytes().unwrap())
        .await
        .unwrap();
}

async fn grant_basic_read(channel: &Channel) {
    let grant = ServiceAccountServiceClient::new(channel.clone())
        .grant_permissions(v1::GrantPermissionsRequest {
            domain: var("LAB_DOMAIN"),
            profiles: vec![v1::PermissionProfile::BasicRead as i32],
            mode: v1::GrantMode::Apply as i32,
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    ok(&finish(channel, grant).await.1);
}

#[tokio::test]
#[ignore = "needs the Samba AD lab (root): deploy/test.sh runs the lab tier"]
async fn verify_reports_directory_checks_and_a_removed_ace_with_its_remedy() {
    let _serial = SERIAL.lock().await;
    let emu = TenantEmulator::start(&emulator(), &[]).await;
    let d = daemon_with(|c| emu.configure(c)).await;
    let channel = &d.channel;
    ok(&add_directory(channel, admin(), &[]).await.1);
    pin_dc1(channel).await;
    let mut s = admin_session().await;
    let key = add_kds_key(s.as_mut()).await;
    // directory.kds.effective reads every DC: wait for the key on dc2.
    until_dc2_agrees(|s| Box::pin(kds_key_present(s, key.clone()))).await;
    let agent = make_computer(s.as_mut(), "VERIFYHOST").await;
    let (_, op) = create(channel, gmsa_request("provVerify", &[&agent])).await;
    ok(&op);
    let sid = op.result["sid"].clone();
    grant_basic_read(channel).await;

    // Without a credential the directory checks say why they did not run.
    let (checks, report) = verify(channel, &[v1::CheckCategory::Directory], None).await;
    assert!(checks.iter().all(|c| status(c) == v1::CheckStatus::Skip));
    assert_eq!(report.status, v1::CheckStatus::Skip as i32);
    assert!(
        checks[0].message.contains("no credential"),
        "{:?}",
        checks[0]
    );

    let (checks, report) = verify(channel, &[v1::CheckCategory::Directory], Some(admin())).await;
    for id in [
        "directory.dc.reachable",
        "directory.dc.certificate",
        "directory.dc.clock_skew",
        "directory.msa_container",
        "directory.kds.effective",
        "directory.gmsa.account",
        "directory.permissions",
    ] {
        let found = find(&checks, id);
        assert!(!found.is_empty(), "{id} missing: {checks:#?}");
        for c in found {
            assert_eq!(status(c), v1::CheckStatus::Pass, "{c:#?}");
        }
    }
    // Both lab DCs, each with its own certificate and clock check.
    assert_eq!(find(&checks, "directory.dc.certificate").len(), 2);
    assert_eq!(find(&checks, "directory.kds.effective").len(), 2);
    assert_eq!(report.status, v1::CheckStatus::Pass as i32, "{checks:#?}");
    assert_eq!(report.fail_count, 0);

    remove_one_ace(s.as_mut(), &sid).await;
    let (checks, report) = verify(channel, &[v1::CheckCategory::Directory], Some(admin())).await;
    let permissions = find(&checks, "directory.permissions")[0];
    assert_eq!(
        status(permissions),
        v1::CheckStatus::Fail,
        "{permissions:#?}"
    );
    assert!(
        permissions.message.contains("BASIC_READ"),
        "{permissions:#?}"
    );
    assert!(
        permissions.remedy.contains("GrantPermissions"),
        "{permissions:#?}"
    );
    assert_eq!(permissions.subject, var("LAB_DOMAIN"));
    assert_eq!(report.status, v1::CheckStatus::Fail as i32);
    assert_eq!(report.fail_count, 1, "{checks:#?}");

    // The remedy works.
    grant_basic_read(channel).await;
    let (_, report) = verify(channel, &[v1::CheckCategory::Directory], Some(admin())).await;
    assert_eq!(report.status, v1::CheckStatus::Pass as i32);

    // Linux has no agent host and nothing registered: both say so plainly.
    let (checks, _) = verify(
        channel,
        &[v1::CheckCategory::Host, v1::CheckCategory::Tenant],
        None,
    )
    .await;
    let host = find(&checks, "host.backend.available")[0];
    assert_eq!(status(host), v1::CheckStatus::Fail);
    assert!(host.message.contains("only on Windows"), "{host:?}");
    let reachable = find(&checks, "tenant.endpoints.reachable")[0];
    assert_eq!(status(reachable), v1::CheckStatus::Pass, "{reachable:?}");
    // The emulator's Date header, on this host's clock.
    let skew = find(&checks, "tenant.clock_skew")[0];
    assert_eq!(status(skew), v1::CheckStatus::Pass, "{skew:?}");
    let registered = find(&checks, "tenant.agent.registered")[0];
    assert_eq!(status(registered), v1::CheckStatus::Fail);
    assert!(registered.remedy.contains("Install"), "{registered:?}");
    // The key it added goes, as the lab's keys were before.
    s.delete(&key).await.unwrap();
    emu.stop().await;
}

#[tokio::test]
async fn verify_rejects_bad_requests_naming_the_field() {
    let h = crate::common::Harness::start().await;
    let channel = h.channel(provd::pki::Role::Viewer).await;
    let err = VerifyServiceClient::new(channel.clone())
        .verify(v1::VerifyRequest {
            categories: vec![0],
            domains: vec!["not a domain".into()],
            check_timeout: Some(pbjson_types::Duration {
                seconds: 500,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    for field in ["categories[0]", "domains[0]", "check_timeout"] {
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    let err = VerifyServiceClient::new(channel)
        .verify(v1::VerifyRequest {
            domains: vec!["absent.example.test".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}
