//! Logs, traces and metrics.
//!
//! Logs: `tracing` events to stderr, text or JSON (`[log]`); the log layer
//! takes no spans, so log lines look as they always did.
//! Traces and metrics: OpenTelemetry over OTLP/gRPC to `[telemetry]
//! otlp_endpoint`, spans at INFO and above whatever the log filter says.
//! Log records: the audit trail only (each record of the audit log, by
//! `backends::audit::OtelMirror` through [`audit_logger`]), not provd's
//! own log lines.
//! Without an endpoint no exporter is built and no layer takes spans, so
//! every span is disabled at its call site (the request path stays as fast
//! as before), and the global meter stays the no-op one.
//!
//! The OpenTelemetry SDK reads a few `OTEL_*` variables itself (batch
//! sizes, export timeout, extra OTLP headers); provd's own settings come
//! only from [`crate::config`].
//!
//! Names (the contract dashboards rely on):
//! - spans: one per RPC, named by the full method path
//!   (`/provd.v1.AgentService/Install`, kind server, `rpc.*`, peer CN and
//!   roles, `rpc.grpc.status_code`, `http.response.status_code` for JSON);
//!   `operation <KIND>` (child of the RPC that started it); `step <name>`
//!   (child of the operation, current while the step runs); `ldap.*`,
//!   `tenant.http` and `installer.*` (children of whatever runs them).
//! - metrics (meter `provd`, listed once in [`INSTRUMENTS`]):
//!   `provd.rpc.requests` {method, code}, `provd.rpc.duration` s {method,
//!   code}, `provd.operation.duration` s {kind, outcome},
//!   `provd.directory.calls` {dc, op, outcome}, `provd.verify.check` {check,
//!   subject, category, status}: one series per status, 1 for the check's
//!   status in its latest run and 0 for the other three;
//!   `provd.drift.detected` {what}.
//! - log records (logger `provd`): event name `provd.audit`, one per audit
//!   record; attributes `audit.*` (see `backends/audit/otel.rs`).
//! - resource: `service.name`, `service.version`, `host.name`.
//!
//! Rules: attribute values are low-cardinality where they label metrics; no
//! credential, password, token, device code or key ever enters a field or
//! an event (they are secret types with redacted Debug, and the backends
//! record URLs without queries and binds without the account).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use opentelemetry::metrics::{Counter, Gauge, Histogram};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithTonicConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat, TelemetryConfig};

/// The instrumentation scope of provd's tracer and meter.
pub const SCOPE: &str = "provd";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.otlp_endpoint {endpoint}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("cannot open log.file {path}: {reason}")]
    LogFile { path: String, reason: String },
    #[error("cannot build the OTLP {signal} exporter: {reason}")]
    Exporter {
        signal: &'static str,
        reason: String,
    },
}

/// Keeps the exporters alive; dropping it flushes and shuts them down.
/// Drop it before the tokio runtime it was created in.
#[must_use = "dropping the guard stops the exporters"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    logger: Option<SdkLoggerProvider>,
}

impl Telemetry {
    /// True when traces and metrics go to a collector.
    pub fn exporting(&self) -> bool {
        self.tracer.is_some()
    }

    /// Exports what is buffered now (blocking; call it off the runtime's
    /// worker threads, e.g. from `spawn_blocking`).
    pub fn flush(&self) {
        if let Some(tracer) = &self.tracer
            && let Err(err) = tracer.force_flush()
        {
            tracing::warn!(error = %err, "cannot flush spans");
        }
        if let Some(meter) = &self.meter
            && let Err(err) = meter.force_flush()
        {
            tracing::warn!(error = %err, "cannot flush metrics");
        }
        if let Some(logger) = &self.logger
            && let Err(err) = logger.force_flush()
        {
            tracing::warn!(error = %err, "cannot flush log records");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        const LIMIT: Duration = Duration::from_secs(3);
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.shutdown_with_timeout(LIMIT);
        }
        if let Some(meter) = self.meter.take() {
            let _ = meter.shutdown_with_timeout(LIMIT);
        }
        if let Some(logger) = self.logger.take() {
            *AUDIT_LOGGER.write().unwrap_or_else(|p| p.into_inner()) = None;
            let _ = logger.shutdown_with_timeout(LIMIT);
        }
    }
}

/// Installs the global subscriber (logs, plus the OpenTelemetry layer when an
/// endpoint is set) and the global meter provider. A second call installs no
/// subscriber (the first one stays). With an endpoint it must run inside a
/// tokio runtime, which must outlive the returned guard: the exporters' gRPC
/// channel lives there.
pub fn init(log: &LogConfig, telemetry: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let Some(endpoint) = &telemetry.otlp_endpoint else {
        // No layer wants spans, and these are global filters: every span's
        // call site is disabled once, so the request path pays a cached
        // interest check, nothing more (a per-layer filter would evaluate
        // each span: measured ~0.4 µs per RPC).
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_event()
            }))
            .with(filter)
            .with(log_layer(log)?)
            .try_init();
        return Ok(Telemetry {
            tracer: None,
            meter: None,
            logger: None,
        });
    };
    let channel = channel(endpoint)?;
    let resource = Resource::builder_empty()
        .with_service_name(telemetry.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        // Which server of a fleet: the label dashboards group by.
        .with_attribute(opentelemetry::KeyValue::new(
            "host.name",
            gethostname::gethostname().to_string_lossy().into_owned(),
        ))
        .build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_channel(channel.clone())
        .build()
        .map_err(|e| TelemetryError::Exporter {
            signal: "trace",
            reason: e.to_string(),
        })?;
    let tracer = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let logs = opentelemetry_otlp::LogExporter::builder()
        .with_tonic()
        .with_channel(channel.clone())
        .build()
        .map_err(|e| TelemetryError::Exporter {
            signal: "logs",
            reason: e.to_string(),
        })?;
    let logger = SdkLoggerProvider::builder()
        .with_batch_exporter(logs)
        .with_resource(resource.clone())
        .build();
    *AUDIT_LOGGER.write().unwrap_or_else(|p| p.into_inner()) =
        Some(opentelemetry::logs::LoggerProvider::logger(&logger, SCOPE));
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_channel(channel)
        .build()
        .map_err(|e| TelemetryError::Exporter {
            signal: "metrics",
            reason: e.to_string(),
        })?;
    let meter = SdkMeterProvider::builder()
        .with_reader(
            PeriodicReader::builder(metrics)
                .with_interval(telemetry.metrics_interval)
                .build(),
        )
        .with_resource(resource)
        .build();
    opentelemetry::global::set_meter_provider(meter.clone());
    refresh_metrics();
    // Spans export at INFO whatever the log filter says (quiet logs, full
    // traces); each layer has its own filter.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer.tracer(SCOPE))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    let logs = log_layer(log)?
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_event()
        }))
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init();
    tracing::info!(endpoint = %endpoint, service = %telemetry.service_name, "exporting traces, metrics and audit records over OTLP");
    Ok(Telemetry {
        tracer: Some(tracer),
        meter: Some(meter),
        logger: Some(logger),
    })
}

/// Log lines to stderr or `log.file` (appended), text or JSON. Callers give
/// it events only: spans are for traces, and log lines carry their own
/// fields, as they did before provd had spans.
fn log_layer<S>(log: &LogConfig) -> Result<Box<dyn Layer<S> + Send + Sync>, TelemetryError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let Some(path) = &log.file else {
        return Ok(match log.format {
            LogFormat::Text => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .boxed(),
            LogFormat::Json => tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr)
                .boxed(),
        });
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TelemetryError::LogFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    let writer = std::sync::Mutex::new(file);
    Ok(match log.format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .boxed(),
    })
}

/// A lazily connecting channel to the collector (so provd starts while the
/// collector is down; exports retry on their own schedule).
fn channel(endpoint: &str) -> Result<tonic::transport::Channel, TelemetryError> {
    let invalid = |reason: String| TelemetryError::Endpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(invalid(
            "telemetry must be set up inside a tokio runtime".into(),
        ));
    }
    let mut builder = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| invalid(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    if endpoint.starts_with("https://") {
        builder = builder
            .tls_config(tonic::transport::ClientTlsConfig::new().with_webpki_roots())
            .map_err(|e| invalid(e.to_string()))?;
    }
    Ok(builder.connect_lazy())
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// What kind of instrument a metric is: decides how a Prometheus exporter
/// renders its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstrumentKind {
    Counter,
    Histogram,
    Gauge,
}

/// One of provd's metrics: the name, kind and unit dashboards and alert
/// rules rely on. Every instrument is built from one of these.
#[derive(Debug, Clone, Copy)]
pub struct Instrument {
    pub name: &'static str,
    pub kind: InstrumentKind,
    /// UCUM unit (`s`), if any.
    pub unit: Option<&'static str>,
    pub description: &'static str,
}

impl Instrument {
    /// The series names the OpenTelemetry Collector's Prometheus exporter
    /// makes of it (`add_metric_suffixes`, the default): dots become
    /// underscores, the unit is spelled out (`_seconds`), a counter ends in
    /// `_total`, a histogram is `_bucket`, `_sum` and `_count`.
    pub fn prometheus_names(&self) -> Vec<String> {
        let mut base = self.name.replace('.', "_");
        match self.unit {
            Some("s") => base.push_str("_seconds"),
            Some(other) => {
                base.push('_');
                base.push_str(other);
            }
            None => {}
        }
        match self.kind {
            InstrumentKind::Counter => vec![format!("{base}_total")],
            InstrumentKind::Gauge => vec![base],
            InstrumentKind::Histogram => ["_bucket", "_sum", "_count"]
                .iter()
                .map(|suffix| format!("{base}{suffix}"))
                .collect(),
        }
    }
}

pub const RPC_REQUESTS: Instrument = Instrument {
    name: "provd.rpc.requests",
    kind: InstrumentKind::Counter,
    unit: None,
    description: "RPCs served (gRPC and HTTP/JSON), by method and status code",
};
pub const RPC_DURATION: Instrument = Instrument {
    name: "provd.rpc.duration",
    kind: InstrumentKind::Histogram,
    unit: Some("s"),
    description: "Time from request to the end of the response",
};
pub const OPERATION_DURATION: Instrument = Instrument {
    name: "provd.operation.duration",
    kind: InstrumentKind::Histogram,
    unit: Some("s"),
    description: "Operation run time, by kind and final state",
};
pub const DIRECTORY_CALLS: Instrument = Instrument {
    name: "provd.directory.calls",
    kind: InstrumentKind::Counter,
    unit: None,
    description: "LDAP calls, by domain controller, operation and outcome",
};
pub const VERIFY_CHECK: Instrument = Instrument {
    name: "provd.verify.check",
    kind: InstrumentKind::Gauge,
    unit: None,
    description: "Each Verify check's latest status: 1 on the series of its status \
        (PASS, WARN, FAIL, SKIP), 0 on the other three",
};
pub const DRIFT_DETECTED: Instrument = Instrument {
    name: "provd.drift.detected",
    kind: InstrumentKind::Counter,
    unit: None,
    description: "Changes made outside provd, by what changed (agent_version, agent_settings)",
};

/// Every metric provd records (what `deploy/otel/` may name).
pub const INSTRUMENTS: [Instrument; 6] = [
    RPC_REQUESTS,
    RPC_DURATION,
    OPERATION_DURATION,
    DIRECTORY_CALLS,
    VERIFY_CHECK,
    DRIFT_DETECTED,
];

/// provd's instruments, from the global meter provider.
pub struct Metrics {
    pub rpc_requests: Counter<u64>,
    pub rpc_duration: Histogram<f64>,
    pub operation_duration: Histogram<f64>,
    pub directory_calls: Counter<u64>,
    pub verify_check: Gauge<u64>,
    pub drift_detected: Counter<u64>,
}

impl Metrics {
    fn from_global() -> Self {
        let meter = opentelemetry::global::meter(SCOPE);
        let counter = |i: Instrument| {
            meter
                .u64_counter(i.name)
                .with_description(i.description)
                .build()
        };
        let histogram = |i: Instrument, boundaries: Option<Vec<f64>>| {
            let builder = meter
                .f64_histogram(i.name)
                .with_unit(i.unit.unwrap_or_default())
                .with_description(i.description);
            match boundaries {
                Some(b) => builder.with_boundaries(b).build(),
                None => builder.build(),
            }
        };
        Self {
            rpc_requests: counter(RPC_REQUESTS),
            rpc_duration: histogram(RPC_DURATION, None),
            operation_duration: histogram(
                OPERATION_DURATION,
                Some(vec![
                    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
                ]),
            ),
            directory_calls: counter(DIRECTORY_CALLS),
            verify_check: meter
                .u64_gauge(VERIFY_CHECK.name)
                .with_description(VERIFY_CHECK.description)
                .build(),
            drift_detected: counter(DRIFT_DETECTED),
        }
    }
}

static METRICS: RwLock<Option<Arc<Metrics>>> = RwLock::new(None);

/// The instruments, built from the global meter provider on first use.
pub fn metrics() -> Arc<Metrics> {
    if let Some(m) = METRICS.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        return m.clone();
    }
    let mut slot = METRICS.write().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert_with(|| Arc::new(Metrics::from_global()))
        .clone()
}

/// Rebuilds the instruments from the current global meter provider (after
/// one was installed; `Daemon::start` calls it so an embedder's provider is
/// picked up).
pub fn refresh_metrics() {
    *METRICS.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Metrics::from_global()));
}

// ---------------------------------------------------------------------------
// Audit log records
// ---------------------------------------------------------------------------

static AUDIT_LOGGER: RwLock<Option<SdkLogger>> = RwLock::new(None);

/// The logger audit records are exported through, while [`init`]'s guard
/// exports to a collector; `None` otherwise.
pub fn audit_logger() -> Option<SdkLogger> {
    AUDIT_LOGGER
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

// ---------------------------------------------------------------------------
// W3C trace context
// ---------------------------------------------------------------------------

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Makes `span` continue the caller's trace when the request carries a
/// valid W3C `traceparent` (and `tracestate`). A no-op without the
/// OpenTelemetry layer.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

#[cfg(test)]
mod deploy_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exporter_needs_a_runtime_and_a_url() {
        let err = channel("http://127.0.0.1:4317").unwrap_err();
        assert!(err.to_string().contains("tokio runtime"), "{err}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _context = runtime.enter();
        assert!(channel("http://127.0.0.1:4317").is_ok());
        assert!(channel("https://otel.example:4317").is_ok());
        assert!(channel("http://bad host:1").is_err());
    }

    #[test]
    fn instruments_work_without_a_provider() {
        let m = metrics();
        m.rpc_requests
            .add(1, &[opentelemetry::KeyValue::new("code", "OK")]);
        m.rpc_duration.record(0.001, &[]);
        refresh_metrics();
        metrics().directory_calls.add(1, &[]);
        metrics().verify_check.record(1, &[]);
        metrics().drift_detected.add(1, &[]);
    }

    #[test]
    fn prometheus_names_follow_the_collectors_exporter() {
        assert_eq!(
            RPC_REQUESTS.prometheus_names(),
            ["provd_rpc_requests_total"]
        );
        assert_eq!(
            RPC_DURATION.prometheus_names(),
            [
                "provd_rpc_duration_seconds_bucket",
                "provd_rpc_duration_seconds_sum",
                "provd_rpc_duration_seconds_count"
            ]
        );
        assert_eq!(VERIFY_CHECK.prometheus_names(), ["provd_verify_check"]);
        assert_eq!(
            DRIFT_DETECTED.prometheus_names(),
            ["provd_drift_detected_total"]
        );
    }
}
