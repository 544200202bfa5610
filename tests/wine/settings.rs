//! The agent's settings on the Wine host, through provd.exe's API, with no
//! Samba lab: an apply of a document with a proxy, enforceFIPSPolicy and a
//! registry option writes the stand-in agent's exe.config (read back from
//! the prefix: the proxy in place, every other byte the MSI's) and the
//! REG_SZ value (read back with `reg query`), and restarts the agent
//! service (its heartbeat's pid changes); a second apply does nothing.
//! Then the newer stand-in MSI is installed over it outside provd, as an
//! auto-upgrade does: the upgrade puts the package's exe.config back and
//! the proxy is lost; plan lists the proxy again and apply puts it back.

use super::*;
use common::configuration::{apply_document, plan_actions, without_provd_elements};

use provd::backends::host::AgentProxy;
use provd::backends::host::exe_config;

const STEP: &str = "agent-settings";
const AGENT_KEY: &str =
    r"HKLM\SOFTWARE\Microsoft\Azure AD Connect Agents\Azure AD Connect Provisioning Agent";
const LDAP_TIMEOUT: &str = "LdapConnectionTimeoutInMilliseconds";
/// A loopback address: the drift test's scheduled Verify probes through
/// the agent's proxy, and no probe may leave the machine.
const PROXY: &str = "http://127.0.0.1:3128";
/// The stand-in exe.config the lab MSI installs.
const STAND_IN: &[u8] =
    include_bytes!("../../deploy/lab/windows/AADConnectProvisioningAgent.exe.config");

fn document(env: &BTreeMap<String, String>) -> v1::DesiredState {
    lab_agent_document(
        env,
        Some(v1::AgentSettingsSpec {
            proxy: Some(v1::ProxySpec {
                address: PROXY.into(),
                bypass_on_local: true,
                bypass_list: vec![r".*\.lab\.example\.test$".into()],
                none: false,
            }),
            enforce_fips_policy: Some(false),
            ldap_connection_timeout_ms: Some(60_000),
            ..Default::default()
        }),
    )
}

pub(super) fn exe_config_path(env: &BTreeMap<String, String>) -> PathBuf {
    Path::new(&env["WINEPREFIX"]).join(
        "drive_c/Program Files/Microsoft Azure AD Connect Provisioning Agent/AADConnectProvisioningAgent.exe.config",
    )
}

/// The provisioning agent service's pid, from the stand-in's heartbeat.
pub(super) async fn agent_pid(env: &BTreeMap<String, String>) -> String {
    let file = Path::new(&env["WINEPREFIX"])
        .join("drive_c/ProgramData/ProvdLabAgent/AADConnectProvisioningAgent.txt");
    for _ in 0..100 {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Some(pid) = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("pid="))
            .filter(|_| text.contains("state=running"))
        {
            return pid.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no running heartbeat in {}", file.display());
}

async fn plan(channel: &Channel, desired: &v1::DesiredState) -> Vec<(String, String)> {
    plan_actions(channel, desired).await
}

async fn apply(
    channel: &Channel,
    desired: &v1::DesiredState,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    apply_document(channel, desired).await
}

/// The first apply of `desired`: the agent installed, the settings in
/// place (the exe.config read back from the prefix: the MSI's file byte for
/// byte but provd's two elements; the REG_SZ value by `reg query`). The
/// exe.config's path and what it says.
async fn first_apply(
    env: &BTreeMap<String, String>,
    channel: &Channel,
    desired: &v1::DesiredState,
) -> (PathBuf, exe_config::ExeConfigSettings) {
    let (events, op) = apply(channel, desired).await;
    ok(&op);
    assert_eq!(
        op.result["changed_steps"],
        format!("agent,{STEP}"),
        "{events:#?}"
    );
    let path = exe_config_path(env);
    let written = std::fs::read(&path).unwrap();
    let read = exe_config::read(&written).unwrap();
    assert_eq!(
        read.proxy,
        AgentProxy::Address {
            address: PROXY.into(),
            bypass_on_local: true,
            bypass_list: vec![r".*\.lab\.example\.test$".into()],
        }
    );
    assert_eq!(read.enforce_fips_policy, Some(false));
    assert_eq!(without_provd_elements(&written), STAND_IN);
    let out = wine(env, &["reg", "query", AGENT_KEY, "/v", LDAP_TIMEOUT]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("REG_SZ") && shown.contains("60000"),
        "{shown}"
    );
    (path, read)
}

/// The newer stand-in MSI over the installed one, as an auto-upgrade.
fn upgrade_outside_provd(env: &BTreeMap<String, String>) {
    let newer = z(Path::new(&env["WINE_LAB_MSI_NEWER"]));
    let upgraded = wine(env, &["msiexec", "/i", &newer, "/quiet", "/norestart"]);
    assert!(upgraded.status.success(), "upgrade: {upgraded:?}");
}

fn delete_ldap_timeout(env: &BTreeMap<String, String>) {
    let _ = wine(env, &["reg", "delete", AGENT_KEY, "/v", LDAP_TIMEOUT, "/f"]);
}

/// Leaves the lab as the other tests expect it: no agent installed.
fn uninstall_newer(env: &BTreeMap<String, String>) {
    let _ = wine(
        env,
        &[
            "msiexec",
            "/x",
            &z(Path::new(&env["WINE_LAB_MSI_NEWER"])),
            "/quiet",
        ],
    );
}

fn settings_changes(planned: &[(String, String)]) -> Vec<&str> {
    planned
        .iter()
        .filter(|(s, _)| s == STEP)
        .map(|(_, a)| a.as_str())
        .collect()
}

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn agent_settings_are_applied_lost_by_an_upgrade_and_put_back() {
    let provd = WineProvd::start_host_only("provd-settings", "").await;
    let (env, channel) = (&provd.env, &provd.channel);
    delete_ldap_timeout(env);
    let desired = document(env);

    // Before the agent is installed: install, then every setting.
    let planned = plan(channel, &desired).await;
    assert_eq!(
        planned[0],
        ("agent".to_owned(), "install".to_owned()),
        "{planned:?}"
    );
    assert_eq!(
        settings_changes(&planned),
        ["set-proxy", "set-fips-policy", "set-registry", "restart"]
    );

    let (path, read) = first_apply(env, channel, &desired).await;

    // Again: nothing differs, no restart.
    let pid = agent_pid(env).await;
    let (events, op) = apply(channel, &desired).await;
    ok(&op);
    assert_eq!(op.result["changed"], "false", "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.step == STEP && e.kind == v1::EventKind::StepSkipped as i32)
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(agent_pid(env).await, pid, "not restarted");

    // The newer stand-in MSI over it, outside provd (an auto-upgrade): the
    // package's exe.config comes back and the proxy is gone.
    upgrade_outside_provd(env);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        STAND_IN,
        "the upgrade rewrote exe.config"
    );
    assert_eq!(agent(channel).await.version, "1.1.1000.0");
    let planned = plan(channel, &desired).await;
    assert_eq!(
        settings_changes(&planned),
        ["set-proxy", "set-fips-policy", "restart"],
        "{planned:?}"
    );

    // Apply puts it back and restarts the agent.
    let pid = agent_pid(env).await;
    let (events, op) = apply(channel, &desired).await;
    ok(&op);
    assert_eq!(op.result["changed_steps"], STEP, "{events:#?}");
    assert_eq!(
        exe_config::read(&std::fs::read(&path).unwrap())
            .unwrap()
            .proxy,
        read.proxy
    );
    let mut restarted = false;
    for _ in 0..50 {
        if agent_pid(env).await != pid {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(restarted, "the agent service was restarted");
    delete_ldap_timeout(env);
    uninstall_newer(env);
    provd.stop().await;
}

/// `[drift] reapply`: the newer MSI installed outside provd resets the
/// exe.config; provd.exe's drift watch sees the version change and puts the
/// last applied settings back as an operation of its own, with no request.
#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn drift_puts_the_proxy_back_after_an_upgrade_without_a_request() {
    let provd = WineProvd::start_host_only(
        "provd-settings-drift",
        "[drift]\nverify_interval = \"1s\"\nreapply = true\n",
    )
    .await;
    let (env, channel) = (&provd.env, &provd.channel);
    delete_ldap_timeout(env);
    let desired = document(env);
    let (path, wanted) = first_apply(env, channel, &desired).await;
    // Let a drift round see the installed version first (its baseline).
    tokio::time::sleep(Duration::from_secs(3)).await;

    upgrade_outside_provd(env);

    // No request from here on: the drift watch re-applies.
    // The version watch or the settings watch (whichever round sees the
    // upgrade first: the new exe.config can land before the new version's
    // Uninstall entry) starts it; each re-apply is an operation of its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let reapplied = loop {
        let ops = provd_proto::v1::operations_service_client::OperationsServiceClient::new(
            channel.clone(),
        )
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .operations;
        let drift: Vec<_> = ops.into_iter().filter(|o| o.initiator == "drift").collect();
        if !drift.is_empty() {
            break drift;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no drift re-apply within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut changed = Vec::new();
    for op in reapplied {
        assert!(
            op.description.contains("-> 1.1.1000.0")
                || op.description.contains("settings changed outside provd"),
            "{op:#?}"
        );
        let (_, op) = finish(channel, op).await;
        ok(&op);
        changed.push(op.result["changed_steps"].clone());
    }
    // One of them made the change (a later one finds it as desired).
    assert!(changed.iter().any(|c| c == STEP), "{changed:?}");
    let now = exe_config::read(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(now, wanted, "the proxy and FIPS flag are back");
    delete_ldap_timeout(env);
    uninstall_newer(env);
    provd.stop().await;
}
