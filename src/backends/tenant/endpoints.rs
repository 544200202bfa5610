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

/// The delegated Graph permissions provd's calls need, each the least
/// privileged its Graph API page lists: the provisioning agents and
/// published resources (onPremisesAgent list), and the cloud sync
/// configuration (`sync::SyncCall::permission` of every call a workflow
/// makes; a ReadWrite permission covers its Read).
pub const GRAPH_PERMISSIONS: [&str; 5] = [
    "OnPremisesPublishingProfiles.ReadWrite.All",
    "Organization.ReadWrite.All",
    "Application.ReadWrite.All",
    "Synchronization.ReadWrite.All",
    "Policy.ReadWrite.HybridAuthentication",
];

/// The cloud's Graph with [`GRAPH_PERMISSIONS`]: what
/// `tenant.graph_scope` defaults to.
pub fn graph_scope(cloud: Cloud) -> String {
    GRAPH_PERMISSIONS
        .iter()
        .map(|p| format!("{}/{p}", hosts(cloud).1))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds() {
        let us = TenantEndpoints::for_cloud(Cloud::AzureUsGovernment, "t");
        assert_eq!(us.authority, "https://login.microsoftonline.us");
        assert_eq!(us.graph, "https://graph.microsoft.us");
        let us = graph_scope(Cloud::AzureUsGovernment);
        assert!(
            us.split(' ')
                .all(|s| s.starts_with("https://graph.microsoft.us/")),
            "{us}"
        );
        assert!(us.contains("/Synchronization.ReadWrite.All"), "{us}");
        let public = graph_scope(Cloud::AzurePublic);
        assert_eq!(
            public.split(' ').count(),
            GRAPH_PERMISSIONS.len(),
            "{public}"
        );
        assert!(
            public.starts_with("https://graph.microsoft.com/"),
            "{public}"
        );
    }
}
