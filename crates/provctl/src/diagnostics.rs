//! `provctl diagnostics export` and `provctl fleet diagnostics`: a support
//! bundle (DiagnosticsService.ExportDiagnostics) streamed to a file. The
//! chunks go to `<file>.partial` as they arrive, hashed on the way; the
//! file is renamed into place only when the size and SHA-256 match the
//! daemon's summary, so a cut stream never leaves a file that looks whole.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use provd_proto::v1;
use provd_proto::v1::diagnostics_service_client::DiagnosticsServiceClient;
use provd_proto::v1::export_diagnostics_response::Item;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::connect::{self, Channel};
use crate::fleet::Host;

/// What one export asks for.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub event_log_hours: u32,
    pub max_bytes: u64,
    pub verbose_trace_minutes: u32,
}

/// Streams one bundle to `out`; `progress` sees each part as the daemon
/// reports it.
pub async fn export(
    channel: Channel,
    bounds: Bounds,
    out: &Path,
    mut progress: impl FnMut(&v1::DiagnosticsProgress),
) -> anyhow::Result<v1::DiagnosticsSummary> {
    let mut stream = DiagnosticsServiceClient::new(channel)
        .export_diagnostics(v1::ExportDiagnosticsRequest {
            event_log_hours: bounds.event_log_hours,
            max_bytes: bounds.max_bytes,
            verbose_trace_minutes: bounds.verbose_trace_minutes,
        })
        .await?
        .into_inner();
    let partial = partial_path(out);
    let mut file = std::fs::File::create(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let (mut hasher, mut size) = (Sha256::new(), 0u64);
    let mut summary = None;
    let result: anyhow::Result<()> = async {
        while let Some(message) = stream.message().await? {
            match message.item {
                Some(Item::Progress(p)) => progress(&p),
                // The verbose-trace window's operation: shown as a step.
                Some(Item::Operation(op)) => progress(&v1::DiagnosticsProgress {
                    path: "verbose-trace".into(),
                    detail: format!("operation {} (provctl ops cancel {0} ends it early)", op.id),
                    ..Default::default()
                }),
                Some(Item::Chunk(bytes)) => {
                    hasher.update(&bytes);
                    size += bytes.len() as u64;
                    file.write_all(&bytes)
                        .with_context(|| format!("cannot write {}", partial.display()))?;
                }
                Some(Item::Summary(s)) => summary = Some(s),
                None => {}
            }
        }
        Ok(())
    }
    .await;
    let checked = result.and_then(|()| {
        let s = summary.context("the stream ended without a summary")?;
        let digest = hex::encode(hasher.finalize());
        if s.size_bytes != size || s.sha256 != digest {
            bail!(
                "the bundle arrived damaged: {size} bytes, SHA-256 {digest}; the daemon sent {} bytes, SHA-256 {}",
                s.size_bytes,
                s.sha256
            );
        }
        file.sync_all()?;
        Ok(s)
    });
    match checked {
        Ok(s) => {
            std::fs::rename(&partial, out).with_context(|| {
                format!("cannot rename {} to {}", partial.display(), out.display())
            })?;
            Ok(s)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// One line per bundle.
pub fn render_summary(out: &Path, s: &v1::DiagnosticsSummary) -> String {
    format!(
        "{}: {} bytes, {} files, {} part(s) missing (MISSING.txt), {} value(s) redacted, SHA-256 {}\n",
        out.display(),
        s.size_bytes,
        s.files,
        s.missing,
        s.redactions,
        s.sha256
    )
}

/// One host's outcome in `fleet diagnostics`.
#[derive(Debug, serde::Serialize)]
pub struct FleetRow {
    pub host: String,
    pub file: String,
    /// OK, or the error.
    pub status: String,
    pub size_bytes: u64,
    pub missing: u32,
    pub redactions: u32,
}

/// A bundle from every host into `dir/<host>.zip`, `concurrency` at once.
pub async fn fleet(
    hosts: Vec<Host>,
    bounds: Bounds,
    dir: &Path,
    concurrency: usize,
) -> Vec<FleetRow> {
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for host in hosts {
        let semaphore = semaphore.clone();
        let file = dir.join(format!("{}.zip", safe_file_name(&host.name)));
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let result = async {
                let channel = connect::connect(&host.settings).await?;
                export(channel, bounds, &file, |_| {}).await
            }
            .await;
            let file_shown = file.display().to_string();
            match result {
                Ok(s) => FleetRow {
                    host: host.name,
                    file: file_shown,
                    status: "OK".into(),
                    size_bytes: s.size_bytes,
                    missing: s.missing,
                    redactions: s.redactions,
                },
                Err(e) => FleetRow {
                    host: host.name,
                    file: file_shown,
                    status: format!("{e:#}"),
                    size_bytes: 0,
                    missing: 0,
                    redactions: 0,
                },
            }
        });
    }
    let mut rows = Vec::new();
    while let Some(Ok(row)) = tasks.join_next().await {
        rows.push(row);
    }
    rows.sort_by(|a, b| a.host.cmp(&b.host));
    rows
}

/// A host name as a file name: nothing that could leave `dir`.
fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

pub fn render_fleet(rows: &[FleetRow]) -> String {
    let mut out = String::from("HOST\tSTATUS\tBYTES\tMISSING\tREDACTED\tFILE\n");
    for r in rows {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            r.host, r.status, r.size_bytes, r.missing, r.redactions, r.file
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_cannot_leave_the_folder() {
        assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_file_name("host1.contoso.com"), "host1.contoso.com");
        assert_eq!(
            partial_path(Path::new("/x/b.zip")),
            Path::new("/x/b.zip.partial")
        );
    }
}
