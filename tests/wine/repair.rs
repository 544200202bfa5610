//! The agent's registration certificate under Wine: the emulator issues an
//! expired one, the stand-in module puts it in Wine's `LocalMachine\My`
//! (crypt32, where provd.exe reads it), Verify's
//! `agent.registration_certificate` FAILs naming RepairAgent; RepairAgent
//! registers the agent again through the module (the stand-in does not
//! reuse an expired identity), the new agent heartbeats, the check PASSes,
//! and a second repair finds nothing to do.

use super::*;

const ID: &str = "agent.registration_certificate";

async fn registration_check(channel: &Channel) -> v1::Check {
    let (checks, _) = verify_with(
        channel,
        v1::VerifyRequest {
            categories: vec![v1::CheckCategory::Host as i32],
            ..Default::default()
        },
    )
    .await;
    find(&checks, ID).clone()
}

async fn repair(
    channel: &Channel,
    tenant: &TenantEmulator,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = AgentServiceClient::new(channel.clone())
        .repair_agent(v1::RepairAgentRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    finish_with(channel, op, Some(tenant)).await
}

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn an_expired_registration_certificate_is_repaired_through_the_module() {
    let provd = WineProvd::start_host_only("provd-repair", "").await;
    let (env, channel, tenant) = (&provd.env, &provd.channel, &provd.tenant);
    tenant.agent_certificate_validity(Some(-3600)).await;
    let (_, op) = install(
        channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &env["WINE_LAB_MSI_SHA256"],
        tenant,
    )
    .await;
    ok(&op);
    let old = op.result["agent_id"].clone();

    let expired = registration_check(channel).await;
    assert_eq!(expired.status, v1::CheckStatus::Fail as i32, "{expired:#?}");
    assert_eq!(expired.subject, format!("CN={old}"));
    assert!(expired.remedy.contains("RepairAgent"), "{expired:#?}");

    tenant.agent_certificate_validity(None).await;
    let (events, op) = repair(channel, tenant).await;
    ok(&op);
    assert!(
        op.result["reasons"].contains("expired"),
        "{:?} {events:#?}",
        op.result
    );
    let new = op.result["agent_id"].clone();
    assert_ne!(new, old, "{events:#?}");
    assert!(
        op.result["certificate_not_after"].ends_with('Z'),
        "{:?}",
        op.result
    );

    // The new certificate is in the store and the new agent heartbeats with it.
    let valid = registration_check(channel).await;
    assert_eq!(valid.status, v1::CheckStatus::Pass as i32, "{valid:#?}");
    assert_eq!(valid.subject, format!("CN={new}"));
    let mut active = false;
    for _ in 0..30 {
        active = tenant
            .agents()
            .await
            .iter()
            .any(|a| a["id"] == new.as_str() && a["status"] == "active");
        if active {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(active, "{:#?}", tenant.agents().await);

    let (_, op) = repair(channel, tenant).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false", "{:?}", op.result);
    provd.stop().await;
}
