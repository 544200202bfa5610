//! The synchronization jobs of a configuration: list, create, start, pause,
//! restart (<https://learn.microsoft.com/graph/api/synchronization-synchronization-list-jobs?view=graph-rest-beta>,
//! `…-post-jobs`, `…-synchronizationjob-start`, `…-pause`, `…-restart`),
//! and their status as the resources describe it
//! (<https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationstatus?view=graph-rest-beta>,
//! `…-synchronizationquarantine`, `…-synchronizationtaskexecution`).
//!
//! Words the model does not know are kept (`Other`); a timestamp of
//! `0001-01-01T00:00:00Z` (.NET's minimum, the how-to's example for "not
//! yet") or an empty one is no time; any other that is not RFC 3339 is a
//! `Protocol` error.

use std::time::SystemTime;

use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::super::http::HttpTenant;
use super::super::{TenantError, Tokens};
use super::SyncCall;
use super::call::{json_body, parse, segment};
use crate::model::{
    JobCode, JobStatus, JobTemplate, Quarantine, ResetScope, RunState, Schedule, SyncJob, SyncRun,
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JobBody {
    id: String,
    #[serde(default)]
    template_id: String,
    schedule: Option<ScheduleBody>,
    status: Option<StatusBody>,
}

#[derive(Deserialize)]
struct ScheduleBody {
    state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StatusBody {
    code: Option<String>,
    quarantine: Option<QuarantineBody>,
    last_execution: Option<RunBody>,
    last_successful_execution: Option<RunBody>,
    last_successful_execution_with_exports: Option<RunBody>,
    synchronized_entry_count_by_type: Option<Vec<CountBody>>,
    escrows_pruned: Option<bool>,
    count_successive_complete_failures: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QuarantineBody {
    reason: Option<String>,
    error: Option<ErrorBody>,
    current_began: Option<String>,
    next_attempt: Option<String>,
    series_count: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunBody {
    state: Option<String>,
    count_imported: Option<i64>,
    count_exported: Option<i64>,
    count_escrowed: Option<i64>,
    time_began: Option<String>,
    time_ended: Option<String>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct CountBody {
    key: String,
    value: i64,
}

/// The known word, matched without regard to case, else `other(word)`.
fn word<T: Clone>(word: Option<String>, known: &[(&str, T)], other: fn(String) -> T) -> T {
    let word = word.unwrap_or_default();
    known
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(&word))
        .map_or_else(|| other(word), |(_, t)| t.clone())
}

/// An RFC 3339 timestamp; `None` for "never" and for times `SystemTime`
/// cannot hold on this platform.
fn timestamp(field: &str, text: Option<String>) -> Result<Option<SystemTime>, TenantError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let at = OffsetDateTime::parse(&text, &Rfc3339)
        .map_err(|e| TenantError::Protocol(format!("{field} {text:?}: {e}")))?;
    if at.year() <= 1 {
        return Ok(None);
    }
    let since = at - OffsetDateTime::UNIX_EPOCH;
    let Ok(magnitude) = std::time::Duration::try_from(since.abs()) else {
        return Ok(None);
    };
    Ok(if since.is_negative() {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    })
}

fn run(body: Option<RunBody>) -> Result<Option<SyncRun>, TenantError> {
    let Some(r) = body else { return Ok(None) };
    let error = r.error.unwrap_or_default();
    Ok(Some(SyncRun {
        state: word(
            r.state,
            &[
                ("Succeeded", RunState::Succeeded),
                ("Failed", RunState::Failed),
                ("EntryLevelErrors", RunState::EntryLevelErrors),
            ],
            RunState::Other,
        ),
        imported: r.count_imported.unwrap_or_default(),
        exported: r.count_exported.unwrap_or_default(),
        escrowed: r.count_escrowed.unwrap_or_default(),
        began: timestamp("timeBegan", r.time_began)?,
        ended: timestamp("timeEnded", r.time_ended)?,
        error_code: error.code.unwrap_or_default(),
        error_message: error.message.unwrap_or_default(),
    }))
}

fn quarantine(body: Option<QuarantineBody>) -> Result<Option<Quarantine>, TenantError> {
    let Some(q) = body else { return Ok(None) };
    let error = q.error.unwrap_or_default();
    Ok(Some(Quarantine {
        reason: q.reason.unwrap_or_default(),
        error_code: error.code.unwrap_or_default(),
        error_message: error.message.unwrap_or_default(),
        current_began: timestamp("currentBegan", q.current_began)?,
        next_attempt: timestamp("nextAttempt", q.next_attempt)?,
        series_count: q.series_count.unwrap_or_default(),
    }))
}

impl JobBody {
    pub(super) fn into_job(self) -> Result<SyncJob, TenantError> {
        let status = self.status.unwrap_or_default();
        let code = word(
            status.code,
            &[
                ("NotConfigured", JobCode::NotConfigured),
                ("NotRun", JobCode::NotRun),
                ("Active", JobCode::Active),
                ("Paused", JobCode::Paused),
                ("Quarantine", JobCode::Quarantine),
            ],
            JobCode::Other,
        );
        let schedule = word(
            self.schedule.and_then(|s| s.state),
            &[
                ("Active", Schedule::Active),
                ("Disabled", Schedule::Disabled),
                ("Paused", Schedule::Paused),
            ],
            Schedule::Other,
        );
        let status = JobStatus {
            code,
            quarantine: quarantine(status.quarantine)?,
            last_execution: run(status.last_execution)?,
            last_successful_execution: run(status.last_successful_execution)?,
            last_execution_with_exports: run(status.last_successful_execution_with_exports)?,
            synchronized_by_type: (status.synchronized_entry_count_by_type.unwrap_or_default())
                .into_iter()
                .map(|c| (c.key, c.value))
                .collect(),
            escrows_pruned: status.escrows_pruned.unwrap_or_default(),
            successive_failures: status
                .count_successive_complete_failures
                .unwrap_or_default(),
        };
        Ok(SyncJob {
            id: self.id,
            template_id: self.template_id,
            schedule,
            status,
        })
    }
}

/// A job's status failed to parse: say which call and job.
fn in_job(call: SyncCall, id: &str) -> impl FnOnce(TenantError) -> TenantError + '_ {
    move |e| match e {
        TenantError::Protocol(m) => {
            TenantError::Protocol(format!("{} (job {id}): {m}", call.request()))
        }
        other => other,
    }
}

impl HttpTenant {
    fn jobs_path(sp: &str) -> String {
        format!("/servicePrincipals/{}/synchronization/jobs", segment(sp))
    }

    fn job_url(&self, sp: &str, job: &str, action: &str) -> String {
        self.beta(&format!(
            "{}/{}/{action}",
            Self::jobs_path(sp),
            segment(job)
        ))
    }

    pub async fn jobs(&self, tokens: &Tokens, sp: &str) -> Result<Vec<SyncJob>, TenantError> {
        let call = SyncCall::ListJobs;
        let list: Vec<JobBody> = self.sync_list(tokens, call, &Self::jobs_path(sp)).await?;
        list.into_iter()
            .map(|j| {
                let id = j.id.clone();
                j.into_job().map_err(in_job(call, &id))
            })
            .collect()
    }

    /// A new job of `template` (201 and the job). Not sent again after a
    /// 5xx or a lost answer (see `send`); 409 when one exists [I].
    pub async fn create_job(
        &self,
        tokens: &Tokens,
        sp: &str,
        template: JobTemplate,
    ) -> Result<SyncJob, TenantError> {
        let call = SyncCall::CreateJob;
        let url = self.beta(&Self::jobs_path(sp));
        let body = json_body(&json!({ "templateId": template.id() }));
        let text = self.sync_send(tokens, call, &url, Some(body)).await?;
        let job: JobBody = parse(call, &text)?;
        let id = job.id.clone();
        job.into_job().map_err(in_job(call, &id))
    }

    pub async fn start_job(&self, tokens: &Tokens, sp: &str, job: &str) -> Result<(), TenantError> {
        let url = self.job_url(sp, job, "start");
        self.sync_send(tokens, SyncCall::StartJob, &url, None)
            .await
            .map(drop)
    }

    pub async fn pause_job(&self, tokens: &Tokens, sp: &str, job: &str) -> Result<(), TenantError> {
        let url = self.job_url(sp, job, "pause");
        self.sync_send(tokens, SyncCall::PauseJob, &url, None)
            .await
            .map(drop)
    }

    /// `{"criteria":{"resetScope":"Watermark, Escrows"}}`: the flags joined
    /// by ", " (empty: the portal's "Restart provisioning").
    pub async fn restart_job(
        &self,
        tokens: &Tokens,
        sp: &str,
        job: &str,
        scopes: &[ResetScope],
    ) -> Result<(), TenantError> {
        let url = self.job_url(sp, job, "restart");
        let reset: Vec<&str> = scopes.iter().map(|s| s.word()).collect();
        let body = json_body(&json!({ "criteria": { "resetScope": reset.join(", ") } }));
        self.sync_send(tokens, SyncCall::RestartJob, &url, Some(body))
            .await
            .map(drop)
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
