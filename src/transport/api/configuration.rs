//! ConfigurationService gRPC impl: the document's messages converted to the
//! workflow's plain types; decisions live in `workflows::apply`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::cloud_sync::cloud_sync_input;
use super::host::fix_from_proto;
use super::service_account::{encryption_bit, profile_choice};
use super::{caller, known_or_unset, started};
use crate::transport::convert::bind_credential;
use crate::transport::convert::{cloud_from_proto, operation};
use crate::workflows::App;
use crate::workflows::apply::{
    AccountChoice, AccountSpec, AgentSettingsInput, AgentSpec, DesiredState, DomainSpec, HostSpec,
    ProxyInput,
};
use provd_proto::v1;

#[derive(Clone)]
pub struct ConfigurationApi {
    pub app: Arc<App>,
}

fn agent_settings(s: v1::AgentSettingsSpec) -> AgentSettingsInput {
    AgentSettingsInput {
        proxy: s.proxy.map(|p| ProxyInput {
            address: p.address,
            bypass_on_local: p.bypass_on_local,
            bypass_list: p.bypass_list,
            none: p.none,
        }),
        enforce_fips_policy: s.enforce_fips_policy,
        ldap_connection_timeout_ms: s.ldap_connection_timeout_ms,
        referral_chasing_options: s.referral_chasing_options,
        user_password_length: s.user_password_length,
    }
}

/// The document, when the request has one (the workflow requires it).
fn desired(state: Option<v1::DesiredState>) -> Result<Option<DesiredState>, Status> {
    let Some(state) = state else {
        return Ok(None);
    };
    let agent = match state.agent {
        None => None,
        Some(a) => Some(AgentSpec {
            cloud: known_or_unset("desired.agent.cloud", a.cloud, cloud_from_proto)?,
            source: a.source,
            sha256: a.sha256,
            accept_license: a.accept_license,
            skip_registration: a.skip_registration,
            settings: a.settings.map(agent_settings),
            absent: a.absent,
            keep_gmsa: a.keep_gmsa,
        }),
    };
    Ok(Some(DesiredState {
        host: state.host.map(|h| HostSpec {
            remediate: h.remediate.iter().map(|f| fix_from_proto(*f)).collect(),
        }),
        agent,
        domains: state
            .domains
            .into_iter()
            .map(|d| DomainSpec {
                domain: d.domain,
                preferred: d.preferred_domain_controllers,
                cloud_sync: d.cloud_sync.map(cloud_sync_input),
            })
            .collect(),
        service_account: state.service_account.map(|s| AccountSpec {
            domain: s.domain,
            choice: s.account.map(|a| match a {
                v1::service_account_spec::Account::Create(c) => AccountChoice::Create {
                    name: c.name,
                    principals: c.principals_allowed_to_retrieve_password,
                    container_dn: c.container_dn,
                    encryption_types: c
                        .encryption_types
                        .iter()
                        .map(|e| encryption_bit(*e))
                        .collect(),
                },
                v1::service_account_spec::Account::Custom(c) => AccountChoice::Custom {
                    name: c.name,
                    host_account: c.host_account,
                },
            }),
            permissions: s.permissions.iter().map(|p| profile_choice(*p)).collect(),
        }),
        writeback: state.writeback.map(|w| w.enabled),
    }))
}

#[tonic::async_trait]
impl v1::configuration_service_server::ConfigurationService for ConfigurationApi {
    async fn apply_configuration(
        &self,
        request: Request<v1::ApplyConfigurationRequest>,
    ) -> Result<Response<v1::ApplyConfigurationResponse>, Status> {
        let who = caller(&request);
        let mut r = request.into_inner();
        let record = self
            .app
            .apply
            .apply(
                &who,
                desired(r.desired.take())?,
                bind_credential(r.credential.take()).map_err(Status::from)?,
                &r.request_id,
            )
            .await
            .map_err(Status::from)?;
        Ok(started(v1::ApplyConfigurationResponse {
            operation: Some(operation(&record)),
        }))
    }

    async fn plan_configuration(
        &self,
        request: Request<v1::PlanConfigurationRequest>,
    ) -> Result<Response<v1::PlanConfigurationResponse>, Status> {
        let mut r = request.into_inner();
        let changes = self
            .app
            .apply
            .plan(
                desired(r.desired.take())?,
                bind_credential(r.credential.take()).map_err(Status::from)?,
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(v1::PlanConfigurationResponse {
            changes: changes
                .into_iter()
                .map(|c| v1::PlannedChange {
                    step: c.step,
                    action: c.action.to_owned(),
                    detail: c.detail,
                })
                .collect(),
        }))
    }
}
