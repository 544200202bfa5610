//! The daemon's assembly: the one place that names concrete backends (LDAP,
//! HTTP tenant, redb store, the audit log file, the platform's host and agent module), unless the embedder or the
//! hermetic test tier replaced them through [`DaemonBuilder`]; then the
//! workflows over them, and the transport over the workflows.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::backends::agent_config::AgentConfig;
#[cfg(not(windows))]
use crate::backends::agent_config::UnavailableAgentConfig;
use crate::backends::audit::{
    AuditLog, AuditMirror, CheckpointSigner, FileAuditLog, OperationMirror, OtelMirror, Retention,
};
use crate::backends::directory::ldap::{LdapSettings, LdapTransport};
use crate::backends::directory::{
    BindCredential, BindSecret, Directory, KerberosSource, LdapDirectory,
};
use crate::backends::download::{HttpsDownload, PackageDownload};
use crate::backends::host::{Cloud, Host, LogonRights};
#[cfg(not(windows))]
use crate::backends::host::{UnavailableHost, UnavailableLogonRights};
use crate::backends::outbound::endpoints::{self, Endpoint};
use crate::backends::outbound::{NetOutbound, Outbound, Target};
use crate::backends::store::{RedbStore, Store};
use crate::backends::tenant::{
    ClientScope, CloudSyncApi, HttpTenant, RetryPolicy, Tenant, TenantEndpoints, graph_scope,
};
use crate::config::{self, Config, ServerCertSource};
use crate::workflows::SignInClients;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create state directory {path}: {reason}")]
    StateDir { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] crate::backends::store::StoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Tls(#[from] crate::transport::tls::TlsError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot start workflows: {0}")]
    Workflows(#[from] crate::workflows::Error),
    #[error(transparent)]
    Directory(#[from] crate::backends::directory::DirectoryError),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    #[error(transparent)]
    Tenant(#[from] crate::backends::tenant::TenantError),
    #[error("cannot build the outbound probes' TLS client: {0}")]
    Outbound(rustls::Error),
    #[error("cannot build the https package sources' client (host.package_ca_file): {0}")]
    PackageSource(crate::backends::download::DownloadError),
    #[error(transparent)]
    Audit(#[from] crate::backends::audit::AuditError),
}

/// The host backend of the platform provd was built for.
fn platform_host() -> Arc<dyn Host> {
    #[cfg(windows)]
    {
        Arc::new(crate::backends::host::windows::WindowsHost::new())
    }
    #[cfg(not(windows))]
    {
        Arc::new(UnavailableHost::for_this_platform())
    }
}

/// How the platform provd was built for reads user rights.
fn platform_logon_rights() -> Arc<dyn LogonRights> {
    #[cfg(windows)]
    {
        Arc::new(crate::backends::host::lsa::LsaLogonRights)
    }
    #[cfg(not(windows))]
    {
        Arc::new(UnavailableLogonRights)
    }
}

/// How the platform provd was built for runs the agent's PowerShell module.
#[cfg_attr(not(windows), allow(unused_variables))]
fn platform_agent_config(config: &config::AgentModuleConfig) -> Arc<dyn AgentConfig> {
    #[cfg(windows)]
    {
        Arc::new(
            crate::backends::agent_config::windows::PowerShellAgentConfig::new(
                config.powershell.clone(),
                config.scripts_dir.clone(),
                config.script_timeout,
            ),
        )
    }
    #[cfg(not(windows))]
    {
        Arc::new(UnavailableAgentConfig::for_this_platform())
    }
}

/// Where audit records and operations' outcomes are copied on this
/// platform: a collector (records, when `[telemetry]` exports) and, on
/// Windows, the Application event log (both, through one source handle).
fn mirrors() -> Mirrors {
    #[allow(unused_mut)]
    let mut audit: Vec<Arc<dyn AuditMirror>> = vec![Arc::new(OtelMirror)];
    #[allow(unused_mut)]
    let mut operations: Vec<Arc<dyn OperationMirror>> = Vec::new();
    #[cfg(windows)]
    match crate::backends::audit::eventlog::EventLogMirror::open() {
        Ok(mirror) => {
            let mirror = Arc::new(mirror);
            audit.push(mirror.clone());
            operations.push(mirror);
        }
        Err(err) => tracing::warn!(
            error = %err,
            "no event log source; audit records and operation outcomes go to provd's files only"
        ),
    }
    Mirrors { audit, operations }
}

struct Mirrors {
    audit: Vec<Arc<dyn AuditMirror>>,
    operations: Vec<Arc<dyn OperationMirror>>,
}

/// The tenant client for the configured cloud, or the overridden
/// endpoints (the lab emulator).
fn tenant_client(config: &config::TenantConfig) -> Result<HttpTenant, DaemonError> {
    let mut endpoints = TenantEndpoints::for_cloud(cloud(config), &config.tenant);
    if let Some(authority) = &config.authority {
        endpoints.authority.clone_from(authority);
    }
    // Only where Graph is reached changes: `tenant.graph_scope` keeps
    // naming the resource, the audience the tenant (and the lab emulator)
    // issues Graph tokens for.
    if let Some(graph) = &config.graph {
        endpoints.graph.clone_from(graph);
    }
    Ok(HttpTenant::new(
        endpoints,
        config.ca_file.as_deref(),
        config.request_timeout,
        RetryPolicy::default(),
    )?)
}

fn cloud(config: &config::TenantConfig) -> Cloud {
    match config.cloud {
        config::TenantCloud::Public => Cloud::AzurePublic,
        config::TenantCloud::UsGovernment => Cloud::AzureUsGovernment,
    }
}

/// The clients and scopes of the sign-in (`[tenant]`).
fn sign_in_clients(config: &config::TenantConfig) -> SignInClients {
    SignInClients {
        registration: ClientScope {
            client_id: config.registration_client_id.clone(),
            scope: config.registration_scope.clone(),
        },
        graph: ClientScope {
            client_id: config.client_id.clone(),
            scope: config
                .graph_scope
                .clone()
                .unwrap_or_else(|| graph_scope(cloud(config))),
        },
    }
}

/// What Verify's outbound checks probe: `[reachability] endpoints`, or the
/// cloud's documented list.
fn outbound_settings(config: &Config) -> crate::workflows::verify::OutboundSettings {
    let r = &config.reachability;
    let endpoints = if r.endpoints.is_empty() {
        endpoints::documented(cloud(&config.tenant), &config.tenant.tenant)
    } else {
        r.endpoints
            .iter()
            .map(|u| {
                Endpoint::Probe(match u.scheme {
                    config::OutboundScheme::Https => Target::Https {
                        host: u.host.clone(),
                        port: u.port,
                    },
                    config::OutboundScheme::Http => Target::Http {
                        host: u.host.clone(),
                        port: u.port,
                        path: u.path.clone(),
                    },
                })
            })
            .collect()
    };
    crate::workflows::verify::OutboundSettings {
        endpoints,
        expected_issuers: r.expected_issuers.clone(),
        timeout: r.timeout,
    }
}

/// Entry point for embedding provd.
pub struct Daemon;

impl Daemon {
    pub fn builder(config: Config) -> DaemonBuilder {
        DaemonBuilder {
            config,
            host: None,
            logon_rights: None,
            directory: None,
            tenant: None,
            store: None,
            agent_config: None,
            outbound: None,
            audit_log: None,
        }
    }
}

/// Assembles a daemon. Each backend defaults to the real one the config
/// describes; an embedder (or the hermetic test tier) may replace any.
pub struct DaemonBuilder {
    config: Config,
    host: Option<Arc<dyn Host>>,
    logon_rights: Option<Arc<dyn LogonRights>>,
    directory: Option<Arc<dyn Directory>>,
    tenant: Option<(Arc<dyn Tenant>, Arc<dyn CloudSyncApi>)>,
    store: Option<Arc<dyn Store>>,
    agent_config: Option<Arc<dyn AgentConfig>>,
    outbound: Option<Arc<dyn Outbound>>,
    audit_log: Option<Arc<dyn AuditLog>>,
}

impl DaemonBuilder {
    /// Replaces the platform's host backend.
    pub fn host(mut self, host: Arc<dyn Host>) -> Self {
        self.host = Some(host);
        self
    }

    /// Replaces the platform's user-rights backend (LSA on Windows).
    pub fn logon_rights(mut self, logon_rights: Arc<dyn LogonRights>) -> Self {
        self.logon_rights = Some(logon_rights);
        self
    }

    /// Replaces the LDAP directory backend.
    pub fn directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Replaces the HTTP tenant (Entra ID / Graph) backend: sign-in, the
    /// agent list and the cloud sync configuration API, one client.
    pub fn tenant<T: Tenant + CloudSyncApi>(mut self, tenant: Arc<T>) -> Self {
        self.tenant = Some((tenant.clone(), tenant));
        self
    }

    /// Replaces the platform's agent-module runner (PowerShell on Windows).
    pub fn agent_config(mut self, agent_config: Arc<dyn AgentConfig>) -> Self {
        self.agent_config = Some(agent_config);
        self
    }

    /// Replaces Verify's outbound probes (TCP and TLS from this host).
    pub fn outbound(mut self, outbound: Arc<dyn Outbound>) -> Self {
        self.outbound = Some(outbound);
        self
    }

    /// Replaces the redb store in `state_dir`.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Replaces the audit log file (`[audit] path`).
    pub fn audit_log(mut self, audit_log: Arc<dyn AuditLog>) -> Self {
        self.audit_log = Some(audit_log);
        self
    }

    /// Opens the store, recovers interrupted operations, binds the port and
    /// starts serving. Returns once the port accepts connections.
    pub async fn start(self) -> Result<DaemonHandle, DaemonError> {
        crate::transport::tls::install_crypto_provider();
        // Instruments from the meter provider installed now (by `provd serve`
        // through `telemetry::init`, or by the embedder); provd itself
        // installs no global subscriber or provider here.
        crate::telemetry::refresh_metrics();
        let config = self.config;
        // TLS first: a bad file fails start-up before the store is touched,
        // and Verify reads what the listener serves. `stop` ends its reload
        // task, also when a later step fails.
        let stop = CancellationToken::new();
        let stop_on_error = stop.clone().drop_guard();
        let sources = crate::transport::tls::TlsSources {
            server: config.tls.server_source()?,
            client_ca: config.tls.client_ca_source()?,
            client_crl: config.tls.client_crl.clone(),
        };
        let server_files = match &sources.server {
            ServerCertSource::Files { cert, key } => Some((cert.clone(), key.clone())),
            ServerCertSource::Store { .. } => None,
        };
        let tls = crate::transport::tls::ReloadingConfig::start(
            sources,
            config.tls.reload_interval,
            stop.clone(),
        )?;
        std::fs::create_dir_all(&config.state_dir).map_err(|e| DaemonError::StateDir {
            path: config.state_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let store: Arc<dyn Store> = match self.store {
            Some(store) => store,
            None => {
                let store_path = config.state_dir.join("provd.redb");
                Arc::new(
                    tokio::task::spawn_blocking(move || RedbStore::open(&store_path))
                        .await
                        .map_err(|e| DaemonError::StateDir {
                            path: "provd.redb".into(),
                            reason: e.to_string(),
                        })??,
                )
            }
        };
        let audit_log: Arc<dyn AuditLog> = match self.audit_log {
            Some(log) => log,
            None => {
                let path = config.audit.file(&config.state_dir);
                // Checkpoints are signed with the key the listener serves:
                // its files, or the store key it holds.
                let signer = match server_files {
                    Some((cert, key)) => CheckpointSigner::Files { cert, key },
                    None => CheckpointSigner::Served(tls.key.clone()),
                };
                Arc::new(
                    tokio::task::spawn_blocking(move || FileAuditLog::open(&path, Some(signer)))
                        .await
                        .map_err(|e| DaemonError::StateDir {
                            path: "audit log".into(),
                            reason: e.to_string(),
                        })??,
                )
            }
        };
        let host = self.host.unwrap_or_else(|| platform_host());
        let logon_rights = self.logon_rights.unwrap_or_else(|| platform_logon_rights());
        let agent_config = self
            .agent_config
            .unwrap_or_else(|| platform_agent_config(&config.agent_module));
        let (tenant, cloud_sync): (Arc<dyn Tenant>, Arc<dyn CloudSyncApi>) = match self.tenant {
            Some(both) => both,
            None => {
                let client = Arc::new(tenant_client(&config.tenant)?);
                (client.clone(), client)
            }
        };
        let outbound: Arc<dyn Outbound> = match self.outbound {
            Some(outbound) => outbound,
            None => Arc::new(NetOutbound::new().map_err(DaemonError::Outbound)?),
        };
        let directory: Arc<dyn Directory> = match self.directory {
            Some(directory) => directory,
            None => Arc::new(LdapDirectory::new(
                config.directory.ca_file.as_deref(),
                &config.directory.dns_servers,
                LdapSettings {
                    transport: match config.directory.transport {
                        config::DirectoryTransport::Ldaps => LdapTransport::Ldaps,
                        config::DirectoryTransport::StartTls => LdapTransport::StartTls,
                    },
                    kerberos_over_tls: config.directory.kerberos_layer
                        == config::KerberosLayer::Tls,
                    connect_timeout: config.directory.connect_timeout,
                    operation_timeout: config.directory.operation_timeout,
                    page_size: i32::try_from(config.directory.page_size).unwrap_or(i32::MAX),
                },
            )?),
        };
        let download: Arc<dyn PackageDownload> = Arc::new(
            HttpsDownload::new(config.host.package_ca_file.as_deref())
                .map_err(DaemonError::PackageSource)?,
        );
        let host_identity = host_identity(&config.directory, host.as_ref());
        let mirrors = mirrors();
        let app = crate::workflows::App::start(
            crate::workflows::Backends {
                store,
                host,
                logon_rights,
                directory,
                tenant,
                cloud_sync,
                agent_config,
                outbound,
                download,
                audit_log,
                audit_mirrors: mirrors.audit,
                operation_mirrors: mirrors.operations,
                host_identity,
            },
            crate::workflows::Paths {
                staging_dir: config.state_dir.join("staging"),
                packages: crate::workflows::PackageLimits {
                    max_bytes: config.host.max_package_bytes,
                    allow_fifo: config.host.allow_fifo_packages,
                    max_concurrent_uploads: config.host.max_concurrent_uploads,
                },
                log_file: config.log.file.clone(),
            },
            crate::workflows::TenantSettings {
                cloud: cloud(&config.tenant),
                clients: sign_in_clients(&config.tenant),
                registration_certificate: crate::workflows::CertificateRule {
                    store: config.agent_module.registration_certificate_store.clone(),
                    subject: config.agent_module.registration_certificate_subject.clone(),
                },
            },
            outbound_settings(&config),
            tls.served.clone(),
            crate::workflows::AuditSettings {
                retention: Retention {
                    max_age: config.audit.max_age,
                    max_records: config.audit.max_records,
                },
                denied_rate: config.audit.denied_rate,
                denied_burst: config.audit.denied_burst,
            },
        )
        .await?;

        let drift = app.drift.clone();
        let audit = app.audit.clone();
        // At shutdown, verbose-trace windows are cut short and their Stop
        // waited for: the agent must not be left tracing verbosely.
        let windows = tokio::spawn({
            let diagnostics = app.diagnostics.clone();
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                diagnostics.end_windows().await;
            }
        });
        let routers = crate::transport::services::routers(app, &config.http.allowed_origins)
            .await
            .map_err(DaemonError::Reflection)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| DaemonError::Bind {
                addr: config.listen,
                reason: e.to_string(),
            })?;
        let local_addr = listener.local_addr().map_err(|e| DaemonError::Bind {
            addr: config.listen,
            reason: e.to_string(),
        })?;
        tracing::info!(addr = %local_addr, "provd serving gRPC and HTTP/JSON over mTLS");
        let task = tokio::spawn(crate::transport::server::serve(
            listener,
            tls.current,
            routers,
            stop.clone(),
            config.shutdown_grace,
        ));
        // `[drift]`, once serving: a child of `stop`, so shutdown ends it
        // and the handle waits for it.
        let drift = config
            .drift
            .verify_interval
            .map(|interval| drift.spawn(interval, config.drift.reapply, stop.child_token()));
        stop_on_error.disarm();
        Ok(DaemonHandle {
            local_addr,
            stop,
            task,
            drift,
            windows,
            audit,
        })
    }
}

/// A running daemon.
pub struct DaemonHandle {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// The `[drift]` schedule, when configured.
    drift: Option<tokio::task::JoinHandle<()>>,
    /// Ends with the last verbose-trace window's Stop, after the stop token.
    windows: tokio::task::JoinHandle<()>,
    /// Closed last: the records of the last calls are written.
    audit: Arc<crate::workflows::Audit>,
}

impl DaemonHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A token that stops the daemon when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops accepting, lets open requests finish (up to the configured
    /// grace period), stops the `[drift]` schedule, and returns.
    pub async fn shutdown(self) {
        self.stop.cancel();
        self.wait().await;
    }

    /// Waits until the daemon stops (after [`Self::stop_token`] fires),
    /// its background tasks included, and the audit records of its last
    /// calls are written.
    pub async fn wait(self) {
        let _ = self.task.await;
        if let Some(drift) = self.drift {
            let _ = drift.await;
        }
        let _ = self.windows.await;
        let audit = self.audit;
        let _ = tokio::task::spawn_blocking(move || audit.close()).await;
    }
}

/// Who read-only RPCs given no credential bind as: the configured principal
/// and keytab; on Windows, unless configured (it cannot be), the service's
/// own identity, named after the host's computer account.
fn host_identity(
    config: &config::DirectoryConfig,
    host: &dyn crate::backends::host::Host,
) -> Option<BindCredential> {
    if let Some((principal, keytab)) = config.host_keytab_identity() {
        return Some(BindCredential {
            username: principal,
            secret: BindSecret::Kerberos(KerberosSource::Keytab(keytab)),
        });
    }
    cfg!(windows).then(|| BindCredential {
        username: crate::model::computer_account(&host.machine_name()),
        secret: BindSecret::Kerberos(KerberosSource::ServiceIdentity),
    })
}
