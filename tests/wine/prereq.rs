//! The host prerequisites on the Wine host, through provd.exe's API, with
//! no Samba lab: each bad state Wine's registry and SCM really hold — the
//! TLS 1.2 keys off, VaultSvc disabled (a stand-in service: Wine has no
//! VaultSvc), the machine's execution policy Unrestricted, the agent
//! service not flagged managed — FAILs its Verify check with the remedy;
//! PlanHostRemediation lists the four fixes; RemediateHost writes the
//! registry and the SCM (read back with `reg query`), reports the reboot
//! and makes none; Verify then PASSes; a second RemediateHost does nothing.
//! What Wine cannot model (.NET's registration, a Server edition, LSA) is
//! tested on the fakes (tests/integration/workflows/host_prereq.rs).

use super::failures::{POLICY_LM, SERVICE_KEY, flag_managed_if_installed, reg_delete, reg_set};
use super::*;

use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use provd_proto::v1::host_service_client::HostServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;

/// Every host prerequisite check (the main test sets them aside).
pub(super) const IDS: [&str; 9] = [
    "host.tls12",
    "host.dotnet",
    "host.os",
    "host.memory",
    "host.vault_service",
    "host.logon_right",
    "host.service_managed",
    "host.execution_policy",
    "host.kerberos_enctypes",
];

const TLS12: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2";
const NETFX: &str = r"HKLM\SOFTWARE\Microsoft\.NETFramework\v4.0.30319";
const NETFX32: &str = r"HKLM\SOFTWARE\Wow6432Node\Microsoft\.NETFramework\v4.0.30319";
const FIXABLE: [(&str, &str); 4] = [
    ("host.tls12", "tls12"),
    ("host.vault_service", "vault-service-manual"),
    ("host.service_managed", "service-account-managed"),
    ("host.execution_policy", "execution-policy-remote-signed"),
];

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn host_prerequisites_fail_then_remediate_host_fixes_them() {
    let provd = WineProvd::start_host_only("provd-prereq", "").await;
    let (env, channel) = (&provd.env, &provd.channel);
    let _restore = Restore(env.clone());

    // The agent package, without registration: its service is what the
    // managed-account flag belongs to.
    super::diagnostics::install_agent(env, channel).await;

    // The bad states, in the registry and the SCM.
    bad_states(env);
    let checks = host_checks(channel).await;
    for (id, fix) in FIXABLE {
        let c = find(&checks, id);
        assert_eq!(c.status, v1::CheckStatus::Fail as i32, "{c:#?}");
        assert_eq!(c.attributes["fix"], fix, "{c:#?}");
        assert!(c.remedy.contains("RemediateHost"), "{c:#?}");
    }
    let tls = find(&checks, "host.tls12");
    assert_eq!(
        tls.attributes[&format!(r"{TLS12}\Client\Enabled")],
        "0",
        "{tls:#?}"
    );
    assert!(tls.attributes["source"].ends_with("how-to-prerequisites"));
    assert_eq!(
        find(&checks, "host.vault_service").attributes["start_type"],
        "Disabled"
    );
    assert!(
        find(&checks, "host.execution_policy")
            .message
            .contains("Unrestricted")
    );
    // Wine's LSA is a stub that stores nothing: nobody holds the right here.
    let logon = find(&checks, "host.logon_right");
    assert_eq!(logon.status, v1::CheckStatus::Fail as i32, "{logon:#?}");
    assert_eq!(logon.attributes["holders"], "");

    let planned = HostServiceClient::new(channel.clone())
        .plan_host_remediation(v1::PlanHostRemediationRequest {})
        .await
        .unwrap()
        .into_inner()
        .fixes;
    let steps: Vec<_> = planned.iter().map(|p| p.step.as_str()).collect();
    assert_eq!(steps, FIXABLE.map(|(_, f)| f), "{planned:#?}");

    let (events, op) = remediate(channel).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?} {events:#?}",
        op.error
    );
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["reboot_required"], "true");
    assert!(
        events
            .iter()
            .any(|e| e.kind == v1::EventKind::Warning as i32 && e.step == "tls12")
    );
    // What Wine's registry now holds, read by Wine's own reg.exe.
    for (key, name, want) in [
        (format!(r"{TLS12}\Client"), "Enabled", "0x1"),
        (format!(r"{TLS12}\Server"), "DisabledByDefault", "0x0"),
        (NETFX.to_owned(), "SchUseStrongCrypto", "0x1"),
        (NETFX32.to_owned(), "SchUseStrongCrypto", "0x1"),
        (POLICY_LM.to_owned(), "ExecutionPolicy", "RemoteSigned"),
        (SERVICE_KEY.to_owned(), "ServiceAccountManaged", "01000000"),
    ] {
        let out = wine(env, &["reg", "query", &key, "/v", name]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(want), "{key}\\{name}: {text}");
    }
    let checks = host_checks(channel).await;
    for (id, _) in FIXABLE {
        let c = find(&checks, id);
        assert_eq!(c.status, v1::CheckStatus::Pass as i32, "{c:#?}");
    }
    assert_eq!(
        find(&checks, "host.vault_service").attributes["start_type"],
        "Manual"
    );

    // Again: nothing to fix.
    let (events, op) = remediate(channel).await;
    assert_eq!(op.result["changed"], "false", "{events:#?}");
    assert_eq!(op.result["reboot_required"], "false");
    provd.stop().await;
}

/// `[host]` kept by the drift watch: an apply makes VaultSvc Manual; a
/// policy disables it again (here: recreated Disabled); provd.exe's drift watch fixes
/// it once more as an operation of its own, with no request.
#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn drift_fixes_again_the_vault_service_a_policy_disabled() {
    let provd = WineProvd::start_host_only(
        "provd-host-drift",
        "[drift]\nverify_interval = \"1s\"\nreapply = true\n",
    )
    .await;
    let (env, channel) = (&provd.env, &provd.channel);
    let _restore = Restore(env.clone());
    vault_service(env, "disabled");
    let desired = v1::DesiredState {
        host: Some(v1::HostSpec {
            remediate: vec![v1::HostFix::VaultServiceManual as i32],
        }),
        ..Default::default()
    };
    let op = ConfigurationServiceClient::new(channel.clone())
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(channel, op).await;
    ok(&op);
    assert_eq!(op.result["changed_steps"], "host");
    assert_eq!(vault_start_type(channel).await, "Manual");

    // What a policy does, as Wine's SCM allows it (its `sc config` cannot
    // change a start type): the service back as Disabled.
    vault_service(env, "disabled");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let reapplied = loop {
        let ops = OperationsServiceClient::new(channel.clone())
            .list_operations(v1::ListOperationsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .operations;
        if let Some(op) = ops.into_iter().find(|o| o.initiator == "drift") {
            break op;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no drift re-apply within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        reapplied.description.contains("vault-service-manual"),
        "{reapplied:#?}"
    );
    ok(&finish(channel, reapplied).await.1);
    assert_eq!(vault_start_type(channel).await, "Manual");
    provd.stop().await;
}

/// A stand-in VaultSvc (Wine has none) with start type `start`. The SCM
/// only marks a service for deletion while a handle to it is open (the
/// previous test's provd.exe may still hold one), so creating it again is
/// retried until the deletion is done.
fn vault_service(env: &BTreeMap<String, String>, start: &str) {
    let _ = wine(env, &["sc", "delete", "VaultSvc"]);
    let mut created = None;
    for _ in 0..40 {
        let out = wine(
            env,
            &[
                "sc",
                "create",
                "VaultSvc",
                "binPath=",
                r"C:\windows\system32\svchost.exe -k LocalSystemNetworkRestricted",
                "start=",
                start,
            ],
        );
        if out.status.success() {
            return;
        }
        created = Some(out);
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("sc create VaultSvc for 20 s: {created:?}");
}

async fn vault_start_type(channel: &Channel) -> String {
    find(&host_checks(channel).await, "host.vault_service").attributes["start_type"].clone()
}

fn bad_states(env: &BTreeMap<String, String>) {
    let _ = wine(env, &["reg", "delete", TLS12, "/f"]);
    reg_set(
        env,
        &format!(r"{TLS12}\Client"),
        "Enabled",
        "REG_DWORD",
        "0",
    );
    for key in [NETFX, NETFX32] {
        reg_delete(env, key, "SchUseStrongCrypto");
    }
    vault_service(env, "disabled");
    reg_set(env, POLICY_LM, "ExecutionPolicy", "REG_SZ", "Unrestricted");
    reg_delete(env, SERVICE_KEY, "ServiceAccountManaged");
}

async fn host_checks(channel: &Channel) -> Vec<v1::Check> {
    let request = v1::VerifyRequest {
        categories: vec![v1::CheckCategory::Host as i32],
        ..Default::default()
    };
    verify_with(channel, request).await.0
}

async fn remediate(channel: &Channel) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = HostServiceClient::new(channel.clone())
        .remediate_host(v1::RemediateHostRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    finish(channel, op).await
}

/// Puts the prefix back as `wine.sh up` left it, however the test ends: no
/// TLS 1.2 keys, no strong-crypto values, no VaultSvc, no machine policy,
/// the agent service (while it exists) flagged as the lab MSI flags it.
struct Restore(BTreeMap<String, String>);

impl Drop for Restore {
    fn drop(&mut self) {
        let env = &self.0;
        let _ = wine(env, &["reg", "delete", TLS12, "/f"]);
        for key in [NETFX, NETFX32] {
            reg_delete(env, key, "SchUseStrongCrypto");
        }
        let _ = wine(env, &["sc", "delete", "VaultSvc"]);
        reg_delete(env, POLICY_LM, "ExecutionPolicy");
        flag_managed_if_installed(env);
    }
}
