//! Microsoft Graph's cloud sync configuration API, as Microsoft documents
//! it: <https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-inbound-synch-ms-graph>
//! (the sequence: tenant flag, application template, jobs, secrets, schema,
//! start) and the synchronization API reference
//! (<https://learn.microsoft.com/graph/api/resources/synchronization-overview?view=graph-rest-beta>).
//! Everything is Graph beta, as the how-to uses it.
//!
//! [`CloudSyncApi`] is a capability of its own beside [`super::Tenant`]
//! (sign-in and the agent list): the same [`super::HttpTenant`] implements
//! both. Every call is delegated (a signed-in Hybrid Identity
//! Administrator): Graph supports no application permission for these.
//!
//! [`super::HttpTenant`]'s calls live one file per capability: `org` (the
//! tenant flag), `apps` (the application template), `jobs` (jobs and their
//! status), `secrets`, `schema` (scope and password hashes), `groups`
//! (agent group links); `call` holds what they share.

mod apps;
mod call;
mod groups;
mod jobs;
mod org;
mod schema;
mod secrets;

#[cfg(test)]
mod loopback_tests;
#[cfg(test)]
mod test_server;
#[cfg(test)]
mod wire_tests;

pub use secrets::canonical_secret_values;

use super::http::HttpTenant;
use super::{TenantError, Tokens};
use crate::model::{
    JobSchema, JobTemplate, ResetScope, SecretsRead, SyncApp, SyncJob, SyncScope, SyncSecrets,
};

/// The state of the tenant flag that turns directory sync on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: String,
    /// `onPremisesSyncEnabled`: `None` until first set.
    pub sync_enabled: Option<bool>,
}

/// Each call provd makes, for messages and the permission it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncCall {
    ReadOrganization,
    EnableSync,
    ListApps,
    Instantiate,
    ListJobs,
    CreateJob,
    StartJob,
    PauseJob,
    RestartJob,
    ReadSecrets,
    PutSecrets,
    ReadSchema,
    PutSchema,
    AssignAgent,
    RemoveAgent,
    DeleteApp,
}

/// Roles that may configure cloud sync, as each synchronization API page
/// lists them.
pub const SYNC_ROLES: &str = "Hybrid Identity Administrator (or Application Administrator, Cloud \
                              Application Administrator)";

impl SyncCall {
    /// The request, for messages.
    pub fn request(self) -> &'static str {
        match self {
            Self::ReadOrganization => "GET /organization",
            Self::EnableSync => "PATCH /organization/{id}",
            Self::ListApps => "GET /servicePrincipals",
            Self::Instantiate => "POST /applicationTemplates/{id}/instantiate",
            Self::ListJobs => "GET /servicePrincipals/{id}/synchronization/jobs",
            Self::CreateJob => "POST /servicePrincipals/{id}/synchronization/jobs",
            Self::StartJob => "POST …/synchronization/jobs/{id}/start",
            Self::PauseJob => "POST …/synchronization/jobs/{id}/pause",
            Self::RestartJob => "POST …/synchronization/jobs/{id}/restart",
            Self::ReadSecrets => "GET …/synchronization/secrets",
            Self::PutSecrets => "PUT …/synchronization/secrets",
            Self::ReadSchema => "GET …/synchronization/jobs/{id}/schema",
            Self::PutSchema => "PUT …/synchronization/jobs/{id}/schema",
            Self::AssignAgent => "POST …/provisioning/agents/{id}/agentGroups/$ref",
            Self::RemoveAgent => "DELETE …/provisioning/agents/{id}/agentGroups/{id}/$ref",
            Self::DeleteApp => "DELETE /servicePrincipals/{id}",
        }
    }

    /// The least-privileged delegated permission Graph documents for the
    /// call (each API page's permissions table).
    pub fn permission(self) -> &'static str {
        match self {
            Self::ReadOrganization => "Organization.Read.All",
            Self::EnableSync => "Organization.ReadWrite.All",
            Self::ListApps => "Application.Read.All",
            Self::Instantiate => "Application.ReadWrite.All",
            Self::ListJobs | Self::ReadSecrets | Self::ReadSchema => "Synchronization.Read.All",
            Self::CreateJob
            | Self::StartJob
            | Self::PauseJob
            | Self::RestartJob
            | Self::PutSecrets
            | Self::PutSchema => "Synchronization.ReadWrite.All",
            Self::AssignAgent => "Policy.ReadWrite.HybridAuthentication",
            Self::RemoveAgent => "Directory.ReadWrite.All",
            Self::DeleteApp => "Application.ReadWrite.All",
        }
    }

    /// What a 403 on this call means: the permission that would allow it
    /// (the role is added where tenant errors become workflow errors).
    pub fn forbidden(self, graph_message: &str) -> String {
        format!(
            "{} needs the delegated permission {} ({graph_message})",
            self.request(),
            self.permission()
        )
    }
}

/// Microsoft Graph's cloud sync configuration calls. Errors are the
/// tenant's ([`TenantError`]); `Forbidden` messages name the permission and
/// role ([`SyncCall::forbidden`]).
#[async_trait::async_trait]
pub trait CloudSyncApi: Send + Sync + 'static {
    /// `GET /organization`: the tenant's `onPremisesSyncEnabled`.
    async fn organization(&self, tokens: &Tokens) -> Result<Organization, TenantError>;
    /// `PATCH /organization/{id}` `{"onPremisesSyncEnabled": true}`.
    async fn enable_sync(&self, tokens: &Tokens, organization_id: &str) -> Result<(), TenantError>;
    /// The service principals made from [`crate::model::CLOUD_SYNC_APP_TEMPLATE`].
    async fn sync_apps(&self, tokens: &Tokens) -> Result<Vec<SyncApp>, TenantError>;
    /// `POST /applicationTemplates/{id}/instantiate`. Not idempotent: a
    /// retry after an unanswered request may make a second application.
    async fn instantiate(
        &self,
        tokens: &Tokens,
        display_name: &str,
    ) -> Result<SyncApp, TenantError>;
    async fn jobs(&self, tokens: &Tokens, sp: &str) -> Result<Vec<SyncJob>, TenantError>;
    async fn create_job(
        &self,
        tokens: &Tokens,
        sp: &str,
        template: JobTemplate,
    ) -> Result<SyncJob, TenantError>;
    async fn start_job(&self, tokens: &Tokens, sp: &str, job: &str) -> Result<(), TenantError>;
    async fn pause_job(&self, tokens: &Tokens, sp: &str, job: &str) -> Result<(), TenantError>;
    /// `resetScope` is the flags joined by ", ".
    async fn restart_job(
        &self,
        tokens: &Tokens,
        sp: &str,
        job: &str,
        scopes: &[ResetScope],
    ) -> Result<(), TenantError>;
    async fn secrets(&self, tokens: &Tokens, sp: &str) -> Result<SecretsRead, TenantError>;
    /// One PUT carrying all three keys: Graph has no PATCH for secrets, and
    /// a key left out is removed.
    async fn put_secrets(
        &self,
        tokens: &Tokens,
        sp: &str,
        secrets: &SyncSecrets,
    ) -> Result<(), TenantError>;
    async fn schema(&self, tokens: &Tokens, sp: &str, job: &str) -> Result<JobSchema, TenantError>;
    /// Reads the whole schema, sets the scope filter and the password hash
    /// mapping, and PUTs the whole schema back ([`TenantError::TooLarge`]
    /// when it would pass Graph's 4 MB).
    async fn set_schema(
        &self,
        tokens: &Tokens,
        sp: &str,
        job: &str,
        scope: &SyncScope,
        password_hash_mapping: bool,
    ) -> Result<(), TenantError>;
    /// Links the agent to the agent group (`$ref`).
    async fn assign_agent(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        group_id: &str,
    ) -> Result<(), TenantError>;
    /// Unlinks the agent from the agent group (`$ref`).
    async fn remove_agent(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        group_id: &str,
    ) -> Result<(), TenantError>;
    /// `DELETE /servicePrincipals/{id}`: the configuration with its jobs,
    /// secrets and schema. A service principal already gone is `Ok`.
    async fn delete_app(&self, tokens: &Tokens, sp: &str) -> Result<(), TenantError>;
}

#[async_trait::async_trait]
impl CloudSyncApi for HttpTenant {
    async fn organization(&self, tokens: &Tokens) -> Result<Organization, TenantError> {
        HttpTenant::organization(self, tokens).await
    }

    async fn enable_sync(&self, tokens: &Tokens, organization_id: &str) -> Result<(), TenantError> {
        HttpTenant::enable_sync(self, tokens, organization_id).await
    }

    async fn sync_apps(&self, tokens: &Tokens) -> Result<Vec<SyncApp>, TenantError> {
        HttpTenant::sync_apps(self, tokens).await
    }

    async fn instantiate(
        &self,
        tokens: &Tokens,
        display_name: &str,
    ) -> Result<SyncApp, TenantError> {
        HttpTenant::instantiate(self, tokens, display_name).await
    }

    async fn jobs(&self, tokens: &Tokens, sp: &str) -> Result<Vec<SyncJob>, TenantError> {
        HttpTenant::jobs(self, tokens, sp).await
    }

    async fn create_job(
        &self,
        tokens: &Tokens,
        sp: &str,
        template: JobTemplate,
    ) -> Result<SyncJob, TenantError> {
        HttpTenant::create_job(self, tokens, sp, template).await
    }

    async fn start_job(&self, tokens: &Tokens, sp: &str, job: &str) -> Result<(), TenantError> {
        HttpTenant::start_job(self, tokens, sp, job).await
    }

    async fn pause_job(&self, tokens: &Tokens, sp: &str, job: &str) -> Result<(), TenantError> {
        HttpTenant::pause_job(self, tokens, sp, job).await
    }

    async fn restart_job(
        &self,
        tokens: &Tokens,
        sp: &str,
        job: &str,
        scopes: &[ResetScope],
    ) -> Result<(), TenantError> {
        HttpTenant::restart_job(self, tokens, sp, job, scopes).await
    }

    async fn secrets(&self, tokens: &Tokens, sp: &str) -> Result<SecretsRead, TenantError> {
        HttpTenant::secrets(self, tokens, sp).await
    }

    async fn put_secrets(
        &self,
        tokens: &Tokens,
        sp: &str,
        secrets: &SyncSecrets,
    ) -> Result<(), TenantError> {
        HttpTenant::put_secrets(self, tokens, sp, secrets).await
    }

    async fn schema(&self, tokens: &Tokens, sp: &str, job: &str) -> Result<JobSchema, TenantError> {
        HttpTenant::schema(self, tokens, sp, job).await
    }

    async fn set_schema(
        &self,
        tokens: &Tokens,
        sp: &str,
        job: &str,
        scope: &SyncScope,
        password_hash_mapping: bool,
    ) -> Result<(), TenantError> {
        HttpTenant::set_schema(self, tokens, sp, job, scope, password_hash_mapping).await
    }

    async fn assign_agent(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        group_id: &str,
    ) -> Result<(), TenantError> {
        HttpTenant::assign_agent(self, tokens, agent_id, group_id).await
    }

    async fn remove_agent(
        &self,
        tokens: &Tokens,
        agent_id: &str,
        group_id: &str,
    ) -> Result<(), TenantError> {
        HttpTenant::remove_agent(self, tokens, agent_id, group_id).await
    }

    async fn delete_app(&self, tokens: &Tokens, sp: &str) -> Result<(), TenantError> {
        HttpTenant::delete_app(self, tokens, sp).await
    }
}
