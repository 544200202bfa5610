//! provd: a local daemon that turns the Microsoft Entra cloud sync
//! provisioning-agent setup into an API — gRPC and HTTP/JSON on one
//! mutual-TLS port.
//!
//! Embedding: build a [`config::Config`], then
//! `Daemon::builder(config).start().await?` gives a [`DaemonHandle`] with the
//! bound address and a graceful `shutdown`. See `ARCHITECTURE.md`.

pub mod backends;
pub mod config;
pub mod pki;
pub mod proto;
pub mod security;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;
pub mod workflows;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use backends::directory::ldap::{LdapSettings, LdapTransport};
use backends::directory::{Directory, LdapDirectory};
#[cfg(not(windows))]
use backends::host::UnavailableHost;
use backends::host::{Cloud, Host};
use backends::store::{RedbStore, Store};
use backends::tenant::{HttpTenant, RetryPolicy, Tenant, TenantEndpoints};
use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create state directory {path}: {reason}")]
    StateDir { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] backends::store::StoreError),
    #[error(transparent)]
    Tls(#[from] transport::tls::TlsError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot start workflows: {0}")]
    Workflows(#[from] workflows::Error),
    #[error(transparent)]
    Directory(#[from] backends::directory::DirectoryError),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    #[error(transparent)]
    Tenant(#[from] backends::tenant::TenantError),
    #[error("cannot read tenant.ca_file {path}: {reason}")]
    TenantCa { path: String, reason: String },
}

/// The host backend of the platform provd was built for.
#[cfg_attr(not(windows), allow(unused_variables))]
fn platform_host(config: &config::HostConfig) -> Arc<dyn Host> {
    #[cfg(windows)]
    {
        Arc::new(backends::host::windows::WindowsHost::new(
            config.agent_registration_file.clone(),
        ))
    }
    #[cfg(not(windows))]
    {
        Arc::new(UnavailableHost::for_this_platform())
    }
}

/// The tenant client for the configured cloud, or the overridden
/// endpoints (the lab emulator).
fn tenant_client(config: &config::TenantConfig) -> Result<HttpTenant, DaemonError> {
    let cloud = match config.cloud {
        config::TenantCloud::Public => Cloud::AzurePublic,
        config::TenantCloud::UsGovernment => Cloud::AzureUsGovernment,
    };
    let mut endpoints = TenantEndpoints::for_cloud(cloud, &config.tenant, &config.client_id);
    if let Some(authority) = &config.authority {
        endpoints.authority.clone_from(authority);
    }
    if let Some(graph) = &config.graph {
        endpoints.scope = format!("{graph}/.default offline_access");
        endpoints.graph.clone_from(graph);
    }
    Ok(HttpTenant::new(
        endpoints,
        config.ca_file.as_deref(),
        config.request_timeout,
        RetryPolicy::default(),
    )?
    .with_agent_service(config.agent_service.clone()))
}

/// Entry point for embedding provd.
pub struct Daemon;

impl Daemon {
    pub fn builder(config: Config) -> DaemonBuilder {
        DaemonBuilder {
            config,
            host: None,
            directory: None,
            tenant: None,
            store: None,
        }
    }
}

/// Assembles a daemon. Each backend defaults to the real one the config
/// describes; an embedder (or the hermetic test tier) may replace any.
pub struct DaemonBuilder {
    config: Config,
    host: Option<Arc<dyn Host>>,
    directory: Option<Arc<dyn Directory>>,
    tenant: Option<Arc<dyn Tenant>>,
    store: Option<Arc<dyn Store>>,
}

impl DaemonBuilder {
    /// Replaces the platform's host backend.
    pub fn host(mut self, host: Arc<dyn Host>) -> Self {
        self.host = Some(host);
        self
    }

    /// Replaces the LDAP directory backend.
    pub fn directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Replaces the HTTP tenant (Entra ID / Graph) backend.
    pub fn tenant(mut self, tenant: Arc<dyn Tenant>) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Replaces the redb store in `state_dir`.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Opens the store, recovers interrupted operations, binds the port and
    /// starts serving. Returns once the port accepts connections.
    pub async fn start(self) -> Result<DaemonHandle, DaemonError> {
        transport::tls::install_crypto_provider();
        // Instruments from the meter provider installed now (by `provd serve`
        // through `telemetry::init`, or by the embedder); provd itself
        // installs no global subscriber or provider here.
        telemetry::refresh_metrics();
        let config = self.config;
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
        let host = self.host.unwrap_or_else(|| platform_host(&config.host));
        let tenant: Arc<dyn Tenant> = match self.tenant {
            Some(tenant) => tenant,
            None => Arc::new(tenant_client(&config.tenant)?),
        };
        let service_ca_pem = match &config.tenant.ca_file {
            None => None,
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|e| DaemonError::TenantCa {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?,
                )
            }
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
                    connect_timeout: config.directory.connect_timeout,
                    operation_timeout: config.directory.operation_timeout,
                    page_size: i32::try_from(config.directory.page_size).unwrap_or(i32::MAX),
                },
            )?),
        };
        let app = workflows::App::start(
            workflows::Backends {
                store,
                host,
                directory,
                tenant,
            },
            workflows::Paths {
                staging_dir: config.state_dir.join("staging"),
            },
            workflows::TenantSettings {
                cloud: match config.tenant.cloud {
                    config::TenantCloud::Public => Cloud::AzurePublic,
                    config::TenantCloud::UsGovernment => Cloud::AzureUsGovernment,
                },
                service_ca_pem,
            },
        )
        .await?;

        let stop = CancellationToken::new();
        let tls = transport::tls::ReloadingConfig::start(
            transport::tls::TlsFiles {
                cert: config.tls.cert.clone(),
                key: config.tls.key.clone(),
                client_ca: config.tls.client_ca.clone(),
            },
            config.tls.reload_interval,
            stop.clone(),
        )?;
        let routers = transport::services::routers(app.clone())
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
        let task = tokio::spawn(transport::server::serve(
            listener,
            tls.current,
            routers,
            stop.clone(),
            config.shutdown_grace,
        ));
        Ok(DaemonHandle {
            local_addr,
            stop,
            task,
            app,
        })
    }
}

/// A running daemon.
pub struct DaemonHandle {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    app: Arc<workflows::App>,
}

impl DaemonHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The workflows facade (for embedders that call provd in-process).
    pub fn app(&self) -> &Arc<workflows::App> {
        &self.app
    }

    /// A token that stops the daemon when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Stops accepting, lets open requests finish (up to the configured
    /// grace period), and returns.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Waits until the daemon stops (after [`Self::stop_token`] fires).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}
