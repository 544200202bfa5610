//! Where sign-in and Graph live for each cloud.

use crate::backends::host::Cloud;

/// Where sign-in and Graph live, per cloud (as the installer's
/// ENVIRONMENTNAME chooses), or overridden (the lab emulator).
#[derive(Debug, Clone)]
pub struct TenantEndpoints {
    /// e.g. `https://login.microsoftonline.com`.
    pub authority: String,
    /// e.g. `https://graph.microsoft.com`.
    pub graph: String,
    /// Tenant id or domain; `organizations` for any work account.
    pub tenant: String,
    pub client_id: String,
    pub scope: String,
}

impl TenantEndpoints {
    pub fn for_cloud(cloud: Cloud, tenant: &str, client_id: &str) -> Self {
        let (authority, graph) = match cloud {
            Cloud::AzurePublic => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Cloud::AzureUsGovernment => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
        };
        Self {
            authority: authority.into(),
            graph: graph.into(),
            tenant: tenant.into(),
            client_id: client_id.into(),
            scope: format!("{graph}/.default offline_access"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds() {
        let us = TenantEndpoints::for_cloud(Cloud::AzureUsGovernment, "t", "c");
        assert_eq!(us.authority, "https://login.microsoftonline.us");
        assert!(us.scope.starts_with("https://graph.microsoft.us/"));
    }
}
