//! PackageService.UploadPackage end to end on the hermetic daemon: a
//! package streamed in chunks is staged only once whole and verified,
//! answered at once when already staged, resumed after a broken stream
//! from the bytes held, capped, refused with the wrong digest, admins only;
//! Install then names it `staged:sha256:<hex>`.

use std::time::Duration;

use super::support_tb::*;
use crate::common::hermetic::*;
use crate::common::sha256_hex;
use provd::pki::Role;
use provd_proto::v1;
use provd_proto::v1::package_service_client::PackageServiceClient;
use provd_proto::v1::upload_package_request::Part;
use tonic::Code;
use tonic::transport::Channel;

const CHUNK: usize = 64 * 1024;

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 241) as u8).collect()
}

fn metadata(sha256: &str, size: usize, offset: usize) -> v1::UploadPackageRequest {
    v1::UploadPackageRequest {
        part: Some(Part::Metadata(v1::UploadMetadata {
            sha256: sha256.into(),
            size: size as u64,
            file_name: "AADConnectProvisioningAgentSetup.exe".into(),
            offset: offset as u64,
        })),
    }
}

fn chunks(bytes: &[u8]) -> Vec<v1::UploadPackageRequest> {
    bytes
        .chunks(CHUNK)
        .map(|c| v1::UploadPackageRequest {
            part: Some(Part::Chunk(c.to_vec())),
        })
        .collect()
}

/// One whole stream: metadata, then `bytes` from `offset`.
async fn upload(
    channel: &Channel,
    sha256: &str,
    size: usize,
    offset: usize,
    bytes: &[u8],
) -> Result<v1::UploadPackageResponse, tonic::Status> {
    let mut messages = vec![metadata(sha256, size, offset)];
    messages.extend(chunks(bytes));
    PackageServiceClient::new(channel.clone())
        .upload_package(tokio_stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

async fn state(d: &Hermetic, sha256: &str) -> v1::GetUploadResponse {
    PackageServiceClient::new(d.channel.clone())
        .get_upload(v1::GetUploadRequest {
            sha256: sha256.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn uploads_dir(d: &Hermetic) -> Vec<String> {
    match std::fs::read_dir(d.h.dir.path().join("state/staging/uploads")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn an_upload_is_staged_once_and_installable_by_its_digest() {
    let d = Hermetic::start().await;
    let bytes = body(300 * 1024 + 17);
    let sha = sha256_hex(&bytes);
    let done = upload(&d.channel, &sha, bytes.len(), 0, &bytes)
        .await
        .unwrap();
    assert!(!done.already_staged);
    assert_eq!(done.bytes_received, bytes.len() as u64);
    assert_eq!(done.source, format!("staged:sha256:{sha}"));
    let got = state(&d, &sha).await;
    assert_eq!(got.state, v1::UploadState::Staged as i32);
    assert_eq!(got.bytes_held, bytes.len() as u64);
    assert_eq!(uploads_dir(&d), [format!("{sha}.exe")]);

    // Deduplicated: answered before any chunk is read.
    let again = upload(&d.channel, &sha.to_uppercase(), bytes.len(), 0, &[])
        .await
        .unwrap();
    assert!(again.already_staged);
    assert_eq!(again.bytes_received, 0);

    // Install names it; `sha256` may be left out, or must be the same.
    let op = start_install(
        &d,
        install_request(done.source.clone(), String::new(), true),
    )
    .await
    .unwrap();
    let (_, op) = d.finish(Some(op)).await;
    ok(&op);
    assert_eq!(d.fakes.host.installs().len(), 1);
    let refused = start_install(
        &d,
        install_request(done.source.clone(), "00".repeat(32), true),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violations(&refused), ["sha256"]);
    // The staged package stays for the next install.
    assert_eq!(uploads_dir(&d), [format!("{sha}.exe")]);

    // A digest never uploaded: the operation says so.
    let op = start_install(
        &d,
        install_request(
            format!("staged:sha256:{}", "ab".repeat(32)),
            String::new(),
            true,
        ),
    )
    .await
    .unwrap();
    let (_, op) = d.finish(Some(op)).await;
    let error = failed(&op);
    assert_eq!(error.code, "FAILED_PRECONDITION");
    assert!(error.message.contains("was uploaded"), "{}", error.message);
    d.shutdown().await;
}

#[tokio::test]
async fn a_broken_upload_resumes_from_the_bytes_held() {
    let d = Hermetic::start().await;
    let bytes = body(512 * 1024);
    let sha = sha256_hex(&bytes);
    // A stream that sends 3 chunks, then its client goes away.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(metadata(&sha, bytes.len(), 0)).await.unwrap();
    for c in chunks(&bytes[..3 * CHUNK]) {
        tx.send(c).await.unwrap();
    }
    let channel = d.channel.clone();
    let call = tokio::spawn(async move {
        PackageServiceClient::new(channel)
            .upload_package(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let held = loop {
        let got = state(&d, &sha).await;
        if got.state == v1::UploadState::Partial as i32 && got.bytes_held == 3 * CHUNK as u64 {
            break got.bytes_held as usize;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    call.abort();
    drop(tx);
    // The partial stays; nothing is staged yet.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state(&d, &sha).await.state, v1::UploadState::Partial as i32);
    assert_eq!(uploads_dir(&d), [format!("{sha}.partial")]);

    // Ahead of what is held: ABORTED, saying where to resume.
    let ahead = upload(
        &d.channel,
        &sha,
        bytes.len(),
        held + CHUNK,
        &bytes[held + CHUNK..],
    )
    .await
    .unwrap_err();
    assert_eq!(ahead.code(), Code::Aborted);
    assert!(
        ahead
            .message()
            .contains(&format!("resume with offset {held}")),
        "{}",
        ahead.message()
    );

    let done = upload(&d.channel, &sha, bytes.len(), held, &bytes[held..])
        .await
        .unwrap();
    assert_eq!(done.bytes_received, (bytes.len() - held) as u64);
    assert_eq!(state(&d, &sha).await.state, v1::UploadState::Staged as i32);

    // A stream that ends short keeps its bytes and says how to go on.
    let other = body(200 * 1024);
    let other_sha = sha256_hex(&other[..]);
    let short = upload(&d.channel, &other_sha, other.len(), 0, &other[..CHUNK])
        .await
        .unwrap_err();
    assert_eq!(short.code(), Code::InvalidArgument);
    assert_eq!(violations(&short), ["metadata.size"]);
    assert_eq!(state(&d, &other_sha).await.bytes_held, CHUNK as u64);
    d.shutdown().await;
}

#[tokio::test]
async fn uploads_are_capped_and_checked_against_their_digest() {
    let d = Hermetic::start_configured(Fakes::default(), |c| {
        c.host.max_package_bytes = 100 * 1024;
    })
    .await;
    let big = body(100 * 1024 + 1);
    let err = upload(&d.channel, &sha256_hex(&big), big.len(), 0, &big)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(precondition(&err).0, "PACKAGE_TOO_LARGE");

    // More bytes than the declared size.
    let bytes = body(10 * 1024);
    let err = upload(&d.channel, &sha256_hex(&bytes), 5 * 1024, 0, &bytes)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["chunk"]);

    // The wrong digest: refused, and nothing is left.
    let err = upload(&d.channel, &"00".repeat(32), bytes.len(), 0, &bytes)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["metadata.sha256"]);
    assert_eq!(
        state(&d, &"00".repeat(32)).await.state,
        v1::UploadState::Absent as i32
    );

    // No metadata first; bad metadata fields named.
    let err = PackageServiceClient::new(d.channel.clone())
        .upload_package(tokio_stream::iter(chunks(&bytes)))
        .await
        .unwrap_err();
    assert_eq!(violations(&err), ["metadata"]);
    let err = PackageServiceClient::new(d.channel.clone())
        .upload_package(tokio_stream::iter(vec![v1::UploadPackageRequest {
            part: Some(Part::Metadata(v1::UploadMetadata {
                sha256: "xyz".into(),
                size: 0,
                file_name: "../agent.zip".into(),
                offset: 0,
            })),
        }]))
        .await
        .unwrap_err();
    assert_eq!(
        violations(&err),
        ["metadata.sha256", "metadata.size", "metadata.file_name"]
    );
    d.shutdown().await;
}

#[tokio::test]
async fn only_admins_upload_or_read_uploads() {
    let d = Hermetic::start().await;
    let bytes = body(1024);
    let sha = sha256_hex(&bytes);
    for role in [Role::Viewer, Role::Operator] {
        let channel = d.channel_as(role).await;
        let err = upload(&channel, &sha, bytes.len(), 0, &bytes)
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
        let err = PackageServiceClient::new(channel)
            .get_upload(v1::GetUploadRequest {
                sha256: sha.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?}");
    }
    assert!(uploads_dir(&d).is_empty());
    d.shutdown().await;
}
