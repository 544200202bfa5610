//! Pushing a local package to provd hosts (PackageService.UploadPackage):
//! `provctl agent upload FILE`, and a document's `agent.source =
//! "upload:PATH"` in `provctl apply` / `provctl fleet apply`, which pushes
//! the file to every host (`--concurrency` at once, one stream each) before
//! the apply names it `staged:sha256:<hex>`.
//!
//! The file is never read whole into memory: it is hashed once in 256 KiB
//! reads, then each stream reads it again chunk by chunk. A broken stream
//! is resumed from what the host holds (GetUpload), a few times.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::Semaphore;
use tokio_stream::wrappers::ReceiverStream;

use provd_proto::v1;
use provd_proto::v1::package_service_client::PackageServiceClient;

use super::connect::{self, Channel};
use super::fleet::Host;

/// Bytes per UploadPackage message (the daemon takes up to 4 MiB).
pub const CHUNK: usize = 256 * 1024;

/// Streams tried per host before giving up (each resumes the last).
const ATTEMPTS: u32 = 4;

/// The scheme of a document's `agent.source` that names a local file.
const UPLOAD_SCHEME: &str = "upload:";

/// A package on this machine, hashed.
#[derive(Debug, Clone)]
pub struct LocalPackage {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    pub file_name: String,
}

impl LocalPackage {
    /// What Install's `source` names it by once uploaded.
    pub fn source(&self) -> String {
        format!("staged:sha256:{}", self.sha256)
    }
}

/// Hashes `path` (256 KiB at a time).
pub async fn inspect(path: &Path) -> anyhow::Result<LocalPackage> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .await
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    if size == 0 {
        bail!("{} is empty", path.display());
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} names no file", path.display()))?;
    Ok(LocalPackage {
        path: path.to_owned(),
        sha256: hex::encode(hasher.finalize()),
        size,
        file_name,
    })
}

/// The local path of an `upload:` source (`upload:///abs/agent.msi`, or
/// `upload:pkg/agent.msi` relative to the document's directory); `None`
/// for any other source.
pub fn upload_path(source: &str, document: &Path) -> Option<PathBuf> {
    let rest = source.strip_prefix(UPLOAD_SCHEME)?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = PathBuf::from(rest);
    Some(if path.is_relative() {
        document.parent().unwrap_or(Path::new(".")).join(path)
    } else {
        path
    })
}

/// Uploads `package` over `channel`, resuming a broken stream from what the
/// host holds; `progress(bytes the host holds)`.
pub async fn upload(
    channel: Channel,
    package: &LocalPackage,
    progress: impl Fn(u64),
) -> anyhow::Result<v1::UploadPackageResponse> {
    let mut client = PackageServiceClient::new(channel);
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        let held = client
            .get_upload(v1::GetUploadRequest {
                sha256: package.sha256.clone(),
            })
            .await
            .map_err(status)?
            .into_inner();
        let offset = if held.state == v1::UploadState::Partial as i32 {
            held.bytes_held.min(package.size)
        } else {
            0
        };
        progress(offset);
        match stream_once(&mut client, package, offset, &progress).await {
            Ok(done) => return Ok(done),
            Err(s) if retryable(&s) && attempt < ATTEMPTS => {
                last = Some(s);
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            Err(s) => return Err(status(s)),
        }
    }
    Err(status(last.unwrap_or_else(|| {
        tonic::Status::unavailable("no attempt was made")
    })))
}

/// A broken connection, or ABORTED: the host still counts the broken
/// stream as running (it has not seen the connection go yet), or holds
/// other bytes than the offset sent; the next attempt asks it again.
fn retryable(s: &tonic::Status) -> bool {
    matches!(
        s.code(),
        tonic::Code::Unavailable
            | tonic::Code::Unknown
            | tonic::Code::Cancelled
            | tonic::Code::Aborted
    )
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", s.code(), s.message())
}

/// One UploadPackage stream from `offset`: a reader task feeds the chunks
/// through a channel of one, so a stream holds about two chunks (with 200
/// hosts at once, 200 streams).
async fn stream_once(
    client: &mut PackageServiceClient<Channel>,
    package: &LocalPackage,
    offset: u64,
    progress: &impl Fn(u64),
) -> Result<v1::UploadPackageResponse, tonic::Status> {
    use v1::upload_package_request::Part;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(offset));
    let metadata = v1::UploadPackageRequest {
        part: Some(Part::Metadata(v1::UploadMetadata {
            sha256: package.sha256.clone(),
            size: package.size,
            file_name: package.file_name.clone(),
            offset,
        })),
    };
    let path = package.path.clone();
    let counter = sent.clone();
    let reader = tokio::spawn(async move {
        if tx.send(metadata).await.is_err() {
            return Ok(());
        }
        let mut file = tokio::fs::File::open(&path).await?;
        file.seek(std::io::SeekFrom::Start(offset)).await?;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            buf.truncate(n);
            let chunk = v1::UploadPackageRequest {
                part: Some(Part::Chunk(buf)),
            };
            // The host answered already (a staged package): stop reading.
            if tx.send(chunk).await.is_err() {
                return Ok(());
            }
            counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let call = client.upload_package(ReceiverStream::new(rx));
    tokio::pin!(call);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let answer = loop {
        tokio::select! {
            answer = &mut call => break answer,
            _ = tick.tick() => progress(sent.load(std::sync::atomic::Ordering::Relaxed)),
        }
    };
    reader.abort();
    let done = answer?.into_inner();
    progress(package.size);
    Ok(done)
}

/// One host's upload, as the fleet table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PushRow {
    pub host: String,
    /// OK (uploaded), STAGED (already there) or FAILED.
    pub status: String,
    pub bytes_sent: u64,
    pub duration_ms: u64,
    pub error: String,
}

/// Uploads `package` to every host, `concurrency` at once, with a bar per
/// host on a terminal (plain lines at each quarter otherwise).
pub async fn push_all(
    hosts: &[Host],
    package: &LocalPackage,
    concurrency: usize,
    quiet: bool,
) -> Vec<PushRow> {
    let fancy = !quiet && {
        use std::io::IsTerminal;
        std::io::stderr().is_terminal()
    };
    let multi = Arc::new(MultiProgress::with_draw_target(if fancy {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }));
    let style = ProgressStyle::with_template(
        "{prefix:>16} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let package = Arc::new(package.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for host in hosts.iter().cloned() {
        let (semaphore, package, multi, style) = (
            semaphore.clone(),
            package.clone(),
            multi.clone(),
            style.clone(),
        );
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let bar = multi.add(ProgressBar::new(package.size));
            bar.set_style(style);
            bar.set_prefix(host.name.clone());
            let started = Instant::now();
            let quarter = std::sync::atomic::AtomicU64::new(0);
            let say = |held: u64| {
                bar.set_position(held);
                let q = held.saturating_mul(4) / package.size.max(1);
                if !fancy && !quiet && q > quarter.swap(q, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!("{:>16} upload {}%", host.name, q * 25);
                }
            };
            let outcome = async {
                let channel = connect::connect(&host.settings).await?;
                upload(channel, &package, say).await
            }
            .await;
            let mut row = PushRow {
                host: host.name.clone(),
                status: "FAILED".into(),
                bytes_sent: 0,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                error: String::new(),
            };
            match outcome {
                Ok(done) => {
                    row.bytes_sent = done.bytes_received;
                    row.status = if done.already_staged { "STAGED" } else { "OK" }.into();
                    bar.finish_with_message(row.status.clone());
                }
                Err(e) => {
                    row.error = format!("{e:#}");
                    bar.abandon_with_message("FAILED");
                }
            }
            row
        });
    }
    let mut rows = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(row) = joined {
            rows.push(row);
        }
    }
    let _ = multi.clear();
    rows.sort_by(|a, b| a.host.cmp(&b.host));
    rows
}

/// A document's `upload:` source as a hashed local package, checked against
/// the document's `sha256` when it has one; `None` for any other source.
pub async fn document_package(
    desired: &v1::DesiredState,
    document: &Path,
) -> anyhow::Result<Option<LocalPackage>> {
    let Some(agent) = desired.agent.as_ref() else {
        return Ok(None);
    };
    let Some(path) = upload_path(&agent.source, document) else {
        return Ok(None);
    };
    let package = inspect(&path).await?;
    if !agent.sha256.is_empty() && !agent.sha256.eq_ignore_ascii_case(&package.sha256) {
        bail!(
            "agent.sha256 is {} but {} hashes to {}",
            agent.sha256,
            path.display(),
            package.sha256
        );
    }
    Ok(Some(package))
}

/// The document names the uploaded package from now on.
pub fn name_staged(desired: &mut v1::DesiredState, package: &LocalPackage) {
    if let Some(agent) = desired.agent.as_mut() {
        agent.source = package.source();
        agent.sha256.clone_from(&package.sha256);
    }
}

/// Pushes a document's `upload:` package to every host and names it
/// staged; fails naming each host that did not receive it (nothing is
/// applied then). No-op for any other source.
pub async fn stage_for_fleet(
    desired: &mut v1::DesiredState,
    document: &Path,
    hosts: &[Host],
    concurrency: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    let Some(package) = document_package(desired, document).await? else {
        return Ok(());
    };
    // On stderr even with --output json: the upload phase's own figures.
    eprintln!(
        "uploading {} ({} bytes, SHA-256 {}) to {} host(s), {} at once",
        package.path.display(),
        package.size,
        package.sha256,
        hosts.len(),
        concurrency.max(1)
    );
    let started = Instant::now();
    let rows = push_all(hosts, &package, concurrency, quiet).await;
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.status == "FAILED")
        .map(|r| format!("{}: {}", r.host, r.error))
        .collect();
    if !failed.is_empty() {
        bail!(
            "the package did not reach {} of {} host(s); nothing was applied (run again: \
             hosts that have it answer at once, broken uploads resume):\n  {}",
            failed.len(),
            rows.len(),
            failed.join("\n  ")
        );
    }
    let sent: u64 = rows.iter().map(|r| r.bytes_sent).sum();
    eprintln!(
        "package staged on {} host(s) ({sent} bytes sent) in {:.2}s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    name_staged(desired, &package);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_stream_and_an_aborted_one_are_tried_again_bad_input_is_not() {
        for code in [
            tonic::Code::Unavailable,
            tonic::Code::Aborted,
            tonic::Code::Cancelled,
        ] {
            assert!(retryable(&tonic::Status::new(code, "")), "{code:?}");
        }
        for code in [tonic::Code::InvalidArgument, tonic::Code::PermissionDenied] {
            assert!(!retryable(&tonic::Status::new(code, "")), "{code:?}");
        }
    }

    #[test]
    fn upload_sources_name_local_files() {
        let doc = Path::new("/ops/fleet/agent.toml");
        assert_eq!(
            upload_path("upload:///srv/a.msi", doc),
            Some(PathBuf::from("/srv/a.msi"))
        );
        assert_eq!(
            upload_path("upload:pkg/a.msi", doc),
            Some(PathBuf::from("/ops/fleet/pkg/a.msi"))
        );
        assert_eq!(upload_path("file:///srv/a.msi", doc), None);
        assert_eq!(upload_path("staged:sha256:00", doc), None);
    }

    #[tokio::test]
    async fn a_package_is_hashed_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.msi");
        let bytes: Vec<u8> = (0..(CHUNK * 2 + 7)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let p = inspect(&path).await.unwrap();
        assert_eq!(p.size, bytes.len() as u64);
        assert_eq!(p.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(p.file_name, "a.msi");
        assert_eq!(p.source(), format!("staged:sha256:{}", p.sha256));
    }
}
