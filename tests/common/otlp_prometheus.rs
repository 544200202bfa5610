//! LAB STAND-IN for the OpenTelemetry Collector's `prometheus` exporter,
//! configured as in `deploy/otel/collector.yaml` (`add_metric_suffixes:
//! true`, `resource_to_telemetry_conversion: enabled`). The collector is
//! not packaged for Debian, so the Prometheus test scrapes this instead: it
//! renders what the in-test OTLP receiver ([`super::otlp`]) holds as the
//! text exposition format 0.0.4 on `http://127.0.0.1:<port>/metrics`.
//!
//! What it copies, from the exporter's documentation and source
//! (opentelemetry-collector-contrib):
//! - names (`pkg/translator/prometheus/README.md`, "Full normalization";
//!   `prometheus/otlptranslator` `metric_namer.go` `normalizeName`): the
//!   name split into tokens at every character outside `[a-zA-Z0-9:]` and
//!   joined with `_`; the UCUM unit appended as its Prometheus word (`s` →
//!   `seconds`, `By` → `bytes`, `m/s` → `meters_per_second`) unless the
//!   name already has it, `{annotations}` dropped; `total` last for a
//!   monotonic sum, `ratio` for a gauge of unit `1`;
//! - kinds (`exporter/prometheusexporter/collector.go`): gauge → gauge,
//!   monotonic sum → counter, other sum → gauge, histogram → `_bucket`
//!   (cumulative, `le`, `+Inf` = count), `_sum`, `_count`;
//! - labels: attribute keys with invalid characters made `_`, a leading
//!   digit prefixed `key_`, a single leading `_` prefixed `key` (README,
//!   "Labels"); `resource_to_telemetry_conversion` copies every resource
//!   attribute onto each point, over a point attribute of the same key
//!   (`pkg/resourcetotelemetry`); `otel_scope_name`, `otel_scope_version`,
//!   `otel_scope_schema_url` and `otel_scope_<attribute>` on every series;
//!   `job` from `service.name` (`service.namespace/service.name` with a
//!   namespace), `instance` from `service.instance.id` (`utils.go`
//!   `extractJob`, `extractInstance`); `target_info` only for a resource
//!   with both (`resourceSignature`);
//! - values as Go's `strconv.FormatFloat(v, 'g', -1, 64)` (client_golang's
//!   text writer): `1e+06`, `+Inf`.
//!
//! What it leaves out: series expiry (`metric_expiration`, 5 m: tests are
//! shorter), delta temporality (provd exports cumulative, the SDK
//! default; other points are skipped), exponential histograms and
//! summaries (provd has none), and non-string attribute values beyond
//! [`super::otlp::text`].
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ScopeMetrics, metric, number_data_point,
};

use super::otlp::{Receiver, attrs};

/// Serves `/metrics` on 127.0.0.1:0 (on the current runtime): what
/// `receiver` holds at each scrape, rendered by [`exposition`].
pub async fn serve(receiver: Receiver) -> SocketAddr {
    async fn metrics(
        axum::extract::State(receiver): axum::extract::State<Receiver>,
    ) -> impl axum::response::IntoResponse {
        (
            [(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            receiver.with_metric_exports(exposition),
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// A series' value: a number, or a histogram's buckets.
enum Value {
    Number(f64),
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        sum: f64,
        count: u64,
    },
}

/// One metric family: its `# HELP` (the first description seen, as the
/// exporter keeps), `# TYPE`, and the latest value of each label set.
struct Family {
    help: String,
    kind: &'static str,
    series: BTreeMap<Labels, Value>,
}

/// A series' labels, sorted by name.
type Labels = Vec<(String, String)>;

/// The exposition of the latest point of every series in `exports`
/// (oldest first, as received).
pub fn exposition(exports: &[ExportMetricsServiceRequest]) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for rm in exports.iter().flat_map(|r| &r.resource_metrics) {
        let resource = rm
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        if let Some(labels) = target_info(resource)
            && let Some(series) = family(&mut families, "target_info", "Target metadata", "gauge")
        {
            series.insert(labels, Value::Number(1.0));
        }
        for sm in &rm.scope_metrics {
            let scope = scope_labels(sm);
            let labels = |point: &[KeyValue]| -> Labels {
                // resource_to_telemetry_conversion: resource over point.
                let mut merged = attrs(point);
                merged.extend(attrs(resource));
                let mut out: BTreeMap<String, String> = merged
                    .into_iter()
                    .map(|(k, v)| (label_name(&k), v))
                    .collect();
                out.extend(scope.iter().cloned());
                out.extend(job_and_instance(resource));
                out.into_iter().collect()
            };
            for m in &sm.metrics {
                add_metric(&mut families, m, &labels);
            }
        }
    }
    render(&families)
}

/// `otel_scope_name`, `_version`, `_schema_url`, `otel_scope_<attribute>`.
fn scope_labels(sm: &ScopeMetrics) -> Labels {
    let scope = sm.scope.clone().unwrap_or_default();
    let mut out = vec![
        ("otel_scope_name".to_owned(), scope.name),
        ("otel_scope_version".to_owned(), scope.version),
        ("otel_scope_schema_url".to_owned(), sm.schema_url.clone()),
    ];
    for (k, v) in attrs(&scope.attributes) {
        out.push((label_name(&format!("otel_scope_{k}")), v));
    }
    out
}

/// `m`'s points into its family, each replacing its series' value.
fn add_metric(
    families: &mut BTreeMap<String, Family>,
    m: &Metric,
    labels: &dyn Fn(&[KeyValue]) -> Labels,
) {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let numbers = |points: &'_ [NumberDataPoint]| -> Vec<(Labels, Value)> {
        points
            .iter()
            .map(|p| (labels(&p.attributes), number(p)))
            .collect()
    };
    let (kind, type_, points) = match &m.data {
        Some(metric::Data::Gauge(g)) => (Kind::Gauge, "gauge", numbers(&g.data_points)),
        Some(metric::Data::Sum(s)) if s.aggregation_temporality == cumulative => {
            if s.is_monotonic {
                (Kind::Counter, "counter", numbers(&s.data_points))
            } else {
                (Kind::Gauge, "gauge", numbers(&s.data_points))
            }
        }
        Some(metric::Data::Histogram(h)) if h.aggregation_temporality == cumulative => {
            let points = h.data_points.iter().map(|p| {
                let value = Value::Histogram {
                    bounds: p.explicit_bounds.clone(),
                    counts: p.bucket_counts.clone(),
                    sum: p.sum.unwrap_or_default(),
                    count: p.count,
                };
                (labels(&p.attributes), value)
            });
            (Kind::Other, "histogram", points.collect())
        }
        _ => return,
    };
    let name = name(&m.name, &m.unit, kind);
    if let Some(series) = family(families, &name, &m.description, type_) {
        series.extend(points);
    }
}

/// The family's series, created with `help` and `kind` on first sight;
/// `None` for a name already of another kind (the exporter drops such a
/// metric: "instrument type conflict").
fn family<'a>(
    families: &'a mut BTreeMap<String, Family>,
    name: &str,
    help: &str,
    kind: &'static str,
) -> Option<&'a mut BTreeMap<Labels, Value>> {
    let family = families.entry(name.to_owned()).or_insert_with(|| Family {
        help: help.to_owned(),
        kind,
        series: BTreeMap::new(),
    });
    (family.kind == kind).then_some(&mut family.series)
}

fn number(p: &NumberDataPoint) -> Value {
    Value::Number(match p.value {
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        Some(number_data_point::Value::AsDouble(d)) => d,
        None => 0.0,
    })
}

fn render(families: &BTreeMap<String, Family>) -> String {
    let mut out = String::new();
    for (name, family) in families {
        if family.series.is_empty() {
            continue;
        }
        let help = family.help.replace('\\', r"\\").replace('\n', r"\n");
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {}", family.kind);
        for (labels, value) in &family.series {
            match value {
                Value::Number(v) => sample(&mut out, name, labels, None, *v),
                Value::Histogram {
                    bounds,
                    counts,
                    sum,
                    count,
                } => {
                    let bucket = format!("{name}_bucket");
                    let mut sorted: Vec<(f64, u64)> = bounds
                        .iter()
                        .enumerate()
                        .map(|(i, b)| (*b, counts.get(i).copied().unwrap_or(0)))
                        .collect();
                    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
                    sorted.dedup_by(|a, b| a.0 == b.0);
                    let mut cumulative = 0;
                    for (bound, n) in sorted {
                        cumulative += n;
                        sample(&mut out, &bucket, labels, Some(bound), cumulative as f64);
                    }
                    sample(
                        &mut out,
                        &bucket,
                        labels,
                        Some(f64::INFINITY),
                        *count as f64,
                    );
                    sample(&mut out, &format!("{name}_sum"), labels, None, *sum);
                    sample(
                        &mut out,
                        &format!("{name}_count"),
                        labels,
                        None,
                        *count as f64,
                    );
                }
            }
        }
    }
    out
}

/// One line: `name{labels,le="…"} value` (client_golang writes `le` last).
fn sample(out: &mut String, name: &str, labels: &Labels, le: Option<f64>, value: f64) {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{}\"", go_float(le)));
    }
    let _ = if pairs.is_empty() {
        writeln!(out, "{name} {}", go_float(value))
    } else {
        writeln!(out, "{name}{{{}}} {}", pairs.join(","), go_float(value))
    };
}

fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits, in
/// exponent form when the exponent is below -4 or at least 6.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let scientific = format!("{v:e}"); // shortest digits: "1.5e-7", "1e6"
    let (mantissa, exp) = scientific.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    if v != 0.0 && !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        v.to_string()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Other,
}

/// `normalizeName` with suffixes (no namespace).
fn name(otel: &str, unit: &str, kind: Kind) -> String {
    let mut tokens: Vec<String> = otel
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let (main, per) = unit.split_once('/').unwrap_or((unit, ""));
    let word = |u: &str, table: &[(&str, &str)]| -> String {
        let u = u.trim();
        if u.is_empty() || u.contains(['{', '}']) {
            return String::new();
        }
        let word = table.iter().find(|(k, _)| *k == u).map_or(u, |(_, v)| v);
        clean_unit(word)
    };
    let main = word(main, UNITS);
    let per = match word(per, PER_UNITS) {
        p if p.is_empty() => String::new(),
        p => format!("per_{p}"),
    };
    if !main.is_empty() && !tokens.contains(&main) {
        tokens.push(main);
    }
    if !per.is_empty() && !tokens.contains(&per) {
        tokens.push(per);
    }
    let mut last = |suffix: &str| {
        tokens.retain(|t| t != suffix);
        tokens.push(suffix.to_owned());
    };
    if kind == Kind::Counter {
        last("total");
    }
    if unit == "1" && kind == Kind::Gauge {
        last("ratio");
    }
    let joined = tokens.join("_");
    if joined.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{joined}")
    } else {
        joined
    }
}

/// A unit word as a name token: invalid characters dropped to `_`, runs of
/// `_` merged, trimmed at both ends (`cleanUpUnit`).
fn clean_unit(unit: &str) -> String {
    unit.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':'))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// otlptranslator's `unitMap`.
const UNITS: &[(&str, &str)] = &[
    ("d", "days"),
    ("h", "hours"),
    ("min", "minutes"),
    ("s", "seconds"),
    ("ms", "milliseconds"),
    ("us", "microseconds"),
    ("ns", "nanoseconds"),
    ("By", "bytes"),
    ("KiBy", "kibibytes"),
    ("MiBy", "mebibytes"),
    ("GiBy", "gibibytes"),
    ("TiBy", "tibibytes"),
    ("KBy", "kilobytes"),
    ("MBy", "megabytes"),
    ("GBy", "gigabytes"),
    ("TBy", "terabytes"),
    ("m", "meters"),
    ("V", "volts"),
    ("A", "amperes"),
    ("J", "joules"),
    ("W", "watts"),
    ("g", "grams"),
    ("Cel", "celsius"),
    ("Hz", "hertz"),
    ("1", ""),
    ("%", "percent"),
];

/// otlptranslator's `perUnitMap`.
const PER_UNITS: &[(&str, &str)] = &[
    ("s", "second"),
    ("m", "minute"),
    ("h", "hour"),
    ("d", "day"),
    ("w", "week"),
    ("mo", "month"),
    ("y", "year"),
];

/// A label name: invalid characters made `_`; a leading digit gets
/// `key_`, a single leading `_` gets `key`.
fn label_name(key: &str) -> String {
    let name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{name}")
    } else if name.starts_with('_') && !name.starts_with("__") {
        format!("key{name}")
    } else {
        name
    }
}

/// `job` and `instance` from the resource, where it has them.
fn job_and_instance(resource: &[KeyValue]) -> Labels {
    let attributes = attrs(resource);
    let mut out = Vec::new();
    if let Some(service) = attributes.get("service.name") {
        let job = match attributes.get("service.namespace") {
            Some(namespace) => format!("{namespace}/{service}"),
            None => service.clone(),
        };
        out.push(("job".to_owned(), job));
    }
    if let Some(instance) = attributes.get("service.instance.id") {
        out.push(("instance".to_owned(), instance.clone()));
    }
    out
}

/// `target_info`'s labels: the resource's attributes but those that make
/// `job` and `instance`, plus those two; none unless it has both.
fn target_info(resource: &[KeyValue]) -> Option<Labels> {
    let job_and_instance = job_and_instance(resource);
    if job_and_instance.len() < 2 {
        return None;
    }
    let mut labels: BTreeMap<String, String> = attrs(resource)
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "service.name" | "service.namespace" | "service.instance.id"
            )
        })
        .map(|(k, v)| (label_name(&k), v))
        .collect();
    labels.extend(job_and_instance);
    Some(labels.into_iter().collect())
}
