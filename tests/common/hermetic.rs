//! The hermetic tier's harness: a daemon in-process on fakes of the
//! directory, the tenant and the host (`provd::testkit`), typed clients,
//! and operations watched to their end. No root, no lab, no network.
//!
//! ```ignore
//! let d = Hermetic::start().await;                  // or start_with(Fakes { .. })
//! let (events, op) = d.add_directory().await;
//! d.ok(&op);
//! d.fakes.directory.set_reachable(DC1, false);      // inject, then drive again
//! ```
#![allow(dead_code)]

use std::sync::Arc;

use provd::backends::host::Host as _;
use provd::pki::Role;
use provd::testkit::{FakeAgentConfig, FakeDirectory, FakeHost, FakeTenant, RecordedLogonRights};
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use provd_proto::v1::cloud_sync_service_client::CloudSyncServiceClient;
use provd_proto::v1::directory_service_client::DirectoryServiceClient;
use provd_proto::v1::domain_controller_service_client::DomainControllerServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;
use provd_proto::v1::service_account_service_client::ServiceAccountServiceClient;
use provd_proto::v1::verify_service_client::VerifyServiceClient;
use provd_proto::v1::writeback_service_client::WritebackServiceClient;
use tonic::transport::Channel;

use super::{Harness, Pki, config};

pub const DOMAIN: &str = "lab.example.test";
pub const DC1: &str = "dc1.lab.example.test";
pub const DC2: &str = "dc2.lab.example.test";

/// The fakes; clones share state with the ones the daemon uses. At start
/// the agent module's connect is linked to the tenant (`connects_to`).
#[derive(Clone, Default)]
pub struct Fakes {
    pub directory: FakeDirectory,
    pub tenant: FakeTenant,
    pub host: FakeHost,
    /// LSA's answers, recorded (Wine cannot give them).
    pub logon_rights: RecordedLogonRights,
    pub agent_config: FakeAgentConfig,
}

/// A daemon on fakes, with an admin channel.
pub struct Hermetic {
    pub h: Harness,
    pub channel: Channel,
    pub fakes: Fakes,
}

impl Hermetic {
    /// Default fakes: the lab's domain (dc1, dc2, a KDS key), a tenant that
    /// approves sign-ins at once, a Windows host without the agent.
    pub async fn start() -> Hermetic {
        Self::start_with(Fakes::default()).await
    }

    pub async fn start_with(fakes: Fakes) -> Hermetic {
        Self::start_configured(fakes, |_| {}).await
    }

    /// With `adjust` applied to the daemon's configuration.
    pub async fn start_configured(
        fakes: Fakes,
        adjust: impl FnOnce(&mut provd::config::Config),
    ) -> Hermetic {
        Self::start_prepared(fakes, |_, config| adjust(config)).await
    }

    /// Started after `prepare` saw the PKI (to write other certificates)
    /// and adjusted the configuration.
    pub async fn start_prepared(
        fakes: Fakes,
        prepare: impl FnOnce(&Pki, &mut provd::config::Config),
    ) -> Hermetic {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(&dir.path().join("pki"));
        let mut config = config(dir.path(), &pki.dir);
        prepare(&pki, &mut config);
        // The fake module registers this host's agent with the fake tenant,
        // as the real module does with the connector service.
        fakes
            .agent_config
            .connects_to(&fakes.tenant, &fakes.host.machine_name());
        let daemon = provd::Daemon::builder(config)
            .directory(Arc::new(fakes.directory.clone()))
            .tenant(Arc::new(fakes.tenant.clone()))
            .host(Arc::new(fakes.host.clone()))
            .logon_rights(Arc::new(fakes.logon_rights.clone()))
            .agent_config(Arc::new(
                fakes
                    .agent_config
                    .clone()
                    .on_host(fakes.host.clone(), "LAB"),
            ))
            .start()
            .await
            .unwrap();
        let h = Harness {
            addr: daemon.local_addr(),
            dir,
            pki,
            daemon: Some(daemon),
        };
        let channel = h.channel(Role::Admin).await;
        Hermetic { h, channel, fakes }
    }

    /// A channel for another role (authorization tests).
    pub async fn channel_as(&self, role: Role) -> Channel {
        self.h.channel(role).await
    }

    pub fn directories(&self) -> DirectoryServiceClient<Channel> {
        DirectoryServiceClient::new(self.channel.clone())
    }

    pub fn dcs(&self) -> DomainControllerServiceClient<Channel> {
        DomainControllerServiceClient::new(self.channel.clone())
    }

    pub fn service_accounts(&self) -> ServiceAccountServiceClient<Channel> {
        ServiceAccountServiceClient::new(self.channel.clone())
    }

    pub fn agent(&self) -> AgentServiceClient<Channel> {
        AgentServiceClient::new(self.channel.clone())
    }

    pub fn operations(&self) -> OperationsServiceClient<Channel> {
        OperationsServiceClient::new(self.channel.clone())
    }

    pub fn verify(&self) -> VerifyServiceClient<Channel> {
        VerifyServiceClient::new(self.channel.clone())
    }

    pub fn cloud_sync(&self) -> CloudSyncServiceClient<Channel> {
        CloudSyncServiceClient::new(self.channel.clone())
    }

    pub fn writeback(&self) -> WritebackServiceClient<Channel> {
        WritebackServiceClient::new(self.channel.clone())
    }

    /// Watches `op` to its end: its events and the final operation.
    pub async fn finish(
        &self,
        op: Option<v1::Operation>,
    ) -> (Vec<v1::OperationEvent>, v1::Operation) {
        super::finish(&self.channel, op.expect("the RPC returned no operation")).await
    }

    /// SignIn, watched to its end.
    /// Uninstall, watched to its end.
    pub async fn uninstall(&self) -> (Vec<v1::OperationEvent>, v1::Operation) {
        let op = self
            .agent()
            .uninstall(v1::UninstallRequest::default())
            .await
            .unwrap()
            .into_inner()
            .operation;
        self.finish(op).await
    }

    pub async fn sign_in(&self) -> (Vec<v1::OperationEvent>, v1::Operation) {
        let op = self
            .agent()
            .sign_in(v1::SignInRequest::default())
            .await
            .unwrap()
            .into_inner()
            .operation;
        self.finish(op).await
    }

    /// AddDirectory of the fake's domain as Administrator.
    pub async fn add_directory(&self) -> (Vec<v1::OperationEvent>, v1::Operation) {
        self.add_directory_as(admin()).await
    }

    pub async fn add_directory_as(
        &self,
        credential: v1::Credential,
    ) -> (Vec<v1::OperationEvent>, v1::Operation) {
        let op = self
            .directories()
            .add_directory(v1::AddDirectoryRequest {
                domain: DOMAIN.into(),
                credential: Some(credential),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .operation;
        self.finish(op).await
    }

    /// AddDirectory of the fake's domain as Administrator, which must be
    /// refused: the status.
    pub async fn add_directory_refused(&self) -> tonic::Status {
        self.directories()
            .add_directory(v1::AddDirectoryRequest {
                domain: DOMAIN.into(),
                credential: Some(admin()),
                ..Default::default()
            })
            .await
            .unwrap_err()
    }

    /// AddDirectory of the fake's domain as Administrator with `request_id`:
    /// the operation as the RPC answered it (not watched).
    pub async fn start_add_directory(&self, request_id: &str) -> v1::Operation {
        self.directories()
            .add_directory(v1::AddDirectoryRequest {
                domain: DOMAIN.into(),
                credential: Some(admin()),
                request_id: request_id.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .operation
            .expect("the RPC returned no operation")
    }

    /// CancelOperation of `id`: the operation as answered, or the status.
    pub async fn cancel(&self, id: &str) -> Result<v1::Operation, tonic::Status> {
        self.operations()
            .cancel_operation(v1::CancelOperationRequest { id: id.into() })
            .await
            .map(|r| r.into_inner().operation.unwrap_or_default())
    }

    /// Pins the DC order (SetPriority), watched to its end.
    pub async fn set_priority(&self, dcs: &[&str]) -> v1::Operation {
        let op = self
            .dcs()
            .set_priority(v1::SetPriorityRequest {
                domain: DOMAIN.into(),
                domain_controllers: dcs.iter().map(|d| (*d).to_owned()).collect(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .operation;
        self.finish(op).await.1
    }

    /// CreateGmsa `provAgentgMSA$` (default name) for `principals`.
    pub async fn create_gmsa(
        &self,
        principals: &[&str],
    ) -> (Vec<v1::OperationEvent>, v1::Operation) {
        let op = self
            .service_accounts()
            .create_gmsa(v1::CreateGmsaRequest {
                domain: DOMAIN.into(),
                principals_allowed_to_retrieve_password: principals
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
                credential: Some(admin()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .operation;
        self.finish(op).await
    }

    pub async fn grant(
        &self,
        profiles: &[v1::PermissionProfile],
        mode: v1::GrantMode,
        trustee: &str,
    ) -> (Vec<v1::OperationEvent>, v1::Operation) {
        let op = self
            .service_accounts()
            .grant_permissions(v1::GrantPermissionsRequest {
                domain: DOMAIN.into(),
                profiles: profiles.iter().map(|p| *p as i32).collect(),
                mode: mode as i32,
                trustee: trustee.into(),
                credential: Some(admin()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .operation;
        self.finish(op).await
    }

    /// A computer account in CN=Computers, made straight in the fake.
    pub fn make_computer(&self, name: &str) -> String {
        let dn = format!("CN={name},CN=Computers,{}", self.fakes.directory.base_dn());
        self.fakes
            .directory
            .seed_object(
                &dn,
                &[
                    ("objectClass", text("computer")),
                    ("sAMAccountName", text(&format!("{name}$"))),
                    ("userAccountControl", text("4096")),
                ],
            )
            .unwrap();
        dn
    }

    pub async fn shutdown(self) {
        self.h.shutdown().await;
    }
}

pub fn text(v: &str) -> Vec<Vec<u8>> {
    vec![v.as_bytes().to_vec()]
}

/// The fake domain's Administrator.
pub fn admin() -> v1::Credential {
    v1::Credential {
        username: format!("Administrator@{DOMAIN}"),
        password: provd::testkit::directory::ADMIN_PASSWORD.into(),
        kerberos: None,
    }
}

pub fn state(op: &v1::Operation) -> v1::OperationState {
    v1::OperationState::try_from(op.state).unwrap()
}

/// Asserts the operation succeeded.
pub fn ok(op: &v1::Operation) {
    assert_eq!(state(op), v1::OperationState::Succeeded, "{:?}", op.error);
}

/// Asserts the operation failed and returns its error.
pub fn failed(op: &v1::Operation) -> v1::OperationError {
    assert_eq!(state(op), v1::OperationState::Failed, "{op:?}");
    op.error.clone().expect("a failed operation has an error")
}
