//! Start-up recovery: operations a previous run left PENDING or RUNNING
//! become INTERRUPTED, with a final event naming the step they were in.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use opentelemetry::KeyValue;

use super::{Operations, blocking, now_ms};
use crate::backends::audit::OperationMirror;
use crate::backends::store::{EventKind, EventRecord, OperationErrorRecord, OperationState, Store};
use crate::workflows::Error;

impl Operations {
    /// Opens the engine over `store`, moving every operation a previous run
    /// left PENDING or RUNNING to INTERRUPTED with a final event; every
    /// outcome from then on goes to `mirrors`.
    pub async fn recover(
        store: Arc<dyn Store>,
        mirrors: Vec<Arc<dyn OperationMirror>>,
    ) -> Result<Arc<Self>, Error> {
        let engine = Arc::new(Self {
            store,
            mirrors: mirrors.into(),
            running: StdMutex::new(None),
            finished: StdMutex::new(HashMap::new()),
            newest: StdMutex::new(super::Newest::Unread),
        });
        let store = &engine.store;
        let unfinished = blocking(store, |s| s.unfinished_operations()).await?;
        for mut op in unfinished {
            let id = op.id.clone();
            let last_step = blocking(store, {
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
                reason: None,
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
                    KeyValue::new("kind", op.kind.name()),
                    KeyValue::new("outcome", "INTERRUPTED"),
                ],
            );
            let ended = op.clone();
            blocking(store, move |s| s.append_event(&op, &event)).await?;
            engine.ended(ended).await;
        }
        Ok(engine)
    }
}
