//! `[telemetry]`: OpenTelemetry export. Without an endpoint nothing is
//! exported and no exporter is built; logs are unaffected either way.

use std::time::Duration;

use super::declare::section;
use super::layers::Source;
use super::parse;

/// An OTLP/gRPC endpoint: `http://` or `https://` with a host; empty means
/// none, so the environment or a flag can switch off what the file set.
fn otlp_endpoint(url: &str, _: &Source) -> Result<Option<String>, String> {
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
        _ => Err(format!(
            "{url:?} is not an OTLP/gRPC URL like \"http://127.0.0.1:4317\" (http:// or https://)"
        )),
    }
}

/// A blank `service.name` would make provd's telemetry unfindable.
fn service_name(value: &str, _: &Source) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(value.to_owned())
}

section! {
    #[derive(Debug, Clone)]
    pub struct TelemetryConfig: Default {
        /// OTLP/gRPC collector, `http://host:4317` (h2c) or `https://…` (TLS,
        /// public web roots); nothing is exported without one.
        pub otlp_endpoint: Option<String> {
            toml: "telemetry.otlp_endpoint", env: "PROVD_OTLP_ENDPOINT", flag: "--otlp-endpoint",
            example: "http://127.0.0.1:4317", parse: otlp_endpoint, default: None
        }
        /// `service.name` of the exported resource.
        pub service_name: String {
            toml: "telemetry.service_name", env: "PROVD_TELEMETRY_SERVICE_NAME",
            flag: "--telemetry-service-name",
            example: "provd-east", parse: service_name, default: "provd".into()
        }
        /// How often metrics are exported.
        pub metrics_interval: Duration {
            toml: "telemetry.metrics_interval", env: "PROVD_TELEMETRY_METRICS_INTERVAL",
            flag: "--telemetry-metrics-interval",
            example: "30s", parse: parse::nonzero_duration, default: Duration::from_secs(10)
        }
    }
}
