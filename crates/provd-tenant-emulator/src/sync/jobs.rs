//! LAB STAND-IN for a cloud sync service principal's synchronization jobs:
//! - `POST/GET /beta/servicePrincipals/{sp}/synchronization/jobs`
//!   (<https://learn.microsoft.com/graph/api/synchronization-synchronization-post-jobs?view=graph-rest-beta>,
//!   <https://learn.microsoft.com/graph/api/synchronization-synchronization-list-jobs?view=graph-rest-beta>)
//! - `GET …/jobs/{job}`
//!   (<https://learn.microsoft.com/graph/api/synchronization-synchronizationjob-get?view=graph-rest-beta>)
//! - `POST …/jobs/{job}/start`, `/pause`, `/restart` → 204
//!   (<https://learn.microsoft.com/graph/api/synchronization-synchronizationjob-start?view=graph-rest-beta>,
//!   <https://learn.microsoft.com/graph/api/synchronization-synchronizationjob-pause?view=graph-rest-beta>,
//!   <https://learn.microsoft.com/graph/api/synchronization-synchronizationjob-restart?view=graph-rest-beta>)
//!
//! What the calls do to a job is `engine.rs`. [I] The templates a cloud
//! sync service principal offers are the two of the how-to
//! (AD2AADProvisioning, AD2AADPasswordHash); a second job of one template
//! is a 409 Conflict (not documented).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::Job;
use super::{JobPath, engine, schema, with_job, with_sync};
use crate::respond::{GraphError, bad_request, graph_json};
use crate::state::App;

/// The job templates of the cloud sync application (how-to-inbound-synch-ms-graph).
const TEMPLATES: [&str; 2] = ["AD2AADProvisioning", "AD2AADPasswordHash"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewJob {
    template_id: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Restart {
    #[serde(default)]
    criteria: Option<Criteria>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Criteria {
    #[serde(default)]
    reset_scope: Option<String>,
}

/// `GET …/synchronization/jobs`.
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Path(sp): Path<String>,
) -> Result<Json<Value>, GraphError> {
    with_sync(&app, &headers, |sync| {
        let jobs: Vec<Value> = sync
            .service_principal(&sp)?
            .jobs
            .iter()
            .map(Job::to_json)
            .collect();
        Ok(Json(json!({
            "@odata.context": format!("https://graph.microsoft.com/beta/$metadata#servicePrincipals('{sp}')/synchronization/jobs"),
            "value": jobs,
        })))
    })
}

/// `POST …/synchronization/jobs` `{"templateId"}` → 201 with the job.
pub async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    Path(sp): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), GraphError> {
    with_sync(&app, &headers, |sync| {
        let sp = sync.service_principal(&sp)?;
        let request: NewJob = graph_json(&body)?;
        if !TEMPLATES.contains(&request.template_id.as_str()) {
            return Err(bad_request(format!(
                "templateId must be one of {TEMPLATES:?} for this application."
            )));
        }
        if sp.jobs.iter().any(|j| j.template_id == request.template_id) {
            return Err(GraphError {
                status: StatusCode::CONFLICT,
                code: "Conflict",
                message: format!(
                    "A job of template {} already exists on this service principal.",
                    request.template_id
                ),
            });
        }
        let schema = schema::template(&request.template_id, &sp.display_name);
        let job = Job::new(&request.template_id, schema);
        let body = job.to_json();
        sp.jobs.push(job);
        Ok((StatusCode::CREATED, Json(body)))
    })
}

/// `GET …/jobs/{job}`.
pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    Path(ids): JobPath,
) -> Result<Json<Value>, GraphError> {
    with_job(&app, &headers, &ids, |job| Ok(Json(job.to_json())))
}

/// `POST …/jobs/{job}/start` → 204.
pub async fn start(
    State(app): State<App>,
    headers: HeaderMap,
    Path(ids): JobPath,
) -> Result<StatusCode, GraphError> {
    with_job(&app, &headers, &ids, |job| {
        engine::start(job);
        Ok(StatusCode::NO_CONTENT)
    })
}

/// `POST …/jobs/{job}/pause` → 204.
pub async fn pause(
    State(app): State<App>,
    headers: HeaderMap,
    Path(ids): JobPath,
) -> Result<StatusCode, GraphError> {
    with_job(&app, &headers, &ids, |job| {
        engine::pause(job);
        Ok(StatusCode::NO_CONTENT)
    })
}

/// `POST …/jobs/{job}/restart` `{"criteria":{"resetScope":"…"}}` → 204;
/// the body is optional (no criteria: as an empty `resetScope`).
pub async fn restart(
    State(app): State<App>,
    headers: HeaderMap,
    Path(ids): JobPath,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    with_job(&app, &headers, &ids, |job| {
        let request: Restart = if body.iter().all(u8::is_ascii_whitespace) {
            Restart::default()
        } else {
            graph_json(&body)?
        };
        let text = request.criteria.and_then(|c| c.reset_scope);
        let scope = engine::reset_scope(&text.unwrap_or_default()).map_err(bad_request)?;
        engine::restart(job, scope);
        Ok(StatusCode::NO_CONTENT)
    })
}
