//! [`OtelMirror`]: each audit record as an OpenTelemetry log record, through
//! the logger `telemetry::init` set up (nothing without a collector).
//!
//! Event name `provd.audit`; body: the method (calls), or what the record
//! is (`3 denied calls suppressed`, `audit log pruned`, `torn last line
//! removed`); severity INFO, WARN for denied and suppressed calls;
//! timestamp: the record's time. Attributes: `audit.seq`, `audit.hash`,
//! `audit.prev_hash`, `audit.kind`, and per kind `audit.caller.cn`,
//! `audit.caller.serial`, `audit.caller.issuer`, `audit.caller.roles`
//! (comma-separated), `client.address` (address:port), `audit.transport`,
//! `rpc.method`, `audit.request_id`, `audit.request_digest`, `audit.code`,
//! `audit.operation_id`; `audit.suppressed.count`, `audit.suppressed.callers`
//! (`cn=count,…`); `audit.checkpoint.last_seq`, `audit.checkpoint.pruned`;
//! `audit.recovered.torn_bytes`. No request field other than the request id
//! is exported, and the digest covers no secret.

use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};

use super::{AuditMirror, Entry, Sealed};

/// Exports to the collector `[telemetry] otlp_endpoint` names.
#[derive(Debug, Clone, Copy, Default)]
pub struct OtelMirror;

fn text(value: &str) -> AnyValue {
    AnyValue::from(value.to_owned())
}

/// The record's attributes and body, and whether it is a warning.
fn describe(record: &Sealed) -> (Vec<(&'static str, AnyValue)>, String, bool) {
    let seq = i64::try_from(record.seq).unwrap_or(i64::MAX);
    let mut attributes = vec![
        ("audit.seq", AnyValue::Int(seq)),
        ("audit.hash", text(&record.hash)),
        ("audit.prev_hash", text(&record.prev_hash)),
    ];
    let count = |n: u64| AnyValue::Int(i64::try_from(n).unwrap_or(i64::MAX));
    let (kind, body, warn) = match &record.entry {
        Entry::Call(call) | Entry::Denied(call) => {
            attributes.extend([
                ("audit.caller.cn", text(&call.caller.cn)),
                ("audit.caller.serial", text(&call.caller.serial)),
                ("audit.caller.issuer", text(&call.caller.issuer)),
                ("audit.caller.roles", text(&call.caller.roles.join(","))),
                ("client.address", text(&call.peer)),
                ("audit.transport", text(&call.transport)),
                ("rpc.method", text(&call.method)),
                ("audit.code", text(&call.code)),
            ]);
            for (key, value) in [
                ("audit.request_id", &call.request_id),
                ("audit.request_digest", &call.request_digest),
                ("audit.operation_id", &call.operation_id),
            ] {
                if let Some(value) = value {
                    attributes.push((key, text(value)));
                }
            }
            let denied = matches!(record.entry, Entry::Denied(_));
            (
                if denied { "denied" } else { "call" },
                call.method.clone(),
                denied,
            )
        }
        Entry::Suppressed(s) => {
            let mut callers: Vec<String> = s
                .callers
                .iter()
                .map(|(cn, n)| format!("{cn}={n}"))
                .collect();
            if s.other_callers > 0 {
                callers.push(format!("(others)={}", s.other_callers));
            }
            attributes.extend([
                ("audit.suppressed.count", count(s.count)),
                ("audit.suppressed.callers", text(&callers.join(","))),
            ]);
            (
                "suppressed",
                format!("{} denied calls suppressed", s.count),
                true,
            )
        }
        Entry::Checkpoint(c) => {
            attributes.extend([
                ("audit.checkpoint.last_seq", count(c.last_seq)),
                ("audit.checkpoint.pruned", count(c.pruned)),
            ]);
            ("checkpoint", "audit log pruned".to_owned(), false)
        }
        Entry::Recovered(r) => {
            attributes.push(("audit.recovered.torn_bytes", count(r.torn_bytes)));
            ("recovered", "torn last line removed".to_owned(), true)
        }
    };
    attributes.push(("audit.kind", text(kind)));
    (attributes, body, warn)
}

impl AuditMirror for OtelMirror {
    fn mirror(&self, record: &Sealed) {
        let Some(logger) = crate::telemetry::audit_logger() else {
            return;
        };
        let (attributes, body, warn) = describe(record);
        let mut log = logger.create_log_record();
        log.set_event_name("provd.audit");
        log.set_target("provd.audit");
        let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(record.time_ms).unwrap_or(0));
        log.set_timestamp(at);
        log.set_observed_timestamp(std::time::SystemTime::now());
        let (severity, name) = if warn {
            (Severity::Warn, "WARN")
        } else {
            (Severity::Info, "INFO")
        };
        log.set_severity_number(severity);
        log.set_severity_text(name);
        log.set_body(AnyValue::from(body));
        log.add_attributes(attributes);
        logger.emit(log);
    }
}
