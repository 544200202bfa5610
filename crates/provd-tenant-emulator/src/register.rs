//! `POST /register/RegisterConnector`: the connector framework's agent
//! registration, which `Connect-AADCloudSyncAzureAD` performs on a real
//! server.
//!
//! Microsoft documents the token, not this call. Documented
//! (<https://learn.microsoft.com/entra/global-secure-access/how-to-register-connector-powershell>):
//! an unattended connector registration takes a user token for
//! `https://proxy.cloudwebappproxy.net/registerapp/user_impersonation`
//! (public client `55747057-9b5d-4bd4-b387-abf52a8bd489`) and the tenant
//! id. The request and answer below follow PUBLIC THIRD-PARTY RESEARCH,
//! not Microsoft documentation (AADInternals, `MSAppProxy.ps1`
//! `Register-ProxyAgent`: `POST
//! https://{tenantId}.registration.msappproxy.net/register/RegisterConnector`,
//! `application/xml`):
//! - request `RegistrationRequest` (data contract namespace
//!   `…/Microsoft.ApplicationProxy.Common.Registration`) with
//!   `Base64Csr` (a PKCS#10 CSR, DER, base64), `AuthenticationToken` (the
//!   bearer token, in the body), `Feature`, `FeatureString` (`SyncFabric`
//!   for the provisioning agent), `RegistrationRequestSettings` holding
//!   `SystemSettings`/`MachineName`, `TenantId`, `UserAgent`;
//! - answer `RegistrationResult` with `Certificate` (base64), `ErrorMessage`
//!   and `IsSuccessful`; the research reads `IsSuccessful` rather than the
//!   HTTP status, so the emulator answers a refusal 200 with
//!   `IsSuccessful` false and the reason (400 only for a body that is no
//!   `RegistrationRequest`: the status a real service gives is unknown).
//!
//! The emulator checks what the documented token implies: a token it issued
//! for the registration audience (`--registration-audience`), not expired,
//! for the tenant `TenantId` names. Feature strings and the user agent are
//! not checked. The certificate is signed by the agent CA with CN = the new
//! agent id (the research shows the real one naming the tenant, with the
//! agent id in an extension; the emulator's heartbeat authenticates by CN).

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::agent::valid_machine_name;
use crate::state::{Agent, App, Grant};
use crate::xml::{element_text, escape};

const NAMESPACE: &str =
    "http://schemas.datacontract.org/2004/07/Microsoft.ApplicationProxy.Common.Registration";

/// `POST /register/RegisterConnector` (XML `RegistrationRequest`).
pub async fn register_connector(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body);
    if element_text(&text, "RegistrationRequest").is_none() {
        return answer(
            StatusCode::BAD_REQUEST,
            Err("The body is not a RegistrationRequest.".into()),
        );
    }
    let outcome = register(&app, &text, peer);
    answer(StatusCode::OK, outcome)
}

/// The certificate (DER) for a valid request, or why not.
fn register(app: &App, request: &str, peer: SocketAddr) -> Result<Vec<u8>, String> {
    let field = |name: &str| element_text(request, name).filter(|v| !v.is_empty());
    let token = field("AuthenticationToken").ok_or("AuthenticationToken is missing.")?;
    let grant = token_grant(app, &token)?;
    let tenant = field("TenantId").ok_or("TenantId is missing.")?;
    if !tenant.eq_ignore_ascii_case(&grant.tenant) {
        return Err(format!(
            "The authentication token was issued for tenant '{}', not for TenantId '{tenant}'.",
            grant.tenant
        ));
    }
    let machine_name = field("MachineName").ok_or("MachineName is missing.")?;
    if !valid_machine_name(&machine_name) {
        return Err("MachineName must be a host name (letters, digits, '-', '.').".into());
    }
    let csr = field("Base64Csr").ok_or("Base64Csr is missing.")?;
    let csr: String = csr.chars().filter(|c| !c.is_whitespace()).collect();
    let csr = STANDARD
        .decode(csr)
        .map_err(|e| format!("Base64Csr is not base64: {e}"))?;
    let id = uuid::Uuid::new_v4().to_string();
    let validity = app
        .lock()
        .agent_cert_validity
        .unwrap_or(crate::state::AGENT_CERT_VALIDITY);
    let certificate = app
        .agent_ca
        .sign_csr_der(csr, &id, validity)
        .map_err(|e| format!("Cannot use the certificate signing request: {e}"))?;
    app.lock().agents.push(Agent {
        id: id.clone(),
        machine_name,
        external_ip: peer.ip(),
        // Registering is the agent's first contact.
        last_seen: Instant::now(),
        password_writeback: false,
    });
    tracing::info!(agent = %id, user = %grant.user, "connector registered");
    Ok(certificate)
}

/// What the body's token was issued for, if the registration service
/// accepts it (the token itself is never echoed).
fn token_grant(app: &App, token: &str) -> Result<Grant, String> {
    let state = app.lock();
    let Some(issued) = state.access_tokens.get(token) else {
        return Err("The authentication token is not valid.".into());
    };
    if issued.expires_at <= Instant::now() {
        return Err("The authentication token has expired.".into());
    }
    let wanted = &app.settings.registration_audience;
    if &issued.grant.audience != wanted {
        return Err(format!(
            "The authentication token is for audience '{}', not for the registration service \
             ('{wanted}').",
            issued.grant.audience
        ));
    }
    Ok(issued.grant.clone())
}

/// A `RegistrationResult`.
fn answer(status: StatusCode, outcome: Result<Vec<u8>, String>) -> Response {
    let (certificate, error, ok) = match outcome {
        Ok(der) => (
            format!("<Certificate>{}</Certificate>", STANDARD.encode(der)),
            r#"<ErrorMessage i:nil="true"/>"#.to_owned(),
            true,
        ),
        Err(message) => (
            r#"<Certificate i:nil="true"/>"#.to_owned(),
            format!("<ErrorMessage>{}</ErrorMessage>", escape(&message)),
            false,
        ),
    };
    let body = format!(
        r#"<RegistrationResult xmlns="{NAMESPACE}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">{certificate}{error}<IsSuccessful>{ok}</IsSuccessful></RegistrationResult>"#
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}
