//! `provctl cloud-sync get`: each domain's configuration, its jobs and
//! quarantines with Microsoft's remedy; secret keys only, never a value.

use provd_proto::v1;

use super::*;

/// GetCloudSync's answer: the tenant flag, then one block per domain (its
/// configuration, a job table with quarantines and their remedies, the
/// agents). Secrets by key only: a notification email is "set", never shown.
pub fn cloud_sync(r: &v1::GetCloudSyncResponse) -> String {
    let mut out = if r.tenant_readable {
        kv(&[("tenant sync enabled", yes_no(r.tenant_sync_enabled))])
    } else {
        kv(&[("tenant not read", r.tenant_message.clone())])
    };
    if r.domains.is_empty() {
        out.push_str("no domains added\n");
    }
    for d in &r.domains {
        out.push('\n');
        out.push_str(&cloud_sync_domain(d));
    }
    out
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// The scope as the spec says it: OUs, groups, or all users.
fn scope(spec: &v1::CloudSyncSpec) -> String {
    if !spec.organizational_units.is_empty() {
        format!("OUs {}", spec.organizational_units.join("; "))
    } else if !spec.security_groups.is_empty() {
        format!("groups {}", spec.security_groups.join("; "))
    } else {
        "all users".into()
    }
}

fn delete_prevention(spec: &v1::CloudSyncSpec) -> String {
    match &spec.accidental_deletes {
        Some(a) if a.disabled => "off".into(),
        Some(a) if a.threshold > 0 => format!("on, threshold {}", a.threshold),
        _ => "on, threshold 500".into(),
    }
}

/// `QUARANTINE`, or Graph's own word for a state this client has no name for.
fn job_state_text(job: &v1::CloudSyncJob) -> String {
    let label = job_state(job.state);
    if job.state == v1::CloudSyncJobState::Other as i32 && !job.raw_code.is_empty() {
        format!("{label} ({})", job.raw_code)
    } else {
        label
    }
}

/// Sorted `type n` pairs, e.g. `group 2, user 25`.
fn synchronized(job: &v1::CloudSyncJob) -> String {
    let mut counts: Vec<_> = job.synchronized_by_type.iter().collect();
    counts.sort();
    counts
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cloud_sync_domain(d: &v1::CloudSyncDomain) -> String {
    let mut out = format!("{}\n", d.domain);
    let mut rows = vec![
        ("configured", yes_no(d.configured)),
        ("managed by provd", yes_no(d.managed)),
        ("service principal", d.service_principal_id.clone()),
        ("app id", d.app_id.clone()),
    ];
    if let Some(spec) = &d.observed
        && d.configured
    {
        rows.extend([
            ("jobs enabled", yes_no(spec.enabled)),
            ("password hash sync", yes_no(spec.password_hash_sync)),
            ("scope", scope(spec)),
            ("delete prevention", delete_prevention(spec)),
        ]);
    }
    if d.configured {
        rows.push((
            "notification email",
            if d.notification_email_set {
                "set (not shown)".into()
            } else {
                "none".into()
            },
        ));
        rows.push(("secret keys", d.secret_keys.join(", ")));
    }
    rows.push(("not read", d.read_error.clone()));
    out.push_str(&indent(&kv(&rows), 2));

    if !d.jobs.is_empty() {
        let mut quarantines = Vec::new();
        let mut run_errors = Vec::new();
        let job_rows: Vec<Vec<String>> = d
            .jobs
            .iter()
            .map(|job| {
                if let Some(q) = &job.quarantine {
                    quarantines.push(quarantine(job, q));
                }
                let last = job.last_run.as_ref();
                if let Some(run) = last {
                    let error: Vec<&str> = [run.error_code.as_str(), run.error_message.as_str()]
                        .into_iter()
                        .filter(|s| !s.is_empty())
                        .collect();
                    if !error.is_empty() {
                        run_errors.push(format!(
                            "last run of {}: {}\n",
                            job.template_id,
                            error.join(": ")
                        ));
                    }
                }
                vec![
                    job.template_id.clone(),
                    job_state_text(job),
                    schedule(job.schedule),
                    last.map_or("-".into(), |r| run_state(r.state)),
                    last.map_or("-".into(), |r| timestamp(r.time_ended.as_ref())),
                    last.map_or("-".into(), |r| r.count_imported.to_string()),
                    last.map_or("-".into(), |r| r.count_exported.to_string()),
                    last.map_or("-".into(), |r| r.count_escrowed.to_string()),
                    synchronized(job),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&indent(
            &table(
                &[
                    "JOB",
                    "STATE",
                    "SCHEDULE",
                    "LAST RUN",
                    "ENDED",
                    "IMPORTED",
                    "EXPORTED",
                    "ESCROWED",
                    "SYNCHRONIZED",
                ],
                &job_rows,
            ),
            2,
        ));
        for text in quarantines.iter().chain(&run_errors) {
            out.push_str(&indent(text, 2));
        }
    }

    if !d.agents.is_empty() {
        let agent_rows: Vec<Vec<String>> = d
            .agents
            .iter()
            .map(|a| {
                vec![
                    a.machine_name.clone(),
                    a.id.clone(),
                    if a.active { "active" } else { "inactive" }.into(),
                    if a.this_host {
                        "this host".into()
                    } else {
                        String::new()
                    },
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&indent(
            &table(&["AGENT", "ID", "STATUS", ""], &agent_rows),
            2,
        ));
    }
    out
}

/// A quarantined job: why, since when, what Graph said and Microsoft's remedy.
fn quarantine(job: &v1::CloudSyncJob, q: &v1::CloudSyncQuarantine) -> String {
    let mut why = q.reason.clone();
    if !q.error_code.is_empty() {
        why.push_str(&format!(" ({})", q.error_code));
    }
    let mut out = format!("quarantine of {}: {why}\n", job.template_id);
    let rows = [
        ("message", q.error_message.clone()),
        ("since", timestamp(q.current_began.as_ref())),
        ("next attempt", timestamp(q.next_attempt.as_ref())),
        (
            "times in a row",
            if q.series_count > 0 {
                q.series_count.to_string()
            } else {
                String::new()
            },
        ),
        (
            "remedy",
            if q.remedy.is_empty() {
                "none known to provd for this code: see Microsoft's error code reference".into()
            } else {
                q.remedy.clone()
            },
        ),
    ];
    out.push_str(&indent(&kv(&rows), 2));
    out
}
