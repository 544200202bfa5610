//! `provctl fleet`: one document applied to many provd daemons, staggered
//! the way Microsoft's guidance asks (registering many agents at once has
//! put tenants into quarantine): a canary host first, then waves with
//! bounded concurrency and a minimum gap between agent registrations;
//! stop at the first failure unless told to continue; live progress; a
//! summary table and a JSON report. The inventory is `hosts.rs`'s; the
//! read-only sweeps are `fleet_verify.rs` and `fleet_status.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};
use tonic::Code;

use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;

use super::connect;
pub use super::hosts::{Host, load_inventory};

/// How a fleet apply is paced.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Hosts applied at once within a wave.
    pub concurrency: usize,
    /// Hosts per wave after the canary; a wave starts when the previous
    /// one ended.
    pub wave_size: usize,
    /// Least time between two hosts starting an apply that registers an
    /// agent.
    pub registration_gap: Duration,
    pub continue_on_error: bool,
    /// A canary host alone first; `false` only for a document
    /// [`canary_skippable`] allows.
    pub canary: bool,
}

/// Whether a document may go to every host without a canary first: only
/// when what it asks lives in the directory and is the same on every host —
/// domains without a cloud sync table, the service account and its
/// permissions — or when it asks nothing. The canary is there for what
/// differs per host or reaches Microsoft: the agent (a package, a
/// registration: many at once have put tenants in quarantine), its settings,
/// the host's prerequisites, password writeback (the agent's setting and
/// the tenant's flag), a domain's cloud sync configuration. The reason names
/// the sections that need it.
pub fn canary_skippable(desired: &v1::DesiredState) -> Result<(), String> {
    let mut needs = Vec::new();
    if desired.agent.is_some() {
        needs.push("agent".to_owned());
    }
    if desired.host.is_some() {
        needs.push("host".to_owned());
    }
    if desired.writeback.is_some() {
        needs.push("writeback".to_owned());
    }
    for d in &desired.domains {
        if d.cloud_sync.is_some() {
            needs.push(format!("domains.{}.cloud_sync", d.domain));
        }
    }
    if needs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the document has {}: that reaches the agent, the host or the tenant, so a canary \
             host goes first (--no-canary is for documents of domains, the service account \
             and permissions only)",
            needs.join(", ")
        ))
    }
}

/// The hosts in waves: with `canary`, the inventory's canary (else the
/// first host) alone, then waves of `size`; without, waves of `size` from
/// the start.
fn waves(mut hosts: Vec<Host>, canary: bool, size: usize) -> Vec<Vec<Host>> {
    let mut waves = Vec::new();
    if canary && !hosts.is_empty() {
        let first = hosts.iter().position(|h| h.canary).unwrap_or(0);
        waves.push(vec![hosts.remove(first)]);
    }
    let mut rest = hosts.into_iter().peekable();
    while rest.peek().is_some() {
        waves.push(rest.by_ref().take(size.max(1)).collect());
    }
    waves
}

#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: String,
    pub endpoint: String,
    /// The operation's end (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED);
    /// UNREACHABLE (no answer, or the watch lost; `operation_id` set once
    /// the operation began); REFUSED (the daemon answered the apply with an
    /// error: no rights, an operation running, a bad document); SKIPPED.
    pub state: String,
    pub changed: bool,
    pub changes: u64,
    pub operation_id: String,
    pub error: String,
    pub wave: usize,
    /// When the host's apply began, from the start of the fleet run.
    pub start_ms: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub hosts: Vec<HostResult>,
    pub succeeded: usize,
    pub failed: usize,
    pub skipped: usize,
    pub changed: usize,
    pub duration_ms: u64,
}

/// Live display: one line per host plus an overall bar when stderr is a
/// terminal; plain lines on every state change otherwise.
struct Display {
    multi: MultiProgress,
    overall: ProgressBar,
    fancy: bool,
}

impl Display {
    fn new(hosts: usize, quiet: bool) -> Display {
        let fancy = !quiet && console_is_terminal();
        let multi = MultiProgress::with_draw_target(if fancy {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let overall = multi.add(ProgressBar::new(hosts as u64));
        overall.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} hosts done  {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Display {
            multi,
            overall,
            fancy,
        }
    }

    fn host_line(&self, name: &str) -> ProgressBar {
        let bar = self
            .multi
            .insert_before(&self.overall, ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{prefix:>16} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(name.to_owned());
        bar
    }

    fn say(&self, quiet: bool, bar: &ProgressBar, name: &str, message: String) {
        if self.fancy {
            bar.set_message(message);
        } else if !quiet {
            eprintln!("{name:>16} {message}");
        }
    }
}

fn console_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Applies `desired` on every host, canary first, then in waves.
pub async fn apply(
    hosts: Vec<Host>,
    desired: v1::DesiredState,
    credential: Option<v1::Credential>,
    pacing: Pacing,
    quiet: bool,
) -> Report {
    let started = Instant::now();
    let registers = desired.agent.as_ref().is_some_and(|a| !a.skip_registration);
    let waves = waves(hosts, pacing.canary, pacing.wave_size);
    let display = Arc::new(Display::new(waves.iter().map(Vec::len).sum(), quiet));
    let gate = Arc::new(Mutex::new(None::<Instant>));
    let semaphore = Arc::new(Semaphore::new(pacing.concurrency.max(1)));
    let mut results = Vec::new();
    let mut stopped = false;
    for (index, wave) in waves.into_iter().enumerate() {
        if stopped {
            for host in wave {
                results.push(skipped(&host, index, "not started: an earlier host failed"));
                display.overall.inc(1);
            }
            continue;
        }
        let mut tasks = tokio::task::JoinSet::new();
        for host in wave {
            let (desired, credential) = (desired.clone(), credential.clone());
            let (display, gate, semaphore) = (display.clone(), gate.clone(), semaphore.clone());
            let gap = if registers {
                pacing.registration_gap
            } else {
                Duration::ZERO
            };
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let start_ms = millis(started.elapsed());
                let bar = display.host_line(&host.name);
                let result = apply_one(&host, desired, credential, gap, &gate, |m| {
                    display.say(quiet, &bar, &host.name, m)
                })
                .await;
                let result = HostResult {
                    wave: index,
                    start_ms,
                    ..result
                };
                bar.finish_with_message(format!("{} {}", result.state, result.error));
                display.overall.inc(1);
                result
            });
        }
        while let Some(joined) = tasks.join_next().await {
            if let Ok(result) = joined {
                if result.state != "SUCCEEDED" && !pacing.continue_on_error {
                    stopped = true;
                }
                results.push(result);
            }
        }
    }
    display.overall.finish();
    let _ = display.multi.clear();
    report(results, started.elapsed())
}

fn skipped(host: &Host, wave: usize, why: &str) -> HostResult {
    HostResult {
        host: host.name.clone(),
        endpoint: host.settings.endpoint.clone(),
        state: "SKIPPED".into(),
        changed: false,
        changes: 0,
        operation_id: String::new(),
        error: why.into(),
        wave,
        start_ms: 0,
        duration_ms: 0,
    }
}

fn report(mut hosts: Vec<HostResult>, took: Duration) -> Report {
    hosts.sort_by(|a, b| (a.wave, &a.host).cmp(&(b.wave, &b.host)));
    let count = |state: &str| hosts.iter().filter(|h| h.state == state).count();
    Report {
        succeeded: count("SUCCEEDED"),
        skipped: count("SKIPPED"),
        failed: hosts.len() - count("SUCCEEDED") - count("SKIPPED"),
        changed: hosts.iter().filter(|h| h.changed).count(),
        duration_ms: millis(took),
        hosts,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn apply_one(
    host: &Host,
    desired: v1::DesiredState,
    credential: Option<v1::Credential>,
    gap: Duration,
    gate: &Mutex<Option<Instant>>,
    say: impl Fn(String),
) -> HostResult {
    let started = Instant::now();
    let mut result = HostResult {
        host: host.name.clone(),
        endpoint: host.settings.endpoint.clone(),
        state: "UNREACHABLE".into(),
        changed: false,
        changes: 0,
        operation_id: String::new(),
        error: String::new(),
        wave: 0,
        start_ms: 0,
        duration_ms: 0,
    };
    say("connecting".into());
    let mut operation_id = String::new();
    let outcome = async {
        let channel = connect::connect(&host.settings).await?;
        if !gap.is_zero() {
            // Registrations start at least `gap` apart, fleet-wide.
            let mut last = gate.lock().await;
            if let Some(at) = *last {
                let wait = (at + gap).saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    say(format!("waiting {}s (registration gap)", wait.as_secs()));
                    tokio::time::sleep(wait).await;
                }
            }
            *last = Some(Instant::now());
        }
        say("applying".into());
        let op = ConfigurationServiceClient::new(channel.clone())
            .apply_configuration(v1::ApplyConfigurationRequest {
                desired: Some(desired),
                credential,
                request_id: String::new(),
            })
            .await
            .map_err(|s| match s.code() {
                // The transport's own failures: nothing answered.
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                    anyhow::anyhow!("{}: {}", s.code(), s.message())
                }
                _ => anyhow::Error::new(Refusal(s)),
            })?
            .into_inner()
            .operation
            .context("no operation in the answer")?;
        operation_id.clone_from(&op.id);
        let mut stream = OperationsServiceClient::new(channel)
            .watch_operation(v1::WatchOperationRequest {
                id: op.id.clone(),
                after_sequence: 0,
            })
            .await?
            .into_inner();
        while let Some(item) = stream.message().await? {
            match item.item {
                Some(v1::watch_operation_response::Item::Event(e)) => {
                    if e.kind == v1::EventKind::ActionRequired as i32 {
                        say(format!(
                            "sign in: open {} and enter {}",
                            e.attributes
                                .get("verification_uri")
                                .map_or("", String::as_str),
                            e.attributes.get("user_code").map_or("", String::as_str)
                        ));
                    } else if e.kind == v1::EventKind::StepStarted as i32 {
                        say(format!("{}: {}", e.step, e.message));
                    }
                }
                Some(v1::watch_operation_response::Item::Operation(done)) => {
                    return Ok::<_, anyhow::Error>(done);
                }
                None => {}
            }
        }
        bail!("the watch of operation {} ended early", op.id)
    }
    .await;
    match outcome {
        Ok(op) => {
            result.operation_id.clone_from(&op.id);
            result.state = v1::OperationState::try_from(op.state)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("OPERATION_STATE_")
                        .to_owned()
                })
                .unwrap_or_else(|_| "UNKNOWN".into());
            result.changed = op.result.get("changed").is_some_and(|c| c == "true");
            result.changes = op
                .result
                .get("changes")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if let Some(e) = op.error {
                result.error = format!("{} at {}: {}", e.code, e.step, e.message);
            }
        }
        Err(e) => {
            // A daemon that answered with a refusal was reached; a watch
            // lost after the operation began leaves its id to follow up.
            if e.downcast_ref::<Refusal>().is_some() {
                result.state = "REFUSED".into();
            }
            result.operation_id = operation_id;
            result.error = format!("{e:#}");
        }
    }
    result.duration_ms = millis(started.elapsed());
    result
}

/// ApplyConfiguration answered with an error status: the host was reached
/// and said no (no rights, an operation running, a bad document).
#[derive(Debug)]
struct Refusal(tonic::Status);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code(), self.0.message())
    }
}

impl std::error::Error for Refusal {}

/// The summary a person reads.
pub fn render_report(report: &Report) -> String {
    let width = report
        .hosts
        .iter()
        .map(|h| h.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<width$}  {:<4}  {:<11}  {:>7}  {:>8}  DETAIL\n",
        "HOST", "WAVE", "RESULT", "CHANGES", "TIME"
    );
    for h in &report.hosts {
        let detail = if h.error.is_empty() {
            format!(
                "{} (operation {})",
                if h.changed { "changed" } else { "no change" },
                h.operation_id
            )
        } else {
            h.error.clone()
        };
        out.push_str(&format!(
            "{:<width$}  {:<4}  {:<11}  {:>7}  {:>7.1}s  {detail}\n",
            h.host,
            h.wave,
            h.state,
            h.changes,
            h.duration_ms as f64 / 1000.0
        ));
    }
    out.push_str(&format!(
        "\n{} host(s): {} succeeded ({} changed), {} failed, {} skipped, in {:.1}s\n",
        report.hosts.len(),
        report.succeeded,
        report.changed,
        report.failed,
        report.skipped,
        report.duration_ms as f64 / 1000.0
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::connect::Settings;

    fn host(name: &str, canary: bool) -> Host {
        Host {
            name: name.into(),
            canary,
            settings: Settings {
                endpoint: format!("https://{name}:8443"),
                ca: PathBuf::from("ca.pem"),
                cert: PathBuf::from("client.pem"),
                key: PathBuf::from("client.key"),
                server_name: None,
                trace: false,
            },
        }
    }

    fn names(waves: &[Vec<Host>]) -> Vec<Vec<&str>> {
        waves
            .iter()
            .map(|w| w.iter().map(|h| h.name.as_str()).collect())
            .collect()
    }

    #[test]
    fn the_canary_goes_alone_first_unless_skipped() {
        let hosts = || {
            vec![
                host("a", false),
                host("b", true),
                host("c", false),
                host("d", false),
            ]
        };
        assert_eq!(
            names(&waves(hosts(), true, 2)),
            [vec!["b"], vec!["a", "c"], vec!["d"]]
        );
        assert_eq!(
            names(&waves(hosts(), false, 2)),
            [vec!["a", "b"], vec!["c", "d"]]
        );
        assert_eq!(
            names(&waves(hosts(), false, 10)),
            [vec!["a", "b", "c", "d"]]
        );
        assert!(waves(Vec::new(), true, 2).is_empty());
    }

    #[test]
    fn only_directory_documents_may_skip_the_canary() {
        let directory = v1::DesiredState {
            domains: vec![v1::DomainSpec {
                domain: "lab.example.test".into(),
                ..Default::default()
            }],
            service_account: Some(v1::ServiceAccountSpec::default()),
            ..Default::default()
        };
        assert_eq!(canary_skippable(&directory), Ok(()));
        assert_eq!(canary_skippable(&v1::DesiredState::default()), Ok(()));

        let mut reaching = directory.clone();
        reaching.agent = Some(v1::AgentSpec::default());
        reaching.writeback = Some(v1::WritebackSpec::default());
        reaching.domains[0].cloud_sync = Some(v1::CloudSyncSpec::default());
        let why = canary_skippable(&reaching).unwrap_err();
        for section in ["agent", "writeback", "domains.lab.example.test.cloud_sync"] {
            assert!(why.contains(section), "{why}");
        }
        let host = v1::DesiredState {
            host: Some(v1::HostSpec::default()),
            ..Default::default()
        };
        assert!(canary_skippable(&host).unwrap_err().contains("host"));
    }

    #[test]
    fn the_report_counts_and_sorts() {
        let host = |name: &str, wave, state: &str, changed| HostResult {
            host: name.into(),
            endpoint: String::new(),
            state: state.into(),
            changed,
            changes: u64::from(changed),
            operation_id: "op".into(),
            error: String::new(),
            wave,
            start_ms: 0,
            duration_ms: 1500,
        };
        let r = report(
            vec![
                host("c", 1, "FAILED", false),
                host("b", 1, "SUCCEEDED", true),
                host("a", 0, "SUCCEEDED", false),
                host("d", 2, "SKIPPED", false),
            ],
            Duration::from_secs(3),
        );
        let names: Vec<_> = r.hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!((r.succeeded, r.failed, r.skipped, r.changed), (2, 1, 1, 1));
        let text = render_report(&r);
        assert!(
            text.contains("4 host(s): 2 succeeded (1 changed), 1 failed, 1 skipped"),
            "{text}"
        );
    }
}
