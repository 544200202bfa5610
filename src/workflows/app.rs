//! The domain facade the transport calls, and what a daemon builds it from.

use std::sync::Arc;

use super::operations::Operations;
use super::{
    Error, PackageLimits, agent, apply, cloud_sync, directory, domain_controllers, drift,
    service_account, staging, tenant, verify, writeback,
};
use crate::backends::agent_config::AgentConfig;
use crate::backends::directory::Directory;
use crate::backends::host::{Cloud, Host, LogonRights};
use crate::backends::store::Store;
use crate::backends::tenant::{CloudSyncApi, Tenant};

/// Who is calling: from the verified client certificate.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub name: String,
}

/// The domain facade the transport calls: one per daemon.
pub struct App {
    pub operations: Arc<Operations>,
    pub agent: Arc<agent::AgentWorkflows>,
    pub dcs: Arc<domain_controllers::DomainControllerWorkflows>,
    pub directories: Arc<directory::DirectoryWorkflows>,
    pub gmsa: Arc<service_account::ServiceAccountWorkflows>,
    pub writeback: Arc<writeback::WritebackWorkflows>,
    pub verify: Arc<verify::VerifyWorkflows>,
    /// The scheduled checks and the agent-version watch (`[drift]`).
    pub drift: Arc<drift::DriftWorkflows>,
    pub apply: Arc<apply::ApplyWorkflows>,
    pub cloud_sync: Arc<cloud_sync::CloudSyncWorkflows>,
    pub host: Arc<super::host_fix::HostWorkflows>,
    /// The agent's PowerShell module, for the workflows that will
    /// configure the agent through it (issue 14).
    #[expect(
        dead_code,
        reason = "no workflow configures the agent through its module yet"
    )]
    pub agent_config: Arc<dyn AgentConfig>,
}

/// The backends a daemon runs with; chosen by `src/daemon.rs` (the only
/// place that names concrete backends).
pub struct Backends {
    pub store: Arc<dyn Store>,
    pub host: Arc<dyn Host>,
    /// User rights (LSA on Windows), apart from `host`: see `LogonRights`.
    pub logon_rights: Arc<dyn LogonRights>,
    pub directory: Arc<dyn Directory>,
    pub tenant: Arc<dyn Tenant>,
    /// Graph's cloud sync configuration API (the same client as `tenant`
    /// in a daemon).
    pub cloud_sync: Arc<dyn CloudSyncApi>,
    pub agent_config: Arc<dyn AgentConfig>,
}

/// Settings of the tenant side that workflows act on.
#[derive(Debug, Clone)]
pub struct TenantSettings {
    /// The cloud the tenant client is configured for.
    pub cloud: Cloud,
    /// The clients and scopes of the sign-in.
    pub clients: tenant::SignInClients,
}

/// Filesystem locations workflows may write to, and the bounds on what
/// they copy there.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Where fetched packages are staged before they are verified and run.
    pub staging_dir: std::path::PathBuf,
    /// What Install copies into `staging_dir`.
    pub packages: PackageLimits,
}

impl App {
    /// Builds the workflows and recovers what a previous run left
    /// unfinished: its operations become INTERRUPTED, then its staged
    /// packages and partial copies are removed (none is in use once no
    /// operation runs).
    pub async fn start(
        backends: Backends,
        paths: Paths,
        tenant_settings: TenantSettings,
    ) -> Result<Arc<App>, Error> {
        let operations = Operations::recover(backends.store.clone()).await?;
        staging::clean(&backends.store, &paths.staging_dir).await;
        let tenant = Arc::new(tenant::TenantWorkflows::new(
            operations.clone(),
            backends.tenant.clone(),
            backends.store.clone(),
            backends.host.clone(),
            backends.agent_config.clone(),
            tenant_settings.clients,
        ));
        let agent_changes = Arc::new(drift::AgentChanges::default());
        let agent = Arc::new(agent::AgentWorkflows::new(
            operations.clone(),
            backends.host.clone(),
            agent_changes.clone(),
            paths,
            tenant.clone(),
            tenant_settings.cloud,
        ));
        let agent_side =
            super::agent_module::AgentSide::new(&backends.host, &backends.agent_config);
        let dcs = Arc::new(domain_controllers::DomainControllerWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            backends.directory.clone(),
            agent_side.clone(),
        ));
        let directories = Arc::new(directory::DirectoryWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            dcs.clone(),
            agent_side.clone(),
        ));
        let gmsa = Arc::new(service_account::ServiceAccountWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            dcs.clone(),
            backends.host.clone(),
            backends.agent_config.clone(),
        ));
        let writeback = Arc::new(writeback::WritebackWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            dcs.clone(),
            backends.host.clone(),
            tenant.clone(),
        ));
        let cloud_sync = Arc::new(cloud_sync::CloudSyncWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            tenant.clone(),
            backends.cloud_sync.clone(),
        ));
        let verify = Arc::new(verify::VerifyWorkflows::new(
            backends.store.clone(),
            dcs.clone(),
            backends.host.clone(),
            backends.logon_rights.clone(),
            backends.agent_config.clone(),
            tenant.clone(),
            gmsa.clone(),
            writeback.clone(),
            cloud_sync.clone(),
        ));
        let apply = Arc::new(apply::ApplyWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            backends.host.clone(),
            tenant.clone(),
            agent.clone(),
            directories.clone(),
            dcs.clone(),
            gmsa.clone(),
            writeback.clone(),
            cloud_sync.clone(),
            agent_changes.clone(),
        ));
        let drift = Arc::new(drift::DriftWorkflows::new(
            backends.host.clone(),
            verify.clone(),
            agent_changes,
            apply.clone(),
        ));
        let host = Arc::new(super::host_fix::HostWorkflows::new(
            operations.clone(),
            backends.host.clone(),
        ));
        Ok(Arc::new(App {
            host,
            apply,
            cloud_sync,
            operations,
            agent,
            dcs,
            directories,
            gmsa,
            writeback,
            verify,
            drift,
            agent_config: backends.agent_config,
        }))
    }
}
