//! LAB STAND-IN for the Microsoft Entra cloud sync configuration as
//! Microsoft Graph (beta) exposes it, in the order of the how-to
//! <https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-inbound-synch-ms-graph>:
//! the organization's sync flag (`org.rs`), the cloud sync application
//! template's instantiation and service principals (`apps.rs`), the
//! synchronization jobs (`jobs.rs`), secrets (`secrets.rs`) and schema
//! (`schema.rs`), and agent group links (`groups.rs`). A job "runs" in
//! `engine.rs`, every `--sync-interval`. `lab.rs` holds the `/_lab/sync/`
//! controls that no real tenant has.
//!
//! Every Graph route authenticates as the agent routes do (Graph-audience
//! tokens only; permissions are not checked in this cut) and answers errors
//! in Graph's envelope (<https://learn.microsoft.com/graph/errors>); the
//! `/_lab/faults` middleware covers these paths like any other.

mod apps;
pub mod engine;
mod groups;
mod jobs;
mod lab;
pub mod model;
mod org;
mod schema;
mod secrets;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};

use crate::graph::graph_caller;
use crate::respond::{GraphError, not_found};
use crate::state::App;
use model::{Application, Job, ServicePrincipal};

/// The most `/_lab/sync/calls` remembers (oldest dropped first), so a
/// long lab run does not grow without bound.
const MAX_CALLS: usize = 10_000;

/// Cloud sync state of the tenant.
#[derive(Debug, Default)]
pub struct SyncState {
    /// `organization.onPremisesSyncEnabled` (null until PATCHed).
    pub on_premises_sync_enabled: Option<bool>,
    pub applications: Vec<Application>,
    pub service_principals: Vec<ServicePrincipal>,
    /// (agent id, domain) → the user count the agent last reported.
    pub user_counts: HashMap<(String, String), u64>,
    /// domain → quarantine code set by `POST /_lab/sync/quarantine`.
    pub lab_quarantines: HashMap<String, String>,
    /// Every secret value ever PUT (for secret scans of provd's output).
    pub secrets_seen: Vec<String>,
    /// `"METHOD /path"` of every sync call (see [`record_calls`]).
    pub calls: Vec<String>,
}

impl SyncState {
    pub fn service_principal(&mut self, id: &str) -> Result<&mut ServicePrincipal, GraphError> {
        self.service_principals
            .iter_mut()
            .find(|sp| sp.id == id)
            .ok_or_else(|| not_found("servicePrincipal", id))
    }

    pub fn job(&mut self, sp: &str, job: &str) -> Result<&mut Job, GraphError> {
        self.service_principal(sp)?
            .jobs
            .iter_mut()
            .find(|j| j.id == job)
            .ok_or_else(|| not_found("synchronizationJob", job))
    }
}

/// [`graph_caller`], then `f` on the sync state under the lock.
pub fn with_sync<T>(
    app: &App,
    headers: &HeaderMap,
    f: impl FnOnce(&mut SyncState) -> Result<T, GraphError>,
) -> Result<T, GraphError> {
    graph_caller(app, headers)?;
    f(&mut app.lock().sync)
}

/// `(service principal id, job id)` of `…/synchronization/jobs/{job}/…`.
pub type JobPath = axum::extract::Path<(String, String)>;

/// [`with_sync`] on the job that `ids` names (404 when there is none).
pub fn with_job<T>(
    app: &App,
    headers: &HeaderMap,
    (sp, job): &(String, String),
    f: impl FnOnce(&mut Job) -> Result<T, GraphError>,
) -> Result<T, GraphError> {
    with_sync(app, headers, |sync| f(sync.job(sp, job)?))
}

/// Schema bodies up to this size reach `schema.rs`, which refuses more
/// than 4 MiB itself (in Graph's envelope rather than a bare 413).
const SCHEMA_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The Graph and `/_lab/sync/` routes of this module.
pub fn routes() -> Router<App> {
    const SP: &str = "/beta/servicePrincipals/{sp}/synchronization";
    const AGENT: &str = "/beta/onPremisesPublishingProfiles/provisioning/agents/{agent}";
    Router::new()
        .route("/beta/organization", get(org::list))
        .route("/beta/organization/{id}", patch(org::update))
        .route(
            "/beta/applicationTemplates/{id}/instantiate",
            post(apps::instantiate),
        )
        .route("/beta/servicePrincipals", get(apps::list))
        .route("/beta/servicePrincipals/{sp}", delete(apps::delete))
        .route(&format!("{SP}/jobs"), get(jobs::list).post(jobs::create))
        .route(&format!("{SP}/jobs/{{job}}"), get(jobs::get))
        .route(&format!("{SP}/jobs/{{job}}/start"), post(jobs::start))
        .route(&format!("{SP}/jobs/{{job}}/pause"), post(jobs::pause))
        .route(&format!("{SP}/jobs/{{job}}/restart"), post(jobs::restart))
        .route(
            &format!("{SP}/jobs/{{job}}/schema"),
            get(schema::get)
                .put(schema::put)
                .layer(DefaultBodyLimit::max(SCHEMA_BODY_LIMIT)),
        )
        .route(
            &format!("{SP}/secrets"),
            get(secrets::get).put(secrets::put),
        )
        .route(&format!("{AGENT}/agentGroups/$ref"), post(groups::link))
        .route(
            &format!("{AGENT}/agentGroups/{{group}}/$ref"),
            delete(groups::unlink),
        )
        .route("/_lab/sync/user-count", post(lab::user_count))
        .route(
            "/_lab/sync/quarantine",
            post(lab::quarantine).delete(lab::clear_quarantine),
        )
        .route("/_lab/sync/secrets-seen", get(lab::secrets_seen))
        .route("/_lab/sync/calls", get(lab::calls))
}

/// Whether a request is a sync call for `/_lab/sync/calls`: every Graph
/// call except the agent, group and resource reads of the publishing
/// profile, which predate cloud sync configuration and are polled.
fn is_sync_call(method: &Method, path: &str) -> bool {
    let graph = path.starts_with("/beta/") || path.starts_with("/v1.0/");
    let profile_read = method == Method::GET && path.contains("/onPremisesPublishingProfiles/");
    graph && !profile_read
}

/// Middleware (outermost, so faulted and refused calls count too):
/// remembers `"METHOD /path"` (no query, no body) of every sync call.
pub async fn record_calls(State(app): State<App>, request: Request<Body>, next: Next) -> Response {
    if is_sync_call(request.method(), request.uri().path()) {
        let call = format!("{} {}", request.method(), request.uri().path());
        let mut state = app.lock();
        let calls = &mut state.sync.calls;
        if calls.len() >= MAX_CALLS {
            calls.remove(0);
        }
        calls.push(call);
    }
    next.run(request).await
}

/// Runs [`engine::cycle`] every `--sync-interval`, forever.
pub async fn ticker(app: App) {
    let timing = engine::Timing {
        interval: app.settings.sync_interval,
        inactive_after: app.settings.inactive_after,
    };
    let mut ticks = tokio::time::interval(timing.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        engine::cycle(&mut app.lock(), &engine::Clock::now(), &timing);
    }
}
