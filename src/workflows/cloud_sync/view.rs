//! GetCloudSync: what each domain's configuration is, as read; never a
//! secret's value, and never a sign-in (without a session it says so).

use super::CloudSyncWorkflows;
use super::observe::Observed;
use super::remedy;
use super::types::{AgentView, CloudSyncReport, CloudSyncSpec, DomainSync, JobView};
use crate::model::{GroupAgent, JobSchema, JobTemplate, Schedule, SyncScope};
use crate::workflows::Error;
use crate::workflows::directory::DirectoryWorkflows;

impl CloudSyncWorkflows {
    /// GetCloudSync: `domain` empty = every added domain.
    pub async fn get(&self, domain: &str) -> Result<CloudSyncReport, Error> {
        let added = DirectoryWorkflows::list_domains(&self.store).await?;
        let domains = if domain.is_empty() {
            added
        } else {
            vec![self.added("domain", domain).await?]
        };
        let mut report = CloudSyncReport::default();
        let tokens = match self.tenant.tokens().await {
            Ok(Some(t)) => t,
            Ok(None) => {
                report.tenant_message =
                    "provd holds no tenant session (sign in with AgentService.SignIn)".into();
                report.domains = domains.into_iter().map(unread).collect();
                return Ok(report);
            }
            Err(e) => {
                report.tenant_message = e.to_string();
                report.domains = domains.into_iter().map(unread).collect();
                return Ok(report);
            }
        };
        match self.api.organization(&tokens).await {
            Ok(org) => {
                report.tenant_readable = true;
                report.tenant_sync_enabled = org.sync_enabled == Some(true);
            }
            Err(e) => {
                report.tenant_message = Error::from(e).to_string();
                report.domains = domains.into_iter().map(unread).collect();
                return Ok(report);
            }
        }
        for d in domains {
            report.domains.push(match self.observe(&tokens, &d).await {
                Ok(obs) => domain_view(&obs),
                Err(e) => DomainSync {
                    domain: d,
                    read_error: Some(e.to_string()),
                    ..Default::default()
                },
            });
        }
        Ok(report)
    }
}

fn unread(domain: String) -> DomainSync {
    DomainSync {
        domain,
        read_error: Some("the tenant was not read".into()),
        ..Default::default()
    }
}

pub(super) fn domain_view(obs: &Observed) -> DomainSync {
    let mine = obs.this_agent.as_ref().map(|a| a.id.clone());
    let agents = obs
        .serving
        .iter()
        .map(|a| AgentView {
            agent: GroupAgent {
                id: a.id.clone(),
                machine_name: a.machine_name.clone(),
                active: a.active,
            },
            this_host: Some(&a.id) == mine.as_ref(),
        })
        .collect();
    let jobs = obs
        .jobs
        .iter()
        .map(|j| JobView {
            job: j.clone(),
            remedy: j
                .status
                .quarantine
                .as_ref()
                .and_then(remedy::for_quarantine),
        })
        .collect();
    let secrets = obs.secrets.as_ref();
    let values = secrets.and_then(|s| s.values.as_ref());
    let schema = obs.schema.clone().unwrap_or(JobSchema {
        scope: SyncScope::AllUsers,
        password_hash_mapping: false,
    });
    let observed = obs.app.as_ref().map(|_| CloudSyncSpec {
        enabled: obs
            .job(JobTemplate::Provisioning)
            .is_some_and(|j| j.schedule == Schedule::Active),
        password_hash_sync: values.map_or(schema.password_hash_mapping, |v| v.password_hash_sync),
        scope: schema.scope.clone(),
        delete_threshold: values.and_then(|v| v.delete_threshold),
        notification_email: None,
    });
    DomainSync {
        domain: obs.domain.clone(),
        configured: obs.app.is_some(),
        managed: obs.record.is_some(),
        app: obs.app.clone(),
        observed,
        notification_email_set: values.is_some_and(|v| v.notification_email.is_some()),
        secret_keys: secrets.map(|s| s.keys.clone()).unwrap_or_default(),
        jobs,
        agents,
        read_error: None,
    }
}
