//! An in-test OpenTelemetry collector: an OTLP/gRPC receiver (traces,
//! metrics and log records, plain h2c on 127.0.0.1:0) that keeps every
//! export request, plus provd's telemetry installed once per test process
//! pointing at it.
//!
//! Spans and metrics of every test in the process land in the same
//! receiver: a test finds its own by the trace id it sent (`traceparent`)
//! and by method labels.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{NumberDataPoint, metric, number_data_point};
use provd::config::{LogConfig, LogFormat, TelemetryConfig};

#[derive(Default)]
struct Collected {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Collected>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().metrics.push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().logs.push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// One exported log record, flattened: body and attribute values as
/// strings.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub event_name: String,
    pub body: String,
    pub severity: String,
    pub time_unix_nano: u64,
    pub attributes: BTreeMap<String, String>,
}

impl LogRecord {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// One exported span, flattened: ids in lowercase hex, attribute values as
/// strings.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub kind: i32,
    pub attributes: BTreeMap<String, String>,
    /// (name, attributes) of each span event (log lines inside the span).
    pub events: Vec<(String, BTreeMap<String, String>)>,
    /// 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub status_message: String,
}

impl SpanRecord {
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

/// One metric data point: its attributes (values as strings).
#[derive(Debug, Clone)]
pub struct Point {
    pub metric: String,
    pub attributes: BTreeMap<String, String>,
    /// Sum value, or histogram count.
    pub value: f64,
}

/// An attribute value as a string (arrays joined with commas).
pub fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(any_value::Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| text(Some(v)))
            .collect::<Vec<_>>()
            .join(","),
        Some(any_value::Value::KvlistValue(l)) => attrs(&l.values)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        Some(any_value::Value::StringValueStrindex(i)) => format!("strindex:{i}"),
    }
}

/// Attributes by key, values as [`text`].
pub fn attrs(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

/// A sum's or a gauge's points.
fn numbers<'a>(metric: &'a str, points: &'a [NumberDataPoint]) -> impl Iterator<Item = Point> + 'a {
    points.iter().map(move |p| Point {
        metric: metric.to_owned(),
        attributes: attrs(&p.attributes),
        value: match p.value {
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            Some(number_data_point::Value::AsDouble(d)) => d,
            None => 0.0,
        },
    })
}

/// The receiver; cheap to clone.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    sink: Sink,
}

impl Receiver {
    /// Serves on 127.0.0.1:0 on the current runtime.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sink = Sink::default();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()))
            .add_service(MetricsServiceServer::new(sink.clone()))
            .add_service(LogsServiceServer::new(sink.clone()));
        tokio::spawn(async move {
            server
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .unwrap();
        });
        Receiver { addr, sink }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        let collected = self.sink.0.lock().unwrap();
        let mut out = Vec::new();
        for request in &collected.traces {
            for resource in &request.resource_spans {
                for scope in &resource.scope_spans {
                    for span in &scope.spans {
                        out.push(SpanRecord {
                            name: span.name.clone(),
                            trace_id: hex::encode(&span.trace_id),
                            span_id: hex::encode(&span.span_id),
                            parent_span_id: hex::encode(&span.parent_span_id),
                            kind: span.kind,
                            attributes: attrs(&span.attributes),
                            events: span
                                .events
                                .iter()
                                .map(|e| (e.name.clone(), attrs(&e.attributes)))
                                .collect(),
                            status_code: span.status.as_ref().map_or(0, |s| s.code),
                            status_message: span
                                .status
                                .as_ref()
                                .map(|s| s.message.clone())
                                .unwrap_or_default(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Every log record received so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        let collected = self.sink.0.lock().unwrap();
        let mut out = Vec::new();
        for request in &collected.logs {
            for resource in &request.resource_logs {
                for scope in &resource.scope_logs {
                    for record in &scope.log_records {
                        out.push(LogRecord {
                            event_name: record.event_name.clone(),
                            body: text(record.body.as_ref()),
                            severity: record.severity_text.clone(),
                            time_unix_nano: record.time_unix_nano,
                            attributes: attrs(&record.attributes),
                        });
                    }
                }
            }
        }
        out
    }

    /// Flushes and polls (up to 20 s) until a log record satisfies `find`.
    pub async fn wait_for_log(&self, find: impl Fn(&LogRecord) -> bool) -> LogRecord {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            flush().await;
            if let Some(found) = self.logs().into_iter().find(|r| find(r)) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such log record in {:#?}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// Every string the exports carry: span names, attribute values, event
    /// names and their attribute values, status messages, resource
    /// attributes, metric names and data point attribute values. What a
    /// secret scan searches.
    pub fn all_strings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for span in self.spans() {
            out.push(span.name);
            out.extend(span.attributes.into_values());
            for (name, attributes) in span.events {
                out.push(name);
                out.extend(attributes.into_values());
            }
            out.push(span.status_message);
        }
        let collected = self.sink.0.lock().unwrap();
        for request in &collected.traces {
            for resource in &request.resource_spans {
                if let Some(r) = &resource.resource {
                    out.extend(attrs(&r.attributes).into_values());
                }
            }
        }
        drop(collected);
        for point in self.points() {
            out.push(point.metric);
            out.extend(point.attributes.into_values());
        }
        for record in self.logs() {
            out.push(record.body);
            out.extend(record.attributes.into_values());
        }
        out
    }

    /// Panics naming the place if any exported string contains `needle`
    /// (case-insensitive).
    pub fn assert_absent(&self, needle: &str) {
        assert!(!needle.is_empty());
        let lower = needle.to_lowercase();
        for span in self.spans() {
            let mut places: Vec<(String, &String)> = vec![("name".into(), &span.name)];
            places.extend(
                span.attributes
                    .iter()
                    .map(|(k, v)| (format!("attribute {k}"), v)),
            );
            for (event, attributes) in &span.events {
                places.push(("event".into(), event));
                places.extend(
                    attributes
                        .iter()
                        .map(|(k, v)| (format!("event {event:?} attribute {k}"), v)),
                );
            }
            places.push(("status message".into(), &span.status_message));
            for (place, value) in places {
                assert!(
                    !value.to_lowercase().contains(&lower),
                    "span {:?} {place} holds a secret: {value:?}",
                    span.name
                );
            }
        }
        for value in self.all_strings() {
            assert!(
                !value.to_lowercase().contains(&lower),
                "an export holds a secret: {value:?}"
            );
        }
    }

    /// `f` of every metric export request received so far, oldest first
    /// (what the Prometheus stand-in renders, `super::otlp_prometheus`).
    pub fn with_metric_exports<R>(&self, f: impl FnOnce(&[ExportMetricsServiceRequest]) -> R) -> R {
        f(&self.sink.0.lock().unwrap().metrics)
    }

    /// Every metric data point received so far (sums, gauges and
    /// histograms), oldest export first.
    pub fn points(&self) -> Vec<Point> {
        let collected = self.sink.0.lock().unwrap();
        let mut out = Vec::new();
        for request in &collected.metrics {
            for resource in &request.resource_metrics {
                for scope in &resource.scope_metrics {
                    for m in &scope.metrics {
                        match &m.data {
                            Some(metric::Data::Sum(sum)) => {
                                out.extend(numbers(&m.name, &sum.data_points));
                            }
                            Some(metric::Data::Gauge(gauge)) => {
                                out.extend(numbers(&m.name, &gauge.data_points));
                            }
                            Some(metric::Data::Histogram(h)) => {
                                for p in &h.data_points {
                                    out.push(Point {
                                        metric: m.name.clone(),
                                        attributes: attrs(&p.attributes),
                                        value: p.count as f64,
                                    });
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        out
    }

    /// Flushes provd's exporters and polls (up to 20 s) until `done` holds
    /// for the spans of `trace_id`; returns them.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        done: impl Fn(&[SpanRecord]) -> bool,
    ) -> Vec<SpanRecord> {
        self.wait_until(|| self.trace(trace_id), done, &format!("trace {trace_id}"))
            .await
    }

    /// [`Self::wait_for_trace`] over every span received (all traces).
    pub async fn wait_for_spans(&self, done: impl Fn(&[SpanRecord]) -> bool) -> Vec<SpanRecord> {
        self.wait_until(|| self.spans(), done, "spans").await
    }

    async fn wait_until(
        &self,
        read: impl Fn() -> Vec<SpanRecord>,
        done: impl Fn(&[SpanRecord]) -> bool,
        what: &str,
    ) -> Vec<SpanRecord> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            flush().await;
            let spans = read();
            if done(&spans) {
                return spans;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} incomplete: {:#?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Flushes and polls (up to 20 s) until a point of `metric` has all of
    /// `labels` and a value `accept` takes; returns it.
    pub async fn wait_for_value(
        &self,
        metric: &str,
        labels: &[(&str, &str)],
        accept: impl Fn(f64) -> bool,
    ) -> Point {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            flush().await;
            let found = self.points().into_iter().rev().find(|p| {
                p.metric == metric
                    && accept(p.value)
                    && labels
                        .iter()
                        .all(|(k, v)| p.attributes.get(*k).map(String::as_str) == Some(*v))
            });
            if let Some(point) = found {
                return point;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {metric} point with {labels:?} and an accepted value; have: {:#?}",
                self.points()
                    .iter()
                    .filter(|p| p.metric == metric)
                    .map(|p| (&p.attributes, p.value))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Flushes and polls (up to 20 s) until a point of `metric` has all of
    /// `labels`; returns it.
    pub async fn wait_for_point(&self, metric: &str, labels: &[(&str, &str)]) -> Point {
        self.wait_for_value(metric, labels, |_| true).await
    }
}

/// The spans of `spans` below `ancestor` (by span id), at any depth.
pub fn descendants<'a>(spans: &'a [SpanRecord], ancestor: &SpanRecord) -> Vec<&'a SpanRecord> {
    let mut out: Vec<&SpanRecord> = Vec::new();
    let mut frontier = vec![ancestor.span_id.clone()];
    while let Some(id) = frontier.pop() {
        for span in spans.iter().filter(|s| s.parent_span_id == id) {
            frontier.push(span.span_id.clone());
            out.push(span);
        }
    }
    out
}

/// The chain of span names from `span` up to its root (`span` first).
pub fn ancestry(spans: &[SpanRecord], span: &SpanRecord) -> Vec<String> {
    let mut names = vec![span.name.clone()];
    let mut parent = span.parent_span_id.clone();
    while let Some(p) = spans.iter().find(|s| s.span_id == parent) {
        names.push(p.name.clone());
        parent = p.parent_span_id.clone();
    }
    names
}

/// The one span named `name`; panics listing the names otherwise.
pub fn one<'a>(spans: &'a [SpanRecord], name: &str) -> &'a SpanRecord {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one span {name:?} in {:#?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// A client-chosen W3C trace context: (trace id, parent span id, the
/// `traceparent` header value, sampled).
pub fn new_traceparent() -> (String, String, String) {
    let trace_id = hex::encode(uuid::Uuid::new_v4().as_bytes());
    let span_id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8]);
    let header = format!("00-{trace_id}-{span_id}-01");
    (trace_id, span_id, header)
}

/// `message` as a tonic request carrying `traceparent`.
pub fn traced<T>(message: T, traceparent: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    request
}

struct Global {
    receiver: Receiver,
    telemetry: provd::telemetry::Telemetry,
    // Last: the receiver and the exporters' channel run here, so they
    // outlive each test's own runtime.
    _runtime: tokio::runtime::Runtime,
}

fn global() -> &'static Global {
    static GLOBAL: OnceLock<Global> = OnceLock::new();
    // On a thread of its own: the caller may be inside a test's runtime.
    GLOBAL.get_or_init(|| std::thread::spawn(init_global).join().unwrap())
}

fn init_global() -> Global {
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let receiver = runtime.block_on(Receiver::start());
        let telemetry = {
            let _context = runtime.enter();
            provd::telemetry::init(
                &LogConfig {
                    format: LogFormat::Text,
                    filter: "warn".into(),
                    file: None,
                },
                &TelemetryConfig {
                    otlp_endpoint: Some(receiver.endpoint()),
                    service_name: "provd-test".into(),
                    metrics_interval: Duration::from_secs(60),
                },
            )
            .unwrap()
        };
        assert!(telemetry.exporting());
        Global {
            receiver,
            telemetry,
            _runtime: runtime,
        }
    }
}

/// provd's telemetry for this test process (installed on first call) and
/// the receiver it exports to.
pub fn receiver() -> &'static Receiver {
    &global().receiver
}

/// Exports everything buffered now.
pub async fn flush() {
    tokio::task::spawn_blocking(|| global().telemetry.flush())
        .await
        .unwrap();
}
