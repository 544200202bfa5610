//! ConfigurationService's `agent-settings` section on FakeHost: the plan
//! lists each differing setting and the one restart, apply emits exactly
//! those and restarts the agent once, a second apply does nothing, the
//! exe.config's other content is kept byte for byte, an upgrade that puts
//! the installer's exe.config back shows the proxy again, and bad values
//! are refused with their field paths.

use super::support_tb::*;
use crate::common::configuration::*;
use crate::common::hermetic::*;
use crate::common::sha256_hex;
use provd::backends::host::exe_config::SAMPLE;
use provd::backends::host::{AGENT_SERVICES, RegValue, ServiceAction};
use provd::testkit::FakeHost;
use provd_proto::v1;
use provd_proto::v1::EventKind::{Progress, StepSkipped};
use tonic::Code;

const STEP: &str = "agent-settings";

async fn with_agent() -> Hermetic {
    Hermetic::start_with(Fakes {
        host: FakeHost::new().with_agent("1.1.1370.0"),
        ..Default::default()
    })
    .await
}

/// A loopback address: the drift test's scheduled Verify probes through
/// the agent's proxy, and no probe may leave the machine.
const PROXY: &str = "http://127.0.0.1:3128";

fn settings() -> v1::AgentSettingsSpec {
    v1::AgentSettingsSpec {
        proxy: Some(v1::ProxySpec {
            address: PROXY.into(),
            bypass_on_local: true,
            bypass_list: vec![r"contoso\.com$".into()],
            none: false,
        }),
        enforce_fips_policy: Some(false),
        ldap_connection_timeout_ms: Some(60_000),
        referral_chasing_options: Some(96),
        user_password_length: Some(200),
    }
}

/// The installed agent's own package (nothing to install), no
/// registration, and `settings`.
fn document(d: &Hermetic, settings: v1::AgentSettingsSpec) -> v1::DesiredState {
    let bytes = msi_bytes("1.1.1370.0");
    v1::DesiredState {
        agent: Some(v1::AgentSpec {
            source: package(d, "agent.msi", &bytes),
            sha256: sha256_hex(&bytes),
            accept_license: true,
            skip_registration: true,
            settings: Some(settings),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn plan(d: &Hermetic, desired: &v1::DesiredState) -> Vec<(String, String)> {
    plan_actions(&d.channel, desired).await
}

async fn apply(
    d: &Hermetic,
    desired: &v1::DesiredState,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    apply_document(&d.channel, desired).await
}

/// (step, action) of each change PROGRESS event of the section.
fn applied(events: &[v1::OperationEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e.kind == Progress as i32 && e.step == STEP && e.message.contains(": "))
        .map(|e| {
            (
                e.step.clone(),
                e.message.split(':').next().unwrap().to_owned(),
            )
        })
        .collect()
}

fn restarts(host: &FakeHost) -> usize {
    host.controls()
        .iter()
        .filter(|(n, a)| n == AGENT_SERVICES[0].0 && *a == ServiceAction::Restart)
        .count()
}

fn all_changes() -> Vec<(String, String)> {
    [
        "set-proxy",
        "set-fips-policy",
        "set-registry",
        "set-registry",
        "set-registry",
        "restart",
    ]
    .map(|a| (STEP.to_owned(), a.to_owned()))
    .to_vec()
}

#[tokio::test]
async fn plan_lists_each_setting_apply_restarts_once_and_a_second_apply_does_nothing() {
    let d = with_agent().await;
    let host = d.fakes.host.clone();
    let desired = document(&d, settings());
    let planned = plan(&d, &desired).await;
    assert_eq!(planned, all_changes());
    assert_eq!(host.settings_writes(), 0, "a plan writes nothing");

    let (events, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(applied(&events), planned, "apply = plan, event for event");
    assert_eq!(restarts(&host), 1);
    assert_eq!(op.result["changed_steps"], STEP);
    let read = provd::backends::host::exe_config::read(&host.exe_config()).unwrap();
    assert_eq!(
        read.proxy,
        provd::backends::host::AgentProxy::Address {
            address: PROXY.into(),
            bypass_on_local: true,
            bypass_list: vec![r"contoso\.com$".into()],
        }
    );
    assert_eq!(read.enforce_fips_policy, Some(false));

    // Unrelated content byte for byte: the file less provd's two elements
    // is the installer's file.
    assert_eq!(without_provd_elements(&host.exe_config()), SAMPLE);

    // Again: skipped as desired, nothing written, no restart.
    let writes = host.settings_writes();
    let (events, op) = apply(&d, &desired).await;
    ok(&op);
    let skip = events
        .iter()
        .find(|e| e.step == STEP && e.kind == StepSkipped as i32)
        .unwrap_or_else(|| panic!("not skipped: {events:#?}"));
    assert_eq!(skip.message, "as desired");
    assert_eq!(op.result["changed"], "false");
    assert_eq!(host.settings_writes(), writes);
    assert_eq!(restarts(&host), 1);
    assert!(plan(&d, &desired).await.is_empty());

    // An old agent's auto-upgrade puts the installer's exe.config back: the
    // proxy and the FIPS flag are changes again, the registry is not.
    host.set_exe_config(SAMPLE);
    let planned = plan(&d, &desired).await;
    assert_eq!(
        planned,
        ["set-proxy", "set-fips-policy", "restart"].map(|a| (STEP.to_owned(), a.to_owned()))
    );
    let (events, op) = apply(&d, &desired).await;
    ok(&op);
    assert_eq!(applied(&events), planned);
    assert_eq!(restarts(&host), 2);

    // A hand-set DWORD is rewritten as the String value the agent reads.
    host.set_agent_registry("UserPasswordLength", Some(RegValue::Dword(200)));
    assert_eq!(
        plan(&d, &desired).await,
        ["set-registry", "restart"].map(|a| (STEP.to_owned(), a.to_owned()))
    );
}

#[tokio::test]
async fn no_proxy_removes_the_element_and_unset_fields_are_left_alone() {
    let d = with_agent().await;
    let host = d.fakes.host.clone();
    ok(&apply(&d, &document(&d, settings())).await.1);
    let only_proxy_none = v1::AgentSettingsSpec {
        proxy: Some(v1::ProxySpec {
            none: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let desired = document(&d, only_proxy_none);
    assert_eq!(
        plan(&d, &desired).await,
        ["remove-proxy", "restart"].map(|a| (STEP.to_owned(), a.to_owned()))
    );
    ok(&apply(&d, &desired).await.1);
    let read = provd::backends::host::exe_config::read(&host.exe_config()).unwrap();
    assert_eq!(read.proxy, provd::backends::host::AgentProxy::None);
    assert_eq!(read.enforce_fips_policy, Some(false), "left as it was");
}

#[tokio::test]
async fn before_the_agent_is_installed_every_setting_is_planned() {
    let d = Hermetic::start().await;
    let desired = document(&d, settings());
    let planned = plan(&d, &desired).await;
    let settings: Vec<_> = planned.into_iter().filter(|(s, _)| s == STEP).collect();
    assert_eq!(settings, all_changes());
}

#[tokio::test]
async fn bad_settings_name_their_fields() {
    let d = with_agent().await;
    let bad = v1::AgentSettingsSpec {
        proxy: Some(v1::ProxySpec {
            address: "proxy.corp:8080".into(),
            ..Default::default()
        }),
        referral_chasing_options: Some(1),
        user_password_length: Some(257),
        ..Default::default()
    };
    let status = configuration(&d)
        .plan_configuration(v1::PlanConfigurationRequest {
            desired: Some(document(&d, bad)),
            credential: None,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        [
            "desired.agent.settings.proxy.address",
            "desired.agent.settings.referral_chasing_options",
            "desired.agent.settings.user_password_length",
        ]
    );
}

#[tokio::test]
async fn drift_reapplies_the_last_applied_settings_after_an_upgrade_outside_provd() {
    let d = with_drift_reapply(FakeHost::new().with_agent("1.1.1370.0")).await;
    let host = d.fakes.host.clone();
    ok(&apply(&d, &document(&d, settings())).await.1);
    assert_eq!(restarts(&host), 1);
    // A round after the apply: the watch has its baseline.
    let reads = host.status_reads();
    wait_until(|| host.status_reads() > reads + 1).await;
    assert_eq!(restarts(&host), 1, "no drift, no re-apply");

    // An old agent's auto-upgrade: a new version, the installer's exe.config.
    host.upgrade_outside_provd("1.1.1400.0");
    host.set_exe_config(SAMPLE);
    wait_until(|| restarts(&host) == 2).await;
    let read = provd::backends::host::exe_config::read(&host.exe_config()).unwrap();
    assert_eq!(read.enforce_fips_policy, Some(false));
    assert!(matches!(
        read.proxy,
        provd::backends::host::AgentProxy::Address { .. }
    ));

    // It was an operation like any other, started by drift.
    let reapplied = drift_operation(&d, |_| true).await;
    assert_eq!(reapplied.kind, v1::OperationKind::ApplyConfiguration as i32);
    assert!(
        reapplied.description.contains("1.1.1370.0 -> 1.1.1400.0"),
        "{reapplied:#?}"
    );
    let (_, op) = d.finish(Some(reapplied)).await;
    ok(&op);
    assert_eq!(op.result["changed_steps"], STEP);

    // Nothing more changes: no further re-apply, no restart.
    let reads = host.status_reads();
    wait_until(|| host.status_reads() > reads + 1).await;
    assert_eq!(restarts(&host), 2);

    // A hand edit of a registry option, the version unchanged: put back too.
    host.set_agent_registry("ReferralChasingOptions", Some(RegValue::Text("0".into())));
    wait_until(|| restarts(&host) == 3).await;
    let hand = drift_operation(&d, |o| o.description.contains("settings changed")).await;
    assert!(
        hand.description.contains("ReferralChasingOptions"),
        "{hand:#?}"
    );
    ok(&d.finish(Some(hand)).await.1);
    let read = host.agent_settings_now();
    assert_eq!(read.referral_chasing_options.text(), Some("96"));
}
