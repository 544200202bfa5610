//! Step `delete-cloud-sync`: only when asked (`delete_cloud_sync` with the
//! domain repeated in `confirm_cloud_sync_domain`), the domain's cloud sync
//! configuration is deleted through Graph (`DELETE /servicePrincipals/{id}`:
//! its jobs, secrets and schema; the application registration stays) and
//! provd's record of it goes. Other agents still serving the domain are
//! named, not a refusal: the operator asked for the configuration to go.

use super::facts::Judgement;
use super::{Parts, Valid};
use crate::backends::tenant::Tokens;
use crate::model::SyncApp;
use crate::workflows::Error;
use crate::workflows::cloud_sync::{find_app, load_record, save_record};
use crate::workflows::operations::Progress;

pub(super) const STEP: &str = "delete-cloud-sync";

/// What the tenant says about the configuration to delete.
pub(super) enum CloudFacts {
    NotAsked,
    /// No session to read the tenant with (PlanDecommission).
    Unread,
    Read {
        domain: String,
        app: Option<SyncApp>,
        /// Machine names of the other agents in the domain's groups.
        others: Vec<String>,
    },
}

pub(super) async fn read(
    p: &Parts,
    valid: &Valid,
    tokens: Option<&Tokens>,
    this_agent: Option<&str>,
) -> Result<CloudFacts, Error> {
    let Some(domain) = &valid.delete_cloud_sync else {
        return Ok(CloudFacts::NotAsked);
    };
    let Some(tokens) = tokens else {
        return Ok(CloudFacts::Unread);
    };
    let record = load_record(&p.store, domain).await?;
    let app = find_app(domain, record.as_ref(), p.api.sync_apps(tokens).await?)?;
    let (_, serving, _) =
        crate::workflows::cloud_sync::agents_of(p.tenant.tenant(), tokens, domain, this_agent)
            .await?;
    let others = serving
        .into_iter()
        .filter(|a| Some(a.id.as_str()) != this_agent)
        .map(|a| a.machine_name)
        .collect();
    Ok(CloudFacts::Read {
        domain: domain.clone(),
        app,
        others,
    })
}

impl CloudFacts {
    pub(super) fn judge(&self) -> Judgement<(&str, &SyncApp, &[String])> {
        match self {
            CloudFacts::NotAsked => Judgement::Skip("not asked (delete_cloud_sync)".into()),
            CloudFacts::Unread => Judgement::Unread(
                "the tenant is not read (no session: sign in with SignIn); the operation signs \
                 in first"
                    .into(),
            ),
            CloudFacts::Read {
                domain, app: None, ..
            } => Judgement::Skip(format!(
                "the tenant has no cloud sync configuration for {domain}"
            )),
            CloudFacts::Read {
                domain,
                app: Some(app),
                others,
            } => Judgement::Do((domain.as_str(), app, others.as_slice())),
        }
    }
}

/// The plan's words for a deletion.
pub(super) fn describe(domain: &str, app: &SyncApp, others: &[String]) -> String {
    let mut text = format!(
        "the cloud sync configuration of {domain} (service principal {}, {}): its jobs, secrets \
         and schema; the application registration stays",
        app.service_principal_id, app.display_name
    );
    if !others.is_empty() {
        text.push_str(&format!(
            "; other agents still serve {domain}: {}",
            others.join(", ")
        ));
    }
    text
}

pub(super) async fn delete(
    progress: &Progress,
    p: &Parts,
    cloud: &CloudFacts,
    tokens: Option<&Tokens>,
) -> Result<bool, Error> {
    progress
        .step_started(STEP, "deleting the domain's cloud sync configuration")
        .await?;
    let (domain, app, others) = match cloud.judge() {
        Judgement::Do(found) => found,
        Judgement::Skip(why) | Judgement::Unread(why) | Judgement::Refused(why) => {
            progress.step_skipped(STEP, why).await?;
            return Ok(false);
        }
    };
    let tokens = tokens.ok_or_else(|| Error::internal_msg("no tenant session"))?;
    if !others.is_empty() {
        progress
            .warning(
                STEP,
                format!(
                    "other agents still serve {domain} and lose its configuration: {}",
                    others.join(", ")
                ),
            )
            .await?;
    }
    p.api
        .delete_app(tokens, &app.service_principal_id)
        .await
        .map_err(Error::from)?;
    save_record(&p.store, domain, None).await?;
    progress
        .step_succeeded(STEP, format!("deleted {}", describe(domain, app, &[])))
        .await?;
    Ok(true)
}
