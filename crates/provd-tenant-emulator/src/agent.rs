//! The agent side (not Graph): heartbeats and the agent's own writeback
//! call. Registration is `POST /register/RegisterConnector`, the connector
//! framework's (`register.rs`), which signs with the emulator's agent CA
//! generated at start (`GET /_lab/agent-ca`). The real
//! agent authenticates later calls with that certificate, and so do the
//! heartbeat and the writeback call here: the emulator's TLS asks for a
//! client certificate (without requiring one, so OAuth and Graph clients
//! need none) and trusts only its agent CA. `/_agent/{id}/…` then needs a
//! certificate whose common name is `{id}` (none: 401; another agent's:
//! 403); a heartbeat's machine name must be the registered one (409).
//!
//! Agent status semantics (active/inactive) follow
//! <https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-install>
//! and the `onPremisesAgent.status` property
//! (<https://learn.microsoft.com/graph/api/resources/onpremisesagent?view=graph-rest-beta>),
//! with a configurable `--inactive-after` instead of about an hour. How an
//! agent reports its domains, and how it sets the writeback flag, are not
//! documented: the heartbeat carries the domains (and, for the sync
//! engine, the users the agent counted in each), and `PUT
//! /_agent/{id}/passwordWriteback` the flag (both modelled).

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::publish::domain_name;
use crate::respond::{GraphError, graph_error, graph_json};
use crate::state::App;

/// Upper bound for a machine name (a DNS host name).
const MAX_MACHINE_NAME: usize = 253;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    machine_name: String,
    /// The AD domains the agent serves (absent: no change). Other fields
    /// of an entry (e.g. the preferred DCs a lab agent reports) are not
    /// the tenant's business and are ignored.
    #[serde(default)]
    domains: Option<Vec<ReportedDomain>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedDomain {
    name: String,
    /// The users the agent counted in the domain (the lab agent's LDAP
    /// count; absent: the last count stands). The sync engine imports it
    /// (`sync/engine.rs`).
    #[serde(default)]
    user_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Writeback {
    enabled: bool,
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

/// A DNS host name.
pub fn valid_machine_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MACHINE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// The request came over a TLS connection that presented the certificate
/// issued to agent `id` (CN = `{id}`): otherwise 401 (no certificate) or
/// 403 (another agent's).
fn agent_peer(peer: Option<Extension<PeerCertificate>>, id: &str) -> Result<(), GraphError> {
    let Some(Extension(peer)) = peer else {
        return Err(GraphError {
            status: StatusCode::UNAUTHORIZED,
            code: "InvalidAuthenticationToken",
            message: "A client certificate is needed: present the certificate issued to the agent at registration.".into(),
        });
    };
    if peer.common_name.as_deref() != Some(id) {
        return Err(GraphError {
            status: StatusCode::FORBIDDEN,
            code: "Authorization_RequestDenied",
            message: format!("The client certificate was not issued to agent '{id}'."),
        });
    }
    Ok(())
}

/// The body of a request that came over agent `id`'s own certificate.
fn agent_request<T: serde::de::DeserializeOwned>(
    peer: Option<Extension<PeerCertificate>>,
    id: &str,
    body: &[u8],
) -> Result<T, GraphError> {
    agent_peer(peer, id)?;
    graph_json(body)
}

fn unknown_agent(id: &str) -> Response {
    graph_error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!("Agent '{id}' is not registered."),
    )
}

/// `POST /_agent/{id}/heartbeat` `{machineName, domains?: [{name,
/// userCount?}]}` over a connection that presented the agent's client
/// certificate: the agent is alive, and serves the domains it names (each
/// gets its published resource and agent group, `publish.rs`), with the
/// users it counted there.
pub async fn heartbeat(
    State(app): State<App>,
    Path(id): Path<String>,
    peer: Option<Extension<PeerCertificate>>,
    body: Bytes,
) -> Response {
    let request: Heartbeat = match agent_request(peer, &id, &body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let domains = match request
        .domains
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|d| Some((domain_name(&d.name)?, d.user_count)))
        .collect::<Option<Vec<_>>>()
    {
        Some(domains) => domains,
        None => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "domains[].name must be DNS domain names.",
            );
        }
    };
    let mut state = app.lock();
    let Some(agent) = state.agents.iter_mut().find(|a| a.id == id) else {
        return unknown_agent(&id);
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
    for (domain, user_count) in domains {
        state.serve_domain(&id, &domain);
        if let Some(users) = user_count {
            state.sync.user_counts.insert((id.clone(), domain), users);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `PUT /_agent/{id}/passwordWriteback` `{"enabled": bool}` over the
/// agent's own client certificate: what the agent does when
/// `Set-AADCloudSyncPasswordWritebackConfiguration` runs on its host. Not
/// documented by Microsoft (modelled, like the Graph read of the flag in
/// `graph.rs`).
pub async fn put_writeback(
    State(app): State<App>,
    Path(id): Path<String>,
    peer: Option<Extension<PeerCertificate>>,
    body: Bytes,
) -> Response {
    let request: Writeback = match agent_request(peer, &id, &body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let mut state = app.lock();
    let Some(agent) = state.agents.iter_mut().find(|a| a.id == id) else {
        return unknown_agent(&id);
    };
    agent.password_writeback = request.enabled;
    Json(json!({ "enabled": agent.password_writeback })).into_response()
}
