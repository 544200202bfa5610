//! OAuth 2.0 device authorization grant (RFC 8628) with the Microsoft
//! identity platform's request and response shapes, and the `/_lab/device/*`
//! controls that stand in for the human signing in on another device. The
//! refresh-token grant and the token answer are in `tokens.rs`; which
//! resource a scope asks for, and whether the client may have it, in
//! `audience.rs` (checked when the approved code is redeemed).
//!
//! Shapes follow
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>
//! (`POST /{tenant}/oauth2/v2.0/devicecode`, `POST /{tenant}/oauth2/v2.0/token`).
//! Differences, on purpose: a denied request answers RFC 8628's
//! `access_denied` (Microsoft documents `authorization_declined`), and
//! polling faster than `interval` answers `slow_down` (RFC 8628 §3.5) while
//! the emulator keeps enforcing the original interval rather than its own
//! +5 s (a client must still add 5 s per the RFC).

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::audience::{allowed, audience_of, not_consented};
use crate::respond::{field, graph_error, graph_json, oauth_error, parse_urlencoded};
use crate::state::{
    App, Decision, DeviceCode, Grant, normalize_user_code, random_token, random_user_code,
};
use crate::tokens::{self, issue_tokens};

/// `grant_type` of a device code token request.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn known_tenant(app: &App, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(&app.settings.tenant)
        || tenant == "organizations"
        || tenant == "common"
}

fn unknown_tenant(tenant: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &format!("AADSTS90002: Tenant '{tenant}' not found (LAB emulator)."),
    )
}

/// `POST /{tenant}/oauth2/v2.0/devicecode` (form: `client_id`, `scope`).
pub async fn devicecode(
    State(app): State<App>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    if !known_tenant(&app, &tenant) {
        return unknown_tenant(&tenant);
    }
    let form = parse_urlencoded(&String::from_utf8_lossy(&body));
    let Some(client_id) = field(&form, "client_id").filter(|v| !v.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
        );
    };
    let Some(scope) = field(&form, "scope").filter(|v| !v.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'scope'.",
        );
    };
    let now = Instant::now();
    let settings = &app.settings;
    let code = DeviceCode {
        device_code: random_token(),
        user_code: random_user_code(),
        client_id: client_id.to_owned(),
        scope: scope.to_owned(),
        created: now,
        expires_at: now + settings.device_code_ttl,
        last_poll: None,
        decision: Decision::Pending,
    };
    let verification_uri = format!("{}/devicelogin", settings.base_url);
    let body = json!({
        "device_code": code.device_code,
        "user_code": code.user_code,
        "verification_uri": verification_uri,
        "expires_in": settings.device_code_ttl.as_secs(),
        "interval": settings.poll_interval.as_secs(),
        "message": format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {} to authenticate. (LAB tenant emulator)",
            code.user_code
        ),
    });
    let mut state = app.lock();
    state.device_codes.retain(|c| c.expires_at > now);
    state.issued_secrets.push(code.device_code.clone());
    state.device_codes.push(code);
    Json(body).into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token` (device code or refresh token grant).
pub async fn token(State(app): State<App>, Path(tenant): Path<String>, body: Bytes) -> Response {
    if !known_tenant(&app, &tenant) {
        return unknown_tenant(&tenant);
    }
    let form = parse_urlencoded(&String::from_utf8_lossy(&body));
    match field(&form, "grant_type") {
        Some(DEVICE_CODE_GRANT) => device_code_grant(&app, &form),
        Some("refresh_token") => tokens::refresh_grant(&app, &form),
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!(
                "AADSTS70003: The grant type '{other}' is not supported by this LAB emulator."
            ),
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
        ),
    }
}

fn device_code_grant(app: &App, form: &[(String, String)]) -> Response {
    let (Some(client_id), Some(device_code)) =
        (field(form, "client_id"), field(form, "device_code"))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain 'client_id' and 'device_code'.",
        );
    };
    let now = Instant::now();
    let mut state = app.lock();
    let Some(index) = state
        .device_codes
        .iter()
        .position(|c| c.device_code == device_code)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "AADSTS70000: The provided device code is unknown or was already redeemed.",
        );
    };
    let code = &mut state.device_codes[index];
    if code.client_id != client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "AADSTS70000: The device code was issued to a different client_id.",
        );
    }
    if now >= code.expires_at {
        state.device_codes.remove(index);
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "AADSTS70020: The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        );
    }
    let too_early = code
        .last_poll
        .is_some_and(|last| now.saturating_duration_since(last) < app.settings.poll_interval);
    code.last_poll = Some(now);
    if too_early {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "slow_down",
            "Polling faster than the interval; add 5 seconds to the interval (RFC 8628 section 3.5).",
        );
    }
    match code.decision.clone() {
        Decision::Pending => oauth_error(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        ),
        Decision::Denied => {
            state.device_codes.remove(index);
            oauth_error(
                StatusCode::BAD_REQUEST,
                "access_denied",
                "AADSTS70000: The end user denied the authorization request.",
            )
        }
        Decision::Approved { user } => {
            let code = state.device_codes.remove(index);
            let audience = audience_of(&code.scope, &app.settings.graph_audience);
            // The person signed in, but the tenant gives this client no
            // token for this resource: the sign-in ends here.
            if !allowed(&app.settings, &code.client_id, &audience) {
                return not_consented(&code.client_id, &audience);
            }
            let grant = Grant {
                user,
                client_id: code.client_id,
                scope: code.scope,
                audience,
                tenant: app.settings.tenant.clone(),
            };
            drop(state);
            issue_tokens(app, grant)
        }
    }
}

/// `GET /devicelogin`: where a human would sign in. The emulator has no
/// sign-in; it points at the lab controls.
pub async fn devicelogin() -> Html<&'static str> {
    Html(
        "<!doctype html><title>LAB tenant emulator</title>\
         <p>This is the provd LAB tenant emulator, not Microsoft's service. \
         Approve a code with <code>POST /_lab/device/approve {\"user_code\":\"ABCD-EFGH\",\
         \"user\":\"admin@lab.example.test\"}</code> or deny it with \
         <code>POST /_lab/device/deny</code>.</p>",
    )
}

#[derive(Debug, Deserialize)]
pub struct Decide {
    user_code: String,
    #[serde(default)]
    user: Option<String>,
}

/// Default user for `/_lab/device/approve`.
pub const DEFAULT_USER: &str = "admin@lab.example.test";

/// `POST /_lab/device/approve` `{user_code, user}`: the user signed in and
/// consented.
pub async fn lab_approve(State(app): State<App>, body: Bytes) -> Response {
    decide(&app, &body, true)
}

/// `POST /_lab/device/deny` `{user_code}`: the user declined.
pub async fn lab_deny(State(app): State<App>, body: Bytes) -> Response {
    decide(&app, &body, false)
}

fn decide(app: &App, body: &[u8], approve: bool) -> Response {
    let request: Decide = match graph_json(body) {
        Ok(r) => r,
        Err(response) => return response.into_response(),
    };
    let wanted = normalize_user_code(&request.user_code);
    let now = Instant::now();
    let mut state = app.lock();
    let Some(code) = state
        .device_codes
        .iter_mut()
        .find(|c| normalize_user_code(&c.user_code) == wanted && c.expires_at > now)
    else {
        return graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "No pending device code with user code {:?}.",
                request.user_code
            ),
        );
    };
    if code.decision != Decision::Pending {
        return graph_error(
            StatusCode::CONFLICT,
            "Conflict",
            "The user code was already approved or denied.",
        );
    }
    let user = request.user.unwrap_or_else(|| DEFAULT_USER.to_owned());
    code.decision = if approve {
        Decision::Approved { user: user.clone() }
    } else {
        Decision::Denied
    };
    Json(json!({
        "user_code": code.user_code,
        "decision": if approve { "approved" } else { "denied" },
        "user": if approve { Some(user) } else { None },
    }))
    .into_response()
}

/// `GET /_lab/device/pending`: the device codes nobody has decided on yet.
pub async fn lab_pending(State(app): State<App>) -> Response {
    let now = Instant::now();
    let state = app.lock();
    let value: Vec<_> = state
        .device_codes
        .iter()
        .filter(|c| c.decision == Decision::Pending && c.expires_at > now)
        .map(|c| {
            json!({
                "user_code": c.user_code,
                "client_id": c.client_id,
                "scope": c.scope,
                "age_secs": now.saturating_duration_since(c.created).as_secs(),
                "expires_in": c.expires_at.saturating_duration_since(now).as_secs(),
            })
        })
        .collect();
    Json(json!({ "value": value })).into_response()
}
