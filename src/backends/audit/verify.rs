//! Walking the chain: what `provd audit verify` and every prune run.

use std::fmt;
use std::path::Path;

use super::AuditError;
use super::checkpoint::{self, Signer};
use super::line::{self, Entry, GENESIS, LineFault};

/// What a walk found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Records that checked out (checkpoints not counted), up to the first
    /// break.
    pub records: u64,
    /// The first and last of them.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// The last good record's hash (a checkpoint's `last_hash` when no
    /// record follows it; [`GENESIS`] for an empty file).
    pub last_hash: String,
    /// The checkpoint the file starts with, if pruned.
    pub checkpoint: Option<CheckpointSeen>,
    /// The first break, if any.
    pub broken: Option<Break>,
    /// Each good record's seq, time (ms) and byte offset, in order (what a
    /// prune cuts by).
    pub(super) records_at: Vec<RecordAt>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct RecordAt {
    pub seq: u64,
    pub time_ms: i64,
    pub offset: usize,
}

/// The checkpoint a file starts with.
#[derive(Debug, Clone)]
pub struct CheckpointSeen {
    pub time: String,
    pub pruned: u64,
    pub last_seq: u64,
    pub last_hash: String,
    pub signer: Signer,
    /// `Some(true)` when the signer's key is the trusted certificate's;
    /// `None` when no certificate was given to compare.
    pub signer_trusted: Option<bool>,
}

/// The first place the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// 1-based line of the file.
    pub line: usize,
    /// The record expected there.
    pub seq: u64,
    pub kind: BreakKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The record's bytes hash to something other than its `hash`.
    HashMismatch { stored: String, computed: String },
    /// The line does not end with `,"hash":"<64 hex>"}`.
    NoHash,
    /// The hash checks but the line is not a record.
    NotARecord(String),
    /// The line holds another record than the one expected.
    Sequence { found: u64 },
    /// `prev_hash` is not the hash of the record before.
    PrevHash { expected: String, found: String },
    /// The last line has no newline: a write cut short.
    Torn { bytes: usize },
    /// A checkpoint anywhere but the first line, or one not starting the
    /// chain (`seq` 0, `prev_hash` genesis).
    MisplacedCheckpoint,
    /// The checkpoint's signature does not check.
    BadSignature(String),
    /// Signed, but not with the trusted certificate's key.
    UntrustedSigner {
        subject: String,
        fingerprint: String,
    },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (seq, line) = (self.seq, self.line);
        match &self.kind {
            BreakKind::HashMismatch { stored, computed } => write!(
                f,
                "record {seq} (line {line}): hash mismatch, its bytes changed after it was \
                 written (stored {stored}, computed {computed})"
            ),
            BreakKind::NoHash => write!(
                f,
                "record {seq} (line {line}): no hash at the end of the line (the line was \
                 changed or is not a record)"
            ),
            BreakKind::NotARecord(reason) => {
                write!(f, "record {seq} (line {line}): not a record: {reason}")
            }
            BreakKind::Sequence { found } => write!(
                f,
                "record {seq} (line {line}): sequence gap, the line holds record {found} (a \
                 record was removed, inserted or moved)"
            ),
            BreakKind::PrevHash { expected, found } => write!(
                f,
                "record {seq} (line {line}): prev_hash {found} is not the hash of the record \
                 before it ({expected})"
            ),
            BreakKind::Torn { bytes } => write!(
                f,
                "record {seq} (line {line}): torn line, {bytes} bytes without a newline at the \
                 end of the file (a write cut short; provd removes it at its next start)"
            ),
            BreakKind::MisplacedCheckpoint => write!(
                f,
                "line {line}: a checkpoint that does not start the file (seq 0 and prev_hash \
                 of zeros on line 1)"
            ),
            BreakKind::BadSignature(reason) => {
                write!(f, "line {line}: bad checkpoint signature: {reason}")
            }
            BreakKind::UntrustedSigner {
                subject,
                fingerprint,
            } => write!(
                f,
                "line {line}: the checkpoint is signed by {subject} (certificate SHA-256 \
                 {fingerprint}), not with the given certificate's key"
            ),
        }
    }
}

impl std::error::Error for Break {}

impl fmt::Display for Report {
    /// One line: `N records (seq A–B), chain intact[, from checkpoint …];
    /// last hash H`, or where it broke.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(broken) = &self.broken {
            return write!(f, "{broken}");
        }
        match (self.first_seq, self.last_seq) {
            (Some(a), Some(b)) => {
                write!(f, "{} records (seq {a}-{b}), chain intact", self.records)?
            }
            _ => write!(f, "0 records, chain intact")?,
        }
        if let Some(c) = &self.checkpoint {
            write!(
                f,
                ", from checkpoint of {} (records 1-{} pruned, {} in all; signed by {}, \
                 certificate SHA-256 {}{})",
                c.time,
                c.last_seq,
                c.pruned,
                c.signer.subject,
                c.signer.fingerprint,
                match c.signer_trusted {
                    Some(true) => ", the server certificate's key",
                    _ => ", not compared with a server certificate (--cert)",
                }
            )?;
        }
        write!(f, "; last hash {}", self.last_hash)
    }
}

/// Walks the chain in `bytes` (a whole audit file). With `trusted` (a PEM
/// certificate), a checkpoint must be signed with that certificate's key.
pub fn verify_bytes(bytes: &[u8], trusted: Option<&[u8]>) -> Report {
    let trusted_key = trusted.map(checkpoint::trusted_key);
    let mut report = Report {
        records: 0,
        first_seq: None,
        last_seq: None,
        last_hash: GENESIS.to_owned(),
        checkpoint: None,
        broken: None,
        records_at: Vec::new(),
    };
    let mut next_seq = 1u64;
    // Complete lines end with a newline; what follows the last one is torn.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines = match complete {
        0 => None,
        n => Some(bytes[..n - 1].split(|b| *b == b'\n')),
    };
    let mut number = 0;
    let mut offset = 0;
    for text in lines.into_iter().flatten() {
        number += 1;
        let at = offset;
        offset += text.len() + 1;
        let broke = |kind| Break {
            line: number,
            seq: next_seq,
            kind,
        };
        let line = match line::check(text) {
            Ok(line) => line,
            Err(fault) => {
                report.broken = Some(broke(match fault {
                    LineFault::NoHash => BreakKind::NoHash,
                    LineFault::HashMismatch { stored, computed } => {
                        BreakKind::HashMismatch { stored, computed }
                    }
                    LineFault::NotARecord(reason) => BreakKind::NotARecord(reason),
                }));
                return report;
            }
        };
        if let Entry::Checkpoint(c) = &line.entry {
            if number != 1 || line.seq != 0 || line.prev_hash != GENESIS {
                report.broken = Some(broke(BreakKind::MisplacedCheckpoint));
                return report;
            }
            let signer = match checkpoint::verify(c, &line.time) {
                Ok(signer) => signer,
                Err(reason) => {
                    report.broken = Some(broke(BreakKind::BadSignature(reason)));
                    return report;
                }
            };
            let signer_trusted = match &trusted_key {
                None => None,
                Some(Ok(key)) => Some(*key == signer.public_key),
                Some(Err(reason)) => {
                    report.broken = Some(broke(BreakKind::BadSignature(format!(
                        "the trusted certificate {reason}"
                    ))));
                    return report;
                }
            };
            if signer_trusted == Some(false) {
                report.broken = Some(broke(BreakKind::UntrustedSigner {
                    subject: signer.subject.clone(),
                    fingerprint: signer.fingerprint.clone(),
                }));
                return report;
            }
            next_seq = c.last_seq + 1;
            report.last_hash.clone_from(&c.last_hash);
            report.checkpoint = Some(CheckpointSeen {
                time: line.time.clone(),
                pruned: c.pruned,
                last_seq: c.last_seq,
                last_hash: c.last_hash.clone(),
                signer,
                signer_trusted,
            });
            continue;
        }
        if line.seq != next_seq {
            report.broken = Some(broke(BreakKind::Sequence { found: line.seq }));
            return report;
        }
        if line.prev_hash != report.last_hash {
            report.broken = Some(broke(BreakKind::PrevHash {
                expected: report.last_hash.clone(),
                found: line.prev_hash,
            }));
            return report;
        }
        report.records += 1;
        report.first_seq.get_or_insert(line.seq);
        report.last_seq = Some(line.seq);
        report.last_hash = line.hash;
        report.records_at.push(RecordAt {
            seq: line.seq,
            time_ms: line::parse_time(&line.time).unwrap_or(0),
            offset: at,
        });
        next_seq += 1;
    }
    if complete < bytes.len() {
        report.broken = Some(Break {
            line: number + 1,
            seq: next_seq,
            kind: BreakKind::Torn {
                bytes: bytes.len() - complete,
            },
        });
    }
    report
}

/// [`verify_bytes`] over a file.
pub fn verify_file(path: &Path, trusted: Option<&[u8]>) -> Result<Report, AuditError> {
    let bytes = std::fs::read(path).map_err(|e| AuditError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(verify_bytes(&bytes, trusted))
}
