//! ServiceAccountService gRPC impl: conversions only.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::caller;
use super::started;
use crate::transport::convert::{bind_credential, operation, timestamp};
use crate::workflows::App;
use crate::workflows::permissions::{
    AceChange, GrantMode, GrantPermissionsRequest, Profile, ProfileChoice, ProfileStatus,
};
use crate::workflows::service_account::{
    self, AccountRecord, CreateGmsaRequest, Origin, PrincipalKind, UseCustomGmsaRequest,
};
use provd_proto::v1;

pub fn encryption_bit(value: i32) -> Option<u32> {
    match v1::EncryptionType::try_from(value).ok()? {
        v1::EncryptionType::Unspecified => None,
        v1::EncryptionType::Rc4 => Some(service_account::ENC_RC4),
        v1::EncryptionType::Aes128 => Some(service_account::ENC_AES128),
        v1::EncryptionType::Aes256 => Some(service_account::ENC_AES256),
    }
}

fn encryption_types(bits: u32) -> Vec<i32> {
    [
        (service_account::ENC_RC4, v1::EncryptionType::Rc4),
        (service_account::ENC_AES128, v1::EncryptionType::Aes128),
        (service_account::ENC_AES256, v1::EncryptionType::Aes256),
    ]
    .into_iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, t)| t.into())
    .collect()
}

pub fn profile_to_proto(profile: Profile) -> v1::PermissionProfile {
    match profile {
        Profile::BasicRead => v1::PermissionProfile::BasicRead,
        Profile::PasswordHashSync => v1::PermissionProfile::PasswordHashSync,
        Profile::PasswordWriteBack => v1::PermissionProfile::PasswordWriteBack,
        Profile::HybridExchange => v1::PermissionProfile::HybridExchange,
        Profile::ExchangeMailPublicFolder => v1::PermissionProfile::ExchangeMailPublicFolder,
        Profile::UserGroupCreateDelete => v1::PermissionProfile::UserGroupCreateDelete,
        Profile::ConsistencyGuid => v1::PermissionProfile::ConsistencyGuid,
    }
}

pub fn profile_choice(value: i32) -> Option<ProfileChoice> {
    Some(match v1::PermissionProfile::try_from(value).ok()? {
        v1::PermissionProfile::Unspecified => return None,
        v1::PermissionProfile::BasicRead => ProfileChoice::One(Profile::BasicRead),
        v1::PermissionProfile::PasswordHashSync => ProfileChoice::One(Profile::PasswordHashSync),
        v1::PermissionProfile::PasswordWriteBack => ProfileChoice::One(Profile::PasswordWriteBack),
        v1::PermissionProfile::HybridExchange => ProfileChoice::One(Profile::HybridExchange),
        v1::PermissionProfile::ExchangeMailPublicFolder => {
            ProfileChoice::One(Profile::ExchangeMailPublicFolder)
        }
        v1::PermissionProfile::UserGroupCreateDelete => {
            ProfileChoice::One(Profile::UserGroupCreateDelete)
        }
        v1::PermissionProfile::ConsistencyGuid => ProfileChoice::One(Profile::ConsistencyGuid),
        v1::PermissionProfile::All => ProfileChoice::All,
    })
}

fn grant_mode(value: i32) -> Option<GrantMode> {
    match v1::GrantMode::try_from(value).ok()? {
        v1::GrantMode::Unspecified => None,
        v1::GrantMode::Plan => Some(GrantMode::Plan),
        v1::GrantMode::Apply => Some(GrantMode::Apply),
        v1::GrantMode::Remove => Some(GrantMode::Remove),
        v1::GrantMode::PlanRemove => Some(GrantMode::PlanRemove),
    }
}

pub fn ace_change(c: &AceChange) -> v1::AceChange {
    v1::AceChange {
        object_dn: c.object_dn.clone(),
        action: if c.add {
            v1::AceAction::Add
        } else {
            v1::AceAction::Remove
        }
        .into(),
        ace: c.ace.clone(),
        description: c.description.clone(),
        profiles: c
            .profiles
            .iter()
            .map(|p| profile_to_proto(*p).into())
            .collect(),
    }
}

fn account(a: &AccountRecord) -> v1::ServiceAccount {
    v1::ServiceAccount {
        domain: a.domain.clone(),
        sam_account_name: a.sam_account_name.clone(),
        logon_name: if a.netbios.is_empty() {
            a.sam_account_name.clone()
        } else {
            format!("{}\\{}", a.netbios, a.sam_account_name)
        },
        distinguished_name: a.distinguished_name.clone(),
        sid: a.sid.clone(),
        origin: match a.origin {
            Origin::Created => v1::ServiceAccountOrigin::Created,
            Origin::Custom => v1::ServiceAccountOrigin::Custom,
        }
        .into(),
        dns_host_name: a.dns_host_name.clone(),
        encryption_types: encryption_types(a.supported_encryption_types),
        supported_encryption_types: a.supported_encryption_types,
        password_interval_days: a.password_interval_days,
        principals_allowed_to_retrieve_password: a
            .principals
            .iter()
            .map(|p| v1::GmsaPrincipal {
                sid: p.sid.clone(),
                sam_account_name: p.sam_account_name.clone(),
                distinguished_name: p.distinguished_name.clone(),
                kind: match p.kind {
                    PrincipalKind::Computer => v1::PrincipalKind::Computer,
                    PrincipalKind::Group => v1::PrincipalKind::Group,
                    PrincipalKind::Other => v1::PrincipalKind::Other,
                    PrincipalKind::Unresolved => v1::PrincipalKind::Unresolved,
                }
                .into(),
            })
            .collect(),
        enabled: a.enabled,
        create_time: a.create_time_ms.map(timestamp),
        record_time: Some(timestamp(a.record_time_ms)),
        observe_time: Some(timestamp(a.observe_time_ms)),
    }
}

pub fn profile_status(s: &ProfileStatus) -> v1::PermissionProfileStatus {
    v1::PermissionProfileStatus {
        profile: profile_to_proto(s.profile).into(),
        present: s.present,
        missing_aces: s.missing.iter().map(ace_change).collect(),
        message: s.message.clone(),
    }
}

#[derive(Clone)]
pub struct ServiceAccountApi {
    pub app: Arc<App>,
}

#[tonic::async_trait]
impl v1::service_account_service_server::ServiceAccountService for ServiceAccountApi {
    async fn create_gmsa(
        &self,
        request: Request<v1::CreateGmsaRequest>,
    ) -> Result<Response<v1::CreateGmsaResponse>, Status> {
        let who = caller(&request);
        let mut r = request.into_inner();
        let req = CreateGmsaRequest {
            name: std::mem::take(&mut r.name),
            container_dn: std::mem::take(&mut r.container_dn),
            dns_host_name: std::mem::take(&mut r.dns_host_name),
            password_interval_days: r.password_interval_days,
            encryption_types: r
                .encryption_types
                .iter()
                .map(|t| encryption_bit(*t))
                .collect(),
            principals: std::mem::take(&mut r.principals_allowed_to_retrieve_password),
            domain: std::mem::take(&mut r.domain),
            credential: bind_credential(r.credential.take()).map_err(Status::from)?,
            request_id: std::mem::take(&mut r.request_id),
        };
        let record = self
            .app
            .gmsa
            .create(&who, req)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::CreateGmsaResponse {
            operation: Some(operation(&record)),
        }))
    }

    async fn use_custom_gmsa(
        &self,
        request: Request<v1::UseCustomGmsaRequest>,
    ) -> Result<Response<v1::UseCustomGmsaResponse>, Status> {
        let who = caller(&request);
        let mut r = request.into_inner();
        let req = UseCustomGmsaRequest {
            name: std::mem::take(&mut r.name),
            domain: std::mem::take(&mut r.domain),
            credential: bind_credential(r.credential.take()).map_err(Status::from)?,
            host_account: std::mem::take(&mut r.host_account),
            request_id: std::mem::take(&mut r.request_id),
        };
        let record = self
            .app
            .gmsa
            .use_custom(&who, req)
            .await
            .map_err(Status::from)?;
        Ok(started(v1::UseCustomGmsaResponse {
            operation: Some(operation(&record)),
        }))
    }

    async fn get_service_account(
        &self,
        request: Request<v1::GetServiceAccountRequest>,
    ) -> Result<Response<v1::GetServiceAccountResponse>, Status> {
        let mut r = request.into_inner();
        let report = self
            .app
            .gmsa
            .get(
                &r.domain,
                bind_credential(r.credential.take()).map_err(Status::from)?,
            )
            .await
            .map_err(Status::from)?;
        Ok(Response::new(v1::GetServiceAccountResponse {
            configured: report.account.is_some(),
            account: report.account.as_ref().map(account),
            domain: report.domain,
            live: report.live,
            live_unavailable_reason: report.live_unavailable_reason,
            permissions: report.permissions.iter().map(profile_status).collect(),
        }))
    }

    async fn grant_permissions(
        &self,
        request: Request<v1::GrantPermissionsRequest>,
    ) -> Result<Response<v1::GrantPermissionsResponse>, Status> {
        let who = caller(&request);
        let mut r = request.into_inner();
        let req = GrantPermissionsRequest {
            domain: std::mem::take(&mut r.domain),
            profiles: r.profiles.iter().map(|p| profile_choice(*p)).collect(),
            organizational_units: std::mem::take(&mut r.organizational_units),
            mode: grant_mode(r.mode),
            trustee: std::mem::take(&mut r.trustee),
            credential: bind_credential(r.credential.take()).map_err(Status::from)?,
            request_id: std::mem::take(&mut r.request_id),
        };
        let record = self.app.gmsa.grant(&who, req).await.map_err(Status::from)?;
        Ok(started(v1::GrantPermissionsResponse {
            operation: Some(operation(&record)),
        }))
    }
}
