//! The token answer and the refresh-token grant.
//!
//! Shapes: <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>
//! (successful authentication response) and
//! <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token>:
//! - the refresh request's optional `scope` chooses the resource; without
//!   it the token is for the scopes first granted. A refresh token works
//!   for any resource the client may have (`audience.rs`); a refusal
//!   leaves the refresh token usable;
//! - `id_token` only when the scope asked for `openid`; Microsoft's
//!   examples show an unsigned one (`{"typ":"JWT","alg":"none"}`), and so
//!   does the emulator: it holds no signing key, and the documentation
//!   says clients must not rely on it for authorization. Claims from
//!   <https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference>:
//!   `aud` (the client), `iss`, `iat`, `nbf`, `exp`, `tid`, `oid`, `sub`,
//!   `preferred_username`, `name`, `ver`.
//!
//! Access and refresh tokens are opaque random strings: the emulator keeps
//! what each was issued for. Refresh tokens rotate (a used one is spent),
//! stricter than Entra, which leaves the old one valid: clients must keep
//! the newest.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::audience::{allowed, audience_of, not_consented, wants_id_token};
use crate::respond::{field, oauth_error};
use crate::state::{AccessToken, App, Grant, random_token};

/// `grant_type=refresh_token` (form: `client_id`, `refresh_token`,
/// optional `scope`).
pub fn refresh_grant(app: &App, form: &[(String, String)]) -> Response {
    let (Some(client_id), Some(refresh_token)) =
        (field(form, "client_id"), field(form, "refresh_token"))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain 'client_id' and 'refresh_token'.",
        );
    };
    let mut state = app.lock();
    let Some(first) = state.refresh_tokens.get(refresh_token).cloned() else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "AADSTS9002313: Invalid request. The refresh token is unknown or was already used.",
        );
    };
    if first.client_id != client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "AADSTS70000: The refresh token was issued to a different client_id.",
        );
    }
    let grant = match field(form, "scope").filter(|s| !s.trim().is_empty()) {
        None => first,
        Some(scope) => Grant {
            audience: audience_of(scope, &app.settings.graph_audience),
            scope: scope.to_owned(),
            ..first
        },
    };
    if !allowed(&app.settings, &grant.client_id, &grant.audience) {
        return not_consented(&grant.client_id, &grant.audience);
    }
    state.refresh_tokens.remove(refresh_token);
    drop(state);
    issue_tokens(app, grant)
}

/// The token answer for `grant`; remembers the tokens for Graph and the
/// registration service, and as issued secrets.
pub fn issue_tokens(app: &App, grant: Grant) -> Response {
    let access_token = random_token();
    let refresh_token = random_token();
    let ttl = app.settings.token_ttl;
    let mut body = json!({
        "token_type": "Bearer",
        "scope": grant.scope,
        "expires_in": ttl.as_secs(),
        "ext_expires_in": ttl.as_secs(),
        "access_token": access_token,
        "refresh_token": refresh_token,
    });
    let mut state = app.lock();
    if wants_id_token(&grant.scope) {
        let oid = state.oid_of(&grant.user);
        body["id_token"] = json!(id_token(app, &grant, &oid));
    }
    let now = Instant::now();
    state.issued_secrets.push(access_token.clone());
    state.issued_secrets.push(refresh_token.clone());
    state.access_tokens.retain(|_, t| t.expires_at > now);
    state.access_tokens.insert(
        access_token,
        AccessToken {
            grant: grant.clone(),
            expires_at: now + ttl,
        },
    );
    state.refresh_tokens.insert(refresh_token, grant);
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// An unsigned JWT: header and claims base64url-encoded, empty signature.
fn id_token(app: &App, grant: &Grant, oid: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = json!({ "typ": "JWT", "alg": "none" });
    let claims = json!({
        "aud": grant.client_id,
        "iss": format!("{}/{}/v2.0", app.settings.base_url, grant.tenant),
        "iat": now,
        "nbf": now,
        "exp": now + app.settings.token_ttl.as_secs(),
        "tid": grant.tenant,
        "oid": oid,
        "sub": oid,
        "preferred_username": grant.user,
        "name": grant.user,
        "ver": "2.0",
    });
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
