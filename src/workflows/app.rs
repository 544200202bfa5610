//! The domain facade the transport calls, and what a daemon builds it from.

use std::sync::Arc;

use super::operations::Operations;
use super::{
    Error, PackageLimits, agent, apply, cloud_sync, decommission, diagnostics, directory,
    domain_controllers, drift, service_account, staging, status, tenant, verify, writeback,
};
use crate::backends::agent_config::AgentConfig;
use crate::backends::audit::{AuditLog, AuditMirror, OperationMirror};
use crate::backends::directory::{BindCredential, Directory};
use crate::backends::download::PackageDownload;
use crate::backends::host::{Cloud, Host, LogonRights};
use crate::backends::outbound::Outbound;
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
    /// DecommissionAgent / PlanDecommission (AgentService).
    pub decommission: Arc<decommission::DecommissionWorkflows>,
    pub dcs: Arc<domain_controllers::DomainControllerWorkflows>,
    pub directories: Arc<directory::DirectoryWorkflows>,
    pub gmsa: Arc<service_account::ServiceAccountWorkflows>,
    pub writeback: Arc<writeback::WritebackWorkflows>,
    pub verify: Arc<verify::VerifyWorkflows>,
    /// The scheduled checks and the agent-version watch (`[drift]`).
    pub drift: Arc<drift::DriftWorkflows>,
    /// GetHostStatus: the agent, the newest operation, the drift findings.
    pub status: Arc<status::StatusWorkflows>,
    pub apply: Arc<apply::ApplyWorkflows>,
    pub cloud_sync: Arc<cloud_sync::CloudSyncWorkflows>,
    pub host: Arc<super::host_fix::HostWorkflows>,
    pub diagnostics: Arc<diagnostics::DiagnosticsWorkflows>,
    /// PackageService: packages uploaded into staging.
    pub uploads: Arc<super::package::Uploads>,
    /// The audit trail the transport reports calls to.
    pub audit: Arc<super::Audit>,
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
    /// Verify's outbound probes from this host.
    pub outbound: Arc<dyn Outbound>,
    /// Install's https:// package sources.
    pub download: Arc<dyn PackageDownload>,
    /// The audit log, and where its records are copied.
    pub audit_log: Arc<dyn AuditLog>,
    pub audit_mirrors: Vec<Arc<dyn AuditMirror>>,
    /// Where each operation's outcome is copied.
    pub operation_mirrors: Vec<Arc<dyn OperationMirror>>,
    /// This host's computer account as `directory` binds it (a keytab on
    /// Linux, the service's own identity on Windows): who read-only RPCs
    /// given no credential read the directory as. `None`: nobody.
    pub host_identity: Option<BindCredential>,
}

/// Settings of the tenant side that workflows act on.
#[derive(Debug, Clone)]
pub struct TenantSettings {
    /// The cloud the tenant client is configured for.
    pub cloud: Cloud,
    /// The clients and scopes of the sign-in.
    pub clients: tenant::SignInClients,
    /// Where the agent's registration certificate is looked for
    /// (`[agent_module]`).
    pub registration_certificate: tenant::CertificateRule,
}

/// Filesystem locations workflows may write to, and the bounds on what
/// they copy there.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Where fetched packages are staged before they are verified and run.
    pub staging_dir: std::path::PathBuf,
    /// What Install copies into `staging_dir`.
    pub packages: PackageLimits,
    /// provd's own log file (`[log] file`), read into support bundles.
    pub log_file: Option<std::path::PathBuf>,
}

impl App {
    /// Builds the workflows and recovers what a previous run left
    /// unfinished: its operations become INTERRUPTED, then its staged
    /// packages and partial copies are removed (none is in use once no
    /// operation runs).
    /// `served` is what the TLS listener serves now, republished at each
    /// reload (Verify's `provd.certificate.expiry` reads it).
    pub async fn start(
        backends: Backends,
        paths: Paths,
        tenant_settings: TenantSettings,
        outbound: verify::OutboundSettings,
        served: verify::Served,
        audit: super::AuditSettings,
    ) -> Result<Arc<App>, Error> {
        let operations =
            Operations::recover(backends.store.clone(), backends.operation_mirrors).await?;
        let audit = super::Audit::start(backends.audit_log, backends.audit_mirrors, audit)
            .map_err(|e| Error::internal("cannot start the audit writer", e))?;
        staging::clean(&backends.store, &paths.staging_dir).await;
        let tenant = Arc::new(tenant::TenantWorkflows::new(
            operations.clone(),
            backends.tenant.clone(),
            backends.store.clone(),
            backends.host.clone(),
            backends.agent_config.clone(),
            tenant_settings.clients,
            tenant_settings.registration_certificate,
            backends.cloud_sync.clone(),
        ));
        let agent_changes = Arc::new(drift::AgentChanges::default());
        let log_file = paths.log_file.clone();
        let staging_dir = paths.staging_dir.clone();
        let uploads = Arc::new(super::package::Uploads::new(
            &paths.staging_dir,
            paths.packages.max_bytes,
            paths.packages.max_concurrent_uploads,
        ));
        let agent = Arc::new(agent::AgentWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            backends.host.clone(),
            agent_changes.clone(),
            paths,
            tenant.clone(),
            tenant_settings.cloud,
            agent::PackageSources {
                uploads: uploads.clone(),
                download: backends.download.clone(),
            },
        ));
        let agent_side =
            super::agent_module::AgentSide::new(&backends.host, &backends.agent_config);
        let dcs = Arc::new(domain_controllers::DomainControllerWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            backends.directory.clone(),
            agent_side.clone(),
            backends.host_identity.clone(),
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
            verify::OutboundProbes {
                outbound: backends.outbound.clone(),
                settings: Arc::new(outbound),
            },
            served,
        ));
        let decommission = Arc::new(decommission::DecommissionWorkflows::new(
            operations.clone(),
            backends.store.clone(),
            backends.host.clone(),
            agent_changes.clone(),
            staging_dir,
            tenant.clone(),
            backends.cloud_sync.clone(),
            dcs.clone(),
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
            decommission.clone(),
            agent_changes.clone(),
        ));
        let drift = Arc::new(drift::DriftWorkflows::new(
            backends.host.clone(),
            verify.clone(),
            agent_changes.clone(),
            apply.clone(),
        ));
        let status = Arc::new(status::StatusWorkflows::new(
            agent.clone(),
            operations.clone(),
            drift.clone(),
        ));
        let host = Arc::new(super::host_fix::HostWorkflows::new(
            operations.clone(),
            backends.host.clone(),
        ));
        let diagnostics = Arc::new(diagnostics::DiagnosticsWorkflows::new(
            backends.host.clone(),
            backends.store.clone(),
            verify.clone(),
            backends.agent_config.clone(),
            operations.clone(),
            log_file,
        ));
        Ok(Arc::new(App {
            uploads,
            decommission,
            diagnostics,
            host,
            audit,
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
            status,
            agent_config: backends.agent_config,
        }))
    }
}
