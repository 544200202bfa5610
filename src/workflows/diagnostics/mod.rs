//! DiagnosticsService: the support bundle. Collects the parts (the host's
//! own: trace folder, exe.config, event logs; provd's: versions, registry
//! options, a credential-free Verify, recent operations, its log file),
//! each within what is left of the size budget, redacts every file
//! (`redact`), zips them with a manifest (`bundle`) and streams the zip.
//! Read-only (no operation, no writer slot) unless the caller asks for a
//! verbose-trace window first (`window`), which runs as an operation.

mod bundle;
pub mod redact;
mod window;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::operations::{OperationSpec, Operations, RequestFingerprint, blocking};
use super::verify::{VerifyItem, VerifyWorkflows};
use super::{Caller, Error, FieldViolation};
use crate::backends::agent_config::AgentConfig;
use crate::backends::host::{DiagnosticPart, Host};
use crate::backends::store::{ListQuery, OperationKind, OperationRecord, Store};

pub use bundle::Summary;
use window::WindowEvent;

const DEFAULT_HOURS: u32 = 24;
const MAX_HOURS: u32 = 168;
const DEFAULT_MAX_BYTES: u64 = 64 << 20;
const MIN_MAX_BYTES: u64 = 1 << 20;
const MAX_MAX_BYTES: u64 = 256 << 20;
/// Kept back from the budget for MANIFEST.txt, MISSING.txt and the zip's
/// own headers.
const RESERVE: u64 = 256 << 10;
/// The chunk size of the stream.
pub const CHUNK: usize = 64 << 10;
/// Operations in the bundle, newest first.
const RECENT_OPERATIONS: usize = 50;

/// What the stream carries.
#[derive(Debug)]
pub enum DiagnosticsItem {
    /// A part collected (`missing: None`) or not (why); `detail` says
    /// what happened for the verbose-trace window's items.
    Progress {
        path: String,
        missing: Option<String>,
        detail: String,
    },
    Chunk(Vec<u8>),
    Summary(Summary),
}

/// ExportDiagnostics' request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportRequest {
    pub event_log_hours: u32,
    pub max_bytes: u64,
    pub verbose_trace_minutes: u32,
}

/// A started export: its stream, and the window's operation if one runs.
pub struct Export {
    pub items: mpsc::Receiver<Result<DiagnosticsItem, Error>>,
    pub operation: Option<OperationRecord>,
}

/// The window as the export's stream follows it.
enum Window {
    /// The module cannot run on this host: nothing was changed.
    Unavailable(String),
    Running {
        operation: Box<OperationRecord>,
        events: mpsc::UnboundedReceiver<WindowEvent>,
    },
}

pub struct DiagnosticsWorkflows {
    host: Arc<dyn Host>,
    store: Arc<dyn Store>,
    verify: Arc<VerifyWorkflows>,
    agent_config: Arc<dyn AgentConfig>,
    operations: Arc<Operations>,
    /// `[log] file`, when provd writes one.
    log_file: Option<PathBuf>,
    /// Cuts every window's wait short (the daemon's shutdown).
    shutdown: CancellationToken,
    /// The running windows, so shutdown can wait for their Stop.
    windows: TaskTracker,
}

impl DiagnosticsWorkflows {
    pub fn new(
        host: Arc<dyn Host>,
        store: Arc<dyn Store>,
        verify: Arc<VerifyWorkflows>,
        agent_config: Arc<dyn AgentConfig>,
        operations: Arc<Operations>,
        log_file: Option<PathBuf>,
    ) -> Self {
        Self {
            host,
            store,
            verify,
            agent_config,
            operations,
            log_file,
            shutdown: CancellationToken::new(),
            windows: TaskTracker::new(),
        }
    }

    /// At shutdown: cuts every verbose-trace window short and returns once
    /// each has run Stop; no window starts after it.
    pub async fn end_windows(&self) {
        self.shutdown.cancel();
        self.windows.close();
        self.windows.wait().await;
    }

    /// ExportDiagnostics: validates, starts the verbose-trace window's
    /// operation if asked, then collects and streams in a task of its own
    /// (dropping the receiver stops it, and cancels the window).
    pub async fn export(
        self: &Arc<Self>,
        request: ExportRequest,
        caller: &Caller,
    ) -> Result<Export, Error> {
        let ExportRequest {
            event_log_hours,
            max_bytes,
            verbose_trace_minutes,
        } = request;
        let mut v = Vec::new();
        if verbose_trace_minutes > window::MAX_MINUTES {
            v.push(FieldViolation::new(
                "verbose_trace_minutes",
                format!("at most {}", window::MAX_MINUTES),
            ));
        }
        let hours = match event_log_hours {
            0 => DEFAULT_HOURS,
            h if h > MAX_HOURS => {
                v.push(FieldViolation::new(
                    "event_log_hours",
                    format!("at most {MAX_HOURS}"),
                ));
                0
            }
            h => h,
        };
        let max_bytes = match max_bytes {
            0 => DEFAULT_MAX_BYTES,
            b if !(MIN_MAX_BYTES..=MAX_MAX_BYTES).contains(&b) => {
                v.push(FieldViolation::new(
                    "max_bytes",
                    format!("between {MIN_MAX_BYTES} and {MAX_MAX_BYTES}"),
                ));
                0
            }
            b => b,
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let window = match verbose_trace_minutes {
            0 => None,
            minutes => Some(self.start_window(minutes, caller).await?),
        };
        let operation = match &window {
            Some(Window::Running { operation, .. }) => Some(operation.as_ref().clone()),
            _ => None,
        };
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            let mut taken = Vec::new();
            if let Some(window) = window
                && !this.follow(&tx, window, &mut taken).await
            {
                return; // the caller went away
            }
            let since = SystemTime::now() - Duration::from_secs(u64::from(hours) * 3600);
            if let Err(err) = this.run(&tx, since, max_bytes, taken).await {
                let _ = tx.send(Err(err)).await;
            }
        });
        Ok(Export {
            items: rx,
            operation,
        })
    }

    /// The window's operation, started now (so a busy writer slot is the
    /// call's FAILED_PRECONDITION); on a host that cannot run the module,
    /// no operation and the reason.
    async fn start_window(&self, minutes: u32, caller: &Caller) -> Result<Window, Error> {
        if let Err(reason) = self.agent_config.availability() {
            return Ok(Window::Unavailable(reason));
        }
        if self.shutdown.is_cancelled() {
            return Err(Error::Unavailable("provd is shutting down".into()));
        }
        let spec = OperationSpec {
            kind: OperationKind::VerboseTrace,
            request_id: None,
            fingerprint: RequestFingerprint::new()
                .text("verbose_trace_minutes", &minutes.to_string()),
            description: format!("verbose tracing for {minutes} min before a support bundle"),
            initiator: caller.name.clone(),
        };
        let (events_tx, events) = mpsc::unbounded_channel();
        let agent = self.agent_config.clone();
        let shutdown = self.shutdown.clone();
        let windows = self.windows.clone();
        let wait = Duration::from_secs(u64::from(minutes) * 60);
        let record = self
            .operations
            .start(spec, move |progress| {
                let cancelled = progress.cancellation().clone();
                let cut = async move {
                    tokio::select! {
                        () = cancelled.cancelled() => "cancelled".to_owned(),
                        () = shutdown.cancelled() => "provd is shutting down".to_owned(),
                    }
                };
                windows.track_future(window::run(agent, wait, progress, cut, events_tx))
            })
            .await?;
        Ok(Window::Running {
            operation: Box::new(record),
            events,
        })
    }

    /// Streams the window's items as it runs, into `taken` its parts (the
    /// window's record, and a failed Start or Stop for MISSING.txt). False
    /// when the caller went away: the window is cancelled (Stop still runs).
    async fn follow(
        &self,
        tx: &mpsc::Sender<Result<DiagnosticsItem, Error>>,
        window: Window,
        taken: &mut Vec<DiagnosticPart>,
    ) -> bool {
        let start_path = format!("{}/start", window::STEP);
        let stop_path = format!("{}/stop", window::STEP);
        let (operation, mut events) = match window {
            Window::Unavailable(reason) => {
                taken.push(DiagnosticPart {
                    path: start_path.clone(),
                    content: Err(reason.clone()),
                });
                let item = DiagnosticsItem::Progress {
                    path: start_path,
                    missing: Some(reason),
                    detail: String::new(),
                };
                return tx.send(Ok(item)).await.is_ok();
            }
            Window::Running { operation, events } => (operation.id, events),
        };
        let mut record = format!("operation\t{operation}\n");
        let mut stopped = false;
        loop {
            let event = tokio::select! {
                event = events.recv() => event,
                () = tx.closed() => None,
            };
            let (path, outcome) = match event {
                Some(WindowEvent::Started(outcome)) => (start_path.clone(), outcome),
                Some(WindowEvent::Stopped(outcome)) => {
                    stopped = true;
                    (stop_path.clone(), outcome)
                }
                None if tx.is_closed() => {
                    let by = "the ExportDiagnostics caller (its stream closed)";
                    let _ = self.operations.cancel(&operation, by).await;
                    return false;
                }
                // The window ended without saying how (it panicked).
                None => {
                    stopped = true;
                    (
                        stop_path.clone(),
                        Err(format!(
                            "the window ended unexpectedly: see operation {operation}"
                        )),
                    )
                }
            };
            let (detail, missing) = match outcome {
                Ok(detail) => (detail, None),
                Err(reason) => (String::new(), Some(reason)),
            };
            let line = missing.as_deref().unwrap_or(&detail);
            record.push_str(&format!("{path}\t{line}\n"));
            if let Some(reason) = &missing {
                taken.push(DiagnosticPart {
                    path: path.clone(),
                    content: Err(reason.clone()),
                });
            }
            let item = DiagnosticsItem::Progress {
                path,
                missing,
                detail,
            };
            if tx.send(Ok(item)).await.is_err() {
                let by = "the ExportDiagnostics caller (its stream closed)";
                let _ = self.operations.cancel(&operation, by).await;
                return false;
            }
            if stopped {
                break;
            }
        }
        taken.push(DiagnosticPart {
            path: "provd/verbose-trace.txt".into(),
            content: Ok(record.into_bytes()),
        });
        true
    }

    async fn run(
        &self,
        tx: &mpsc::Sender<Result<DiagnosticsItem, Error>>,
        since: SystemTime,
        max_bytes: u64,
        mut taken: Vec<DiagnosticPart>,
    ) -> Result<(), Error> {
        let mut budget = Budget {
            left: max_bytes.saturating_sub(RESERVE),
        };
        for part in &taken {
            if let Ok(bytes) = &part.content {
                budget.left = budget.left.saturating_sub(bytes.len() as u64);
            }
        }
        let mut own = self.provd_parts().await;
        // The host's parts come as it reads them (event logs before trace
        // files); the trace files are read within what is left.
        let host_parts = self.host.diagnostic_parts(since, budget.left).await;
        let (logs, traces): (Vec<_>, Vec<_>) = host_parts
            .into_iter()
            .partition(|p| !p.path.starts_with("agent/trace/"));
        own.extend(logs);
        own.extend(self.log_part().await);
        own.extend(traces);
        for part in own {
            let part = budget.take(part);
            let missing = part.content.as_ref().err().cloned();
            let progress = DiagnosticsItem::Progress {
                path: part.path.clone(),
                missing,
                detail: String::new(),
            };
            if tx.send(Ok(progress)).await.is_err() {
                return Ok(()); // the caller went away
            }
            taken.push(part);
        }
        let (zip, summary) = blocking_zip(taken).await?;
        for chunk in zip.chunks(CHUNK) {
            if tx
                .send(Ok(DiagnosticsItem::Chunk(chunk.to_vec())))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        let _ = tx.send(Ok(DiagnosticsItem::Summary(summary))).await;
        Ok(())
    }

    /// provd's own view: versions and services, the registry options, a
    /// credential-free Verify, recent operations with their events.
    async fn provd_parts(&self) -> Vec<DiagnosticPart> {
        let status = self.host.agent_status().await;
        let settings = self.host.agent_settings().await;
        vec![
            DiagnosticPart {
                path: "agent/status.txt".into(),
                content: status
                    .map(|s| format!("{s:#?}\n").into_bytes())
                    .map_err(|e| e.to_string()),
            },
            DiagnosticPart {
                path: "agent/registry-options.txt".into(),
                content: settings
                    .map(|s| format!("{s:#?}\n").into_bytes())
                    .map_err(|e| e.to_string()),
            },
            DiagnosticPart {
                path: "provd/version.txt".into(),
                content: Ok(format!("provd {}\n", env!("CARGO_PKG_VERSION")).into_bytes()),
            },
            DiagnosticPart {
                path: "provd/verify.txt".into(),
                content: self.verify_report().await,
            },
            DiagnosticPart {
                path: "provd/operations.json".into(),
                content: self.operations().await,
            },
        ]
    }

    async fn verify_report(&self) -> Result<Vec<u8>, String> {
        let mut rx = self
            .verify
            .verify_credential_free()
            .await
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        while let Some(item) = rx.recv().await {
            match item {
                VerifyItem::Check(c) => text.push_str(&format!(
                    "{:?}\t{}\t{}\t{}\t{}\n",
                    c.status, c.id, c.subject, c.message, c.remedy
                )),
                VerifyItem::Report(r) => text.push_str(&format!(
                    "report: {:?} (pass {}, warn {}, fail {}, skip {})\n",
                    r.status, r.pass, r.warn, r.fail, r.skip
                )),
            }
        }
        Ok(text.into_bytes())
    }

    /// The newest operations, each with its events, as JSON lines.
    async fn operations(&self) -> Result<Vec<u8>, String> {
        let query = ListQuery {
            limit: RECENT_OPERATIONS,
            ..Default::default()
        };
        blocking(&self.store, move |s| {
            let page = s.list_operations(&query)?;
            let mut out = Vec::new();
            for op in page.operations {
                let events = s.events_after(&op.id, 0)?;
                let line = serde_json::json!({ "operation": op, "events": events });
                out.extend(line.to_string().into_bytes());
                out.push(b'\n');
            }
            Ok(out)
        })
        .await
        .map_err(|e: Error| e.to_string())
    }

    async fn log_part(&self) -> Option<DiagnosticPart> {
        let path = self.log_file.clone()?;
        let content = tokio::fs::read(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()));
        Some(DiagnosticPart {
            path: "provd/provd.log".into(),
            content,
        })
    }
}

/// What is left of `max_bytes`.
struct Budget {
    left: u64,
}

impl Budget {
    /// The part, or the part marked missing when it does not fit.
    fn take(&mut self, part: DiagnosticPart) -> DiagnosticPart {
        match &part.content {
            Ok(bytes) if bytes.len() as u64 > self.left => DiagnosticPart {
                content: Err(format!(
                    "left out: {} bytes, over what was left of max_bytes ({})",
                    bytes.len(),
                    self.left
                )),
                path: part.path,
            },
            Ok(bytes) => {
                self.left -= bytes.len() as u64;
                part
            }
            Err(_) => part,
        }
    }
}

async fn blocking_zip(parts: Vec<DiagnosticPart>) -> Result<(Vec<u8>, Summary), Error> {
    tokio::task::spawn_blocking(move || bundle::zip(parts))
        .await
        .map_err(|e| Error::internal("building the support bundle", e))?
}
