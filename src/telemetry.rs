//! Logging setup. Spans and events use `tracing`; credentials never enter a
//! field (they are secret types with redacted Debug).

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber; later calls are no-ops.
pub fn init(log: &LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
