//! An agent's membership of an agent group (beta, delegated only):
//! `POST /onPremisesPublishingProfiles/provisioning/agents/{id}/agentGroups/$ref`
//! `{"@odata.id": "…/agentGroups/{id}"}` → 204
//! (<https://learn.microsoft.com/graph/api/onpremisesagent-post-agentgroups?view=graph-rest-beta>)
//! and `DELETE …/agents/{id}/agentGroups/{id}/$ref` → 204
//! (<https://learn.microsoft.com/graph/api/onpremisesagent-delete-agentgroups?view=graph-rest-beta>).
//! The group reference has no trailing slash (the page's example has one;
//! the interfaces note fixes this form [I]).

use serde_json::json;

use super::super::http::HttpTenant;
use super::super::{TenantError, Tokens};
use super::SyncCall;
use super::call::{json_body, segment};

const PROFILE: &str = "/onPremisesPublishingProfiles/provisioning";

impl HttpTenant {
    /// Not sent again after a 5xx or a lost answer: Graph refuses a second
    /// link [I], so the caller reads the agent's groups instead.
    pub async fn assign_agent(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        group_id: &str,
    ) -> Result<(), TenantError> {
        let url = self.beta(&format!(
            "{PROFILE}/agents/{}/agentGroups/$ref",
            segment(agent_id)
        ));
        let group = self.beta(&format!("{PROFILE}/agentGroups/{}", segment(group_id)));
        let body = json_body(&json!({ "@odata.id": group }));
        self.sync_send(tokens, SyncCall::AssignAgent, &url, Some(body))
            .await
            .map(drop)
    }

    pub async fn remove_agent(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        group_id: &str,
    ) -> Result<(), TenantError> {
        let url = self.beta(&format!(
            "{PROFILE}/agents/{}/agentGroups/{}/$ref",
            segment(agent_id),
            segment(group_id)
        ));
        self.sync_send(tokens, SyncCall::RemoveAgent, &url, None)
            .await
            .map(drop)
    }
}
