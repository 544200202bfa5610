//! Published resources (one per AD domain) and their agent groups, as the
//! agent's domain registration creates them on a real tenant: the cloud
//! sync how-it-works page says the agent registers each AD domain with the
//! Hybrid Identity Service and assigns itself to it
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/concept-how-it-works>);
//! Graph then lists them
//! (<https://learn.microsoft.com/graph/api/resources/publishedresource?view=graph-rest-beta>).
//! How the agent reports its domains is not documented: in the emulator it
//! is the heartbeat (`agent.rs`), and `POST /_lab/published-resources`
//! does the same by hand for tests.

use crate::state::{AgentGroup, PublishedResource, State};

/// Longest accepted AD domain name.
const MAX_DOMAIN: usize = 253;

/// `domain` lower-cased, when it is a DNS domain name.
pub fn domain_name(domain: &str) -> Option<String> {
    let domain = domain.trim().to_ascii_lowercase();
    let valid = !domain.is_empty()
        && domain.len() <= MAX_DOMAIN
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    valid.then_some(domain)
}

impl State {
    /// The published resource for `domain` (lower-cased), if any.
    pub fn resource(&self, domain: &str) -> Option<&PublishedResource> {
        self.resources.iter().find(|r| r.resource_name == domain)
    }

    /// A new published resource for `domain` with one new agent group
    /// holding `agent_ids` (the first group of the tenant is the default).
    pub fn add_resource(
        &mut self,
        domain: &str,
        agent_ids: Vec<String>,
    ) -> (PublishedResource, AgentGroup) {
        let group = AgentGroup {
            id: uuid::Uuid::new_v4().to_string(),
            display_name: format!("Group-{domain}"),
            is_default: self.groups.is_empty(),
            agent_ids,
        };
        let resource = PublishedResource {
            id: uuid::Uuid::new_v4().to_string(),
            display_name: domain.to_owned(),
            resource_name: domain.to_owned(),
            group_ids: vec![group.id.clone()],
        };
        self.groups.push(group.clone());
        self.resources.push(resource.clone());
        (resource, group)
    }

    /// The agent serves `domain`: it joins the first agent group of the
    /// domain's published resource, which is created when missing.
    pub fn serve_domain(&mut self, agent_id: &str, domain: &str) {
        let group_id = match self.resource(domain) {
            Some(resource) => resource.group_ids.first().cloned(),
            None => {
                self.add_resource(domain, vec![agent_id.to_owned()]);
                return;
            }
        };
        // Every resource the emulator makes has its group.
        let group = group_id.and_then(|id| self.groups.iter_mut().find(|g| g.id == id));
        if let Some(group) = group
            && !group.agent_ids.iter().any(|a| a == agent_id)
        {
            group.agent_ids.push(agent_id.to_owned());
        }
    }
}
