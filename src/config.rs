//! Typed daemon configuration, loaded once at start-up from a TOML file, then
//! environment variables (`PROVD_*`), then command-line flags, each layer
//! overriding the one before. This is the only module that reads the process
//! environment; everything else receives a [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("{source_name} {key}: {reason}")]
    Invalid {
        source_name: &'static str,
        key: String,
        reason: String,
    },
    #[error("missing required setting {key} (set it in the file, as {env}, or with {flag})")]
    Missing {
        key: &'static str,
        env: &'static str,
        flag: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM).
    pub key: PathBuf,
    /// CA bundle (PEM) that client certificates must chain to.
    pub client_ca: PathBuf,
    /// How often the three files are checked for changes.
    pub reload_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive, e.g. `info,provd=debug`.
    pub filter: String,
    /// Append log lines to this file instead of stderr (a Windows service
    /// has no stderr anyone reads).
    pub file: Option<PathBuf>,
}

/// How provd reaches domain controllers. There is deliberately no plaintext
/// option: simple binds happen only over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DirectoryTransport {
    #[default]
    Ldaps,
    StartTls,
}

#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// CA bundle (PEM) DC certificates must chain to.
    pub ca_file: Option<PathBuf>,
    /// DNS servers for DC discovery (`ip:port`); empty means the system's.
    pub dns_servers: Vec<SocketAddr>,
    pub transport: DirectoryTransport,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    /// Entries per page of a paged search.
    pub page_size: u32,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self {
            ca_file: None,
            dns_servers: Vec::new(),
            transport: DirectoryTransport::Ldaps,
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
            page_size: 500,
        }
    }
}

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

#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub cloud: TenantCloud,
    /// Tenant id or domain in the sign-in URL; `organizations` lets any
    /// work account sign in.
    pub tenant: String,
    pub client_id: String,
    /// Overrides the cloud's sign-in authority (the lab emulator).
    pub authority: Option<String>,
    /// Overrides the cloud's Graph endpoint (the lab emulator).
    pub graph: Option<String>,
    /// Base URL of the agent registration service. Microsoft does not
    /// document its own, so registration needs this set (the lab emulator).
    pub agent_service: Option<String>,
    /// CA bundle (PEM) to trust for the tenant instead of the public roots.
    pub ca_file: Option<PathBuf>,
    /// Limit for each HTTP request to the tenant.
    pub request_timeout: Duration,
}

impl Default for TenantConfig {
    fn default() -> Self {
        Self {
            cloud: TenantCloud::Public,
            tenant: "organizations".into(),
            client_id: DEFAULT_TENANT_CLIENT_ID.into(),
            authority: None,
            graph: None,
            agent_service: None,
            ca_file: None,
            request_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where provd hands the registered agent its identity (agent id,
    /// client certificate and key, service URL).
    pub agent_registration_file: PathBuf,
}

impl HostConfig {
    /// `%ProgramData%\ProvdLabAgent\registration.json`: where the lab
    /// stand-in agent reads it.
    pub fn with_program_data(program_data: Option<&str>) -> Self {
        let base = PathBuf::from(program_data.unwrap_or(r"C:\ProgramData"));
        Self {
            agent_registration_file: base.join("ProvdLabAgent").join("registration.json"),
        }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        Self::with_program_data(None)
    }
}

/// OpenTelemetry export. Without an endpoint nothing is exported and no
/// exporter is built; logs are unaffected either way.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// OTLP/gRPC collector, `http://host:4317` (h2c) or `https://…` (TLS,
    /// public web roots).
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// How often metrics are exported.
    pub metrics_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "provd".into(),
            metrics_interval: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The one port: gRPC and HTTP/JSON, always mTLS.
    pub listen: SocketAddr,
    /// State store and package staging.
    pub state_dir: PathBuf,
    pub tls: TlsConfig,
    pub log: LogConfig,
    /// How long shutdown waits for open connections and streams.
    pub shutdown_grace: Duration,
    pub directory: DirectoryConfig,
    pub tenant: TenantConfig,
    pub host: HostConfig,
    pub telemetry: TelemetryConfig,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The file layer: every key optional; unknown keys are an error so typos
/// don't pass silently.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    state_dir: Option<PathBuf>,
    shutdown_grace: Option<String>,
    #[serde(default)]
    tls: FileTls,
    #[serde(default)]
    log: FileLog,
    #[serde(default)]
    directory: FileDirectory,
    #[serde(default)]
    tenant: FileTenant,
    #[serde(default)]
    host: FileHost,
    #[serde(default)]
    telemetry: FileTelemetry,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTelemetry {
    otlp_endpoint: Option<String>,
    service_name: Option<String>,
    metrics_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTenant {
    cloud: Option<String>,
    tenant: Option<String>,
    client_id: Option<String>,
    authority: Option<String>,
    graph: Option<String>,
    agent_service: Option<String>,
    ca_file: Option<PathBuf>,
    request_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHost {
    agent_registration_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDirectory {
    ca_file: Option<PathBuf>,
    dns_servers: Option<Vec<String>>,
    transport: Option<String>,
    connect_timeout: Option<String>,
    operation_timeout: Option<String>,
    page_size: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    reload_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    format: Option<LogFormat>,
    filter: Option<String>,
    file: Option<PathBuf>,
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub state_dir: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_filter: Option<String>,
    pub log_file: Option<PathBuf>,
    pub directory_ca_file: Option<PathBuf>,
    pub directory_dns_servers: Vec<SocketAddr>,
    pub otlp_endpoint: Option<String>,
}

/// Settings as strings, layered before they are parsed.
#[derive(Debug, Default)]
struct Raw {
    listen: Option<(String, &'static str)>,
    state_dir: Option<PathBuf>,
    shutdown_grace: Option<(String, &'static str)>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
    reload_interval: Option<(String, &'static str)>,
    log_format: Option<LogFormat>,
    log_filter: Option<String>,
    log_file: Option<PathBuf>,
    dir_ca_file: Option<PathBuf>,
    dir_dns_servers: Option<(Vec<String>, &'static str)>,
    dir_transport: Option<(String, &'static str)>,
    dir_connect_timeout: Option<(String, &'static str)>,
    dir_operation_timeout: Option<(String, &'static str)>,
    dir_page_size: Option<u32>,
    tenant_cloud: Option<(String, &'static str)>,
    tenant_id: Option<String>,
    tenant_client_id: Option<String>,
    tenant_authority: Option<(String, &'static str)>,
    tenant_graph: Option<(String, &'static str)>,
    tenant_agent_service: Option<(String, &'static str)>,
    tenant_ca_file: Option<PathBuf>,
    tenant_request_timeout: Option<(String, &'static str)>,
    agent_registration_file: Option<PathBuf>,
    program_data: Option<String>,
    otlp_endpoint: Option<(String, &'static str)>,
    service_name: Option<(String, &'static str)>,
    metrics_interval: Option<(String, &'static str)>,
}

impl Config {
    /// Loads from the real process environment. The only caller of
    /// `std::env` in provd.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k.starts_with("PROVD_") || k.eq_ignore_ascii_case("ProgramData"))
            .collect();
        Self::load_from(overrides, &env)
    }

    /// Loads with an explicit environment (tests).
    pub fn load_from(
        overrides: &Overrides,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let file_path = overrides
            .config_file
            .clone()
            .or_else(|| lookup("PROVD_CONFIG").map(PathBuf::from));
        let mut raw = Raw::default();
        if let Some(path) = &file_path {
            raw.apply_file(path)?;
        }
        raw.apply_env(&lookup)?;
        raw.apply_overrides(overrides);
        raw.finish()
    }
}

impl Raw {
    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        // Relative paths in the file are relative to the file.
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        self.listen = file.listen.map(|v| (v, "config file key"));
        self.state_dir = file.state_dir.map(rel);
        self.shutdown_grace = file.shutdown_grace.map(|v| (v, "config file key"));
        self.cert = file.tls.cert.map(rel);
        self.key = file.tls.key.map(rel);
        self.client_ca = file.tls.client_ca.map(rel);
        self.reload_interval = file.tls.reload_interval.map(|v| (v, "config file key"));
        self.log_format = file.log.format;
        self.log_filter = file.log.filter;
        self.log_file = file.log.file.map(rel);
        const FILE: &str = "config file key";
        self.dir_ca_file = file.directory.ca_file.map(rel);
        self.dir_dns_servers = file.directory.dns_servers.map(|v| (v, FILE));
        self.dir_transport = file.directory.transport.map(|v| (v, FILE));
        self.dir_connect_timeout = file.directory.connect_timeout.map(|v| (v, FILE));
        self.dir_operation_timeout = file.directory.operation_timeout.map(|v| (v, FILE));
        self.dir_page_size = file.directory.page_size;
        let t = file.tenant;
        self.tenant_cloud = t.cloud.map(|v| (v, FILE));
        self.tenant_id = t.tenant;
        self.tenant_client_id = t.client_id;
        self.tenant_authority = t.authority.map(|v| (v, FILE));
        self.tenant_graph = t.graph.map(|v| (v, FILE));
        self.tenant_agent_service = t.agent_service.map(|v| (v, FILE));
        self.tenant_ca_file = t.ca_file.map(rel);
        self.tenant_request_timeout = t.request_timeout.map(|v| (v, FILE));
        self.agent_registration_file = file.host.agent_registration_file.map(rel);
        let t = file.telemetry;
        self.otlp_endpoint = t.otlp_endpoint.map(|v| (v, FILE));
        self.service_name = t.service_name.map(|v| (v, FILE));
        self.metrics_interval = t.metrics_interval.map(|v| (v, FILE));
        Ok(())
    }

    fn apply_env(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        const SRC: &str = "environment variable";
        if let Some(v) = lookup("PROVD_LISTEN") {
            self.listen = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_STATE_DIR") {
            self.state_dir = Some(v.into());
        }
        if let Some(v) = lookup("PROVD_SHUTDOWN_GRACE") {
            self.shutdown_grace = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_TLS_CERT") {
            self.cert = Some(v.into());
        }
        if let Some(v) = lookup("PROVD_TLS_KEY") {
            self.key = Some(v.into());
        }
        if let Some(v) = lookup("PROVD_TLS_CLIENT_CA") {
            self.client_ca = Some(v.into());
        }
        if let Some(v) = lookup("PROVD_TLS_RELOAD_INTERVAL") {
            self.reload_interval = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_LOG_FORMAT") {
            self.log_format = Some(match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::Invalid {
                        source_name: SRC,
                        key: "PROVD_LOG_FORMAT".into(),
                        reason: format!("{other:?} is not one of \"text\", \"json\""),
                    });
                }
            });
        }
        if let Some(v) = lookup("PROVD_LOG_FILTER") {
            self.log_filter = Some(v);
        }
        if let Some(v) = lookup("PROVD_LOG_FILE") {
            self.log_file = Some(v.into());
        }
        if let Some(v) = lookup("PROVD_DIRECTORY_CA_FILE") {
            self.dir_ca_file = Some(v.into());
        }
        if let Some(v) = lookup("PROVD_DIRECTORY_DNS_SERVERS") {
            let servers = v
                .split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            self.dir_dns_servers = Some((servers, SRC));
        }
        if let Some(v) = lookup("PROVD_DIRECTORY_TRANSPORT") {
            self.dir_transport = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_TENANT_CLOUD") {
            self.tenant_cloud = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_TENANT_ID") {
            self.tenant_id = Some(v);
        }
        if let Some(v) = lookup("PROVD_TENANT_CLIENT_ID") {
            self.tenant_client_id = Some(v);
        }
        if let Some(v) = lookup("PROVD_TENANT_AUTHORITY") {
            self.tenant_authority = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_TENANT_GRAPH") {
            self.tenant_graph = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_TENANT_AGENT_SERVICE") {
            self.tenant_agent_service = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_TENANT_CA_FILE") {
            self.tenant_ca_file = Some(v.into());
        }
        if let Some(v) = lookup("PROVD_HOST_AGENT_REGISTRATION_FILE") {
            self.agent_registration_file = Some(v.into());
        }
        if let Some(v) = lookup("PROVD_OTLP_ENDPOINT") {
            self.otlp_endpoint = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_TELEMETRY_SERVICE_NAME") {
            self.service_name = Some((v, SRC));
        }
        if let Some(v) = lookup("PROVD_TELEMETRY_METRICS_INTERVAL") {
            self.metrics_interval = Some((v, SRC));
        }
        // Not a provd setting: Windows' own, for the default above.
        self.program_data = env_program_data(lookup);
        Ok(())
    }

    fn apply_overrides(&mut self, o: &Overrides) {
        if let Some(v) = o.listen {
            self.listen = Some((v.to_string(), "flag"));
        }
        if let Some(v) = &o.state_dir {
            self.state_dir = Some(v.clone());
        }
        if let Some(v) = &o.tls_cert {
            self.cert = Some(v.clone());
        }
        if let Some(v) = &o.tls_key {
            self.key = Some(v.clone());
        }
        if let Some(v) = &o.tls_client_ca {
            self.client_ca = Some(v.clone());
        }
        if let Some(v) = o.log_format {
            self.log_format = Some(v);
        }
        if let Some(v) = &o.log_filter {
            self.log_filter = Some(v.clone());
        }
        if let Some(v) = &o.log_file {
            self.log_file = Some(v.clone());
        }
        if let Some(v) = &o.directory_ca_file {
            self.dir_ca_file = Some(v.clone());
        }
        if !o.directory_dns_servers.is_empty() {
            self.dir_dns_servers = Some((
                o.directory_dns_servers
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                "flag",
            ));
        }
        if let Some(v) = &o.otlp_endpoint {
            self.otlp_endpoint = Some((v.clone(), "flag"));
        }
    }

    fn finish(self) -> Result<Config, ConfigError> {
        let (listen, listen_src) = self
            .listen
            .unwrap_or_else(|| (DEFAULT_LISTEN.into(), "default"));
        let listen = listen.parse().map_err(|e| ConfigError::Invalid {
            source_name: listen_src,
            key: "listen".into(),
            reason: format!("{listen:?} is not an address:port ({e})"),
        })?;
        let duration = |value: Option<(String, &'static str)>, key: &str, default: Duration| {
            value.map_or(Ok(default), |(v, src)| {
                humantime::parse_duration(&v).map_err(|e| ConfigError::Invalid {
                    source_name: src,
                    key: key.into(),
                    reason: format!("{v:?} is not a duration like \"5s\" ({e})"),
                })
            })
        };
        let metrics_interval = self.metrics_interval;
        let metrics_interval_src = metrics_interval.as_ref().map_or("default", |(_, src)| *src);
        Ok(Config {
            listen,
            state_dir: self.state_dir.ok_or(ConfigError::Missing {
                key: "state_dir",
                env: "PROVD_STATE_DIR",
                flag: "--state-dir",
            })?,
            shutdown_grace: duration(
                self.shutdown_grace,
                "shutdown_grace",
                Duration::from_secs(10),
            )?,
            tls: TlsConfig {
                cert: self.cert.ok_or(ConfigError::Missing {
                    key: "tls.cert",
                    env: "PROVD_TLS_CERT",
                    flag: "--tls-cert",
                })?,
                key: self.key.ok_or(ConfigError::Missing {
                    key: "tls.key",
                    env: "PROVD_TLS_KEY",
                    flag: "--tls-key",
                })?,
                client_ca: self.client_ca.ok_or(ConfigError::Missing {
                    key: "tls.client_ca",
                    env: "PROVD_TLS_CLIENT_CA",
                    flag: "--tls-client-ca",
                })?,
                reload_interval: duration(
                    self.reload_interval,
                    "tls.reload_interval",
                    DEFAULT_RELOAD_INTERVAL,
                )?,
            },
            log: LogConfig {
                format: self.log_format.unwrap_or_default(),
                filter: self.log_filter.unwrap_or_else(|| "info".into()),
                file: self.log_file,
            },
            directory: DirectoryConfig {
                ca_file: self.dir_ca_file,
                dns_servers: match self.dir_dns_servers {
                    None => Vec::new(),
                    Some((list, src)) => list
                        .iter()
                        .map(|s| parse_dns_server(s, src))
                        .collect::<Result<_, _>>()?,
                },
                transport: match self.dir_transport {
                    None => DirectoryTransport::Ldaps,
                    Some((v, src)) => match v.as_str() {
                        "ldaps" => DirectoryTransport::Ldaps,
                        "starttls" => DirectoryTransport::StartTls,
                        other => {
                            return Err(ConfigError::Invalid {
                                source_name: src,
                                key: "directory.transport".into(),
                                reason: format!(
                                    "{other:?} is not one of \"ldaps\", \"starttls\" \
                                     (plaintext LDAP binds are refused)"
                                ),
                            });
                        }
                    },
                },
                connect_timeout: duration(
                    self.dir_connect_timeout,
                    "directory.connect_timeout",
                    DirectoryConfig::default().connect_timeout,
                )?,
                operation_timeout: duration(
                    self.dir_operation_timeout,
                    "directory.operation_timeout",
                    DirectoryConfig::default().operation_timeout,
                )?,
                page_size: match self.dir_page_size {
                    Some(0) => {
                        return Err(ConfigError::Invalid {
                            source_name: "config file key",
                            key: "directory.page_size".into(),
                            reason: "must be at least 1".into(),
                        });
                    }
                    Some(n) => n,
                    None => DirectoryConfig::default().page_size,
                },
            },
            tenant: TenantConfig {
                cloud: match self.tenant_cloud {
                    None => TenantCloud::Public,
                    Some((v, src)) => match v.as_str() {
                        "public" | "AzurePublic" => TenantCloud::Public,
                        "usgov" | "AzureUSGovernment" => TenantCloud::UsGovernment,
                        other => {
                            return Err(ConfigError::Invalid {
                                source_name: src,
                                key: "tenant.cloud".into(),
                                reason: format!("{other:?} is not one of \"public\", \"usgov\""),
                            });
                        }
                    },
                },
                tenant: self
                    .tenant_id
                    .unwrap_or_else(|| TenantConfig::default().tenant),
                client_id: self
                    .tenant_client_id
                    .unwrap_or_else(|| DEFAULT_TENANT_CLIENT_ID.into()),
                authority: https_url(self.tenant_authority, "tenant.authority")?,
                graph: https_url(self.tenant_graph, "tenant.graph")?,
                agent_service: https_url(self.tenant_agent_service, "tenant.agent_service")?,
                ca_file: self.tenant_ca_file,
                request_timeout: duration(
                    self.tenant_request_timeout,
                    "tenant.request_timeout",
                    TenantConfig::default().request_timeout,
                )?,
            },
            host: match self.agent_registration_file {
                Some(path) => HostConfig {
                    agent_registration_file: path,
                },
                None => HostConfig::with_program_data(self.program_data.as_deref()),
            },
            telemetry: TelemetryConfig {
                otlp_endpoint: otlp_endpoint(self.otlp_endpoint)?,
                service_name: match self.service_name {
                    None => TelemetryConfig::default().service_name,
                    Some((v, src)) if v.trim().is_empty() => {
                        return Err(ConfigError::Invalid {
                            source_name: src,
                            key: "telemetry.service_name".into(),
                            reason: "must not be empty".into(),
                        });
                    }
                    Some((v, _)) => v,
                },
                metrics_interval: match duration(
                    metrics_interval,
                    "telemetry.metrics_interval",
                    TelemetryConfig::default().metrics_interval,
                )? {
                    d if d.is_zero() => {
                        return Err(ConfigError::Invalid {
                            source_name: metrics_interval_src,
                            key: "telemetry.metrics_interval".into(),
                            reason: "must be longer than zero".into(),
                        });
                    }
                    d => d,
                },
            },
        })
    }
}

/// Windows keeps environment names case-insensitively.
fn env_program_data(lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    lookup("ProgramData")
        .or_else(|| lookup("PROGRAMDATA"))
        .or_else(|| lookup("programdata"))
}

/// An `https://` base URL without a trailing slash.
fn https_url(
    value: Option<(String, &'static str)>,
    key: &str,
) -> Result<Option<String>, ConfigError> {
    let Some((url, src)) = value else {
        return Ok(None);
    };
    let invalid = |reason: &str| ConfigError::Invalid {
        source_name: src,
        key: key.into(),
        reason: format!("{url:?} {reason}"),
    };
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| invalid("must start with https:// (the tenant is only reached over TLS)"))?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(invalid("is not a URL"));
    }
    Ok(Some(url.trim_end_matches('/').to_owned()))
}

/// An OTLP/gRPC endpoint: `http://` or `https://` with a host; empty means
/// none (so the environment can switch off what the file set).
fn otlp_endpoint(value: Option<(String, &'static str)>) -> Result<Option<String>, ConfigError> {
    let Some((url, src)) = value else {
        return Ok(None);
    };
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let host = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match host {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.contains(char::is_whitespace) =>
        {
            Ok(Some(url.trim_end_matches('/').to_owned()))
        }
        _ => Err(ConfigError::Invalid {
            source_name: src,
            key: "telemetry.otlp_endpoint".into(),
            reason: format!(
                "{url:?} is not an OTLP/gRPC URL like \"http://127.0.0.1:4317\" (http:// or https://)"
            ),
        }),
    }
}

/// `127.0.0.2:53`, or `127.0.0.2` meaning port 53.
fn parse_dns_server(value: &str, src: &'static str) -> Result<SocketAddr, ConfigError> {
    value
        .parse::<SocketAddr>()
        .or_else(|_| {
            value
                .parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .map_err(|_| ConfigError::Invalid {
            source_name: src,
            key: "directory.dns_servers".into(),
            reason: format!("{value:?} is not an IP address or ip:port"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("provd.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\nstate_dir = \"state\"\n[tls]\ncert = \"s.pem\"\nkey = \"s.key\"\nclient_ca = \"/etc/ca.pem\"\nreload_interval = \"2s\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            config_file: Some(file.clone()),
            listen: Some("127.0.0.1:3000".parse().unwrap()),
            ..Overrides::default()
        };
        let cfg = Config::load_from(
            &overrides,
            &env(&[
                ("PROVD_LISTEN", "127.0.0.1:2000"),
                ("PROVD_TLS_KEY", "/k.pem"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(cfg.state_dir, dir.path().join("state"));
        assert_eq!(cfg.tls.cert, dir.path().join("s.pem"));
        assert_eq!(cfg.tls.key, PathBuf::from("/k.pem"));
        assert_eq!(cfg.tls.client_ca, PathBuf::from("/etc/ca.pem"));
        assert_eq!(cfg.tls.reload_interval, Duration::from_secs(2));
        assert_eq!(cfg.log.format, LogFormat::Json);
    }

    #[test]
    fn errors_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("provd.toml");
        std::fs::write(&file, "listn = \"x\"\n").unwrap();
        let err = Config::load_from(
            &Overrides {
                config_file: Some(file),
                ..Overrides::default()
            },
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");

        let err = Config::load_from(&Overrides::default(), &env(&[("PROVD_LISTEN", "nope")]))
            .unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");

        let err = Config::load_from(&Overrides::default(), &[]).unwrap_err();
        assert!(err.to_string().contains("PROVD_STATE_DIR"), "{err}");

        let base = [
            ("PROVD_STATE_DIR", "/s"),
            ("PROVD_TLS_CERT", "/c"),
            ("PROVD_TLS_KEY", "/k"),
            ("PROVD_TLS_CLIENT_CA", "/a"),
        ];
        let mut plain = base.to_vec();
        plain.push(("PROVD_DIRECTORY_TRANSPORT", "plain"));
        let err = Config::load_from(&Overrides::default(), &env(&plain)).unwrap_err();
        assert!(err.to_string().contains("plaintext"), "{err}");
        let mut dns = base.to_vec();
        dns.push(("PROVD_DIRECTORY_DNS_SERVERS", "127.0.0.2:53,127.0.0.3"));
        let cfg = Config::load_from(&Overrides::default(), &env(&dns)).unwrap();
        assert_eq!(
            cfg.directory.dns_servers,
            [
                "127.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "127.0.0.3:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn the_example_config_loads_and_tenant_settings_layer() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/config/provd.example.toml"
        );
        let cfg = Config::load_from(
            &Overrides {
                config_file: Some(example.into()),
                ..Overrides::default()
            },
            &env(&[
                ("PROVD_TENANT_CLOUD", "usgov"),
                ("PROVD_TENANT_AUTHORITY", "https://127.0.0.1:9443/"),
                ("PROVD_LOG_FILE", "/var/log/provd.log"),
                ("ProgramData", r"D:\Data"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.tenant.cloud, TenantCloud::UsGovernment);
        assert_eq!(cfg.log.file, Some(PathBuf::from("/var/log/provd.log")));
        assert_eq!(
            cfg.tenant.authority.as_deref(),
            Some("https://127.0.0.1:9443")
        );
        assert_eq!(cfg.tenant.tenant, "organizations");
        assert_eq!(cfg.tenant.client_id, DEFAULT_TENANT_CLIENT_ID);
        assert!(
            cfg.host.agent_registration_file.starts_with(r"D:\Data"),
            "{:?}",
            cfg.host.agent_registration_file
        );

        let err = Config::load_from(
            &Overrides {
                config_file: Some(example.into()),
                ..Overrides::default()
            },
            &env(&[("PROVD_TENANT_GRAPH", "http://graph.example")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("tenant.graph"), "{err}");
        assert!(err.to_string().contains("https://"), "{err}");
    }

    #[test]
    fn telemetry_layers_file_then_env_then_flag() {
        let example = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/config/provd.example.toml"
        );
        let from_file = |env_pairs: &[(&str, &str)], flag: Option<&str>| {
            Config::load_from(
                &Overrides {
                    config_file: Some(example.into()),
                    otlp_endpoint: flag.map(str::to_owned),
                    ..Overrides::default()
                },
                &env(env_pairs),
            )
        };
        let cfg = from_file(&[], None).unwrap();
        assert_eq!(
            cfg.telemetry.otlp_endpoint, None,
            "nothing exported by default"
        );
        assert_eq!(cfg.telemetry.service_name, "provd");
        assert_eq!(cfg.telemetry.metrics_interval, Duration::from_secs(10));

        let cfg = from_file(
            &[
                ("PROVD_OTLP_ENDPOINT", "http://127.0.0.1:4317/"),
                ("PROVD_TELEMETRY_SERVICE_NAME", "provd-east"),
                ("PROVD_TELEMETRY_METRICS_INTERVAL", "30s"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            cfg.telemetry.otlp_endpoint.as_deref(),
            Some("http://127.0.0.1:4317")
        );
        assert_eq!(cfg.telemetry.service_name, "provd-east");
        assert_eq!(cfg.telemetry.metrics_interval, Duration::from_secs(30));

        let cfg = from_file(
            &[("PROVD_OTLP_ENDPOINT", "http://127.0.0.1:4317")],
            Some("https://otel.example:4317"),
        )
        .unwrap();
        assert_eq!(
            cfg.telemetry.otlp_endpoint.as_deref(),
            Some("https://otel.example:4317")
        );
        // An empty value switches export off again.
        let cfg = from_file(&[("PROVD_OTLP_ENDPOINT", "")], None).unwrap();
        assert_eq!(cfg.telemetry.otlp_endpoint, None);

        for (key, value, named) in [
            (
                "PROVD_OTLP_ENDPOINT",
                "127.0.0.1:4317",
                "telemetry.otlp_endpoint",
            ),
            ("PROVD_OTLP_ENDPOINT", "grpc://x", "telemetry.otlp_endpoint"),
            (
                "PROVD_TELEMETRY_METRICS_INTERVAL",
                "0s",
                "telemetry.metrics_interval",
            ),
            (
                "PROVD_TELEMETRY_METRICS_INTERVAL",
                "soon",
                "telemetry.metrics_interval",
            ),
            (
                "PROVD_TELEMETRY_SERVICE_NAME",
                " ",
                "telemetry.service_name",
            ),
        ] {
            let err = from_file(&[(key, value)], None).unwrap_err();
            assert!(err.to_string().contains(named), "{key}={value}: {err}");
            assert!(err.to_string().contains("environment"), "{err}");
        }
    }
}
