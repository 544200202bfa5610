//! Issue 17's rotation of provd's own certificates: `provd pki renew` (the
//! real binary) re-issues the server certificate and a running daemon
//! serves it without a restart; `--if-expiring-within` leaves a fresh
//! certificate alone; `[tls] client_crl` refuses a revoked client at the
//! TLS handshake, follows a CRL rewritten while running (`provd pki crl`),
//! names `tls.client_crl` when the file is bad at start, and keeps the
//! previous configuration (with a warning) when it turns bad later.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::*;
use provd::pki::{self, CertificateInfo, PemPair, Role};
use provd_proto::v1;
use provd_proto::v1::operations_service_client::OperationsServiceClient;

/// `provd pki ARGS…`, which must succeed; its stdout.
fn provd_pki(args: &[&str]) -> String {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_provd"))
        .arg("pki")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "provd pki {args:?}: {stdout}{stderr}");
    assert!(!stdout.contains("PRIVATE KEY") && !stderr.contains("PRIVATE KEY"));
    stdout
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn info(der: &[u8]) -> CertificateInfo {
    CertificateInfo::from_der(der, "test").unwrap()
}

fn public_key(der: &[u8]) -> Vec<u8> {
    let (_, x509) = x509_parser::parse_x509_certificate(der).unwrap();
    x509.public_key().raw.to_vec()
}

#[tokio::test]
async fn a_renewed_server_certificate_is_served_without_a_restart() {
    // A server certificate 2 days from expiry.
    let h = Harness::start_prepared(|pki, _| {
        pki.write_server(2 * DAY);
        pki.write_ca_key();
    })
    .await;
    let ca = h.pki.ca_pem();
    let client = h.pki.client("viewer", &[Role::Viewer]);
    let server_pem = h.pki.dir.join("server.pem");
    let before = served_certificate(h.addr, &ca, &client).await.unwrap();
    assert_eq!(before, certificate_der(&server_pem));
    let key_before = std::fs::read(h.pki.dir.join("server.key")).unwrap();

    let out = provd_pki(&[
        "renew",
        "--ca-dir",
        text(&h.pki.dir),
        "--if-expiring-within",
        "30d",
        "--validity-days",
        "90",
        text(&server_pem),
    ]);
    assert!(out.starts_with("renewed "), "{out}");
    assert!(out.contains("same key"), "{out}");
    let renewed = certificate_der(&server_pem);
    assert_ne!(renewed, before);
    assert_eq!(
        std::fs::read(h.pki.dir.join("server.key")).unwrap(),
        key_before,
        "the key file is not touched"
    );

    // A new connection sees the new certificate: the daemon never stopped.
    let served = eventually("the renewed certificate served", || async {
        let served = served_certificate(h.addr, &ca, &client).await.ok()?;
        (served == renewed).then_some(served)
    })
    .await;
    let (old, new) = (info(&before), info(&served));
    assert_ne!(new.serial, old.serial);
    assert!(new.not_after > old.not_after + time::Duration::days(80));
    assert_eq!(new.subject, old.subject);
    assert_eq!(public_key(&served), public_key(&before));
    let mut ops = OperationsServiceClient::new(h.channel(Role::Viewer).await);
    ops.list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap();
    h.shutdown().await;
}

#[test]
fn renew_leaves_a_certificate_far_from_expiry_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    provd_pki(&["init", text(&dir), "--validity-days", "365"]);
    let server = dir.join("server.pem");
    let admin = dir.join("client-admin.pem");
    let (server_before, admin_before) = (
        std::fs::read(&server).unwrap(),
        std::fs::read(&admin).unwrap(),
    );

    let out = provd_pki(&[
        "renew",
        "--ca-dir",
        text(&dir),
        "--if-expiring-within",
        "30d",
        text(&server),
        text(&admin),
    ]);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("skipped ")).count(),
        2,
        "{out}"
    );
    assert_eq!(std::fs::read(&server).unwrap(), server_before);
    assert_eq!(std::fs::read(&admin).unwrap(), admin_before);

    // Within a longer window it is due: a client keeps its name and role.
    let out = provd_pki(&[
        "renew",
        "--ca-dir",
        text(&dir),
        "--if-expiring-within",
        "400d",
        "--new-key",
        text(&admin),
    ]);
    assert!(
        out.starts_with("renewed ") && out.contains("new key"),
        "{out}"
    );
    let der = certificate_der(&admin);
    assert_eq!(
        pki::identity_from_der(&der).unwrap(),
        ("admin".to_owned(), vec![Role::Admin])
    );
    assert_ne!(
        public_key(&der),
        public_key(&certificate_der_of(&admin_before))
    );
}

fn certificate_der_of(pem: &[u8]) -> Vec<u8> {
    pki::certificates_from_pem(pem, "test").unwrap().remove(0)
}

/// `provd pki crl` (the library call) by the CA in `ca_dir` into `out`.
fn make_crl(ca_dir: &Path, out: &Path, revoke_certs: Vec<std::path::PathBuf>) {
    pki::crl(&pki::CrlOptions {
        ca_dir: ca_dir.to_owned(),
        out: out.to_owned(),
        revoke_certs,
        revoke_serials: vec![],
        next_update: 30 * DAY,
    })
    .unwrap();
}

/// `[tls] client_crl` at crl.pem beside the CA, revoking `revoke` (the CA's
/// key written beside it, so `provd pki crl` can sign the next one).
fn with_crl(pki: &Pki, config: &mut provd::config::Config, revoke: &[&PemPair]) {
    pki.write_ca_key();
    let mut certs = Vec::new();
    for (i, pair) in revoke.iter().enumerate() {
        let path = pki.dir.join(format!("revoked-{i}.pem"));
        std::fs::write(&path, &pair.cert_pem).unwrap();
        certs.push(path);
    }
    make_crl(&pki.dir, &pki.dir.join("crl.pem"), certs);
    config.tls.client_crl = Some(pki.dir.join("crl.pem"));
}

/// A daemon whose client CRL revokes mallory's (admin) certificate.
async fn start_revoking_mallory() -> (Harness, PemPair) {
    let mut mallory = None;
    let h = Harness::start_prepared(|pki, config| {
        let pair = pki.client("mallory", &[Role::Admin]);
        with_crl(pki, config, &[&pair]);
        mallory = Some(pair);
    })
    .await;
    (h, mallory.unwrap())
}

/// `GET /healthz` over a new TLS connection presenting `pair`.
async fn healthz(h: &Harness, pair: &PemPair) -> Result<String, String> {
    raw_healthz(h.addr, rustls_client(&h.pki.ca_pem(), Some(pair))).await
}

fn assert_revoked(result: Result<String, String>) {
    let err = result.expect_err("a revoked client was served");
    assert!(err.contains("CertificateRevoked"), "{err}");
}

#[tokio::test]
async fn a_revoked_client_is_refused_at_the_handshake_and_others_are_not() {
    let (h, mallory) = start_revoking_mallory().await;

    // The server's alert says why; no request is read.
    assert_revoked(healthz(&h, &mallory).await);
    // gRPC: the call fails at the transport (tonic: UNKNOWN "transport
    // error", the alert as its source), never reaching authorization.
    let failure = match channel(h.addr, &h.pki.ca_pem(), &mallory).await {
        Err(e) => format!("{e:?}"),
        Ok(ch) => {
            let status = OperationsServiceClient::new(ch)
                .list_operations(v1::ListOperationsRequest::default())
                .await
                .unwrap_err();
            assert!(
                !matches!(
                    status.code(),
                    tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
                ),
                "{status:?}"
            );
            format!("{status:?}")
        }
    };
    assert!(failure.contains("CertificateRevoked"), "{failure}");

    // Another client of the same CA (and the harness's admin) still works.
    let alice = h.pki.client("alice", &[Role::Viewer]);
    assert_eq!(healthz(&h, &alice).await.as_deref(), Ok("HTTP/1.1 200 OK"));
    let mut ops = OperationsServiceClient::new(h.channel(Role::Admin).await);
    ops.list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap();
    h.shutdown().await;
}

#[tokio::test]
async fn a_crl_rewritten_while_running_refuses_new_connections_without_a_restart() {
    // An empty CRL to start with.
    let h = Harness::start_prepared(|pki, config| with_crl(pki, config, &[])).await;
    let bob = h.pki.client("bob", &[Role::Operator]);
    let bob_pem = h.pki.dir.join("bob.pem");
    std::fs::write(&bob_pem, &bob.cert_pem).unwrap();
    assert_eq!(healthz(&h, &bob).await.as_deref(), Ok("HTTP/1.1 200 OK"));

    let crl = h.pki.dir.join("crl.pem");
    let out = provd_pki(&[
        "crl",
        "--ca-dir",
        text(&h.pki.dir),
        "--out",
        text(&crl),
        "--revoke",
        text(&bob_pem),
    ]);
    assert!(out.contains("1 revoked (1 added)"), "{out}");

    let refused = eventually("bob refused", || async { healthz(&h, &bob).await.err() }).await;
    assert!(refused.contains("CertificateRevoked"), "{refused}");
    let carol = h.pki.client("carol", &[Role::Viewer]);
    assert_eq!(healthz(&h, &carol).await.as_deref(), Ok("HTTP/1.1 200 OK"));
    h.shutdown().await;
}

#[tokio::test]
async fn a_bad_crl_at_start_is_an_error_naming_tls_client_crl() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::create(&tmp.path().join("pki"));
    let crl = pki.dir.join("crl.pem");
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let foreign = Pki::create(&other);
    foreign.write_ca_key();
    let foreign_crl = other.join("crl.pem");
    make_crl(&other, &foreign_crl, vec![]);

    for (contents, says) in [
        (Some(b"not a CRL".to_vec()), "not an X.509 CRL"),
        (
            Some(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".to_vec()),
            "CRL",
        ),
        (
            Some(std::fs::read(&foreign_crl).unwrap()),
            "not signed by any CA",
        ),
        (None, "cannot read it"),
    ] {
        match &contents {
            Some(bytes) => std::fs::write(&crl, bytes).unwrap(),
            None => {
                let _ = std::fs::remove_file(&crl);
            }
        }
        let mut config = config(tmp.path(), &pki.dir);
        config.tls.client_crl = Some(crl.clone());
        let Err(err) = provd::Daemon::builder(config).start().await else {
            panic!("started with a bad CRL ({says})");
        };
        let err = err.to_string();
        assert!(err.contains("tls.client_crl"), "{err}");
        assert!(err.contains(text(&crl)), "{err}");
        assert!(err.contains(says), "{says}: {err}");
    }
}

/// The existing CA reload's rule, which the CRL follows: a bad new file
/// keeps the configuration in use and logs a warning (at each check until
/// the files load again).
#[tokio::test]
async fn a_bad_crl_on_reload_keeps_the_previous_configuration_and_warns() {
    let log = LogCapture::start();
    let (h, mallory) = start_revoking_mallory().await;
    let alice = h.pki.client("alice", &[Role::Viewer]);
    let crl = h.pki.dir.join("crl.pem");
    let good = std::fs::read(&crl).unwrap();

    std::fs::write(
        &crl,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    eventually("the warning", || async {
        let text = log.text();
        (text.contains("new TLS sources rejected") && text.contains("tls.client_crl")).then_some(())
    })
    .await;
    assert_revoked(healthz(&h, &mallory).await);
    assert_eq!(healthz(&h, &alice).await.as_deref(), Ok("HTTP/1.1 200 OK"));

    // A good CRL again (one revoking nobody): the next check loads it.
    std::fs::write(&crl, &good).unwrap();
    let empty = h.pki.dir.join("empty-crl.pem");
    make_crl(&h.pki.dir, &empty, vec![]);
    std::fs::rename(&empty, &crl).unwrap();
    eventually("mallory served again", || async {
        healthz(&h, &mallory).await.ok()
    })
    .await;
    h.shutdown().await;
}
