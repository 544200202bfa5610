//! `/_lab/*`: controls that exist only in this LAB emulator (they have no
//! counterpart in Microsoft's service): creating published resources, the
//! agent CA, and fault injection for client retry tests.
//!
//! Fault bodies use the Graph error shape
//! (<https://learn.microsoft.com/graph/errors>) with `Retry-After` as Graph
//! sends on throttling
//! (<https://learn.microsoft.com/graph/throttling>); on `/oauth2/` paths
//! they use the OAuth error shape instead.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::publish::domain_name;
use crate::respond::{graph_code_for, graph_error, graph_json, oauth_error};
use crate::state::{App, Fault};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    domain: String,
}

/// `POST /_lab/published-resources` `{domain}`: creates a published
/// resource for the AD domain plus an agent group, and links every
/// registered agent to the group — by hand what an agent reporting the
/// domain in its heartbeat does (`publish.rs`); kept for tests that need a
/// published resource without an agent.
pub async fn create_resource(State(app): State<App>, body: Bytes) -> Response {
    let request: NewResource = match graph_json(&body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let Some(domain) = domain_name(&request.domain) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "domain must be a DNS domain name.",
        );
    };
    let mut state = app.lock();
    if state.resource(&domain).is_some() {
        return graph_error(
            StatusCode::CONFLICT,
            "Conflict",
            &format!("A published resource for {domain} already exists."),
        );
    }
    let agent_ids = state.agents.iter().map(|a| a.id.clone()).collect();
    let (resource, group) = state.add_resource(&domain, agent_ids);
    let body = json!({
        "id": resource.id,
        "displayName": resource.display_name,
        "resourceName": resource.resource_name,
        "publishingType": "provisioning",
        "agentGroups": [{
            "id": group.id,
            "displayName": group.display_name,
            "isDefault": group.is_default,
            "publishingType": "provisioning",
        }],
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `GET /_lab/issued-secrets`: every device code, access token and refresh
/// token issued so far — what must never appear in a client's logs.
pub async fn issued_secrets(State(app): State<App>) -> Response {
    Json(json!({ "secrets": app.lock().issued_secrets.clone() })).into_response()
}

/// `GET /_lab/agent-ca`: the PEM certificate of the agent CA.
pub async fn agent_ca(State(app): State<App>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-pem-file"),
        )],
        app.agent_ca.cert_pem.clone(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCertificates {
    /// Seconds from issue to notAfter; negative: already expired. `null`
    /// restores the default (180 days).
    validity_seconds: Option<i64>,
}

/// `POST /_lab/agent-certificates` `{validity_seconds}`: the validity of the
/// agent certificates registrations issue from now on (tests of expiry).
pub async fn agent_certificates(State(app): State<App>, body: Bytes) -> Response {
    let request: AgentCertificates = match graph_json(&body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    app.lock().agent_cert_validity = request.validity_seconds.map(time::Duration::seconds);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFault {
    path_prefix: String,
    status: u16,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    retry_after_secs: Option<u64>,
}

fn one() -> u32 {
    1
}

/// `POST /_lab/faults` `{path_prefix, status, count, retry_after_secs}`.
pub async fn add_fault(State(app): State<App>, body: Bytes) -> Response {
    let request: NewFault = match graph_json(&body) {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    if !(400..=599).contains(&request.status) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "status must be an HTTP error status (400-599).",
        );
    }
    if !request.path_prefix.starts_with('/') || request.path_prefix.starts_with("/_lab") {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "path_prefix must start with '/' and must not cover /_lab.",
        );
    }
    let fault = Fault {
        path_prefix: request.path_prefix,
        status: request.status,
        remaining: request.count,
        retry_after_secs: request.retry_after_secs,
    };
    let body = json!({
        "path_prefix": fault.path_prefix,
        "status": fault.status,
        "count": fault.remaining,
        "retry_after_secs": fault.retry_after_secs,
    });
    app.lock().faults.push(fault);
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `DELETE /_lab/faults`: drops every pending fault.
pub async fn clear_faults(State(app): State<App>) -> StatusCode {
    app.lock().faults.clear();
    StatusCode::NO_CONTENT
}

/// Middleware: answers the next matching request with an injected fault.
pub async fn inject_faults(State(app): State<App>, request: Request<Body>, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let fault = if path.starts_with("/_lab/") {
        None
    } else {
        let mut state = app.lock();
        let hit = state
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.starts_with(&f.path_prefix))
            .map(|f| {
                f.remaining -= 1;
                f.clone()
            });
        state.faults.retain(|f| f.remaining > 0);
        hit
    };
    let Some(fault) = fault else {
        return next.run(request).await;
    };
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    tracing::info!(%path, status = status.as_u16(), "injected fault");
    let message = format!("Injected by the LAB tenant emulator ({status}).");
    let mut response = if path.contains("/oauth2/") {
        oauth_error(status, "temporarily_unavailable", &message)
    } else {
        graph_error(status, graph_code_for(status), &message)
    };
    if let Some(secs) = fault.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
