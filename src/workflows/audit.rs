//! The audit trail's policy: every mutating call and every denied call is
//! recorded (the transport reports them; it decides nothing), denied calls
//! at most at `[audit] denied_rate` per second after a burst of
//! `denied_burst` (a token bucket; the calls over it are counted, and one
//! `suppressed` record with the count and the callers is written when a
//! token is free again), and the log is pruned as `[audit] max_age` and
//! `max_records` say.
//!
//! One writer: a thread of its own owns the log (`backends::audit`). Calls
//! queue their records and return at once, so a slow disk never delays an
//! answer; the thread writes what is queued in one batch (one fsync), then
//! mirrors each record (OpenTelemetry, the Windows event log). Records
//! queued when the daemon stops are written before [`Audit::close`]
//! returns. A record that cannot be written is logged at ERROR with its
//! facts (the file is then short of it; the chain stays intact). A prune
//! that fails (a broken chain, a key that cannot sign) is logged at ERROR
//! and retried an hour later; the log grows until then.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::operations::now_ms;
use crate::backends::audit::{AuditLog, AuditMirror, Retention};
use crate::model::{AuditCall, AuditEntry, AuditEvent, AuditSuppressed};

/// What `[audit]` says, for the workflows.
#[derive(Debug, Clone, Copy)]
pub struct AuditSettings {
    pub retention: Retention,
    /// Denied calls recorded per second, on average.
    pub denied_rate: f64,
    /// Denied calls recorded in a burst.
    pub denied_burst: u32,
}

/// How often the writer looks for a due summary or prune while idle.
const TICK: Duration = Duration::from_millis(200);
/// Records written in one batch at most.
const MAX_BATCH: usize = 512;
/// After a failed prune, the next attempt waits this long.
const PRUNE_RETRY: Duration = Duration::from_secs(3600);

/// The denied-call token bucket and the calls it turned away.
#[derive(Debug)]
struct Limiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    suppressed: AuditSuppressed,
}

impl Limiter {
    fn new(rate: f64, burst: u32, now: Instant) -> Limiter {
        Limiter {
            rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: now,
            suppressed: AuditSuppressed::default(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The summary of the calls turned away, once a token pays for it.
    fn summary(&mut self, now: Instant) -> Option<AuditSuppressed> {
        if self.suppressed.count == 0 || !self.take(now) {
            return None;
        }
        Some(std::mem::take(&mut self.suppressed))
    }

    /// What a denied call at `now` becomes: the summary due first, if any,
    /// then the call itself unless it is over the rate (then counted).
    fn admit(&mut self, call: AuditCall, now: Instant, now_ms: i64) -> Vec<AuditEvent> {
        let mut events = Vec::new();
        if let Some(summary) = self.summary(now) {
            events.push(AuditEvent::Suppressed(summary));
        }
        if self.take(now) {
            events.push(AuditEvent::Denied(call));
        } else {
            self.suppressed.add(&call.caller.cn, now_ms);
        }
        events
    }
}

/// The audit trail, shared by the transport (which reports calls) and the
/// daemon (which closes it).
pub struct Audit {
    queue: Mutex<Option<mpsc::Sender<AuditEntry>>>,
    limiter: Arc<Mutex<Limiter>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit").finish_non_exhaustive()
    }
}

impl Audit {
    /// Starts the writer over `log`.
    pub fn start(
        log: Arc<dyn AuditLog>,
        mirrors: Vec<Arc<dyn AuditMirror>>,
        settings: AuditSettings,
    ) -> Result<Arc<Audit>, std::io::Error> {
        let (tx, rx) = mpsc::channel();
        let limiter = Arc::new(Mutex::new(Limiter::new(
            settings.denied_rate,
            settings.denied_burst,
            Instant::now(),
        )));
        let writer = Writer {
            log,
            mirrors,
            retention: settings.retention,
            limiter: limiter.clone(),
            queue: rx,
            next_prune: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("provd-audit".into())
            .spawn(move || writer.run())?;
        Ok(Arc::new(Audit {
            queue: Mutex::new(Some(tx)),
            limiter,
            writer: Mutex::new(Some(thread)),
        }))
    }

    fn send(&self, event: AuditEvent) {
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let entry = AuditEntry {
            time_ms: now_ms(),
            event,
        };
        match queue.as_ref() {
            Some(tx) if tx.send(entry.clone()).is_ok() => {}
            _ => tracing::error!(entry = ?entry, "audit: the trail is closed; record not written"),
        }
    }

    /// Records a mutating call that passed authorization, with its outcome.
    pub fn call(&self, call: AuditCall) {
        self.send(AuditEvent::Call(call));
    }

    /// Records a denied call, within the rate.
    pub fn denied(&self, call: AuditCall) {
        let mut limiter = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
        // Sent under the lock: the file keeps the order of the decisions.
        for event in limiter.admit(call, Instant::now(), now_ms()) {
            self.send(event);
        }
    }

    /// Writes what is queued (and the count of suppressed denied calls)
    /// and stops the writer. Blocks; later calls are logged, not written.
    pub fn close(&self) {
        drop(self.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        let thread = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("audit: the writer thread panicked");
        }
    }
}

struct Writer {
    log: Arc<dyn AuditLog>,
    mirrors: Vec<Arc<dyn AuditMirror>>,
    retention: Retention,
    limiter: Arc<Mutex<Limiter>>,
    queue: mpsc::Receiver<AuditEntry>,
    next_prune: Instant,
}

impl Writer {
    fn run(mut self) {
        loop {
            let mut batch = Vec::new();
            let open = match self.queue.recv_timeout(TICK) {
                Ok(entry) => {
                    batch.push(entry);
                    true
                }
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => false,
            };
            {
                // Under the limiter's lock, nothing is being queued: what
                // is queued now precedes a summary taken now.
                let mut limiter = self.limiter.lock().unwrap_or_else(|p| p.into_inner());
                while batch.len() < MAX_BATCH {
                    match self.queue.try_recv() {
                        Ok(entry) => batch.push(entry),
                        Err(_) => break,
                    }
                }
                let summary = if open {
                    limiter.summary(Instant::now())
                } else {
                    // Closing: the count goes in whatever the rate says.
                    Some(std::mem::take(&mut limiter.suppressed)).filter(|s| s.count > 0)
                };
                if let Some(summary) = summary {
                    batch.push(AuditEntry {
                        time_ms: now_ms(),
                        event: AuditEvent::Suppressed(summary),
                    });
                }
            }
            self.write(&batch);
            self.prune();
            if !open && batch.is_empty() {
                return;
            }
        }
    }

    fn write(&self, batch: &[AuditEntry]) {
        if batch.is_empty() {
            return;
        }
        match self.log.append(batch) {
            Ok(sealed) => {
                for record in &sealed {
                    for mirror in &self.mirrors {
                        mirror.mirror(record);
                    }
                }
            }
            Err(err) => {
                for entry in batch {
                    tracing::error!(error = %err, entry = ?entry, "audit: record not written");
                }
            }
        }
    }

    fn prune(&mut self) {
        let now = Instant::now();
        if now < self.next_prune || !self.log.prune_due(&self.retention, now_ms()) {
            return;
        }
        match self.log.prune(&self.retention, now_ms()) {
            Ok(Some(pruned)) => {
                tracing::info!(
                    removed = pruned.removed,
                    through_seq = pruned.through_seq,
                    kept = pruned.kept,
                    "audit: log pruned behind a signed checkpoint"
                );
            }
            Ok(None) => {}
            Err(err) => {
                tracing::error!(error = %err, "audit: cannot prune the log; retrying in an hour");
                self.next_prune = now + PRUNE_RETRY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AuditCaller;

    fn call(cn: &str) -> AuditCall {
        AuditCall {
            caller: AuditCaller {
                cn: cn.into(),
                serial: "01".into(),
                issuer: "CN=ca".into(),
                roles: vec!["viewer".into()],
            },
            peer: "127.0.0.1:1".into(),
            transport: "grpc".into(),
            method: "/provd.v1.AgentService/Install".into(),
            request_id: None,
            request_digest: None,
            code: "PERMISSION_DENIED".into(),
            operation_id: None,
        }
    }

    #[test]
    fn the_bucket_records_a_burst_then_the_rate_and_sums_up_the_rest() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(2.0, 3, t0);
        let mut kinds = Vec::new();
        // 10 denied calls at once: 3 recorded, 7 counted.
        for i in 0..10 {
            let who = if i % 2 == 0 { "mallory" } else { "eve" };
            kinds.extend(limiter.admit(call(who), t0, 1_000 + i));
        }
        assert_eq!(kinds.len(), 3);
        assert!(kinds.iter().all(|k| matches!(k, AuditEvent::Denied(_))));
        assert_eq!(limiter.suppressed.count, 7);
        // Not yet a whole token.
        assert_eq!(limiter.summary(t0 + Duration::from_millis(400)), None);
        // Half a second at 2/s pays for the summary.
        let summary = limiter.summary(t0 + Duration::from_millis(500)).unwrap();
        assert_eq!(summary.count, 7);
        assert_eq!((summary.first_ms, summary.last_ms), (1_003, 1_009));
        assert_eq!(summary.callers["mallory"], 3);
        assert_eq!(summary.callers["eve"], 4);
        assert_eq!(limiter.suppressed.count, 0);
        // A later call: recorded when a token is there, with no summary.
        let later = limiter.admit(call("eve"), t0 + Duration::from_secs(2), 3_000);
        assert!(matches!(later.as_slice(), [AuditEvent::Denied(_)]));
    }

    #[test]
    fn a_summary_comes_before_the_next_recorded_call() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(1.0, 2, t0);
        assert_eq!(limiter.admit(call("a"), t0, 0).len(), 1);
        assert_eq!(limiter.admit(call("b"), t0, 0).len(), 1);
        assert!(limiter.admit(call("c"), t0, 1).is_empty());
        // A second later one token pays for the summary and none is left,
        // so this call is counted for the next summary.
        let events = limiter.admit(call("d"), t0 + Duration::from_secs(1), 2);
        assert!(matches!(events.as_slice(), [AuditEvent::Suppressed(s)] if s.count == 1));
        assert_eq!(limiter.suppressed.count, 1);
        // Two seconds more: the summary, then the call itself.
        let events = limiter.admit(call("e"), t0 + Duration::from_secs(3), 3);
        assert!(matches!(
            events.as_slice(),
            [AuditEvent::Suppressed(s), AuditEvent::Denied(_)] if s.count == 1
        ));
    }
}
