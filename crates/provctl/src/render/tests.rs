//! Renderers on sample responses.
use super::*;

#[test]
fn generic_renders_nested_values() {
    let value = serde_json::json!({
        "hostAvailable": true,
        "version": "1.2",
        "services": [{"name": "a", "state": "RUNNING"}, {"name": "b"}],
        "tags": ["x", "y"],
    });
    let text = generic(&value);
    assert_eq!(
        text,
        "host_available: true\nversion:        1.2\nservices:\n  - name:  a\n    state: RUNNING\n  - name: b\ntags:\n  - x\n  - y\n"
    );
}

#[test]
fn durations_and_timestamps() {
    let d = pbjson_types::Duration {
        seconds: -1,
        nanos: -500_000_000,
    };
    assert_eq!(duration(Some(&d)), "-1s 500ms");
    let t = pbjson_types::Timestamp {
        seconds: 0,
        nanos: 0,
    };
    assert_eq!(timestamp(Some(&t)), "1970-01-01T00:00:00Z");
}

#[test]
fn event_line() {
    let e = v1::OperationEvent {
        sequence: 3,
        step: "fetch-package".into(),
        kind: v1::EventKind::Progress as i32,
        message: "copying".into(),
        percent: 42,
        ..Default::default()
    };
    assert_eq!(
        event(&e),
        "[  3] fetch-package      PROGRESS        copying (42%)\n"
    );
}

#[test]
fn a_sign_in_request_stands_out_with_its_code() {
    let e = v1::OperationEvent {
        sequence: 9,
        step: "sign-in".into(),
        kind: v1::EventKind::ActionRequired as i32,
        message: "To sign in, open https://login.example/devicelogin and enter BCDF-GHJK.".into(),
        attributes: [
            ("verification_uri", "https://login.example/devicelogin"),
            ("user_code", "BCDF-GHJK"),
            ("expires_in_secs", "900"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        ..Default::default()
    };
    let text = event(&e);
    assert!(
        text.starts_with("[  9] sign-in            ACTION REQUIRED\n"),
        "{text}"
    );
    assert!(
        text.contains("    open:  https://login.example/devicelogin\n"),
        "{text}"
    );
    assert!(text.contains("    code:  BCDF-GHJK\n"), "{text}");
    assert!(text.contains("expires in 900 s"), "{text}");
}

fn ts(seconds: i64) -> Option<pbjson_types::Timestamp> {
    Some(pbjson_types::Timestamp { seconds, nanos: 0 })
}

/// One configured domain whose provisioning job is quarantined.
fn quarantined() -> v1::GetCloudSyncResponse {
    v1::GetCloudSyncResponse {
        tenant_sync_enabled: true,
        tenant_readable: true,
        tenant_message: String::new(),
        domains: vec![v1::CloudSyncDomain {
            domain: "lab.example.test".into(),
            configured: true,
            managed: true,
            service_principal_id: "sp-1".into(),
            app_id: "app-1".into(),
            observed: Some(v1::CloudSyncSpec {
                enabled: true,
                password_hash_sync: true,
                organizational_units: vec!["OU=SyncPilot,DC=lab,DC=example,DC=test".into()],
                // The daemon never sends it; if one did, it must not show.
                notification_email: "ops-secret@example.test".into(),
                ..Default::default()
            }),
            notification_email_set: true,
            secret_keys: vec![
                "Domain".into(),
                "AppKey".into(),
                "SyncNotificationSettings".into(),
            ],
            jobs: vec![v1::CloudSyncJob {
                id: "AD2AADProvisioning.abc.def".into(),
                template_id: "AD2AADProvisioning".into(),
                state: v1::CloudSyncJobState::Quarantine as i32,
                raw_code: "Quarantine".into(),
                schedule: v1::CloudSyncSchedule::Active as i32,
                quarantine: Some(v1::CloudSyncQuarantine {
                    reason: "EncounteredQuarantineException".into(),
                    error_code: "HybridIdentityServiceNoActiveAgents".into(),
                    error_message: "no agent is active".into(),
                    current_began: ts(0),
                    next_attempt: ts(3600),
                    series_count: 3,
                    remedy: "start the agent's services on a server of the agent group".into(),
                }),
                last_run: Some(v1::CloudSyncRun {
                    state: v1::CloudSyncRunState::Failed as i32,
                    count_imported: 12,
                    count_exported: 3,
                    count_escrowed: 1,
                    time_ended: ts(60),
                    error_code: "HybridIdentityServiceNoActiveAgents".into(),
                    ..Default::default()
                }),
                last_successful_run: None,
                synchronized_by_type: [("user".to_owned(), 25), ("group".to_owned(), 2)]
                    .into_iter()
                    .collect(),
            }],
            agents: vec![
                v1::CloudSyncAgent {
                    id: "agent-1".into(),
                    machine_name: "AGENT1".into(),
                    active: false,
                    this_host: true,
                },
                v1::CloudSyncAgent {
                    id: "agent-2".into(),
                    machine_name: "AGENT2".into(),
                    active: true,
                    this_host: false,
                },
            ],
            read_error: String::new(),
        }],
    }
}

#[test]
fn a_quarantined_job_shows_its_remedy_and_no_secret_value() {
    let text = cloud_sync(&quarantined());
    assert!(text.starts_with("tenant sync enabled: yes\n"), "{text}");
    assert!(text.contains("\nlab.example.test\n"), "{text}");
    assert!(text.contains("  managed by provd:   yes\n"), "{text}");
    assert!(
        text.contains("  scope:              OUs OU=SyncPilot,DC=lab,DC=example,DC=test\n"),
        "{text}"
    );
    assert!(
        text.contains("  delete prevention:  on, threshold 500\n"),
        "{text}"
    );
    // Secrets by key only.
    assert!(
        text.contains("  secret keys:        Domain, AppKey, SyncNotificationSettings\n"),
        "{text}"
    );
    assert!(
        text.contains("  notification email: set (not shown)\n"),
        "{text}"
    );
    assert!(!text.contains("ops-secret"), "{text}");
    // The job row: state, schedule, last run and its counts, what is synchronized.
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("AD2AADProvisioning "))
        .unwrap_or_else(|| panic!("no job row:\n{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "AD2AADProvisioning",
            "QUARANTINE",
            "ACTIVE",
            "FAILED",
            "1970-01-01T00:01:00Z",
            "12",
            "3",
            "1",
            "group",
            "2,",
            "user",
            "25"
        ],
        "{text}"
    );
    // The quarantine: reason, code, Graph's message and Microsoft's remedy.
    assert!(
        text.contains(
            "  quarantine of AD2AADProvisioning: EncounteredQuarantineException \
             (HybridIdentityServiceNoActiveAgents)\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("    message:        no agent is active\n"),
        "{text}"
    );
    assert!(
        text.contains("    next attempt:   1970-01-01T01:00:00Z\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "    remedy:         start the agent's services on a server of the agent group\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("\n  last run of AD2AADProvisioning: HybridIdentityServiceNoActiveAgents\n"),
        "{text}"
    );
    // The agents serving the domain, this one marked.
    let agent1 = text.lines().find(|l| l.contains("AGENT1")).unwrap();
    assert!(
        agent1.contains("inactive") && agent1.ends_with("this host"),
        "{text}"
    );
    let agent2 = text.lines().find(|l| l.contains("AGENT2")).unwrap();
    assert!(
        agent2.contains("active") && !agent2.contains("this host"),
        "{text}"
    );
}

#[test]
fn without_a_tenant_session_get_says_why() {
    let r = v1::GetCloudSyncResponse {
        tenant_readable: false,
        tenant_message: "no tenant session: sign in with `provctl agent sign-in`".into(),
        domains: vec![v1::CloudSyncDomain {
            domain: "lab.example.test".into(),
            read_error: "tenant not read".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let text = cloud_sync(&r);
    assert_eq!(
        text,
        "tenant not read: no tenant session: sign in with `provctl agent sign-in`\n\
         \n\
         lab.example.test\n  \
         configured:       no\n  \
         managed by provd: no\n  \
         not read:         tenant not read\n"
    );
}

#[test]
fn cloud_sync_steps_render_in_a_plan() {
    let change = |action: &str, detail: &str| v1::PlannedChange {
        step: "cloud-sync lab.example.test".into(),
        action: action.into(),
        detail: detail.into(),
    };
    let r = v1::PlanConfigurationResponse {
        changes: vec![
            v1::PlannedChange {
                step: "writeback".into(),
                action: "enable".into(),
                detail: "tenant flag".into(),
            },
            change(
                "enable-tenant-sync",
                "onPremisesSyncEnabled true (now: null)",
            ),
            change("put-secrets", "Domain, AppKey, SyncNotificationSettings"),
        ],
    };
    assert_eq!(
        plan(&r),
        "plan: 3 change(s)\n  \
         writeback\n    \
         + enable             tenant flag\n  \
         cloud-sync lab.example.test\n    \
         + enable-tenant-sync onPremisesSyncEnabled true (now: null)\n    \
         + put-secrets        Domain, AppKey, SyncNotificationSettings\n"
    );
    assert_eq!(
        cloud_sync_plan(&[]),
        "plan: no changes; the configuration is as desired\n"
    );
}

#[test]
fn the_verify_table_sorts_and_lists_remedies() {
    let check = |id: &str, category, status, subject: &str, remedy: &str| v1::Check {
        id: id.into(),
        category: category as i32,
        status: status as i32,
        subject: subject.into(),
        message: format!("{id} seen"),
        remedy: remedy.into(),
        ..Default::default()
    };
    let table = check_table(&[
        check(
            "tenant.agent.active",
            v1::CheckCategory::Tenant,
            v1::CheckStatus::Fail,
            "",
            "start the service",
        ),
        check(
            "host.agent.installed",
            v1::CheckCategory::Host,
            v1::CheckStatus::Pass,
            "",
            "",
        ),
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[1].starts_with("STATUS CHECK"), "{table}");
    assert!(
        lines[2].starts_with("PASS   host.agent.installed"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("FAIL   tenant.agent.active"),
        "{table}"
    );
    assert!(
        table.ends_with("remedies:\n  tenant.agent.active: start the service\n"),
        "{table}"
    );
}

#[test]
fn a_host_plan_shows_each_fix_its_values_and_the_restart() {
    let r = v1::PlanHostRemediationResponse {
        fixes: vec![
            v1::PlannedHostFix {
                fix: v1::HostFix::Tls12 as i32,
                step: "tls12".into(),
                changes: vec![
                    r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.2\Client\Enabled: absent -> 1".into(),
                    r"HKLM\SOFTWARE\Microsoft\.NETFramework\v4.0.30319\SchUseStrongCrypto: 0 -> 1".into(),
                ],
                reboot_required: true,
            },
            v1::PlannedHostFix {
                fix: v1::HostFix::VaultServiceManual as i32,
                // A daemon that leaves the step out: the fix's own name.
                step: String::new(),
                changes: vec!["VaultSvc start type: Disabled -> Manual".into()],
                reboot_required: false,
            },
        ],
    };
    assert_eq!(
        host_plan(&r),
        "plan: 2 fix(es)\n\
         \x20 tls12 (restart required)\n\
         \x20   HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client\\Enabled: absent -> 1\n\
         \x20   HKLM\\SOFTWARE\\Microsoft\\.NETFramework\\v4.0.30319\\SchUseStrongCrypto: 0 -> 1\n\
         \x20 vault-service-manual (no restart)\n\
         \x20   VaultSvc start type: Disabled -> Manual\n\
         a restart of the server is needed after tls12: provd never restarts it\n"
    );
}

#[test]
fn an_empty_host_plan_says_nothing_needs_fixing() {
    assert_eq!(
        host_plan(&v1::PlanHostRemediationResponse::default()),
        "no fixes: the host's prerequisites provd can fix are as required\n"
    );
}
