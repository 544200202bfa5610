//! Reading operations: get (from memory, a cache of finished ones, or the
//! store), list, watch (subscribe, then replay, then follow) and cancel.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::progress::NewEvent;
use super::{Newest, Notice, Operations, read};
use crate::backends::store::{
    EventKind, EventRecord, ListPage, ListQuery, OperationKind, OperationRecord, OperationState,
    StoreError,
};
use crate::workflows::PreconditionReason;
use crate::workflows::{Error, FieldViolation, validate};

/// ListOperations' filters, as the request gave them.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<OperationState>,
    pub kind: Option<OperationKind>,
    /// Exact; empty: any.
    pub initiator: String,
    /// Inclusive lower and exclusive upper bound on the creation time, as
    /// (seconds, nanos) since the epoch.
    pub started_after: Option<(i64, i32)>,
    pub started_before: Option<(i64, i32)>,
}

/// Default and maximum `page_size` of ListOperations.
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 1000;

/// One item of a watch stream.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(EventRecord),
    /// The terminal operation; always the last item.
    Finished(OperationRecord),
    /// The stream could not go on (the store failed); the last item.
    Failed(String),
}

/// A watch's items, in order.
pub type WatchStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = WatchItem> + Send>>;

/// Entries of the finished-operation cache before it starts over.
const FINISHED_CACHE_ENTRIES: usize = 1024;

impl Operations {
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

    /// The newest operation: the running one from memory, else the newest
    /// finished one — read from the store once, then kept as each operation
    /// ends — so GetHostStatus, called by fleet-wide sweeps, reads no store
    /// in the steady state.
    pub async fn latest(&self) -> Result<Option<OperationRecord>, Error> {
        let running = {
            let slot = self.running.lock().unwrap_or_else(|p| p.into_inner());
            slot.clone()
        };
        if let Some(live) = running {
            return Ok(Some(live.record.lock().await.clone()));
        }
        if let Newest::Known(known) = &*self.newest_lock() {
            return Ok(known.as_deref().cloned());
        }
        let query = ListQuery {
            state: None,
            kind: None,
            initiator: None,
            created_from_ms: None,
            created_before_ms: None,
            limit: 1,
            after: None,
        };
        let newest = read(&self.store, |s| s.list_operations(&query))?
            .operations
            .into_iter()
            .next();
        let mut cached = self.newest_lock();
        // An operation that ended meanwhile set it, and is newer.
        if matches!(*cached, Newest::Unread) {
            *cached = Newest::Known(newest.clone().map(Box::new));
        }
        Ok(newest)
    }

    /// Called with each live operation's terminal record.
    pub(super) fn note_newest(&self, record: OperationRecord) {
        *self.newest_lock() = Newest::Known(Some(Box::new(record)));
    }

    fn newest_lock(&self) -> std::sync::MutexGuard<'_, Newest> {
        self.newest.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finished_cache<T>(&self, f: impl FnOnce(&mut HashMap<String, OperationRecord>) -> T) -> T {
        f(&mut self.finished.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub async fn list(
        &self,
        page_size: usize,
        page_token: &str,
        filter: ListFilter,
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
        let mut violations = Vec::new();
        let mut check = |result: Result<(), FieldViolation>| {
            if let Err(v) = result {
                violations.push(v);
            }
        };
        check(validate::max_len(
            "page_token",
            page_token,
            validate::MAX_PAGE_TOKEN_LEN,
        ));
        if filter.initiator.chars().count() > validate::MAX_INITIATOR_CHARS {
            check(Err(FieldViolation::new(
                "initiator",
                format!(
                    "must be at most {} characters",
                    validate::MAX_INITIATOR_CHARS
                ),
            )));
        } else if filter.initiator.chars().any(char::is_control) {
            // No certificate provd accepts has one in its common name.
            check(Err(FieldViolation::new(
                "initiator",
                "must not contain control characters",
            )));
        }
        let mut bound = |field: &str, time: Option<(i64, i32)>| {
            time.and_then(|(s, n)| {
                validate::timestamp_ms(field, s, n)
                    .map_err(|v| check(Err(v)))
                    .ok()
            })
        };
        let from = bound("started_after", filter.started_after);
        let before = bound("started_before", filter.started_before);
        if let (Some(after), Some(until)) = (filter.started_after, filter.started_before)
            && from.is_some()
            && before.is_some()
            && until <= after
        {
            check(Err(FieldViolation::new(
                "started_before",
                "must be later than started_after",
            )));
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations));
        }
        let query = ListQuery {
            state: filter.state,
            kind: filter.kind,
            initiator: (!filter.initiator.is_empty()).then_some(filter.initiator),
            created_from_ms: from,
            created_before_ms: before,
            limit,
            after: (!page_token.is_empty()).then(|| page_token.to_owned()),
        };
        match read(&self.store, |s| s.list_operations(&query)) {
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
                    reason: PreconditionReason::OperationFinished,
                    subject: format!("operations/{id}"),
                    message: format!(
                        "operation {id} already ended in state {}; nothing to cancel",
                        record.state.name()
                    ),
                })
            }
            // Not live but not terminal: between creation and the slot; report as is.
            OperationState::Pending | OperationState::Running => Ok(record),
        }
    }

    /// Streams the events after `after`, then the terminal operation.
    pub async fn watch(self: &Arc<Self>, id: &str, after: u64) -> Result<WatchStream, Error> {
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
        if !still_running {
            // Nothing more will be recorded: the items at once, with no task
            // and channel between the store and the response.
            return Ok(Box::pin(tokio_stream::iter(
                self.finished_items(id, after).await,
            )));
        }
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
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    /// What [`Self::pump`] sends for an operation that records nothing more.
    async fn finished_items(&self, id: &str, after: u64) -> Vec<WatchItem> {
        let events = match read(&self.store, |s| s.events_after(id, after)) {
            Ok(events) => events,
            Err(err) => return vec![WatchItem::Failed(err.to_string())],
        };
        let mut items: Vec<WatchItem> = events.into_iter().map(WatchItem::Event).collect();
        items.push(match self.get(id).await {
            Ok(record) => WatchItem::Finished(record),
            Err(err) => WatchItem::Failed(err.to_string()),
        });
        items
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
        let after = *last;
        let events = read(&self.store, |s| s.events_after(id, after))?;
        for event in events {
            *last = event.sequence;
            if tx.send(WatchItem::Event(event)).await.is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
