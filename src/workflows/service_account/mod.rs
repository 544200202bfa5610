//! ServiceAccountService: create a gMSA, adopt a custom one, report the
//! recorded account, and grant / plan / remove permission profiles (the
//! engine is [`crate::workflows::permissions`]'s). Create and adopt both end
//! by making the agent service log on as the gMSA.

mod account;
mod create;
mod custom;
mod logon;
mod prerequisites;
mod request;

use std::sync::Arc;

use super::agent_module::AgentSide;
use super::domain_controllers::{Connect, DcSession, DomainControllerWorkflows, NO_READER, Reader};
use super::operations::{Job, NewEvent, OperationSpec, Progress, RequestFingerprint, job};
use super::permissions::{GrantPermissionsRequest, ProfileStatus};
use super::validate::{self, dns_name};
use super::{Caller, Error, Operations};
use crate::backends::agent_config::AgentConfig;
use crate::backends::directory::BindCredential;
use crate::backends::host::Host;
use crate::backends::store::{EventKind, OperationKind, OperationRecord, Store};
use crate::workflows::PreconditionReason;
use account::{read_live, read_permissions};
use create::run_create;
use custom::run_use_custom;
use logon::configure_service;

pub use account::{AccountRecord, Origin, PrincipalKind};
pub(crate) use account::{
    GMSA_CLASS_FILTER, forget_account, gmsa_name, load_account, membership_descriptor,
    membership_sids, resolve_sid,
};
pub(crate) use logon::{host_may_retrieve, read_account_entry};
pub(crate) use prerequisites::{
    KdsRootKey, default_msa_container, is_deleted_dn, msa_reference, msa_reference_value,
    read_kds_keys,
};
pub(crate) use request::{create_fields, custom_fields};

pub const DEFAULT_GMSA: &str = "provAgentgMSA$";

/// What a live report reads besides the permissions.
#[derive(Clone, Copy)]
enum LiveRead {
    /// The account read back and its principals named (GetServiceAccount).
    Account,
    /// Nothing else: the account as recorded (a plan's permissions).
    Permissions,
}
pub const DEFAULT_INTERVAL_DAYS: u32 = 30;
pub const MAX_INTERVAL_DAYS: u32 = 36_500;
pub const ENC_RC4: u32 = 0x4;
pub const ENC_AES128: u32 = 0x8;
pub const ENC_AES256: u32 = 0x10;

/// CreateGmsa as the transport hands it over.
#[derive(Debug, Default)]
pub struct CreateGmsaRequest {
    pub name: String,
    pub container_dn: String,
    pub dns_host_name: String,
    pub password_interval_days: u32,
    /// Bits of msDS-SupportedEncryptionTypes; `None` for a value the
    /// transport could not map (rejected).
    pub encryption_types: Vec<Option<u32>>,
    pub principals: Vec<String>,
    pub domain: String,
    pub credential: Option<BindCredential>,
    pub request_id: String,
}

#[derive(Debug, Default)]
pub struct UseCustomGmsaRequest {
    pub name: String,
    pub domain: String,
    pub credential: Option<BindCredential>,
    pub host_account: String,
    pub request_id: String,
}

#[derive(Debug, Clone)]
pub struct ServiceAccountReport {
    pub account: Option<AccountRecord>,
    pub domain: String,
    pub live: bool,
    pub live_unavailable_reason: String,
    pub permissions: Vec<ProfileStatus>,
}

pub struct ServiceAccountWorkflows {
    operations: Arc<Operations>,
    store: Arc<dyn Store>,
    dcs: Arc<DomainControllerWorkflows>,
    host: Arc<dyn Host>,
    /// Gives the agent its gMSA (`Add-AADCloudSyncGMSA`).
    agent_config: Arc<dyn AgentConfig>,
}

fn enc_names(bits: u32) -> String {
    let mut v = Vec::new();
    if bits & ENC_RC4 != 0 {
        v.push("RC4");
    }
    if bits & ENC_AES128 != 0 {
        v.push("AES128");
    }
    if bits & ENC_AES256 != 0 {
        v.push("AES256");
    }
    if v.is_empty() {
        format!("0x{bits:x}")
    } else {
        format!("{} (0x{bits:x})", v.join("+"))
    }
}

async fn event(
    progress: &Progress,
    step: &str,
    kind: EventKind,
    message: String,
    attrs: &[(&str, String)],
) -> Result<(), Error> {
    progress
        .emit(NewEvent {
            step: step.into(),
            kind: Some(kind),
            message,
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            ..NewEvent::default()
        })
        .await
}

impl ServiceAccountWorkflows {
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        dcs: Arc<DomainControllerWorkflows>,
        host: Arc<dyn Host>,
        agent_config: Arc<dyn AgentConfig>,
    ) -> Self {
        Self {
            operations,
            store,
            dcs,
            host,
            agent_config,
        }
    }

    // ------------------------------------------------------------ CreateGmsa

    pub async fn create(
        &self,
        caller: &Caller,
        request: CreateGmsaRequest,
    ) -> Result<OperationRecord, Error> {
        let (spec, job) = self.prepare_create(caller, request).await?;
        self.operations.start(spec, job).await
    }

    /// Validates and checks preconditions now; the job does the work, in
    /// its own operation or as a step of an apply.
    pub async fn prepare_create(
        &self,
        caller: &Caller,
        mut request: CreateGmsaRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let mut v = Vec::new();
        let domain = dns_name("domain", &request.domain)
            .map_err(|e| v.push(e))
            .ok();
        let plan = request::create_fields(domain.as_deref(), &request, &mut v);
        v.extend(validate::credential(
            "credential",
            request.credential.as_ref(),
        ));
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        let (Some(plan), Some(credential)) = (plan, request.credential.take()) else {
            return Err(Error::InvalidArgument(v));
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let (name, domain) = (&plan.name, &plan.domain);
        let spec = OperationSpec {
            kind: OperationKind::CreateGmsa,
            request_id,
            fingerprint: RequestFingerprint::new()
                .text("domain", domain)
                .text("name", name)
                .text("container_dn", &plan.container)
                .text("dns_host_name", &plan.dns_host)
                .number("password_interval_days", u64::from(plan.interval))
                .number("encryption_types", u64::from(plan.enc))
                .list("principals_allowed_to_retrieve_password", &plan.principals),
            description: format!("create the gMSA {name} in {domain}"),
            initiator: caller.name.clone(),
        };
        let (store, dcs) = (self.store.clone(), self.dcs.clone());
        let agent = AgentSide::new(&self.host, &self.agent_config);
        Ok((
            spec,
            job(move |progress| async move {
                let mut session =
                    DcSession::open(&dcs, &plan.domain, &credential, Connect::Step(&progress))
                        .await?;
                drop(credential);
                let mut outcome = run_create(&progress, session.as_mut(), &store, &plan).await?;
                drop(session);
                configure_service(&progress, &agent, &store, &mut outcome).await?;
                Ok(outcome)
            }),
        ))
    }

    // ------------------------------------------------------------ UseCustomGmsa

    pub async fn use_custom(
        &self,
        caller: &Caller,
        request: UseCustomGmsaRequest,
    ) -> Result<OperationRecord, Error> {
        let (spec, job) = self.prepare_use_custom(caller, request).await?;
        self.operations.start(spec, job).await
    }

    /// Validates and checks preconditions now; the job does the work, in
    /// its own operation or as a step of an apply.
    pub async fn prepare_use_custom(
        &self,
        caller: &Caller,
        mut request: UseCustomGmsaRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let mut v = Vec::new();
        let domain = dns_name("domain", &request.domain)
            .map_err(|e| v.push(e))
            .ok();
        let account = request::custom_fields(&request, &mut v);
        v.extend(validate::credential(
            "credential",
            request.credential.as_ref(),
        ));
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        let (Some(domain), Some((name, host)), Some(credential)) =
            (domain, account, request.credential.take())
        else {
            return Err(Error::InvalidArgument(v));
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let spec = OperationSpec {
            kind: OperationKind::UseCustomGmsa,
            request_id,
            fingerprint: RequestFingerprint::new()
                .text("domain", &domain)
                .text("name", &name)
                .text("host_account", &host),
            description: format!("use the custom gMSA {name} of {domain}"),
            initiator: caller.name.clone(),
        };
        let (store, dcs) = (self.store.clone(), self.dcs.clone());
        let agent = AgentSide::new(&self.host, &self.agent_config);
        Ok((
            spec,
            job(move |progress| async move {
                let mut session =
                    DcSession::open(&dcs, &domain, &credential, Connect::Step(&progress)).await?;
                drop(credential);
                let mut outcome =
                    run_use_custom(&progress, session.as_mut(), &store, &domain, &name, &host)
                        .await?;
                drop(session);
                configure_service(&progress, &agent, &store, &mut outcome).await?;
                Ok(outcome)
            }),
        ))
    }

    // ------------------------------------------------------------ GetServiceAccount

    /// GetServiceAccount: read as the request's credential, else as this
    /// host (see [`Reader`]).
    pub async fn get(
        &self,
        domain: &str,
        credential: Option<BindCredential>,
    ) -> Result<ServiceAccountReport, Error> {
        let reader = self.dcs.reader(credential);
        self.get_as(domain, reader.as_ref()).await
    }

    /// What a plan needs of [`Self::get`]: the permission profiles' state
    /// read as `credential`, the account as recorded (not read back, its
    /// principals not named: two searches fewer per plan and per apply).
    pub(crate) async fn get_permissions(
        &self,
        domain: &str,
        credential: BindCredential,
    ) -> Result<ServiceAccountReport, Error> {
        let reader = self.dcs.reader(Some(credential));
        self.report_as(domain, reader.as_ref(), LiveRead::Permissions)
            .await
    }

    /// The report read as `reader` (Verify resolves its own once per run).
    pub(crate) async fn get_as(
        &self,
        domain: &str,
        reader: Option<&Reader>,
    ) -> Result<ServiceAccountReport, Error> {
        self.report_as(domain, reader, LiveRead::Account).await
    }

    async fn report_as(
        &self,
        domain: &str,
        reader: Option<&Reader>,
        what: LiveRead,
    ) -> Result<ServiceAccountReport, Error> {
        let mut v = Vec::new();
        let domain = if domain.is_empty() {
            None
        } else {
            dns_name("domain", domain).map_err(|e| v.push(e)).ok()
        };
        if let Some(Reader::Request(credential)) = reader {
            v.extend(validate::credential("credential", Some(credential)));
        }
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let account = load_account(&self.store).await?;
        let Some(account) = account else {
            return Ok(ServiceAccountReport {
                account: None,
                domain: domain.unwrap_or_default(),
                live: false,
                live_unavailable_reason: "no service account is recorded".into(),
                permissions: Vec::new(),
            });
        };
        let domain = domain.unwrap_or_else(|| account.domain.clone());
        let Some(reader) = reader else {
            return Ok(ServiceAccountReport {
                account: Some(account),
                domain,
                live: false,
                live_unavailable_reason: NO_READER.into(),
                permissions: Vec::new(),
            });
        };
        // The DCs' order failing is the call's error; only the bind's
        // failure makes the report "not live".
        let order = self.dcs.order(&domain).await?;
        let mut session = match DcSession::open_preferring(
            &self.dcs,
            &domain,
            &order,
            reader.credential(),
            Connect::Quiet,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => {
                return Ok(ServiceAccountReport {
                    account: Some(account),
                    domain,
                    live: false,
                    live_unavailable_reason: reader.unread(e)?,
                    permissions: Vec::new(),
                });
            }
        };
        let (fresh, permissions) = match what {
            LiveRead::Account => read_live(session.as_mut(), &account, &domain).await?,
            LiveRead::Permissions => {
                let permissions = read_permissions(session.as_mut(), &account).await?;
                (account, permissions)
            }
        };
        drop(session);
        Ok(ServiceAccountReport {
            account: Some(fresh),
            domain,
            live: true,
            live_unavailable_reason: String::new(),
            permissions,
        })
    }

    // ------------------------------------------------------------ GrantPermissions

    pub async fn grant(
        &self,
        caller: &Caller,
        request: GrantPermissionsRequest,
    ) -> Result<OperationRecord, Error> {
        let (spec, job) = self.prepare_grant(caller, request).await?;
        self.operations.start(spec, job).await
    }

    /// Validates and checks preconditions now; the job does the work, in
    /// its own operation or as a step of an apply.
    pub async fn prepare_grant(
        &self,
        caller: &Caller,
        request: GrantPermissionsRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let mut grant = request.validate()?;
        // Without a trustee, the grant is for the recorded account.
        let trustee = match grant.trustee.take() {
            Some(t) => t,
            None => match load_account(&self.store).await? {
                Some(a) => a.sid,
                None if self
                    .operations
                    .is_retry(grant.request_id.as_deref())
                    .await? =>
                {
                    String::new()
                }
                None => {
                    return Err(Error::FailedPrecondition {
                        reason: PreconditionReason::NoServiceAccount,
                        subject: "trustee".into(),
                        message: "no trustee: name one, or record the agent's account first with CreateGmsa or UseCustomGmsa".into(),
                    });
                }
            },
        };
        Ok(grant.prepare(caller, self.dcs.clone(), self.store.clone(), trustee))
    }
}
