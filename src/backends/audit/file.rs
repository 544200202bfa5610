//! [`FileAuditLog`]: the audit log as an append-only file of sealed lines
//! (the format and its guarantees: the module doc of `backends::audit`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::checkpoint::{self, CheckpointSigner};
use super::line::{self, Checkpoint, Entry, GENESIS, Line, Recovered};
use super::verify::verify_bytes;
use super::{AuditError, AuditLog, Pruned, Retention, Sealed};
use crate::model::AuditEntry;

/// The audit log file. Appends and prunes are serialized by one lock.
pub struct FileAuditLog {
    path: PathBuf,
    signer: Option<CheckpointSigner>,
    state: Mutex<State>,
}

impl std::fmt::Debug for FileAuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileAuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct State {
    /// Opened for appending.
    file: File,
    /// Bytes in the file: where the next line starts.
    len: u64,
    next_seq: u64,
    last_hash: String,
    /// Records in the file (a checkpoint not counted).
    records: u64,
    /// The oldest record's time.
    oldest_ms: Option<i64>,
}

/// What a scan of the file at open found.
struct Scan {
    /// Bytes of complete lines.
    complete: u64,
    /// The bytes after the last newline.
    torn: Vec<u8>,
    lines: u64,
    first: Option<Vec<u8>>,
    second: Option<Vec<u8>>,
    last: Option<Vec<u8>>,
}

fn scan(file: &mut File) -> std::io::Result<Scan> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(file);
    let mut scan = Scan {
        complete: 0,
        torn: Vec::new(),
        lines: 0,
        first: None,
        second: None,
        last: None,
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            scan.torn = std::mem::take(&mut buf);
            break;
        }
        buf.pop();
        scan.complete += n as u64;
        scan.lines += 1;
        match scan.lines {
            1 => scan.first = Some(buf.clone()),
            2 => scan.second = Some(buf.clone()),
            _ => {}
        }
        scan.last = Some(buf.clone());
    }
    Ok(scan)
}

/// A line as far as it can be read: checked, else at least parsed (a
/// damaged record still tells its seq and hash; `verify` reports it).
fn read_line(bytes: &[u8]) -> Result<Line, String> {
    line::check(bytes).or_else(|fault| {
        tracing::error!(
            fault = ?fault,
            "audit log: a record does not check out; run `provd audit verify`"
        );
        serde_json::from_slice::<Line>(bytes).map_err(|e| e.to_string())
    })
}

fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent()
        && let Ok(dir) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Who called what is for the host's administrators only.
        options.mode(0o600);
    }
    options.open(path)
}

impl FileAuditLog {
    /// Opens (creating it and its directory if missing) the log at `path`.
    /// A torn last line a crash left is cut off and a `recovered` record
    /// appended. `signer` signs the checkpoints of prunes (none: the log is
    /// never pruned).
    pub fn open(path: &Path, signer: Option<CheckpointSigner>) -> Result<FileAuditLog, AuditError> {
        let io = |e: std::io::Error| AuditError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let existed = path.exists();
        let mut file = open_append(path).map_err(io)?;
        if !existed {
            sync_dir(path);
        }
        let scan = scan(&mut file).map_err(io)?;
        let unusable = |line: u64, reason: String| AuditError::Unusable {
            path: path.display().to_string(),
            line: usize::try_from(line).unwrap_or(usize::MAX),
            reason,
        };
        let (mut next_seq, mut last_hash) = (1, GENESIS.to_owned());
        if let Some(last) = &scan.last {
            let last = read_line(last).map_err(|reason| unusable(scan.lines, reason))?;
            match last.entry {
                Entry::Checkpoint(c) => (next_seq, last_hash) = (c.last_seq + 1, c.last_hash),
                _ => (next_seq, last_hash) = (last.seq + 1, last.hash),
            }
        }
        let first = scan.first.as_deref().map(read_line).transpose();
        let starts_with_checkpoint = matches!(
            first,
            Ok(Some(Line {
                entry: Entry::Checkpoint(_),
                ..
            }))
        );
        let oldest = if starts_with_checkpoint {
            scan.second.as_deref().map(read_line).transpose()
        } else {
            first
        };
        let oldest_ms = oldest
            .ok()
            .flatten()
            .and_then(|line| line::parse_time(&line.time));
        let log = FileAuditLog {
            path: path.to_owned(),
            signer,
            state: Mutex::new(State {
                file,
                len: scan.complete,
                next_seq,
                last_hash,
                records: scan.lines - u64::from(starts_with_checkpoint),
                oldest_ms,
            }),
        };
        if !scan.torn.is_empty() {
            log.cut_torn(&scan.torn)?;
        }
        Ok(log)
    }

    /// Removes the torn bytes after the last complete line and records it.
    fn cut_torn(&self, torn: &[u8]) -> Result<(), AuditError> {
        {
            let state = self.lock();
            state.file.set_len(state.len).map_err(|e| self.io(e))?;
            state.file.sync_all().map_err(|e| self.io(e))?;
        }
        tracing::warn!(
            path = %self.path.display(),
            bytes = torn.len(),
            "audit log: removed a torn last line (a write cut short); a `recovered` record says so"
        );
        let recovered = Entry::Recovered(Recovered {
            torn_bytes: torn.len() as u64,
            torn_sha256: hex::encode(Sha256::digest(torn)),
        });
        self.write_entries(vec![(line::now_ms(), recovered)])?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io(&self, e: impl std::fmt::Display) -> AuditError {
        AuditError::Io {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// Seals and appends entries in one write and one fsync. On a failed
    /// write the file is cut back, so no partial line stays.
    fn write_entries(&self, entries: Vec<(i64, Entry)>) -> Result<Vec<Sealed>, AuditError> {
        let mut state = self.lock();
        let mut text = String::new();
        let mut sealed = Vec::with_capacity(entries.len());
        let (mut seq, mut prev) = (state.next_seq, state.last_hash.clone());
        for (time_ms, entry) in entries {
            let line = Line {
                seq,
                time: line::format_time(time_ms),
                entry,
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            let (line_text, hash) = line::seal(&line).map_err(|e| self.io(e))?;
            text.push_str(&line_text);
            sealed.push(Sealed {
                seq,
                time_ms,
                hash: hash.clone(),
                prev_hash: prev,
                entry: line.entry,
            });
            seq += 1;
            prev = hash;
        }
        let written = state
            .file
            .write_all(text.as_bytes())
            .and_then(|()| state.file.sync_data());
        if let Err(err) = written {
            let _ = state.file.set_len(state.len);
            return Err(self.io(err));
        }
        state.len += text.len() as u64;
        state.next_seq = seq;
        state.last_hash = prev;
        state.records += sealed.len() as u64;
        if state.oldest_ms.is_none() {
            state.oldest_ms = sealed.first().map(|s| s.time_ms);
        }
        Ok(sealed)
    }

    fn due(state: &State, retention: &Retention, now_ms: i64) -> bool {
        let over_count = retention
            .max_records
            .is_some_and(|max| state.records > max.saturating_add((max / 10).max(1)));
        let over_age = match (retention.max_age, state.oldest_ms) {
            (Some(age), Some(oldest)) => {
                let slack = age / 100;
                let limit = i64::try_from((age + slack).as_millis()).unwrap_or(i64::MAX);
                oldest < now_ms.saturating_sub(limit)
            }
            _ => false,
        };
        over_count || over_age
    }
}

impl AuditLog for FileAuditLog {
    fn append(&self, entries: &[AuditEntry]) -> Result<Vec<Sealed>, AuditError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.write_entries(
            entries
                .iter()
                .map(|e| (e.time_ms, Entry::from(e.event.clone())))
                .collect(),
        )
    }

    fn prune_due(&self, retention: &Retention, now_ms: i64) -> bool {
        Self::due(&self.lock(), retention, now_ms)
    }

    fn prune(&self, retention: &Retention, now_ms: i64) -> Result<Option<Pruned>, AuditError> {
        let mut state = self.lock();
        if !Self::due(&state, retention, now_ms) {
            return Ok(None);
        }
        let bytes = std::fs::read(&self.path).map_err(|e| self.io(e))?;
        let report = verify_bytes(&bytes, None);
        if let Some(broken) = report.broken {
            return Err(AuditError::Broken {
                path: self.path.display().to_string(),
                broken,
            });
        }
        let records = &report.records_at;
        let by_count = retention.max_records.map_or(0, |max| {
            records
                .len()
                .saturating_sub(usize::try_from(max).unwrap_or(usize::MAX))
        });
        let by_age = retention.max_age.map_or(0, |age| {
            let limit = now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
            records.iter().take_while(|r| r.time_ms < limit).count()
        });
        let remove = by_count.max(by_age);
        let Some(last_removed) = remove.checked_sub(1).and_then(|i| records.get(i)) else {
            return Ok(None);
        };
        let kept = records.get(remove);
        // The last removed record's hash: the first kept one's prev_hash.
        let last_hash = match kept {
            Some(first) => {
                let end = bytes[first.offset..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(bytes.len(), |n| first.offset + n);
                line::check(&bytes[first.offset..end])
                    .map_err(|fault| self.io(format!("{fault:?}")))?
                    .prev_hash
            }
            None => report.last_hash.clone(),
        };
        let signer = self.signer.as_ref().ok_or_else(|| AuditError::Sign {
            path: self.path.display().to_string(),
            reason: "no key to sign with".into(),
        })?;
        let sign_err = |reason| AuditError::Sign {
            path: self.path.display().to_string(),
            reason,
        };
        let pruned = report.checkpoint.as_ref().map_or(0, |c| c.pruned) + remove as u64;
        let time = line::format_time(now_ms);
        let der = signer.certificate().map_err(sign_err)?;
        let message = Checkpoint::message(&time, pruned, last_removed.seq, &last_hash, &der);
        let signed = signer.sign(der, &message).map_err(sign_err)?;
        let checkpoint = Line {
            seq: 0,
            time,
            entry: Entry::Checkpoint(Checkpoint {
                pruned,
                last_seq: last_removed.seq,
                last_hash,
                signer: checkpoint::base64(&signed.signer_der),
                scheme: signed.scheme.to_owned(),
                signature: checkpoint::base64(&signed.signature),
            }),
            prev_hash: GENESIS.to_owned(),
            hash: String::new(),
        };
        let (head, _) = line::seal(&checkpoint).map_err(|e| self.io(e))?;
        let tail = kept.map_or(&[][..], |first| &bytes[first.offset..]);

        let temp = self.path.with_extension("pruning");
        let _ = std::fs::remove_file(&temp);
        let mut file = open_append(&temp).map_err(|e| self.io(e))?;
        file.write_all(head.as_bytes())
            .and_then(|()| file.write_all(tail))
            .and_then(|()| file.sync_all())
            .map_err(|e| self.io(e))?;
        // The new handle appends to the file once it has the log's name.
        // The old one is closed first: Windows may refuse to replace a file
        // that is open.
        drop(std::mem::replace(&mut state.file, file));
        if let Err(err) = std::fs::rename(&temp, &self.path) {
            // The log is as it was: append to it again.
            state.file = open_append(&self.path).map_err(|e| self.io(e))?;
            let _ = std::fs::remove_file(&temp);
            return Err(self.io(format!(
                "cannot replace the file with its pruned copy: {err}"
            )));
        }
        sync_dir(&self.path);
        state.len = (head.len() + tail.len()) as u64;
        state.records = (records.len() - remove) as u64;
        state.oldest_ms = kept.map(|r| r.time_ms);
        Ok(Some(Pruned {
            removed: remove as u64,
            through_seq: last_removed.seq,
            kept: state.records,
        }))
    }
}
