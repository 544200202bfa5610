//! LAB STAND-IN for the tenant's organization object and its
//! `onPremisesSyncEnabled` flag, the how-to's first step ("Enable tenant
//! flags"):
//! - `GET /beta/organization`
//!   (<https://learn.microsoft.com/graph/api/organization-list?view=graph-rest-beta>)
//! - `PATCH /beta/organization/{id}` → 204
//!   (<https://learn.microsoft.com/graph/api/organization-update?view=graph-rest-beta>)
//!
//! The organization's id is the tenant id (`--tenant`), as on a real tenant.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::with_sync;
use crate::respond::{GraphError, graph_json, not_found};
use crate::state::App;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationPatch {
    /// Absent: unchanged. [I] Other organization properties are accepted
    /// and ignored (the emulator models only this one).
    #[serde(default)]
    on_premises_sync_enabled: Option<bool>,
}

/// `GET /beta/organization`: the one organization of the tenant.
pub async fn list(State(app): State<App>, headers: HeaderMap) -> Result<Json<Value>, GraphError> {
    let enabled = with_sync(&app, &headers, |sync| Ok(sync.on_premises_sync_enabled))?;
    Ok(Json(json!({
        "@odata.context": "https://graph.microsoft.com/beta/$metadata#organization",
        "value": [{
            "id": app.settings.tenant,
            "displayName": "LAB tenant (provd tenant emulator)",
            "onPremisesSyncEnabled": enabled,
        }],
    })))
}

/// `PATCH /beta/organization/{id}` `{"onPremisesSyncEnabled": true}` → 204.
pub async fn update(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    with_sync(&app, &headers, |sync| {
        if !id.eq_ignore_ascii_case(&app.settings.tenant) {
            return Err(not_found("organization", &id));
        }
        let patch: OrganizationPatch = graph_json(&body)?;
        if let Some(enabled) = patch.on_premises_sync_enabled {
            sync.on_premises_sync_enabled = Some(enabled);
        }
        Ok(StatusCode::NO_CONTENT)
    })
}
