//! The audit file's chain: appends, reopening, what verify names for each
//! kind of damage, torn tails at start, and pruning with signed
//! checkpoints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::line::tests::call;
use super::*;
use crate::pki::Ca;
use rustls_pki_types::pem::PemObject;

const DAY: Duration = Duration::from_secs(86_400);

fn entry(n: u64, time_ms: i64) -> AuditEntry {
    AuditEntry {
        time_ms,
        event: AuditEvent::Call(call(n)),
    }
}

/// A server certificate and key in `dir`, as `provd pki` writes them.
fn signer(dir: &Path, name: &str) -> CheckpointSigner {
    crate::transport::tls::install_crypto_provider();
    let ca = Ca::generate("audit test CA", DAY).unwrap();
    let server = ca.issue_server(&[name.into()], &[], DAY).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &server.cert_pem).unwrap();
    std::fs::write(&key, &server.key_pem).unwrap();
    CheckpointSigner::Files { cert, key }
}

fn log_with(dir: &Path, n: u64) -> (PathBuf, FileAuditLog) {
    let path = dir.join("audit.log");
    let log = FileAuditLog::open(&path, Some(signer(dir, "localhost"))).unwrap();
    let entries: Vec<_> = (1..=n).map(|i| entry(i, 1_000 * i as i64)).collect();
    for chunk in entries.chunks(100) {
        log.append(chunk).unwrap();
    }
    (path, log)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn broken(path: &Path) -> Break {
    verify_file(path, None)
        .unwrap()
        .broken
        .expect("verify found nothing")
}

#[test]
fn appended_records_chain_and_a_reopened_log_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (path, log) = log_with(dir.path(), 5);
    drop(log);
    let log = FileAuditLog::open(&path, None).unwrap();
    let sealed = log.append(&[entry(6, 6_000)]).unwrap();
    assert_eq!(sealed[0].seq, 6);
    let report = verify_file(&path, None).unwrap();
    assert!(report.broken.is_none(), "{report}");
    assert_eq!((report.records, report.last_seq), (6, Some(6)));
    assert_eq!(report.last_hash, sealed[0].hash);
    assert!(
        report
            .to_string()
            .starts_with("6 records (seq 1-6), chain intact"),
        "{report}"
    );
    assert_eq!(
        lines(&path)[0].find("\"prev_hash\":\"0000"),
        lines(&path)[0].find("\"prev_hash\"")
    );
}

#[test]
fn verify_names_a_changed_a_removed_and_a_moved_record() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _log) = log_with(dir.path(), 20);
    let good = lines(&path);

    // One byte of record 10's request id.
    let mut changed = good.clone();
    changed[9] = changed[9].replacen("rid-10", "rid-1O", 1);
    write_lines(&path, &changed);
    let b = broken(&path);
    assert_eq!((b.seq, b.line), (10, 10));
    assert!(matches!(b.kind, BreakKind::HashMismatch { .. }), "{b}");
    assert!(
        b.to_string()
            .starts_with("record 10 (line 10): hash mismatch"),
        "{b}"
    );

    // Record 10 removed: line 10 holds record 11.
    let mut removed = good.clone();
    removed.remove(9);
    write_lines(&path, &removed);
    let b = broken(&path);
    assert_eq!(
        (b.seq, b.line, &b.kind),
        (10, 10, &BreakKind::Sequence { found: 11 })
    );

    // Records 10 and 11 swapped.
    let mut swapped = good.clone();
    swapped.swap(9, 10);
    write_lines(&path, &swapped);
    let b = broken(&path);
    assert_eq!(
        (b.seq, b.line, &b.kind),
        (10, 10, &BreakKind::Sequence { found: 11 })
    );

    // Record 10 rewritten with a recomputed hash: record 11 no longer
    // follows it.
    let mut resealed = good.clone();
    let mut forged: line::Line = serde_json::from_str(&resealed[9]).unwrap();
    if let Entry::Call(c) = &mut forged.entry {
        c.caller.cn = "someone-else".into();
    }
    resealed[9] = line::seal(&forged).unwrap().0.trim_end().to_owned();
    write_lines(&path, &resealed);
    let b = broken(&path);
    assert_eq!((b.seq, b.line), (11, 11));
    assert!(matches!(b.kind, BreakKind::PrevHash { .. }), "{b}");

    // A tail cut mid-line.
    let mut torn = good.join("\n");
    torn.truncate(torn.len() - 30);
    std::fs::write(&path, &torn).unwrap();
    let b = broken(&path);
    assert_eq!((b.seq, b.line), (20, 20));
    assert!(matches!(b.kind, BreakKind::Torn { .. }), "{b}");
    assert!(b.to_string().contains("torn line"), "{b}");
}

#[test]
fn a_torn_tail_is_cut_at_start_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (path, log) = log_with(dir.path(), 3);
    drop(log);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"seq\":4,\"time\":\"20");
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(broken(&path).kind, BreakKind::Torn { bytes: 19 }));

    let log = FileAuditLog::open(&path, None).unwrap();
    let report = verify_file(&path, None).unwrap();
    assert!(report.broken.is_none(), "{report}");
    assert_eq!(report.records, 4);
    let last = lines(&path).pop().unwrap();
    assert!(
        last.contains(r#""kind":"recovered","torn_bytes":19"#),
        "{last}"
    );
    assert_eq!(log.append(&[entry(5, 5_000)]).unwrap()[0].seq, 5);
}

#[test]
fn an_unreadable_last_record_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, "not a record\n").unwrap();
    let err = FileAuditLog::open(&path, None).unwrap_err();
    assert!(matches!(err, AuditError::Unusable { line: 1, .. }), "{err}");
    assert!(err.to_string().contains("move it away"), "{err}");
}

#[test]
fn pruning_leaves_a_signed_checkpoint_the_kept_records_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (path, log) = log_with(dir.path(), 30);
    let retention = Retention {
        max_age: None,
        max_records: Some(10),
    };
    assert!(log.prune_due(&retention, 0));
    let pruned = log.prune(&retention, 40_000).unwrap().unwrap();
    assert_eq!(
        pruned,
        Pruned {
            removed: 20,
            through_seq: 20,
            kept: 10
        }
    );
    assert!(!log.prune_due(&retention, 40_000));
    log.append(&[entry(31, 31_000)]).unwrap();

    let cert = std::fs::read(dir.path().join("localhost.pem")).unwrap();
    let report = verify_file(&path, Some(&cert)).unwrap();
    assert!(report.broken.is_none(), "{report}");
    assert_eq!(
        (report.records, report.first_seq, report.last_seq),
        (11, Some(21), Some(31))
    );
    let seen = report.checkpoint.as_ref().unwrap();
    assert_eq!(
        (seen.pruned, seen.last_seq, seen.signer_trusted),
        (20, 20, Some(true))
    );
    assert!(
        report.to_string().contains("records 1-20 pruned"),
        "{report}"
    );
    let first = lines(&path)[0].clone();
    assert!(
        first.starts_with(r#"{"seq":0,"#) && first.contains(r#""kind":"checkpoint""#),
        "{first}"
    );

    // Another server key did not sign it.
    let other = signer(dir.path(), "other.example");
    let CheckpointSigner::Files { cert, .. } = &other else {
        unreachable!("a file signer")
    };
    let other_cert = std::fs::read(cert).unwrap();
    let b = verify_file(&path, Some(&other_cert))
        .unwrap()
        .broken
        .unwrap();
    assert!(matches!(b.kind, BreakKind::UntrustedSigner { .. }), "{b}");

    // A checkpoint claiming fewer pruned records, resealed: its signature
    // no longer checks.
    let mut all = lines(&path);
    let mut forged: line::Line = serde_json::from_str(&all[0]).unwrap();
    if let Entry::Checkpoint(c) = &mut forged.entry {
        c.pruned = 0;
    }
    all[0] = line::seal(&forged).unwrap().0.trim_end().to_owned();
    write_lines(&path, &all);
    let b = broken(&path);
    assert!(matches!(b.kind, BreakKind::BadSignature(_)), "{b}");

    // A checkpoint further down the file is not one.
    let mut all = lines(&path);
    all.swap(0, 1);
    write_lines(&path, &all);
    assert_eq!(broken(&path).kind, BreakKind::Sequence { found: 21 });
}

#[test]
fn a_second_prune_counts_both_and_age_prunes_too() {
    let dir = tempfile::tempdir().unwrap();
    let (path, log) = log_with(dir.path(), 30);
    let by_count = Retention {
        max_age: None,
        max_records: Some(20),
    };
    assert_eq!(log.prune(&by_count, 0).unwrap().unwrap().removed, 10);
    // Records 1..=30 are 1 s apart: keep the last 5 s at t = 30 s.
    let by_age = Retention {
        max_age: Some(Duration::from_secs(5)),
        max_records: None,
    };
    assert!(log.prune_due(&by_age, 30_000));
    let pruned = log.prune(&by_age, 30_000).unwrap().unwrap();
    assert_eq!((pruned.through_seq, pruned.kept), (24, 6));
    let report = verify_file(&path, None).unwrap();
    assert!(report.broken.is_none(), "{report}");
    assert_eq!(report.checkpoint.unwrap().pruned, 24);
    // Reopened after a prune, the chain goes on.
    drop(log);
    let log = FileAuditLog::open(&path, None).unwrap();
    assert_eq!(log.append(&[entry(31, 31_000)]).unwrap()[0].seq, 31);
    assert!(verify_file(&path, None).unwrap().broken.is_none());
}

#[test]
fn a_broken_chain_is_not_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let (path, log) = log_with(dir.path(), 30);
    let mut all = lines(&path);
    all[2] = all[2].replacen("admin", "admiN", 1);
    write_lines(&path, &all);
    let retention = Retention {
        max_age: None,
        max_records: Some(5),
    };
    let err = log.prune(&retention, 0).unwrap_err();
    assert!(matches!(err, AuditError::Broken { .. }), "{err}");
    assert_eq!(lines(&path).len(), 30);
}

#[test]
fn a_store_key_the_listener_serves_signs_the_checkpoint() {
    // What the daemon passes for a store certificate: the served chain and
    // key through the listener's watch, no file (here a software key).
    crate::transport::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate("audit test CA", DAY).unwrap();
    let server = ca.issue_server(&["localhost".into()], &[], DAY).unwrap();
    let chain = crate::pki::certificates_from_pem(server.cert_pem.as_bytes(), "test")
        .unwrap()
        .into_iter()
        .map(rustls_pki_types::CertificateDer::from)
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).unwrap();
    let served =
        rustls::sign::CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
            .unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(std::sync::Arc::new(served));
    let path = dir.path().join("audit.log");
    let log = FileAuditLog::open(&path, Some(CheckpointSigner::Served(rx))).unwrap();
    let entries: Vec<_> = (1..=5).map(|i| entry(i, 1_000 * i as i64)).collect();
    log.append(&entries).unwrap();
    let retention = Retention {
        max_age: None,
        max_records: Some(2),
    };
    assert!(log.prune(&retention, 10_000).unwrap().is_some());
    let report = verify_file(&path, Some(server.cert_pem.as_bytes())).unwrap();
    assert!(report.broken.is_none(), "{report}");
    assert_eq!(
        report.checkpoint.as_ref().unwrap().signer_trusted,
        Some(true)
    );
}
