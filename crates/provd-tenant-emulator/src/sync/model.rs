//! LAB STAND-IN: the synchronization resources the emulator keeps, as data
//! whose serde shape is Graph's JSON (beta), so a handler answers with the
//! value itself:
//! - synchronizationJob, synchronizationSchedule, synchronizationStatus:
//!   <https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationjob?view=graph-rest-beta>,
//!   <https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationstatus?view=graph-rest-beta>
//! - synchronizationTaskExecution (a run):
//!   <https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationtaskexecution?view=graph-rest-beta>
//! - synchronizationQuarantine:
//!   <https://learn.microsoft.com/graph/api/resources/synchronization-synchronizationquarantine?view=graph-rest-beta>
//!
//! Fields marked `#[serde(skip)]` are the emulator's own bookkeeping.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

/// `steadyState*AchievedTime` of a job that never reached steady state
/// (the how-to's example shows this value).
pub const NEVER: &str = "0001-01-01T00:00:00Z";

/// What `schedule.interval` says: Microsoft's cloud sync cycle ("every 2
/// minutes"); the emulator's ticker runs every `--sync-interval` instead.
const MICROSOFT_INTERVAL: &str = "PT2M";

/// An application object made by `instantiate`.
#[derive(Debug, Clone)]
pub struct Application {
    pub object_id: String,
    pub app_id: String,
    pub display_name: String,
}

/// A service principal made by `instantiate`, with its synchronization.
#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    pub application_template_id: String,
    /// `synchronization/secrets`, in the order last PUT.
    pub secrets: Vec<Secret>,
    pub jobs: Vec<Job>,
}

/// One `synchronizationSecretKeyStringValuePair`.
#[derive(Debug, Clone, Serialize)]
pub struct Secret {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub template_id: String,
    pub schedule: Schedule,
    pub status: Status,
    /// The whole synchronizationSchema, kept as sent (unknown fields too).
    #[serde(skip)]
    pub schema: Value,
    /// Users already exported: the watermark a `Watermark` restart resets.
    #[serde(skip)]
    pub exported: u64,
    /// The quarantine series this job is in, until a successful run.
    #[serde(skip)]
    pub series: Option<Series>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub began: String,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub expiration: Option<String>,
    pub interval: String,
    pub state: ScheduleState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScheduleState {
    Disabled,
    Active,
    Paused,
}

/// `status.code`. Microsoft's `NotConfigured` is never reported here: a
/// job is created `Paused`, as the how-to's example shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Code {
    NotRun,
    Active,
    Paused,
    Quarantine,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub code: Code,
    pub count_successive_complete_failures: u32,
    pub escrows_pruned: bool,
    pub quarantine: Option<Quarantine>,
    pub last_execution: Option<Run>,
    pub last_successful_execution: Option<Run>,
    pub last_successful_execution_with_exports: Option<Run>,
    pub steady_state_first_achieved_time: String,
    pub steady_state_last_achieved_time: String,
    pub synchronized_entry_count_by_type: Vec<EntryCount>,
    pub troubleshooting_url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Quarantine {
    pub current_began: String,
    pub next_attempt: String,
    pub reason: String,
    pub series_began: String,
    pub series_count: u32,
    pub error: RunError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    pub code: String,
    pub message: String,
    pub tenant_actionable: bool,
}

/// `synchronizedEntryCountByType` entry; the key `user` is [I].
#[derive(Debug, Clone, Serialize)]
pub struct EntryCount {
    pub key: String,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum RunState {
    #[default]
    Succeeded,
    Failed,
}

/// One synchronizationTaskExecution. Counts not modelled stay 0.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub activity_identifier: String,
    pub count_entitled: u64,
    pub count_entitled_for_provisioning: u64,
    pub count_escrowed: u64,
    pub count_escrowed_raw: u64,
    pub count_exported: u64,
    pub count_exports: u64,
    pub count_imported: u64,
    pub count_imported_deltas: u64,
    pub count_imported_reference_deltas: u64,
    pub state: RunState,
    pub error: Option<RunError>,
    pub time_began: String,
    pub time_ended: String,
}

impl Job {
    /// A new job as `POST …/jobs` makes it: schedule Disabled, code Paused.
    pub fn new(template_id: &str, schema: Value) -> Job {
        Job {
            id: format!("{template_id}.{}", uuid::Uuid::new_v4().simple()),
            template_id: template_id.to_owned(),
            schedule: Schedule {
                expiration: None,
                interval: MICROSOFT_INTERVAL.to_owned(),
                state: ScheduleState::Disabled,
            },
            status: Status {
                code: Code::Paused,
                count_successive_complete_failures: 0,
                escrows_pruned: false,
                quarantine: None,
                last_execution: None,
                last_successful_execution: None,
                last_successful_execution_with_exports: None,
                steady_state_first_achieved_time: NEVER.to_owned(),
                steady_state_last_achieved_time: NEVER.to_owned(),
                synchronized_entry_count_by_type: Vec::new(),
                troubleshooting_url: None,
            },
            schema,
            exported: 0,
            series: None,
        }
    }

    /// The job as Graph answers it.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Run {
    /// A run that began and ended at `now` (the emulator's runs are instant).
    pub fn at(now: &str, state: RunState) -> Run {
        Run {
            activity_identifier: uuid::Uuid::new_v4().to_string(),
            state,
            time_began: now.to_owned(),
            time_ended: now.to_owned(),
            ..Run::default()
        }
    }
}

/// RFC 3339 in whole seconds, as Graph's examples show times.
pub fn rfc3339(time: OffsetDateTime) -> String {
    time.replace_nanosecond(0)
        .unwrap_or(time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
