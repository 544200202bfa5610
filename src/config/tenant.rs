//! `[tenant]`: the Microsoft cloud and tenant provd signs in to and
//! registers agents with, and the clients and scopes of the sign-in.
//!
//! provd signs in once (device code) and holds tokens for two resources:
//! the connector registration service, which the agent's module takes in
//! `Connect-AADCloudSyncAzureAD -AccessToken`, and Microsoft Graph for
//! provd's own reads. The registration client and scope are MICROSOFT'S
//! CONNECTOR FACTS, NOT DOCUMENTED FOR THIS AGENT: Microsoft documents
//! them for the private network connector's unattended registration
//! (<https://learn.microsoft.com/entra/global-secure-access/how-to-register-connector-powershell>),
//! the provisioning agent is built on the same connector framework, and
//! which audience `Connect-AADCloudSyncAzureAD -AccessToken` expects — and
//! whether that client may use the device code flow or get Graph tokens —
//! is documented nowhere. Hence all of them are configuration, with the
//! connector's values as defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::declare::section;
use super::layers::Source;
use super::parse;

/// The Microsoft cloud whose endpoints the tenant client uses (as the
/// agent installer's ENVIRONMENTNAME chooses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TenantCloud {
    #[default]
    Public,
    UsGovernment,
}

/// The public client id of "Microsoft Graph Command Line Tools", a
/// Microsoft first-party app that may use the device code flow with
/// delegated Graph scopes in any tenant.
pub const DEFAULT_TENANT_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// The connector framework's public client for unattended registration
/// (the private network connector page; see the module doc).
pub const DEFAULT_REGISTRATION_CLIENT_ID: &str = "55747057-9b5d-4bd4-b387-abf52a8bd489";

/// The connector registration service's delegated scope (same page).
pub const DEFAULT_REGISTRATION_SCOPE: &str =
    "https://proxy.cloudwebappproxy.net/registerapp/user_impersonation";

/// One OAuth scope (`resource/permission`): provd adds `openid profile
/// offline_access` itself, and a token is for one resource, so a list is
/// refused here rather than half-ignored by the tenant.
fn one_scope(value: &str, _: &Source) -> Result<String, String> {
    if value.is_empty() || value.contains(char::is_whitespace) || !value.contains('/') {
        return Err(format!(
            "{value:?} is not one scope like \"https://graph.microsoft.com/.default\" \
             (provd adds openid profile offline_access itself)"
        ));
    }
    Ok(value.to_owned())
}

/// Scopes of one resource, space-separated (e.g. a list of least-privileged
/// Graph permissions, or `…/.default`): a token is for one resource, so
/// scopes of two resources are refused rather than half-ignored.
fn resource_scopes(value: &str, _: &Source) -> Result<Option<String>, String> {
    let bad = || {
        format!(
            "{value:?} is not scopes of one resource like              \"https://graph.microsoft.com/Organization.ReadWrite.All              https://graph.microsoft.com/Synchronization.ReadWrite.All\" (provd adds openid              profile offline_access itself)"
        )
    };
    let resources: Vec<&str> = value
        .split_whitespace()
        .map(|s| s.rsplit_once('/').map_or("", |(resource, _)| resource))
        .collect();
    if resources.is_empty() || resources.iter().any(|r| r.is_empty() || *r != resources[0]) {
        return Err(bad());
    }
    Ok(Some(value.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// Both provd's short names and the installer's ENVIRONMENTNAME values, so
/// either can be copied over.
fn cloud(value: &str, _: &Source) -> Result<TenantCloud, String> {
    match value {
        "public" | "AzurePublic" => Ok(TenantCloud::Public),
        "usgov" | "AzureUSGovernment" => Ok(TenantCloud::UsGovernment),
        other => Err(format!("{other:?} is not one of \"public\", \"usgov\"")),
    }
}

/// An `https://` base URL without a trailing slash: the tenant is only
/// reached over TLS, and callers append paths.
fn https_url(url: &str, _: &Source) -> Result<Option<String>, String> {
    let rest = url.strip_prefix("https://").ok_or_else(|| {
        format!("{url:?} must start with https:// (the tenant is only reached over TLS)")
    })?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(format!("{url:?} is not a URL"));
    }
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

section! {
    #[derive(Debug, Clone)]
    pub struct TenantConfig: Default {
        /// "public" or "usgov" (the installer's AzurePublic, AzureUSGovernment).
        pub cloud: TenantCloud {
            toml: "tenant.cloud", env: "PROVD_TENANT_CLOUD", flag: "--tenant-cloud",
            example: "usgov", parse: cloud, default: TenantCloud::Public
        }
        /// Tenant id or domain in the sign-in URL; `organizations` lets any
        /// work account sign in.
        pub tenant: String {
            toml: "tenant.tenant", env: "PROVD_TENANT_ID", flag: "--tenant-id",
            example: "contoso.onmicrosoft.com", parse: parse::text,
            default: "organizations".into()
        }
        /// Public client for Graph when the tenant refuses Graph to the
        /// registration client: a second device code, for this client.
        pub client_id: String {
            toml: "tenant.client_id", env: "PROVD_TENANT_CLIENT_ID", flag: "--tenant-client-id",
            example: "00000000-0000-0000-0000-000000000001", parse: parse::text,
            default: DEFAULT_TENANT_CLIENT_ID.into()
        }
        /// Public client of the device code sign-in, for the registration
        /// scope and then (refresh grant) Graph.
        pub registration_client_id: String {
            toml: "tenant.registration_client_id", env: "PROVD_TENANT_REGISTRATION_CLIENT_ID",
            flag: "--tenant-registration-client-id",
            example: "00000000-0000-0000-0000-000000000002", parse: parse::text,
            default: DEFAULT_REGISTRATION_CLIENT_ID.into()
        }
        /// Scope of the registration token the agent's module is given.
        pub registration_scope: String {
            toml: "tenant.registration_scope", env: "PROVD_TENANT_REGISTRATION_SCOPE",
            flag: "--tenant-registration-scope",
            example: "api://00000000-0000-0000-0000-000000000003/user_impersonation",
            parse: one_scope, default: DEFAULT_REGISTRATION_SCOPE.into()
        }
        /// Scopes of provd's Graph token, space-separated, one resource.
        /// Default: the cloud's Graph with the least-privileged delegated
        /// permission of each call provd makes (OnPremisesPublishingProfiles,
        /// Organization, Application, Synchronization: ReadWrite.All;
        /// Policy.ReadWrite.HybridAuthentication), e.g.
        /// https://graph.microsoft.com/Synchronization.ReadWrite.All …; set
        /// https://graph.microsoft.com/.default to take what the tenant
        /// consented to the client instead.
        pub graph_scope: Option<String> {
            toml: "tenant.graph_scope", env: "PROVD_TENANT_GRAPH_SCOPE",
            flag: "--tenant-graph-scope",
            example: "https://graph.microsoft.us/.default", parse: resource_scopes, default: None
        }
        /// Overrides the cloud's sign-in authority (the lab emulator).
        pub authority: Option<String> {
            toml: "tenant.authority", env: "PROVD_TENANT_AUTHORITY", flag: "--tenant-authority",
            example: "https://127.0.0.1:9443", parse: https_url, default: None
        }
        /// Overrides the cloud's Graph endpoint (the lab emulator).
        pub graph: Option<String> {
            toml: "tenant.graph", env: "PROVD_TENANT_GRAPH", flag: "--tenant-graph",
            example: "https://127.0.0.1:9443", parse: https_url, default: None
        }
        /// CA bundle (PEM) to trust for the tenant instead of the public roots.
        pub ca_file: Option<PathBuf> {
            toml: "tenant.ca_file", env: "PROVD_TENANT_CA_FILE", flag: "--tenant-ca-file",
            example: "/etc/provd/tenant-ca.pem", parse: parse::some_path, default: None
        }
        /// Limit for each HTTP request to the tenant.
        pub request_timeout: Duration {
            toml: "tenant.request_timeout", env: "PROVD_TENANT_REQUEST_TIMEOUT",
            flag: "--tenant-request-timeout",
            example: "1m", parse: parse::duration, default: Duration::from_secs(30)
        }
    }
}
