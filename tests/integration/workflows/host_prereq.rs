//! The host prerequisite checks and HostService on the fakes: each fixable
//! bad state FAILs its check with the fix named, the plan lists exactly
//! those fixes, RemediateHost makes them (one step each, the reboot
//! reported, never made), Verify then PASSes, and a second run does
//! nothing. What provd cannot fix (.NET, the OS, memory, "Log on as a
//! service" — recorded LSA answers —, a GPO's execution policy) FAILs with
//! its remedy and source page, no fix, and PASSes once the host is put
//! right.

use super::support_tb::*;
use super::verify::verify_with;
use crate::common::hermetic::*;
use provd::model::{RegValue, ServiceLogonRight, StartType};
use provd::testkit::FakeHost;
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Fail, Pass};
use provd_proto::v1::host_service_client::HostServiceClient;
use tonic::Code;

/// The checks of what provd cannot fix.
const NOT_FIXABLE: [&str; 5] = [
    "host.dotnet",
    "host.os",
    "host.memory",
    "host.logon_right",
    "host.execution_policy",
];

const FIXABLE: [(&str, &str); 4] = [
    ("host.tls12", "tls12"),
    ("host.vault_service", "vault-service-manual"),
    ("host.service_managed", "service-account-managed"),
    ("host.execution_policy", "execution-policy-remote-signed"),
];

async fn host_checks(d: &Hermetic) -> Vec<v1::Check> {
    let request = v1::VerifyRequest {
        categories: vec![v1::CheckCategory::Host as i32],
        ..Default::default()
    };
    verify_with(d, request).await.unwrap().0
}

fn one<'a>(checks: &'a [v1::Check], id: &str) -> &'a v1::Check {
    let found: Vec<_> = checks.iter().filter(|c| c.id == id).collect();
    assert_eq!(found.len(), 1, "{id}: {checks:#?}");
    found[0]
}

fn host(d: &Hermetic) -> HostServiceClient<tonic::transport::Channel> {
    HostServiceClient::new(d.channel.clone())
}

async fn plan(d: &Hermetic) -> Vec<v1::PlannedHostFix> {
    host(d)
        .plan_host_remediation(v1::PlanHostRemediationRequest {})
        .await
        .unwrap()
        .into_inner()
        .fixes
}

async fn remediate(d: &Hermetic) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = host(d)
        .remediate_host(v1::RemediateHostRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operation;
    d.finish(op).await
}

fn with_agent() -> Fakes {
    Fakes {
        host: FakeHost::new().with_agent("1.1.1370.0"),
        ..Default::default()
    }
}

#[tokio::test]
async fn fixable_prerequisites_fail_then_remediate_host_fixes_them_once() {
    let d = Hermetic::start_with(with_agent()).await;
    let checks = host_checks(&d).await;
    for (id, _) in FIXABLE {
        assert_eq!(one(&checks, id).status, Pass as i32, "{checks:#?}");
    }
    assert!(plan(&d).await.is_empty());

    d.fakes.host.break_fixable_prerequisites();
    let checks = host_checks(&d).await;
    for (id, fix) in FIXABLE {
        let c = one(&checks, id);
        assert_eq!(c.status, Fail as i32, "{c:#?}");
        assert_eq!(c.attributes["fix"], fix, "{c:#?}");
        assert!(c.remedy.contains("RemediateHost"), "{c:#?}");
        assert!(!c.attributes["source"].is_empty(), "{c:#?}");
    }
    let tls = one(&checks, "host.tls12");
    assert!(tls.attributes["source"].ends_with("cloud-sync/how-to-prerequisites"));
    assert_eq!(
        tls.attributes[r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client\Enabled"],
        "absent"
    );
    let policy = one(&checks, "host.execution_policy");
    assert!(policy.message.contains("Unrestricted"), "{policy:#?}");

    // The plan: the four fixes, in order, each with what it changes.
    let planned = plan(&d).await;
    let steps: Vec<_> = planned.iter().map(|p| p.step.as_str()).collect();
    assert_eq!(steps, FIXABLE.map(|(_, f)| f));
    assert_eq!(planned[0].changes.len(), 6, "{planned:#?}");
    assert!(planned[0].reboot_required);
    assert!(planned[1..].iter().all(|p| !p.reboot_required));
    assert!(planned[3].changes[0].contains("\"Unrestricted\" -> \"RemoteSigned\""));

    // RemediateHost: a step per fix, the restart reported and not made.
    let (events, op) = remediate(&d).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        op.error
    );
    assert_eq!(op.kind, v1::OperationKind::RemediateHost as i32);
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["reboot_required"], "true");
    assert_eq!(op.result["fixes"], FIXABLE.map(|(_, f)| f).join(","));
    let mut want = vec!["read-host"];
    want.extend(FIXABLE.map(|(_, f)| f));
    assert_eq!(steps_started(&events), want);
    assert!(events.iter().any(|e| e.step == "tls12"
        && e.kind == v1::EventKind::Warning as i32
        && e.message.contains("never restarts")));
    let checks = host_checks(&d).await;
    for (id, _) in FIXABLE {
        let c = one(&checks, id);
        assert_eq!(c.status, Pass as i32, "{c:#?}");
        assert!(c.remedy.is_empty());
    }

    // Again: nothing to fix, nothing written.
    assert!(plan(&d).await.is_empty());
    let (events, op) = remediate(&d).await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["reboot_required"], "false");
    assert_eq!(steps_started(&events), ["read-host"]);
    assert_eq!(d.fakes.host.fixes().len(), 4, "{:?}", d.fakes.host.fixes());
    d.shutdown().await;
}

#[tokio::test]
async fn what_provd_cannot_fix_fails_with_its_remedy_and_no_fix() {
    let d = Hermetic::start_with(with_agent()).await;
    let healthy = host_checks(&d).await;
    for id in NOT_FIXABLE {
        assert_eq!(one(&healthy, id).status, Pass as i32, "{healthy:#?}");
    }

    d.fakes.host.edit_prerequisites(|p| {
        p.dotnet_release.value = RegValue::Dword(460_805); // 4.7
        p.os_installation_type.value = RegValue::Text("Server Core".into());
        p.total_memory_bytes = Ok(2 << 30);
        p.execution_policy_gpo_enabled.value = RegValue::Dword(1);
        p.execution_policy_gpo.value = RegValue::Text("Unrestricted".into());
    });
    let gpo = r"C:\Windows\security\templates\policies\gpt00001.inf";
    d.fakes.logon_rights.record(ServiceLogonRight {
        holders: vec!["S-1-5-20".into()],
        gpo_source: Some(gpo.into()),
    });
    let checks = host_checks(&d).await;
    for (id, remedy) in [
        ("host.dotnet", ".NET Framework 4.7.1 or later"),
        ("host.os", "not Server Core"),
        ("host.memory", "at least 4 GB"),
        (
            "host.logon_right",
            "add NT SERVICE\\ALL SERVICES in that GPO",
        ),
        ("host.execution_policy", "change the GPO"),
    ] {
        let c = one(&checks, id);
        assert_eq!(c.status, Fail as i32, "{c:#?}");
        assert!(c.remedy.contains(remedy), "{remedy}: {c:#?}");
        assert!(!c.attributes.contains_key("fix"), "{c:#?}");
        assert!(
            c.attributes["source"].starts_with("https://learn.microsoft.com/"),
            "{c:#?}"
        );
    }
    let logon = one(&checks, "host.logon_right");
    assert_eq!(logon.attributes["gpo_source"], gpo);
    assert!(logon.attributes["source"].ends_with("how-to-troubleshoot"));
    assert!(plan(&d).await.is_empty(), "none of these is a fix");

    // Put right by a person (or the GPO's owner): PASS.
    d.fakes.host.edit_prerequisites(|p| {
        p.dotnet_release.value = RegValue::Dword(528_449);
        p.os_installation_type.value = RegValue::Text("Server".into());
        p.total_memory_bytes = Ok(4 << 30);
        p.execution_policy_gpo.value = RegValue::Text("RemoteSigned".into());
    });
    d.fakes.logon_rights.record(ServiceLogonRight {
        holders: vec![provd::model::ALL_SERVICES_SID.into()],
        gpo_source: Some(gpo.into()),
    });
    let checks = host_checks(&d).await;
    for id in NOT_FIXABLE {
        assert_eq!(one(&checks, id).status, Pass as i32, "{checks:#?}");
    }
    d.shutdown().await;
}

#[tokio::test]
async fn remediate_host_refuses_bad_fixes_and_a_missing_host() {
    let d = Hermetic::start().await;
    // Without the agent service its flag is not judged, and not fixed.
    let checks = host_checks(&d).await;
    assert_eq!(
        one(&checks, "host.service_managed").status,
        v1::CheckStatus::Skip as i32
    );
    d.fakes.host.edit_prerequisites(|p| {
        p.vault_service = Ok(Some(StartType::Disabled));
    });
    for bad in [0, 99] {
        let err = host(&d)
            .remediate_host(v1::RemediateHostRequest {
                fixes: vec![v1::HostFix::Tls12 as i32, bad],
                request_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(violations(&err), ["fixes[1]"]);
    }
    // Only what was asked, and only if planned.
    let op = host(&d)
        .remediate_host(v1::RemediateHostRequest {
            fixes: vec![v1::HostFix::Tls12 as i32],
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    let (events, op) = d.finish(op).await;
    assert_eq!(op.result["changed"], "false");
    assert_eq!(steps_started(&events), ["read-host"]);
    assert_eq!(plan(&d).await.len(), 1);

    d.fakes.host.set_unavailable(Some("not Windows"));
    for err in [
        host(&d)
            .remediate_host(v1::RemediateHostRequest::default())
            .await
            .unwrap_err(),
        host(&d)
            .plan_host_remediation(v1::PlanHostRemediationRequest {})
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert_eq!(precondition(&err).0, "HOST_UNAVAILABLE");
    }
    // A viewer may plan, not remediate.
    d.fakes.host.set_unavailable(None);
    let viewer = d.channel_as(provd::pki::Role::Viewer).await;
    assert!(
        HostServiceClient::new(viewer.clone())
            .plan_host_remediation(v1::PlanHostRemediationRequest {})
            .await
            .is_ok()
    );
    let denied = HostServiceClient::new(viewer)
        .remediate_host(v1::RemediateHostRequest::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    d.shutdown().await;
}

#[tokio::test]
async fn a_kerberos_policy_without_the_gmsas_types_fails() {
    let d = Hermetic::start().await;
    let checks = host_checks(&d).await;
    let k = one(&checks, "host.kerberos_enctypes");
    assert_eq!(
        k.status,
        v1::CheckStatus::Skip as i32,
        "no gMSA yet: {k:#?}"
    );

    full_setup(&d).await;
    let checks = host_checks(&d).await;
    let k = one(&checks, "host.kerberos_enctypes");
    assert_eq!(k.status, Pass as i32, "no policy: {k:#?}");
    assert_eq!(k.attributes["gmsa_encryption_types"], "AES128,AES256");

    // RC4 only on the host (or the reverse, RC4 off with an RC4-only gMSA):
    // nothing in common.
    d.fakes.host.edit_prerequisites(|p| {
        p.kerberos_encryption_types.value = RegValue::Dword(0x4);
    });
    let checks = host_checks(&d).await;
    let k = one(&checks, "host.kerberos_enctypes");
    assert_eq!(k.status, Fail as i32, "{k:#?}");
    assert_eq!(k.subject, "provAgentgMSA$");
    assert_eq!(k.attributes["host_encryption_types"], "RC4");
    assert!(
        k.remedy.contains("-KerberosEncryptionType AES128,AES256"),
        "{k:#?}"
    );
    assert!(!k.attributes.contains_key("fix"));

    // AES allowed too (the future-types bit set, as the GPO writes it): PASS.
    d.fakes.host.edit_prerequisites(|p| {
        p.kerberos_encryption_types.value = RegValue::Dword(0x8000_001c);
    });
    let checks = host_checks(&d).await;
    assert_eq!(one(&checks, "host.kerberos_enctypes").status, Pass as i32);
    d.shutdown().await;
}
