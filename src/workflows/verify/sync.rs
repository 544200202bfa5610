//! Cloud sync checks, per domain with a configuration: the jobs run and are
//! not quarantined (with Microsoft's remedy when they are:
//! `cloud_sync::remedy`), and the last run succeeded recently. Graph's
//! status as GetCloudSync reads it
//! (<https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationstatus?view=graph-rest-beta>).

use std::time::{Duration, SystemTime};

use super::{Category, Check, Run, Status, check};
use crate::model::{JobCode, JobTemplate, RunState, Schedule};
use crate::workflows::cloud_sync::{DomainSync, JobView};

/// A successful run older than this is stale. Cloud sync runs every two
/// minutes (Microsoft); 40 minutes is the job's documented example
/// interval, taken as the outer bound [I].
const STALE_AFTER: Duration = Duration::from_secs(40 * 60);

const JOB: &str = "tenant.sync.job";
const LAST_RUN: &str = "tenant.sync.last_run";

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    use Category::Tenant as T;
    let skip_both = |domain: &str, why: &str, remedy: &str| {
        [JOB, LAST_RUN]
            .map(|id| {
                check(id, T, Status::Skip, why.to_owned())
                    .subject(domain.to_owned())
                    .remedy(remedy.to_owned())
            })
            .to_vec()
    };
    let mut out = Vec::new();
    let report = match run.cloud_sync.get("").await {
        Ok(r) => r,
        Err(e) => {
            for d in &run.domains {
                out.extend(skip_both(d, &e.to_string(), ""));
            }
            return out;
        }
    };
    for d in report
        .domains
        .iter()
        .filter(|d| run.domains.contains(&d.domain))
    {
        if !report.tenant_readable {
            out.extend(skip_both(
                &d.domain,
                &report.tenant_message,
                "sign in with `provctl agent sign-in`, then verify again",
            ));
        } else if let Some(e) = &d.read_error {
            out.push(
                check(
                    JOB,
                    T,
                    Status::Fail,
                    format!("cannot read the configuration: {e}"),
                )
                .subject(d.domain.clone()),
            );
        } else if !d.configured {
            out.extend(skip_both(
                &d.domain,
                &format!("{} has no cloud sync configuration", d.domain),
                "give the domain a [domains.cloud_sync] table and apply, or SetCloudSync",
            ));
        } else {
            out.push(job_check(d));
            out.push(last_run_check(d));
        }
    }
    out
}

fn provisioning(d: &DomainSync) -> Option<&JobView> {
    d.jobs
        .iter()
        .find(|j| j.job.template() == Some(JobTemplate::Provisioning))
}

fn job_check(d: &DomainSync) -> Check {
    use Category::Tenant as T;
    let Some(view) = provisioning(d) else {
        return check(
            JOB,
            T,
            Status::Fail,
            format!("{}'s configuration has no AD2AADProvisioning job", d.domain),
        )
        .subject(d.domain.clone())
        .remedy("apply the document again (or SetCloudSync): it creates the job");
    };
    let job = &view.job;
    let base = |status, message: String| {
        check(JOB, T, status, message)
            .subject(d.domain.clone())
            .attr("job_id", job.id.clone())
            .attr("jobs", d.jobs.len().to_string())
    };
    if let Some(q) = &job.status.quarantine {
        return base(
            Status::Fail,
            format!(
                "job {} is quarantined: {} ({}: {})",
                job.id, q.reason, q.error_code, q.error_message
            ),
        )
        .attr("reason", q.reason.clone())
        .attr("error_code", q.error_code.clone())
        .remedy(view.remedy.clone().unwrap_or_else(|| {
            "see the job's status in the Microsoft Entra admin center; RestartCloudSync with \
             QUARANTINE_STATE once the cause is fixed"
                .into()
        }));
    }
    match (&job.schedule, &job.status.code) {
        (Schedule::Active, JobCode::Active | JobCode::NotRun) => base(
            Status::Pass,
            format!("job {} runs ({:?})", job.id, job.status.code),
        ),
        (Schedule::Active, code) => base(
            Status::Warn,
            format!("job {} is scheduled but its status is {code:?}", job.id),
        ),
        (schedule, _) => base(
            Status::Fail,
            format!("job {} does not run: its schedule is {schedule:?}", job.id),
        )
        .remedy("StartCloudSync, or apply a document whose cloud_sync has enabled = true"),
    }
}

fn last_run_check(d: &DomainSync) -> Check {
    use Category::Tenant as T;
    let base =
        |status, message: String| check(LAST_RUN, T, status, message).subject(d.domain.clone());
    let Some(view) = provisioning(d) else {
        return base(Status::Skip, "no provisioning job".into());
    };
    let status = &view.job.status;
    let Some(run) = &status.last_execution else {
        return base(Status::Warn, format!("job {} has not run yet", view.job.id))
            .remedy("wait for the first cycle (every two minutes) and verify again");
    };
    let users = status
        .synchronized_by_type
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("user"))
        .map_or(0, |(_, n)| *n);
    let age = run
        .ended
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let counts = |c: Check| {
        c.attr("imported", run.imported.to_string())
            .attr("exported", run.exported.to_string())
            .attr("synchronized_users", users.to_string())
    };
    counts(match &run.state {
        RunState::Failed => base(
            Status::Fail,
            format!(
                "the last run failed: {}: {}",
                run.error_code, run.error_message
            ),
        )
        .remedy("see the provisioning logs in the Microsoft Entra admin center"),
        _ if age > STALE_AFTER => base(
            Status::Fail,
            format!("the last run ended {} minutes ago", age.as_secs() / 60),
        )
        .remedy("the job has stopped running: check tenant.sync.job and the agent's services"),
        RunState::Succeeded => base(
            Status::Pass,
            format!(
                "the last run succeeded: {} imported, {} exported; {users} users synchronized",
                run.imported, run.exported
            ),
        ),
        other => base(
            Status::Warn,
            format!(
                "the last run ended {other:?}: {} entries escrowed",
                run.escrowed
            ),
        )
        .remedy("see the provisioning logs in the Microsoft Entra admin center"),
    })
}
