//! RepairAgent and Verify's `agent.registration_certificate` on the fakes:
//! an expired certificate in `LocalMachine\My` is a FAIL naming
//! RepairAgent; the repair registers again (the inactive agent is left
//! listed, a new one registered) and puts the new agent in the previous
//! one's groups; with a valid certificate the check passes and a repair
//! without `force` changes nothing; no registration is NOT_REGISTERED.

use super::support_tb::*;
use super::verify::{find, status, verify_with};
use crate::common::hermetic::*;
use provd::backends::tenant::AgentGroup;
use provd_proto::v1;
use provd_proto::v1::CheckStatus::{Fail, Pass, Skip, Warn};
use time::OffsetDateTime;
use tonic::Code;

const ID: &str = "agent.registration_certificate";

/// A certificate `CN=<cn>` whose notAfter is `days` from now.
fn certificate(cn: &str, days: i64) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    params.not_after = now + time::Duration::days(days);
    params.not_before = params.not_after - time::Duration::days(180);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

async fn registration_check(d: &Hermetic) -> v1::Check {
    let (checks, _) = verify_with(
        d,
        v1::VerifyRequest {
            categories: vec![v1::CheckCategory::Host as i32],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    find(&checks, ID)[0].clone()
}

async fn repair(d: &Hermetic, force: bool) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = d
        .agent()
        .repair_agent(v1::RepairAgentRequest {
            force,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation;
    d.finish(op).await
}

#[tokio::test]
async fn an_expired_registration_certificate_fails_verify_and_repair_registers_again() {
    let d = Hermetic::start().await;
    let refused = d
        .agent()
        .repair_agent(v1::RepairAgentRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(precondition(&refused).0, "NOT_REGISTERED");
    assert_eq!(status(&registration_check(&d).await), Skip);

    let old = registered(&d).await;
    let not_found = registration_check(&d).await;
    assert_eq!(status(&not_found), Warn, "{not_found:#?}");
    assert!(
        not_found.message.contains("does not document"),
        "{not_found:#?}"
    );

    // The certificate expired yesterday; the tenant stopped hearing the agent.
    d.fakes.host.add_certificate("My", certificate(&old, -1));
    let expired = registration_check(&d).await;
    assert_eq!(status(&expired), Fail, "{expired:#?}");
    assert!(expired.remedy.contains("RepairAgent"), "{expired:#?}");
    assert_eq!(expired.attributes["thumbprint"].len(), 40);
    d.fakes.tenant.set_agent_active(&old, false);
    let domain_group = AgentGroup {
        id: "group-lab".into(),
        display_name: "lab.example.test".into(),
    };
    d.fakes.tenant.join_group(&old, domain_group.clone());

    let (events, op) = repair(&d, false).await;
    ok(&op);
    assert_eq!(
        steps_started(&events),
        [
            "sign-in",
            "diagnose",
            "connect-tenant",
            "agent-groups",
            "certificate"
        ]
    );
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["previous_agent_id"], old);
    assert!(op.result["reasons"].contains("expired"), "{:?}", op.result);
    let new = op.result["agent_id"].clone();
    assert_ne!(new, old);
    let agents = d.fakes.tenant.agents();
    let listed = agents.iter().find(|a| a.id == new).unwrap();
    assert!(
        listed.groups.iter().any(|g| g.id == domain_group.id),
        "{listed:?}"
    );
    assert!(agents.iter().any(|a| a.id == old && !a.active));
    // The module issued no certificate the fake host knows of: said, not failed.
    assert!(has(&events, "certificate", v1::EventKind::StepSkipped));

    d.fakes.host.add_certificate("My", certificate(&new, 120));
    let valid = registration_check(&d).await;
    assert_eq!(status(&valid), Pass, "{valid:#?}");
    assert!(valid.remedy.is_empty());

    let (events, op) = repair(&d, false).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["agent_id"], new);
    assert!(has(&events, "diagnose", v1::EventKind::StepSkipped));
    assert!(!steps_started(&events).contains(&"connect-tenant".to_owned()));

    // force registers again even so (the fake keeps an active agent's id).
    let (events, op) = repair(&d, true).await;
    ok(&op);
    assert_eq!(op.result["changed"], "true");
    assert_eq!(op.result["agent_id"], new);
    assert!(has(&events, "agent-groups", v1::EventKind::StepSkipped));
    assert_eq!(
        op.result["certificate_thumbprint"],
        valid.attributes["thumbprint"]
    );
    d.shutdown().await;
}
