//! The collector stand-in's rendering (`common::otlp_prometheus`) against
//! the exporter's documented examples, and provd's own metric names
//! (`Instrument::prometheus_names`, what the static checks of
//! `deploy/otel/` use) against the stand-in.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use provd::telemetry::{INSTRUMENTS, InstrumentKind};

use crate::common::otlp_prometheus::{exposition, go_float};

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn point(value: f64, attributes: &[(&str, &str)]) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes.iter().map(|(k, v)| kv(k, v)).collect(),
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn gauge(name: &str, unit: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("about {name}"),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn sum(name: &str, unit: &str, monotonic: bool, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("about {name}"),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn histogram(name: &str, unit: &str, bounds: &[f64], counts: &[u64], total: f64) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: format!("about {name}"),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                attributes: vec![kv("code", "OK")],
                count: counts.iter().sum(),
                sum: Some(total),
                bucket_counts: counts.to_vec(),
                explicit_bounds: bounds.to_vec(),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    }
}

/// One export: a resource with `resource` attributes, scope `provd`.
fn export(resource: &[(&str, &str)], metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "provd".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The sample lines (no `#` comments) of an exposition.
fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn names_follow_the_documented_normalization() {
    let none: Vec<NumberDataPoint> = vec![point(1.0, &[])];
    let text = exposition(&[export(
        &[],
        vec![
            // The translator README's table.
            gauge("system.filesystem.usage", "By", none.clone()),
            sum("system.network.dropped", "{packets}", true, none.clone()),
            gauge("system.memory.utilization", "1", none.clone()),
            gauge("storage.filesystem.utilization", "%", none.clone()),
            gauge("astro.light.speed", "m/s", none.clone()),
            sum("system.processes.created", "", true, none.clone()),
            // Not a counter: no `_total`; a unit already in the name stays once.
            sum("queue.depth", "", false, none.clone()),
            gauge("http.server.duration.seconds", "s", none.clone()),
            // Runs of invalid characters make one `_`; `total` moves last.
            sum("(lambda).total..function.executions(#)", "", true, none),
        ],
    )]);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .collect();
    assert_eq!(
        names,
        [
            "astro_light_speed_meters_per_second gauge",
            "http_server_duration_seconds gauge",
            "lambda_function_executions_total counter",
            "queue_depth gauge",
            "storage_filesystem_utilization_percent gauge",
            "system_filesystem_usage_bytes gauge",
            "system_memory_utilization_ratio gauge",
            "system_network_dropped_total counter",
            "system_processes_created_total counter",
        ]
    );
}

#[test]
fn labels_carry_the_resource_scope_and_job_and_the_latest_value() {
    let resource = [
        ("service.name", "provd"),
        ("host.name", "web-1"),
        // A resource attribute wins over a point attribute of that name.
        ("check", "from the resource"),
    ];
    let check = |value: f64| point(value, &[("check", "x"), ("status", "FAIL")]);
    let first = export(
        &resource,
        vec![gauge("provd.verify.check", "", vec![check(0.0)])],
    );
    let escaped = point(0.0, &[("status", "PASS"), ("2nd", "a\"b\\c\nd")]);
    let later = export(
        &resource,
        vec![gauge("provd.verify.check", "", vec![check(1.0), escaped])],
    );
    let text = exposition(&[first, later]);
    assert_eq!(
        samples(&text),
        [
            concat!(
                r#"provd_verify_check{check="from the resource",host_name="web-1","#,
                r#"job="provd",key_2nd="a\"b\\c\nd",otel_scope_name="provd","#,
                r#"otel_scope_schema_url="",otel_scope_version="","#,
                r#"service_name="provd",status="PASS"} 0"#
            ),
            concat!(
                r#"provd_verify_check{check="from the resource",host_name="web-1","#,
                r#"job="provd",otel_scope_name="provd",otel_scope_schema_url="","#,
                r#"otel_scope_version="",service_name="provd",status="FAIL"} 1"#
            ),
        ]
    );
    assert!(text.contains("# HELP provd_verify_check about provd.verify.check\n"));
    // No service.instance.id: no `instance`, no target_info.
    assert!(
        !text.contains("instance") && !text.contains("target_info"),
        "{text}"
    );

    let with_instance = export(
        &[
            ("service.name", "provd"),
            ("service.namespace", "idm"),
            ("service.instance.id", "i-1"),
            ("host.name", "web-1"),
        ],
        vec![sum(
            "provd.drift.detected",
            "",
            true,
            vec![point(2.0, &[("what", "agent_version")])],
        )],
    );
    let text = exposition(&[with_instance]);
    assert_eq!(
        samples(&text),
        [
            concat!(
                r#"provd_drift_detected_total{host_name="web-1",instance="i-1",job="idm/provd","#,
                r#"otel_scope_name="provd",otel_scope_schema_url="",otel_scope_version="","#,
                r#"service_instance_id="i-1",service_name="provd",service_namespace="idm","#,
                r#"what="agent_version"} 2"#
            ),
            r#"target_info{host_name="web-1",instance="i-1",job="idm/provd"} 1"#,
        ]
    );
}

#[test]
fn histograms_are_cumulative_buckets_sum_and_count() {
    let text = exposition(&[export(
        &[],
        vec![histogram(
            "provd.rpc.duration",
            "s",
            &[0.005, 1.0, 1e6],
            &[1, 2, 0, 3],
            12.5,
        )],
    )]);
    let scope = r#"otel_scope_name="provd",otel_scope_schema_url="",otel_scope_version="""#;
    let want: Vec<String> = [
        r#"_bucket{code="OK",SCOPE,le="0.005"} 1"#,
        r#"_bucket{code="OK",SCOPE,le="1"} 3"#,
        r#"_bucket{code="OK",SCOPE,le="1e+06"} 3"#,
        r#"_bucket{code="OK",SCOPE,le="+Inf"} 6"#,
        r#"_sum{code="OK",SCOPE} 12.5"#,
        r#"_count{code="OK",SCOPE} 6"#,
    ]
    .iter()
    .map(|l| format!("provd_rpc_duration_seconds{}", l.replace("SCOPE", scope)))
    .collect();
    assert_eq!(samples(&text), want);
    assert!(text.contains("# TYPE provd_rpc_duration_seconds histogram\n"));
}

#[test]
fn numbers_are_written_as_go_writes_them() {
    for (value, text) in [
        (0.0, "0"),
        (1.0, "1"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (2.5e-10, "2.5e-10"),
        (-3.0, "-3"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
    ] {
        assert_eq!(go_float(value), text, "{value}");
    }
}

/// Every provd metric gets, from the stand-in, the names the static
/// checks of deploy/otel/ expect (`Instrument::prometheus_names`).
#[test]
fn provds_metrics_get_the_names_the_deploy_checks_expect() {
    for instrument in INSTRUMENTS {
        let unit = instrument.unit.unwrap_or_default();
        let one = vec![point(1.0, &[])];
        let m = match instrument.kind {
            InstrumentKind::Counter => sum(instrument.name, unit, true, one),
            InstrumentKind::Gauge => gauge(instrument.name, unit, one),
            InstrumentKind::Histogram => histogram(instrument.name, unit, &[1.0], &[1, 0], 0.5),
        };
        let text = exposition(&[export(&[], vec![m])]);
        let mut names: Vec<String> = samples(&text)
            .iter()
            .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
            .collect();
        names.dedup();
        assert_eq!(names, instrument.prometheus_names(), "{}", instrument.name);
    }
}
