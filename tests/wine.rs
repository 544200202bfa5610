//! provd.exe for real on the Wine "Windows host" (`deploy/lab/wine.sh`):
//! registered and started as a Windows service through the SCM, driven from
//! Linux over mTLS: Install of the lab MSI (file source + SHA-256), both
//! agent services Running through GetAgent, the same install again does no
//! work, a corrupt package is refused with nothing installed, and a failing
//! MSI gives a typed error after rolling back.
//!
//! Needs the Wine lab and a cross-built provd.exe, so it is ignored in the
//! plain test run; `deploy/test.sh` runs it as its Wine stage with
//! `PROVD_WINE_EXE` pointing at the exe.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use provd::pki::Role;
use provd::proto::v1;
use provd::proto::v1::agent_service_client::AgentServiceClient;
use tonic::transport::Channel;

fn wine_env() -> BTreeMap<String, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lab/wine.sh");
    let out = Command::new(script)
        .arg("env")
        .output()
        .expect("run wine.sh env");
    assert!(
        out.status.success(),
        "deploy/lab/wine.sh env failed: is the Wine lab up?"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim().trim_matches(['\'', '"']).to_owned()))
        .collect()
}

fn wine(env: &BTreeMap<String, String>, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("wine");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run wine")
}

/// A Linux path as Wine's Z: drive sees it.
fn z(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

fn file_uri(path: &Path) -> String {
    format!("file:///Z:{}", path.display())
}

async fn wait_for(addr: std::net::SocketAddr, pki: &Pki) -> Channel {
    let pair = pki.client("admin", &[Role::Admin]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(channel) = channel(addr, &pki.ca_pem(), &pair).await
            && AgentServiceClient::new(channel.clone())
                .get_agent(v1::GetAgentRequest {})
                .await
                .is_ok()
        {
            return channel;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "provd.exe never served"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn install(
    channel: &Channel,
    source: &Path,
    sha256: &str,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = AgentServiceClient::new(channel.clone())
        .install(v1::InstallRequest {
            source: file_uri(source),
            sha256: sha256.into(),
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
    finish(channel, op).await
}

async fn agent(channel: &Channel) -> v1::GetAgentResponse {
    AgentServiceClient::new(channel.clone())
        .get_agent(v1::GetAgentRequest {})
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn provd_exe_as_a_windows_service_installs_the_agent() {
    let exe = PathBuf::from(
        std::env::var("PROVD_WINE_EXE").expect("PROVD_WINE_EXE: a cross-built provd.exe"),
    );
    let env = wine_env();
    let lab = PathBuf::from(&env["WINE_LAB_DIR"]);
    let dir = lab.join("provd-test");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::create(&dir.join("pki"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let exe_in_lab = dir.join("provd.exe");
    std::fs::copy(&exe, &exe_in_lab).unwrap();
    let config = dir.join("provd.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{addr}\"\nstate_dir = '{}'\n[tls]\ncert = '{}'\nkey = '{}'\nclient_ca = '{}'\n[log]\nfilter = \"info\"\n",
            z(&dir.join("state")),
            z(&dir.join("pki/server.pem")),
            z(&dir.join("pki/server.key")),
            z(&dir.join("pki/ca.pem")),
        ),
    )
    .unwrap();

    // Clean slate: no provd service, no agent installed.
    let _ = wine(&env, &[&z(&exe_in_lab), "service", "uninstall"]);
    let _ = wine(&env, &["msiexec", "/x", &env["WINE_LAB_MSI"], "/quiet"]);

    let registered = wine(
        &env,
        &[
            &z(&exe_in_lab),
            "service",
            "install",
            "--config",
            &z(&config),
        ],
    );
    assert!(
        registered.status.success(),
        "provd service install: {}",
        String::from_utf8_lossy(&registered.stderr)
    );
    let channel = wait_for(addr, &pki).await;

    // Clean slate through the API itself (a previous run may have left the
    // agent installed).
    let op = AgentServiceClient::new(channel.clone())
        .uninstall(v1::UninstallRequest {
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    let (_, op) = finish(&channel, op).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        op.error
    );

    let before = agent(&channel).await;
    assert!(before.host_available, "{}", before.host_unavailable_reason);
    assert!(!before.installed);
    assert!(
        before
            .services
            .iter()
            .all(|s| s.state == v1::ServiceState::NotInstalled as i32)
    );

    // A corrupt package (wrong digest): refused, nothing installed.
    let (_, op) = install(&channel, Path::new(&env["WINE_LAB_MSI"]), &"0".repeat(64)).await;
    let error = op.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("INVALID_ARGUMENT", "verify-package")
    );
    assert!(!agent(&channel).await.installed);

    // The lab MSI: installed, both services Running, automatic start.
    let (events, op) = install(
        &channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &env["WINE_LAB_MSI_SHA256"],
    )
    .await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?} {events:#?}",
        op.error
    );
    assert_eq!(op.result["installed_version"], "1.1.977.0");
    let after = agent(&channel).await;
    assert!(after.installed);
    assert_eq!(after.version, "1.1.977.0");
    let names: Vec<_> = after
        .services
        .iter()
        .map(|s| s.display_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Microsoft Azure AD Connect Provisioning Agent",
            "Microsoft Azure AD Connect Agent Updater"
        ]
    );
    for s in &after.services {
        assert_eq!(s.state, v1::ServiceState::Running as i32, "{s:?}");
        assert_eq!(s.start_type, v1::StartType::Automatic as i32, "{s:?}");
    }

    // Again: no work, reported.
    let (events, op) = install(
        &channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &env["WINE_LAB_MSI_SHA256"],
    )
    .await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    assert_eq!(op.result["changed"], "false");
    assert!(
        events
            .iter()
            .any(|e| e.step == "check-version" && e.kind == v1::EventKind::StepSkipped as i32)
    );

    // A failing MSI: a typed installer error, rolled back, the agent untouched.
    let (_, op) = install(
        &channel,
        Path::new(&env["WINE_LAB_MSI_BAD"]),
        &env["WINE_LAB_MSI_BAD_SHA256"],
    )
    .await;
    let error = op.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("FAILED_PRECONDITION", "install-package")
    );
    assert!(
        error
            .message
            .contains("the installer failed with exit code"),
        "{}",
        error.message
    );
    let still = agent(&channel).await;
    assert_eq!(still.version, "1.1.977.0");
    assert!(
        still
            .services
            .iter()
            .all(|s| s.state == v1::ServiceState::Running as i32)
    );

    // A newer package upgrades; the older one afterwards does no work (the
    // failing package, 1.1.999.0, would now be skipped too, so it went first).
    let (events, op) = install(
        &channel,
        Path::new(&env["WINE_LAB_MSI_NEWER"]),
        &env["WINE_LAB_MSI_NEWER_SHA256"],
    )
    .await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?} {events:#?}",
        op.error
    );
    assert_eq!(op.result["installed_version"], "1.1.1000.0");
    let (events, op) = install(
        &channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &env["WINE_LAB_MSI_SHA256"],
    )
    .await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["installed_version"], "1.1.1000.0");
    assert!(events.iter().any(|e| e.step == "check-version"
        && e.kind == v1::EventKind::StepSkipped as i32
        && e.message.contains("1.1.1000.0")));

    // Uninstall through the API: services stopped, package removed; again: no work.
    for expect_changed in ["true", "false"] {
        let op = AgentServiceClient::new(channel.clone())
            .uninstall(v1::UninstallRequest {
                request_id: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .operation
            .unwrap();
        let (events, op) = finish(&channel, op).await;
        assert_eq!(
            op.state,
            v1::OperationState::Succeeded as i32,
            "{:?} {events:#?}",
            op.error
        );
        assert_eq!(op.result["changed"], expect_changed);
    }
    let gone = agent(&channel).await;
    assert!(!gone.installed);
    assert!(
        gone.services
            .iter()
            .all(|s| s.state == v1::ServiceState::NotInstalled as i32)
    );

    // The SCM's stop reaches provd: it shuts down gracefully and is removed.
    let removed = wine(&env, &[&z(&exe_in_lab), "service", "uninstall"]);
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(
        channel_gone(addr, &pki).await,
        "provd still answers after the service stopped"
    );
    let _ = wine(&env, &["msiexec", "/x", &env["WINE_LAB_MSI"], "/quiet"]);
}

async fn channel_gone(addr: std::net::SocketAddr, pki: &Pki) -> bool {
    let pair = pki.client("viewer", &[Role::Viewer]);
    for _ in 0..40 {
        let reachable = match channel(addr, &pki.ca_pem(), &pair).await {
            Ok(c) => AgentServiceClient::new(c)
                .get_agent(v1::GetAgentRequest {})
                .await
                .is_ok(),
            Err(_) => false,
        };
        if !reachable {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
