//! The job state machine with an injected clock: no HTTP, no ticker.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::sync::model::ServicePrincipal;

const DOMAIN: &str = "lab.example.test";
const AGENT: &str = "agent-1";
const TIMING: Timing = Timing {
    interval: Duration::from_secs(2),
    inactive_after: Duration::from_secs(30),
};

/// A tenant whose published domain's group holds one agent that beat at
/// the start, and a service principal with the Domain secret and one
/// AD2AADProvisioning job (created, not started).
struct Lab {
    state: State,
    clock: Clock,
}

impl Lab {
    fn new() -> Lab {
        let clock = Clock::now();
        let mut state = State::default();
        state.agents.push(Agent {
            id: AGENT.into(),
            machine_name: "agent1.lab.example.test".into(),
            external_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            last_seen: clock.instant,
            password_writeback: false,
        });
        state.add_resource(DOMAIN, vec![AGENT.into()]);
        state.sync.service_principals.push(ServicePrincipal {
            id: "sp".into(),
            app_id: "app".into(),
            display_name: DOMAIN.into(),
            application_template_id: "1a4721b3-e57f-4451-ae87-ef078703ec94".into(),
            secrets: vec![secret("Domain", r#"{"domain":"lab.example.test"}"#)],
            jobs: vec![Job::new("AD2AADProvisioning", serde_json::Value::Null)],
        });
        Lab { state, clock }
    }

    fn started() -> Lab {
        let mut lab = Lab::new();
        start(lab.job_mut());
        lab
    }

    fn users(&mut self, users: u64) {
        let key = (AGENT.to_owned(), DOMAIN.to_owned());
        self.state.sync.user_counts.insert(key, users);
    }

    /// `secs` later; the agent beats then when `beat`.
    fn later(&mut self, secs: u64, beat: bool) {
        let step = Duration::from_secs(secs);
        self.clock = Clock {
            instant: self.clock.instant + step,
            wall: self.clock.wall + step,
        };
        if beat {
            self.state.agents[0].last_seen = self.clock.instant;
        }
    }

    fn cycle(&mut self) {
        cycle(&mut self.state, &self.clock, &TIMING);
    }

    fn sp(&mut self) -> &mut ServicePrincipal {
        &mut self.state.sync.service_principals[0]
    }

    fn job(&self) -> &Job {
        &self.state.sync.service_principals[0].jobs[0]
    }

    fn job_mut(&mut self) -> &mut Job {
        &mut self.sp().jobs[0]
    }

    fn now(&self) -> String {
        rfc3339(self.clock.wall)
    }

    /// The quarantine's error code after one cycle.
    fn quarantine_code(mut self) -> String {
        self.cycle();
        assert_eq!(self.job().status.code, Code::Quarantine);
        let quarantine = self.job().status.quarantine.clone().unwrap();
        quarantine.error.code
    }
}

fn secret(key: &str, value: &str) -> Secret {
    Secret {
        key: key.into(),
        value: value.into(),
    }
}

fn last(job: &Job) -> &Run {
    job.status.last_execution.as_ref().unwrap()
}

#[test]
fn a_created_job_is_left_alone_by_cycles() {
    let mut lab = Lab::new();
    lab.users(25);
    lab.cycle();
    let job = lab.job();
    assert_eq!(job.schedule.state, ScheduleState::Disabled);
    assert_eq!(job.status.code, Code::Paused);
    assert!(job.status.last_execution.is_none());
    assert_eq!(job.status.steady_state_first_achieved_time, NEVER);
    assert!(job.id.starts_with("AD2AADProvisioning."), "{}", job.id);
    assert_eq!(job.id.len(), "AD2AADProvisioning.".len() + 32);
}

#[test]
fn a_started_job_imports_what_an_active_agent_counted_and_exports_only_new_users() {
    let mut lab = Lab::started();
    assert_eq!(lab.job().status.code, Code::NotRun);
    lab.users(25);
    lab.cycle();
    let first = lab.now();
    let job = lab.job();
    assert_eq!(job.status.code, Code::Active);
    let run = last(job);
    assert_eq!(
        (run.state, run.count_imported, run.count_exported),
        (RunState::Succeeded, 25, 25)
    );
    assert_eq!(run.time_began, first);
    let with_exports = job
        .status
        .last_successful_execution_with_exports
        .clone()
        .unwrap();
    assert_eq!(with_exports.count_exported, 25);
    assert_eq!(job.status.synchronized_entry_count_by_type[0].value, 25);
    assert_eq!(job.status.steady_state_first_achieved_time, first);

    // Nothing new: a run without exports; the last run with exports stays.
    lab.later(2, true);
    lab.cycle();
    let job = lab.job();
    assert_eq!(
        (last(job).count_imported, last(job).count_exported),
        (25, 0)
    );
    let kept = job
        .status
        .last_successful_execution_with_exports
        .as_ref()
        .unwrap();
    assert_eq!(kept.activity_identifier, with_exports.activity_identifier);
    assert_eq!(job.status.steady_state_first_achieved_time, first);
    assert_eq!(job.status.steady_state_last_achieved_time, lab.now());

    lab.users(27);
    lab.cycle();
    assert_eq!(last(lab.job()).count_exported, 2);
    assert_eq!(
        lab.job().status.synchronized_entry_count_by_type[0].value,
        27
    );
}

#[test]
fn an_agent_without_a_count_imports_zero() {
    let mut lab = Lab::started();
    lab.cycle();
    assert_eq!(lab.job().status.code, Code::Active);
    assert_eq!(last(lab.job()).count_imported, 0);
    assert!(
        lab.job()
            .status
            .last_successful_execution_with_exports
            .is_none()
    );
}

#[test]
fn quarantine_codes_follow_the_domain_agent_group_chain() {
    let mut lab = Lab::started();
    lab.sp().secrets.clear();
    assert_eq!(lab.quarantine_code(), INVALID_RESOURCE);

    let mut lab = Lab::started();
    lab.sp().secrets = vec![secret("Domain", "not json")];
    assert_eq!(lab.quarantine_code(), INVALID_RESOURCE);

    let mut lab = Lab::started();
    lab.sp().secrets = vec![secret("Domain", r#"{"domain":"other.example.test"}"#)];
    assert_eq!(lab.quarantine_code(), INVALID_RESOURCE);

    let mut lab = Lab::started();
    lab.state.groups[0].agent_ids.clear();
    assert_eq!(lab.quarantine_code(), NO_AGENTS_ASSIGNED);

    let mut lab = Lab::started();
    lab.later(30, false);
    assert_eq!(lab.quarantine_code(), NO_ACTIVE_AGENTS);

    let mut lab = Lab::started();
    let code = "AzureActiveDirectoryInvalidCredential";
    lab.state
        .sync
        .lab_quarantines
        .insert(DOMAIN.into(), code.into());
    assert_eq!(lab.quarantine_code(), code);

    // The chain comes first: a lab code on a domain with no agents.
    let mut lab = Lab::started();
    lab.state
        .sync
        .lab_quarantines
        .insert(DOMAIN.into(), "LabCode".into());
    lab.state.groups[0].agent_ids.clear();
    assert_eq!(lab.quarantine_code(), NO_AGENTS_ASSIGNED);
}

#[test]
fn a_quarantine_lasts_until_a_cycle_resolves_and_counts_its_series() {
    let mut lab = Lab::started();
    lab.later(31, false);
    lab.cycle();
    let began = lab.now();
    let status = &lab.job().status;
    let quarantine = status.quarantine.clone().unwrap();
    assert_eq!(quarantine.reason, "EncounteredQuarantineException");
    assert_eq!(quarantine.current_began, began);
    assert_eq!(quarantine.series_began, began);
    assert_eq!(quarantine.series_count, 1);
    assert_eq!(
        quarantine.next_attempt,
        rfc3339(lab.clock.wall + TIMING.interval)
    );
    assert_eq!(quarantine.error.message, message_of(NO_ACTIVE_AGENTS));
    assert!(quarantine.error.tenant_actionable);
    assert_eq!(status.count_successive_complete_failures, 1);
    let run = last(lab.job());
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.error.as_ref().unwrap().code, NO_ACTIVE_AGENTS);

    // Still failing: the same quarantine, a later next attempt.
    lab.later(2, false);
    lab.cycle();
    let quarantine = lab.job().status.quarantine.clone().unwrap();
    assert_eq!(
        (quarantine.current_began.as_str(), quarantine.series_count),
        (began.as_str(), 1)
    );
    assert_eq!(
        quarantine.next_attempt,
        rfc3339(lab.clock.wall + TIMING.interval)
    );
    assert_eq!(lab.job().status.count_successive_complete_failures, 2);

    // Start lifts it; the next failing cycle is the series' second.
    start(lab.job_mut());
    assert_eq!(lab.job().status.code, Code::NotRun);
    assert!(lab.job().status.quarantine.is_none());
    lab.later(2, false);
    lab.cycle();
    let quarantine = lab.job().status.quarantine.clone().unwrap();
    assert_eq!(quarantine.series_count, 2);
    assert_eq!(quarantine.series_began, began);
    assert_eq!(quarantine.current_began, lab.now());

    // The agent beats again: the job leaves quarantine by itself.
    lab.later(2, true);
    lab.cycle();
    let status = &lab.job().status;
    assert_eq!(status.code, Code::Active);
    assert!(status.quarantine.is_none());
    assert_eq!(status.count_successive_complete_failures, 0);
    assert!(lab.job().series.is_none());
}

#[test]
fn pause_keeps_the_counters_and_stops_the_cycles() {
    let mut lab = Lab::started();
    lab.users(25);
    lab.cycle();
    let ran = last(lab.job()).activity_identifier.clone();
    pause(lab.job_mut());
    assert_eq!(lab.job().schedule.state, ScheduleState::Paused);
    assert_eq!(lab.job().status.code, Code::Paused);
    lab.users(30);
    lab.later(2, true);
    lab.cycle();
    let job = lab.job();
    assert_eq!(last(job).activity_identifier, ran);
    assert_eq!(last(job).count_exported, 25);
    assert_eq!(job.status.synchronized_entry_count_by_type[0].value, 25);

    // A paused job continues: only the 5 new users are exported.
    start(lab.job_mut());
    lab.cycle();
    assert_eq!(last(lab.job()).count_exported, 5);
}

#[test]
fn start_on_a_running_job_changes_nothing() {
    let mut lab = Lab::started();
    lab.cycle();
    start(lab.job_mut());
    assert_eq!(lab.job().status.code, Code::Active);
}

#[test]
fn reset_scope_reads_the_documented_flags() {
    let all = ResetScope {
        quarantine: true,
        watermark: true,
        escrows: true,
        force_deletes: true,
    };
    let portal = ResetScope {
        force_deletes: false,
        ..all
    };
    assert_eq!(reset_scope(""), Ok(portal));
    assert_eq!(reset_scope(" , "), Ok(portal));
    assert_eq!(reset_scope("Full"), Ok(all));
    assert_eq!(
        reset_scope("None,ConnectorDataStore"),
        Ok(ResetScope::default())
    );
    let watermark_escrows = ResetScope {
        watermark: true,
        escrows: true,
        ..ResetScope::default()
    };
    assert_eq!(reset_scope("Watermark, Escrows"), Ok(watermark_escrows));
    assert_eq!(
        reset_scope(" ForceDeletes ").map(|s| s.force_deletes),
        Ok(true)
    );
    let refused = reset_scope("Watermark,Everything").unwrap_err();
    assert!(refused.contains("'Everything'"), "{refused}");
    assert!(
        reset_scope("watermark").is_err(),
        "flags are case-sensitive"
    );
}

#[test]
fn restart_applies_its_flags_and_runs_the_job() {
    // Watermark: everything is exported again.
    let mut lab = Lab::started();
    lab.users(25);
    lab.cycle();
    let watermark = reset_scope("Watermark").unwrap();
    restart(lab.job_mut(), watermark);
    assert_eq!(lab.job().status.code, Code::NotRun);
    lab.cycle();
    assert_eq!(last(lab.job()).count_exported, 25);

    // Escrows: the escrow counts of the runs are cleared.
    lab.job_mut()
        .status
        .last_execution
        .as_mut()
        .unwrap()
        .count_escrowed = 3;
    restart(lab.job_mut(), reset_scope("Escrows").unwrap());
    assert_eq!(last(lab.job()).count_escrowed, 0);

    // A quarantine stays without QuarantineState, goes with it.
    lab.state.groups[0].agent_ids.clear();
    lab.cycle();
    restart(lab.job_mut(), watermark);
    assert_eq!(lab.job().status.code, Code::Quarantine);
    assert!(lab.job().status.quarantine.is_some());
    restart(lab.job_mut(), reset_scope("QuarantineState").unwrap());
    assert_eq!(lab.job().status.code, Code::NotRun);
    assert!(lab.job().status.quarantine.is_none());

    // A paused job restarts.
    pause(lab.job_mut());
    restart(lab.job_mut(), ResetScope::default());
    assert_eq!(lab.job().schedule.state, ScheduleState::Active);
    assert_eq!(lab.job().status.code, Code::NotRun);
}

#[test]
fn a_job_reads_as_graphs_json() {
    let lab = Lab::new();
    let json = lab.job().to_json();
    assert_eq!(json["templateId"], "AD2AADProvisioning");
    assert_eq!(json["schedule"]["state"], "Disabled");
    assert_eq!(json["schedule"]["interval"], "PT2M");
    assert_eq!(json["status"]["code"], "Paused");
    assert!(json["status"]["quarantine"].is_null());
    assert!(json["status"]["lastExecution"].is_null());
    assert_eq!(json["status"]["steadyStateLastAchievedTime"], NEVER);
    assert_eq!(
        json["status"]["synchronizedEntryCountByType"],
        serde_json::json!([])
    );
    assert!(json.get("schema").is_none() && json.get("exported").is_none());
}
