//! What differs between a domain's configuration and the desired one, as
//! the ordered Graph changes that would make it so. Pure: PlanCloudSync,
//! PlanConfiguration and the job all call it, so apply makes exactly what
//! plan listed.

use super::observe::Observed;
use super::types::CloudSyncSpec;
use crate::model::{
    CLOUD_SYNC_APP_TEMPLATE, JobCode, JobSchema, JobTemplate, SECRET_KEYS, Schedule, SyncScope,
    SyncSecrets,
};
use crate::workflows::apply::Change;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncChange {
    EnableTenantSync,
    /// The tenant has not published the domain yet (plan only: apply waits).
    AwaitPublication,
    AssignAgentGroup {
        group_id: String,
        others: String,
    },
    CreateApp,
    AdoptApp,
    CreateJob(JobTemplate),
    PutSecrets {
        why: String,
    },
    SetScope {
        detail: String,
    },
    Restart(JobTemplate),
    Start(JobTemplate),
    Pause(JobTemplate),
    /// provd forgets the configuration (the document no longer has it).
    Release,
}

impl SyncChange {
    pub fn describe(&self, step: &str, obs: &Observed) -> Change {
        let job = |t: JobTemplate| match obs.job(t) {
            Some(j) => format!("{} job {}", t.id(), j.id),
            None => format!("{} job", t.id()),
        };
        let (action, detail) = match self {
            Self::EnableTenantSync => (
                "enable-tenant-sync",
                format!(
                    "onPremisesSyncEnabled true (now: {})",
                    match obs.organization.sync_enabled {
                        None => "null",
                        Some(true) => "true",
                        Some(false) => "false",
                    }
                ),
            ),
            Self::AwaitPublication => (
                "await-publication",
                format!(
                    "the tenant has not published {} yet: the agent publishes it when the domain \
                     is added to it; apply waits for it",
                    obs.domain
                ),
            ),
            Self::AssignAgentGroup { group_id, others } => (
                "assign-agent-group",
                format!("this host's agent into agent group {group_id}; {others}"),
            ),
            Self::CreateApp => (
                "create-app",
                format!(
                    "application {} from template {CLOUD_SYNC_APP_TEMPLATE}",
                    obs.domain
                ),
            ),
            Self::AdoptApp => (
                "adopt-app",
                match &obs.app {
                    Some(a) => format!(
                        "service principal {} ({}), made outside provd",
                        a.service_principal_id, a.display_name
                    ),
                    None => "the application named after the domain".into(),
                },
            ),
            Self::CreateJob(t) => ("create-job", t.id().to_owned()),
            Self::PutSecrets { why } => {
                ("put-secrets", format!("{} ({why})", SECRET_KEYS.join(", ")))
            }
            Self::SetScope { detail } => ("set-scope", detail.clone()),
            Self::Restart(t) => (
                "restart",
                format!("{} with Watermark: the scope changed", job(*t)),
            ),
            Self::Start(t) => ("start", job(*t)),
            Self::Pause(t) => ("pause", job(*t)),
            Self::Release => (
                "release",
                "provd stops managing this configuration (the document no longer has it); \
                 nothing is deleted in the tenant and no user is deleted"
                    .to_owned(),
            ),
        };
        Change {
            step: step.to_owned(),
            action,
            detail,
        }
    }
}

/// The secrets `spec` asks for.
pub fn secrets_of(domain: &str, spec: &CloudSyncSpec) -> SyncSecrets {
    SyncSecrets {
        domain: domain.to_owned(),
        password_hash_sync: spec.password_hash_sync,
        notification_email: spec.notification_email.clone(),
        delete_threshold: spec.delete_threshold,
    }
}

/// The changes that make `obs` as `spec` says, in the order they are made.
pub fn changes(obs: &Observed, spec: &CloudSyncSpec) -> Vec<SyncChange> {
    let mut out = Vec::new();
    if obs.organization.sync_enabled != Some(true) {
        out.push(SyncChange::EnableTenantSync);
    }
    match &obs.resource {
        None => out.push(SyncChange::AwaitPublication),
        Some(r) if !obs.this_agent_serves() => {
            if let Some(group) = r.group_ids.first() {
                out.push(SyncChange::AssignAgentGroup {
                    group_id: group.clone(),
                    others: others(obs),
                });
            }
        }
        Some(_) => {}
    }
    match (&obs.app, &obs.record) {
        (None, _) => out.push(SyncChange::CreateApp),
        // Not recorded, or recorded for an application the tenant no longer
        // has (the one found is named after the domain): take it on.
        (Some(_), None) => out.push(SyncChange::AdoptApp),
        (Some(app), Some(r)) if r.service_principal_id != app.service_principal_id => {
            out.push(SyncChange::AdoptApp)
        }
        (Some(_), Some(_)) => {}
    }
    let mut templates = vec![JobTemplate::Provisioning];
    if spec.password_hash_sync {
        templates.push(JobTemplate::PasswordHash);
    }
    for t in &templates {
        if obs.job(*t).is_none() {
            out.push(SyncChange::CreateJob(*t));
        }
    }
    let desired = secrets_of(&obs.domain, spec);
    if let Some(why) = secrets_differ(obs, &desired) {
        out.push(SyncChange::PutSecrets { why });
    }
    // A new job's schema has no filter and no hash mapping [I].
    let have = obs.schema.clone().unwrap_or(JobSchema {
        scope: SyncScope::AllUsers,
        password_hash_mapping: false,
    });
    if have.scope != spec.scope || have.password_hash_mapping != spec.password_hash_sync {
        out.push(SyncChange::SetScope {
            detail: scope_detail(&have, spec),
        });
        let has_run = obs
            .job(JobTemplate::Provisioning)
            .is_some_and(|j| j.status.last_execution.is_some());
        if has_run && have.scope != spec.scope {
            out.push(SyncChange::Restart(JobTemplate::Provisioning));
        }
    }
    for t in [JobTemplate::Provisioning, JobTemplate::PasswordHash] {
        let wanted = templates.contains(&t);
        let job = obs.job(t);
        let running = job.is_some_and(|j| j.schedule == Schedule::Active);
        // Start clears a quarantine (Microsoft's start page): never as a
        // side effect of apply.
        let quarantined = job.is_some_and(|j| j.status.code == JobCode::Quarantine);
        if wanted && spec.enabled && !running && !quarantined {
            out.push(SyncChange::Start(t));
        } else if running && (!wanted || !spec.enabled) {
            out.push(SyncChange::Pause(t));
        }
    }
    out
}

/// What removing the configuration from the document does: pause, release.
pub fn release(obs: &Observed) -> Vec<SyncChange> {
    let mut out: Vec<SyncChange> = obs
        .jobs
        .iter()
        .filter(|j| j.schedule == Schedule::Active)
        .filter_map(|j| j.template())
        .map(SyncChange::Pause)
        .collect();
    out.push(SyncChange::Release);
    out
}

fn others(obs: &Observed) -> String {
    let mine = obs.this_agent.as_ref().map(|a| a.id.as_str());
    let list: Vec<String> = obs
        .serving
        .iter()
        .filter(|a| Some(a.id.as_str()) != mine)
        .map(|a| {
            format!(
                "{} ({})",
                a.machine_name,
                if a.active { "active" } else { "inactive" }
            )
        })
        .collect();
    if list.is_empty() {
        "no other agent serves the domain (Microsoft recommends three)".into()
    } else {
        format!("also serving: {}", list.join(", "))
    }
}

/// Why the secrets must be PUT, or `None` when they are as desired. Keys
/// only: never a value.
fn secrets_differ(obs: &Observed, desired: &SyncSecrets) -> Option<String> {
    let Some(read) = &obs.secrets else {
        return Some("not set yet".into());
    };
    if let Some(missing) = SECRET_KEYS
        .iter()
        .find(|k| !read.keys.iter().any(|have| have == *k))
    {
        return Some(format!("{missing} is not set"));
    }
    match &read.values {
        Some(have) => {
            let mut differ = Vec::new();
            if have.domain != desired.domain {
                differ.push("Domain");
            }
            if have.password_hash_sync != desired.password_hash_sync {
                differ.push("AppKey");
            }
            if have.notification_email != desired.notification_email
                || have.delete_threshold != desired.delete_threshold
            {
                differ.push("SyncNotificationSettings");
            }
            (!differ.is_empty()).then(|| format!("differ: {}", differ.join(", ")))
        }
        None => match &obs.record {
            Some(r) if r.secrets_match(desired) => None,
            Some(_) => {
                Some("the tenant masks the values; they differ from what provd last set".into())
            }
            None => Some("the tenant masks the values and provd has not set them".into()),
        },
    }
}

fn scope_name(scope: &SyncScope) -> String {
    match scope {
        SyncScope::AllUsers => "all users".into(),
        SyncScope::OrganizationalUnits(ous) => format!("organizational units {}", ous.join("; ")),
        SyncScope::SecurityGroups(groups) => format!("security groups {}", groups.join("; ")),
    }
}

fn scope_detail(have: &JobSchema, spec: &CloudSyncSpec) -> String {
    let mut detail = format!(
        "{} (now: {}); password hash mapping {} (now: {})",
        scope_name(&spec.scope),
        scope_name(&have.scope),
        if spec.password_hash_sync { "on" } else { "off" },
        if have.password_hash_mapping {
            "on"
        } else {
            "off"
        },
    );
    if narrows(&have.scope, &spec.scope) {
        detail.push_str(&match spec.delete_threshold {
            Some(t) => format!(
                "; users leaving the scope are DELETED in Entra ID, at most {} per run \
                 (accidental delete threshold {t})",
                t.saturating_sub(1)
            ),
            None => "; users leaving the scope are DELETED in Entra ID, with no limit \
                     (accidental delete prevention is off)"
                .to_owned(),
        });
    }
    detail
}

/// Whether going from `have` to `want` may take users out of scope.
fn narrows(have: &SyncScope, want: &SyncScope) -> bool {
    let lower =
        |v: &[String]| -> Vec<String> { v.iter().map(|s| s.to_ascii_lowercase()).collect() };
    match (have, want) {
        (_, SyncScope::AllUsers) => false,
        (SyncScope::AllUsers, _) => true,
        (SyncScope::OrganizationalUnits(a), SyncScope::OrganizationalUnits(b))
        | (SyncScope::SecurityGroups(a), SyncScope::SecurityGroups(b)) => {
            let b = lower(b);
            lower(a).iter().any(|x| !b.contains(x))
        }
        _ => true,
    }
}
