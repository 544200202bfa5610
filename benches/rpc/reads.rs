//! The read RPCs measured, and the daemon that serves them: provd
//! in-process on the testkit's fakes (directory, tenant, host, agent module,
//! logon rights) with its real store, audit log and transport, brought to a
//! configured host by one ApplyConfiguration of the whole document (agent,
//! domain with cloud sync, gMSA with BASIC_READ, writeback on).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use prost::Message;
use provd::testkit::{FakeAgentConfig, FakeDirectory, FakeHost, FakeTenant, RecordedLogonRights};
use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;
use tonic::transport::Channel;

use crate::backend::{BackendClock, NoNetwork, Timed};
use crate::bare::{self, AddRoute};
use crate::load::RawCall;
use crate::pki::{Pki, connect};

const DOMAIN: &str = "lab.example.test";
const DC1: &str = "dc1.lab.example.test";
const DC2: &str = "dc2.lab.example.test";

/// What answers a read besides provd's store: shown in the table, and the
/// reason a ratio may include a backend's work.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Transport only (tonic-health).
    Transport,
    /// provd's own state (redb, or memory).
    Store,
    /// The host backend (the fake Windows host).
    Host,
    /// The tenant backend (the fake tenant), no directory.
    Tenant,
    /// Directory binds and searches (the fake directory), maybe more.
    Directory,
    /// Verify's checks: the host, the tenant, provd's state.
    Checks,
}

impl Bound {
    pub fn label(self) -> &'static str {
        match self {
            Bound::Transport => "transport",
            Bound::Store => "store",
            Bound::Host => "host",
            Bound::Tenant => "tenant",
            Bound::Directory => "directory",
            Bound::Checks => "host+ten.",
        }
    }
}

pub struct Read {
    /// `Service/Method`.
    pub name: &'static str,
    pub call: RawCall,
    pub bound: Bound,
    pub add_route: AddRoute,
}

macro_rules! read {
    ($kind:ident $service:literal $method:literal, $request:expr, $response:ty, $bound:expr) => {
        $kind::<_, $response>(
            concat!($service, "/", $method),
            concat!("/provd.v1.", $service, "/", $method),
            $request,
            $bound,
        )
    };
}

fn unary<Req, Resp>(name: &'static str, path: &'static str, request: Req, bound: Bound) -> Read
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Default + Clone + Send + Sync + 'static,
{
    Read {
        name,
        call: RawCall {
            path,
            request: Bytes::from(request.encode_to_vec()),
            streaming: false,
        },
        bound,
        add_route: bare::unary::<Req, Resp>,
    }
}

fn stream<Req, Resp>(name: &'static str, path: &'static str, request: Req, bound: Bound) -> Read
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Default + Clone + Send + Sync + 'static,
{
    Read {
        add_route: bare::server_streaming::<Req, Resp>,
        call: RawCall {
            streaming: true,
            ..unary::<Req, Resp>(name, path, request, bound).call
        },
        ..unary::<Req, Resp>(name, path, Req::default(), bound)
    }
}

/// The fake domain's Administrator: reads that bind use it, so the
/// directory's facts are read live.
fn admin() -> v1::Credential {
    v1::Credential {
        username: format!("Administrator@{DOMAIN}"),
        password: provd::testkit::directory::ADMIN_PASSWORD.into(),
        kerberos: None,
    }
}

fn cloud_sync_spec() -> v1::CloudSyncSpec {
    v1::CloudSyncSpec {
        enabled: true,
        password_hash_sync: true,
        organizational_units: vec![format!("OU=SyncPilot,{}", base_dn())],
        notification_email: format!("sync-bench@{DOMAIN}"),
        ..Default::default()
    }
}

fn base_dn() -> String {
    DOMAIN
        .split('.')
        .map(|p| format!("DC={p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The whole wizard as one document, as `tests/integration/workflows/apply.rs`
/// applies it, plus the domain's cloud sync.
fn document(package: String, sha256: String) -> v1::DesiredState {
    v1::DesiredState {
        host: None,
        agent: Some(v1::AgentSpec {
            source: package,
            sha256,
            accept_license: true,
            ..Default::default()
        }),
        domains: vec![v1::DomainSpec {
            domain: DOMAIN.into(),
            preferred_domain_controllers: vec![DC1.into(), DC2.into()],
            cloud_sync: Some(cloud_sync_spec()),
        }],
        service_account: Some(v1::ServiceAccountSpec {
            domain: DOMAIN.into(),
            account: Some(v1::service_account_spec::Account::Create(
                v1::CreateGmsaSpec {
                    principals_allowed_to_retrieve_password: vec!["HOST1$".into()],
                    ..Default::default()
                },
            )),
            permissions: vec![v1::PermissionProfile::BasicRead as i32],
        }),
        writeback: Some(v1::WritebackSpec { enabled: true }),
    }
}

/// Every read RPC measured, for a daemon whose applied document is `desired`
/// and whose stored operation is `operation_id`.
pub fn reads(desired: &v1::DesiredState, operation_id: &str) -> Vec<Read> {
    use Bound::*;
    let domain = || DOMAIN.to_owned();
    vec![
        read!(unary "OperationsService" "GetOperation",
            v1::GetOperationRequest { id: operation_id.into() }, v1::GetOperationResponse, Store),
        read!(unary "OperationsService" "ListOperations",
            v1::ListOperationsRequest::default(), v1::ListOperationsResponse, Store),
        read!(stream "OperationsService" "WatchOperation",
            v1::WatchOperationRequest { id: operation_id.into(), after_sequence: 0 },
            v1::WatchOperationResponse, Store),
        read!(unary "DirectoryService" "ListDirectories",
            v1::ListDirectoriesRequest {}, v1::ListDirectoriesResponse, Store),
        read!(unary "DomainControllerService" "GetPriority",
            v1::GetPriorityRequest { domain: domain() }, v1::GetPriorityResponse, Store),
        read!(unary "AgentService" "GetAgent",
            v1::GetAgentRequest {}, v1::GetAgentResponse, Host),
        read!(unary "StatusService" "GetHostStatus",
            v1::GetHostStatusRequest {}, v1::GetHostStatusResponse, Host),
        read!(unary "HostService" "PlanHostRemediation",
            v1::PlanHostRemediationRequest {}, v1::PlanHostRemediationResponse, Host),
        read!(unary "CloudSyncService" "GetCloudSync",
            v1::GetCloudSyncRequest { domain: domain() }, v1::GetCloudSyncResponse, Tenant),
        read!(unary "CloudSyncService" "PlanCloudSync",
            v1::PlanCloudSyncRequest { domain: domain(), spec: Some(cloud_sync_spec()) },
            v1::PlanCloudSyncResponse, Tenant),
        read!(unary "DomainControllerService" "DiscoverDomainControllers",
            v1::DiscoverDomainControllersRequest { domain: domain(), ..Default::default() },
            v1::DiscoverDomainControllersResponse, Directory),
        read!(unary "ServiceAccountService" "GetServiceAccount",
            v1::GetServiceAccountRequest { domain: domain(), credential: Some(admin()) },
            v1::GetServiceAccountResponse, Directory),
        read!(unary "WritebackService" "GetPasswordWriteback",
            v1::GetPasswordWritebackRequest {
                domain: domain(),
                credential: Some(admin()),
                user_sample_size: 0,
            },
            v1::GetPasswordWritebackResponse, Directory),
        read!(unary "AgentService" "PlanDecommission",
            v1::PlanDecommissionRequest { credential: Some(admin()), ..Default::default() },
            v1::PlanDecommissionResponse, Directory),
        read!(unary "ConfigurationService" "PlanConfiguration",
            v1::PlanConfigurationRequest {
                desired: Some(desired.clone()),
                credential: Some(admin()),
            },
            v1::PlanConfigurationResponse, Directory),
        // Credential-free, as the drift check runs it: host, tenant and
        // writeback checks; the directory's own checks are SKIP without a
        // bind, and the outbound probes answer "no network" at once.
        read!(stream "VerifyService" "Verify",
            v1::VerifyRequest::default(), v1::VerifyResponse, Checks),
    ]
}

/// The transport-only reference: `grpc.health.v1.Health/Check`.
pub fn health() -> Read {
    Read {
        name: "Health/Check",
        call: RawCall {
            path: "/grpc.health.v1.Health/Check",
            request: Bytes::from(
                tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                }
                .encode_to_vec(),
            ),
            streaming: false,
        },
        bound: Bound::Transport,
        // tonic-health is served by both servers as it is.
        add_route: |router, _, _| Ok(router),
    }
}

/// provd on the fakes, configured, with the reads it answers.
pub struct Fixture {
    pub daemon: provd::DaemonHandle,
    pub clock: BackendClock,
    pub desired: v1::DesiredState,
    pub operation_id: String,
    /// What the configuring operation was: shown in the report.
    pub about: String,
}

impl Fixture {
    pub async fn start(pki: &Pki, dir: &Path, config: provd::config::Config) -> Result<Fixture> {
        let directory = FakeDirectory::default();
        // The fake host's computer account, which the gMSA is for.
        let text = |v: &str| vec![v.as_bytes().to_vec()];
        directory
            .seed_object(
                &format!("CN=HOST1,CN=Computers,{}", directory.base_dn()),
                &[
                    ("objectClass", text("computer")),
                    ("sAMAccountName", text("HOST1$")),
                    ("userAccountControl", text("4096")),
                ],
            )
            .map_err(|e| anyhow::anyhow!("seed HOST1: {e}"))?;
        let tenant = FakeTenant::default();
        let host = FakeHost::default();
        let agent_config = FakeAgentConfig::default();
        // The fake module registers this host's agent with the fake tenant,
        // as the real module does with the connector service.
        agent_config.connects_to(&tenant, &provd::backends::host::Host::machine_name(&host));
        let clock = BackendClock::default();
        let daemon = provd::Daemon::builder(config)
            .directory(Arc::new(Timed {
                inner: directory,
                clock: clock.clone(),
            }))
            .tenant(Arc::new(tenant))
            .host(Arc::new(host.clone()))
            .logon_rights(Arc::new(RecordedLogonRights::default()))
            .agent_config(Arc::new(agent_config.on_host(host, "LAB")))
            .outbound(Arc::new(NoNetwork))
            .start()
            .await
            .context("start provd in-process on the fakes")?;
        let admin_channel = connect(
            daemon.local_addr(),
            &pki.ca_pem,
            &pki.admin,
            Duration::from_secs(5),
        )
        .await?;
        let bytes = msi_bytes("1.1.1370.0")?;
        let package = dir.join("agent.msi");
        std::fs::write(&package, &bytes).with_context(|| format!("write {}", package.display()))?;
        let desired = document(
            format!("file://{}", package.display()),
            crate::sha256_hex(&bytes),
        );
        let started = ConfigurationServiceClient::new(admin_channel.clone())
            .apply_configuration(v1::ApplyConfigurationRequest {
                desired: Some(desired.clone()),
                credential: Some(admin()),
                request_id: String::new(),
            })
            .await
            .context("ConfigurationService/ApplyConfiguration")?
            .into_inner()
            .operation
            .context("ApplyConfiguration returned no operation")?;
        let op = terminal(&admin_channel, &started.id).await?;
        if op.state != v1::OperationState::Succeeded as i32 {
            bail!(
                "ApplyConfiguration of the bench's document did not succeed: {:?}",
                op.error
            );
        }
        Ok(Fixture {
            daemon,
            clock,
            desired,
            about: format!(
                "ApplyConfiguration of the whole document, SUCCEEDED with {} events",
                op.event_count
            ),
            operation_id: op.id,
        })
    }

    /// One call of `read`: its response messages, after checking they
    /// decode (the bare server answers the same).
    pub async fn answer(&self, pki: &Pki, read: &Read) -> Result<Vec<Bytes>> {
        let channel = connect(
            self.daemon.local_addr(),
            &pki.ca_pem,
            &pki.viewer,
            Duration::from_secs(5),
        )
        .await?;
        let mut grpc = tonic::client::Grpc::new(channel);
        read.call
            .call(&mut grpc)
            .await
            .with_context(|| format!("provd {}", read.name))
    }
}

async fn terminal(channel: &Channel, id: &str) -> Result<v1::Operation> {
    let mut ops = OperationsServiceClient::new(channel.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let op = ops
            .get_operation(v1::GetOperationRequest { id: id.into() })
            .await
            .context("GetOperation while waiting")?
            .into_inner()
            .operation
            .context("GetOperation returned no operation")?;
        let state = v1::OperationState::try_from(op.state).unwrap_or_default();
        if !matches!(
            state,
            v1::OperationState::Pending | v1::OperationState::Running
        ) {
            return Ok(op);
        }
        if Instant::now() > deadline {
            bail!("operation {id} still {state:?} after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal MSI whose Property table says `ProductVersion = version`.
fn msi_bytes(version: &str) -> Result<Vec<u8>> {
    use msi::{Column, Insert, Package, PackageType, Value};
    let cursor = std::io::Cursor::new(Vec::new());
    let mut pkg = Package::create(PackageType::Installer, cursor)?;
    pkg.create_table(
        "Property",
        vec![
            Column::build("Property").primary_key().id_string(72),
            Column::build("Value").text_string(0),
        ],
    )?;
    pkg.insert_rows(
        Insert::into("Property")
            .row(vec![
                Value::from("ProductName"),
                Value::from("Microsoft Entra Connect Provisioning Agent"),
            ])
            .row(vec![Value::from("ProductVersion"), Value::from(version)]),
    )?;
    Ok(pkg.into_inner()?.into_inner())
}
