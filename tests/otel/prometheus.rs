//! `deploy/otel/alerts.yaml` and `grafana-dashboard.json` in a real
//! Prometheus, over what provd really exported: provd (hermetic, its
//! `[drift]` schedule every second, the agent's updater service stopped) →
//! OTLP → the in-test receiver → its stand-in for the collector's
//! `prometheus` exporter (`common::otlp_prometheus`) → Prometheus scraping
//! it every second, with the repository's rule file.
//!
//! `ProvdCheckFailing` has `for: 10m`: Prometheus shows it `pending`
//! here, and `promtool test rules` plays the ten minutes on the series
//! Prometheus scraped. `ProvdAgentDrift` has no `for:` and fires.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use provd::backends::host::{AGENT_SERVICES, ServiceState};
use serde_json::{Value, json};

use crate::common::hermetic::{Fakes, Hermetic};
use crate::common::prometheus::{Prometheus, promtool};
use crate::common::{otlp, otlp_prometheus};

const ALERTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/otel/alerts.yaml");
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/otel/grafana-dashboard.json"
);
const CHECK: &str = "host.services.running";
const LIMIT: Duration = Duration::from_secs(60);

/// The stopped service (its check FAILs) and the running one (PASS).
const FAILING: &str = AGENT_SERVICES[1].0;
const PASSING: &str = AGENT_SERVICES[0].0;

#[tokio::test]
#[ignore = "needs Debian's prometheus package (prometheus, promtool): deploy/test.sh installs it for the lab tier"]
async fn alert_rules_and_dashboard_work_in_prometheus_on_what_provd_exports() {
    let checked = promtool(&["check", "rules", ALERTS]);
    assert!(
        checked.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // The check gauge is process-global (see verify.rs).
    let _serial = crate::verify::SERIAL.lock().await;
    let receiver = otlp::receiver();
    // This process exports every minute; flush as a short
    // `metrics_interval` would.
    let flusher = tokio::spawn(async {
        loop {
            otlp::flush().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let collector = otlp_prometheus::serve(receiver.clone()).await;
    let host = provd::testkit::FakeHost::new().with_agent("1.1.1000.0");
    host.set_service_state(FAILING, ServiceState::Stopped);
    let fakes = Fakes {
        host: host.clone(),
        ..Fakes::default()
    };
    let d = Hermetic::start_configured(fakes, |config| {
        config.drift.verify_interval = Some(Duration::from_secs(1));
    })
    .await;
    let prometheus = Prometheus::start(collector, &[Path::new(ALERTS)]).await;
    let host_name = gethostname::gethostname().to_string_lossy().into_owned();

    // The failing check's alert, pending for its ten minutes.
    let failing_alert = prometheus
        .wait("ProvdCheckFailing for the stopped service", LIMIT, || {
            alert(
                &prometheus,
                "ProvdCheckFailing",
                &[("check", CHECK), ("subject", FAILING)],
            )
        })
        .await;
    assert_eq!(failing_alert["state"], "pending", "{failing_alert:#}");
    assert_eq!(
        labels(&failing_alert),
        BTreeMap::from([
            ("alertname".to_owned(), "ProvdCheckFailing".to_owned()),
            ("check".to_owned(), CHECK.to_owned()),
            ("subject".to_owned(), FAILING.to_owned()),
            ("host_name".to_owned(), host_name.clone()),
            ("severity".to_owned(), "warning".to_owned()),
        ])
    );
    // The passing check's series is there, and raises nothing.
    let pass = format!(
        r#"provd_verify_check{{check="{CHECK}", subject="{}", status="PASS"}} == 1"#,
        PASSING
    );
    prometheus
        .wait("the running service's PASS", LIMIT, || async {
            nonempty(prometheus.query(&pass).await)
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // two evaluations
    assert!(
        alert(&prometheus, "ProvdCheckFailing", &[("subject", PASSING)])
            .await
            .is_err(),
        "an alert for a passing check: {:#?}",
        prometheus.alerts().await
    );
    assert_rules_healthy(&prometheus).await;

    // Drift: nothing before; the counter is in Prometheus first, so an
    // upgrade outside provd is an increase, and the alert fires.
    prometheus
        .wait("the drift counter", LIMIT, || async {
            nonempty(
                prometheus
                    .query(r#"provd_drift_detected_total{what="agent_version"}"#)
                    .await,
            )
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(alert(&prometheus, "ProvdAgentDrift", &[]).await.is_err());
    host.upgrade_outside_provd("1.1.2000.0");
    let drift = prometheus
        .wait("ProvdAgentDrift", LIMIT, || {
            alert(&prometheus, "ProvdAgentDrift", &[("what", "agent_version")])
        })
        .await;
    assert_eq!(drift["state"], "firing", "{drift:#}");
    assert_eq!(
        labels(&drift),
        BTreeMap::from([
            ("alertname".to_owned(), "ProvdAgentDrift".to_owned()),
            ("what".to_owned(), "agent_version".to_owned()),
            ("host_name".to_owned(), host_name.clone()),
            ("severity".to_owned(), "info".to_owned()),
        ])
    );

    dashboard_panels_show_the_failure_and_the_drift(&prometheus, &host_name).await;
    failing_check_fires_after_ten_minutes(&prometheus, &failing_alert).await;

    flusher.abort();
    d.h.shutdown().await;
}

/// The active alert named `name` with all of `want`; `Err(the alerts)`.
async fn alert(
    prometheus: &Prometheus,
    name: &str,
    want: &[(&str, &str)],
) -> Result<Value, String> {
    let alerts = prometheus.alerts().await;
    alerts
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == name && want.iter().all(|(k, v)| a["labels"][*k] == *v)
        })
        .cloned()
        .ok_or_else(|| format!("{alerts:#?}"))
}

fn labels(value: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(value["labels"].clone()).unwrap()
}

fn nonempty(result: Vec<Value>) -> Result<Vec<Value>, String> {
    if result.is_empty() {
        Err("no series".into())
    } else {
        Ok(result)
    }
}

/// Every rule of alerts.yaml is loaded and evaluates without error.
async fn assert_rules_healthy(prometheus: &Prometheus) {
    let file: Value = serde_norway::from_str(&std::fs::read_to_string(ALERTS).unwrap()).unwrap();
    let mut declared: Vec<&str> = file["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    let rules = prometheus.rules().await;
    let mut loaded: Vec<&str> = rules.iter().map(|r| r["name"].as_str().unwrap()).collect();
    declared.sort_unstable();
    loaded.sort_unstable();
    assert_eq!(loaded, declared);
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "{rule:#}");
    }
}

/// Each PromQL expression of the dashboard, Grafana's variables filled in,
/// runs and returns data; the stats count this server and the drift.
async fn dashboard_panels_show_the_failure_and_the_drift(prometheus: &Prometheus, host_name: &str) {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    // The `Server` variable lists this host.
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(query) = variable["query"]["query"].as_str() {
            let args = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| {
                    panic!("variable query {query:?}: not label_values(metric, label)")
                });
            let (metric, label) = args.split_once(',').unwrap();
            let values = prometheus.label_values(label.trim(), metric.trim()).await;
            assert!(values.iter().any(|v| v == host_name), "{query}: {values:?}");
        }
    }
    // The range the dashboard opens with (`now-24h` → `24h`).
    let range = dashboard["time"]["from"]
        .as_str()
        .unwrap()
        .strip_prefix("now-")
        .unwrap();
    let mut shown = BTreeMap::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
            let promql = grafana(target["expr"].as_str().unwrap(), host_name, range);
            let result = prometheus
                .try_query(&promql)
                .await
                .unwrap_or_else(|e| panic!("panel {title:?}: {promql}: {e}"));
            assert!(
                !result.is_empty(),
                "panel {title:?} shows nothing: {promql}"
            );
            shown.insert(title.to_owned(), result);
        }
    }
    let value = |title: &str| -> f64 {
        let result = &shown[title];
        assert_eq!(result.len(), 1, "{title}: {result:#?}");
        result[0]["value"][1].as_str().unwrap().parse().unwrap()
    };
    let failing_servers = value("Servers with a failing check");
    assert_eq!(
        failing_servers, 1.0,
        "panel \"Servers with a failing check\""
    );
    let drift = value("Drift in the range");
    assert!(drift >= 1.0, "panel \"Drift in the range\": {drift}");
    let rows = &shown["Checks not passing"];
    let subjects: Vec<&str> = rows
        .iter()
        .filter(|r| r["metric"]["check"] == CHECK)
        .map(|r| r["metric"]["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, [FAILING], "{rows:#?}");
}

/// `expr` as Grafana sends it: `$host` (one server picked) as a regex
/// matching that name; `$__range` the dashboard's range;
/// `$__rate_interval` 4 × the data source's scrape interval (1 s here),
/// `$__interval` one step. Panics on any variable left.
fn grafana(expr: &str, host_name: &str, range: &str) -> String {
    // Grafana escapes a single value's regex characters for `=~`; in a
    // PromQL string each backslash is doubled.
    let host: String = host_name
        .chars()
        .map(|c| {
            if r"\.+*?()|[]{}^$".contains(c) {
                format!(r"\\{c}")
            } else {
                c.to_string()
            }
        })
        .collect();
    let promql = expr
        .replace("$__rate_interval", "4s")
        .replace("$__interval", "1s")
        .replace("$__range", range)
        .replace("${host}", &host)
        .replace("$host", &host);
    assert!(
        !promql.contains('$'),
        "a Grafana variable this test does not fill: {promql}"
    );
    promql
}

/// `promtool test rules` over ten minutes of the scraped series of the
/// check (real labels, their latest values): the failing one fires at
/// 10m with the labels and annotations Prometheus gave its pending alert,
/// not at 9m; the passing one never.
async fn failing_check_fires_after_ten_minutes(prometheus: &Prometheus, pending: &Value) {
    let selector = format!(r#"provd_verify_check{{check="{CHECK}", status="FAIL"}}"#);
    let series: Vec<Value> = prometheus
        .query(&selector)
        .await
        .into_iter()
        .filter(|s| [FAILING, PASSING].contains(&s["metric"]["subject"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(series.len(), 2, "{series:#?}");
    let input: Vec<Value> = series
        .iter()
        .map(|s| {
            let metric: BTreeMap<String, String> =
                serde_json::from_value(s["metric"].clone()).unwrap();
            let matchers: Vec<String> = metric
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}={}", Value::from(v.as_str())))
                .collect();
            json!({
                "series": format!("{}{{{}}}", metric["__name__"], matchers.join(",")),
                "values": format!("{}x15", s["value"][1].as_str().unwrap()),
            })
        })
        .collect();
    let mut expected = labels(pending);
    expected.remove("alertname");
    let tests = json!({
        "rule_files": [ALERTS],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input,
            "alert_rule_test": [
                {"eval_time": "9m", "alertname": "ProvdCheckFailing", "exp_alerts": []},
                {"eval_time": "10m", "alertname": "ProvdCheckFailing", "exp_alerts": [{
                    "exp_labels": expected,
                    "exp_annotations": pending["annotations"],
                }]},
            ],
        }],
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts_test.yaml"); // JSON is YAML
    std::fs::write(&file, tests.to_string()).unwrap();
    let out = promtool(&["test", "rules", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "promtool test rules {tests:#}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
