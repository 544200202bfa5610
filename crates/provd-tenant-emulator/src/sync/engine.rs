//! LAB STAND-IN: how a cloud sync job "runs" in the emulator. No HTTP here:
//! the ticker (`sync/mod.rs`) calls [`cycle`] with the time, and the job
//! handlers call [`start`], [`pause`] and [`restart`].
//!
//! Documented: the status shapes and codes
//! (<https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationstatus?view=graph-rest-beta>);
//! start clears a quarantine
//! (<https://learn.microsoft.com/graph/api/synchronization-synchronizationjob-start?view=graph-rest-beta>);
//! pause keeps progress
//! (<https://learn.microsoft.com/graph/api/synchronization-synchronizationjob-pause?view=graph-rest-beta>);
//! the restart flags
//! (<https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationjobrestartcriteria?view=graph-rest-beta>);
//! a quarantined job that runs again leaves quarantine by itself
//! (<https://learn.microsoft.com/entra/identity/app-provisioning/application-provisioning-quarantine-status>);
//! the error codes and their messages
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/reference-error-codes>).
//!
//! [I] How the service finds a job's agents: the `Domain` secret names the
//! published resource (`resourceName`), whose agent groups hold the agents;
//! a run imports the user count an active agent reported.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::SyncState;
use super::model::{
    Code, EntryCount, Job, NEVER, Quarantine, Run, RunError, RunState, ScheduleState, Secret,
    Series, rfc3339,
};
use crate::publish::domain_name;
use crate::state::{Agent, AgentGroup, PublishedResource, State};

pub const INVALID_RESOURCE: &str = "HybridIdentityServiceInvalidResource";
pub const NO_AGENTS_ASSIGNED: &str = "HybridIdentityServiceNoAgentsAssigned";
pub const NO_ACTIVE_AGENTS: &str = "HybridIdentityServiceNoActiveAgents";

/// [I] The reason for every quarantine the emulator sets (S8: credential
/// and connectivity errors).
const REASON: &str = "EncounteredQuarantineException";

/// The time a cycle or a call happens at: injected so tests choose it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// For agent activity (heartbeats are `Instant`s).
    pub instant: Instant,
    /// For the timestamps Graph shows.
    pub wall: OffsetDateTime,
}

impl Clock {
    pub fn now() -> Clock {
        Clock {
            instant: Instant::now(),
            wall: OffsetDateTime::now_utc(),
        }
    }
}

/// The settings a cycle needs.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The cycle's period (`--sync-interval`): `nextAttempt` is one ahead.
    pub interval: Duration,
    /// An agent without a heartbeat for this long is inactive.
    pub inactive_after: Duration,
}

/// What a cycle found for a service principal's domain.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Run { users: u64 },
    Quarantine { code: String },
}

/// The tenant as a cycle reads it.
struct Directory<'a> {
    agents: &'a [Agent],
    groups: &'a [AgentGroup],
    resources: &'a [PublishedResource],
    user_counts: &'a HashMap<(String, String), u64>,
    lab_quarantines: &'a HashMap<String, String>,
}

/// One cycle: every due job of every service principal runs.
pub fn cycle(state: &mut State, clock: &Clock, timing: &Timing) {
    let State {
        agents,
        groups,
        resources,
        sync,
        ..
    } = state;
    let SyncState {
        service_principals,
        user_counts,
        lab_quarantines,
        ..
    } = sync;
    let directory = Directory {
        agents,
        groups,
        resources,
        user_counts,
        lab_quarantines,
    };
    for sp in service_principals {
        let mut outcome = None;
        for job in sp.jobs.iter_mut().filter(|job| due(job)) {
            let outcome =
                outcome.get_or_insert_with(|| directory.resolve(&sp.secrets, clock, timing));
            advance(job, outcome, clock, timing.interval);
        }
    }
}

/// A job runs while its schedule is Active, quarantined or not.
fn due(job: &Job) -> bool {
    job.schedule.state == ScheduleState::Active
        && matches!(
            job.status.code,
            Code::NotRun | Code::Active | Code::Quarantine
        )
}

/// The domain the `Domain` secret names (`{"domain":"…"}`).
fn secret_domain(secrets: &[Secret]) -> Option<String> {
    let secret = secrets.iter().find(|s| s.key == "Domain")?;
    let value: serde_json::Value = serde_json::from_str(&secret.value).ok()?;
    domain_name(value.get("domain")?.as_str()?)
}

impl Directory<'_> {
    /// [I] Domain secret → published resource → its groups' agents; the
    /// first check that fails is the quarantine code.
    fn resolve(&self, secrets: &[Secret], clock: &Clock, timing: &Timing) -> Outcome {
        let quarantine = |code: &str| Outcome::Quarantine { code: code.into() };
        let Some(domain) = secret_domain(secrets) else {
            return quarantine(INVALID_RESOURCE);
        };
        let Some(resource) = self.resources.iter().find(|r| r.resource_name == domain) else {
            return quarantine(INVALID_RESOURCE);
        };
        let members: Vec<&Agent> = self
            .agents
            .iter()
            .filter(|agent| {
                self.groups
                    .iter()
                    .filter(|g| resource.group_ids.contains(&g.id))
                    .any(|g| g.agent_ids.contains(&agent.id))
            })
            .collect();
        if members.is_empty() {
            return quarantine(NO_AGENTS_ASSIGNED);
        }
        let active: Vec<&Agent> = members
            .into_iter()
            .filter(|a| a.is_active(clock.instant, timing.inactive_after))
            .collect();
        if active.is_empty() {
            return quarantine(NO_ACTIVE_AGENTS);
        }
        if let Some(code) = self.lab_quarantines.get(&domain) {
            return quarantine(code);
        }
        // The first active agent that counted this domain's users.
        let users = active
            .iter()
            .find_map(|a| self.user_counts.get(&(a.id.clone(), domain.clone())))
            .copied()
            .unwrap_or(0);
        Outcome::Run { users }
    }
}

fn advance(job: &mut Job, outcome: &Outcome, clock: &Clock, interval: Duration) {
    let now = rfc3339(clock.wall);
    let status = &mut job.status;
    match outcome {
        Outcome::Run { users } => {
            // [I] Exports are the users not yet in the cloud.
            let exported = users.saturating_sub(job.exported);
            job.exported = *users;
            let run = Run {
                count_entitled: *users,
                count_entitled_for_provisioning: *users,
                count_imported: *users,
                count_exported: exported,
                count_exports: exported,
                ..Run::at(&now, RunState::Succeeded)
            };
            status.code = Code::Active;
            status.quarantine = None;
            status.count_successive_complete_failures = 0;
            job.series = None;
            if exported > 0 {
                status.last_successful_execution_with_exports = Some(run.clone());
            }
            status.last_successful_execution = Some(run.clone());
            status.last_execution = Some(run);
            status.synchronized_entry_count_by_type = vec![EntryCount {
                key: "user".into(),
                value: *users,
            }];
            if status.steady_state_first_achieved_time == NEVER {
                status.steady_state_first_achieved_time = now.clone();
            }
            status.steady_state_last_achieved_time = now;
        }
        Outcome::Quarantine { code } => {
            let error = RunError {
                code: code.clone(),
                message: message_of(code),
                tenant_actionable: true,
            };
            status.last_execution = Some(Run {
                error: Some(error.clone()),
                ..Run::at(&now, RunState::Failed)
            });
            status.count_successive_complete_failures += 1;
            status.code = Code::Quarantine;
            let next_attempt = rfc3339(clock.wall + interval);
            if let Some(quarantine) = &mut status.quarantine {
                quarantine.error = error;
                quarantine.next_attempt = next_attempt;
                return;
            }
            let series = job.series.get_or_insert(Series {
                began: now.clone(),
                count: 0,
            });
            series.count += 1;
            status.quarantine = Some(Quarantine {
                current_began: now,
                next_attempt,
                reason: REASON.into(),
                series_began: series.began.clone(),
                series_count: series.count,
                error,
            });
        }
    }
}

/// Microsoft's error message for a code (reference-error-codes page,
/// without the job identifier it quotes); a lab code gets a lab text.
pub fn message_of(code: &str) -> String {
    match code {
        NO_AGENTS_ASSIGNED => "We're unable to find an active agent for the domain you're trying to sync. Please check to see if the agents have been removed. If so, re-install the agent again.".into(),
        NO_ACTIVE_AGENTS => "We're unable to find an active agent for the domain you're trying to sync. Please check to see if the agent is running by going to the server, where the agent is installed, and check to see if Microsoft Entra Connect cloud sync agent under Services is running.".into(),
        INVALID_RESOURCE => "We were unable to process this request at this point. Additional details: There seems to be an issue with your cloud sync setup. Please re-register your cloud sync agent on your on-premises AD domain and restart configuration from portal.".into(),
        "AzureActiveDirectoryInvalidCredential" => "We found an issue with the service account that is used to run Microsoft Entra Cloud Sync. You can repair the cloud service account by following the instructions in the troubleshooting guidance. If the error persists, please contact support with Job ID (from status pane of your configuration).".into(),
        other => format!("{other}: quarantine set by the LAB tenant emulator (/_lab/sync/quarantine)."),
    }
}

/// `POST …/start`: a paused or disabled job runs from the next cycle; a
/// quarantine is cleared. [I] Start on a running job changes nothing (the
/// start page only warns against calling it repeatedly).
pub fn start(job: &mut Job) {
    if job.schedule.state == ScheduleState::Active && job.status.code != Code::Quarantine {
        return;
    }
    job.schedule.state = ScheduleState::Active;
    job.status.code = Code::NotRun;
    job.status.quarantine = None;
}

/// `POST …/pause`: no more cycles; counters and runs are kept.
pub fn pause(job: &mut Job) {
    job.schedule.state = ScheduleState::Paused;
    job.status.code = Code::Paused;
}

/// The `resetScope` flags the emulator acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResetScope {
    pub quarantine: bool,
    pub watermark: bool,
    pub escrows: bool,
    pub force_deletes: bool,
}

/// Parses `resetScope`: comma-separated flags, spaces allowed; empty means
/// QuarantineState, Watermark and Escrows (the portal's restart).
pub fn reset_scope(text: &str) -> Result<ResetScope, String> {
    let flags: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let mut scope = ResetScope::default();
    if flags.is_empty() {
        scope.quarantine = true;
        scope.watermark = true;
        scope.escrows = true;
    }
    for flag in flags {
        match flag {
            // Documented "DO NOT USE"; accepted, nothing to reset here.
            "None" | "ConnectorDataStore" => {}
            "Escrows" => scope.escrows = true,
            "Watermark" => scope.watermark = true,
            "QuarantineState" => scope.quarantine = true,
            "ForceDeletes" => scope.force_deletes = true,
            "Full" => {
                scope = ResetScope {
                    quarantine: true,
                    watermark: true,
                    escrows: true,
                    force_deletes: true,
                }
            }
            other => {
                return Err(format!(
                    "'{other}' is not a synchronizationJobRestartScope flag."
                ));
            }
        }
    }
    Ok(scope)
}

/// `POST …/restart`: applies the flags, then [I] runs the job from the
/// next cycle (the page: "Restart a stopped synchronization job").
/// ForceDeletes is accepted: the emulator stages no deletes.
pub fn restart(job: &mut Job, scope: ResetScope) {
    let status = &mut job.status;
    if scope.watermark {
        job.exported = 0;
    }
    if scope.escrows {
        let runs = [
            &mut status.last_execution,
            &mut status.last_successful_execution,
            &mut status.last_successful_execution_with_exports,
        ];
        for run in runs.into_iter().flatten() {
            run.count_escrowed = 0;
            run.count_escrowed_raw = 0;
        }
    }
    if scope.quarantine {
        status.quarantine = None;
    }
    job.schedule.state = ScheduleState::Active;
    status.code = if status.quarantine.is_some() {
        Code::Quarantine
    } else {
        Code::NotRun
    };
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
