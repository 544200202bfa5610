//! LAB STAND-IN for linking a provisioning agent to an agent group, so the
//! group's published resource (a domain) is served by it:
//! - `POST /beta/onPremisesPublishingProfiles/provisioning/agents/{agent}/agentGroups/$ref`
//!   `{"@odata.id": "…/agentGroups/{group}"}` → 204
//!   (<https://learn.microsoft.com/graph/api/onpremisesagent-post-agentgroups?view=graph-rest-beta>;
//!   its text says 201, its example 204)
//! - `DELETE …/agents/{agent}/agentGroups/{group}/$ref` → 204
//!   (<https://learn.microsoft.com/graph/api/onpremisesagent-delete-agentgroups?view=graph-rest-beta>)
//!
//! [I] Not documented, chosen here: linking an agent already in the group
//! is a 400; unlinking one not in it is a 404.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use crate::graph::graph_caller;
use crate::respond::{GraphError, bad_request, graph_json, not_found};
use crate::state::{AgentGroup, App, State as Tenant};

#[derive(Debug, Deserialize)]
pub struct Reference {
    #[serde(rename = "@odata.id")]
    odata_id: String,
}

/// The group id at the end of `…/agentGroups/{id}` (a trailing `/`, as
/// the page's example has, is allowed).
fn group_id_of(reference: &str) -> Option<&str> {
    let (_, tail) = reference.rsplit_once("/agentGroups/")?;
    let id = tail.trim_end_matches('/');
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// The agent must exist; then the group named `group`.
fn agent_group<'a>(
    tenant: &'a mut Tenant,
    agent: &str,
    group: &str,
) -> Result<&'a mut AgentGroup, GraphError> {
    if !tenant.agents.iter().any(|a| a.id == agent) {
        return Err(not_found("onPremisesAgent", agent));
    }
    tenant
        .groups
        .iter_mut()
        .find(|g| g.id == group)
        .ok_or_else(|| not_found("onPremisesAgentGroup", group))
}

/// `POST …/agents/{agent}/agentGroups/$ref`.
pub async fn link(
    State(app): State<App>,
    headers: HeaderMap,
    Path(agent): Path<String>,
    body: Bytes,
) -> Result<StatusCode, GraphError> {
    graph_caller(&app, &headers)?;
    let reference: Reference = graph_json(&body)?;
    let group = group_id_of(&reference.odata_id).ok_or_else(|| {
        bad_request("@odata.id must be the URL of an onPremisesAgentGroup (…/agentGroups/{id}).")
    })?;
    let mut tenant = app.lock();
    let group = agent_group(&mut tenant, &agent, group)?;
    if group.agent_ids.contains(&agent) {
        return Err(bad_request(format!(
            "Agent '{agent}' is already a member of agent group '{}'.",
            group.id
        )));
    }
    group.agent_ids.push(agent);
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE …/agents/{agent}/agentGroups/{group}/$ref`.
pub async fn unlink(
    State(app): State<App>,
    headers: HeaderMap,
    Path((agent, group)): Path<(String, String)>,
) -> Result<StatusCode, GraphError> {
    graph_caller(&app, &headers)?;
    let mut tenant = app.lock();
    let group = agent_group(&mut tenant, &agent, &group)?;
    let before = group.agent_ids.len();
    group.agent_ids.retain(|a| *a != agent);
    if group.agent_ids.len() == before {
        return Err(not_found("agent group membership", &agent));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::group_id_of;

    #[test]
    fn reads_the_group_id_of_a_reference() {
        let base = "https://graph.microsoft.com/beta/onPremisesPublishingProfiles/provisioning";
        assert_eq!(group_id_of(&format!("{base}/agentGroups/g1")), Some("g1"));
        assert_eq!(group_id_of(&format!("{base}/agentGroups/g1/")), Some("g1"));
        assert_eq!(group_id_of(&format!("{base}/agentGroups/")), None);
        assert_eq!(group_id_of(&format!("{base}/agentGroups/g1/x")), None);
        assert_eq!(group_id_of(&format!("{base}/agents/a1")), None);
    }
}
