//! Install's package source as a hostile caller may name it: the size cap
//! (`host.max_package_bytes`), files that are not packages (devices,
//! sockets, directories, pipes unless `host.allow_fifo_packages`), file://
//! URIs with percent-escapes, enum numbers the contract does not define,
//! and a `source` longer than the contract allows. Nothing is left in
//! staging after any refusal.
#![cfg(unix)]

use std::time::Duration;

use super::support_tb::*;
use crate::common::hermetic::*;
use crate::common::{fifo, sha256_hex};
use provd_proto::v1;
use tonic::Code;

/// Files left in the daemon's staging directory (none when it is absent).
fn staged(d: &Hermetic) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(d.h.dir.path().join("state/staging")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn uri(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

/// Install of `source` (skipping registration), watched to its end.
async fn install(d: &Hermetic, source: String, sha256: String) -> v1::Operation {
    let op = start_install(d, install_request(source, sha256, true))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), d.finish(Some(op)))
        .await
        .expect("the install never ended")
        .1
}

fn with_cap(bytes: u64) -> impl FnOnce(&mut provd::config::Config) {
    move |c| c.host.max_package_bytes = bytes
}

#[tokio::test]
async fn a_named_pipe_is_refused_unless_the_setting_allows_it() {
    let d = Hermetic::start_configured(Fakes::default(), |c| {
        c.host.allow_fifo_packages = false;
    })
    .await;
    let pipe = fifo(d.h.dir.path(), "agent.msi");
    let op = install(&d, uri(&pipe), sha256_hex(EXE_BYTES)).await;
    let error = failed(&op);
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("INVALID_ARGUMENT", "fetch-package")
    );
    for part in [
        "source:",
        "a named pipe (FIFO)",
        "host.allow_fifo_packages = true",
    ] {
        assert!(error.message.contains(part), "{}", error.message);
    }
    assert!(staged(&d).is_empty(), "{:?}", staged(&d));
    assert!(d.fakes.host.installs().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn devices_sockets_and_directories_are_refused_naming_what_they_are() {
    let d = Hermetic::start().await;
    let dir = d.h.dir.path();
    // /dev/zero behind a name that looks like a package: judged by what the
    // link resolves to, never opened (reading it would never end).
    let zero = dir.join("x.msi");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let folder = dir.join("folder.msi");
    std::fs::create_dir(&folder).unwrap();
    let socket = dir.join("s.exe");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    for (path, kind) in [
        (zero, "a character device"),
        (folder, "a directory"),
        (socket, "a socket"),
    ] {
        let op = install(&d, uri(&path), sha256_hex(EXE_BYTES)).await;
        let error = failed(&op);
        assert_eq!(
            (error.code.as_str(), error.step.as_str()),
            ("INVALID_ARGUMENT", "fetch-package"),
            "{kind}"
        );
        assert!(
            error.message.contains("source:") && error.message.contains(kind),
            "{}",
            error.message
        );
        assert!(staged(&d).is_empty(), "{kind}: {:?}", staged(&d));
    }
    assert!(d.fakes.host.installs().is_empty());
    d.shutdown().await;
}

#[tokio::test]
async fn a_regular_file_over_the_cap_is_refused_and_one_at_the_cap_installs() {
    let d = Hermetic::start_configured(Fakes::default(), with_cap(1024)).await;
    let big = vec![7u8; 2048];
    let path = d.h.dir.path().join("big.exe");
    std::fs::write(&path, &big).unwrap();
    // Unreadable: the size is judged from its metadata before it is opened
    // (when not root, opening it would fail differently).
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let op = install(&d, uri(&path), sha256_hex(&big)).await;
    let error = failed(&op);
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("FAILED_PRECONDITION", "fetch-package")
    );
    assert_eq!(error.reason, "PACKAGE_TOO_LARGE");
    assert!(
        error
            .message
            .contains("host.max_package_bytes (1024 bytes)"),
        "{}",
        error.message
    );
    // The file's own size is not told.
    assert!(!error.message.contains("2048"), "{}", error.message);
    assert!(staged(&d).is_empty(), "{:?}", staged(&d));

    let exact = vec![8u8; 1024];
    let source = package(&d, "exact.exe", &exact);
    let op = install(&d, source, sha256_hex(&exact)).await;
    ok(&op);
    assert_eq!(d.fakes.host.installs().len(), 1);
    assert!(staged(&d).iter().all(|p| p.extension().unwrap() == "log"));
    d.shutdown().await;
}

#[tokio::test]
async fn a_pipe_streaming_past_the_cap_is_stopped_at_the_cap() {
    const CAP: u64 = 64 * 1024;
    let d = Hermetic::start_configured(Fakes::default(), with_cap(CAP)).await;
    let pipe = fifo(d.h.dir.path(), "endless.msi");
    // A producer that never ends on its own: only provd closing the pipe
    // stops it.
    let writer = tokio::task::spawn_blocking({
        let pipe = pipe.clone();
        move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(pipe).unwrap();
            let chunk = [0u8; 8192];
            let mut written = 0u64;
            while f.write_all(&chunk).is_ok() {
                written += chunk.len() as u64;
            }
            written
        }
    });
    let op = install(&d, uri(&pipe), sha256_hex(EXE_BYTES)).await;
    let error = failed(&op);
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("FAILED_PRECONDITION", "fetch-package")
    );
    assert_eq!(error.reason, "PACKAGE_TOO_LARGE");
    let written = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("provd kept the pipe open")
        .unwrap();
    // Read up to the cap plus one chunk; the pipe's buffer holds the rest.
    assert!(
        (CAP..CAP + 1024 * 1024).contains(&written),
        "{written} bytes written"
    );
    assert!(staged(&d).is_empty(), "partial copy left: {:?}", staged(&d));
    d.shutdown().await;
}

#[tokio::test]
async fn file_uris_are_percent_decoded_and_bad_escapes_name_source() {
    let d = Hermetic::start().await;
    let path = d.h.dir.path().join("My Agent.exe");
    std::fs::write(&path, EXE_BYTES).unwrap();
    let escaped = uri(&path).replace(' ', "%20");
    assert!(escaped.ends_with("/My%20Agent.exe"));
    let op = install(&d, escaped, sha256_hex(EXE_BYTES)).await;
    ok(&op);
    assert_eq!(d.fakes.host.installs().len(), 1);

    let dir = uri(d.h.dir.path());
    for bad in [format!("{dir}/a%00.exe"), format!("{dir}/%FF.exe")] {
        let err = start_install(
            &d,
            install_request(bad.clone(), sha256_hex(EXE_BYTES), true),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert_eq!(violations(&err), ["source"], "{bad}");
    }
    d.shutdown().await;
}

#[tokio::test]
async fn a_source_longer_than_the_contract_allows_is_refused_unstored() {
    let d = Hermetic::start().await;
    let long = format!("file:///{}.exe", "a".repeat(4096));
    let err = start_install(&d, install_request(long, sha256_hex(EXE_BYTES), true))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violations(&err), ["source"]);
    assert!(err.message().contains("4096 bytes"), "{}", err.message());
    let list = d
        .operations()
        .list_operations(v1::ListOperationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.operations.is_empty(), "an operation was stored");
    d.shutdown().await;
}

#[tokio::test]
async fn cloud_numbers_the_contract_does_not_define_are_invalid_naming_cloud() {
    let d = Hermetic::start().await;
    let source = package(&d, "a.exe", EXE_BYTES);
    for number in [99, -5] {
        let mut request = install_request(source.clone(), sha256_hex(EXE_BYTES), true);
        request.cloud = number;
        let err = start_install(&d, request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{number}");
        assert_eq!(violations(&err), ["cloud"]);
        assert!(err.message().contains(&number.to_string()));

        let desired = v1::DesiredState {
            agent: Some(v1::AgentSpec {
                source: source.clone(),
                sha256: sha256_hex(EXE_BYTES),
                accept_license: true,
                cloud: number,
                skip_registration: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = configuration(&d)
            .plan_configuration(v1::PlanConfigurationRequest {
                desired: Some(desired),
                credential: None,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{number}");
        assert_eq!(violations(&err), ["desired.agent.cloud"]);
    }
    // The contract's own numbers still work, unspecified included.
    let mut request = install_request(source, sha256_hex(EXE_BYTES), true);
    request.cloud = v1::CloudEnvironment::Unspecified as i32;
    ok(&d
        .finish(Some(start_install(&d, request).await.unwrap()))
        .await
        .1);
    d.shutdown().await;
}
