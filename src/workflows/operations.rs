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

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::KeyValue;
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{Error, FieldViolation};
use crate::backends::store::{
    EventKind, EventRecord, ListPage, ListQuery, OperationErrorRecord, OperationKind,
    OperationRecord, OperationState, Store, StoreError,
};

/// Default and maximum `page_size` of ListOperations.
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 1000;
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

/// One item of a watch stream.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(EventRecord),
    /// The terminal operation; always the last item.
    Finished(OperationRecord),
    /// The stream could not go on (the store failed); the last item.
    Failed(String),
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

/// The operation's span (a child of the RPC that started it) and the open
/// steps' spans, innermost last; the innermost is current while the step's
/// code runs (see [`InStep`]), so backend spans nest under it. A step that
/// starts while another is still open (an apply section running a nested
/// workflow's steps) is that step's child.
struct Trace {
    operation: tracing::Span,
    steps: Vec<(String, tracing::Span)>,
}

pub struct Operations {
    store: Arc<dyn Store>,
    running: StdMutex<Option<Arc<Live>>>,
    /// Finished operations recently read; they never change again.
    finished: StdMutex<HashMap<String, OperationRecord>>,
}

/// Entries of the finished-operation cache before it starts over.
const FINISHED_CACHE_ENTRIES: usize = 1024;

/// Fields of a new event; sequence and time are assigned by the engine.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub step: String,
    pub kind: Option<EventKind>,
    pub message: String,
    pub percent: u32,
    pub attributes: BTreeMap<String, String>,
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

pub(crate) async fn blocking<T, F>(store: &Arc<dyn Store>, f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| Error::Internal(format!("store task failed: {e}")))?
        .map_err(Error::from)
}

impl Operations {
    /// Opens the engine over `store`, moving every operation a previous run
    /// left PENDING or RUNNING to INTERRUPTED with a final event.
    pub async fn recover(store: Arc<dyn Store>) -> Result<Arc<Self>, Error> {
        let unfinished = blocking(&store, |s| s.unfinished_operations()).await?;
        for mut op in unfinished {
            let id = op.id.clone();
            let last_step = blocking(&store, {
                let id = id.clone();
                let after = op.event_count.saturating_sub(1);
                move |s| s.events_after(&id, after)
            })
            .await?
            .pop()
            .map(|e| e.step)
            .unwrap_or_default();
            let now = now_ms();
            op.state = OperationState::Interrupted;
            op.end_time_ms = Some(now);
            op.update_time_ms = now;
            op.event_count += 1;
            op.error = Some(OperationErrorRecord {
                code: "ABORTED".into(),
                message: format!(
                    "provd stopped while this operation was running (during step {:?}); \
                     steps recorded before may have taken effect; start it again with a \
                     new request_id: every workflow is idempotent",
                    last_step
                ),
                step: last_step.clone(),
            });
            let event = EventRecord {
                sequence: op.event_count,
                time_ms: now,
                step: last_step,
                kind: EventKind::StateChanged,
                message: "INTERRUPTED: provd stopped while the operation was running".into(),
                percent: 0,
                attributes: BTreeMap::from([("state".into(), "INTERRUPTED".into())]),
            };
            tracing::warn!(operation = %id, "operation interrupted by a daemon restart");
            let ran_ms = now.saturating_sub(op.create_time_ms).max(0);
            crate::telemetry::metrics().operation_duration.record(
                Duration::from_millis(u64::try_from(ran_ms).unwrap_or(0)).as_secs_f64(),
                &[
                    KeyValue::new("kind", kind_name(op.kind)),
                    KeyValue::new("outcome", "INTERRUPTED"),
                ],
            );
            blocking(&store, move |s| s.append_event(&op, &event)).await?;
        }
        Ok(Arc::new(Self {
            store,
            running: StdMutex::new(None),
            finished: StdMutex::new(HashMap::new()),
        }))
    }

    fn live(&self, id: &str) -> Option<Arc<Live>> {
        let slot = self.running.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().filter(|l| l.id == id).cloned()
    }

    /// The operation in the writer slot, if any: (id, kind).
    pub fn running(&self) -> Option<(String, OperationKind)> {
        let slot = self.running.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(|l| (l.id.clone(), l.kind))
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
                        kind: kind_name(running.kind).to_owned(),
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
            return self.check_same_kind(record, &spec);
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
        tracing::info!(operation = %record.id, kind = kind_name(spec.kind), initiator = %spec.initiator, "operation started");
        let started = std::time::Instant::now();
        let span_name = format!("operation {}", kind_name(spec.kind));
        let span = tracing::info_span!(
            parent: &tracing::Span::current(),
            "operation",
            otel.name = span_name.as_str(),
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            operation.id = %record.id,
            operation.kind = kind_name(spec.kind),
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
                work: Box::pin(work(step_progress)),
                live: live.clone(),
            };
            // A separate task so a panicking workflow still ends its operation.
            let outcome = match tokio::spawn(in_step.instrument(tracing::Span::current())).await {
                Ok(result) => result,
                Err(join) => Err(Error::Internal(format!("workflow task failed: {join}"))),
            };
            let (state, error, result) = match outcome {
                Ok(result) => (OperationState::Succeeded, None, result),
                Err(Error::Cancelled) => (
                    OperationState::Cancelled,
                    Some((
                        Error::Cancelled.kind().as_str(),
                        "cancelled by request".into(),
                    )),
                    BTreeMap::new(),
                ),
                Err(err) => (
                    OperationState::Failed,
                    Some((err.kind().as_str(), err.to_string())),
                    BTreeMap::new(),
                ),
            };
            let label = state_name(state);
            live.end_trace(label, error.as_ref().map(|(_, message)| message.as_str()));
            if let Err(err) = progress.transition(state, label, error, result).await {
                tracing::error!(operation = %live.id, error = %err, "cannot record the end of an operation");
            }
            crate::telemetry::metrics().operation_duration.record(
                started.elapsed().as_secs_f64(),
                &[
                    KeyValue::new("kind", kind_name(live.kind)),
                    KeyValue::new("outcome", label),
                ],
            );
            engine.release(&live.id);
        }.instrument(span));
        Ok(record)
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
            Some(existing) => self.check_same_kind(existing, spec).map(Some),
            None => Ok(None),
        }
    }

    fn check_same_kind(
        &self,
        existing: OperationRecord,
        spec: &OperationSpec,
    ) -> Result<OperationRecord, Error> {
        if existing.kind != spec.kind {
            return Err(Error::InvalidArgument(vec![FieldViolation::new(
                "request_id",
                format!(
                    "already used by operation {} of kind {}; use a new request id",
                    existing.id,
                    kind_name(existing.kind)
                ),
            )]));
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

    /// The operation as it is now. The hot read path: a running operation
    /// comes from memory, a finished one (immutable from then on) from a
    /// small cache, and only a miss reads the store — directly, since redb
    /// reads never wait on the disk's fsync.
    pub async fn get(&self, id: &str) -> Result<OperationRecord, Error> {
        if let Some(live) = self.live(id) {
            return Ok(live.record.lock().await.clone());
        }
        if let Some(hit) = self.finished_cache(|c| c.get(id).cloned()) {
            return Ok(hit);
        }
        let record = self
            .store
            .get_operation(id)?
            .ok_or_else(|| Error::NotFound(format!("operation {id}")))?;
        if record.state.is_terminal() {
            self.finished_cache(|c| {
                if c.len() >= FINISHED_CACHE_ENTRIES {
                    c.clear();
                }
                c.insert(record.id.clone(), record.clone());
            });
        }
        Ok(record)
    }

    fn finished_cache<T>(&self, f: impl FnOnce(&mut HashMap<String, OperationRecord>) -> T) -> T {
        f(&mut self.finished.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub async fn list(
        &self,
        page_size: usize,
        page_token: &str,
        state: Option<OperationState>,
        kind: Option<OperationKind>,
    ) -> Result<ListPage, Error> {
        let limit = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(Error::invalid(
                    "page_size",
                    format!("must be at most {MAX_PAGE_SIZE}"),
                ));
            }
            n => n,
        };
        let query = ListQuery {
            state,
            kind,
            limit,
            after: (!page_token.is_empty()).then(|| page_token.to_owned()),
        };
        match blocking(&self.store, move |s| s.list_operations(&query)).await {
            Err(Error::Store(StoreError::Corrupt { key, .. })) if key == "page_token" => Err(
                Error::invalid("page_token", "is not a token this server returned"),
            ),
            other => other,
        }
    }

    /// Requests cooperative cancellation.
    pub async fn cancel(&self, id: &str, by: &str) -> Result<OperationRecord, Error> {
        if let Some(live) = self.live(id) {
            let mut record = live.record.lock().await;
            if !record.state.is_terminal() {
                if !record.cancel_requested {
                    let event = NewEvent {
                        step: live.step(),
                        kind: Some(EventKind::Progress),
                        message: format!("cancellation requested by {by}"),
                        ..NewEvent::default()
                    };
                    self.append_locked(&live, &mut record, event, |r| r.cancel_requested = true)
                        .await?;
                }
                live.cancel.cancel();
                return Ok(record.clone());
            }
        }
        let record = self.get(id).await?;
        match record.state {
            OperationState::Cancelled => Ok(record),
            OperationState::Succeeded | OperationState::Failed | OperationState::Interrupted => {
                Err(Error::FailedPrecondition {
                    reason: "OPERATION_FINISHED",
                    subject: format!("operations/{id}"),
                    message: format!(
                        "operation {id} already ended in state {}; nothing to cancel",
                        state_name(record.state)
                    ),
                })
            }
            // Not live but not terminal: between creation and the slot; report as is.
            OperationState::Pending | OperationState::Running => Ok(record),
        }
    }

    /// Streams the events after `after`, then the terminal operation.
    pub async fn watch(
        self: &Arc<Self>,
        id: &str,
        after: u64,
    ) -> Result<mpsc::Receiver<WatchItem>, Error> {
        let live = self.live(id);
        // Subscribe before reading anything, so nothing recorded later is missed.
        let notices = live.as_ref().map(|l| l.notices.subscribe());
        let still_running = match &live {
            Some(l) => !l.record.lock().await.state.is_terminal(),
            None => {
                self.get(id).await?;
                false
            }
        };
        let (tx, rx) = mpsc::channel(64);
        let engine = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            let result = engine
                .pump(&id, after, still_running.then_some(notices).flatten(), &tx)
                .await;
            if let Err(err) = result {
                let _ = tx.send(WatchItem::Failed(err.to_string())).await;
            }
        });
        Ok(rx)
    }

    async fn pump(
        &self,
        id: &str,
        after: u64,
        notices: Option<broadcast::Receiver<Notice>>,
        tx: &mpsc::Sender<WatchItem>,
    ) -> Result<(), Error> {
        let mut last = after;
        if !self.replay(id, &mut last, tx).await? {
            return Ok(());
        }
        if let Some(mut notices) = notices {
            loop {
                match notices.recv().await {
                    Ok(Notice::Event(event)) => {
                        if event.sequence > last {
                            last = event.sequence;
                            if tx.send(WatchItem::Event(event)).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Ok(Notice::Finished) | Err(broadcast::error::RecvError::Closed) => break,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !self.replay(id, &mut last, tx).await? {
                            return Ok(());
                        }
                    }
                }
            }
            // Events recorded together with the terminal state.
            if !self.replay(id, &mut last, tx).await? {
                return Ok(());
            }
        }
        let record = self.get(id).await?;
        let _ = tx.send(WatchItem::Finished(record)).await;
        Ok(())
    }

    /// Sends stored events after `last`; false once the watcher has gone.
    async fn replay(
        &self,
        id: &str,
        last: &mut u64,
        tx: &mpsc::Sender<WatchItem>,
    ) -> Result<bool, Error> {
        let key = id.to_owned();
        let after = *last;
        let events = blocking(&self.store, move |s| s.events_after(&key, after)).await?;
        for event in events {
            *last = event.sequence;
            if tx.send(WatchItem::Event(event)).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
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

/// The handle a running workflow uses to report progress and observe
/// cancellation.
#[derive(Clone)]
pub struct Progress {
    engine: Arc<Operations>,
    live: Arc<Live>,
}

/// Runs a workflow with its current step's span entered on every poll.
/// (`Progress::emit` yields once after a step change, so code after
/// `step_started` always runs in a later poll, under the new span.)
struct InStep<F> {
    work: std::pin::Pin<Box<F>>,
    live: Arc<Live>,
}

impl<F: Future> Future for InStep<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let step = self
            .live
            .trace_lock()
            .steps
            .last()
            .map(|(_, span)| span.clone());
        let _entered = step.as_ref().map(tracing::Span::enter);
        self.work.as_mut().poll(cx)
    }
}

impl Live {
    fn trace_lock(&self) -> std::sync::MutexGuard<'_, Trace> {
        self.trace.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a step's span at STEP_STARTED (closing the previous one) and
    /// closes it at its STEP_SUCCEEDED / STEP_SKIPPED. True if the step
    /// changed.
    fn trace_step(&self, kind: EventKind, step: &str) -> bool {
        let mut trace = self.trace_lock();
        match kind {
            EventKind::StepStarted => {
                // The same step started again replaces itself.
                if let Some(at) = trace.steps.iter().position(|(s, _)| s == step) {
                    trace.steps.truncate(at);
                }
                let name = format!("step {step}");
                let parent = trace
                    .steps
                    .last()
                    .map_or_else(|| trace.operation.clone(), |(_, span)| span.clone());
                let span = tracing::info_span!(
                    parent: &parent,
                    "step",
                    otel.name = name.as_str(),
                    otel.status_code = tracing::field::Empty,
                    otel.status_description = tracing::field::Empty,
                    step = step,
                    step.outcome = tracing::field::Empty,
                );
                trace.steps.push((step.to_owned(), span));
                true
            }
            EventKind::StepSucceeded | EventKind::StepSkipped => {
                // Closes the step and any step still open inside it.
                let Some(at) = trace.steps.iter().rposition(|(s, _)| s == step) else {
                    return false;
                };
                let outcome = if kind == EventKind::StepSucceeded {
                    "SUCCEEDED"
                } else {
                    "SKIPPED"
                };
                if let Some((_, span)) = trace.steps.get(at) {
                    span.record("step.outcome", outcome);
                }
                trace.steps.truncate(at);
                true
            }
            _ => false,
        }
    }

    /// Closes the step still open (the one a failure or cancellation ended)
    /// and records the outcome on the operation's span.
    fn end_trace(&self, label: &str, error: Option<&str>) {
        let mut trace = self.trace_lock();
        let steps = std::mem::take(&mut trace.steps);
        let spans = steps.iter().map(|(_, span)| span).chain([&trace.operation]);
        for span in spans {
            if let Some(message) = error {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", message);
            }
        }
        for (_, span) in &steps {
            span.record("step.outcome", label);
        }
        trace.operation.record("operation.outcome", label);
    }

    fn step(&self) -> String {
        self.current_step
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Progress {
    pub fn operation_id(&self) -> &str {
        &self.live.id
    }

    /// Fires when CancelOperation is accepted.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.live.cancel
    }

    /// A cancellation point: `Err(Cancelled)` once cancellation was requested.
    pub fn checkpoint(&self) -> Result<(), Error> {
        if self.live.cancel.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Records an event; the step of an event of kind STEP_STARTED becomes
    /// the current step.
    pub async fn emit(&self, event: NewEvent) -> Result<(), Error> {
        let step_changed = event
            .kind
            .is_some_and(|kind| self.live.trace_step(kind, &event.step));
        if step_changed {
            // Code after this call runs in a later poll, under the new
            // step's span (see `InStep`).
            tokio::task::yield_now().await;
        }
        if event.kind == Some(EventKind::StepStarted) {
            *self
                .live
                .current_step
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = event.step.clone();
        }
        let mut record = self.live.record.lock().await;
        self.engine
            .append_locked(&self.live, &mut record, event, |_| {})
            .await
            .map(|_| ())
    }

    pub async fn step_started(&self, step: &str, message: impl Into<String>) -> Result<(), Error> {
        self.checkpoint()?;
        self.simple(step, EventKind::StepStarted, message.into(), 0)
            .await
    }

    pub async fn step_succeeded(
        &self,
        step: &str,
        message: impl Into<String>,
    ) -> Result<(), Error> {
        self.simple(step, EventKind::StepSucceeded, message.into(), 100)
            .await
    }

    pub async fn step_skipped(&self, step: &str, message: impl Into<String>) -> Result<(), Error> {
        self.simple(step, EventKind::StepSkipped, message.into(), 100)
            .await
    }

    pub async fn progress(
        &self,
        step: &str,
        message: impl Into<String>,
        percent: u32,
    ) -> Result<(), Error> {
        self.simple(step, EventKind::Progress, message.into(), percent)
            .await
    }

    pub async fn warning(&self, step: &str, message: impl Into<String>) -> Result<(), Error> {
        self.simple(step, EventKind::Warning, message.into(), 0)
            .await
    }

    async fn simple(
        &self,
        step: &str,
        kind: EventKind,
        message: String,
        percent: u32,
    ) -> Result<(), Error> {
        self.emit(NewEvent {
            step: step.to_owned(),
            kind: Some(kind),
            message,
            percent,
            attributes: BTreeMap::new(),
        })
        .await
    }

    async fn transition(
        &self,
        state: OperationState,
        label: &str,
        error: Option<(&'static str, String)>,
        result: Outcome,
    ) -> Result<(), Error> {
        let step = self.live.step();
        let mut record = self.live.record.lock().await;
        let event = NewEvent {
            step: step.clone(),
            kind: Some(EventKind::StateChanged),
            message: match &error {
                Some((_, message)) => format!("{label}: {message}"),
                None => label.to_owned(),
            },
            percent: 0,
            attributes: BTreeMap::from([("state".into(), state_name(state).into())]),
        };
        let now = now_ms();
        self.engine
            .append_locked(&self.live, &mut record, event, move |r| {
                r.state = state;
                if state.is_terminal() {
                    r.end_time_ms = Some(now);
                    r.result = result;
                    r.error = error.map(|(code, message)| OperationErrorRecord {
                        code: code.to_owned(),
                        message,
                        step,
                    });
                }
            })
            .await
            .map(|_| ())
    }
}

pub fn kind_name(kind: OperationKind) -> &'static str {
    match kind {
        OperationKind::Install => "INSTALL",
        OperationKind::CreateGmsa => "CREATE_GMSA",
        OperationKind::UseCustomGmsa => "USE_CUSTOM_GMSA",
        OperationKind::GrantPermissions => "GRANT_PERMISSIONS",
        OperationKind::AddDirectory => "ADD_DIRECTORY",
        OperationKind::RemoveDirectory => "REMOVE_DIRECTORY",
        OperationKind::SetDcPriority => "SET_DC_PRIORITY",
        OperationKind::SetPasswordWriteback => "SET_PASSWORD_WRITEBACK",
        OperationKind::Uninstall => "UNINSTALL",
        OperationKind::SignIn => "SIGN_IN",
        OperationKind::ApplyConfiguration => "APPLY_CONFIGURATION",
    }
}

pub fn state_name(state: OperationState) -> &'static str {
    match state {
        OperationState::Pending => "PENDING",
        OperationState::Running => "RUNNING",
        OperationState::Succeeded => "SUCCEEDED",
        OperationState::Failed => "FAILED",
        OperationState::Cancelled => "CANCELLED",
        OperationState::Interrupted => "INTERRUPTED",
    }
}
