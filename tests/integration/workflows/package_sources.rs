//! Install from an https:// source, against a loopback HTTPS server whose
//! CA is `host.package_ca_file`: resumed with a Range request after the
//! connection drops, started over when the server ignores Range, capped
//! when the server lies about the size or never ends, refused when the
//! bytes do not match `sha256` or `sha256` is missing. No message or event
//! carries the URL's query.

use std::time::Duration;

use super::support_tb::*;
use crate::common::hermetic::*;
use crate::common::package_server::{Misbehave, PackageServer};
use crate::common::sha256_hex;
use provd_proto::v1;
use tonic::Code;

const TOKEN: &str = "sig=SECRET-TOKEN";

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 239) as u8).collect()
}

/// A daemon trusting `server`'s CA, with the size cap `cap`.
async fn daemon(server: &PackageServer, cap: u64) -> Hermetic {
    let ca = server.ca_file.clone();
    Hermetic::start_configured(Fakes::default(), move |c| {
        c.host.package_ca_file = Some(ca);
        c.host.max_package_bytes = cap;
    })
    .await
}

async fn install(
    d: &Hermetic,
    url: String,
    sha256: String,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = start_install(d, install_request(url, sha256, true))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), d.finish(Some(op)))
        .await
        .expect("the install never ended")
}

/// Nothing the operation recorded names the query.
fn no_token(events: &[v1::OperationEvent], op: &v1::Operation) {
    let text = format!("{events:?} {op:?}");
    assert!(!text.contains("SECRET"), "the query leaked: {text}");
}

#[tokio::test]
async fn a_dropped_download_resumes_with_a_range_request() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = body(600 * 1024);
    let server = PackageServer::start(
        dir.path(),
        bytes.clone(),
        Misbehave {
            drop_first_after: Some(100 * 1024),
            ..Default::default()
        },
    )
    .await;
    let d = daemon(&server, 1 << 30).await;
    let (events, op) = install(
        &d,
        server.url(&format!("pkg/AgentSetup.exe?{TOKEN}")),
        sha256_hex(&bytes),
    )
    .await;
    ok(&op);
    no_token(&events, &op);
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].0.contains(TOKEN), "the query is sent: {seen:?}");
    assert_eq!(seen[0].1, "-");
    let resumed_at: u64 = seen[1]
        .1
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .unwrap()
        .parse()
        .unwrap();
    assert!(resumed_at > 0 && resumed_at <= 100 * 1024, "{seen:?}");
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("resuming at byte")),
        "{events:?}"
    );
    assert_eq!(d.fakes.host.installs().len(), 1);
    d.shutdown().await;
}

#[tokio::test]
async fn a_server_ignoring_range_is_read_from_the_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = body(300 * 1024);
    let server = PackageServer::start(
        dir.path(),
        bytes.clone(),
        Misbehave {
            drop_first_after: Some(64 * 1024),
            ignore_range: true,
            ..Default::default()
        },
    )
    .await;
    let d = daemon(&server, 1 << 30).await;
    let (events, op) = install(&d, server.url("AgentSetup.exe"), sha256_hex(&bytes)).await;
    ok(&op);
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("ignored the request to resume")),
        "{events:?}"
    );
    d.shutdown().await;
}

#[tokio::test]
async fn a_server_lying_about_the_size_meets_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = body(64 * 1024);
    // Endless: no length, the body repeats.
    let endless = PackageServer::start(
        dir.path(),
        bytes.clone(),
        Misbehave {
            endless: true,
            ..Default::default()
        },
    )
    .await;
    let d = daemon(&endless, 256 * 1024).await;
    let (events, op) = install(
        &d,
        endless.url(&format!("AgentSetup.exe?{TOKEN}")),
        sha256_hex(&bytes),
    )
    .await;
    let error = failed(&op);
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("FAILED_PRECONDITION", "fetch-package")
    );
    assert!(
        error.message.contains("host.max_package_bytes"),
        "{}",
        error.message
    );
    no_token(&events, &op);
    d.shutdown().await;

    // A Content-Length over the cap: refused before the body.
    let dir = tempfile::tempdir().unwrap();
    let huge = PackageServer::start(
        dir.path(),
        bytes.clone(),
        Misbehave {
            claim_length: Some(10 << 30),
            ..Default::default()
        },
    )
    .await;
    let d = daemon(&huge, 256 * 1024).await;
    let (_, op) = install(&d, huge.url("AgentSetup.exe"), sha256_hex(&bytes)).await;
    let error = failed(&op);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert!(error.message.contains("larger than"), "{}", error.message);
    assert!(d.fakes.host.installs().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn wrong_bytes_fail_the_hash_check_and_sha256_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = body(32 * 1024);
    let server = PackageServer::start(dir.path(), bytes.clone(), Misbehave::default()).await;
    let d = daemon(&server, 1 << 30).await;
    let (events, op) = install(
        &d,
        server.url(&format!("AgentSetup.exe?{TOKEN}")),
        sha256_hex(b"other bytes"),
    )
    .await;
    let error = failed(&op);
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("INVALID_ARGUMENT", "verify-package")
    );
    assert!(
        error.message.contains("does not match"),
        "{}",
        error.message
    );
    no_token(&events, &op);
    assert!(d.fakes.host.installs().is_empty());

    // No sha256: the call itself is refused, naming it.
    let refused = start_install(
        &d,
        install_request(
            server.url(&format!("AgentSetup.exe?{TOKEN}")),
            String::new(),
            true,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violations(&refused), ["sha256"]);
    assert!(
        !refused.message().contains("SECRET"),
        "{}",
        refused.message()
    );
    assert_eq!(server.seen().len(), 1, "nothing fetched for a refused call");
    d.shutdown().await;
}

#[cfg(not(windows))]
#[tokio::test]
async fn unc_sources_need_a_windows_host() {
    let d = Hermetic::start().await;
    let refused = start_install(
        &d,
        install_request("file://fs01/share/agent.msi".into(), "00".repeat(32), true),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violations(&refused), ["source"]);
    assert!(
        refused.message().contains("UNC paths need a Windows host"),
        "{}",
        refused.message()
    );
    d.shutdown().await;
}
