//! Microsoft Entra cloud sync configurations as Microsoft Graph describes
//! them: the synchronization job of a service principal made from the cloud
//! sync application template, its status, its secrets and its scope.
//!
//! Shapes: synchronizationJob, synchronizationStatus, synchronizationQuarantine,
//! synchronizationTaskExecution
//! (<https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationstatus?view=graph-rest-beta>),
//! the secrets and scoping of
//! <https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-inbound-synch-ms-graph>.
//! Graph's words that this model does not know are kept (`Other`), never
//! guessed into a known one.

use std::time::SystemTime;

/// The application template every cloud sync configuration is made from
/// (how-to-inbound-synch-ms-graph, "Create sync job").
pub const CLOUD_SYNC_APP_TEMPLATE: &str = "1a4721b3-e57f-4451-ae87-ef078703ec94";

/// The service principal of one configuration (one AD domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncApp {
    pub service_principal_id: String,
    pub app_id: String,
    pub display_name: String,
}

/// The job templates the how-to names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JobTemplate {
    /// `AD2AADProvisioning`: users and groups.
    Provisioning,
    /// `AD2AADPasswordHash`: password hash sync.
    PasswordHash,
}

impl JobTemplate {
    pub fn id(self) -> &'static str {
        match self {
            Self::Provisioning => "AD2AADProvisioning",
            Self::PasswordHash => "AD2AADPasswordHash",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        [Self::Provisioning, Self::PasswordHash]
            .into_iter()
            .find(|t| t.id().eq_ignore_ascii_case(id))
    }
}

/// `synchronizationSchedule.state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Active,
    Disabled,
    Paused,
    Other(String),
}

/// `synchronizationStatus.code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobCode {
    NotConfigured,
    NotRun,
    Active,
    Paused,
    Quarantine,
    Other(String),
}

/// `synchronizationTaskExecution.state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Succeeded,
    Failed,
    EntryLevelErrors,
    Other(String),
}

/// One run of the job (`synchronizationTaskExecution`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRun {
    pub state: RunState,
    pub imported: i64,
    pub exported: i64,
    pub escrowed: i64,
    pub began: Option<SystemTime>,
    pub ended: Option<SystemTime>,
    /// `error.code` and `error.message`; empty when the run had none.
    pub error_code: String,
    pub error_message: String,
}

/// `synchronizationQuarantine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// e.g. `EncounteredQuarantineException`, `TooManyDeletes`.
    pub reason: String,
    /// e.g. `HybridIdentityServiceNoActiveAgents`.
    pub error_code: String,
    pub error_message: String,
    pub current_began: Option<SystemTime>,
    pub next_attempt: Option<SystemTime>,
    pub series_count: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub code: JobCode,
    pub quarantine: Option<Quarantine>,
    pub last_execution: Option<SyncRun>,
    pub last_successful_execution: Option<SyncRun>,
    pub last_execution_with_exports: Option<SyncRun>,
    /// `synchronizedEntryCountByType`, e.g. `("user", 25)`.
    pub synchronized_by_type: Vec<(String, i64)>,
    pub escrows_pruned: bool,
    pub successive_failures: i64,
}

/// A synchronization job of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncJob {
    pub id: String,
    pub template_id: String,
    pub schedule: Schedule,
    pub status: JobStatus,
}

impl SyncJob {
    pub fn template(&self) -> Option<JobTemplate> {
        JobTemplate::from_id(&self.template_id)
    }
}

/// Who is synchronized: the scoping filter of the job's rule
/// (`containerFilter` or `groupFilter`, mutually exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SyncScope {
    #[default]
    AllUsers,
    /// OU distinguished names.
    OrganizationalUnits(Vec<String>),
    /// Security group distinguished names (first-level members only).
    SecurityGroups(Vec<String>),
}

/// What the job's schema says about scope and password hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSchema {
    pub scope: SyncScope,
    /// The `CredentialData` ← `[PasswordHash]` mapping is present.
    pub password_hash_mapping: bool,
}

/// The three secrets of a configuration, as typed parts. `Debug` prints no
/// value: the values are set with one PUT and never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct SyncSecrets {
    /// `Domain`: the AD domain.
    pub domain: String,
    /// `AppKey`: `AD2AADPasswordHash` when true, else `AD2AADProvisioning`.
    pub password_hash_sync: bool,
    /// `SyncNotificationSettings.Recipients`; `None` = no emails.
    pub notification_email: Option<String>,
    /// `DeleteThresholdValue`; `None` = prevention off.
    pub delete_threshold: Option<u32>,
}

/// The secret keys, in the order every PUT carries them.
pub const SECRET_KEYS: [&str; 3] = ["Domain", "AppKey", "SyncNotificationSettings"];

impl std::fmt::Debug for SyncSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncSecrets")
            .field("keys", &SECRET_KEYS)
            .finish_non_exhaustive()
    }
}

/// What a secrets read gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsRead {
    /// The keys present.
    pub keys: Vec<String>,
    /// The values, when Graph returned all three in the documented shape;
    /// `None` when masked (`*`) or missing.
    pub values: Option<SyncSecrets>,
}

/// `synchronizationJobRestartCriteria.resetScope` flags
/// (<https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationjobrestartcriteria>).
/// `None` and `ConnectorDataStore` are documented "DO NOT USE": not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResetScope {
    Escrows,
    Watermark,
    QuarantineState,
    Full,
    ForceDeletes,
}

impl ResetScope {
    pub fn word(self) -> &'static str {
        match self {
            Self::Escrows => "Escrows",
            Self::Watermark => "Watermark",
            Self::QuarantineState => "QuarantineState",
            Self::Full => "Full",
            Self::ForceDeletes => "ForceDeletes",
        }
    }
}

/// An agent of an agent group, as the tenant lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAgent {
    pub id: String,
    pub machine_name: String,
    pub active: bool,
}
