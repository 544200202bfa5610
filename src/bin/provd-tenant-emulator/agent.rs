//! The agent side (not Graph): registration and heartbeat.
//!
//! Microsoft does not document agent registration as an API. Public
//! third-party research shows the agent sending a certificate signing
//! request to a registration service and receiving a client certificate;
//! the emulator models exactly that, "CSR in, certificate out", with its own
//! agent CA generated at start (`GET /_lab/agent-ca` returns it). The real
//! agent authenticates later calls with that certificate; the emulator does
//! not ask for client certificates, so a heartbeat is identified by the
//! agent id in the path and checked against the registered machine name.
//!
//! Agent status semantics (active/inactive) follow
//! <https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-install>
//! and the `onPremisesAgent.status` property
//! (<https://learn.microsoft.com/graph/api/resources/onpremisesagent?view=graph-rest-beta>),
//! with a configurable `--inactive-after` instead of about an hour.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::graph::authenticate;
use crate::respond::{graph_error, graph_json};
use crate::state::{Agent, App};

/// Upper bound for a machine name (a DNS host name).
const MAX_MACHINE_NAME: usize = 253;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Register {
    machine_name: String,
    csr: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    machine_name: String,
}

fn valid_machine_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MACHINE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// `POST /_agent/register` `{machineName, csr}` with a bearer token →
/// `{agentId, certificate}`.
pub async fn register(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let grant = match authenticate(&app, &headers) {
        Ok(grant) => grant,
        Err(r) => return r.into_response(),
    };
    let request: Register = match graph_json(&body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    if !valid_machine_name(&request.machine_name) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "machineName must be a host name (letters, digits, '-', '.').",
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    let certificate = match app.agent_ca.sign_csr(&request.csr, &id) {
        Ok(pem) => pem,
        Err(e) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Cannot use the certificate signing request: {e}"),
            );
        }
    };
    app.lock().agents.push(Agent {
        id: id.clone(),
        machine_name: request.machine_name,
        external_ip: peer.ip(),
        // Registering is the agent's first contact.
        last_seen: Instant::now(),
        password_writeback: false,
    });
    tracing::info!(agent = %id, user = %grant.user, "agent registered");
    (
        StatusCode::CREATED,
        Json(json!({ "agentId": id, "certificate": certificate })),
    )
        .into_response()
}

/// `POST /_agent/{id}/heartbeat` `{machineName}`: the agent is alive.
pub async fn heartbeat(State(app): State<App>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: Heartbeat = match graph_json(&body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let mut state = app.lock();
    let Some(agent) = state.agents.iter_mut().find(|a| a.id == id) else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Agent '{id}' is not registered."),
        );
    };
    if !agent
        .machine_name
        .eq_ignore_ascii_case(&request.machine_name)
    {
        return graph_error(
            StatusCode::CONFLICT,
            "Conflict",
            "machineName does not match the registered agent.",
        );
    }
    agent.last_seen = Instant::now();
    StatusCode::NO_CONTENT.into_response()
}
