//! LAB STAND-IN for the cloud sync application: instantiating its gallery
//! template makes an application and a service principal, which carries the
//! configuration's jobs and secrets; a client finds them again by template.
//! - `POST /beta/applicationTemplates/{id}/instantiate` → 201
//!   (<https://learn.microsoft.com/graph/api/applicationtemplate-instantiate?view=graph-rest-beta>)
//! - `GET /beta/servicePrincipals[?$filter=applicationTemplateId eq '…']`
//!   (<https://learn.microsoft.com/graph/api/serviceprincipal-list?view=graph-rest-beta>;
//!   `applicationTemplateId` supports `$filter` `eq`:
//!   <https://learn.microsoft.com/graph/api/resources/serviceprincipal?view=graph-rest-beta>)
//!
//! Only the cloud sync template (how-to-inbound-synch-ms-graph) exists
//! here. [I] Each instantiate makes new objects, even for a name in use.
//! The answer carries both `id` and `objectId`: beta examples show
//! `objectId`, v1.0 `id`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{Application, ServicePrincipal};
use super::with_sync;
use crate::respond::{GraphError, bad_request, field, graph_json, not_found, parse_urlencoded};
use crate::state::App;

/// The application template of Microsoft Entra cloud sync (AD to Entra ID).
pub const CLOUD_SYNC_TEMPLATE: &str = "1a4721b3-e57f-4451-ae87-ef078703ec94";

/// [I] Longest accepted display name (Graph's limit is not documented for
/// instantiate; applications allow 256).
const MAX_DISPLAY_NAME: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instantiate {
    display_name: String,
}

fn service_principal_json(sp: &ServicePrincipal) -> Value {
    json!({
        "id": sp.id,
        "objectId": sp.id,
        "appId": sp.app_id,
        "displayName": sp.display_name,
        "applicationTemplateId": sp.application_template_id,
        "servicePrincipalType": "Application",
    })
}

/// `POST /beta/applicationTemplates/{id}/instantiate` `{"displayName"}`.
pub async fn instantiate(
    State(app): State<App>,
    headers: HeaderMap,
    Path(template): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    with_sync(&app, &headers, |sync| {
        if template != CLOUD_SYNC_TEMPLATE {
            return Err(not_found("applicationTemplate", &template));
        }
        let request: Instantiate = graph_json(&body)?;
        let name = request.display_name.trim();
        if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME {
            return Err(bad_request(format!(
                "displayName must have 1 to {MAX_DISPLAY_NAME} characters."
            )));
        }
        let application = Application {
            object_id: uuid::Uuid::new_v4().to_string(),
            app_id: uuid::Uuid::new_v4().to_string(),
            display_name: name.to_owned(),
        };
        let sp = ServicePrincipal {
            id: uuid::Uuid::new_v4().to_string(),
            app_id: application.app_id.clone(),
            display_name: name.to_owned(),
            application_template_id: template.clone(),
            secrets: Vec::new(),
            jobs: Vec::new(),
        };
        let body = json!({
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#microsoft.graph.applicationServicePrincipal",
            "application": {
                "id": application.object_id,
                "objectId": application.object_id,
                "appId": application.app_id,
                "displayName": application.display_name,
                "applicationTemplateId": template,
            },
            "servicePrincipal": service_principal_json(&sp),
        });
        sync.applications.push(application);
        sync.service_principals.push(sp);
        Ok((StatusCode::CREATED, Json(body)))
    })
}

/// The `$filter` forms the emulator understands: `<property> eq '<value>'`
/// on `applicationTemplateId` or `displayName`; no filter lists all.
fn filter_of(query: Option<&str>) -> Result<Option<(String, String)>, GraphError> {
    let pairs = parse_urlencoded(query.unwrap_or(""));
    let Some(filter) = field(&pairs, "$filter") else {
        return Ok(None);
    };
    let unsupported = || {
        bad_request(format!(
            "Unsupported $filter in the LAB tenant emulator: {filter}"
        ))
    };
    let (property, value) = filter.split_once(" eq ").ok_or_else(unsupported)?;
    let value = value
        .trim()
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .ok_or_else(unsupported)?;
    match property.trim() {
        p @ ("applicationTemplateId" | "displayName") => Ok(Some((p.to_owned(), value.to_owned()))),
        _ => Err(unsupported()),
    }
}

/// `GET /beta/servicePrincipals[?$filter=…]`.
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, GraphError> {
    with_sync(&app, &headers, |sync| {
        let filter = filter_of(query.as_deref())?;
        let value: Vec<Value> = sync
            .service_principals
            .iter()
            .filter(|sp| match &filter {
                None => true,
                Some((property, value)) if property == "displayName" => {
                    sp.display_name.eq_ignore_ascii_case(value)
                }
                Some((_, value)) => sp.application_template_id.eq_ignore_ascii_case(value),
            })
            .map(service_principal_json)
            .collect();
        Ok(Json(json!({
            "@odata.context": "https://graph.microsoft.com/beta/$metadata#servicePrincipals",
            "value": value,
        })))
    })
}

/// `DELETE /beta/servicePrincipals/{id}` (serviceprincipal-delete): 204; the
/// configuration's jobs, secrets and schema go with it, the application
/// registration stays. 404 when there is none.
pub async fn delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, GraphError> {
    with_sync(&app, &headers, |sync| {
        sync.service_principal(&id)?;
        sync.service_principals.retain(|sp| sp.id != id);
        Ok(StatusCode::NO_CONTENT)
    })
}
