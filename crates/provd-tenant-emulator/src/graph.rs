//! Microsoft Graph (beta) provisioning agents, agent groups and published
//! resources, behind `Authorization: Bearer <token>`.
//!
//! Documented shapes:
//! - <https://learn.microsoft.com/graph/api/onpremisesagent-list?view=graph-rest-beta>
//!   (`GET /beta/onPremisesPublishingProfiles/provisioning/agents?$expand=agentGroups`)
//! - <https://learn.microsoft.com/graph/api/resources/onpremisesagent?view=graph-rest-beta>
//! - <https://learn.microsoft.com/graph/api/resources/onpremisesagentgroup?view=graph-rest-beta>
//! - <https://learn.microsoft.com/graph/api/resources/publishedresource?view=graph-rest-beta>
//! - errors: <https://learn.microsoft.com/graph/errors>
//!
//! Not documented by Microsoft, modelled here: a read of the password
//! writeback flag that `Set-AADCloudSyncPasswordWritebackConfiguration`
//! sets (the agent sets it: `agent.rs`). No Graph endpoint for it was
//! found, so the emulator invents `GET .../agents/{id}/passwordWriteback`
//! `{"enabled": bool}` (read only); clients must keep that endpoint
//! configurable.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::respond::{self, GraphError, field, parse_urlencoded};
use crate::state::{Agent, AgentGroup, App, Grant, PublishedResource, State as Tenant};

const CONTEXT_BASE: &str = "https://graph.microsoft.com/beta/$metadata";

/// Checks `Authorization: Bearer <token>` against the issued access tokens:
/// known, unexpired, and issued for `audience` (Graph answers a token for
/// another resource with 401 "Access token validation failure. Invalid
/// audience.").
pub fn authenticate(app: &App, headers: &HeaderMap, audience: &str) -> Result<Grant, GraphError> {
    let invalid = |message: &str| GraphError {
        status: StatusCode::UNAUTHORIZED,
        code: "InvalidAuthenticationToken",
        message: message.to_owned(),
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(invalid("Access token is empty."));
    };
    let state = app.lock();
    match state.access_tokens.get(token) {
        Some(t) if t.expires_at <= Instant::now() => {
            Err(invalid("Lifetime validation failed, the token is expired."))
        }
        Some(t) if t.grant.audience != audience => Err(invalid(
            "Access token validation failure. Invalid audience.",
        )),
        Some(t) => Ok(t.grant.clone()),
        None => Err(invalid("Access token validation failure. Unknown token.")),
    }
}

/// [`authenticate`] for the Graph audience.
pub fn graph_caller(app: &App, headers: &HeaderMap) -> Result<Grant, GraphError> {
    authenticate(app, headers, &app.settings.graph_audience)
}

/// The `$expand` entries of a query string (comma separated).
fn expands(query: Option<&str>) -> Vec<String> {
    let pairs = parse_urlencoded(query.unwrap_or(""));
    field(&pairs, "$expand")
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default()
}

fn agent_json(app: &App, tenant: &Tenant, agent: &Agent, expand_groups: bool) -> Value {
    let mut value = json!({
        "id": agent.id,
        "machineName": agent.machine_name,
        "externalIp": agent.external_ip.to_string(),
        "status": agent.status(Instant::now(), app.settings.inactive_after),
        "supportedPublishingTypes": ["provisioning"],
    });
    if expand_groups {
        value["agentGroups"] = tenant
            .groups
            .iter()
            .filter(|g| g.agent_ids.contains(&agent.id))
            .map(group_json)
            .collect();
    }
    value
}

fn group_json(group: &AgentGroup) -> Value {
    json!({
        "id": group.id,
        "displayName": group.display_name,
        "isDefault": group.is_default,
        "publishingType": "provisioning",
    })
}

fn resource_json(resource: &PublishedResource) -> Value {
    json!({
        "id": resource.id,
        "displayName": resource.display_name,
        "resourceName": resource.resource_name,
        "publishingType": "provisioning",
    })
}

fn collection(entity_set: &str, value: Vec<Value>) -> Response {
    Json(json!({
        "@odata.context": format!("{CONTEXT_BASE}#onPremisesPublishingProfiles('provisioning')/{entity_set}"),
        "value": value,
    }))
    .into_response()
}

fn not_found(what: &str, id: &str) -> Response {
    respond::not_found(what, id).into_response()
}

/// `GET .../provisioning/agents[?$expand=agentGroups]`.
pub async fn list_agents(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = graph_caller(&app, &headers) {
        return r.into_response();
    }
    let expand = expands(query.as_deref()).iter().any(|e| e == "agentGroups");
    let state = app.lock();
    let value = state
        .agents
        .iter()
        .map(|a| agent_json(&app, &state, a, expand))
        .collect();
    collection("agents", value)
}

/// `GET .../provisioning/agents/{id}[?$expand=agentGroups]`.
pub async fn get_agent(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = graph_caller(&app, &headers) {
        return r.into_response();
    }
    let expand = expands(query.as_deref()).iter().any(|e| e == "agentGroups");
    let state = app.lock();
    match state.agents.iter().find(|a| a.id == id) {
        Some(agent) => {
            let mut value = agent_json(&app, &state, agent, expand);
            value["@odata.context"] = json!(format!(
                "{CONTEXT_BASE}#onPremisesPublishingProfiles('provisioning')/agents/$entity"
            ));
            Json(value).into_response()
        }
        None => not_found("agent", &id),
    }
}

/// `GET .../provisioning/agentGroups[?$expand=agents,publishedResources]`.
pub async fn list_groups(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = graph_caller(&app, &headers) {
        return r.into_response();
    }
    let expand = expands(query.as_deref());
    let state = app.lock();
    let value = state
        .groups
        .iter()
        .map(|g| {
            let mut value = group_json(g);
            if expand.iter().any(|e| e == "agents") {
                value["agents"] = state
                    .agents
                    .iter()
                    .filter(|a| g.agent_ids.contains(&a.id))
                    .map(|a| agent_json(&app, &state, a, false))
                    .collect();
            }
            if expand.iter().any(|e| e == "publishedResources") {
                value["publishedResources"] = state
                    .resources
                    .iter()
                    .filter(|r| r.group_ids.contains(&g.id))
                    .map(resource_json)
                    .collect();
            }
            value
        })
        .collect();
    collection("agentGroups", value)
}

/// `GET .../provisioning/publishedResources[?$expand=agentGroups]`.
pub async fn list_resources(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = graph_caller(&app, &headers) {
        return r.into_response();
    }
    let expand = expands(query.as_deref()).iter().any(|e| e == "agentGroups");
    let state = app.lock();
    let value = state
        .resources
        .iter()
        .map(|r| {
            let mut value = resource_json(r);
            if expand {
                value["agentGroups"] = state
                    .groups
                    .iter()
                    .filter(|g| r.group_ids.contains(&g.id))
                    .map(group_json)
                    .collect();
            }
            value
        })
        .collect();
    collection("publishedResources", value)
}

/// `GET .../provisioning/agents/{id}/passwordWriteback` (modelled, see the
/// module comment).
pub async fn get_writeback(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = graph_caller(&app, &headers) {
        return r.into_response();
    }
    let state = app.lock();
    match state.agents.iter().find(|a| a.id == id) {
        Some(agent) => Json(json!({ "enabled": agent.password_writeback })).into_response(),
        None => not_found("agent", &id),
    }
}
