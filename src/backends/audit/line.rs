//! One line of the audit file: the record's JSON, sealed by its hash.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{AuditCall, AuditEvent, AuditSuppressed};

/// `prev_hash` of record 1 (and of a checkpoint, which starts the file).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What separates the hashed bytes of a line from its hash.
const HASH_MARK: &[u8] = b",\"hash\":\"";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Line {
    pub seq: u64,
    pub time: String,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev_hash: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

/// What a record says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A mutating call that passed authorization.
    Call(AuditCall),
    /// A call refused before routing.
    Denied(AuditCall),
    /// Denied calls over the rate, counted.
    Suppressed(AuditSuppressed),
    /// Written at start when the previous run left a torn last line.
    Recovered(Recovered),
    /// The first line after a prune: stands for the records removed.
    Checkpoint(Checkpoint),
}

impl From<AuditEvent> for Entry {
    fn from(event: AuditEvent) -> Self {
        match event {
            AuditEvent::Call(call) => Entry::Call(call),
            AuditEvent::Denied(call) => Entry::Denied(call),
            AuditEvent::Suppressed(s) => Entry::Suppressed(s),
        }
    }
}

/// A torn last line cut off at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// Bytes removed after the last complete line.
    pub torn_bytes: u64,
    /// Their SHA-256 (hex).
    pub torn_sha256: String,
}

/// Stands for every record before `last_seq + 1`; signed with the daemon's
/// TLS server key (`checkpoint.rs`). Its own `seq` is 0 and its
/// `prev_hash` is [`GENESIS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Records pruned so far, this prune and earlier ones.
    pub pruned: u64,
    /// The last pruned record's seq and hash: the next record follows them.
    pub last_seq: u64,
    pub last_hash: String,
    /// The signer's certificate (DER, base64).
    pub signer: String,
    /// The signature scheme, as rustls names it (`ECDSA_NISTP256_SHA256`).
    pub scheme: String,
    /// The signature (base64) over [`Checkpoint::message`].
    pub signature: String,
}

impl Checkpoint {
    /// The bytes signed: a fixed label, then the checkpoint's facts, one
    /// per line, and the SHA-256 of the signer's certificate.
    pub fn message(
        time: &str,
        pruned: u64,
        last_seq: u64,
        last_hash: &str,
        signer_der: &[u8],
    ) -> Vec<u8> {
        format!(
            "provd audit checkpoint v1\ntime {time}\npruned {pruned}\nlast_seq {last_seq}\n\
             last_hash {last_hash}\nsigner_sha256 {}\n",
            hex::encode(Sha256::digest(signer_der))
        )
        .into_bytes()
    }
}

/// Now, in ms since the epoch.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `time_ms` as the file writes times: `2025-01-02T03:04:05.678Z`.
pub(super) fn format_time(time_ms: i64) -> String {
    let at = u64::try_from(time_ms)
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH);
    humantime::format_rfc3339_millis(at).to_string()
}

/// A time the file wrote, back to ms since the epoch.
pub(super) fn parse_time(text: &str) -> Option<i64> {
    let at: SystemTime = humantime::parse_rfc3339(text).ok()?;
    let ms = at.duration_since(UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

/// The line's text (with its newline) and its hash. `line.hash` is ignored.
pub(super) fn seal(line: &Line) -> Result<(String, String), serde_json::Error> {
    let unsealed = Line {
        hash: String::new(),
        ..line.clone()
    };
    let mut text = serde_json::to_string(&unsealed)?;
    // `{...}` → `{...` then `,"hash":"<hex>"}`.
    text.pop();
    let hash = hex::encode(Sha256::digest(text.as_bytes()));
    text.push_str(",\"hash\":\"");
    text.push_str(&hash);
    text.push_str("\"}\n");
    Ok((text, hash))
}

/// Why a line does not check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LineFault {
    /// No `,"hash":"<64 hex>"}` at its end.
    NoHash,
    /// The bytes before the hash hash to something else.
    HashMismatch { stored: String, computed: String },
    /// The hash checks but the JSON is not a record.
    NotARecord(String),
}

/// Checks a line's hash (over its exact bytes), then reads it.
pub(super) fn check(bytes: &[u8]) -> Result<Line, LineFault> {
    let end = bytes.len().checked_sub(2).ok_or(LineFault::NoHash)?;
    if &bytes[end..] != b"\"}" {
        return Err(LineFault::NoHash);
    }
    let mark = bytes
        .windows(HASH_MARK.len())
        .rposition(|w| w == HASH_MARK)
        .ok_or(LineFault::NoHash)?;
    let stored = &bytes[mark + HASH_MARK.len()..end];
    let is_hex = stored.len() == 64
        && stored
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    if !is_hex {
        return Err(LineFault::NoHash);
    }
    let stored = String::from_utf8_lossy(stored).into_owned();
    let computed = hex::encode(Sha256::digest(&bytes[..mark]));
    if stored != computed {
        return Err(LineFault::HashMismatch { stored, computed });
    }
    serde_json::from_slice::<Line>(bytes).map_err(|e| LineFault::NotARecord(e.to_string()))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::AuditCaller;

    pub(in crate::backends::audit) fn call(n: u64) -> AuditCall {
        AuditCall {
            caller: AuditCaller {
                cn: "admin".into(),
                serial: "0a1b".into(),
                issuer: "CN=provd test CA".into(),
                roles: vec!["admin".into()],
            },
            peer: "127.0.0.1:50000".into(),
            transport: "grpc".into(),
            method: "/provd.v1.AgentService/Install".into(),
            request_id: Some(format!("rid-{n}")),
            request_digest: Some("ab".repeat(32)),
            code: "OK".into(),
            operation_id: None,
        }
    }

    #[test]
    fn a_sealed_line_checks_and_any_changed_byte_does_not() {
        let line = Line {
            seq: 7,
            time: format_time(1_700_000_000_123),
            entry: Entry::Call(call(7)),
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        let (text, hash) = seal(&line).unwrap();
        assert!(
            text.starts_with(
                r#"{"seq":7,"time":"2023-11-14T22:13:20.123Z","kind":"call","caller":{"cn":"admin""#
            ),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                ",\"prev_hash\":\"{GENESIS}\",\"hash\":\"{hash}\"}}\n"
            )),
            "{text}"
        );
        let bytes = text.trim_end().as_bytes();
        let back = check(bytes).unwrap();
        assert_eq!(back.hash, hash);
        assert_eq!(
            Line {
                hash: String::new(),
                ..back
            },
            line
        );
        assert_eq!(parse_time(&line.time), Some(1_700_000_000_123));
        for at in 0..bytes.len() {
            let mut flipped = bytes.to_vec();
            flipped[at] ^= 0x01;
            assert!(
                check(&flipped).is_err(),
                "byte {at} flipped and the line still checks"
            );
        }
    }
}
