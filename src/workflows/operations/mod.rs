//! The durable operations engine.
//!
//! Every mutating workflow runs as an operation: a record in the store plus
//! an append-only list of events. The engine owns the daemon's single writer
//! slot (at most one mutating operation at a time), request-id idempotency,
//! cooperative cancellation, live fan-out of events to watchers, and the
//! start-up recovery that turns operations a crashed run left behind into
//! INTERRUPTED.
//!
//! Every event is persisted before it is broadcast, and watchers subscribe
//! before they replay from the store, so a watcher never misses an event;
//! duplicates are dropped by sequence number.
//!
//! `progress` is the handle a running workflow reports through (events,
//! steps and their spans, cancellation points); `watch` the reads (get,
//! list, watch) and cancel; `recover` the start-up recovery. Each terminal
//! record, once stored, goes to the operation mirrors (`ended`).

mod fingerprint;
mod progress;
mod recover;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use tokio::sync::{Mutex, broadcast};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::domain_controllers::shared_sessions;
use super::{Error, PreconditionReason};
use crate::backends::audit::OperationMirror;
use crate::backends::store::{
    EventKind, EventRecord, OperationKind, OperationRecord, OperationState, Store, StoreError,
};

pub use fingerprint::RequestFingerprint;
pub use progress::{NewEvent, Progress};
pub use watch::{ListFilter, WatchItem};

use progress::{InStep, Trace};

/// Live events buffered per operation for slow watchers; a watcher that falls
/// further behind catches up from the store.
const NOTICE_BUFFER: usize = 256;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What a workflow declares about the operation it is about to start.
#[derive(Debug, Clone)]
pub struct OperationSpec {
    pub kind: OperationKind,
    pub request_id: Option<String>,
    /// The request's non-secret fields, compared when `request_id` is reused.
    pub fingerprint: RequestFingerprint,
    pub description: String,
    pub initiator: String,
}

/// A short machine-readable outcome of a succeeded operation.
pub type Outcome = BTreeMap<String, String>;

#[derive(Debug, Clone)]
enum Notice {
    Event(EventRecord),
    /// The operation reached a terminal state (read it from the store).
    Finished,
}

/// The operation in the writer slot.
struct Live {
    id: String,
    kind: OperationKind,
    request_id: Option<String>,
    /// The authoritative record while the operation runs; every change is
    /// persisted while this lock is held, so store and memory never diverge.
    record: Mutex<OperationRecord>,
    notices: broadcast::Sender<Notice>,
    cancel: CancellationToken,
    current_step: StdMutex<String>,
    trace: StdMutex<Trace>,
}

pub struct Operations {
    store: Arc<dyn Store>,
    /// Where each outcome is copied (the Windows event log; none elsewhere).
    mirrors: Arc<[Arc<dyn OperationMirror>]>,
    running: StdMutex<Option<Arc<Live>>>,
    /// Finished operations recently read; they never change again.
    finished: StdMutex<HashMap<String, OperationRecord>>,
    /// The newest finished operation, once known (`latest`).
    newest: StdMutex<Newest>,
}

/// The newest finished operation: not read yet, or known (`None`: there
/// is none). Set by each live operation's end, which is always the newest:
/// one runs at a time, created after every other.
#[derive(Debug, Default)]
enum Newest {
    #[default]
    Unread,
    Known(Option<Box<OperationRecord>>),
}

/// A workflow's work, ready to run under a [`Progress`]: on its own as an
/// operation, or as one step of an apply.
pub type Job = Box<dyn FnOnce(Progress) -> JobFuture + Send>;
pub type JobFuture = std::pin::Pin<Box<dyn Future<Output = Result<Outcome, Error>> + Send>>;

pub fn job<F, Fut>(work: F) -> Job
where
    F: FnOnce(Progress) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Outcome, Error>> + Send + 'static,
{
    Box::new(move |progress| Box::pin(work(progress)))
}

/// A store write (it may fsync), on the blocking pool.
pub(crate) async fn blocking<T, F>(store: &Arc<dyn Store>, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| Error::internal("store task failed", e))?
        .map_err(Error::from)
}

/// A store read, on the calling task: a read transaction waits for no
/// writer and reads cached pages of a small file, which costs less than the
/// blocking pool's two thread hand-offs (a read RPC's latency at c=1 was
/// mostly those wake-ups).
pub(crate) fn read<T>(
    store: &Arc<dyn Store>,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError>,
) -> Result<T, Error> {
    f(store.as_ref()).map_err(Error::from)
}

impl Operations {
    fn live(&self, id: &str) -> Option<Arc<Live>> {
        let slot = self.running.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().filter(|l| l.id == id).cloned()
    }

    /// Starts `work` as a new operation, or returns the operation an earlier
    /// request with the same request id started.
    pub async fn start<F, Fut>(
        self: &Arc<Self>,
        spec: OperationSpec,
        work: F,
    ) -> Result<OperationRecord, Error>
    where
        F: FnOnce(Progress) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Outcome, Error>> + Send + 'static,
    {
        if let Some(existing) = self.find_by_request_id(&spec).await? {
            return Ok(existing);
        }
        let now = now_ms();
        let record = OperationRecord {
            id: uuid::Uuid::new_v4().hyphenated().to_string(),
            kind: spec.kind,
            state: OperationState::Pending,
            request_id: spec.request_id.clone(),
            request_fingerprint: spec.request_id.as_ref().map(|_| spec.fingerprint.hex()),
            description: spec.description.clone(),
            initiator: spec.initiator.clone(),
            create_time_ms: now,
            update_time_ms: now,
            end_time_ms: None,
            error: None,
            cancel_requested: false,
            event_count: 0,
            result: BTreeMap::new(),
        };
        let live = Arc::new(Live {
            id: record.id.clone(),
            kind: spec.kind,
            request_id: spec.request_id.clone(),
            record: Mutex::new(record.clone()),
            notices: broadcast::channel(NOTICE_BUFFER).0,
            cancel: CancellationToken::new(),
            current_step: StdMutex::new(String::new()),
            trace: StdMutex::new(Trace {
                operation: tracing::Span::none(),
                steps: Vec::new(),
            }),
        });
        let same_request = {
            let mut slot = self.running.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                // A retry racing its own first attempt: same operation.
                Some(running)
                    if running.request_id.is_some() && running.request_id == spec.request_id =>
                {
                    Some(running.clone())
                }
                Some(running) => {
                    return Err(Error::OperationRunning {
                        id: running.id.clone(),
                        kind: running.kind.name().to_owned(),
                    });
                }
                None => {
                    *slot = Some(live.clone());
                    None
                }
            }
        };
        if let Some(running) = same_request {
            let record = running.record.lock().await.clone();
            return self.check_same_request(record, &spec);
        }
        let created = blocking(&self.store, {
            let record = record.clone();
            move |s| s.create_operation(&record)
        })
        .await;
        if let Err(err) = created {
            self.release(&live.id);
            if let Error::Store(StoreError::RequestIdTaken { .. }) = err
                && let Some(existing) = self.find_by_request_id(&spec).await?
            {
                return Ok(existing);
            }
            return Err(err);
        }
        tracing::info!(operation = %record.id, kind = spec.kind.name(), initiator = %spec.initiator, "operation started");
        let started = std::time::Instant::now();
        let span_name = format!("operation {}", spec.kind.name());
        let span = tracing::info_span!(
            parent: &tracing::Span::current(),
            "operation",
            otel.name = span_name.as_str(),
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            operation.id = %record.id,
            operation.kind = spec.kind.name(),
            operation.outcome = tracing::field::Empty,
        );
        live.trace_lock().operation = span.clone();

        let engine = self.clone();
        let progress = Progress {
            engine: self.clone(),
            live: live.clone(),
        };
        tokio::spawn(async move {
            if let Err(err) = progress
                .transition(OperationState::Running, "RUNNING", None, BTreeMap::new())
                .await
            {
                tracing::error!(operation = %live.id, error = %err, "cannot record start");
            }
            let step_progress = progress.clone();
            let in_step = InStep {
                // One directory session per domain for the whole operation.
                work: Box::pin(shared_sessions(work(step_progress))),
                live: live.clone(),
            };
            // A separate task so a panicking workflow still ends its operation.
            let outcome = match tokio::spawn(in_step.instrument(tracing::Span::current())).await {
                Ok(result) => result,
                Err(join) => Err(Error::internal("workflow task failed", join)),
            };
            let (state, error, result) = match outcome {
                Ok(result) => (OperationState::Succeeded, None, result),
                Err(Error::Cancelled) => (
                    OperationState::Cancelled,
                    Some((
                        Error::Cancelled.kind().as_str(),
                        "cancelled by request".into(),
                        None,
                    )),
                    BTreeMap::new(),
                ),
                Err(err) => (
                    OperationState::Failed,
                    Some((
                        err.kind().as_str(),
                        err.to_string(),
                        err.precondition_reason().map(PreconditionReason::as_str),
                    )),
                    BTreeMap::new(),
                ),
            };
            let label = state.name();
            live.end_trace(label, error.as_ref().map(|(_, message, _)| message.as_str()));
            if let Err(err) = progress.transition(state, label, error, result).await {
                tracing::error!(operation = %live.id, error = %err, "cannot record the end of an operation");
            }
            crate::telemetry::metrics().operation_duration.record(
                started.elapsed().as_secs_f64(),
                &[
                    KeyValue::new("kind", live.kind.name()),
                    KeyValue::new("outcome", label),
                ],
            );
            engine.release(&live.id);
        }.instrument(span));
        Ok(record)
    }

    /// The one exit of every operation: `record` (terminal, stored) to
    /// the mirrors, on a blocking thread as they may wait on the OS.
    async fn ended(&self, record: OperationRecord) {
        if self.mirrors.is_empty() {
            return;
        }
        let mirrors = self.mirrors.clone();
        let id = record.id.clone();
        let copied = tokio::task::spawn_blocking(move || {
            for mirror in mirrors.iter() {
                mirror.finished(&record);
            }
        })
        .await;
        if let Err(err) = copied {
            tracing::warn!(operation = %id, error = %err, "cannot copy the operation's outcome");
        }
    }

    fn release(&self, id: &str) {
        let mut slot = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|l| l.id == id) {
            *slot = None;
        }
    }

    async fn find_by_request_id(
        &self,
        spec: &OperationSpec,
    ) -> Result<Option<OperationRecord>, Error> {
        let Some(request_id) = spec.request_id.clone() else {
            return Ok(None);
        };
        let found = blocking(&self.store, move |s| {
            match s.operation_for_request_id(&request_id)? {
                Some(id) => s.get_operation(&id),
                None => Ok(None),
            }
        })
        .await?;
        match found {
            Some(existing) => self.check_same_request(existing, spec).map(Some),
            None => Ok(None),
        }
    }

    /// A retry must be the same request: same kind and, where the record
    /// kept one, the same fingerprint.
    fn check_same_request(
        &self,
        existing: OperationRecord,
        spec: &OperationSpec,
    ) -> Result<OperationRecord, Error> {
        let same_fields = existing
            .request_fingerprint
            .as_ref()
            .is_none_or(|kept| *kept == spec.fingerprint.hex());
        if existing.kind != spec.kind || !same_fields {
            return Err(Error::RequestIdReused {
                request_id: existing.request_id.clone().unwrap_or_default(),
                operation: existing.id,
                kind: existing.kind.name().to_owned(),
            });
        }
        Ok(existing)
    }

    /// True if `request_id` already names an operation: the request is a
    /// retry, and preconditions checked at call time were checked then.
    pub async fn is_retry(&self, request_id: Option<&str>) -> Result<bool, Error> {
        let Some(rid) = request_id.map(str::to_owned) else {
            return Ok(false);
        };
        Ok(
            blocking(&self.store, move |s| s.operation_for_request_id(&rid))
                .await?
                .is_some(),
        )
    }

    /// Persists an event (and any change to the record) under the record
    /// lock, then publishes it.
    async fn append_locked(
        &self,
        live: &Live,
        record: &mut OperationRecord,
        event: NewEvent,
        change: impl FnOnce(&mut OperationRecord),
    ) -> Result<EventRecord, Error> {
        let mut next = record.clone();
        change(&mut next);
        let now = now_ms();
        next.event_count += 1;
        next.update_time_ms = now;
        let stored = EventRecord {
            sequence: next.event_count,
            time_ms: now,
            step: event.step,
            kind: event.kind.unwrap_or(EventKind::Progress),
            message: event.message,
            percent: event.percent.min(100),
            attributes: event.attributes,
        };
        let (op, ev) = (next.clone(), stored.clone());
        blocking(&self.store, move |s| s.append_event(&op, &ev)).await?;
        *record = next;
        let notice = if record.state.is_terminal() {
            // Watchers read the terminal record from the store after this.
            let _ = live.notices.send(Notice::Event(stored.clone()));
            Notice::Finished
        } else {
            Notice::Event(stored.clone())
        };
        let _ = live.notices.send(notice);
        Ok(stored)
    }
}
