//! `deploy/otel/`'s alert rules and Grafana dashboard name only metrics
//! provd emits, as the collector's Prometheus exporter renders them
//! ([`super::INSTRUMENTS`]), and cover the check and drift metrics.

use std::collections::BTreeSet;

use super::{DRIFT_DETECTED, INSTRUMENTS, VERIFY_CHECK};

const ALERTS: &str = include_str!("../../deploy/otel/alerts.yaml");
const DASHBOARD: &str = include_str!("../../deploy/otel/grafana-dashboard.json");

/// PromQL words that are no metric: operators, and the aggregations, which
/// may stand before their grouping (`max by (x) (…)`) rather than a `(`.
const KEYWORDS: [&str; 19] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// PromQL words followed by a list of label names.
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Every series name provd's metrics become in Prometheus.
fn emitted() -> BTreeSet<String> {
    INSTRUMENTS
        .iter()
        .flat_map(|i| i.prometheus_names())
        .collect()
}

/// `text` without what lies between `open` and `close` (quotes: `open ==
/// close`), each such part replaced by one space.
fn without(text: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        if depth > 0 && c == close {
            depth -= 1;
            if depth == 0 {
                out.push(' ');
            }
        } else if c == open {
            depth += 1;
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

/// The metric names a PromQL expression selects: the identifiers left
/// once strings, label matchers, ranges, Grafana variables, grouping
/// lists, functions and keywords are taken out.
fn metric_names(expr: &str) -> Vec<String> {
    let mut text = expr.to_owned();
    for quote in ['"', '\'', '`'] {
        text = without(&text, quote, quote);
    }
    text = without(&without(&text, '{', '}'), '[', ']');
    let chars: Vec<char> = text.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            // A Grafana variable: `$host`, `$__range`.
            i += 1;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            continue;
        }
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | ':'))
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        // A number like 1e3 starts with a digit and never gets here.
        let mut next = i;
        while next < chars.len() && chars[next].is_whitespace() {
            next += 1;
        }
        let called = chars.get(next) == Some(&'(');
        if GROUPING.contains(&word.as_str()) {
            if called {
                // Skip the label list.
                while next < chars.len() && chars[next] != ')' {
                    next += 1;
                }
                i = next + 1;
            }
            continue;
        }
        if called || KEYWORDS.contains(&word.as_str()) {
            continue;
        }
        names.push(word);
    }
    names
}

/// The metric of a Grafana `label_values(metric, label)` query.
fn label_values_metric(query: &str) -> Option<String> {
    let rest = query.trim().strip_prefix("label_values(")?;
    let metric = rest.split([',', ')']).next()?;
    metric_names(metric).into_iter().next()
}

/// Every PromQL expression of the dashboard: targets' `expr` and the
/// variables' `label_values` queries (as metric names).
fn dashboard_exprs(value: &serde_json::Value, exprs: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => exprs.push(e.clone()),
                    ("definition" | "query", serde_json::Value::String(q))
                        if q.starts_with("label_values(") =>
                    {
                        exprs.extend(label_values_metric(q));
                    }
                    _ => dashboard_exprs(v, exprs),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                dashboard_exprs(v, exprs);
            }
        }
        _ => {}
    }
}

/// Asserts every expression names at least one metric, each one provd
/// emits, and that the check and drift metrics are among them.
fn assert_names_only_provds(file: &str, exprs: &[String]) {
    let emitted = emitted();
    let mut seen = BTreeSet::new();
    assert!(!exprs.is_empty(), "{file}: no expression");
    for expr in exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{file}: {expr:?} names no metric");
        for name in names {
            assert!(
                emitted.contains(&name),
                "{file}: {expr:?} names {name}, which provd does not emit; it emits {emitted:?}"
            );
            seen.insert(name);
        }
    }
    for wanted in [
        VERIFY_CHECK.prometheus_names(),
        DRIFT_DETECTED.prometheus_names(),
    ] {
        assert!(
            wanted.iter().any(|w| seen.contains(w)),
            "{file} does not use {wanted:?}"
        );
    }
}

#[test]
fn promql_metric_names_are_found_and_nothing_else() {
    assert_eq!(
        metric_names(
            r#"count(max by (host_name) (provd_verify_check{host_name=~"$host", status="FAIL"}) == 1) or vector(0)"#
        ),
        ["provd_verify_check"]
    );
    assert_eq!(
        metric_names(
            "sum by (host_name, what) (increase(provd_drift_detected_total[$__rate_interval])) > 0"
        ),
        ["provd_drift_detected_total"]
    );
    assert_eq!(
        metric_names("up + on (job) group_left (version) some_other_metric"),
        ["up", "some_other_metric"]
    );
    assert_eq!(
        label_values_metric("label_values(provd_verify_check, host_name)").as_deref(),
        Some("provd_verify_check")
    );
}

#[test]
fn the_alert_rules_name_only_metrics_provd_emits() {
    #[derive(serde::Deserialize)]
    struct File {
        groups: Vec<Group>,
    }
    #[derive(serde::Deserialize)]
    struct Group {
        name: String,
        rules: Vec<Rule>,
    }
    #[derive(serde::Deserialize)]
    struct Rule {
        alert: String,
        expr: String,
        #[serde(rename = "for")]
        for_: Option<String>,
        annotations: std::collections::BTreeMap<String, String>,
    }
    let file: File = serde_norway::from_str(ALERTS).expect("alerts.yaml parses");
    let mut exprs = Vec::new();
    for group in &file.groups {
        assert!(!group.name.is_empty());
        for rule in &group.rules {
            assert!(!rule.alert.is_empty(), "{:?}", rule.expr);
            assert!(rule.annotations.contains_key("summary"), "{}", rule.alert);
            exprs.push(rule.expr.clone());
        }
    }
    let failing = file
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .find(|r| r.alert == "ProvdCheckFailing")
        .expect("the failing-check alert");
    // A server with any FAIL check for 10 minutes.
    assert_eq!(failing.for_.as_deref(), Some("10m"));
    assert!(
        failing.expr.contains(r#"status="FAIL""#),
        "{}",
        failing.expr
    );
    assert_names_only_provds("alerts.yaml", &exprs);
}

#[test]
fn the_dashboard_names_only_metrics_provd_emits() {
    let dashboard: serde_json::Value =
        serde_json::from_str(DASHBOARD).expect("grafana-dashboard.json parses");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    assert!(
        exprs.iter().any(|e| e.contains("by (host_name, status)")),
        "no checks-by-status-per-host panel: {exprs:#?}"
    );
    assert_names_only_provds("grafana-dashboard.json", &exprs);
}
