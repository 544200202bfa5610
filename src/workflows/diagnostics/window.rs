//! The verbose-trace window of ExportDiagnostics (`verbose_trace_minutes`):
//! Microsoft's `Start-AADCloudSyncToolsVerboseLogs`, the wait, then
//! `Stop-AADCloudSyncToolsVerboseLogs`, as `Export-AADCloudSyncToolsLogs`
//! does before it collects. Each command edits the agent's exe.config and
//! restarts its service, so the window runs as a VERBOSE_TRACE operation in
//! the writer slot. Stop follows every Start that was tried, whatever cut
//! the window short: a cancel, the caller going away (the stream cancels
//! the operation), the daemon's shutdown (`DiagnosticsWorkflows::
//! end_windows` cuts the wait and waits for Stop), a failed event write, a
//! panic (the guard's `Drop` runs Stop in a task of its own).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backends::agent_config::{AgentConfig, AgentConfigError, RunContext};
use crate::workflows::Error;
use crate::workflows::agent_module::Transcript;
use crate::workflows::operations::{Outcome, Progress};

/// The longest window, in minutes (Microsoft's default is 3).
pub const MAX_MINUTES: u32 = 60;
/// The operation's step, and the prefix of the stream's items.
pub const STEP: &str = "verbose-trace";

/// What the stream reports of the window as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowEvent {
    /// Start ran: `Ok(detail)`, or why tracing is not on.
    Started(Result<String, String>),
    /// Stop ran (or was not needed): `Ok(detail)`, or why it failed.
    Stopped(Result<String, String>),
}

/// Runs Stop when dropped armed: the window's future dropped between Start
/// and Stop (a panic, the runtime going away) still turns tracing off,
/// from a task of its own, while a runtime is there to run it.
struct StopGuard {
    agent: Option<Arc<dyn AgentConfig>>,
}

impl StopGuard {
    fn disarm(&mut self) {
        self.agent = None;
    }
}

impl Drop for StopGuard {
    fn drop(&mut self) {
        let Some(agent) = self.agent.take() else {
            return;
        };
        tracing::warn!("verbose-trace window dropped before Stop: stopping it now");
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let cancel = CancellationToken::new();
                let sink = |_: String| {};
                let cx = RunContext {
                    cancel: &cancel,
                    transcript: &sink,
                };
                if let Err(err) = agent.verbose_trace(false, &cx).await {
                    tracing::error!(error = %err, "Stop-AADCloudSyncToolsVerboseLogs failed: the agent may still trace verbosely");
                }
            });
        }
    }
}

/// One module call, with its own never-cancelled token: a Start or Stop
/// killed half-way could leave exe.config half-edited (the runner's time
/// limit still bounds it).
async fn call(
    agent: &dyn AgentConfig,
    on: bool,
    transcript: &Transcript,
) -> Result<(), AgentConfigError> {
    let cancel = CancellationToken::new();
    let sink = |line: String| transcript.push(line);
    let cx = RunContext {
        cancel: &cancel,
        transcript: &sink,
    };
    agent.verbose_trace(on, &cx).await
}

const START: &str = "Start-AADCloudSyncToolsVerboseLogs";
const STOP: &str = "Stop-AADCloudSyncToolsVerboseLogs";

/// The window: Start; unless it failed, the wait until `wait` passed or
/// `cut` resolves (to why); Stop, always. Events go to `events` as they
/// happen (a send to a stream that went away is ignored), then the step's
/// events to `progress`. `Err(Cancelled)` when cut by a cancel; the
/// module's error when Start or Stop failed.
pub async fn run(
    agent: Arc<dyn AgentConfig>,
    wait: Duration,
    progress: Progress,
    cut: impl Future<Output = String>,
    events: mpsc::UnboundedSender<WindowEvent>,
) -> Result<Outcome, Error> {
    let minutes = wait.as_secs() / 60;
    // Recorded best effort until Stop ran: an event that cannot be
    // written must not keep tracing on.
    let _ = progress
        .step_started(STEP, format!("verbose tracing for {minutes} min: {START}"))
        .await;
    let mut guard = StopGuard {
        agent: Some(agent.clone()),
    };
    let transcript = Transcript::default();
    let began = Instant::now();
    let started = call(agent.as_ref(), true, &transcript).await;
    let mut cut_by = None;
    match &started {
        Ok(()) => {
            let until = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + wait);
            let detail = format!(
                "verbose tracing on for {minutes} min, until {until} (operation {})",
                progress.operation_id()
            );
            let _ = events.send(WindowEvent::Started(Ok(detail)));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                why = cut => cut_by = Some(why),
            }
        }
        Err(err) => {
            let _ = events.send(WindowEvent::Started(Err(format!("{START}: {err}"))));
        }
    }
    let stopped = call(agent.as_ref(), false, &transcript).await;
    guard.disarm();
    let traced = began.elapsed().as_secs();
    let stop_event = match (&stopped, &cut_by) {
        (Ok(()), None) => Ok(format!("verbose tracing off after {traced} s")),
        (Ok(()), Some(why)) => Ok(format!(
            "verbose tracing off after {traced} s, cut short: {why}"
        )),
        (Err(err), _) => Err(format!(
            "{STOP}: {err}; the agent may still trace verbosely: run {STOP} on the host"
        )),
    };
    let _ = events.send(WindowEvent::Stopped(stop_event));
    transcript.emit(&progress, STEP).await?;
    if let Some(why) = &cut_by {
        progress.warning(STEP, format!("cut short: {why}")).await?;
    }
    started?;
    stopped?;
    if cut_by.is_some() {
        return Err(Error::Cancelled);
    }
    progress
        .step_succeeded(STEP, format!("verbose tracing off after {traced} s"))
        .await?;
    Ok(Outcome::from([(
        "traced_seconds".into(),
        traced.to_string(),
    )]))
}
