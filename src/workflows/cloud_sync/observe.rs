//! Reads one domain's configuration from the tenant: the tenant flag, the
//! application (provd's record, else the one application named after the
//! domain), its jobs, secrets and scope, and the agents serving the domain.

use std::sync::Arc;

use super::record::{self, SyncRecord};
use crate::backends::store::Store;
use crate::backends::tenant::{
    CloudSyncApi, Organization, ProvisioningAgent, PublishedResource, Tenant, Tokens,
};
use crate::model::{JobSchema, JobTemplate, SecretsRead, SyncApp, SyncJob};
use crate::workflows::{Error, PreconditionReason};

/// One domain's configuration as the tenant and provd's record hold it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub domain: String,
    pub organization: Organization,
    pub record: Option<SyncRecord>,
    pub app: Option<SyncApp>,
    pub jobs: Vec<SyncJob>,
    pub secrets: Option<SecretsRead>,
    /// The provisioning job's schema.
    pub schema: Option<JobSchema>,
    pub resource: Option<PublishedResource>,
    /// The tenant's agents that are in one of the resource's groups.
    pub serving: Vec<ProvisioningAgent>,
    /// This machine's agent as the tenant lists it, when registered.
    pub this_agent: Option<ProvisioningAgent>,
}

impl Observed {
    pub fn job(&self, template: JobTemplate) -> Option<&SyncJob> {
        self.jobs.iter().find(|j| j.template() == Some(template))
    }

    /// Whether this machine's agent is in one of the domain's groups.
    pub fn this_agent_serves(&self) -> bool {
        match &self.this_agent {
            Some(a) => self.serving.iter().any(|s| s.id == a.id),
            None => false,
        }
    }
}

/// The application for `domain`: provd's record if the tenant still has
/// it, else the one named after the domain. Two or more of that name and no
/// record: provd will not guess.
pub fn find_app(
    domain: &str,
    record: Option<&SyncRecord>,
    apps: Vec<SyncApp>,
) -> Result<Option<SyncApp>, Error> {
    if let Some(r) = record
        && let Some(app) = apps
            .iter()
            .find(|a| a.service_principal_id == r.service_principal_id)
    {
        return Ok(Some(app.clone()));
    }
    let mut named: Vec<SyncApp> = apps
        .into_iter()
        .filter(|a| a.display_name.eq_ignore_ascii_case(domain))
        .collect();
    if named.len() > 1 {
        let ids: Vec<String> = named
            .iter()
            .map(|a| a.service_principal_id.clone())
            .collect();
        return Err(Error::FailedPrecondition {
            reason: PreconditionReason::CloudSyncAmbiguous,
            subject: domain.to_owned(),
            message: format!(
                "{} cloud sync applications are named {domain} (service principals {}); remove \
                 the extra ones in the Microsoft Entra admin center, then apply again",
                named.len(),
                ids.join(", ")
            ),
        });
    }
    Ok(named.pop())
}

pub async fn observe(
    api: &Arc<dyn CloudSyncApi>,
    tenant: &Arc<dyn Tenant>,
    store: &Arc<dyn Store>,
    tokens: &Tokens,
    domain: &str,
    agent_id: Option<&str>,
) -> Result<Observed, Error> {
    let organization = api.organization(tokens).await?;
    let record = record::load(store, domain).await?;
    let app = find_app(domain, record.as_ref(), api.sync_apps(tokens).await?)?;
    let (mut jobs, mut secrets, mut schema) = (Vec::new(), None, None);
    if let Some(app) = &app {
        let sp = &app.service_principal_id;
        jobs = api.jobs(tokens, sp).await?;
        secrets = Some(api.secrets(tokens, sp).await?);
        if let Some(job) = jobs
            .iter()
            .find(|j| j.template() == Some(JobTemplate::Provisioning))
        {
            schema = Some(api.schema(tokens, sp, &job.id).await?);
        }
    }
    let (resource, serving, this_agent) = agents_of(tenant, tokens, domain, agent_id).await?;
    Ok(Observed {
        domain: domain.to_owned(),
        organization,
        record,
        app,
        jobs,
        secrets,
        schema,
        resource,
        serving,
        this_agent,
    })
}

/// The domain's published resource, the agents in its groups, and this
/// machine's agent.
pub async fn agents_of(
    tenant: &Arc<dyn Tenant>,
    tokens: &Tokens,
    domain: &str,
    agent_id: Option<&str>,
) -> Result<
    (
        Option<PublishedResource>,
        Vec<ProvisioningAgent>,
        Option<ProvisioningAgent>,
    ),
    Error,
> {
    let resource = tenant
        .list_published_resources(tokens)
        .await?
        .into_iter()
        .find(|r| r.domain.eq_ignore_ascii_case(domain));
    let agents = tenant.list_agents(tokens).await?;
    let this_agent = agent_id.and_then(|id| agents.iter().find(|a| a.id == id).cloned());
    let serving = match &resource {
        None => Vec::new(),
        Some(r) => agents
            .into_iter()
            .filter(|a| a.groups.iter().any(|g| r.group_ids.contains(&g.id)))
            .collect(),
    };
    Ok((resource, serving, this_agent))
}
