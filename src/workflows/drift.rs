//! Drift: what changes on the host without provd. With `[drift]
//! verify_interval` set, a task the daemon starts (and stops on shutdown)
//! runs Verify's credential-free checks on that interval — each check
//! exported as `provd.verify.check`, no operation recorded — and watches
//! the agent's installed version: a change that no provd Install or
//! Uninstall made (the agent's auto-upgrade, a hand install) is logged at
//! WARN with both versions and counted in
//! `provd.drift.detected{what="agent_version"}`. With `[drift] reapply`,
//! such a change also re-applies the host fixes and agent settings the last apply put in
//! place (`ApplyWorkflows::reapply_host_and_agent`: an operation of its
//! own); one that cannot start now (another operation holds the writer
//! slot) is tried again at the next round. The agent's settings are
//! watched too, against what apply last put in place: a difference provd
//! did not make (a hand edit) counts in
//! `provd.drift.detected{what="agent_settings"}` and, with `reapply`, is
//! put back the same way. So are the host prerequisites apply's `[host]`
//! section last kept fixed: one the host needs again (a GPO, a hand edit)
//! counts in `provd.drift.detected{what="host_prerequisites"}` and, with
//! `reapply`, is fixed again in the same operation.
//!
//! What the watch finds is kept in memory for GetHostStatus
//! ([`DriftWorkflows::snapshot`]): one finding per kind, with when it was
//! seen and the re-apply it started. A restart forgets it: the new watch
//! starts from a new baseline, as it always has.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::KeyValue;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::apply::{ApplyWorkflows, Change};
use super::operations::now_ms;
use super::verify::{VerifyItem, VerifyWorkflows};
use crate::backends::host::Host;

/// provd's own changes to the agent package: Install and Uninstall hold a
/// [`ChangeGuard`] while their installer runs, so the version watch can
/// tell them from a change made outside provd.
#[derive(Debug, Default)]
pub struct AgentChanges {
    /// Bumped when a change begins and when it ends.
    generation: AtomicU64,
    in_flight: AtomicUsize,
}

/// Held while provd changes the agent package.
#[must_use = "the change ends when the guard drops"]
pub struct ChangeGuard(Arc<AgentChanges>);

impl AgentChanges {
    pub fn begin(self: &Arc<Self>) -> ChangeGuard {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        ChangeGuard(self.clone())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            generation: self.generation.load(Ordering::SeqCst),
            in_flight: self.in_flight.load(Ordering::SeqCst),
        }
    }
}

impl Drop for ChangeGuard {
    fn drop(&mut self) {
        self.0.generation.fetch_add(1, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    generation: u64,
    in_flight: usize,
}

/// The installed version last seen, and provd's change generation then.
#[derive(Debug, Clone)]
struct Seen {
    version: Option<String>,
    generation: u64,
}

/// A version change provd did not make.
#[derive(Debug, Clone, PartialEq, Eq)]
struct VersionDrift {
    old: Option<String>,
    new: Option<String>,
}

/// The agent-version watch between scheduled runs.
#[derive(Debug, Default)]
struct VersionWatch {
    seen: Option<Seen>,
    /// A re-apply owed (why), not started yet.
    reapply_owed: Option<String>,
    /// The agent's settings differed from the last applied ones at the
    /// last look (a difference is counted once, when it appears).
    settings_differ: bool,
    /// Likewise for the host fixes apply keeps made.
    host_differs: bool,
}

impl VersionWatch {
    /// Whether provd changed the agent since the last observation or while
    /// this one was read (between `before` and `after`).
    fn by_provd(&self, before: Snapshot, after: Snapshot) -> bool {
        before != after
            || after.in_flight > 0
            || self
                .seen
                .as_ref()
                .is_some_and(|s| s.generation != before.generation)
    }

    /// Takes the version read between two snapshots of provd's changes. A
    /// change is drift unless provd changed the agent since the last
    /// observation or while this one was read. The first observation only
    /// sets the baseline.
    fn observe(
        &mut self,
        before: Snapshot,
        version: Option<String>,
        after: Snapshot,
    ) -> Option<VersionDrift> {
        let by_provd = self.by_provd(before, after);
        let previous = self.seen.replace(Seen {
            version: version.clone(),
            generation: after.generation,
        })?;
        (!by_provd && previous.version != version).then_some(VersionDrift {
            old: previous.version,
            new: version,
        })
    }
}

/// The `what` of a version drift.
fn agent_version() -> KeyValue {
    KeyValue::new("what", "agent_version")
}

/// A kind of difference from what apply last put in place.
struct Difference {
    kind: DriftKind,
    /// `provd.drift.detected`'s `what`.
    what: &'static str,
    /// The WARN line.
    said: &'static str,
    /// The re-apply's reason, before the changes.
    why: &'static str,
}

const AGENT_SETTINGS: Difference = Difference {
    kind: DriftKind::AgentSettings,
    what: "agent_settings",
    said: "the agent's settings differ from what provd last applied",
    why: "the agent's settings changed outside provd",
};

const HOST_PREREQUISITES: Difference = Difference {
    kind: DriftKind::HostPrerequisites,
    what: "host_prerequisites",
    said: "the host needs a prerequisite fix provd made before",
    why: "a host prerequisite changed outside provd",
};

/// Notes `changes` (empty: none): a difference is logged, counted and
/// owes a re-apply once, when it appears; `differs` remembers it.
fn notice(
    findings: &Findings,
    differs: &mut bool,
    owed: &mut Option<String>,
    changes: &[Change],
    d: Difference,
) {
    let now = !changes.is_empty();
    if now && !*differs {
        let shown: Vec<String> = changes.iter().map(|c| c.detail.clone()).collect();
        tracing::warn!(what = d.what, changes = %shown.join("; "), "drift: {}", d.said);
        crate::telemetry::metrics()
            .drift_detected
            .add(1, &[KeyValue::new("what", d.what)]);
        findings.seen(d.kind, shown.join("; "));
        owed.get_or_insert_with(|| format!("{}: {}", d.why, shown.join("; ")));
    }
    if !now {
        findings.gone(d.kind);
    }
    *differs = now;
}

/// What drifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DriftKind {
    /// The agent's installed version changed outside provd.
    AgentVersion,
    /// The agent's settings differ from what apply last put in place.
    AgentSettings,
    /// A host prerequisite apply last fixed is needed again.
    HostPrerequisites,
}

/// One kind of drift as the watch last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftFinding {
    pub kind: DriftKind,
    /// What differs (versions "old -> new", or the changes).
    pub detail: String,
    /// When the watch saw it appear (ms since the epoch).
    pub observed_ms: i64,
    /// Still there: the last round saw the difference (settings, host
    /// prerequisites), or provd has not changed the agent since (version).
    pub present: bool,
    /// The APPLY_CONFIGURATION operation the watch started to put it back.
    pub reapply_operation_id: Option<String>,
}

/// How the watch runs (`[drift]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftSchedule {
    pub interval: Duration,
    pub reapply: bool,
}

/// The watch's findings as GetHostStatus reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriftSnapshot {
    /// `None`: the watch is off (no `[drift] verify_interval`), so drift is
    /// unknown, not absent.
    pub schedule: Option<DriftSchedule>,
    /// When the last round's watch ended; `None` before the first one (so
    /// still unknown).
    pub last_round_ms: Option<i64>,
    /// At most one per kind, in kind order; empty after a round: none.
    pub findings: Vec<DriftFinding>,
}

/// The findings, shared by the watch (writer) and the status reads.
#[derive(Debug, Default)]
struct Findings(Mutex<DriftSnapshot>);

impl Findings {
    fn update(&self, f: impl FnOnce(&mut DriftSnapshot)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    fn seen(&self, kind: DriftKind, detail: String) {
        self.update(|s| {
            s.findings.retain(|f| f.kind != kind);
            s.findings.push(DriftFinding {
                kind,
                detail,
                observed_ms: now_ms(),
                present: true,
                reapply_operation_id: None,
            });
            s.findings.sort_by_key(|f| f.kind);
        });
    }

    fn gone(&self, kind: DriftKind) {
        self.update(|s| {
            for f in s.findings.iter_mut().filter(|f| f.kind == kind) {
                f.present = false;
            }
        });
    }

    /// The re-apply `id` answers every finding still present and not yet
    /// answered.
    fn reapplied(&self, id: &str) {
        self.update(|s| {
            for f in s.findings.iter_mut() {
                if f.present && f.reapply_operation_id.is_none() {
                    f.reapply_operation_id = Some(id.to_owned());
                }
            }
        });
    }
}

/// The scheduled checks and the version watch.
pub struct DriftWorkflows {
    host: Arc<dyn Host>,
    verify: Arc<VerifyWorkflows>,
    changes: Arc<AgentChanges>,
    apply: Arc<ApplyWorkflows>,
    findings: Findings,
}

impl DriftWorkflows {
    pub fn new(
        host: Arc<dyn Host>,
        verify: Arc<VerifyWorkflows>,
        changes: Arc<AgentChanges>,
        apply: Arc<ApplyWorkflows>,
    ) -> Self {
        Self {
            host,
            verify,
            changes,
            apply,
            findings: Findings::default(),
        }
    }

    /// What the watch has found so far (a copy).
    pub fn snapshot(&self) -> DriftSnapshot {
        self.findings
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts the schedule: a round now, then every `interval`, until
    /// `stop` fires (a round in progress is abandoned, its checks stopped).
    /// `reapply`: a change outside provd re-applies the last applied host
    /// fixes and agent settings.
    pub fn spawn(
        self: Arc<Self>,
        interval: Duration,
        reapply: bool,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tracing::info!(
            interval_secs = interval.as_secs_f64(),
            reapply,
            "drift: running the credential-free checks on a schedule"
        );
        self.findings.update(|s| {
            s.schedule = Some(DriftSchedule { interval, reapply });
        });
        // The series exists from now, at 0: Prometheus's increase() sees
        // the first drift as one (a series born at 1 shows no increase).
        crate::telemetry::metrics()
            .drift_detected
            .add(0, &[agent_version()]);
        for d in [AGENT_SETTINGS, HOST_PREREQUISITES] {
            crate::telemetry::metrics()
                .drift_detected
                .add(0, &[KeyValue::new("what", d.what)]);
        }
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut watch = VersionWatch::default();
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                let round = self
                    .round(&mut watch, reapply)
                    .instrument(tracing::info_span!("drift.round"));
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = round => {}
                }
            }
            tracing::debug!("drift: schedule stopped");
        })
    }

    async fn round(&self, watch: &mut VersionWatch, reapply: bool) {
        self.watch_version(watch).await;
        self.watch_settings(watch).await;
        self.watch_host(watch).await;
        if reapply && let Some(why) = watch.reapply_owed.take() {
            match self.apply.reapply_host_and_agent(&why).await {
                Ok(Some(op)) => {
                    self.findings.reapplied(&op.id);
                    tracing::info!(
                        operation = %op.id,
                        "drift: re-applying the last applied host and agent sections ({why})"
                    );
                }
                Ok(None) => tracing::debug!("drift: no host or agent section applied yet"),
                Err(err) => {
                    tracing::warn!(
                        error = %err,
                        "drift: cannot re-apply the host and agent sections now; trying at the next round"
                    );
                    watch.reapply_owed = Some(why);
                }
            }
        }
        self.findings.update(|s| s.last_round_ms = Some(now_ms()));
        let mut rx = match self.verify.verify_credential_free().await {
            Ok(rx) => rx,
            Err(err) => {
                tracing::warn!(error = %err, "drift: cannot run the scheduled checks");
                return;
            }
        };
        // Each check is exported as it arrives (verify's own doing); the
        // report is only logged.
        while let Some(item) = rx.recv().await {
            if let VerifyItem::Report(r) = item {
                tracing::debug!(
                    pass = r.pass,
                    warn = r.warn,
                    fail = r.fail,
                    skip = r.skip,
                    "drift: scheduled checks done"
                );
            }
        }
    }

    /// The agent's settings against what apply last put in place: a
    /// difference that appears while provd is not changing them (a hand
    /// edit, an upgrade's exe.config) is logged, counted in
    /// `provd.drift.detected{what="agent_settings"}` and owes a re-apply.
    async fn watch_settings(&self, watch: &mut VersionWatch) {
        let before = self.changes.snapshot();
        let Some(changes) = self.apply.settings_drift().await else {
            watch.settings_differ = false;
            self.findings.gone(DriftKind::AgentSettings);
            return;
        };
        let after = self.changes.snapshot();
        if before != after || after.in_flight > 0 {
            return;
        }
        notice(
            &self.findings,
            &mut watch.settings_differ,
            &mut watch.reapply_owed,
            &changes,
            AGENT_SETTINGS,
        );
    }

    /// The host prerequisites apply's `[host]` last kept fixed: one the
    /// host needs again is logged, counted in
    /// `provd.drift.detected{what="host_prerequisites"}` and owes a
    /// re-apply. provd's own fixes only ever remove a need, so no guard.
    async fn watch_host(&self, watch: &mut VersionWatch) {
        let Some(changes) = self.apply.host_drift().await else {
            watch.host_differs = false;
            self.findings.gone(DriftKind::HostPrerequisites);
            return;
        };
        notice(
            &self.findings,
            &mut watch.host_differs,
            &mut watch.reapply_owed,
            &changes,
            HOST_PREREQUISITES,
        );
    }

    async fn watch_version(&self, watch: &mut VersionWatch) {
        if self.host.availability().is_err() {
            return;
        }
        let before = self.changes.snapshot();
        let version = match self.host.agent_status().await {
            Ok(status) => status.installed_version,
            Err(err) => {
                tracing::debug!(error = %err, "drift: cannot read the agent's version");
                return;
            }
        };
        let after = self.changes.snapshot();
        // provd changed the agent since the last look: its version is
        // provd's again, so an earlier finding is no longer present.
        if watch.by_provd(before, after) {
            self.findings.gone(DriftKind::AgentVersion);
        }
        if let Some(drift) = watch.observe(before, version, after) {
            let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
            self.findings.seen(
                DriftKind::AgentVersion,
                format!("{} -> {}", shown(&drift.old), shown(&drift.new)),
            );
            tracing::warn!(
                what = "agent_version",
                old = %shown(&drift.old),
                new = %shown(&drift.new),
                "drift: the agent's installed version changed outside provd"
            );
            crate::telemetry::metrics()
                .drift_detected
                .add(1, &[agent_version()]);
            // Removed (or between the two halves of a major upgrade, as
            // msiexec removes the old product first): nothing to apply to;
            // the version that comes next owes the re-apply.
            watch.reapply_owed = drift.new.is_some().then(|| {
                format!(
                    "the agent's installed version changed outside provd: {} -> {}",
                    shown(&drift.old),
                    shown(&drift.new)
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    fn drift(old: Option<String>, new: Option<String>) -> Option<VersionDrift> {
        Some(VersionDrift { old, new })
    }

    #[test]
    fn a_change_outside_provd_is_drift_and_the_first_read_is_the_baseline() {
        let changes = Arc::new(AgentChanges::default());
        let mut watch = VersionWatch::default();
        let at = || changes.snapshot();
        assert_eq!(watch.observe(at(), v("1.1.1"), at()), None);
        assert_eq!(watch.observe(at(), v("1.1.1"), at()), None);
        assert_eq!(
            watch.observe(at(), v("1.1.2"), at()),
            drift(v("1.1.1"), v("1.1.2"))
        );
        // Counted once: the new version is the baseline now.
        assert_eq!(watch.observe(at(), v("1.1.2"), at()), None);
        // Removed by hand.
        assert_eq!(watch.observe(at(), None, at()), drift(v("1.1.2"), None));
    }

    #[test]
    fn provds_own_install_or_uninstall_is_not_drift() {
        let changes = Arc::new(AgentChanges::default());
        let mut watch = VersionWatch::default();
        let at = || changes.snapshot();
        assert_eq!(watch.observe(at(), v("1.1.1"), at()), None);
        // An install between two observations.
        drop(changes.begin());
        assert_eq!(watch.observe(at(), v("1.1.2"), at()), None);
        // An install running while the version is read.
        let guard = changes.begin();
        assert_eq!(watch.observe(at(), v("1.1.3"), at()), None);
        drop(guard);
        // It ended before the next read: still provd's.
        assert_eq!(watch.observe(at(), v("1.1.4"), at()), None);
        // One that began and ended while the version was read.
        let before = at();
        drop(changes.begin());
        assert_eq!(watch.observe(before, None, at()), None);
        // Then an upgrade outside provd is drift again.
        assert_eq!(
            watch.observe(at(), v("1.1.5"), at()),
            drift(None, v("1.1.5"))
        );
    }
}
