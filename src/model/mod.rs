//! The domain's own types, owned here and nowhere else: operations and their
//! events, the host's services, directory credentials and probe reports, a
//! gMSA's managed password, cloud sync configurations, the audit trail's calls.
//! Backends implement against them, workflows decide with them, transport
//! converts them to and from the wire.
//!
//! Architecture invariant: this module depends on no other provd module and
//! on no protocol crate (tonic, ldap3, reqwest).

mod audit;
mod cloud_sync;
mod directory;
mod generalized_time;
mod host;
mod managed_password;
mod operation;

pub use audit::{AuditCall, AuditCaller, AuditEntry, AuditEvent, AuditSuppressed};
pub use cloud_sync::{
    CLOUD_SYNC_APP_TEMPLATE, GroupAgent, JobCode, JobSchema, JobStatus, JobTemplate, Quarantine,
    ResetScope, RunState, SECRET_KEYS, Schedule, SecretsRead, SyncApp, SyncJob, SyncRun, SyncScope,
    SyncSecrets,
};
pub use directory::{BindCredential, BindSecret, KerberosSource, ProbeReport};
pub use generalized_time::parse_generalized_time;
pub use host::{
    AGENT_KEY, ALL_SERVICES_SID, AgentProduct, AgentProxy, AgentSettings, AgentSettingsRead,
    AgentStatus, Cloud, DiagnosticPart, EXE_CONFIG, FixOutcome, HostFix, HostPrerequisites,
    LDAP_TIMEOUT_VALUE, ProductRole, ProductUninstall, REFERRAL_CHASING_VALUE, RegReading,
    RegValue, ServiceLogonRight, ServiceState, ServiceStatus, StartType,
    USER_PASSWORD_LENGTH_VALUE, computer_account,
};
pub use managed_password::{GmsaPassword, ManagedPassword, ManagedPasswordError, NtHash};
pub use operation::{
    EventKind, EventRecord, OperationErrorRecord, OperationKind, OperationRecord, OperationState,
};
