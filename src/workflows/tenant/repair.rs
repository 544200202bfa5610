//! RepairAgent: registers this host's agent again through its own module
//! when the registration is what is broken — its registration certificate
//! expired, or the tenant quarantines a configuration with
//! HybridIdentityServiceInvalidResource, whose documented remedy is "re-
//! register the cloud sync agent on the on-premises AD domain"
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/reference-error-codes>).
//!
//! Steps: `sign-in`; `diagnose` (reads, changes nothing; a skip ends the
//! operation when nothing is broken and `force` is off); `connect-tenant`
//! forced (`Connect-AADCloudSyncAzureAD` again, the service restarted,
//! the agent waited for in Graph's list); `agent-groups` (a new agent id
//! joins the groups the old one was in, so the domains keep an agent);
//! `certificate` (the new certificate's expiry, when it can be read).

use std::sync::Arc;

use time::OffsetDateTime;

use super::certificate::RegistrationCertificate;
use super::{RegistrationRecord, TenantWorkflows};
use crate::backends::store::{OperationKind, OperationRecord};
use crate::backends::tenant::Tokens;
use crate::pki::rfc3339;
use crate::workflows::operations::{OperationSpec, Outcome, Progress, RequestFingerprint};
use crate::workflows::{Caller, Error, PreconditionReason, validate};

/// The quarantine code whose remedy is registering the agent again.
pub const INVALID_RESOURCE: &str = "HybridIdentityServiceInvalidResource";

const DIAGNOSE: &str = "diagnose";
const GROUPS: &str = "agent-groups";
const CERTIFICATE: &str = "certificate";

/// RepairAgent as the transport hands it over.
#[derive(Debug, Default, Clone)]
pub struct RepairRequest {
    pub request_id: String,
    /// Register again even when nothing is found broken.
    pub force: bool,
}

impl TenantWorkflows {
    /// Validates and checks the preconditions now; the operation repairs.
    pub async fn repair(
        self: &Arc<Self>,
        caller: &Caller,
        request: RepairRequest,
    ) -> Result<OperationRecord, Error> {
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|v| Error::InvalidArgument(vec![v]))?;
        self.host
            .availability()
            .map_err(|reason| Error::FailedPrecondition {
                reason: PreconditionReason::HostUnavailable,
                subject: "host".into(),
                message: format!("cannot repair this host's agent: {reason}"),
            })?;
        if self.registration().await?.is_none() {
            return Err(not_registered());
        }
        let spec = OperationSpec {
            kind: OperationKind::RepairAgent,
            request_id,
            fingerprint: RequestFingerprint::new().flag("force", request.force),
            description: format!("repair the registration of {}", self.host.machine_name()),
            initiator: caller.name.clone(),
        };
        let this = self.clone();
        let force = request.force;
        self.operations
            .start(spec, move |progress| async move {
                this.run_repair(&progress, force).await
            })
            .await
    }

    async fn run_repair(&self, progress: &Progress, force: bool) -> Result<Outcome, Error> {
        let before = self.registration().await?.ok_or_else(not_registered)?;
        let graph = self.ensure_signed_in(progress).await?;
        let reasons = self.diagnose(progress, &graph).await?;
        let mut outcome = Outcome::from([
            ("previous_agent_id".to_owned(), before.agent_id.clone()),
            ("reasons".to_owned(), reasons.join("; ")),
        ]);
        if reasons.is_empty() && !force {
            progress
                .step_skipped(
                    DIAGNOSE,
                    "nothing to repair: the registration certificate is valid and no \
                     configuration is quarantined with HybridIdentityServiceInvalidResource \
                     (set force to register again anyway)",
                )
                .await?;
            outcome.insert("changed".into(), "false".into());
            outcome.insert("agent_id".into(), before.agent_id);
            return Ok(outcome);
        }
        let why = if reasons.is_empty() {
            "force is set".to_owned()
        } else {
            reasons.join("; ")
        };
        progress
            .step_succeeded(DIAGNOSE, format!("registering the agent again: {why}"))
            .await?;
        let (record, _) = self.connect(progress, &graph, true).await?;
        self.rejoin_groups(progress, &graph, &before, &record)
            .await?;
        outcome.insert("changed".into(), "true".into());
        outcome.insert("agent_id".into(), record.agent_id.clone());
        progress
            .step_started(CERTIFICATE, "reading the new registration certificate")
            .await?;
        match self.registration_certificate().await? {
            RegistrationCertificate::Found(c) => {
                outcome.insert("certificate_not_after".into(), rfc3339(c.not_after));
                outcome.insert("certificate_thumbprint".into(), c.thumbprint.clone());
                if c.expired_at(OffsetDateTime::now_utc()) {
                    progress
                        .warning(
                            CERTIFICATE,
                            format!(
                                "the registration certificate {} still expired at {}: the \
                                 module did not replace it",
                                c.thumbprint,
                                rfc3339(c.not_after)
                            ),
                        )
                        .await?;
                }
                progress
                    .step_succeeded(CERTIFICATE, describe(&RegistrationCertificate::Found(c)))
                    .await?;
            }
            other => {
                progress.step_skipped(CERTIFICATE, describe(&other)).await?;
            }
        }
        Ok(outcome)
    }

    /// The `diagnose` step: why the registration needs repairing (empty
    /// when nothing is found broken). Reads only.
    async fn diagnose(&self, progress: &Progress, graph: &Tokens) -> Result<Vec<String>, Error> {
        progress
            .step_started(
                DIAGNOSE,
                "reading the registration certificate and the tenant's quarantines",
            )
            .await?;
        let mut reasons = Vec::new();
        match self.registration_certificate().await? {
            RegistrationCertificate::Found(c) if c.expired_at(OffsetDateTime::now_utc()) => {
                reasons.push(format!(
                    "the registration certificate {} expired at {}",
                    c.thumbprint,
                    rfc3339(c.not_after)
                ));
            }
            RegistrationCertificate::Found(_) => {}
            other => progress.warning(DIAGNOSE, describe(&other)).await?,
        }
        match self.invalid_resource_jobs(graph).await {
            Ok(jobs) => reasons.extend(jobs),
            // The certificate alone may be reason enough: a tenant read
            // that fails is said, not fatal.
            Err(e) => {
                progress
                    .warning(
                        DIAGNOSE,
                        format!("the tenant's cloud sync jobs could not be read: {e}"),
                    )
                    .await?;
            }
        }
        Ok(reasons)
    }

    /// Each job of the tenant quarantined with [`INVALID_RESOURCE`], in words.
    async fn invalid_resource_jobs(&self, graph: &Tokens) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        for app in self
            .cloud_sync
            .sync_apps(graph)
            .await
            .map_err(Error::from)?
        {
            let jobs = self
                .cloud_sync
                .jobs(graph, &app.service_principal_id)
                .await
                .map_err(Error::from)?;
            for job in jobs {
                if let Some(q) = job.status.quarantine
                    && q.error_code == INVALID_RESOURCE
                {
                    out.push(format!(
                        "job {} of {} is quarantined with {INVALID_RESOURCE} (Microsoft: \
                         re-register the agent)",
                        job.id, app.display_name
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The `agent-groups` step: a new agent id joins each group the old
    /// agent was in (Graph keeps the old one, inactive, in them).
    async fn rejoin_groups(
        &self,
        progress: &Progress,
        graph: &Tokens,
        before: &RegistrationRecord,
        after: &RegistrationRecord,
    ) -> Result<(), Error> {
        progress
            .step_started(GROUPS, "keeping the agent in its agent groups")
            .await?;
        if before.agent_id == after.agent_id {
            return progress
                .step_skipped(GROUPS, format!("the agent kept its id {}", after.agent_id))
                .await;
        }
        let agents = self.tenant.list_agents(graph).await.map_err(Error::from)?;
        let groups_of = |id: &str| {
            agents
                .iter()
                .find(|a| a.id == id)
                .map(|a| a.groups.clone())
                .unwrap_or_default()
        };
        let has: Vec<String> = groups_of(&after.agent_id)
            .into_iter()
            .map(|g| g.id)
            .collect();
        let missing: Vec<_> = groups_of(&before.agent_id)
            .into_iter()
            .filter(|g| !has.contains(&g.id))
            .collect();
        if missing.is_empty() {
            return progress
                .step_skipped(
                    GROUPS,
                    format!(
                        "the previous agent {} was in no group the new agent {} is not in",
                        before.agent_id, after.agent_id
                    ),
                )
                .await;
        }
        for group in &missing {
            self.cloud_sync
                .assign_agent(graph, &after.agent_id, &group.id)
                .await
                .map_err(Error::from)?;
        }
        let names: Vec<_> = missing.iter().map(|g| g.display_name.as_str()).collect();
        progress
            .step_succeeded(
                GROUPS,
                format!(
                    "agent {} joined {} (the previous agent {}'s groups; the tenant lists that \
                     one, inactive, until Microsoft ages it out)",
                    after.agent_id,
                    names.join(", "),
                    before.agent_id
                ),
            )
            .await
    }
}

fn not_registered() -> Error {
    Error::FailedPrecondition {
        reason: PreconditionReason::NotRegistered,
        subject: "agent".into(),
        message: "provd has no registration of this host's agent to repair: Install registers \
                  it (`provctl agent install`)"
            .into(),
    }
}

/// A lookup that found no certificate, in words.
pub fn describe(lookup: &RegistrationCertificate) -> String {
    match lookup {
        RegistrationCertificate::NotRegistered => {
            "no registration is recorded, so no certificate is looked for".into()
        }
        RegistrationCertificate::Unreadable(reason) => {
            format!("the registration certificate cannot be read: {reason}")
        }
        RegistrationCertificate::NotFound { store, subject } => format!(
            "no certificate with subject {subject} in {store}: Microsoft does not document where \
             the provisioning agent keeps its registration certificate; that location is \
             provd's configuration ([agent_module] registration_certificate_store and \
             registration_certificate_subject)"
        ),
        RegistrationCertificate::Found(c) => format!(
            "registration certificate {} ({}), notAfter {}",
            c.thumbprint,
            c.subject,
            rfc3339(c.not_after)
        ),
    }
}
