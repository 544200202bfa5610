//! Operations and their events as the domain records them: what the store
//! persists, the engine updates and the transport converts.

use serde::{Deserialize, Serialize};

/// Kinds mirror `provd.v1.OperationKind` without depending on generated code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    Install,
    CreateGmsa,
    UseCustomGmsa,
    GrantPermissions,
    AddDirectory,
    RemoveDirectory,
    SetDcPriority,
    SetPasswordWriteback,
    Uninstall,
    SignIn,
    ApplyConfiguration,
    SetCloudSync,
    ControlCloudSync,
    RemediateHost,
    Decommission,
    RepairAgent,
    VerboseTrace,
}

impl OperationKind {
    /// The contract's name (`provd.v1.OperationKind` without its prefix),
    /// as logs, spans, metrics and the event log write it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Install => "INSTALL",
            Self::CreateGmsa => "CREATE_GMSA",
            Self::UseCustomGmsa => "USE_CUSTOM_GMSA",
            Self::GrantPermissions => "GRANT_PERMISSIONS",
            Self::AddDirectory => "ADD_DIRECTORY",
            Self::RemoveDirectory => "REMOVE_DIRECTORY",
            Self::SetDcPriority => "SET_DC_PRIORITY",
            Self::SetPasswordWriteback => "SET_PASSWORD_WRITEBACK",
            Self::Uninstall => "UNINSTALL",
            Self::SignIn => "SIGN_IN",
            Self::ApplyConfiguration => "APPLY_CONFIGURATION",
            Self::SetCloudSync => "SET_CLOUD_SYNC",
            Self::RemediateHost => "REMEDIATE_HOST",
            Self::ControlCloudSync => "CONTROL_CLOUD_SYNC",
            Self::Decommission => "DECOMMISSION",
            Self::RepairAgent => "REPAIR_AGENT",
            Self::VerboseTrace => "VERBOSE_TRACE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl OperationState {
    /// The contract's name (`provd.v1.OperationState` without its prefix).
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::Interrupted => "INTERRUPTED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Interrupted
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationErrorRecord {
    /// Canonical gRPC code name, e.g. "FAILED_PRECONDITION".
    pub code: String,
    pub message: String,
    pub step: String,
    /// For FAILED_PRECONDITION, the stable reason string (e.g.
    /// "DEVICE_CODE_EXPIRED"); absent in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Times are milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub id: String,
    pub kind: OperationKind,
    pub state: OperationState,
    pub request_id: Option<String>,
    /// With `request_id`: the digest of the request that started it, so a
    /// different request reusing the id is refused. `None` in records
    /// written before provd kept it (any request then matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_fingerprint: Option<String>,
    pub description: String,
    pub initiator: String,
    pub create_time_ms: i64,
    pub update_time_ms: i64,
    pub end_time_ms: Option<i64>,
    pub error: Option<OperationErrorRecord>,
    pub cancel_requested: bool,
    pub event_count: u64,
    pub result: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    StepStarted,
    Progress,
    StepSucceeded,
    StepSkipped,
    Warning,
    ActionRequired,
    StateChanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// 1-based, dense within one operation.
    pub sequence: u64,
    pub time_ms: i64,
    pub step: String,
    pub kind: EventKind,
    pub message: String,
    pub percent: u32,
    pub attributes: std::collections::BTreeMap<String, String>,
}
