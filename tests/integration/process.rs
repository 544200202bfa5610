//! The real `provd` binary: killed with SIGKILL in the middle of an
//! operation, restarted on the same state, it reports that operation as
//! INTERRUPTED with its history intact and serves normally.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting
#![cfg(unix)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use provd::pki::Role;
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_provd(dir: &std::path::Path, port: u16, log_file: Option<&std::path::Path>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provd"));
    command.arg("serve");
    if let Some(path) = log_file {
        command.arg("--log-file").arg(path);
    }
    command
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--tls-cert")
        .arg(dir.join("pki/server.pem"))
        .arg("--tls-key")
        .arg(dir.join("pki/server.key"))
        .arg("--tls-client-ca")
        .arg(dir.join("pki/ca.pem"))
        // Held installs stream their package from a pipe.
        .args(["--host-allow-fifo-packages", "true"])
        .args([
            "--log-filter",
            if log_file.is_some() { "info" } else { "warn" },
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

async fn connect_when_serving(addr: std::net::SocketAddr, pki: &Pki) -> tonic::transport::Channel {
    let pair = pki.client("admin", &[Role::Admin]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(channel) = channel(addr, &pki.ca_pem(), &pair).await {
            let mut ops = OperationsServiceClient::new(channel.clone());
            if ops
                .list_operations(v1::ListOperationsRequest::default())
                .await
                .is_ok()
            {
                return channel;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "provd never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn kill_9_mid_operation_leaves_it_interrupted_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    let mut first = spawn_provd(dir.path(), port, None);
    let channel = connect_when_serving(addr, &pki).await;
    let pipe = fifo(dir.path(), "agent.msi");
    let op = AgentServiceClient::new(channel.clone())
        .install(v1::InstallRequest {
            source: format!("file://{}", pipe.display()),
            sha256: "0".repeat(64),
            accept_license: true,
            cloud: 0,
            request_id: "before-crash".into(),
            skip_registration: false,
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    // Wait until the fetch step has been recorded: the operation is mid-flight.
    let mut ops = OperationsServiceClient::new(channel);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let before = loop {
        let current = ops
            .get_operation(v1::GetOperationRequest { id: op.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .operation
            .unwrap();
        if current.state == v1::OperationState::Running as i32 && current.event_count >= 2 {
            break current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never running: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(first.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    first.wait().unwrap();

    // The restart logs to a file, as provd does as a Windows service.
    let log = dir.path().join("provd.log");
    let mut second = spawn_provd(dir.path(), port, Some(&log));
    let channel = connect_when_serving(addr, &pki).await;
    let mut ops = OperationsServiceClient::new(channel.clone());
    let after = ops
        .get_operation(v1::GetOperationRequest { id: op.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(after.state, v1::OperationState::Interrupted as i32);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("interrupted by a daemon restart") && logged.contains(&op.id),
        "{logged}"
    );
    assert_eq!(after.event_count, before.event_count + 1);
    let error = after.error.unwrap();
    assert_eq!(error.step, "fetch-package");
    assert!(error.message.contains("provd stopped"), "{}", error.message);

    // History intact: every earlier event, then the interruption.
    let mut stream = ops
        .watch_operation(v1::WatchOperationRequest {
            id: op.id.clone(),
            after_sequence: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        match item.item.unwrap() {
            v1::watch_operation_response::Item::Event(e) => events.push(e),
            v1::watch_operation_response::Item::Operation(o) => {
                assert_eq!(o.state, v1::OperationState::Interrupted as i32)
            }
        }
    }
    assert_eq!(events.len() as u64, after.event_count);
    assert_eq!(events[1].step, "fetch-package");
    assert_eq!(
        events
            .last()
            .unwrap()
            .attributes
            .get("state")
            .map(String::as_str),
        Some("INTERRUPTED")
    );

    // The retried request id still names the old operation; a new request runs.
    let file = dir.path().join("agent2.msi");
    std::fs::write(&file, b"pkg").unwrap();
    let mut agent = AgentServiceClient::new(channel);
    let retried = agent
        .install(v1::InstallRequest {
            source: format!("file://{}", pipe.display()),
            sha256: "0".repeat(64),
            accept_license: true,
            cloud: 0,
            request_id: "before-crash".into(),
            skip_registration: false,
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_eq!(retried.id, op.id);
    let fresh = agent
        .install(v1::InstallRequest {
            source: format!("file://{}", file.display()),
            sha256: sha256_hex(b"pkg"),
            accept_license: true,
            cloud: 0,
            request_id: String::new(),
            skip_registration: false,
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    assert_ne!(fresh.id, op.id);

    second.kill().unwrap();
    second.wait().unwrap();
}

/// Killed while a package is half copied (its pipe still open), provd
/// removes the partial copy at the next start, with every other staged
/// file no operation in the store owns; the installer log of a recorded
/// operation stays (its error may name it).
#[tokio::test]
async fn kill_9_mid_download_leaves_no_partial_copy_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let port = free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut first = spawn_provd(dir.path(), port, None);
    let channel = connect_when_serving(addr, &pki).await;

    let pipe = fifo(dir.path(), "agent.msi");
    let (release, held) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn({
        let pipe = pipe.clone();
        move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().write(true).open(pipe).unwrap();
            f.write_all(&[1u8; 100 * 1024]).unwrap();
            // Open until the daemon is gone: the download never finishes.
            let _ = held.recv();
        }
    });
    let op = AgentServiceClient::new(channel)
        .install(v1::InstallRequest {
            source: format!("file://{}", pipe.display()),
            sha256: "0".repeat(64),
            accept_license: true,
            skip_registration: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let staging = dir.path().join("state/staging");
    let partial = staging.join(format!("{}-agent.msi", op.id));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&partial).map_or(true, |m| m.len() < 100 * 1024) {
        assert!(tokio::time::Instant::now() < deadline, "nothing copied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What earlier runs may have left beside it.
    let own_log = staging.join(format!("{}-agent.log", op.id));
    let gone = "5d0c9a52-3a1e-4c8e-9d51-2f7f3b1c9e40";
    let strays = [
        staging.join(format!("{gone}-AgentSetup.log")),
        staging.join(format!("uninstall-{gone}.log")),
        staging.join(format!("{gone}-AgentSetup.exe")),
    ];
    for file in strays.iter().chain([&own_log]) {
        std::fs::write(file, b"x").unwrap();
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(first.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    first.wait().unwrap();
    release.send(()).unwrap();
    writer.join().unwrap();
    assert!(partial.exists(), "kill -9 leaves the partial copy");

    let log = dir.path().join("provd.log");
    let mut second = spawn_provd(dir.path(), port, Some(&log));
    connect_when_serving(addr, &pki).await;
    assert!(!partial.exists(), "the partial copy survived the restart");
    for stray in &strays {
        assert!(!stray.exists(), "{} survived the restart", stray.display());
    }
    assert!(own_log.exists(), "the recorded operation's log was removed");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("removed 4 files a previous run left in the staging directory"),
        "{logged}"
    );
    second.kill().unwrap();
    second.wait().unwrap();
}

/// `truncate -s 0 state/provd.redb; provd serve`: the daemon refuses to
/// start, naming the file and the way out, instead of serving an empty store.
#[tokio::test]
async fn an_emptied_state_file_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    Pki::create(&dir.path().join("pki"));
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::File::create(dir.path().join("state/provd.redb")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_provd"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--tls-cert")
        .arg(dir.path().join("pki/server.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("pki/server.key"))
        .arg("--tls-client-ca")
        .arg(dir.path().join("pki/ca.pem"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("provd.redb") && text.contains("empty"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("state/provd.redb"))
            .unwrap()
            .len(),
        0,
        "the file is left for the operator"
    );
}
