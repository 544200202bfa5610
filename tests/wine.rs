//! provd.exe for real on the Wine "Windows host" (`deploy/lab/wine.sh`):
//! registered and started as a Windows service through the SCM, driven from
//! Linux over mTLS, with the Samba lab as its directory and the tenant
//! emulator as its tenant. Install of the lab MSI (file source + SHA-256)
//! signs in by device code (approved through the emulator's lab control, as
//! a person would) and registers the agent, which then heartbeats with its
//! own certificate; the same install again does no work; a corrupt package
//! is refused with nothing installed; a failing MSI gives a typed error
//! after rolling back. Then the whole setup — gMSA (the agent service logs
//! on as it), permissions, domain, writeback — and Verify: all PASS; Graph
//! throttling is ridden out, a 403 named; the agent service stopped shows
//! as both a stopped service and an inactive agent.
//!
//! The document also configures cloud sync (`[domains.cloud_sync]`): the
//! emulator's job runs only while the lab agent heartbeats, exports the
//! users the agent counted in the lab domain, and quarantines when the
//! agent's service stops — Verify names it with Microsoft's remedy. Last, a
//! secret scan of provd.exe's log, store and events (`secrets`), after
//! DecommissionAgent took it all back (`decommission`: the package's three
//! uninstall entries, a second agent host sharing the gMSA from
//! `second_host`, Verify clean after).
//!
//! `failures` (tests/wine/failures.rs) drives the agent module's failure
//! modes and hostile input through the same provd.exe service setup;
//! `prereq` (tests/wine/prereq.rs) the host prerequisites and RemediateHost,
//! on Wine alone (no Samba lab); `settings` (tests/wine/settings.rs) the
//! agent's settings through an apply, an upgrade and an apply again;
//! `outbound` (tests/wine/outbound.rs) Verify's outbound checks through the
//! proxy the agent's exe.config names; `certstore` (tests/wine/certstore.rs)
//! provd.exe's certificate and client CA from Wine's certificate store, on
//! Wine alone. The tests take turns on the one Wine
//! host (`LAB`), in any order.
//!
//! Needs the Wine lab, the Samba lab and a cross-built provd.exe, so it is
//! ignored in the plain test run; `deploy/test.sh` runs it as its Wine stage
//! with `PROVD_WINE_EXE` pointing at the exe.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

#[path = "wine/certstore.rs"]
mod certstore;
mod common;
#[path = "wine/decommission.rs"]
mod decommission;
#[path = "wine/diagnostics.rs"]
mod diagnostics;
#[path = "wine/failures.rs"]
mod failures;
#[path = "wine/msi.rs"]
mod msi;
#[path = "wine/outbound.rs"]
mod outbound;
#[path = "wine/prereq.rs"]
mod prereq;
#[path = "wine/repair.rs"]
mod repair;
#[path = "wine/second_host.rs"]
mod second_host;
#[path = "wine/secrets.rs"]
mod secrets;
#[path = "wine/settings.rs"]
mod settings;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::fixtures::*;
use common::lab::{admin, var};
use common::tenant::TenantEmulator;
use common::*;
use provd::backends::directory::Change;
use provd::pki::Role;
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_proto::v1::cloud_sync_service_client::CloudSyncServiceClient;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use provd_proto::v1::verify_service_client::VerifyServiceClient;
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

/// `deploy/lab/wine.sh ARGS`, which must succeed.
fn wine_sh(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/lab/wine.sh");
    let out = Command::new(script)
        .args(args)
        .output()
        .expect("run wine.sh");
    assert!(
        out.status.success(),
        "wine.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    tenant: &TenantEmulator,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = start_install(channel, source, sha256).await;
    finish_with(channel, op, Some(tenant)).await
}

/// Install, not waited for.
async fn start_install(channel: &Channel, source: &Path, sha256: &str) -> v1::Operation {
    let response = AgentServiceClient::new(channel.clone())
        .install(install_request(source, sha256))
        .await
        .unwrap();
    response.into_inner().operation.unwrap()
}

fn install_request(source: &Path, sha256: &str) -> v1::InstallRequest {
    v1::InstallRequest {
        source: file_uri(source),
        sha256: sha256.into(),
        accept_license: true,
        cloud: 0,
        request_id: String::new(),
        skip_registration: false,
    }
}

/// A document of the stand-in agent alone, unregistered, with `settings`.
fn lab_agent_document(
    env: &BTreeMap<String, String>,
    settings: Option<v1::AgentSettingsSpec>,
) -> v1::DesiredState {
    v1::DesiredState {
        agent: Some(v1::AgentSpec {
            source: file_uri(Path::new(&env["WINE_LAB_MSI"])),
            sha256: env["WINE_LAB_MSI_SHA256"].clone(),
            accept_license: true,
            skip_registration: true,
            settings,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Uninstall, watched to its end.
async fn uninstall(channel: &Channel) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = AgentServiceClient::new(channel.clone())
        .uninstall(v1::UninstallRequest {
            request_id: String::new(),
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

/// The Wine lab is one host: its tests take turns (one provd service, one
/// agent install, one registry).
static LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// provd.exe registered and serving as a Windows service from
/// `WINE_LAB_DIR/<name>`, with a fresh tenant emulator, no agent installed and
/// no agent state an earlier run left. Holds the lab for as long as it lives.
struct WineProvd {
    env: BTreeMap<String, String>,
    dir: PathBuf,
    exe: PathBuf,
    addr: std::net::SocketAddr,
    pki: Pki,
    tenant: TenantEmulator,
    channel: Channel,
    _lab: tokio::sync::MutexGuard<'static, ()>,
}

impl WineProvd {
    /// `extra_toml` is appended to provd.toml (whole sections).
    async fn start(name: &str, extra_toml: &str) -> WineProvd {
        Self::start_on(name, extra_toml, true).await
    }

    /// Without the Samba lab: no `[directory]` section and no directory for
    /// the stand-in agent, and `lab.sh` is never run (its `env` starts the
    /// Samba lab first), for tests of the Windows host alone.
    async fn start_host_only(name: &str, extra_toml: &str) -> WineProvd {
        Self::start_on(name, extra_toml, false).await
    }

    async fn start_on(name: &str, extra_toml: &str, samba: bool) -> WineProvd {
        let files = |_: &Pki, _: &BTreeMap<String, String>, dir: &Path| {
            format!(
                "[tls]\ncert = '{}'\nkey = '{}'\nclient_ca = '{}'\n",
                z(&dir.join("pki/server.pem")),
                z(&dir.join("pki/server.key")),
                z(&dir.join("pki/ca.pem")),
            )
        };
        Self::start_with_tls(name, extra_toml, samba, files).await
    }

    /// With the `[tls]` section `tls` writes, once the lab's PKI is made
    /// in `dir/pki` (the certificate store's test puts it in the store).
    async fn start_with_tls(
        name: &str,
        extra_toml: &str,
        samba: bool,
        tls: impl FnOnce(&Pki, &BTreeMap<String, String>, &Path) -> String,
    ) -> WineProvd {
        let lab_turn = LAB.lock().await;
        let exe = PathBuf::from(
            std::env::var("PROVD_WINE_EXE").expect("PROVD_WINE_EXE: a cross-built provd.exe"),
        );
        let env = wine_env();
        let dir = PathBuf::from(&env["WINE_LAB_DIR"]).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki::create(&dir.join("pki"));
        let tls_toml = tls(&pki, &env, &dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let exe_in_lab = dir.join("provd.exe");
        std::fs::copy(&exe, &exe_in_lab).unwrap();
        // The tenant: agents without a heartbeat for 6 s are inactive (the
        // lab agent beats every 2 s).
        let emulator_bin = &common::workspace_bin("provd-tenant-emulator");
        let tenant = TenantEmulator::start(
            emulator_bin,
            &["--poll-interval", "1", "--inactive-after", "6"],
        )
        .await;
        // Where the stand-in powershell.exe's Connect-AADCloudSyncAzureAD
        // registers the agent (as the real module knows its service), with a
        // 2 s heartbeat.
        let ca_file = tenant.ca_file.display().to_string();
        wine_sh(&["tenant-emulator", &tenant.base(), &ca_file, "2"]);
        // Where and as whom the stand-in agent counts the domain's users for its
        // heartbeat's userCount: dc1 over LDAPS as the lab's reader (a LAB
        // shortcut for the agent's gMSA), the password from the lab's file.
        let directory_toml = if samba {
            wine_sh(&[
                "lab-directory",
                &format!("ldaps://{}", var("LAB_DC1_IP")),
                &var("LAB_CA_PEM"),
                &var("LAB_READER_UPN"),
                &var("LAB_READER_PASSWORD_FILE"),
            ]);
            let dns: Vec<String> = var("LAB_DNS_SERVERS")
                .split_whitespace()
                .map(|s| format!("\"{s}\""))
                .collect();
            format!(
                "[directory]\nca_file = '{}'\ndns_servers = [{}]\n",
                z(Path::new(&var("LAB_CA_PEM"))),
                dns.join(", ")
            )
        } else {
            wine_sh(&["lab-directory", "none"]);
            String::new()
        };
        let config = dir.join("provd.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\nstate_dir = '{}'\n{tls_toml}[log]\nfilter = \"info\"\nfile = '{}'\n\
                 {directory_toml}\
                 [tenant]\ntenant = \"{}\"\nauthority = \"{base}\"\ngraph = \"{base}\"\nca_file = '{}'\n\
                 {reachability}{extra_toml}",
                z(&dir.join("state")),
                z(&dir.join("provd.log")),
                common::tenant::TENANT,
                z(&tenant.ca_file),
                base = tenant.base(),
                // Verify's outbound checks probe the emulator (LAB), never
                // Microsoft's endpoints: [reachability] with expected_issuers.
                reachability = tenant.reachability_toml(),
            ),
        )
        .unwrap();

        // Clean slate: no provd service, no agent installed, and no agent
        // identity a failed earlier run left (the module would reuse it with
        // this run's fresh tenant, which does not know it), nor its log.
        let _ = wine(&env, &[&z(&exe_in_lab), "service", "uninstall"]);
        wine_sh(&["package-entries", "remove"]);
        let _ = wine(&env, &["msiexec", "/x", &env["WINE_LAB_MSI"], "/quiet"]);
        // An upgrade an earlier test left (its ProductCode is the newer package's).
        let _ = wine(
            &env,
            &["msiexec", "/x", &env["WINE_LAB_MSI_NEWER"], "/quiet"],
        );
        let agent_data = Path::new(&env["WINEPREFIX"]).join("drive_c/ProgramData/ProvdLabAgent");
        for stale in [
            "identity.json",
            "domains.json",
            "AADConnectProvisioningAgent.log",
        ] {
            let _ = std::fs::remove_file(agent_data.join(stale));
        }

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
        // A service's stderr goes nowhere: the log file is where provd.exe speaks.
        let logged = std::fs::read_to_string(dir.join("provd.log")).unwrap_or_default();
        assert!(logged.contains("provd serving"), "provd.log: {logged:?}");
        WineProvd {
            env,
            dir,
            exe: exe_in_lab,
            addr,
            pki,
            tenant,
            channel,
            _lab: lab_turn,
        }
    }

    /// The SCM's stop reaches provd: it shuts down gracefully and is
    /// removed; then the agent package and the emulator go too.
    async fn stop(self) {
        let removed = wine(&self.env, &[&z(&self.exe), "service", "uninstall"]);
        assert!(
            removed.status.success(),
            "{}",
            String::from_utf8_lossy(&removed.stderr)
        );
        assert!(
            channel_gone(self.addr, &self.pki).await,
            "provd still answers after the service stopped"
        );
        let _ = wine(
            &self.env,
            &["msiexec", "/x", &self.env["WINE_LAB_MSI"], "/quiet"],
        );
        wine_sh(&["tenant-emulator", "none"]);
        wine_sh(&["lab-directory", "none"]);
        self.tenant.stop().await;
    }
}

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn provd_exe_as_a_windows_service_installs_the_agent() {
    let provd = WineProvd::start("provd-test", "").await;
    let (env, channel, tenant) = (&provd.env, &provd.channel, &provd.tenant);

    // Clean slate through the API itself (a previous run may have left the
    // agent installed).
    let (_, op) = uninstall(channel).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?}",
        op.error
    );

    let before = agent(channel).await;
    assert!(before.host_available, "{}", before.host_unavailable_reason);
    assert!(!before.installed);
    assert!(
        before
            .services
            .iter()
            .all(|s| s.state == v1::ServiceState::NotInstalled as i32),
        "{:?}",
        before.services
    );

    // A corrupt package (wrong digest): refused, nothing installed.
    let (_, op) = install(
        channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &"0".repeat(64),
        tenant,
    )
    .await;
    let error = op.error.unwrap();
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("INVALID_ARGUMENT", "verify-package")
    );
    assert!(!agent(channel).await.installed);

    // The lab MSI: installed, signed in (the operator approves the code the
    // event carries), registered; both services Running, automatic start.
    let (events, op) = install(
        channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &env["WINE_LAB_MSI_SHA256"],
        tenant,
    )
    .await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?} {events:#?}",
        op.error
    );
    assert_eq!(op.result["installed_version"], "1.1.977.0");
    let steps: Vec<_> = events
        .iter()
        .filter(|e| e.kind == v1::EventKind::StepSucceeded as i32)
        .map(|e| e.step.as_str())
        .collect();
    assert_eq!(
        steps
            .iter()
            .copied()
            .filter(|s| *s != "start-services")
            .collect::<Vec<_>>(),
        [
            "fetch-package",
            "verify-package",
            "check-version",
            "install-package",
            "sign-in",
            "connect-tenant",
        ]
    );
    // The installer starts the services itself; then start-services has
    // nothing to do and is a skip.
    assert!(
        events.iter().any(|e| e.step == "start-services"
            && (e.kind == v1::EventKind::StepSkipped as i32
                || e.kind == v1::EventKind::StepSucceeded as i32)),
        "{events:#?}"
    );
    let asked = events
        .iter()
        .find(|e| e.kind == v1::EventKind::ActionRequired as i32)
        .expect("the sign-in was relayed");
    assert!(asked.attributes["verification_uri"].starts_with(&tenant.base()));
    let agent_id = op.result["agent_id"].clone();
    let after = agent(channel).await;
    assert!(after.installed);
    assert_eq!(after.version, "1.1.977.0");
    let session = after.tenant.clone().unwrap();
    assert!(session.signed_in);
    assert_eq!(session.agent_id, agent_id);
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
    // The agent heartbeats with its own certificate: the tenant lists it
    // active, under the machine name provd registered.
    let listed = wait_for_agent(tenant, &agent_id, "active").await;
    assert_eq!(listed["machineName"], session.machine_name.as_str());

    // Again: no work, reported; no second sign-in, no second registration.
    let (events, op) = install(
        channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &env["WINE_LAB_MSI_SHA256"],
        tenant,
    )
    .await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["agent_id"], agent_id);
    for step in ["check-version", "sign-in", "connect-tenant"] {
        assert!(
            events
                .iter()
                .any(|e| e.step == step && e.kind == v1::EventKind::StepSkipped as i32),
            "{step} not skipped: {events:#?}"
        );
    }
    assert_eq!(tenant.agents().await.len(), 1, "one registration only");

    // A failing MSI: a typed installer error, rolled back, the agent untouched.
    let (_, op) = install(
        channel,
        Path::new(&env["WINE_LAB_MSI_BAD"]),
        &env["WINE_LAB_MSI_BAD_SHA256"],
        tenant,
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
    let still = agent(channel).await;
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
        channel,
        Path::new(&env["WINE_LAB_MSI_NEWER"]),
        &env["WINE_LAB_MSI_NEWER_SHA256"],
        tenant,
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
        channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &env["WINE_LAB_MSI_SHA256"],
        tenant,
    )
    .await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    assert_eq!(op.result["changed"], "false");
    assert_eq!(op.result["installed_version"], "1.1.1000.0");
    assert!(events.iter().any(|e| e.step == "check-version"
        && e.kind == v1::EventKind::StepSkipped as i32
        && e.message.contains("1.1.1000.0")));

    // The rest of the wizard as one document (ConfigurationService), against
    // the Samba lab: domain with DC priority, gMSA (this host may retrieve
    // its password; the agent service logs on as it), permissions,
    // writeback on. The agent section is already as desired (a newer
    // package, registered, running).
    let machine = session.machine_name.clone();
    let host_account = lab_prerequisites(&machine, "provAgentgMSA").await;
    // Quarantine notifications go here: a secret's value, scanned for last.
    let canary = format!(
        "sync-canary-{}@{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        var("LAB_DOMAIN")
    );
    // No lab shortcut publishes the domain: add-domain tells the agent,
    // whose heartbeat makes the tenant publish it (as on a real tenant).
    let desired = v1::DesiredState {
        host: None,
        agent: Some(v1::AgentSpec {
            source: file_uri(Path::new(&env["WINE_LAB_MSI"])),
            sha256: env["WINE_LAB_MSI_SHA256"].clone(),
            accept_license: true,
            ..Default::default()
        }),
        domains: vec![v1::DomainSpec {
            domain: var("LAB_DOMAIN"),
            preferred_domain_controllers: vec![var("LAB_DC1_HOST"), var("LAB_DC2_HOST")],
            cloud_sync: Some(v1::CloudSyncSpec {
                enabled: true,
                password_hash_sync: true,
                notification_email: canary.clone(),
                ..Default::default()
            }),
        }],
        service_account: Some(v1::ServiceAccountSpec {
            domain: var("LAB_DOMAIN"),
            account: Some(v1::service_account_spec::Account::Create(
                v1::CreateGmsaSpec {
                    name: "provAgentgMSA".into(),
                    principals_allowed_to_retrieve_password: vec![host_account],
                    ..Default::default()
                },
            )),
            permissions: vec![v1::PermissionProfile::BasicRead as i32],
        }),
        writeback: Some(v1::WritebackSpec { enabled: true }),
    };
    let (events, op) = apply(channel, &desired, tenant).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?} {events:#?}",
        op.error
    );
    assert_eq!(
        op.result["changed_steps"],
        format!(
            "domain {d},service-account,permissions,agent-domains,writeback,cloud-sync {d}",
            d = var("LAB_DOMAIN")
        )
    );
    assert!(
        events
            .iter()
            .any(|e| e.step == "agent" && e.kind == v1::EventKind::StepSkipped as i32)
    );
    for step in ["configure-service", "set-tenant-flag"] {
        assert!(
            events
                .iter()
                .any(|e| e.step == step && e.kind == v1::EventKind::StepSucceeded as i32),
            "{step}: {events:#?}"
        );
    }
    let logon = agent(channel).await.services[0].account.clone();
    assert!(
        logon.to_ascii_lowercase().ends_with("\\provagentgmsa$"),
        "{logon}"
    );
    // The same document again: nothing to do.
    let (_, op) = apply(channel, &desired, tenant).await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    assert_eq!(op.result["changed"], "false");

    // The agent's next heartbeat reports the domain; the tenant then lists
    // the agent in that domain's group.
    let in_group = || async {
        tenant.agents().await.iter().any(|a| {
            a["machineName"].as_str() == Some(machine.as_str())
                && a["agentGroups"].as_array().is_some_and(|g| !g.is_empty())
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !in_group().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the tenant never listed {machine} in a group: {:#?}",
            tenant.agents().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    // The job runs while the agent heartbeats, and exports the users the
    // agent counted in the lab domain.
    let job = wait_for_job(channel, "users exported", |j| {
        j.state == v1::CloudSyncJobState::Active as i32
            && j.synchronized_by_type.get("user").is_some_and(|n| *n >= 20)
    })
    .await;
    assert!(
        job.last_run
            .as_ref()
            .is_some_and(|r| r.count_exported >= 20),
        "{job:#?}"
    );

    // Verify: every check passes.
    let (checks, report) = verify(channel).await;
    let not_passed: Vec<_> = checks
        .iter()
        .filter(|c| c.status != v1::CheckStatus::Pass as i32)
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(report.status, v1::CheckStatus::Pass as i32);
    for id in [
        "host.agent.installed",
        "host.services.running",
        "host.services.logon_account",
        "host.gmsa.retrievable",
        "host.provd.service",
        "tenant.agent.registered",
        "tenant.agent.active",
        "tenant.agent.group",
        "tenant.sync.job",
        "tenant.sync.last_run",
        "directory.dc.reachable",
        "directory.permissions",
        "writeback.tenant_flag",
        "writeback.aces",
        "writeback.consistent",
    ] {
        assert!(checks.iter().any(|c| c.id == id), "{id} missing");
    }

    // Graph throttles a burst: provd waits it out (Retry-After) and passes.
    let agents_path = "/beta/onPremisesPublishingProfiles/provisioning/agents";
    tenant.fault(agents_path, 429, 3, Some(1)).await;
    let (checks, _) = verify(channel).await;
    let active = find(&checks, "tenant.agent.active");
    assert_eq!(active.status, v1::CheckStatus::Pass as i32, "{active:#?}");
    // A 403 is named as such, with what to do. (Every call under the agents
    // path gets it: Verify's groups run concurrently, and the writeback
    // flag lives under that path too.)
    tenant.fault(agents_path, 403, 20, None).await;
    let (checks, report) = verify(channel).await;
    let registered = find(&checks, "tenant.agent.registered");
    assert_eq!(registered.status, v1::CheckStatus::Fail as i32);
    assert!(registered.message.contains("403"), "{registered:#?}");
    assert!(
        registered.remedy.contains("Administrator"),
        "{registered:#?}"
    );
    assert_eq!(report.status, v1::CheckStatus::Fail as i32);
    tenant.clear_faults().await;

    // The agent service stops: the tenant soon lists the agent inactive, and
    // Verify names both facts.
    let stopped = wine(env, &["net", "stop", "AADConnectProvisioningAgent"]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    wait_for_agent(tenant, &agent_id, "inactive").await;
    // With no active agent the job is quarantined (the lab's honest
    // HybridIdentityServiceNoActiveAgents).
    wait_for_job(channel, "a quarantine", |j| j.quarantine.is_some()).await;
    let (checks, report) = verify(channel).await;
    let service = checks
        .iter()
        .find(|c| c.id == "host.services.running" && c.subject == "AADConnectProvisioningAgent")
        .unwrap();
    assert_eq!(service.status, v1::CheckStatus::Fail as i32, "{service:#?}");
    assert!(service.message.contains("Stopped"), "{service:#?}");
    let active = find(&checks, "tenant.agent.active");
    assert_eq!(active.status, v1::CheckStatus::Fail as i32, "{active:#?}");
    assert!(active.message.contains("inactive"), "{active:#?}");
    let job = find(&checks, "tenant.sync.job");
    assert_eq!(job.status, v1::CheckStatus::Fail as i32, "{job:#?}");
    assert!(
        job.message.contains("HybridIdentityServiceNoActiveAgents"),
        "{job:#?}"
    );
    assert!(
        job.remedy.contains("AADConnectProvisioningAgent"),
        "{job:#?}"
    );
    // Graph records the failed cycle as the last run.
    let last = find(&checks, "tenant.sync.last_run");
    assert_eq!(last.status, v1::CheckStatus::Fail as i32, "{last:#?}");
    assert_eq!(report.fail_count, 4, "{checks:#?}");
    // Install again starts it; the tenant sees it come back.
    let (_, op) = install(
        channel,
        Path::new(&env["WINE_LAB_MSI"]),
        &env["WINE_LAB_MSI_SHA256"],
        tenant,
    )
    .await;
    assert_eq!(op.state, v1::OperationState::Succeeded as i32);
    wait_for_agent(tenant, &agent_id, "active").await;
    // A cycle that finds an active agent again lifts the quarantine.
    wait_for_job(channel, "the quarantine lifted", |j| j.quarantine.is_none()).await;

    // The way back: DecommissionAgent (tests/wine/decommission.rs) stops,
    // leaves the agent groups, uninstalls, leaves the gMSA's principals,
    // removes the ACEs, forgets; then Uninstall has no work either.
    decommission::decommission_after_setup(env, channel, tenant, &machine, &agent_id).await;
    let (events, op) = uninstall(channel).await;
    assert_eq!(
        op.state,
        v1::OperationState::Succeeded as i32,
        "{:?} {events:#?}",
        op.error
    );
    assert_eq!(op.result["changed"], "false");
    let gone = agent(channel).await;
    assert!(!gone.installed);
    assert!(
        gone.services
            .iter()
            .all(|s| s.state == v1::ServiceState::NotInstalled as i32)
    );

    // No secret in provd.exe's log, store or events.
    let mut needles = tenant.issued_secrets().await;
    let put = tenant.sync_secrets_seen().await;
    assert!(put.iter().any(|v| v.contains(&canary)), "{put:?}");
    needles.extend(put);
    needles.push(canary);
    needles.push(var("LAB_PASSWORD"));
    secrets::assert_none_recorded(&provd.dir, channel, &needles).await;

    provd.stop().await;
}

/// Polls GetCloudSync until the lab domain's AD2AADProvisioning job is as
/// `wanted` says (90 s at most); the job.
async fn wait_for_job(
    channel: &Channel,
    what: &str,
    wanted: impl Fn(&v1::CloudSyncJob) -> bool,
) -> v1::CloudSyncJob {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let report = CloudSyncServiceClient::new(channel.clone())
            .get_cloud_sync(v1::GetCloudSyncRequest {
                domain: var("LAB_DOMAIN"),
            })
            .await
            .unwrap()
            .into_inner();
        let job = report
            .domains
            .iter()
            .flat_map(|d| &d.jobs)
            .find(|j| j.template_id == "AD2AADProvisioning");
        if let Some(job) = job.filter(|j| wanted(j)) {
            return job.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited 90 s for {what}: {report:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls the tenant until `agent_id` has `status`; its Graph entry.
async fn wait_for_agent(
    tenant: &TenantEmulator,
    agent_id: &str,
    status: &str,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let agents = tenant.agents().await;
        if let Some(a) = agents
            .iter()
            .find(|a| a["id"] == agent_id && a["status"] == status)
        {
            return a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent {agent_id} never became {status}: {agents:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the lab's admin did before running the wizard: a KDS root key,
/// this host joined (its computer account), a minimum password age of 0
/// (Microsoft's writeback prerequisite), and no gMSA `gmsa` of an earlier
/// run. Returns the host's account name.
async fn lab_prerequisites(machine: &str, gmsa: &str) -> String {
    let mut s = admin_session().await;
    add_kds_key(s.as_mut()).await;
    let host = provd::model::computer_account(machine);
    make_computer(s.as_mut(), host.trim_end_matches('$')).await;
    delete_gmsa(s.as_mut(), gmsa).await;
    s.modify(&base(), &[Change::Replace("minPwdAge".into(), text("0"))])
        .await
        .unwrap();
    s.unbind().await;
    host
}

async fn apply(
    channel: &Channel,
    desired: &v1::DesiredState,
    tenant: &TenantEmulator,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let op = ConfigurationServiceClient::new(channel.clone())
        .apply_configuration(v1::ApplyConfigurationRequest {
            desired: Some(desired.clone()),
            credential: Some(admin()),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap();
    finish_with(channel, op, Some(tenant)).await
}

/// Verify, with the host prerequisite checks set aside (`prereq` tests
/// them): Wine has no .NET registration, no Server edition and a stub LSA,
/// so some of them fail here whatever provd does. The report's counts and
/// status are those of the other checks.
async fn verify(channel: &Channel) -> (Vec<v1::Check>, v1::VerifyReport) {
    let (checks, mut report) = verify_all(channel).await;
    let (prereqs, checks): (Vec<_>, Vec<_>) = checks
        .into_iter()
        .partition(|c| prereq::IDS.contains(&c.id.as_str()));
    for c in &prereqs {
        match v1::CheckStatus::try_from(c.status).unwrap() {
            v1::CheckStatus::Pass => report.pass_count -= 1,
            v1::CheckStatus::Warn => report.warn_count -= 1,
            v1::CheckStatus::Fail => report.fail_count -= 1,
            _ => report.skip_count -= 1,
        }
    }
    report.status = [
        (report.fail_count, v1::CheckStatus::Fail),
        (report.warn_count, v1::CheckStatus::Warn),
        (report.pass_count, v1::CheckStatus::Pass),
    ]
    .into_iter()
    .find(|(n, _)| *n > 0)
    .map_or(v1::CheckStatus::Skip, |(_, s)| s) as i32;
    (checks, report)
}

async fn verify_all(channel: &Channel) -> (Vec<v1::Check>, v1::VerifyReport) {
    let request = v1::VerifyRequest {
        credential: Some(admin()),
        check_timeout: Some(pbjson_types::Duration {
            seconds: 60,
            nanos: 0,
        }),
        ..Default::default()
    };
    verify_with(channel, request).await
}

/// Verify with `request`: the checks and the report.
async fn verify_with(
    channel: &Channel,
    request: v1::VerifyRequest,
) -> (Vec<v1::Check>, v1::VerifyReport) {
    let mut stream = VerifyServiceClient::new(channel.clone())
        .verify(request)
        .await
        .unwrap()
        .into_inner();
    let mut checks = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        match item.item.unwrap() {
            v1::verify_response::Item::Check(c) => checks.push(c),
            v1::verify_response::Item::Report(r) => return (checks, r),
        }
    }
    panic!("no report");
}

fn find<'a>(checks: &'a [v1::Check], id: &str) -> &'a v1::Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} missing: {checks:#?}"))
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
