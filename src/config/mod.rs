//! Typed daemon configuration, loaded once at start-up from a TOML file, then
//! environment variables (`PROVD_*`), then command-line flags, each layer
//! overriding the one before. This is the only module that reads the process
//! environment; everything else receives a [`Config`].
//!
//! Each setting is declared once, in its section's file (`tls.rs`,
//! `log.rs`, `drift.rs`, `reachability.rs`, `audit.rs`, …; the top-level keys below),
//! with the `section!` macro of `declare.rs`: the field, its TOML key,
//! variable, flag, example, parser and default. The file and environment
//! layers (`layers.rs`), the flags (`flags.rs`) and `provd serve --help` are
//! all driven by that declaration, so adding a setting is one edit there.

mod agent_module;
mod audit;
mod declare;
mod directory;
mod drift;
mod flags;
mod host;
mod http;
mod layers;
mod log;
mod parse;
mod reachability;
mod telemetry;
mod tenant;
mod tls;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_declared;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use agent_module::AgentModuleConfig;
pub use audit::AuditConfig;
pub use directory::{DirectoryConfig, DirectoryTransport, KerberosLayer};
pub use drift::DriftConfig;
pub use flags::Overrides;
pub use host::HostConfig;
pub use http::HttpConfig;
pub use log::{LogConfig, LogFormat};
pub use reachability::{AZURE_CA_NAMES, OutboundScheme, OutboundUrl, ReachabilityConfig};
pub use telemetry::TelemetryConfig;
pub use tenant::{
    DEFAULT_REGISTRATION_CLIENT_ID, DEFAULT_REGISTRATION_SCOPE, DEFAULT_TENANT_CLIENT_ID,
    TenantCloud, TenantConfig,
};
pub use tls::{
    ClientCaSource, DEFAULT_CERT_STORE, DEFAULT_RELOAD_INTERVAL, ServerCertSource, TlsConfig,
};

use declare::section;
use layers::Layers;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: String, reason: String },
    /// `place` names the layer, the name there and the setting, e.g.
    /// "environment variable PROVD_LISTEN (listen)".
    #[error("{place}: {reason}")]
    Invalid { place: String, reason: String },
    #[error("missing required setting {key} (set it in the file, as {env}, or with {flag})")]
    Missing {
        key: &'static str,
        env: &'static str,
        flag: &'static str,
    },
    /// A setting required unless another one stands in for it.
    #[error(
        "missing required setting {key} (set it in the file, as {env}, or with {flag}); {alternative}"
    )]
    MissingOneOf {
        key: &'static str,
        env: &'static str,
        flag: &'static str,
        alternative: &'static str,
    },
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// The name of the file layer itself: a flag and a variable, never a key.
pub(crate) const CONFIG_FILE_ENV: &str = "PROVD_CONFIG";

section! {
    #[derive(Debug, Clone)]
    pub struct Config {
        /// The one port: gRPC and HTTP/JSON, always mTLS.
        pub listen: SocketAddr {
            toml: "listen", env: "PROVD_LISTEN", flag: "--listen",
            example: "0.0.0.0:9443", parse: parse::socket_addr,
            default: SocketAddr::from(([127, 0, 0, 1], 8443))
        }
        /// State store and package staging.
        pub state_dir: PathBuf {
            toml: "state_dir", env: "PROVD_STATE_DIR", flag: "--state-dir",
            example: "/var/lib/provd", parse: parse::path, default: required
        }
        /// How long shutdown waits for open connections and streams.
        pub shutdown_grace: Duration {
            toml: "shutdown_grace", env: "PROVD_SHUTDOWN_GRACE", flag: "--shutdown-grace",
            example: "1m", parse: parse::duration, default: Duration::from_secs(10)
        }
    }
    sections {
        pub tls: TlsConfig,
        pub log: LogConfig,
        pub directory: DirectoryConfig,
        pub tenant: TenantConfig,
        pub host: HostConfig,
        pub agent_module: AgentModuleConfig,
        pub telemetry: TelemetryConfig,
        pub http: HttpConfig,
        pub drift: DriftConfig,
        pub reachability: ReachabilityConfig,
        pub audit: AuditConfig,
    }
}

impl Config {
    /// Loads from the real process environment. The only caller of
    /// `std::env` in provd.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if !(name.starts_with("PROVD_") || name.eq_ignore_ascii_case("ProgramData")) {
                continue;
            }
            // Refused rather than skipped: a setting silently not applied
            // is worse than not starting.
            let value = value.into_string().map_err(|_| ConfigError::Invalid {
                place: format!("environment variable {name}"),
                reason: "is not valid UTF-8".into(),
            })?;
            env.push((name.to_owned(), value));
        }
        Self::load_from(overrides, &env)
    }

    /// Loads with an explicit environment (tests).
    pub fn load_from(
        overrides: &Overrides,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let layers = Self::layers(overrides, &lookup)?;
        let config = Config::from_layers(&layers)?;
        // Settings that stand in for each other: checked once all are read.
        config.tls.check()?;
        config.directory.check()?;
        Ok(config)
    }

    /// The three layers in order, each replacing the text of the one before.
    fn layers<'a>(
        overrides: &Overrides,
        lookup: declare::Lookup<'a>,
    ) -> Result<Layers<'a>, ConfigError> {
        let settings = Config::settings();
        let mut layers = Layers::new(lookup);
        let file = overrides
            .config_file
            .clone()
            .or_else(|| lookup(CONFIG_FILE_ENV).map(PathBuf::from));
        if let Some(path) = &file {
            layers.read_file(path, &settings)?;
        }
        layers.read_env(&settings);
        overrides.apply(&mut layers);
        Ok(layers)
    }
}
