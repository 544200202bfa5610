//! Conversions between generated `provd.v1` messages and the plain Rust
//! types of the domain (`model`, workflow reports). Parsing only: no decisions.

use pbjson_types::Timestamp;

use crate::model::{
    self, EventKind, EventRecord, OperationKind, OperationRecord, OperationState, ServiceState,
    StartType,
};
use crate::workflows::agent::AgentReport;
use crate::workflows::tenant::TenantStatus;
use provd_proto::v1;
use secrecy::SecretString;
use std::time::{Duration, SystemTime};

use crate::model::{BindCredential, BindSecret, KerberosSource};

pub fn timestamp(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

pub fn kind_to_proto(kind: OperationKind) -> v1::OperationKind {
    match kind {
        OperationKind::Install => v1::OperationKind::Install,
        OperationKind::CreateGmsa => v1::OperationKind::CreateGmsa,
        OperationKind::UseCustomGmsa => v1::OperationKind::UseCustomGmsa,
        OperationKind::GrantPermissions => v1::OperationKind::GrantPermissions,
        OperationKind::AddDirectory => v1::OperationKind::AddDirectory,
        OperationKind::RemoveDirectory => v1::OperationKind::RemoveDirectory,
        OperationKind::SetDcPriority => v1::OperationKind::SetDcPriority,
        OperationKind::SetPasswordWriteback => v1::OperationKind::SetPasswordWriteback,
        OperationKind::Uninstall => v1::OperationKind::Uninstall,
        OperationKind::SignIn => v1::OperationKind::SignIn,
        OperationKind::ApplyConfiguration => v1::OperationKind::ApplyConfiguration,
        OperationKind::SetCloudSync => v1::OperationKind::SetCloudSync,
        OperationKind::ControlCloudSync => v1::OperationKind::ControlCloudSync,
        OperationKind::RemediateHost => v1::OperationKind::RemediateHost,
        OperationKind::Decommission => v1::OperationKind::Decommission,
        OperationKind::RepairAgent => v1::OperationKind::RepairAgent,
        OperationKind::VerboseTrace => v1::OperationKind::VerboseTrace,
    }
}

/// `None` for UNSPECIFIED (no filter) and for values this build does not know.
pub fn kind_from_proto(value: i32) -> Option<OperationKind> {
    match v1::OperationKind::try_from(value).ok()? {
        v1::OperationKind::Unspecified => None,
        v1::OperationKind::Install => Some(OperationKind::Install),
        v1::OperationKind::CreateGmsa => Some(OperationKind::CreateGmsa),
        v1::OperationKind::UseCustomGmsa => Some(OperationKind::UseCustomGmsa),
        v1::OperationKind::GrantPermissions => Some(OperationKind::GrantPermissions),
        v1::OperationKind::AddDirectory => Some(OperationKind::AddDirectory),
        v1::OperationKind::RemoveDirectory => Some(OperationKind::RemoveDirectory),
        v1::OperationKind::SetDcPriority => Some(OperationKind::SetDcPriority),
        v1::OperationKind::SetPasswordWriteback => Some(OperationKind::SetPasswordWriteback),
        v1::OperationKind::Uninstall => Some(OperationKind::Uninstall),
        v1::OperationKind::SignIn => Some(OperationKind::SignIn),
        v1::OperationKind::ApplyConfiguration => Some(OperationKind::ApplyConfiguration),
        v1::OperationKind::SetCloudSync => Some(OperationKind::SetCloudSync),
        v1::OperationKind::ControlCloudSync => Some(OperationKind::ControlCloudSync),
        v1::OperationKind::RemediateHost => Some(OperationKind::RemediateHost),
        v1::OperationKind::Decommission => Some(OperationKind::Decommission),
        v1::OperationKind::RepairAgent => Some(OperationKind::RepairAgent),
        v1::OperationKind::VerboseTrace => Some(OperationKind::VerboseTrace),
    }
}

pub fn state_to_proto(state: OperationState) -> v1::OperationState {
    match state {
        OperationState::Pending => v1::OperationState::Pending,
        OperationState::Running => v1::OperationState::Running,
        OperationState::Succeeded => v1::OperationState::Succeeded,
        OperationState::Failed => v1::OperationState::Failed,
        OperationState::Cancelled => v1::OperationState::Cancelled,
        OperationState::Interrupted => v1::OperationState::Interrupted,
    }
}

pub fn state_from_proto(value: i32) -> Option<OperationState> {
    match v1::OperationState::try_from(value).ok()? {
        v1::OperationState::Unspecified => None,
        v1::OperationState::Pending => Some(OperationState::Pending),
        v1::OperationState::Running => Some(OperationState::Running),
        v1::OperationState::Succeeded => Some(OperationState::Succeeded),
        v1::OperationState::Failed => Some(OperationState::Failed),
        v1::OperationState::Cancelled => Some(OperationState::Cancelled),
        v1::OperationState::Interrupted => Some(OperationState::Interrupted),
    }
}

fn event_kind_to_proto(kind: EventKind) -> v1::EventKind {
    match kind {
        EventKind::StepStarted => v1::EventKind::StepStarted,
        EventKind::Progress => v1::EventKind::Progress,
        EventKind::StepSucceeded => v1::EventKind::StepSucceeded,
        EventKind::StepSkipped => v1::EventKind::StepSkipped,
        EventKind::Warning => v1::EventKind::Warning,
        EventKind::ActionRequired => v1::EventKind::ActionRequired,
        EventKind::StateChanged => v1::EventKind::StateChanged,
    }
}

pub fn operation(record: &OperationRecord) -> v1::Operation {
    v1::Operation {
        id: record.id.clone(),
        kind: kind_to_proto(record.kind).into(),
        state: state_to_proto(record.state).into(),
        request_id: record.request_id.clone().unwrap_or_default(),
        description: record.description.clone(),
        create_time: Some(timestamp(record.create_time_ms)),
        update_time: Some(timestamp(record.update_time_ms)),
        end_time: record.end_time_ms.map(timestamp),
        error: record.error.as_ref().map(|e| v1::OperationError {
            code: e.code.clone(),
            message: e.message.clone(),
            step: e.step.clone(),
            reason: e.reason.clone().unwrap_or_default(),
        }),
        cancel_requested: record.cancel_requested,
        event_count: record.event_count,
        initiator: record.initiator.clone(),
        result: record
            .result
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

pub fn event(record: &EventRecord) -> v1::OperationEvent {
    v1::OperationEvent {
        sequence: record.sequence,
        time: Some(timestamp(record.time_ms)),
        step: record.step.clone(),
        kind: event_kind_to_proto(record.kind).into(),
        message: record.message.clone(),
        percent: record.percent,
        attributes: record
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

pub fn cloud_from_proto(value: i32) -> Option<model::Cloud> {
    match v1::CloudEnvironment::try_from(value).ok()? {
        v1::CloudEnvironment::Unspecified => None,
        v1::CloudEnvironment::AzurePublic => Some(model::Cloud::AzurePublic),
        v1::CloudEnvironment::AzureUsGovernment => Some(model::Cloud::AzureUsGovernment),
    }
}

fn service_state(state: ServiceState) -> v1::ServiceState {
    match state {
        ServiceState::NotInstalled => v1::ServiceState::NotInstalled,
        ServiceState::Stopped => v1::ServiceState::Stopped,
        ServiceState::StartPending => v1::ServiceState::StartPending,
        ServiceState::StopPending => v1::ServiceState::StopPending,
        ServiceState::Running => v1::ServiceState::Running,
        ServiceState::Paused => v1::ServiceState::Paused,
    }
}

fn start_type(start: Option<StartType>) -> v1::StartType {
    match start {
        None => v1::StartType::Unspecified,
        Some(StartType::Automatic) => v1::StartType::Automatic,
        Some(StartType::AutomaticDelayed) => v1::StartType::AutomaticDelayed,
        Some(StartType::Manual) => v1::StartType::Manual,
        Some(StartType::Disabled) => v1::StartType::Disabled,
    }
}

pub fn tenant_session(tenant: String, status: TenantStatus) -> v1::TenantSession {
    let registration = status.registration.unwrap_or_default();
    v1::TenantSession {
        tenant,
        signed_in: status.signed_in,
        token_expires_in_secs: status.token_expires_in_secs,
        agent_id: registration.agent_id,
        machine_name: registration.machine_name,
        registered_time: (registration.registered_at_ms > 0)
            .then(|| timestamp(registration.registered_at_ms)),
    }
}

pub fn agent_report(report: AgentReport, tenant: v1::TenantSession) -> v1::GetAgentResponse {
    match report {
        AgentReport::Unavailable { reason } => v1::GetAgentResponse {
            host_available: false,
            host_unavailable_reason: reason,
            tenant: Some(tenant),
            ..Default::default()
        },
        AgentReport::Available(status) => v1::GetAgentResponse {
            host_available: true,
            host_unavailable_reason: String::new(),
            installed: status.installed_version.is_some(),
            version: status.installed_version.unwrap_or_default(),
            services: status
                .services
                .into_iter()
                .map(|s| v1::AgentServiceStatus {
                    name: s.name,
                    display_name: s.display_name,
                    state: service_state(s.state).into(),
                    start_type: start_type(s.start_type).into(),
                    account: s.account,
                })
                .collect(),
            tenant: Some(tenant),
        },
    }
}

/// The largest `seconds` google.protobuf.Duration allows (10,000 years).
const MAX_DURATION_SECS: i64 = 315_576_000_000;

/// A request's optional `google.protobuf.Duration`. One its own definition
/// refuses (nanos outside 0..1e9, seconds beyond 10,000 years) or a
/// negative one is an INVALID_ARGUMENT naming `field` (ranges are the
/// workflow's to check).
pub fn duration_from_proto(
    field: &str,
    value: Option<pbjson_types::Duration>,
) -> Result<Option<std::time::Duration>, crate::workflows::Error> {
    let Some(d) = value else { return Ok(None) };
    let invalid = |why: &str| crate::workflows::Error::invalid(field, why);
    if d.seconds < 0 || d.nanos < 0 {
        return Err(invalid("must not be negative"));
    }
    let (Ok(seconds), Ok(nanos)) = (u64::try_from(d.seconds), u32::try_from(d.nanos)) else {
        return Err(invalid("must not be negative"));
    };
    if d.seconds > MAX_DURATION_SECS {
        return Err(invalid(
            "seconds must be at most 315576000000, as google.protobuf.Duration says",
        ));
    }
    if nanos >= 1_000_000_000 {
        return Err(invalid(
            "nanos must be below 1000000000, as google.protobuf.Duration says",
        ));
    }
    Ok(Some(std::time::Duration::new(seconds, nanos)))
}

/// Moves the secret out of the request message (whose Drop zeroizes what
/// is left) into a secret type.
/// A plan's changes (PlanCloudSync's, PlanDecommission's).
pub fn planned(changes: Vec<crate::workflows::apply::Change>) -> Vec<v1::PlannedChange> {
    changes
        .into_iter()
        .map(|c| v1::PlannedChange {
            step: c.step,
            action: c.action.to_owned(),
            detail: c.detail,
        })
        .collect()
}

/// A request's `credential` (every request names it so). A Kerberos
/// credential names where its keys are and carries no password: a password
/// next to it, or no source, is refused here (the rest of the checks are the
/// workflows' `validate::credential`).
pub fn bind_credential(
    credential: Option<v1::Credential>,
) -> Result<Option<BindCredential>, crate::workflows::Error> {
    use v1::kerberos_credential::Source;
    let Some(mut c) = credential else {
        return Ok(None);
    };
    let username = std::mem::take(&mut c.username);
    let secret = match c.kerberos.take() {
        None => BindSecret::Password(SecretString::from(std::mem::take(&mut c.password))),
        Some(_) if !c.password.is_empty() => {
            return Err(crate::workflows::Error::invalid(
                "credential.password",
                "must be empty when credential.kerberos is set",
            ));
        }
        Some(k) => match k.source {
            Some(Source::KeytabPath(path)) => {
                BindSecret::Kerberos(KerberosSource::Keytab(path.into()))
            }
            Some(Source::Ccache(name)) => BindSecret::Kerberos(KerberosSource::Ccache(name)),
            None => {
                return Err(crate::workflows::Error::invalid(
                    "credential.kerberos",
                    "set keytab_path or ccache",
                ));
            }
        },
    };
    Ok(Some(BindCredential { username, secret }))
}

pub fn duration(d: Duration) -> pbjson_types::Duration {
    pbjson_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub fn system_time(t: SystemTime) -> pbjson_types::Timestamp {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    timestamp(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_google_protobuf_duration_defines_them() {
        let d = |seconds, nanos| Some(pbjson_types::Duration { seconds, nanos });
        assert_eq!(duration_from_proto("t", None).unwrap(), None);
        assert_eq!(
            duration_from_proto("t", d(1, 500_000_000)).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert!(duration_from_proto("t", d(MAX_DURATION_SECS, 999_999_999)).is_ok());
        for (seconds, nanos) in [
            (1, 1_000_000_000),
            (0, i32::MAX),
            (-1, 0),
            (1, -1),
            (MAX_DURATION_SECS + 1, 0),
            (i64::MAX, 0),
        ] {
            let err = duration_from_proto("t", d(seconds, nanos)).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid argument: t: "),
                "{err}"
            );
        }
    }
}
