//! LAB STAND-IN controls for cloud sync, under `/_lab/sync/` (no real
//! tenant has them; like `/_lab/` in `lab.rs`, they need no token):
//! - `POST /_lab/sync/user-count {"agentId","domain","users"}`: what the
//!   agent's heartbeat reports as `domains[].userCount`, set by hand for
//!   hermetic tests;
//! - `POST /_lab/sync/quarantine {"domain","code"}` and
//!   `DELETE /_lab/sync/quarantine?domain=…`: a quarantine code the next
//!   cycles report for the domain's jobs (e.g.
//!   `AzureActiveDirectoryInvalidCredential`, which the emulator cannot
//!   cause otherwise; codes:
//!   <https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/reference-error-codes>);
//! - `GET /_lab/sync/secrets-seen` `{"values":[…]}`: every secret value
//!   ever PUT, for tests that scan provd's output for them;
//! - `GET /_lab/sync/calls` `{"calls":["METHOD /path",…]}`: the sync calls
//!   made (`record_calls` in `mod.rs`), e.g. to show no job was deleted.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::publish::domain_name;
use crate::respond::{GraphError, bad_request, field, graph_json, not_found, parse_urlencoded};
use crate::state::App;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserCount {
    agent_id: String,
    domain: String,
    users: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabQuarantine {
    domain: String,
    code: String,
}

fn domain(text: &str) -> Result<String, GraphError> {
    domain_name(text).ok_or_else(|| bad_request("domain must be a DNS domain name."))
}

/// `POST /_lab/sync/user-count` → 204; the agent must be registered.
pub async fn user_count(State(app): State<App>, body: Bytes) -> Result<StatusCode, GraphError> {
    let request: UserCount = graph_json(&body)?;
    let domain = domain(&request.domain)?;
    let mut state = app.lock();
    if !state.agents.iter().any(|a| a.id == request.agent_id) {
        return Err(not_found("onPremisesAgent", &request.agent_id));
    }
    state
        .sync
        .user_counts
        .insert((request.agent_id, domain), request.users);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_lab/sync/quarantine` → 204.
pub async fn quarantine(State(app): State<App>, body: Bytes) -> Result<StatusCode, GraphError> {
    let request: LabQuarantine = graph_json(&body)?;
    let domain = domain(&request.domain)?;
    let code = request.code.trim();
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad_request(
            "code must be an error code (letters and digits).",
        ));
    }
    app.lock()
        .sync
        .lab_quarantines
        .insert(domain, code.to_owned());
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /_lab/sync/quarantine?domain=…` → 204 (also when none was set).
pub async fn clear_quarantine(
    State(app): State<App>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, GraphError> {
    let pairs = parse_urlencoded(query.as_deref().unwrap_or(""));
    let domain = domain(field(&pairs, "domain").unwrap_or(""))?;
    app.lock().sync.lab_quarantines.remove(&domain);
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /_lab/sync/secrets-seen`.
pub async fn secrets_seen(State(app): State<App>) -> Json<Value> {
    Json(json!({ "values": app.lock().sync.secrets_seen }))
}

/// `GET /_lab/sync/calls`.
pub async fn calls(State(app): State<App>) -> Json<Value> {
    Json(json!({ "calls": app.lock().sync.calls }))
}
