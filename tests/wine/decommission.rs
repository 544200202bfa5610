//! DecommissionAgent at the end of the full setup: plan first (nothing
//! changes), then the operation; the agent services gone from the SCM, the
//! stand-in MSI gone from the uninstall registry (`wine reg query`), the
//! emulator's agent groups no longer listing the agent (it stays listed:
//! Graph has no delete-agent method), this host's computer account no
//! longer among the gMSA's principals (read from the Samba lab), the ACEs
//! gone (no other agent); a second decommission does nothing. The shared
//! account case (a second agent host) is tested on the fakes only
//! (tests/integration/workflows/decommission.rs).

use std::collections::BTreeMap;

use provd::backends::directory::Scope;
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_sd::{SecurityDescriptor, Sid};
use tonic::transport::Channel;

use super::common::finish_with;
use super::common::fixtures::{admin_session, base};
use super::common::lab::admin;
use super::common::tenant::TenantEmulator;
use super::wine;

const UNINSTALL_KEY: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall";
const AGENT_ENTRY: &str = "Microsoft Azure AD Connect Provisioning Agent";

fn uninstall_entries(env: &BTreeMap<String, String>) -> String {
    let out = wine(env, &["reg", "query", UNINSTALL_KEY, "/s"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The SIDs msDS-GroupMSAMembership of `gmsa` allows, and `host`'s SID.
async fn principals(gmsa: &str, host: &str) -> (Vec<Sid>, Sid) {
    let mut s = admin_session().await;
    let sid_of = |e: &provd::backends::directory::Entry| {
        Sid::from_bytes(e.first_bin("objectSid").unwrap()).unwrap()
    };
    let found = s
        .search(
            &base(),
            Scope::Subtree,
            &format!("(sAMAccountName={gmsa})"),
            &["msDS-GroupMSAMembership"],
        )
        .await
        .unwrap();
    let bytes = found[0].first_bin("msDS-GroupMSAMembership").unwrap();
    let sids = SecurityDescriptor::parse(bytes)
        .unwrap()
        .dacl
        .map(|d| d.aces.iter().filter_map(|a| a.sid().copied()).collect())
        .unwrap_or_default();
    let host = s
        .search(
            &base(),
            Scope::Subtree,
            &format!("(sAMAccountName={host})"),
            &["objectSid"],
        )
        .await
        .unwrap();
    let host = sid_of(&host[0]);
    s.unbind().await;
    (sids, host)
}

async fn decommission(
    channel: &Channel,
    tenant: &TenantEmulator,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = AgentServiceClient::new(channel.clone())
        .decommission_agent(v1::DecommissionAgentRequest {
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    finish_with(channel, op, Some(tenant)).await
}

fn has(events: &[v1::OperationEvent], step: &str, kind: v1::EventKind) -> bool {
    events
        .iter()
        .any(|e| e.step == step && e.kind == kind as i32)
}

/// Decommissions the fully set-up host `machine` (agent `agent_id`, gMSA
/// provAgentgMSA$) and checks what is left, then that a second run does
/// nothing.
pub async fn decommission_after_setup(
    env: &BTreeMap<String, String>,
    channel: &Channel,
    tenant: &TenantEmulator,
    machine: &str,
    agent_id: &str,
) {
    let host_account = provd::model::computer_account(machine);
    assert!(uninstall_entries(env).contains(AGENT_ENTRY));
    let (before, host_sid) = principals("provAgentgMSA$", &host_account).await;
    assert!(before.contains(&host_sid), "{before:?}");

    let planned = AgentServiceClient::new(channel.clone())
        .plan_decommission(v1::PlanDecommissionRequest {
            credential: Some(admin()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .steps;
    let actions: Vec<(&str, &str)> = planned
        .iter()
        .map(|s| (s.step.as_str(), s.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("stop-services", "stop"),
            ("leave-agent-groups", "remove"),
            ("uninstall-package", "uninstall"),
            ("gmsa-principals", "remove"),
            ("permissions", "remove"),
            ("delete-gmsa", "skip"),
            ("forget", "forget"),
        ],
        "{planned:#?}"
    );

    let (events, op) = decommission(channel, tenant).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?} {events:#?}",
        op.error
    );
    assert_eq!(op.result["changed"], "true");
    for step in [
        "stop-services",
        "leave-agent-groups",
        "uninstall-package",
        "gmsa-principals",
        "permissions",
        "forget",
    ] {
        assert!(
            has(&events, step, v1::EventKind::StepSucceeded),
            "{step}: {events:#?}"
        );
    }
    assert!(
        has(&events, "leave-agent-groups", v1::EventKind::Warning),
        "{events:#?}"
    );
    let gone = super::agent(channel).await;
    assert!(!gone.installed);
    assert!(
        gone.services
            .iter()
            .all(|s| s.state == v1::ServiceState::NotInstalled as i32),
        "{:?}",
        gone.services
    );
    assert!(
        !uninstall_entries(env).contains(AGENT_ENTRY),
        "the MSI is still in the uninstall registry"
    );
    let listed = tenant.agents().await;
    let ours = listed
        .iter()
        .find(|a| a["id"].as_str() == Some(agent_id))
        .expect("the tenant keeps listing the agent (no delete-agent API)");
    assert!(
        ours["agentGroups"].as_array().is_none_or(|g| g.is_empty()),
        "{ours:#?}"
    );
    let (after, _) = principals("provAgentgMSA$", &host_account).await;
    assert!(!after.contains(&host_sid), "{after:?}");
    assert_eq!(after.len(), before.len() - 1, "the others are kept");

    let (events, op) = decommission(channel, tenant).await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    assert_eq!(op.result["changed"], "false", "{events:#?}");
    assert!(
        !events
            .iter()
            .any(|e| e.kind == v1::EventKind::StepSucceeded as i32),
        "{events:#?}"
    );
}
