//! StatusService (`status.proto`).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::model::OperationState;
use crate::transport::convert;
use crate::workflows::App;
use crate::workflows::drift::{DriftFinding, DriftKind, DriftSnapshot};
use crate::workflows::status::HostStatus;
use provd_proto::v1;

#[derive(Clone)]
pub struct StatusApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl v1::status_service_server::StatusService for StatusApi {
    async fn get_host_status(
        &self,
        _request: Request<v1::GetHostStatusRequest>,
    ) -> Result<Response<v1::GetHostStatusResponse>, Status> {
        let status = self.app.status.status().await.map_err(Status::from)?;
        let tenant = self.app.agent.tenant_name();
        Ok(Response::new(host_status(tenant, status)))
    }
}

fn host_status(tenant: String, s: HostStatus) -> v1::GetHostStatusResponse {
    // GetAgent's conversion, so both answers say the same of the agent.
    let agent = convert::agent_report(s.agent, convert::tenant_session(tenant, s.tenant));
    v1::GetHostStatusResponse {
        host_available: agent.host_available,
        host_unavailable_reason: agent.host_unavailable_reason,
        agent_installed: agent.installed,
        agent_version: agent.version,
        services: agent.services,
        tenant: agent.tenant,
        last_operation: s.last_operation.as_ref().map(convert::operation),
        drift: Some(drift(&s.drift, &s.reapply_states)),
        read_time: Some(convert::timestamp(s.read_ms)),
    }
}

fn drift(d: &DriftSnapshot, reapply_states: &[Option<OperationState>]) -> v1::DriftStatus {
    let watch = match (&d.schedule, d.last_round_ms) {
        (None, _) => v1::DriftWatch::Off,
        (Some(_), None) => v1::DriftWatch::Pending,
        (Some(_), Some(_)) => v1::DriftWatch::On,
    };
    v1::DriftStatus {
        watch: watch.into(),
        verify_interval: d.schedule.map(|s| pbjson_types::Duration {
            seconds: i64::try_from(s.interval.as_secs()).unwrap_or(i64::MAX),
            // Below 1e9, so it fits.
            nanos: i32::try_from(s.interval.subsec_nanos()).unwrap_or(0),
        }),
        reapply: d.schedule.is_some_and(|s| s.reapply),
        last_round_time: d.last_round_ms.map(convert::timestamp),
        findings: d
            .findings
            .iter()
            .zip(reapply_states.iter().chain(std::iter::repeat(&None)))
            .map(|(f, state)| finding(f, *state))
            .collect(),
    }
}

fn finding(f: &DriftFinding, reapply_state: Option<OperationState>) -> v1::DriftFinding {
    v1::DriftFinding {
        what: match f.kind {
            DriftKind::AgentVersion => v1::DriftKind::AgentVersion,
            DriftKind::AgentSettings => v1::DriftKind::AgentSettings,
            DriftKind::HostPrerequisites => v1::DriftKind::HostPrerequisites,
        }
        .into(),
        detail: f.detail.clone(),
        observed_time: Some(convert::timestamp(f.observed_ms)),
        present: f.present,
        reapply_operation_id: f.reapply_operation_id.clone().unwrap_or_default(),
        reapply_state: reapply_state
            .map_or(v1::OperationState::Unspecified, convert::state_to_proto)
            .into(),
    }
}
