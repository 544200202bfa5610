//! A real Prometheus server (Debian's `prometheus` package, 2.42) for the
//! tests of `deploy/otel/`: its own process on a free loopback port, a
//! temporary config and storage, killed on drop; the HTTP API read with
//! reqwest; and `promtool`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The path of `name` (`prometheus`, `promtool`) on PATH; panics saying
/// what to install: the test is meant to run, not to skip.
pub fn binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH: install Debian's `prometheus` package \
                 (`apt-get install --no-install-recommends prometheus`; deploy/test.sh does)"
            )
        })
}

/// `promtool` with `args`, run to completion.
pub fn promtool(args: &[&str]) -> Output {
    std::process::Command::new(binary("promtool"))
        .args(args)
        .output()
        .unwrap()
}

pub struct Prometheus {
    // Before `dir`: killed before its storage goes.
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `http://<target>/metrics` every second,
    /// evaluating `rule_files` every second, and waits until it is ready.
    /// `honor_labels`: the collector relays other services' series, whose
    /// `job` (the exporter's, from `service.name`) must stay theirs.
    pub async fn start(target: SocketAddr, rule_files: &[&Path]) -> Prometheus {
        let mut dir = tempfile::tempdir().unwrap();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| format!("  - {:?}\n", p.display().to_string()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{}\
             scrape_configs:\n  - job_name: otel-collector\n    honor_labels: true\n    \
             static_configs:\n      - targets: [\"{target}\"]\n",
            rules.concat()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        // A free port, found by binding it; another process may take it
        // before Prometheus does, so try again then.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = dir.path().join("prometheus.log");
            let child = tokio::process::Command::new(binary("prometheus"))
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut prometheus = Prometheus {
                child,
                url: format!("http://127.0.0.1:{port}"),
                http: reqwest::Client::new(),
                dir,
            };
            match prometheus.ready().await {
                Ok(()) => return prometheus,
                Err(log) if log.contains("address already in use") => {
                    dir = prometheus.into_dir();
                }
                Err(log) => panic!("prometheus did not start:\n{log}"),
            }
        }
        panic!("no free port for prometheus in three tries");
    }

    fn into_dir(self) -> tempfile::TempDir {
        self.dir
    }

    /// Polls `/-/ready` (20 s); `Err(its log)` if it exits or stays unready.
    async fn ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return Err(self.log());
            }
            let ready = self.http.get(format!("{}/-/ready", self.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.log())
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `data` of an API answer, or the API's error (`errorType: error`).
    async fn api(&self, request: reqwest::RequestBuilder) -> Result<Value, String> {
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["status"] == "success" {
            Ok(answer["data"].clone())
        } else {
            Err(format!("{}: {}", answer["errorType"], answer["error"]))
        }
    }

    /// An instant query (`/api/v1/query`): its `result`, or the error.
    pub async fn try_query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let request = self
            .http
            .post(format!("{}/api/v1/query", self.url))
            .form(&[("query", promql)]);
        let data = self.api(request).await?;
        // A scalar or string result is one [time, value] pair.
        Ok(match &data["result"] {
            Value::Array(items)
                if data["resultType"] == "vector" || data["resultType"] == "matrix" =>
            {
                items.clone()
            }
            other => vec![other.clone()],
        })
    }

    pub async fn query(&self, promql: &str) -> Vec<Value> {
        self.try_query(promql)
            .await
            .unwrap_or_else(|e| panic!("{promql:?}: {e}"))
    }

    /// Active alerts (`/api/v1/alerts`): pending and firing.
    pub async fn alerts(&self) -> Vec<Value> {
        let data = self
            .api(self.http.get(format!("{}/api/v1/alerts", self.url)))
            .await
            .unwrap();
        data["alerts"].as_array().cloned().unwrap_or_default()
    }

    /// The loaded rules, flattened over their groups (`/api/v1/rules`).
    pub async fn rules(&self) -> Vec<Value> {
        let data = self
            .api(self.http.get(format!("{}/api/v1/rules", self.url)))
            .await
            .unwrap();
        data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    /// Values of `label` on the series `selector` matches
    /// (`/api/v1/label/<label>/values`, what Grafana's `label_values` asks).
    pub async fn label_values(&self, label: &str, selector: &str) -> Vec<String> {
        let matcher =
            percent_encoding::utf8_percent_encode(selector, percent_encoding::NON_ALPHANUMERIC);
        let url = format!("{}/api/v1/label/{label}/values?match[]={matcher}", self.url);
        let data = self.api(self.http.get(url)).await.unwrap();
        data.as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// Polls `probe` every 250 ms until it returns `Some`, for `limit`;
    /// panics with `what`, the last probe's `Err` and the log otherwise.
    pub async fn wait<T, F, Fut>(&self, what: &str, limit: Duration, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let last = match probe().await {
                Ok(found) => return found,
                Err(last) => last,
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {limit:?}; last: {last}\nprometheus log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
