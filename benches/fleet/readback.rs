//! After each run, every daemon is read back: PlanConfiguration of the same
//! document must find nothing left to do on every host, whichever
//! orchestrator applied it.

use std::path::Path;
use std::time::Duration;

use provd_proto::v1;
use provd_proto::v1::configuration_service_client::ConfigurationServiceClient;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The document the bench applies, as the API takes it.
pub fn desired(lab: &super::Lab, gmsa: &str) -> v1::DesiredState {
    v1::DesiredState {
        domains: vec![v1::DomainSpec {
            domain: lab.domain.clone(),
            preferred_domain_controllers: lab.dcs.clone(),
            cloud_sync: None,
        }],
        service_account: Some(v1::ServiceAccountSpec {
            domain: lab.domain.clone(),
            account: Some(v1::service_account_spec::Account::Create(
                v1::CreateGmsaSpec {
                    name: gmsa.into(),
                    principals_allowed_to_retrieve_password: vec![lab.host_account.clone()],
                    ..Default::default()
                },
            )),
            permissions: vec![
                v1::PermissionProfile::BasicRead as i32,
                v1::PermissionProfile::ConsistencyGuid as i32,
            ],
        }),
        ..Default::default()
    }
}

/// The same document as `provctl apply` and `provd_apply` read it.
pub fn toml(lab: &super::Lab, gmsa: &str) -> String {
    format!(
        "[[domains]]\ndomain = \"{domain}\"\npreferred_domain_controllers = [{dcs}]\n\n\
         [service_account]\ndomain = \"{domain}\"\npermissions = [\"basic_read\", \"consistency_guid\"]\n\n\
         [service_account.create]\nname = \"{gmsa}\"\nprincipals = [\"{host}\"]\n",
        domain = lab.domain,
        dcs = lab
            .dcs
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", "),
        host = lab.host_account,
    )
}

/// How many of the daemons on `ports` have nothing left to do.
pub async fn in_place(
    ports: &[u16],
    pki: &Path,
    desired: &v1::DesiredState,
    lab: &super::Lab,
) -> usize {
    let read = |name: &str| std::fs::read(pki.join(name)).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(
            read("client-admin.pem"),
            read("client-admin.key"),
        ))
        .domain_name("localhost");
    let mut done = 0;
    for port in ports {
        let channel = Endpoint::from_shared(format!("https://127.0.0.1:{port}"))
            .unwrap()
            .tls_config(tls.clone())
            .unwrap()
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await;
        let Ok(channel) = channel else { continue };
        let plan = ConfigurationServiceClient::new(channel)
            .plan_configuration(v1::PlanConfigurationRequest {
                desired: Some(desired.clone()),
                credential: Some(v1::Credential {
                    username: lab.admin.clone(),
                    password: lab.password.clone(),
                    kerberos: None,
                }),
            })
            .await;
        if plan.is_ok_and(|p| p.into_inner().changes.is_empty()) {
            done += 1;
        }
    }
    done
}
