//! DecommissionAgent and PlanDecommission: the way back from the setup
//! (issue 17). Microsoft has no cmdlet for it and Graph no delete-agent
//! method, so provd undoes what it did, step by step, each a skip when
//! there is nothing to do.
//!
//! `facts` reads (the host, the tenant, the directory) without changing
//! anything, and judges each step from what it read: PlanDecommission is
//! that judgement described; the operation (`steps`) reads the same facts
//! and acts on the same judgement.

mod cloud;
mod facts;
pub(crate) mod record;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;

use super::apply::Change;
use super::domain_controllers::{Connect, DcSession, DomainControllerWorkflows};
use super::drift::AgentChanges;
use super::operations::{Job, OperationSpec, RequestFingerprint, job};
use super::service_account::load_account;
use super::tenant::TenantWorkflows;
use super::{Caller, Error, FieldViolation, Operations, PreconditionReason, validate};
use crate::backends::directory::BindCredential;
use crate::backends::host::Host;
use crate::backends::store::{OperationKind, OperationRecord, Store};
use crate::backends::tenant::CloudSyncApi;

/// DecommissionAgent / PlanDecommission as the transport hands them over.
#[derive(Debug, Default)]
pub struct DecommissionRequest {
    pub credential: Option<BindCredential>,
    pub keep_gmsa: bool,
    pub delete_gmsa: bool,
    pub confirm_gmsa_name: String,
    pub delete_cloud_sync: bool,
    /// With `delete_cloud_sync`: the domain whose configuration goes.
    pub confirm_cloud_sync_domain: String,
    /// Empty for PlanDecommission.
    pub request_id: String,
}

/// A request that passed validation.
pub(super) struct Valid {
    pub credential: Option<BindCredential>,
    pub keep_gmsa: bool,
    pub delete_gmsa: bool,
    /// The domain whose cloud sync configuration is deleted, when asked.
    pub delete_cloud_sync: Option<String>,
}

/// What the steps need.
#[derive(Clone)]
pub(super) struct Parts {
    pub store: Arc<dyn Store>,
    pub host: Arc<dyn Host>,
    pub changes: Arc<AgentChanges>,
    pub staging_dir: PathBuf,
    pub tenant: Arc<TenantWorkflows>,
    pub api: Arc<dyn CloudSyncApi>,
    pub dcs: Arc<DomainControllerWorkflows>,
}

pub struct DecommissionWorkflows {
    operations: Arc<Operations>,
    parts: Parts,
}

impl DecommissionWorkflows {
    #[expect(clippy::too_many_arguments, reason = "the workflows it composes")]
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        host: Arc<dyn Host>,
        changes: Arc<AgentChanges>,
        staging_dir: PathBuf,
        tenant: Arc<TenantWorkflows>,
        api: Arc<dyn CloudSyncApi>,
        dcs: Arc<DomainControllerWorkflows>,
    ) -> Self {
        Self {
            operations,
            parts: Parts {
                store,
                host,
                changes,
                staging_dir,
                tenant,
                api,
                dcs,
            },
        }
    }

    /// Every field checked, each violation named. `plan`: the credential is
    /// optional and there is no request id.
    async fn validate(
        &self,
        request: DecommissionRequest,
        plan: bool,
    ) -> Result<(Valid, Option<String>), Error> {
        let mut v = Vec::new();
        if request.keep_gmsa && request.delete_gmsa {
            v.push(FieldViolation::new(
                "delete_gmsa",
                "cannot be combined with keep_gmsa",
            ));
        }
        if request.credential.is_some() || (!plan && !request.keep_gmsa) {
            v.extend(validate::credential(
                "credential",
                request.credential.as_ref(),
            ));
        }
        let confirm = request.confirm_gmsa_name.as_str();
        if request.delete_gmsa {
            let recorded = load_account(&self.parts.store).await?;
            if confirm.is_empty() {
                v.push(FieldViolation::new(
                    "confirm_gmsa_name",
                    "is required with delete_gmsa: the recorded gMSA's sAMAccountName",
                ));
            } else {
                match recorded {
                    None => v.push(FieldViolation::new(
                        "confirm_gmsa_name",
                        "no gMSA is recorded, so none can be deleted (decommissioned already?)",
                    )),
                    Some(a) if !same_account(&a.sam_account_name, confirm) => {
                        v.push(FieldViolation::new(
                            "confirm_gmsa_name",
                            "is not the recorded gMSA's sAMAccountName (GetServiceAccount shows it)",
                        ));
                    }
                    Some(_) => {}
                }
            }
        } else if !confirm.is_empty() {
            v.push(FieldViolation::new(
                "confirm_gmsa_name",
                "is only accepted with delete_gmsa",
            ));
        }
        let cloud_domain = request.confirm_cloud_sync_domain.as_str();
        let delete_cloud_sync = match (request.delete_cloud_sync, cloud_domain.is_empty()) {
            (false, true) => None,
            (false, false) => {
                v.push(FieldViolation::new(
                    "confirm_cloud_sync_domain",
                    "is only accepted with delete_cloud_sync",
                ));
                None
            }
            (true, true) => {
                v.push(FieldViolation::new(
                    "confirm_cloud_sync_domain",
                    "is required with delete_cloud_sync: the DNS name of the domain whose \
                     configuration is deleted",
                ));
                None
            }
            (true, false) => validate::dns_name("confirm_cloud_sync_domain", cloud_domain)
                .map_err(|e| v.push(e))
                .ok(),
        };
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        Ok((
            Valid {
                credential: request.credential,
                keep_gmsa: request.keep_gmsa,
                delete_gmsa: request.delete_gmsa,
                delete_cloud_sync,
            },
            request_id,
        ))
    }

    /// PlanDecommission: every step as the operation would judge it now.
    pub async fn plan(&self, request: DecommissionRequest) -> Result<Vec<Change>, Error> {
        let (valid, _) = self.validate(request, true).await?;
        self.parts.host.availability().map_err(host_unavailable)?;
        let p = &self.parts;
        let tokens = p.tenant.tokens().await?;
        let account = load_account(&p.store).await?;
        let mut session = match (&valid.credential, &account) {
            (Some(credential), Some(account)) if !valid.keep_gmsa => {
                Some(DcSession::open(&p.dcs, &account.domain, credential, Connect::Quiet).await?)
            }
            _ => None,
        };
        let facts = facts::read(
            p,
            &valid,
            tokens.as_ref(),
            session.as_mut().map(|s| s.as_mut()),
        )
        .await?;
        drop(session);
        Ok(facts.describe(&valid))
    }

    pub async fn decommission(
        &self,
        caller: &Caller,
        request: DecommissionRequest,
    ) -> Result<OperationRecord, Error> {
        let (spec, job) = self.prepare(caller, request).await?;
        self.operations.start(spec, job).await
    }

    /// Validates now; the job does the work.
    pub async fn prepare(
        &self,
        caller: &Caller,
        request: DecommissionRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let (valid, request_id) = self.validate(request, false).await?;
        let spec = OperationSpec {
            kind: OperationKind::Decommission,
            request_id,
            fingerprint: RequestFingerprint::new()
                .flag("keep_gmsa", valid.keep_gmsa)
                .flag("delete_gmsa", valid.delete_gmsa)
                .text(
                    "delete_cloud_sync",
                    valid.delete_cloud_sync.as_deref().unwrap_or_default(),
                ),
            description: format!(
                "decommission the agent of {}",
                self.parts.host.machine_name()
            ),
            initiator: caller.name.clone(),
        };
        let parts = self.parts.clone();
        Ok((
            spec,
            job(move |progress| steps::run(progress, parts, valid)),
        ))
    }
}

/// `confirm` names the account `recorded` (case-insensitive; `$` optional).
fn same_account(recorded: &str, confirm: &str) -> bool {
    let bare = |s: &str| s.trim_end_matches('$').to_ascii_lowercase();
    bare(recorded) == bare(confirm)
}

pub(super) fn host_unavailable(reason: String) -> Error {
    Error::FailedPrecondition {
        reason: PreconditionReason::HostUnavailable,
        subject: "host".into(),
        message: format!("cannot decommission this host's agent: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::same_account;

    #[test]
    fn the_confirmation_is_the_name_with_or_without_the_dollar() {
        assert!(same_account("provAgentgMSA$", "provagentgmsa$"));
        assert!(same_account("provAgentgMSA$", "provAgentgMSA"));
        assert!(!same_account("provAgentgMSA$", "provAgentgMSA2$"));
        assert!(!same_account("provAgentgMSA$", "$"));
    }
}
