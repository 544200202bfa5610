//! The agent side (not Graph): registration and heartbeat.
//!
//! Microsoft does not document agent registration as an API. Public
//! third-party research shows the agent sending a certificate signing
//! request to a registration service and receiving a client certificate;
//! the emulator models exactly that, "CSR in, certificate out", with its own
//! agent CA generated at start (`GET /_lab/agent-ca` returns it). The real
//! agent authenticates later calls with that certificate, and so does a
//! heartbeat here: the emulator's TLS asks for a client certificate (without
//! requiring one, so OAuth and Graph clients need none) and trusts only its
//! agent CA. `POST /_agent/{id}/heartbeat` then needs a certificate whose
//! common name is `{id}` (none: 401; another agent's: 403), and the body's
//! machine name must be the registered one (409).
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
use axum::extract::{ConnectInfo, Extension, Path, State};
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

/// The client certificate of the TLS connection a request came over, after
/// rustls verified it against the agent CA; `serve()` puts it into the
/// request extensions (absent when the client sent none).
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    /// The leaf's subject common name (the agent id for certificates this
    /// emulator issues); `None` if it has none.
    pub common_name: Option<String>,
}

impl PeerCertificate {
    pub fn from_leaf(der: &rustls_pki_types::CertificateDer<'_>) -> PeerCertificate {
        let common_name = x509_parser::parse_x509_certificate(der)
            .ok()
            .and_then(|(_, cert)| {
                cert.subject()
                    .iter_common_name()
                    .next()
                    .and_then(|cn| cn.as_str().ok())
                    .map(str::to_owned)
            });
        PeerCertificate { common_name }
    }
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

/// `POST /_agent/{id}/heartbeat` `{machineName}` over a connection that
/// presented the agent's client certificate (CN = `{id}`): the agent is
/// alive.
pub async fn heartbeat(
    State(app): State<App>,
    Path(id): Path<String>,
    peer: Option<Extension<PeerCertificate>>,
    body: Bytes,
) -> Response {
    let Some(Extension(peer)) = peer else {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "A client certificate is needed: present the certificate issued to the agent at registration.",
        );
    };
    if peer.common_name.as_deref() != Some(id.as_str()) {
        return graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            &format!("The client certificate was not issued to agent '{id}'."),
        );
    }
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
