//! A second agent host sharing the Wine host's gMSA, for DecommissionAgent's
//! shared-account case: a provd daemon started in this test process on the
//! REAL Samba lab (its own LdapDirectory) and the REAL tenant emulator (its
//! own HttpTenant), with testkit fakes only for what a Linux process has no
//! Windows for: the host (`FakeHost`, machine PROVDLAB2, the agent
//! installed) and the agent's module. The module fake registers the agent
//! with the emulator as the lab's powershell.exe stand-in does
//! (`RegisterConnector` with the registration-audience token provd's
//! session passes to `Connect-AADCloudSyncAzureAD`), then sends one
//! heartbeat with the lab domain over the agent's certificate, so the
//! emulator lists it — active, in the domain's agent group — as it lists
//! the Wine host's. PROVDLAB2$ exists in Samba and CreateGmsa (on this
//! daemon) makes it a principal of provAgentgMSA$ beside the Wine host.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use provd::backends::agent_config::{
    AgentConfig, AgentConfigError, AgentDomain, ModuleInfo, RunContext, TenantConnection,
};
use provd::backends::directory::BindCredential;
use provd::pki::Role;
use provd::testkit::{FakeAgentConfig, FakeHost};
use provd_proto::v1;
use provd_proto::v1::agent_service_client::AgentServiceClient;
use secrecy::ExposeSecret;
use serde_json::json;
use tonic::transport::Channel;

use super::common::fixtures::{
    admin_session, base, create, delete_if_present, gmsa_request, make_computer, pin_dc1,
};
use super::common::lab::{add_directory, admin, lab_directory, var};
use super::common::tenant::TenantEmulator;
use super::common::{Harness, Pki, config, finish_with, http_client};
use provd::pki::PemPair;

pub const MACHINE: &str = "PROVDLAB2";

/// The module fake, plus what the real module does with the tenant on
/// `Connect-AADCloudSyncAzureAD`.
struct EmulatorModule {
    inner: FakeAgentConfig,
    base: String,
    ca_pem: String,
}

#[async_trait::async_trait]
impl AgentConfig for EmulatorModule {
    fn availability(&self) -> Result<(), String> {
        self.inner.availability()
    }

    async fn module_info(&self, cx: &RunContext<'_>) -> Result<ModuleInfo, AgentConfigError> {
        self.inner.module_info(cx).await
    }

    async fn connect_tenant(
        &self,
        connection: &TenantConnection,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.inner.connect_tenant(connection, cx).await?;
        register(
            &self.base,
            &self.ca_pem,
            connection.access_token.expose_secret(),
            &connection.tenant_id,
        )
        .await;
        Ok(())
    }

    async fn use_gmsa(&self, name: &str, cx: &RunContext<'_>) -> Result<(), AgentConfigError> {
        self.inner.use_gmsa(name, cx).await
    }

    async fn add_domain(
        &self,
        domain: &str,
        credential: &BindCredential,
        preferred_dcs: &[String],
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.inner
            .add_domain(domain, credential, preferred_dcs, cx)
            .await
    }

    async fn set_writeback(
        &self,
        enable: bool,
        connection: &TenantConnection,
        cx: &RunContext<'_>,
    ) -> Result<(), AgentConfigError> {
        self.inner.set_writeback(enable, connection, cx).await
    }

    async fn list_domains(
        &self,
        cx: &RunContext<'_>,
    ) -> Result<Vec<AgentDomain>, AgentConfigError> {
        self.inner.list_domains(cx).await
    }

    async fn verbose_trace(&self, on: bool, cx: &RunContext<'_>) -> Result<(), AgentConfigError> {
        self.inner.verbose_trace(on, cx).await
    }
}

/// `RegisterConnector` for MACHINE (a fresh key, its CSR), then one
/// heartbeat with the lab domain over the issued certificate.
async fn register(base: &str, ca_pem: &str, token: &str, tenant_id: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let body = format!(
        r#"<RegistrationRequest xmlns="http://schemas.datacontract.org/2004/07/Microsoft.ApplicationProxy.Common.Registration" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Base64Csr>{}</Base64Csr><AuthenticationToken>{token}</AuthenticationToken><Base64Pkcs10Csr i:nil="true"/><Feature>ApplicationProxy</Feature><FeatureString>SyncFabric</FeatureString><RegistrationRequestSettings><SystemSettings i:type="a:SystemSettings" xmlns:a="http://schemas.datacontract.org/2004/07/Microsoft.ApplicationProxy.Common.Utilities.SystemSettings"><a:MachineName>{MACHINE}</a:MachineName></SystemSettings></RegistrationRequestSettings><TenantId>{tenant_id}</TenantId><UserAgent>provd-wine-test</UserAgent></RegistrationRequest>"#,
        b64.encode(csr.der())
    );
    let answer = http_client(ca_pem, None)
        .post(format!("{base}/register/RegisterConnector"))
        .header("content-type", "application/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let certificate = answer
        .split_once("<Certificate>")
        .and_then(|(_, rest)| rest.split_once("</Certificate>"))
        .map(|(c, _)| b64.decode(c).unwrap())
        .unwrap_or_else(|| panic!("RegisterConnector: {answer}"));
    let (_, cert) = x509_parser::parse_x509_certificate(&certificate).unwrap();
    let id = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64.encode(&certificate)
    );
    let agent = http_client(
        ca_pem,
        Some(&PemPair {
            cert_pem: pem,
            key_pem: key.serialize_pem(),
        }),
    );
    let beat = agent
        .post(format!("{base}/_agent/{id}/heartbeat"))
        .json(&json!({ "machineName": MACHINE, "domains": [{ "name": var("LAB_DOMAIN") }] }))
        .send()
        .await
        .unwrap();
    assert!(beat.status().is_success(), "heartbeat: {}", beat.status());
}

pub struct SecondHost {
    h: Harness,
    pub channel: Channel,
}

impl SecondHost {
    /// The daemon, PROVDLAB2$ in Samba, the agent installed (1.1.977.0, the
    /// lab MSI's version: Install finds it there and only registers).
    pub async fn start(tenant: &TenantEmulator) -> SecondHost {
        let mut s = admin_session().await;
        make_computer(s.as_mut(), MACHINE).await;
        s.unbind().await;
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(&dir.path().join("pki"));
        let mut config = config(dir.path(), &pki.dir);
        lab_directory(&mut config);
        tenant.configure(&mut config);
        let host = FakeHost::new()
            .with_machine(MACHINE)
            .with_agent("1.1.977.0");
        let module = EmulatorModule {
            inner: FakeAgentConfig::new().on_host(host.clone(), "LAB"),
            base: tenant.base(),
            ca_pem: std::fs::read_to_string(&tenant.ca_file).unwrap(),
        };
        let daemon = provd::Daemon::builder(config)
            .host(Arc::new(host.clone()))
            .agent_config(Arc::new(module))
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
        SecondHost { h, channel }
    }

    /// Install (registration through the emulator), AddDirectory, and
    /// CreateGmsa provAgentgMSA with `principals` (the Wine host's and
    /// PROVDLAB2$). The agent's id.
    pub async fn set_up(
        &self,
        tenant: &TenantEmulator,
        msi: &Path,
        sha256: &str,
        principals: &[&str],
    ) -> String {
        let op = AgentServiceClient::new(self.channel.clone())
            .install(v1::InstallRequest {
                // This daemon runs on Linux: the package's own path.
                source: format!("file://{}", msi.display()),
                ..super::install_request(msi, sha256)
            })
            .await
            .unwrap()
            .into_inner()
            .operation
            .unwrap();
        let (events, op) = finish_with(&self.channel, op, Some(tenant)).await;
        assert_eq!(
            op.state,
            v1::OperationState::Succeeded as i32,
            "{:?} {events:#?}",
            op.error
        );
        let agent_id = op.result["agent_id"].clone();
        let (events, op) = add_directory(&self.channel, admin(), &[]).await;
        assert_eq!(
            op.state,
            v1::OperationState::Succeeded as i32,
            "{events:#?}"
        );
        // PROVDLAB2$ was made on dc1: read it there.
        pin_dc1(&self.channel).await;
        let (events, op) = create(&self.channel, gmsa_request("provAgentgMSA", principals)).await;
        assert_eq!(
            op.state,
            v1::OperationState::Succeeded as i32,
            "{:?} {events:#?}",
            op.error
        );
        agent_id
    }

    /// Shuts the daemon down and removes PROVDLAB2$ from Samba.
    pub async fn stop(mut self) {
        if let Some(d) = self.h.daemon.take() {
            d.shutdown().await;
        }
        let mut s = admin_session().await;
        delete_if_present(s.as_mut(), &format!("CN={MACHINE},CN=Computers,{}", base())).await;
        s.unbind().await;
    }
}
