//! DecommissionAgent at the end of the full setup, with the real package's
//! three uninstall entries (`wine.sh package-entries install`: the LAB
//! STAND-IN updater MSI and Burn bundle entry beside the agent MSI) and a
//! second agent host sharing the gMSA (`second_host.rs`: a daemon in this
//! process on the real Samba lab and emulator). Plan first (nothing
//! changes), then the operation: the agent services gone from the SCM, the
//! three entries gone from both registry views (the bundle's cached exe ran
//! first and removed the MSIs it chained), the emulator's agent groups no
//! longer listing the agent (it stays listed: Graph has no delete-agent
//! method), this host's computer account no longer among the gMSA's
//! principals, the ACEs KEPT on the domain root (read from Samba) with a
//! WARNING naming PROVDLAB2; Verify reports the host clean; a second run
//! does nothing. Then the second host decommissions: the ACEs are gone.

use std::collections::BTreeMap;
use std::path::Path;

use provd::backends::directory::Scope;
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_sd::{SecurityDescriptor, Sid};
use tonic::transport::Channel;

use super::common::finish_with;
use super::common::fixtures::{admin_session, base};
use super::common::lab::admin;
use super::common::tenant::TenantEmulator;
use super::second_host::{MACHINE as SECOND, SecondHost};
use super::wine;
use provd::backends::directory::SD_FLAGS_DACL;

/// The uninstall key in the registry's 64-bit and 32-bit views.
const UNINSTALL_KEYS: [&str; 2] = [
    r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall",
    r"HKLM\Software\Wow6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
];
/// The three entries' DisplayNames (the lab's say "(provd lab stand-in)").
const ENTRIES: [&str; 3] = [
    "Microsoft Azure AD Connect Provisioning Agent (",
    "Microsoft Azure AD Connect Agent Updater (",
    "Microsoft Azure AD Connect Provisioning Agent Package (",
];

fn uninstall_entries(env: &BTreeMap<String, String>) -> String {
    UNINSTALL_KEYS
        .iter()
        .map(|key| {
            let out = wine(env, &["reg", "query", key, "/s"]);
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

/// How many explicit ACEs of `gmsa` the domain root's DACL holds, and the
/// gMSA's SID (read from Samba, not through provd).
async fn root_aces_of(gmsa: &str) -> usize {
    let mut s = admin_session().await;
    let found = s
        .search(
            &base(),
            Scope::Subtree,
            &format!("(sAMAccountName={gmsa})"),
            &["objectSid"],
        )
        .await
        .unwrap();
    let sid = Sid::from_bytes(found[0].first_bin("objectSid").unwrap()).unwrap();
    let bytes = s
        .read_security_descriptor(&base(), SD_FLAGS_DACL)
        .await
        .unwrap()
        .unwrap();
    s.unbind().await;
    SecurityDescriptor::parse(&bytes)
        .unwrap()
        .dacl
        .map_or(0, |d| {
            d.aces
                .iter()
                .filter(|a| !a.is_inherited() && a.sid() == Some(&sid))
                .count()
        })
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

pub(super) async fn decommission(
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
/// provAgentgMSA$, BASIC_READ granted) while a second host shares the
/// gMSA, and checks what is left; Verify; a second run does nothing; then
/// the second host leaves too and takes the ACEs with it.
pub async fn decommission_after_setup(
    env: &BTreeMap<String, String>,
    channel: &Channel,
    tenant: &TenantEmulator,
    machine: &str,
    agent_id: &str,
) {
    let host_account = provd::model::computer_account(machine);
    super::wine_sh(&["package-entries", "install"]);
    let entries = uninstall_entries(env);
    for name in ENTRIES {
        assert!(entries.contains(name), "{name} missing: {entries}");
    }
    let second = SecondHost::start(tenant).await;
    let second_id = second
        .set_up(
            tenant,
            Path::new(&env["WINE_LAB_MSI"]),
            &env["WINE_LAB_MSI_SHA256"],
            &[&host_account, &format!("{SECOND}$")],
        )
        .await;
    let aces = root_aces_of("provAgentgMSA$").await;
    assert!(aces > 0, "BASIC_READ was granted");
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
            ("permissions", "skip"),
            ("delete-gmsa", "skip"),
            ("delete-cloud-sync", "skip"),
            ("forget", "forget"),
        ],
        "{planned:#?}"
    );
    let uninstall = &planned[2].detail;
    let at = |name: &str| {
        uninstall
            .find(name)
            .unwrap_or_else(|| panic!("{name}: {uninstall}"))
    };
    assert!(
        at("Package (") < at("Agent Updater (") && at("Agent Updater (") < at("Agent (provd"),
        "the bundle first, then the updater, then the agent: {uninstall}"
    );
    assert!(planned[4].detail.contains(SECOND), "{planned:#?}");

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
    // The bundle's uninstaller removed the MSIs it chained: one run.
    let removed: Vec<&str> = events
        .iter()
        .filter(|e| e.step == "uninstall-package" && e.message.starts_with("removed \""))
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(removed.len(), 1, "{removed:#?}");
    assert!(removed[0].contains("Package"), "{removed:#?}");
    // The permissions stay: PROVDLAB2's agent uses the account.
    assert!(
        has(&events, "permissions", v1::EventKind::StepSkipped),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e.step == "permissions"
            && e.kind == v1::EventKind::Warning as i32
            && e.message.contains(SECOND)),
        "{events:#?}"
    );
    assert_eq!(op.result["permissions_kept_for"], SECOND);
    assert_eq!(root_aces_of("provAgentgMSA$").await, aces, "kept");

    let gone = super::agent(channel).await;
    assert!(!gone.installed);
    assert!(
        gone.services
            .iter()
            .all(|s| s.state == v1::ServiceState::NotInstalled as i32),
        "{:?}",
        gone.services
    );
    let entries = uninstall_entries(env);
    for name in ENTRIES {
        assert!(!entries.contains(name), "{name} is still there: {entries}");
    }
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

    verify_clean(channel, &op.id).await;

    let (events, op) = decommission(channel, tenant).await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    assert_eq!(op.result["changed"], "false", "{events:#?}");
    assert!(
        !events
            .iter()
            .any(|e| e.kind == v1::EventKind::StepSucceeded as i32),
        "{events:#?}"
    );

    // The last agent of the account leaves: the ACEs go with it.
    let (events, op) = decommission(&second.channel, tenant).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?} {events:#?}",
        op.error
    );
    for step in ["leave-agent-groups", "gmsa-principals", "permissions"] {
        assert!(
            has(&events, step, v1::EventKind::StepSucceeded),
            "{step}: {events:#?}"
        );
    }
    assert_eq!(root_aces_of("provAgentgMSA$").await, 0, "{events:#?}");
    let theirs = tenant.agents().await;
    let theirs = theirs
        .iter()
        .find(|a| a["id"].as_str() == Some(second_id.as_str()))
        .expect("listed");
    assert!(
        theirs["agentGroups"]
            .as_array()
            .is_none_or(|g| g.is_empty()),
        "{theirs:#?}"
    );
    second.stop().await;
}

/// Verify after the decommission: "clean" is `host.agent.decommissioned`
/// PASS (no uninstall entry of the package in either registry view, no
/// agent service), the agent's own checks SKIP as decommissioned, and no
/// FAIL of the host or the tenant's agent. The domain's cloud sync
/// configuration is not the host's (decommission leaves it: PauseCloudSync
/// releases it); with no agent left to serve it, its job checks may FAIL,
/// and only those may.
async fn verify_clean(channel: &Channel, operation: &str) {
    let (checks, _) = super::verify(channel).await;
    let clean = super::find(&checks, "host.agent.decommissioned");
    assert_eq!(clean.status, v1::CheckStatus::Pass as i32, "{clean:#?}");
    assert!(clean.message.contains(operation), "{clean:#?}");
    for id in [
        "host.agent.installed",
        "agent.module",
        "agent.domains",
        "tenant.agent.registered",
    ] {
        let c = super::find(&checks, id);
        assert_eq!(c.status, v1::CheckStatus::Skip as i32, "{c:#?}");
    }
    let failed: Vec<_> = checks
        .iter()
        .filter(|c| c.status == v1::CheckStatus::Fail as i32 && !c.id.starts_with("tenant.sync."))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}
