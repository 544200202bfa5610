//! LAB STAND-IN for a job's synchronization schema:
//! - `GET /beta/servicePrincipals/{sp}/synchronization/jobs/{job}/schema`
//!   (<https://learn.microsoft.com/graph/api/synchronization-synchronizationschema-get?view=graph-rest-beta>)
//! - `PUT` of the same path, the whole schema → 204
//!   (<https://learn.microsoft.com/graph/api/synchronization-synchronizationschema-update?view=graph-rest-beta>)
//!
//! The schema is kept as sent, unknown fields too ("Backend doesn't dedupe
//! for you", how-to-inbound-synch-ms-graph). The template's schema is
//! trimmed to what provd edits: one rule (id from real AD2AAD jobs, via
//! third-party examples), the `user` and `inetOrgPerson` object mappings.
//! Scoping (beta): `containerFilter` and `groupFilter` are "mutually
//! exclusive"
//! (<https://learn.microsoft.com/graph/api/resources/synchronization-containerfilter?view=graph-rest-beta>);
//! [I] a rule with both non-empty is a 400. The scoping configuration is
//! limited to 4 MB
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-prerequisites>);
//! [I] a schema body over 4 MiB is a 400.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{JobPath, with_job};
use crate::respond::{GraphError, bad_request, graph_json};
use crate::state::App;

/// The largest schema body accepted.
pub const MAX_SCHEMA_BYTES: usize = 4 * 1024 * 1024;

/// The id of the AD to Entra ID rule of real AD2AAD jobs.
const RULE_ID: &str = "6c409270-f78a-4bc6-af23-7cf3ab6482fe";

/// The schema a new job of `template_id` starts with, reading `domain`.
pub fn template(template_id: &str, domain: &str) -> Value {
    let mapping = |name: &str, source: &str, attributes: Value| {
        json!({
            "name": name,
            "sourceObjectName": source,
            "targetObjectName": "User",
            "enabled": true,
            "attributeMappings": attributes,
        })
    };
    let display_name = json!([{
        "targetAttributeName": "DisplayName",
        "source": {
            "expression": "[displayName]",
            "name": "displayName",
            "type": "Attribute",
            "parameters": [],
        },
    }]);
    json!({
        "id": template_id,
        "version": "Date:2026-12-06 LAB",
        "synchronizationRules": [{
            "id": RULE_ID,
            "name": "USER_INBOUND_USER",
            "sourceDirectoryName": domain,
            "targetDirectoryName": "Azure Active Directory",
            "containerFilter": { "includedContainers": [] },
            "groupFilter": { "includedGroups": [] },
            "objectMappings": [
                mapping("Provision Active Directory users", "user", display_name),
                mapping("Provision Active Directory inetOrgPersons", "inetOrgPerson", json!([])),
            ],
        }],
        "directories": [],
    })
}

/// `GET …/jobs/{job}/schema`.
pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    Path(ids): JobPath,
) -> Result<Json<Value>, GraphError> {
    with_job(&app, &headers, &ids, |job| Ok(Json(job.schema.clone())))
}

/// Whether the filter `object[field]` lists anything.
fn non_empty(rule: &Value, filter: &str, field: &str) -> bool {
    rule[filter][field]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

/// The checks of the module comment.
fn check(body: &[u8]) -> Result<Value, GraphError> {
    if body.len() > MAX_SCHEMA_BYTES {
        return Err(bad_request(format!(
            "The schema is {} bytes; the scoping configuration is limited to 4 MB.",
            body.len()
        )));
    }
    let schema: Value = graph_json(body)?;
    if !schema.is_object() {
        return Err(bad_request("The schema must be a JSON object."));
    }
    let rules = &schema["synchronizationRules"];
    if !(rules.is_null() || rules.is_array()) {
        return Err(bad_request("synchronizationRules must be an array."));
    }
    for rule in rules.as_array().into_iter().flatten() {
        if non_empty(rule, "containerFilter", "includedContainers")
            && non_empty(rule, "groupFilter", "includedGroups")
        {
            return Err(bad_request(format!(
                "Rule '{}': containerFilter and groupFilter are mutually exclusive.",
                rule["id"].as_str().unwrap_or_default()
            )));
        }
    }
    Ok(schema)
}

/// `PUT …/jobs/{job}/schema` with the whole schema → 204.
pub async fn put(
    State(app): State<App>,
    headers: HeaderMap,
    Path(ids): JobPath,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    with_job(&app, &headers, &ids, |job| {
        job.schema = check(&body)?;
        Ok(StatusCode::NO_CONTENT)
    })
}
