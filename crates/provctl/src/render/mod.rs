//! Output: proto3 JSON lines, or friendly text built here. Every renderer
//! returns a `String`; `Out` writes it, so a closed pipe is an error to
//! propagate rather than a panic.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tonic_types::StatusExt;

use provd_proto::v1;

use super::OutputFormat;

mod cloud_sync;
mod host;

pub use cloud_sync::cloud_sync;
pub use host::host_plan;

/// Where results go, and in which format.
#[derive(Clone, Copy)]
pub struct Out {
    pub format: OutputFormat,
}

impl Out {
    pub fn is_json(self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Writes `text` to stdout as it is.
    pub fn text(self, text: &str) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    }

    /// Writes `message` as one line of proto3 JSON.
    pub fn json<T: Serialize>(self, message: &T) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(message)?;
        line.push('\n');
        self.text(&line)
    }

    /// JSON, or the text `human` makes of the message.
    pub fn show<T: Serialize>(
        self,
        message: &T,
        human: impl FnOnce(&T) -> String,
    ) -> anyhow::Result<()> {
        if self.is_json() {
            self.json(message)
        } else {
            self.text(&human(message))
        }
    }

    /// JSON, or the generic `key: value` rendering.
    pub fn generic<T: Serialize>(self, message: &T) -> anyhow::Result<()> {
        if self.is_json() {
            self.json(message)
        } else {
            self.text(&generic(&serde_json::to_value(message)?))
        }
    }
}

// ---------------------------------------------------------------------------
// Small formatting helpers
// ---------------------------------------------------------------------------

/// Drops a proto enum's type prefix: `OPERATION_STATE_RUNNING` -> `RUNNING`.
fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_string()
}

/// Declares `fn $fn(i32) -> String` naming a proto enum value without its
/// prefix (or the raw number, for a value this client does not know).
macro_rules! enum_label {
    ($fn:ident, $ty:ty, $prefix:literal) => {
        pub fn $fn(value: i32) -> String {
            <$ty>::try_from(value).map_or_else(
                |_| format!("UNKNOWN({value})"),
                |v| short(v.as_str_name(), $prefix),
            )
        }
    };
}

enum_label!(op_state, v1::OperationState, "OPERATION_STATE_");
enum_label!(op_kind, v1::OperationKind, "OPERATION_KIND_");
enum_label!(event_kind, v1::EventKind, "EVENT_KIND_");
enum_label!(service_state, v1::ServiceState, "SERVICE_STATE_");
enum_label!(start_type, v1::StartType, "START_TYPE_");
enum_label!(check_status, v1::CheckStatus, "CHECK_STATUS_");
enum_label!(check_category, v1::CheckCategory, "CHECK_CATEGORY_");
enum_label!(dc_source, v1::DcSource, "DC_SOURCE_");
enum_label!(functional_level, v1::FunctionalLevel, "FUNCTIONAL_LEVEL_");
enum_label!(job_state, v1::CloudSyncJobState, "CLOUD_SYNC_JOB_STATE_");
enum_label!(schedule, v1::CloudSyncSchedule, "CLOUD_SYNC_SCHEDULE_");
enum_label!(run_state, v1::CloudSyncRunState, "CLOUD_SYNC_RUN_STATE_");

pub fn timestamp(ts: Option<&pbjson_types::Timestamp>) -> String {
    let Some(ts) = ts else {
        return String::new();
    };
    match (u64::try_from(ts.seconds), u32::try_from(ts.nanos)) {
        (Ok(secs), Ok(nanos)) => {
            let time = UNIX_EPOCH + Duration::new(secs, nanos);
            humantime::format_rfc3339_seconds(time).to_string()
        }
        _ => format!("{}s since the epoch", ts.seconds),
    }
}

/// A proto Duration, e.g. `1s 250ms`; negative ones get a leading `-`.
pub fn duration(d: Option<&pbjson_types::Duration>) -> String {
    let Some(d) = d else {
        return String::new();
    };
    let negative = d.seconds < 0 || d.nanos < 0;
    let std = Duration::new(d.seconds.unsigned_abs(), d.nanos.unsigned_abs());
    // Millisecond resolution is plenty for people.
    let std = Duration::from_millis(u64::try_from(std.as_millis()).unwrap_or(u64::MAX));
    let text = if std.is_zero() {
        "0s".to_string()
    } else {
        humantime::format_duration(std).to_string()
    };
    if negative { format!("-{text}") } else { text }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

/// Sorted `key=value` pairs of a string map.
fn pairs(map: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.sort();
    pairs
}

/// Aligned `key: value` lines; rows with an empty value are left out.
fn kv(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k.len() + 1)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        out.push_str(&format!("{:<width$} {value}\n", format!("{key}:")));
    }
    out
}

/// A left-aligned table with a header row; the last column is not padded.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                text.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.chars().count());
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

// ---------------------------------------------------------------------------
// Generic renderer: serde_json Value -> indented `key: value` lines
// ---------------------------------------------------------------------------

/// `hostUnavailableReason` -> `host_unavailable_reason` (the proto name).
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        other => other.to_string(),
    }
}

fn is_nested(value: &Value) -> bool {
    matches!(value, Value::Object(m) if !m.is_empty())
        || matches!(value, Value::Array(a) if !a.is_empty())
}

fn render_value(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            let width = map
                .iter()
                .filter(|(_, v)| !is_nested(v))
                .map(|(k, _)| snake(k).len() + 1)
                .max()
                .unwrap_or(0);
            // serde_json sorts keys; scalars first reads better than a
            // scalar stranded after a long nested block.
            for (key, val) in map.iter().filter(|(_, v)| !is_nested(v)) {
                let label = format!("{}:", snake(key));
                out.push_str(&format!("{pad}{label:<width$} {}\n", scalar(val)));
            }
            for (key, val) in map.iter().filter(|(_, v)| is_nested(v)) {
                out.push_str(&format!("{pad}{}:\n", snake(key)));
                render_value(out, val, indent + 2);
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_nested(item) {
                    // Render one level deeper, then turn the first line's
                    // indentation into a YAML-style "- ".
                    let mut nested = String::new();
                    render_value(&mut nested, item, indent + 2);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(nested.get(indent + 2..).unwrap_or(&nested));
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

pub fn generic(value: &Value) -> String {
    let mut out = String::new();
    render_value(&mut out, value, 0);
    if out.is_empty() {
        out.push_str("(empty response)\n");
    }
    out
}

// ---------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------

fn error_text(error: &v1::OperationError) -> String {
    let mut text = error.code.clone();
    if !error.step.is_empty() {
        text.push_str(&format!(" in step {}", error.step));
    }
    format!("{text}: {}", error.message)
}

pub fn operation(op: &v1::Operation) -> String {
    let mut out = kv(&[
        ("id", op.id.clone()),
        ("kind", op_kind(op.kind)),
        ("state", op_state(op.state)),
        ("description", op.description.clone()),
        ("request id", op.request_id.clone()),
        ("initiator", op.initiator.clone()),
        ("created", timestamp(op.create_time.as_ref())),
        ("updated", timestamp(op.update_time.as_ref())),
        ("ended", timestamp(op.end_time.as_ref())),
        ("events", op.event_count.to_string()),
        (
            "cancel",
            if op.cancel_requested {
                "requested".to_string()
            } else {
                String::new()
            },
        ),
        (
            "error",
            op.error.as_ref().map(error_text).unwrap_or_default(),
        ),
    ]);
    if !op.result.is_empty() {
        out.push_str("result:\n");
        for (k, v) in pairs(&op.result) {
            out.push_str(&format!("  {k}: {v}\n"));
        }
    }
    out
}

pub fn operations(response: &v1::ListOperationsResponse) -> String {
    if response.operations.is_empty() {
        return "no operations\n".to_string();
    }
    let rows: Vec<Vec<String>> = response
        .operations
        .iter()
        .map(|op| {
            vec![
                op.id.clone(),
                op_kind(op.kind),
                op_state(op.state),
                op.initiator.clone(),
                timestamp(op.create_time.as_ref()),
                op.description.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &["ID", "KIND", "STATE", "BY", "CREATED", "DESCRIPTION"],
        &rows,
    );
    if !response.next_page_token.is_empty() {
        out.push_str(&format!(
            "more: --page-token {}\n",
            response.next_page_token
        ));
    }
    out
}

/// One watch event: `[  3] fetch-package    STEP_STARTED   copying ... (42%)`,
/// then its attributes, indented. ACTION_REQUIRED stands out: the operator
/// has to do something (e.g. sign in) before the operation goes on.
pub fn event(event: &v1::OperationEvent) -> String {
    if event.kind == v1::EventKind::ActionRequired as i32 {
        return action_required(event);
    }
    let mut out = format!(
        "[{:>3}] {:<18} {:<15} {}",
        event.sequence,
        event.step,
        event_kind(event.kind),
        event.message
    );
    if event.percent > 0 {
        out.push_str(&format!(" ({}%)", event.percent));
    }
    out.push('\n');
    let is_state_change = event.kind == v1::EventKind::StateChanged as i32;
    for (k, v) in pairs(&event.attributes) {
        if is_state_change && k == "state" {
            continue;
        }
        out.push_str(&format!("      {k}: {v}\n"));
    }
    out
}

fn action_required(event: &v1::OperationEvent) -> String {
    let rule = "=".repeat(72);
    let mut out = format!(
        "[{:>3}] {:<18} ACTION REQUIRED\n{rule}\n  {}\n",
        event.sequence, event.step, event.message
    );
    if let (Some(uri), Some(code)) = (
        event.attributes.get("verification_uri"),
        event.attributes.get("user_code"),
    ) {
        out.push_str(&format!("\n    open:  {uri}\n    code:  {code}\n"));
        if let Some(secs) = event.attributes.get("expires_in_secs") {
            out.push_str(&format!(
                "    (expires in {secs} s; waiting for the sign-in)\n"
            ));
        }
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

/// The line that ends a watch.
pub fn terminal(op: &v1::Operation) -> String {
    let mut out = format!("operation {} {}", op.id, op_state(op.state));
    if let Some(error) = &op.error {
        out.push_str(&format!(": {}", error_text(error)));
    }
    out.push('\n');
    for (k, v) in pairs(&op.result) {
        out.push_str(&format!("  {k}: {v}\n"));
    }
    out
}

// ---------------------------------------------------------------------------
// Bespoke renderers for the other read-only RPCs
// ---------------------------------------------------------------------------

pub fn agent(r: &v1::GetAgentResponse) -> String {
    let mut out = kv(&[
        ("host available", yes_no(r.host_available)),
        ("unavailable because", r.host_unavailable_reason.clone()),
        ("installed", yes_no(r.installed)),
        ("version", r.version.clone()),
    ]);
    if !r.services.is_empty() {
        let rows: Vec<Vec<String>> = r
            .services
            .iter()
            .map(|s| {
                vec![
                    s.name.clone(),
                    service_state(s.state),
                    start_type(s.start_type),
                    s.account.clone(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table(&["SERVICE", "STATE", "START", "ACCOUNT"], &rows));
    }
    out
}

pub fn directories(r: &v1::ListDirectoriesResponse) -> String {
    if r.directories.is_empty() {
        return "no directories added\n".to_string();
    }
    let rows: Vec<Vec<String>> = r
        .directories
        .iter()
        .map(|d| {
            let failed: Vec<&str> = d
                .prerequisites
                .iter()
                .filter(|p| !p.ok)
                .map(|p| p.name.as_str())
                .collect();
            vec![
                d.domain.clone(),
                d.netbios_name.clone(),
                functional_level(d.domain_functional_level),
                functional_level(d.forest_functional_level),
                d.preferred_domain_controllers.join(","),
                timestamp(d.update_time.as_ref()),
                if failed.is_empty() {
                    "ok".to_string()
                } else {
                    failed.join(",")
                },
            ]
        })
        .collect();
    table(
        &[
            "DOMAIN",
            "NETBIOS",
            "DOMAIN LEVEL",
            "FOREST LEVEL",
            "PREFERRED DCS",
            "UPDATED",
            "PREREQUISITES",
        ],
        &rows,
    )
}

pub fn domain_controllers(r: &v1::DiscoverDomainControllersResponse) -> String {
    let mut out = kv(&[
        ("domain", r.domain.clone()),
        (
            "directory source skipped",
            r.directory_unavailable_reason.clone(),
        ),
    ]);
    let rows: Vec<Vec<String>> = r
        .domain_controllers
        .iter()
        .map(|dc| {
            let probe = dc.probe.as_ref();
            vec![
                dc.host_name.clone(),
                if dc.priority_rank > 0 {
                    dc.priority_rank.to_string()
                } else {
                    "-".into()
                },
                dc_source(dc.source),
                dc.addresses.join(","),
                dc.site.clone(),
                probe.map_or("-".into(), |p| yes_no(p.reachable)),
                probe
                    .map(|p| duration(p.ldaps_handshake_latency.as_ref()))
                    .unwrap_or_default(),
                probe
                    .map(|p| duration(p.clock_skew.as_ref()))
                    .unwrap_or_default(),
                probe.map(|p| p.error.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&table(
        &[
            "HOST",
            "RANK",
            "SOURCE",
            "ADDRESSES",
            "SITE",
            "REACHABLE",
            "LDAPS",
            "SKEW",
            "ERROR",
        ],
        &rows,
    ));
    out
}

pub fn priority(r: &v1::GetPriorityResponse) -> String {
    let mut out = kv(&[
        ("domain", r.domain.clone()),
        ("etag", r.etag.clone()),
        ("updated", timestamp(r.update_time.as_ref())),
    ]);
    if r.domain_controllers.is_empty() {
        out.push_str("no priority set: DNS SRV order applies\n");
    }
    for (i, dc) in r.domain_controllers.iter().enumerate() {
        out.push_str(&format!("{:>3}. {dc}\n", i + 1));
    }
    out
}

/// PlanConfiguration's answer: one line per change, grouped by step.
pub fn plan(r: &v1::PlanConfigurationResponse) -> String {
    changes(&r.changes, "the host is as desired")
}

/// PlanCloudSync's answer, as `plan` shows it.
pub fn cloud_sync_plan(planned: &[v1::PlannedChange]) -> String {
    changes(planned, "the configuration is as desired")
}

/// PlanDecommission's answer: every step, a skip with its reason too.
pub fn decommission_plan(steps: &[v1::PlannedChange]) -> String {
    let to_do = steps.iter().filter(|s| s.action != "skip").count();
    let mut out = format!("plan: {to_do} of {} step(s) would act\n", steps.len());
    for s in steps {
        let mark = if s.action == "skip" { ' ' } else { '+' };
        out.push_str(&format!(
            "  {mark} {:<20} {:<9} {}\n",
            s.step, s.action, s.detail
        ));
    }
    out
}

fn changes(planned: &[v1::PlannedChange], as_desired: &str) -> String {
    if planned.is_empty() {
        return format!("plan: no changes; {as_desired}\n");
    }
    let mut out = format!("plan: {} change(s)\n", planned.len());
    let mut step = "";
    for c in planned {
        if c.step != step {
            step = &c.step;
            out.push_str(&format!("  {step}\n"));
        }
        out.push_str(&format!("    + {:<18} {}\n", c.action, c.detail));
    }
    out
}

// ---------------------------------------------------------------------------
// Cloud sync
// ---------------------------------------------------------------------------

/// One short line per check as it arrives (the table follows at the end).
pub fn check_progress(c: &v1::Check) -> String {
    let mut out = format!("  {:<5} {}", check_status(c.status), c.id);
    if !c.subject.is_empty() {
        out.push_str(&format!(" [{}]", c.subject));
    }
    out.push('\n');
    out
}

/// Every check in one table, sorted by category, id and subject; remedies
/// of WARN and FAIL rows listed under it.
pub fn check_table(checks: &[v1::Check]) -> String {
    let mut rows: Vec<&v1::Check> = checks.iter().collect();
    rows.sort_by(|a, b| (a.category, &a.id, &a.subject).cmp(&(b.category, &b.id, &b.subject)));
    let width = |f: &dyn Fn(&v1::Check) -> usize, min: usize| {
        rows.iter().map(|c| f(c)).max().unwrap_or(0).max(min)
    };
    let id_w = width(&|c| c.id.len(), 5);
    let subject_w = width(&|c| c.subject.len(), 7).min(32);
    let mut out = format!(
        "\n{:<6} {:<id_w$} {:<subject_w$} {}\n",
        "STATUS", "CHECK", "SUBJECT", "MESSAGE"
    );
    let mut remedies = Vec::new();
    for c in &rows {
        let subject: String = c.subject.chars().take(subject_w).collect();
        out.push_str(&format!(
            "{:<6} {:<id_w$} {:<subject_w$} {}\n",
            check_status(c.status),
            c.id,
            subject,
            c.message
        ));
        if !c.remedy.is_empty()
            && (c.status == v1::CheckStatus::Fail as i32
                || c.status == v1::CheckStatus::Warn as i32)
        {
            let at = if c.subject.is_empty() {
                c.id.clone()
            } else {
                format!("{} [{}]", c.id, c.subject)
            };
            remedies.push(format!("  {at}: {}\n", c.remedy));
        }
    }
    if !remedies.is_empty() {
        out.push_str("\nremedies:\n");
        out.extend(remedies);
    }
    out
}

pub fn verify_report(r: &v1::VerifyReport) -> String {
    format!(
        "\nresult: {}  ({} passed, {} warned, {} failed, {} skipped; {})\n",
        check_status(r.status),
        r.pass_count,
        r.warn_count,
        r.fail_count,
        r.skip_count,
        duration(r.duration.as_ref()),
    )
}

pub fn check_category_list(categories: &[i32]) -> String {
    categories
        .iter()
        .map(|c| check_category(*c))
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------
// RPC errors
// ---------------------------------------------------------------------------

/// `provctl: CODE: message`, then any field and precondition violations.
pub fn status(status: &tonic::Status) -> String {
    let mut out = format!(
        "provctl: {}: {}\n",
        provd_proto::code_name(status.code()),
        status.message()
    );
    let details = status.get_error_details();
    if let Some(bad) = details.bad_request() {
        for v in &bad.field_violations {
            out.push_str(&format!("  {}: {}\n", v.field, v.description));
        }
    }
    if let Some(failure) = details.precondition_failure() {
        for v in &failure.violations {
            let what: Vec<&str> = [v.r#type.as_str(), v.subject.as_str()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            out.push_str(&format!("  {}: {}\n", what.join(" "), v.description));
        }
    }
    out
}

#[cfg(test)]
mod tests;
