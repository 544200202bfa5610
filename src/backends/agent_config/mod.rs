//! The agent's own configuration surface: Microsoft's PowerShell module
//! `Microsoft.CloudSync.PowerShell.dll`, installed with the provisioning
//! agent ([`MODULE_PATH`], as
//! <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-install-pshell>
//! imports it). Its cmdlets are the only documented way to register the
//! agent, give it its gMSA, and tell it which domains (with which preferred
//! DCs) it serves. Microsoft publishes no reference for them, only the
//! examples on that page and on how-to-gmsa-cmdlets: what the scripts pass
//! is what those examples pass.
//!
//! provd never builds PowerShell text: each action is a fixed, reviewed
//! script ([`scripts`]) that reads its arguments, secrets included, as one
//! JSON object on stdin and answers one result line ([`protocol`]).
//! [`AgentConfig`] is what workflows call; `windows::PowerShellAgentConfig`
//! runs the scripts, [`UnavailableAgentConfig`] answers on every other
//! platform.

pub mod scripts;

pub mod classify;
mod error;
pub mod protocol;
pub mod transcript;
mod unavailable;
#[cfg(windows)]
pub mod windows;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub use error::AgentConfigError;
pub use unavailable::UnavailableAgentConfig;

use crate::model::BindCredential;

/// Where the agent installs its module; the scripts import exactly this
/// literal (never a path from data).
pub const MODULE_PATH: &str = r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Microsoft.CloudSync.PowerShell.dll";

/// Microsoft's AADCloudSyncTools module (a folder in the agent's), as
/// <https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/reference-powershell>
/// imports it; the verbose-trace scripts import exactly this literal.
pub const TOOLS_MODULE_PATH: &str =
    r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Utility\AADCloudSyncTools";

/// The agent service whose logon `Add-AADCloudSyncGMSA` changes.
pub const AGENT_SERVICE: &str = "AADConnectProvisioningAgent";

/// What one module call needs besides its own arguments.
pub struct RunContext<'a> {
    /// Cancelling it stops the call and everything it started.
    pub cancel: &'a CancellationToken,
    /// Receives the call's output lines, in order, already redacted and
    /// capped (`transcript.rs`); the workflow turns them into events. Called
    /// while the output is read, so it must not block.
    pub transcript: &'a (dyn Fn(String) + Send + Sync),
}

/// What `Connect-AADCloudSyncAzureAD -AccessToken` takes. `Debug` leaves the
/// token out.
pub struct TenantConnection {
    /// A token of the registration audience (not Graph).
    pub access_token: SecretString,
    /// The tenant's GUID, from the id_token's `tid`.
    pub tenant_id: String,
    /// The signed-in administrator, from the id_token's `preferred_username`.
    pub user_principal_name: String,
}

impl std::fmt::Debug for TenantConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConnection")
            .field("tenant_id", &self.tenant_id)
            .field("user_principal_name", &self.user_principal_name)
            .finish_non_exhaustive()
    }
}

/// The module's state on this host, read without importing it (so it
/// answers even when the import itself fails).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleInfo {
    pub dll_path: String,
    /// The dll's FileVersion; `None` when the file is absent.
    pub version: Option<String>,
    /// Scope → policy, as `Get-ExecutionPolicy -List` lists them.
    pub execution_policies: Vec<(String, String)>,
    /// The agent registry key's `TenantID`: the tenant it is registered with.
    pub registered_tenant: Option<String>,
}

/// A domain the agent serves, as `Get-AADCloudSyncDomains` lists it. The
/// cmdlet's output shape is undocumented, so every property is kept in
/// `raw` for messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentDomain {
    pub domain: String,
    pub preferred_dcs: Vec<String>,
    pub raw: BTreeMap<String, String>,
}

/// The agent's configuration through its module. Every call is one script
/// run; none keeps state between calls.
#[async_trait::async_trait]
pub trait AgentConfig: Send + Sync + 'static {
    /// `Err(reason)` when this host cannot run the module at all.
    fn availability(&self) -> Result<(), String>;
    /// The module's file, version, execution policies and registered tenant.
    async fn module_info(&self, cx: &RunContext<'_>) -> Result<ModuleInfo, AgentConfigError>;
    /// `Connect-AADCloudSyncAzureAD -AccessToken -TenantId -UserPrincipalName`:
    /// registers the agent with the tenant.
    async fn connect_tenant(
        &self,
        connection: &TenantConnection,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError>;
    /// `Add-AADCloudSyncGMSA -CustomGMSAName name$` (provd created or
    /// validated the account over LDAP first).
    async fn use_gmsa(
        &self,
        sam_account_name: &str,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError>;
    /// `Add-AADCloudSyncADDomain -DomainName -Credential
    /// [-PreferredDomainControllers]`, with the domain admin's credential.
    async fn add_domain(
        &self,
        domain: &str,
        credential: &BindCredential,
        preferred_dcs: &[String],
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError>;
    /// `Set-AADCloudSyncPasswordWritebackConfiguration -Enable`, after a
    /// `Connect` in the same session.
    async fn set_writeback(
        &self,
        enable: bool,
        connection: &TenantConnection,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError>;
    /// `Get-AADCloudSyncDomains`.
    async fn list_domains(&self, cx: &RunContext<'_>)
    -> Result<Vec<AgentDomain>, AgentConfigError>;
    /// AADCloudSyncTools' `Start-AADCloudSyncToolsVerboseLogs` (`on`) or
    /// `Stop-AADCloudSyncToolsVerboseLogs`: Microsoft's own edit of the
    /// agent's exe.config, then a restart of the agent service.
    async fn verbose_trace(&self, on: bool, cx: &RunContext<'_>) -> Result<(), AgentConfigError>;
}
