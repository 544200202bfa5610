//! `provctl fleet status`: StatusService.GetHostStatus on every host of an
//! inventory (one call each, one connection each, `concurrency` at once),
//! judged into one row per host. The judgement is [`judge`]; the Python
//! client's `provd.fleet` and the Ansible module `provd_status` make the
//! same one, reason codes included.

use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

use provd_proto::v1;
use provd_proto::v1::status_service_client::StatusServiceClient;

use super::connect;
use super::hosts::{Host, fan_out};

/// Why a host fails the sweep: the codes, in the order they are judged.
pub const UNREACHABLE: &str = "UNREACHABLE";
pub const ERROR: &str = "ERROR";
pub const HOST_UNAVAILABLE: &str = "HOST_UNAVAILABLE";
pub const AGENT_NOT_INSTALLED: &str = "AGENT_NOT_INSTALLED";
pub const SERVICE_NOT_RUNNING: &str = "SERVICE_NOT_RUNNING";
pub const LAST_OPERATION_FAILED: &str = "LAST_OPERATION_FAILED";
pub const DRIFT: &str = "DRIFT";

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServiceRow {
    pub name: String,
    /// RUNNING, STOPPED, … (ServiceState without its prefix).
    pub state: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OperationRow {
    pub id: String,
    /// INSTALL, APPLY_CONFIGURATION, …
    pub kind: String,
    /// RUNNING, SUCCEEDED, FAILED, …
    pub state: String,
    /// RFC 3339; empty while it runs.
    pub finished: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FindingRow {
    /// AGENT_VERSION, AGENT_SETTINGS, HOST_PREREQUISITES.
    pub what: String,
    pub detail: String,
    pub present: bool,
    /// RFC 3339.
    pub observed: String,
    pub reapply_operation_id: String,
    /// The re-apply's state; empty when none was started.
    pub reapply_state: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatusRow {
    pub host: String,
    pub endpoint: String,
    /// OK, FAIL (reachable, but a reason below), UNREACHABLE (no
    /// connection) or ERROR (the call failed).
    pub status: String,
    /// Whether the host fails the sweep (the exit code's judge).
    pub failed: bool,
    /// `CODE: detail`, one per reason (see `fleet status --help`).
    pub reasons: Vec<String>,
    pub host_available: bool,
    pub agent_installed: bool,
    pub agent_version: String,
    pub services: Vec<ServiceRow>,
    /// The registered agent's id as provd recorded it; empty: none.
    pub agent_id: String,
    pub signed_in: bool,
    pub last_operation: Option<OperationRow>,
    /// OFF, PENDING (no round yet), ON; empty when not read.
    pub drift_watch: String,
    pub drift: Vec<FindingRow>,
}

/// A proto enum's name without its prefix ("" for an unknown number).
fn name<E: TryFrom<i32>>(value: i32, as_str: fn(&E) -> &'static str, prefix: &str) -> String {
    E::try_from(value)
        .map(|e| as_str(&e).trim_start_matches(prefix).to_owned())
        .unwrap_or_default()
}

fn rfc3339(t: Option<&pbjson_types::Timestamp>) -> String {
    t.and_then(|t| {
        let secs = u64::try_from(t.seconds).ok()?;
        let at = UNIX_EPOCH + Duration::from_secs(secs);
        Some(humantime::format_rfc3339_seconds(at).to_string())
    })
    .unwrap_or_default()
}

/// One host's answer as a row, judged. A host fails when, in this order:
/// the host backend is unavailable (provd cannot read the agent: any
/// non-Windows host); the agent is not installed; either agent service is
/// not RUNNING; the newest operation ended FAILED, CANCELLED or
/// INTERRUPTED; the drift watch has a present finding. Not failures: the
/// drift watch OFF or PENDING (unknown), no registration recorded, no
/// tenant session, an operation running.
pub fn judge(host: &Host, s: &v1::GetHostStatusResponse) -> StatusRow {
    let mut reasons = Vec::new();
    let services: Vec<ServiceRow> = s
        .services
        .iter()
        .map(|svc| ServiceRow {
            name: svc.name.clone(),
            state: name(svc.state, v1::ServiceState::as_str_name, "SERVICE_STATE_"),
        })
        .collect();
    if !s.host_available {
        reasons.push(format!("{HOST_UNAVAILABLE}: {}", s.host_unavailable_reason));
    } else if !s.agent_installed {
        reasons.push(format!("{AGENT_NOT_INSTALLED}: no agent package"));
    } else {
        for svc in services.iter().filter(|svc| svc.state != "RUNNING") {
            reasons.push(format!(
                "{SERVICE_NOT_RUNNING}: {} is {}",
                svc.name, svc.state
            ));
        }
    }
    let last_operation = s.last_operation.as_ref().map(|op| OperationRow {
        id: op.id.clone(),
        kind: name(op.kind, v1::OperationKind::as_str_name, "OPERATION_KIND_"),
        state: name(
            op.state,
            v1::OperationState::as_str_name,
            "OPERATION_STATE_",
        ),
        finished: rfc3339(op.end_time.as_ref()),
        error: op
            .error
            .as_ref()
            .map(|e| format!("{} at {}: {}", e.code, e.step, e.message))
            .unwrap_or_default(),
    });
    if let Some(op) = &last_operation
        && matches!(op.state.as_str(), "FAILED" | "CANCELLED" | "INTERRUPTED")
    {
        reasons.push(format!(
            "{LAST_OPERATION_FAILED}: {} {} {}",
            op.kind, op.id, op.state
        ));
    }
    let drift = s.drift.clone().unwrap_or_default();
    let findings: Vec<FindingRow> = drift
        .findings
        .iter()
        .map(|f| FindingRow {
            what: name(f.what, v1::DriftKind::as_str_name, "DRIFT_KIND_"),
            detail: f.detail.clone(),
            present: f.present,
            observed: rfc3339(f.observed_time.as_ref()),
            reapply_operation_id: f.reapply_operation_id.clone(),
            reapply_state: if f.reapply_operation_id.is_empty() {
                String::new()
            } else {
                name(
                    f.reapply_state,
                    v1::OperationState::as_str_name,
                    "OPERATION_STATE_",
                )
            },
        })
        .collect();
    for f in findings.iter().filter(|f| f.present) {
        reasons.push(format!("{DRIFT}: {} {}", f.what, f.detail));
    }
    let tenant = s.tenant.clone().unwrap_or_default();
    StatusRow {
        host: host.name.clone(),
        endpoint: host.settings.endpoint.clone(),
        status: if reasons.is_empty() { "OK" } else { "FAIL" }.into(),
        failed: !reasons.is_empty(),
        reasons,
        host_available: s.host_available,
        agent_installed: s.agent_installed,
        agent_version: s.agent_version.clone(),
        services,
        agent_id: tenant.agent_id,
        signed_in: tenant.signed_in,
        last_operation,
        drift_watch: name(drift.watch, v1::DriftWatch::as_str_name, "DRIFT_WATCH_"),
        drift: findings,
    }
}

/// A host that gave no status: `status` is UNREACHABLE or ERROR.
fn unread(host: &Host, status: &str, why: String) -> StatusRow {
    StatusRow {
        host: host.name.clone(),
        endpoint: host.settings.endpoint.clone(),
        status: status.into(),
        failed: true,
        reasons: vec![format!("{status}: {why}")],
        host_available: false,
        agent_installed: false,
        agent_version: String::new(),
        services: Vec::new(),
        agent_id: String::new(),
        signed_in: false,
        last_operation: None,
        drift_watch: String::new(),
        drift: Vec::new(),
    }
}

/// GetHostStatus on every host, `concurrency` at once, each within
/// `timeout` (connection and call).
pub async fn status(hosts: Vec<Host>, concurrency: usize, timeout: Duration) -> Vec<StatusRow> {
    fan_out(
        hosts,
        concurrency,
        |host| async move {
            match tokio::time::timeout(timeout, status_one(&host)).await {
                Ok(row) => row,
                Err(_) => unread(
                    &host,
                    UNREACHABLE,
                    format!("no answer within {}s", timeout.as_secs_f64()),
                ),
            }
        },
        |r| &r.host,
    )
    .await
}

async fn status_one(host: &Host) -> StatusRow {
    let channel = match connect::connect(&host.settings).await {
        Ok(channel) => channel,
        Err(e) => return unread(host, UNREACHABLE, format!("{e:#}")),
    };
    match StatusServiceClient::new(channel)
        .get_host_status(v1::GetHostStatusRequest {})
        .await
    {
        Ok(answer) => judge(host, answer.get_ref()),
        Err(s) => unread(host, ERROR, format!("{:?}: {}", s.code(), s.message())),
    }
}

/// The table a person reads, and a count.
pub fn render_status(rows: &[StatusRow]) -> String {
    let width = rows.iter().map(|r| r.host.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:<11}  {:<12}  {:<9}  {:<32}  {:<8}  REASONS\n",
        "HOST", "STATUS", "AGENT", "SERVICES", "LAST OPERATION", "DRIFT"
    );
    for r in rows {
        let agent = if !r.host_available || r.status == UNREACHABLE || r.status == ERROR {
            "-".to_owned()
        } else if r.agent_installed {
            r.agent_version.clone()
        } else {
            "none".to_owned()
        };
        let services = if r.services.is_empty() {
            "-"
        } else if r.services.iter().all(|s| s.state == "RUNNING") {
            "running"
        } else {
            "NOT ALL"
        };
        let last = r
            .last_operation
            .as_ref()
            .map_or_else(|| "-".to_owned(), |op| format!("{} {}", op.kind, op.state));
        let drift = match r.drift_watch.as_str() {
            "" => "-".to_owned(),
            "ON" if r.drift.iter().any(|f| f.present) => "SEEN".to_owned(),
            "ON" => "none".to_owned(),
            other => other.to_lowercase(),
        };
        out.push_str(&format!(
            "{:<width$}  {:<11}  {:<12}  {:<9}  {:<32}  {:<8}  {}\n",
            r.host,
            r.status,
            agent,
            services,
            last,
            drift,
            r.reasons.join("; ")
        ));
    }
    let failed = rows.iter().filter(|r| r.failed).count();
    let unreachable = rows
        .iter()
        .filter(|r| r.status == UNREACHABLE || r.status == ERROR)
        .count();
    out.push_str(&format!(
        "\n{} host(s): {} ok, {} failed ({} unreachable or in error)\n",
        rows.len(),
        rows.len() - failed,
        failed,
        unreachable
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::connect::Settings;

    fn host() -> Host {
        Host {
            name: "h1".into(),
            canary: false,
            settings: Settings {
                endpoint: "https://h1:8443".into(),
                ca: PathBuf::new(),
                cert: PathBuf::new(),
                key: PathBuf::new(),
                server_name: None,
                trace: false,
            },
        }
    }

    fn healthy() -> v1::GetHostStatusResponse {
        let running = |name: &str| v1::AgentServiceStatus {
            name: name.into(),
            state: v1::ServiceState::Running as i32,
            ..Default::default()
        };
        v1::GetHostStatusResponse {
            host_available: true,
            agent_installed: true,
            agent_version: "1.1.1370.0".into(),
            services: vec![
                running("AADConnectProvisioningAgent"),
                running("AzureADConnectAgentUpdater"),
            ],
            last_operation: Some(v1::Operation {
                id: "op1".into(),
                kind: v1::OperationKind::Install as i32,
                state: v1::OperationState::Succeeded as i32,
                end_time: Some(pbjson_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            drift: Some(v1::DriftStatus {
                watch: v1::DriftWatch::On as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn codes(row: &StatusRow) -> Vec<&str> {
        row.reasons
            .iter()
            .map(|r| r.split(':').next().unwrap_or(""))
            .collect()
    }

    #[test]
    fn a_healthy_host_passes_and_each_reason_fails_it() {
        let row = judge(&host(), &healthy());
        assert_eq!((row.status.as_str(), row.failed), ("OK", false), "{row:?}");
        assert_eq!(
            row.last_operation.as_ref().unwrap().finished,
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(row.drift_watch, "ON");

        let mut s = healthy();
        s.services[1].state = v1::ServiceState::Stopped as i32;
        s.last_operation.as_mut().unwrap().state = v1::OperationState::Interrupted as i32;
        s.drift.as_mut().unwrap().findings = vec![
            v1::DriftFinding {
                what: v1::DriftKind::AgentVersion as i32,
                detail: "1.1.1 -> 1.1.2".into(),
                present: true,
                ..Default::default()
            },
            v1::DriftFinding {
                what: v1::DriftKind::AgentSettings as i32,
                present: false,
                ..Default::default()
            },
        ];
        let row = judge(&host(), &s);
        assert!(row.failed);
        assert_eq!(
            codes(&row),
            [SERVICE_NOT_RUNNING, LAST_OPERATION_FAILED, DRIFT],
            "{row:?}"
        );
        assert!(row.reasons[0].contains("AzureADConnectAgentUpdater is STOPPED"));
        assert!(row.reasons[2].contains("AGENT_VERSION 1.1.1 -> 1.1.2"));

        let mut s = healthy();
        s.agent_installed = false;
        s.services.clear();
        assert_eq!(codes(&judge(&host(), &s)), [AGENT_NOT_INSTALLED]);
        s.host_available = false;
        assert_eq!(codes(&judge(&host(), &s)), [HOST_UNAVAILABLE]);
    }

    #[test]
    fn unknown_drift_a_running_or_cancelled_operation() {
        // Drift unknown (OFF, PENDING) and an operation running: no failure.
        let mut s = healthy();
        s.drift.as_mut().unwrap().watch = v1::DriftWatch::Off as i32;
        s.last_operation.as_mut().unwrap().state = v1::OperationState::Running as i32;
        let row = judge(&host(), &s);
        assert!(!row.failed, "{row:?}");
        assert_eq!(row.drift_watch, "OFF");
        // A cancelled one: provctl's exit-1 rule for watched operations.
        s.last_operation.as_mut().unwrap().state = v1::OperationState::Cancelled as i32;
        assert_eq!(codes(&judge(&host(), &s)), [LAST_OPERATION_FAILED]);
    }

    #[test]
    fn the_table_names_each_host_and_counts() {
        let ok = judge(&host(), &healthy());
        let mut down = unread(&host(), UNREACHABLE, "connection refused".into());
        down.host = "h2".into();
        let text = render_status(&[ok, down]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("HOST"), "{text}");
        assert!(
            lines[1].contains("OK") && lines[1].contains("1.1.1370.0"),
            "{text}"
        );
        assert!(lines[1].contains("INSTALL SUCCEEDED"), "{text}");
        assert!(
            lines[2].contains("UNREACHABLE: connection refused"),
            "{text}"
        );
        assert!(
            text.contains("2 host(s): 1 ok, 1 failed (1 unreachable or in error)"),
            "{text}"
        );
        let json = serde_json::to_value(judge(&host(), &healthy())).unwrap();
        assert_eq!(json["failed"], false);
        assert_eq!(json["services"][0]["state"], "RUNNING");
    }
}
