//! Microsoft Graph (beta `onPremisesPublishingProfiles/provisioning`): the
//! tenant's agents and published resources, the agent's password writeback
//! flag. Registration is not here: the agent's own module registers it
//! (`backends::agent_config`, `Connect-AADCloudSyncAzureAD`).

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;

use super::http::HttpTenant;
use super::send::Request;
use super::{AgentGroup, ProvisioningAgent, PublishedResource, TenantError, Tokens};

#[derive(Deserialize)]
struct GraphList<T> {
    value: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentBody {
    id: String,
    #[serde(default)]
    machine_name: String,
    #[serde(default)]
    external_ip: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    agent_groups: Vec<GroupBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    id: String,
    #[serde(default)]
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceBody {
    id: String,
    #[serde(default)]
    resource_name: String,
    #[serde(default)]
    agent_groups: Vec<GroupBody>,
}

#[derive(Deserialize)]
struct WritebackBody {
    enabled: bool,
}

/// Characters escaped in one URL path segment.
pub(super) const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

impl HttpTenant {
    /// A Graph call with the retry policy: 429 and 5xx are retried, waiting
    /// Retry-After when given, else exponential backoff.
    async fn graph_get(&self, path: &str, tokens: &Tokens) -> Result<String, TenantError> {
        let url = format!("{}{path}", self.endpoints.graph.trim_end_matches('/'));
        self.send(tokens, Request::get(&url)).await
    }

    /// The tenant's provisioning agents with their groups.
    pub async fn list_agents(
        &self,
        tokens: &Tokens,
    ) -> Result<Vec<ProvisioningAgent>, TenantError> {
        let text = self
            .graph_get(
                "/beta/onPremisesPublishingProfiles/provisioning/agents?$expand=agentGroups",
                tokens,
            )
            .await?;
        let list: GraphList<AgentBody> = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("agent list: {e}")))?;
        Ok(list
            .value
            .into_iter()
            .map(|a| ProvisioningAgent {
                id: a.id,
                machine_name: a.machine_name,
                external_ip: a.external_ip,
                // The documentation's example says "Active".
                active: a.status.eq_ignore_ascii_case("active"),
                groups: a
                    .agent_groups
                    .into_iter()
                    .map(|g| AgentGroup {
                        id: g.id,
                        display_name: g.display_name,
                    })
                    .collect(),
            })
            .collect())
    }

    /// The published resources (one per AD domain) with their agent groups.
    pub async fn list_published_resources(
        &self,
        tokens: &Tokens,
    ) -> Result<Vec<PublishedResource>, TenantError> {
        let text = self
            .graph_get(
                "/beta/onPremisesPublishingProfiles/provisioning/publishedResources?$expand=agentGroups",
                tokens,
            )
            .await?;
        let list: GraphList<ResourceBody> = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("published resources: {e}")))?;
        Ok(list
            .value
            .into_iter()
            .map(|r| PublishedResource {
                id: r.id,
                domain: r.resource_name.to_ascii_lowercase(),
                group_ids: r.agent_groups.into_iter().map(|g| g.id).collect(),
            })
            .collect())
    }

    fn writeback_url(&self, agent_id: &str) -> String {
        format!(
            "{}/beta/onPremisesPublishingProfiles/provisioning/agents/{}/passwordWriteback",
            self.endpoints.graph.trim_end_matches('/'),
            utf8_percent_encode(agent_id, PATH_SEGMENT)
        )
    }

    /// The agent's password writeback flag (modelled endpoint, see the
    /// emulator's graph module).
    pub async fn password_writeback(
        &self,
        tokens: &Tokens,
        agent_id: &str,
    ) -> Result<bool, TenantError> {
        let text = self
            .send(tokens, Request::get(&self.writeback_url(agent_id)))
            .await?;
        let body: WritebackBody = serde_json::from_str(&text)
            .map_err(|e| TenantError::Protocol(format!("writeback flag: {e}")))?;
        Ok(body.enabled)
    }
}
