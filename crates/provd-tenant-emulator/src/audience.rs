//! Which resource (audience, the access token's `aud`) a request's `scope`
//! asks for, and whether the client may have a token for it.
//!
//! What Microsoft documents, and the emulator follows:
//! - a scope is the resource's identifier (App ID URI) plus a permission
//!   (`https://graph.microsoft.com/.default`); a scope without a resource
//!   identifier is Microsoft Graph's
//!   (<https://learn.microsoft.com/entra/identity-platform/scopes-oidc>);
//!   `openid`, `profile`, `email` and `offline_access` are OpenID Connect
//!   scopes that name no resource;
//! - when the scopes span several resources, the token is for the resource
//!   of the first scope (the refresh-token request in
//!   <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token>;
//!   the emulator applies the same rule to device codes);
//! - a refresh token is bound to user and client, not to a resource, and
//!   gets access tokens for any resource the client has permission for
//!   (<https://learn.microsoft.com/entra/identity-platform/refresh-tokens>);
//! - a client without that permission gets `invalid_grant` with
//!   AADSTS65001 ("has not consented")
//!   (<https://learn.microsoft.com/entra/identity-platform/reference-error-codes>).
//!
//! Which client has permission for which resource is the tenant's consent
//! and preauthorization, which the emulator cannot know: it is the
//! `--client-audience CLIENT=AUDIENCE` table (LAB defaults in `main.rs`).
//! A client the table does not name may get Graph tokens only (a public
//! client with delegated Graph consent), never another resource's.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::Settings;

/// OpenID Connect scopes: they ask for an id_token or a refresh token,
/// not for a resource.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The resource `scope` asks for: the first scope naming a resource, minus
/// its permission (`…/registerapp/user_impersonation` → `…/registerapp`).
/// No such scope (only OIDC scopes, or a bare permission like `User.Read`):
/// Graph.
pub fn audience_of(scope: &str, graph_audience: &str) -> String {
    scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(s))
        .find_map(|s| s.rsplit_once('/').map(|(resource, _)| resource))
        .filter(|resource| !resource.is_empty())
        .unwrap_or(graph_audience)
        .to_owned()
}

/// Whether the OpenID Connect `openid` scope was asked for (then the
/// answer carries an id_token).
pub fn wants_id_token(scope: &str) -> bool {
    scope.split_whitespace().any(|s| s == "openid")
}

/// Whether `client_id` may get a token for `audience`.
pub fn allowed(settings: &Settings, client_id: &str, audience: &str) -> bool {
    let listed: Vec<&str> = settings
        .client_audiences
        .iter()
        .filter(|(client, _)| client.eq_ignore_ascii_case(client_id))
        .map(|(_, aud)| aud.as_str())
        .collect();
    if listed.is_empty() {
        return audience == settings.graph_audience;
    }
    listed.contains(&audience)
}

/// The token endpoint's answer when the client may not have the resource.
pub fn not_consented(client_id: &str, audience: &str) -> Response {
    let description = format!(
        "AADSTS65001: The user or administrator has not consented to use the application \
         with ID '{client_id}'. Send an interactive authorization request for this user and \
         resource. (resource '{audience}'; LAB tenant emulator)"
    );
    let body = json!({
        "error": "invalid_grant",
        "error_description": description,
        "error_codes": [65001],
        "suberror": "consent_required",
        "timestamp": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "correlation_id": uuid::Uuid::new_v4().to_string(),
    });
    let mut response = (StatusCode::BAD_REQUEST, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: &str = "https://graph.microsoft.com";

    #[test]
    fn the_resource_is_the_first_scope_minus_its_permission() {
        let cases = [
            ("https://graph.microsoft.com/.default offline_access", GRAPH),
            (
                "openid https://proxy.cloudwebappproxy.net/registerapp/user_impersonation profile",
                "https://proxy.cloudwebappproxy.net/registerapp",
            ),
            (
                "api://contoso/api/Use https://graph.microsoft.com/.default",
                "api://contoso/api",
            ),
            ("User.Read openid", GRAPH),
            ("openid profile offline_access", GRAPH),
            ("/.default", GRAPH),
        ];
        for (scope, audience) in cases {
            assert_eq!(audience_of(scope, GRAPH), audience, "{scope}");
        }
    }

    #[test]
    fn only_listed_audiences_and_graph_for_unlisted_clients() {
        let settings = Settings {
            tenant: "t".into(),
            base_url: "https://127.0.0.1:1".into(),
            device_code_ttl: std::time::Duration::from_secs(1),
            poll_interval: std::time::Duration::from_secs(1),
            token_ttl: std::time::Duration::from_secs(1),
            inactive_after: std::time::Duration::from_secs(1),
            graph_audience: GRAPH.into(),
            registration_audience: "https://r".into(),
            client_audiences: vec![("reg".into(), "https://r".into())],
            sync_interval: std::time::Duration::from_secs(1),
            mask_secrets: false,
        };
        assert!(allowed(&settings, "REG", "https://r"));
        assert!(!allowed(&settings, "reg", GRAPH));
        assert!(allowed(&settings, "other", GRAPH));
        assert!(!allowed(&settings, "other", "https://r"));
    }
}
