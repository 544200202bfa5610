//! The handle a running workflow reports through: events, steps (each with
//! its tracing span, nested as the steps nest) and cancellation points.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{Live, Operations, Outcome, now_ms};
use crate::backends::store::{EventKind, OperationErrorRecord, OperationState};
use crate::workflows::Error;

/// The operation's span (a child of the RPC that started it) and the open
/// steps' spans, innermost last; the innermost is current while the step's
/// code runs (see [`InStep`]), so backend spans nest under it. A step that
/// starts while another is still open (an apply section running a nested
/// workflow's steps) is that step's child.
pub(super) struct Trace {
    pub(super) operation: tracing::Span,
    pub(super) steps: Vec<(String, tracing::Span)>,
}

/// Fields of a new event; sequence and time are assigned by the engine.
#[derive(Debug, Clone, Default)]
pub struct NewEvent {
    pub step: String,
    pub kind: Option<EventKind>,
    pub message: String,
    pub percent: u32,
    pub attributes: BTreeMap<String, String>,
}

/// The handle a running workflow uses to report progress and observe
/// cancellation.
#[derive(Clone)]
pub struct Progress {
    pub(super) engine: Arc<Operations>,
    pub(super) live: Arc<Live>,
}

/// Runs a workflow with its current step's span entered on every poll.
/// (`Progress::emit` yields once after a step change, so code after
/// `step_started` always runs in a later poll, under the new span.)
pub(super) struct InStep<F> {
    pub(super) work: std::pin::Pin<Box<F>>,
    pub(super) live: Arc<Live>,
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
    pub(super) fn trace_lock(&self) -> std::sync::MutexGuard<'_, Trace> {
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
    pub(super) fn end_trace(&self, label: &str, error: Option<&str>) {
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

    pub(super) fn step(&self) -> String {
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

    pub(super) async fn transition(
        &self,
        state: OperationState,
        label: &str,
        error: Option<(&'static str, String, Option<&'static str>)>,
        result: Outcome,
    ) -> Result<(), Error> {
        let step = self.live.step();
        let mut record = self.live.record.lock().await;
        let event = NewEvent {
            step: step.clone(),
            kind: Some(EventKind::StateChanged),
            message: match &error {
                Some((_, message, _)) => format!("{label}: {message}"),
                None => label.to_owned(),
            },
            percent: 0,
            attributes: BTreeMap::from([("state".into(), state.name().into())]),
        };
        let now = now_ms();
        self.engine
            .append_locked(&self.live, &mut record, event, move |r| {
                r.state = state;
                if state.is_terminal() {
                    r.end_time_ms = Some(now);
                    r.result = result;
                    r.error = error.map(|(code, message, reason)| OperationErrorRecord {
                        code: code.to_owned(),
                        message,
                        step,
                        reason: reason.map(str::to_owned),
                    });
                }
            })
            .await?;
        if state.is_terminal() {
            let ended = record.clone();
            drop(record);
            self.engine.note_newest(ended.clone());
            self.engine.ended(ended).await;
        }
        Ok(())
    }
}
