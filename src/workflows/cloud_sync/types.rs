//! What CloudSyncService takes and gives, as plain Rust: requests as the
//! wire carries them (validated in `spec.rs`), the validated spec, and the
//! report Get answers with.

use crate::model::{GroupAgent, ResetScope, SyncApp, SyncJob, SyncScope};

/// A configuration as a client sends it (unvalidated). `Debug` hides the
/// notification email (a secret's value).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloudSyncInput {
    pub enabled: bool,
    pub password_hash_sync: bool,
    pub organizational_units: Vec<String>,
    pub security_groups: Vec<String>,
    /// `None`: Microsoft's defaults (on, 500).
    pub accidental_deletes: Option<DeletePreventionInput>,
    /// Empty: no notifications. A secret's value: never logged.
    pub notification_email: String,
}

impl std::fmt::Debug for CloudSyncInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudSyncInput")
            .field("enabled", &self.enabled)
            .field("password_hash_sync", &self.password_hash_sync)
            .field("organizational_units", &self.organizational_units)
            .field("security_groups", &self.security_groups)
            .field("accidental_deletes", &self.accidental_deletes)
            .field(
                "notification_email_set",
                &!self.notification_email.is_empty(),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletePreventionInput {
    pub disabled: bool,
    /// 0 means 500.
    pub threshold: u32,
}

/// A validated configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct CloudSyncSpec {
    pub enabled: bool,
    pub password_hash_sync: bool,
    pub scope: SyncScope,
    /// `None`: accidental delete prevention off.
    pub delete_threshold: Option<u32>,
    /// `None`: no notifications.
    pub notification_email: Option<String>,
}

impl std::fmt::Debug for CloudSyncSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudSyncSpec")
            .field("enabled", &self.enabled)
            .field("password_hash_sync", &self.password_hash_sync)
            .field("scope", &self.scope)
            .field("delete_threshold", &self.delete_threshold)
            .field("notification_email_set", &self.notification_email.is_some())
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct SetCloudSyncRequest {
    pub domain: String,
    /// Required.
    pub spec: Option<CloudSyncInput>,
    pub request_id: String,
}

/// Start, pause or restart a domain's jobs.
#[derive(Debug, Clone)]
pub enum ControlAction {
    Start,
    /// `release`: provd stops managing the configuration.
    Pause {
        release: bool,
    },
    /// `None` entries are values the contract does not define (the
    /// transport passes them on; the workflow names them).
    Restart {
        scopes: Vec<Option<ResetScope>>,
    },
}

#[derive(Debug, Clone)]
pub struct ControlCloudSyncRequest {
    pub domain: String,
    pub action: ControlAction,
    pub request_id: String,
}

/// A job with what provd adds to it.
#[derive(Debug, Clone)]
pub struct JobView {
    pub job: SyncJob,
    /// Microsoft's remedy for the job's quarantine code, when provd knows one.
    pub remedy: Option<String>,
}

/// An agent of the domain's agent groups.
#[derive(Debug, Clone)]
pub struct AgentView {
    pub agent: GroupAgent,
    pub this_host: bool,
}

/// One domain's configuration as read.
#[derive(Debug, Clone, Default)]
pub struct DomainSync {
    pub domain: String,
    pub configured: bool,
    pub managed: bool,
    pub app: Option<SyncApp>,
    /// What the tenant holds; `notification_email` is always `None` here.
    pub observed: Option<CloudSyncSpec>,
    pub notification_email_set: bool,
    pub secret_keys: Vec<String>,
    pub jobs: Vec<JobView>,
    pub agents: Vec<AgentView>,
    pub read_error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CloudSyncReport {
    pub tenant_readable: bool,
    pub tenant_message: String,
    pub tenant_sync_enabled: bool,
    pub domains: Vec<DomainSync>,
}
