//! LAB STAND-IN for a service principal's synchronization secrets:
//! - `PUT /beta/servicePrincipals/{sp}/synchronization/secrets` → 204
//!   (<https://learn.microsoft.com/graph/api/synchronization-serviceprincipal-put-synchronization?view=graph-rest-beta>)
//! - `GET` of the same path, "the existing values"
//!   (how-to-inbound-synch-ms-graph)
//!
//! A PUT REPLACES ALL secrets: the how-to says PATCH is not supported, so
//! every value to keep must be sent again; a key not sent is gone.
//! Keys are the `synchronizationSecret` enum
//! (<https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationsecretkeystringvaluepair?view=graph-rest-beta>);
//! [I] another key is a 400, and a key sent twice too. Third-party use
//! (Terraform azuread) shows a key PUT with `""` removed and sensitive
//! values read back as `"*"`: `--mask-secrets` answers `"*"` for every
//! value, so clients are tested on both paths.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::Secret;
use super::with_sync;
use crate::respond::{GraphError, bad_request, graph_json};
use crate::state::App;

/// The `synchronizationSecret` enum, as the resource page lists it.
const KEYS: [&str; 45] = [
    "None",
    "UserName",
    "Password",
    "SecretToken",
    "AppKey",
    "BaseAddress",
    "ClientIdentifier",
    "ClientSecret",
    "SingleSignOnType",
    "Sandbox",
    "Url",
    "Domain",
    "ConsumerKey",
    "ConsumerSecret",
    "TokenKey",
    "TokenExpiration",
    "Oauth2AccessToken",
    "Oauth2AccessTokenCreationTime",
    "Oauth2RefreshToken",
    "SyncAll",
    "InstanceName",
    "Oauth2ClientId",
    "Oauth2ClientSecret",
    "CompanyId",
    "UpdateKeyOnSoftDelete",
    "SynchronizationSchedule",
    "SystemOfRecord",
    "SandboxName",
    "EnforceDomain",
    "SyncNotificationSettings",
    "SkipOutOfScopeDeletions",
    "Oauth2AuthorizationCode",
    "Oauth2RedirectUri",
    "ApplicationTemplateIdentifier",
    "Oauth2TokenExchangeUri",
    "Oauth2AuthorizationUri",
    "AuthenticationType",
    "Server",
    "PerformInboundEntitlementGrants",
    "HardDeletesEnabled",
    "SyncAgentCompatibilityKey",
    "SyncAgentADContainer",
    "ValidateDomain",
    "TestReferences",
    "ConnectionString",
];

/// What a masked value reads as.
const MASK: &str = "*";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    value: Vec<Pair>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    key: String,
    value: String,
}

/// `GET …/synchronization/secrets` → `{"value":[{key,value}…]}`.
pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    Path(sp): Path<String>,
) -> Result<Json<Value>, GraphError> {
    let mask = app.settings.mask_secrets;
    with_sync(&app, &headers, |sync| {
        let value: Vec<Secret> = sync
            .service_principal(&sp)?
            .secrets
            .iter()
            .map(|s| Secret {
                key: s.key.clone(),
                value: if mask { MASK.into() } else { s.value.clone() },
            })
            .collect();
        Ok(Json(json!({ "value": value })))
    })
}

/// `PUT …/synchronization/secrets` `{"value":[{key,value}…]}` → 204.
pub async fn put(
    State(app): State<App>,
    headers: HeaderMap,
    Path(sp): Path<String>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    with_sync(&app, &headers, |sync| {
        sync.service_principal(&sp)?;
        let request: Secrets = graph_json(&body)?;
        let mut secrets: Vec<Secret> = Vec::with_capacity(request.value.len());
        for pair in request.value {
            if !KEYS.contains(&pair.key.as_str()) {
                return Err(bad_request(format!(
                    "'{}' is not a synchronizationSecret key.",
                    pair.key
                )));
            }
            if secrets.iter().any(|s| s.key == pair.key) {
                return Err(bad_request(format!("Key '{}' is sent twice.", pair.key)));
            }
            secrets.push(Secret {
                key: pair.key,
                value: pair.value,
            });
        }
        for secret in &secrets {
            if !secret.value.is_empty() && !sync.secrets_seen.contains(&secret.value) {
                sync.secrets_seen.push(secret.value.clone());
            }
        }
        // A key sent with "" is removed (third-party use, see above).
        secrets.retain(|s| !s.value.is_empty());
        sync.service_principal(&sp)?.secrets = secrets;
        Ok(StatusCode::NO_CONTENT)
    })
}
