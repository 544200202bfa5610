//! Shared helpers for tests against the Samba AD lab (`deploy/lab`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use provd::pki::Role;
use provd_proto::v1;
use provd_proto::v1::directory_service_client::DirectoryServiceClient;
use tonic::transport::Channel;

use super::*;

pub use super::finish;

/// The lab's environment, from `lab.sh env` after `lab.sh up`.
pub fn lab() -> &'static BTreeMap<String, String> {
    static LAB: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    LAB.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lab/lab.sh");
        let up = Command::new(script)
            .arg("up")
            .status()
            .expect("run lab.sh up");
        assert!(up.success(), "deploy/lab/lab.sh up failed (it needs root)");
        let out = Command::new(script)
            .arg("env")
            .output()
            .expect("run lab.sh env");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                let v = v.trim();
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                    .unwrap_or(v);
                (k.to_owned(), v.to_owned())
            })
            .collect()
    })
}

pub fn var(name: &str) -> String {
    lab()
        .get(name)
        .unwrap_or_else(|| panic!("lab.sh env does not set {name}"))
        .clone()
}

pub fn lab_script(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lab/lab.sh");
    let status = Command::new(script).args(args).status().unwrap();
    assert!(status.success(), "lab.sh {args:?} failed");
}

/// One lab test at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct LabDaemon {
    pub h: Harness,
    pub channel: Channel,
}

pub async fn daemon() -> LabDaemon {
    daemon_with(|_| {}).await
}

/// A daemon for the lab, with `adjust` applied to its configuration.
pub async fn daemon_with(adjust: impl FnOnce(&mut provd::config::Config)) -> LabDaemon {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::create(&dir.path().join("pki"));
    let mut config = config(dir.path(), &pki.dir);
    lab_directory(&mut config);
    config.directory.connect_timeout = Duration::from_secs(3);
    adjust(&mut config);
    let daemon = provd::Daemon::builder(config).start().await.unwrap();
    let h = Harness {
        addr: daemon.local_addr(),
        dir,
        pki,
        daemon: Some(daemon),
    };
    let channel = h.channel(Role::Admin).await;
    LabDaemon { h, channel }
}

/// The lab's DCs as a daemon reaches them: its CA and DNS servers.
pub fn lab_directory(config: &mut provd::config::Config) {
    config.directory.ca_file = Some(var("LAB_CA_PEM").into());
    config.directory.dns_servers = var("LAB_DNS_SERVERS")
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
}

pub fn admin() -> v1::Credential {
    v1::Credential {
        username: var("LAB_ADMIN_UPN"),
        password: var("LAB_PASSWORD"),
        kerberos: None,
    }
}

pub async fn add_directory(
    channel: &Channel,
    credential: v1::Credential,
    preferred: &[&str],
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = DirectoryServiceClient::new(channel.clone())
        .add_directory(v1::AddDirectoryRequest {
            domain: var("LAB_DOMAIN"),
            credential: Some(credential),
            preferred_domain_controllers: preferred.iter().map(|s| (*s).to_owned()).collect(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    finish(channel, op).await
}
