//! DiagnosticsService: the support bundle. Collects the parts (the host's
//! own: trace folder, exe.config, event logs; provd's: versions, registry
//! options, a credential-free Verify, recent operations, its log file),
//! each within what is left of the size budget, redacts every file
//! (`redact`), zips them with a manifest (`bundle`) and streams the zip.
//! Read-only: no operation, no writer slot.

mod bundle;
pub mod redact;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::operations::blocking;
use super::verify::{VerifyItem, VerifyWorkflows};
use super::{Error, FieldViolation};
use crate::backends::host::{DiagnosticPart, Host};
use crate::backends::store::{ListQuery, Store};

pub use bundle::Summary;

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
    /// A part collected (`missing: None`) or not (why).
    Progress {
        path: String,
        missing: Option<String>,
    },
    Chunk(Vec<u8>),
    Summary(Summary),
}

pub struct DiagnosticsWorkflows {
    host: Arc<dyn Host>,
    store: Arc<dyn Store>,
    verify: Arc<VerifyWorkflows>,
    /// `[log] file`, when provd writes one.
    log_file: Option<PathBuf>,
}

impl DiagnosticsWorkflows {
    pub fn new(
        host: Arc<dyn Host>,
        store: Arc<dyn Store>,
        verify: Arc<VerifyWorkflows>,
        log_file: Option<PathBuf>,
    ) -> Self {
        Self {
            host,
            store,
            verify,
            log_file,
        }
    }

    /// ExportDiagnostics: validates, then collects and streams in a task of
    /// its own (dropping the receiver stops it).
    pub fn export(
        self: &Arc<Self>,
        event_log_hours: u32,
        max_bytes: u64,
    ) -> Result<mpsc::Receiver<Result<DiagnosticsItem, Error>>, Error> {
        let mut v = Vec::new();
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
        let (tx, rx) = mpsc::channel(4);
        let this = self.clone();
        tokio::spawn(async move {
            let since = SystemTime::now() - Duration::from_secs(u64::from(hours) * 3600);
            if let Err(err) = this.run(&tx, since, max_bytes).await {
                let _ = tx.send(Err(err)).await;
            }
        });
        Ok(rx)
    }

    async fn run(
        &self,
        tx: &mpsc::Sender<Result<DiagnosticsItem, Error>>,
        since: SystemTime,
        max_bytes: u64,
    ) -> Result<(), Error> {
        let mut budget = Budget {
            left: max_bytes.saturating_sub(RESERVE),
        };
        let mut taken = Vec::new();
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
