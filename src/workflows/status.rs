//! StatusService (GetHostStatus): the host in one read — the agent as
//! GetAgent reports it, provd's tenant session and registration record,
//! the newest operation and the drift watch's findings. Fleet-wide sweeps
//! call it for every host, so it reads only what is in memory or cached:
//! the host backend (as GetAgent), the registration record GetAgent
//! caches, the operations engine's newest record, the drift snapshot. No
//! directory, tenant or (in the steady state) store call.

use std::sync::Arc;

use super::Error;
use super::agent::{AgentReport, AgentWorkflows};
use super::drift::{DriftSnapshot, DriftWorkflows};
use super::operations::{Operations, now_ms};
use super::tenant::TenantStatus;
use crate::backends::store::{OperationRecord, OperationState};

/// One host's status.
#[derive(Debug)]
pub struct HostStatus {
    pub agent: AgentReport,
    pub tenant: TenantStatus,
    /// The running operation, else the newest finished one; `None`: no
    /// operation ever ran here.
    pub last_operation: Option<OperationRecord>,
    pub drift: DriftSnapshot,
    /// The state of each finding's re-apply operation, in `drift.findings`'
    /// order (`None`: no re-apply started, or its record is gone).
    pub reapply_states: Vec<Option<OperationState>>,
    pub read_ms: i64,
}

pub struct StatusWorkflows {
    agent: Arc<AgentWorkflows>,
    operations: Arc<Operations>,
    drift: Arc<DriftWorkflows>,
}

impl StatusWorkflows {
    pub fn new(
        agent: Arc<AgentWorkflows>,
        operations: Arc<Operations>,
        drift: Arc<DriftWorkflows>,
    ) -> Self {
        Self {
            agent,
            operations,
            drift,
        }
    }

    /// The host's status now. Errors as GetAgent's (UNAVAILABLE when the
    /// host backend fails to answer), or the store's on the first read of
    /// the newest operation.
    pub async fn status(&self) -> Result<HostStatus, Error> {
        let agent = self.agent.get_agent().await?;
        let tenant = self.agent.tenant_status().await?;
        let last_operation = self.operations.latest().await?;
        let mut drift = self.drift.snapshot();
        let mut reapply_states = Vec::with_capacity(drift.findings.len());
        for finding in &mut drift.findings {
            let state = match &finding.reapply_operation_id {
                // Finished records are cached: no store read once seen.
                Some(id) => self.operations.get(id).await.ok().map(|op| op.state),
                None => None,
            };
            // A re-apply that succeeded put back what drifted (the version
            // itself stays: the watch re-applied provd's settings on it).
            if state == Some(OperationState::Succeeded) {
                finding.present = false;
            }
            reapply_states.push(state);
        }
        Ok(HostStatus {
            agent,
            tenant,
            last_operation,
            drift,
            reapply_states,
            read_ms: now_ms(),
        })
    }
}
