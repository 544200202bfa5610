//! Where sign-in and Graph live for each cloud.

use crate::backends::host::Cloud;

/// Where sign-in and Graph live, per cloud (as the installer's
/// ENVIRONMENTNAME chooses), or overridden (the lab emulator). Which
/// resources tokens are for is not here: a scope names a resource, not
/// where it is reached.
#[derive(Debug, Clone)]
pub struct TenantEndpoints {
    /// e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// e.g. `https://graph.microsoft.com`.
    pub graph: String,
    /// Tenant id or domain; `organizations` for any work account.
    pub tenant: String,
}

/// The cloud's sign-in authority and Graph.
fn hosts(cloud: Cloud) -> (&'static str, &'static str) {
    match cloud {
        Cloud::AzurePublic => (
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
        ),
        Cloud::AzureUsGovernment => (
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
        ),
    }
}

impl TenantEndpoints {
    pub fn for_cloud(cloud: Cloud, tenant: &str) -> Self {
        let (authority, graph) = hosts(cloud);
        Self {
            authority: authority.into(),
            graph: graph.into(),
            tenant: tenant.into(),
        }
    }
}

/// The cloud's Graph resource with the permissions the client was given
/// (`/.default`): what `tenant.graph_scope` defaults to.
pub fn graph_scope(cloud: Cloud) -> String {
    format!("{}/.default", hosts(cloud).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds() {
        let us = TenantEndpoints::for_cloud(Cloud::AzureUsGovernment, "t");
        assert_eq!(us.authority, "https://login.microsoftonline.us");
        assert_eq!(us.graph, "https://graph.microsoft.us");
        assert_eq!(
            graph_scope(Cloud::AzureUsGovernment),
            "https://graph.microsoft.us/.default"
        );
        assert_eq!(
            graph_scope(Cloud::AzurePublic),
            "https://graph.microsoft.com/.default"
        );
    }
}
