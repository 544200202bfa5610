//! ServiceAccountService: create a gMSA, adopt a custom one, report the
//! recorded account, and grant / plan / remove permission profiles.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::dc::{self, DcWorkflows, directory_error, dns_name};
use super::operations::{Job, NewEvent, OperationSpec, Outcome, Progress, blocking, job, now_ms};
use super::permissions::{self, Profile, Resolved, Wanted};
use super::{Caller, Error, FieldViolation, Operations, validate};
use crate::backends::directory::{
    BindCredential, Change, DirectoryError, DirectorySession, Entry, SD_FLAGS_DACL, Scope, escape,
};
use crate::backends::host::{AGENT_SERVICES, Host, ServiceAction, ServiceState};
use crate::backends::store::{EventKind, OperationKind, OperationRecord, Store};
use provd_sd::{Ace, Acl, SecurityDescriptor, Sid};

const ACCOUNT_NS: &str = "service_account";
const ACCOUNT_KEY: &str = "current";
pub const DEFAULT_GMSA: &str = "provAgentgMSA$";
pub const DEFAULT_INTERVAL_DAYS: u32 = 30;
pub const MAX_INTERVAL_DAYS: u32 = 36_500;
pub const ENC_RC4: u32 = 0x4;
pub const ENC_AES128: u32 = 0x8;
pub const ENC_AES256: u32 = 0x10;
const UAC_ACCOUNTDISABLE: u32 = 0x2;
const UAC_WORKSTATION_TRUST: u32 = 0x1000;
const GMSA_CLASS: &str = "msDS-GroupManagedServiceAccount";
/// The rights New-ADServiceAccount grants each principal in
/// msDS-GroupMSAMembership.
const MEMBERSHIP_MASK: &str = "0xf01ff";
/// LDAP_MATCHING_RULE_IN_CHAIN: transitive group membership.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Created,
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Computer,
    Group,
    Other,
    Unresolved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub sid: String,
    pub sam_account_name: String,
    pub distinguished_name: String,
    pub kind: PrincipalKind,
}

/// The account the agent uses, as provd records it (never a password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub domain: String,
    pub netbios: String,
    pub sam_account_name: String,
    pub distinguished_name: String,
    pub sid: String,
    pub origin: Origin,
    pub dns_host_name: String,
    pub supported_encryption_types: u32,
    pub password_interval_days: u32,
    pub principals: Vec<Principal>,
    pub enabled: bool,
    pub create_time_ms: Option<i64>,
    pub record_time_ms: i64,
    pub observe_time_ms: i64,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMode {
    Plan,
    Apply,
    Remove,
    PlanRemove,
}

impl GrantMode {
    fn name(self) -> &'static str {
        match self {
            GrantMode::Plan => "PLAN",
            GrantMode::Apply => "APPLY",
            GrantMode::Remove => "REMOVE",
            GrantMode::PlanRemove => "PLAN_REMOVE",
        }
    }
    fn writes(self) -> bool {
        matches!(self, GrantMode::Apply | GrantMode::Remove)
    }
    fn removes(self) -> bool {
        matches!(self, GrantMode::Remove | GrantMode::PlanRemove)
    }
}

#[derive(Debug, Default)]
pub struct GrantPermissionsRequest {
    pub domain: String,
    /// `None` entries are values the transport could not map (rejected).
    pub profiles: Vec<Option<ProfileChoice>>,
    pub organizational_units: Vec<String>,
    pub mode: Option<GrantMode>,
    pub trustee: String,
    pub credential: Option<BindCredential>,
    pub request_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileChoice {
    One(Profile),
    All,
}

/// One profile's state for GetServiceAccount.
#[derive(Debug, Clone)]
pub struct ProfileStatus {
    pub profile: Profile,
    pub present: bool,
    pub missing: Vec<AceChange>,
    pub message: String,
}

/// An ACE to add or remove, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AceChange {
    pub object_dn: String,
    pub add: bool,
    pub ace: String,
    pub description: String,
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone)]
pub struct ServiceAccountReport {
    pub account: Option<AccountRecord>,
    pub domain: String,
    pub live: bool,
    pub live_unavailable_reason: String,
    pub permissions: Vec<ProfileStatus>,
}

pub struct GmsaWorkflows {
    operations: Arc<Operations>,
    store: Arc<dyn Store>,
    dcs: Arc<DcWorkflows>,
    host: Arc<dyn Host>,
}

// ---------------------------------------------------------------- validation

/// sAMAccountName of a gMSA: `$` appended; 1–15 characters before it.
pub fn gmsa_name(field: &str, value: &str) -> Result<String, FieldViolation> {
    let value = if value.is_empty() {
        DEFAULT_GMSA
    } else {
        value
    };
    let base = value.strip_suffix('$').unwrap_or(value);
    let chars = base.chars().count();
    if chars == 0 || chars > 15 {
        return Err(FieldViolation::new(
            field,
            "must be 1 to 15 characters before the trailing $",
        ));
    }
    if let Some(bad) = base
        .chars()
        .find(|c| c.is_control() || "\"/\\[]:;|=,+*?<>@$".contains(*c))
    {
        return Err(FieldViolation::new(
            field,
            format!("character {bad:?} is not allowed in a sAMAccountName"),
        ));
    }
    if base.chars().all(|c| c == '.' || c == ' ') {
        return Err(FieldViolation::new(
            field,
            "must not be only dots and spaces",
        ));
    }
    Ok(format!("{base}$"))
}

/// A DN inside the domain: ends with the domain DN, no NUL, at most 2048.
fn dn_in_domain(field: &str, value: &str, domain_dn: &str) -> Result<String, FieldViolation> {
    if value.len() > 2048 || value.contains('\0') {
        return Err(FieldViolation::new(
            field,
            "must be at most 2048 bytes without NUL",
        ));
    }
    let lower = value.to_ascii_lowercase();
    if !(lower == domain_dn.to_ascii_lowercase()
        || lower.ends_with(&format!(",{}", domain_dn.to_ascii_lowercase())))
    {
        return Err(FieldViolation::new(
            field,
            format!("must be a DN inside {domain_dn}"),
        ));
    }
    if !value.contains('=') {
        return Err(FieldViolation::new(field, "is not a distinguished name"));
    }
    Ok(value.to_owned())
}

fn principal_name(field: &str, value: &str) -> Result<String, FieldViolation> {
    if value.trim().is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if value.len() > 2048 || value.contains('\0') {
        return Err(FieldViolation::new(
            field,
            "must be at most 2048 bytes without NUL",
        ));
    }
    Ok(value.trim().to_owned())
}

// ---------------------------------------------------------------- directory helpers

/// Naming contexts from the RootDSE: (domain, configuration, schema).
async fn naming_contexts(
    session: &mut dyn DirectorySession,
) -> Result<(String, String, String), Error> {
    let root = session.root_dse().await.map_err(directory_error)?;
    let get = |n: &str| {
        root.first(n)
            .map(str::to_owned)
            .ok_or_else(|| Error::Internal(format!("RootDSE has no {n}")))
    };
    Ok((
        get("defaultNamingContext")?,
        get("configurationNamingContext")?,
        get("schemaNamingContext")?,
    ))
}

const ACCOUNT_ATTRS: [&str; 10] = [
    "objectClass",
    "sAMAccountName",
    "dNSHostName",
    "msDS-ManagedPasswordInterval",
    "msDS-SupportedEncryptionTypes",
    "msDS-GroupMSAMembership",
    "userAccountControl",
    "objectSid",
    "whenCreated",
    "cn",
];

/// Finds an object by DN (if `name` looks like one) or sAMAccountName.
async fn find_account(
    session: &mut dyn DirectorySession,
    domain_dn: &str,
    name: &str,
    attrs: &[&str],
) -> Result<Option<Entry>, Error> {
    let result = if name.contains('=') {
        session
            .search(name, Scope::Base, "(objectClass=*)", attrs)
            .await
    } else {
        session
            .search(
                domain_dn,
                Scope::Subtree,
                &escape::eq("sAMAccountName", name),
                attrs,
            )
            .await
    };
    match result {
        Ok(entries) => Ok(entries.into_iter().next()),
        Err(DirectoryError::NoSuchObject { .. }) => Ok(None),
        Err(e) => Err(directory_error(e)),
    }
}

fn entry_sid(entry: &Entry) -> Result<Sid, Error> {
    entry
        .first_bin("objectSid")
        .ok_or_else(|| Error::Internal(format!("{} has no objectSid", entry.dn)))
        .and_then(|b| {
            Sid::from_bytes(b)
                .map_err(|e| Error::Internal(format!("objectSid of {}: {e}", entry.dn)))
        })
}

fn classes(entry: &Entry) -> BTreeSet<String> {
    entry
        .all("objectClass")
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn kind_of(entry: &Entry) -> PrincipalKind {
    let c = classes(entry);
    if c.contains("computer") && !c.contains(&GMSA_CLASS.to_ascii_lowercase()) {
        PrincipalKind::Computer
    } else if c.contains("group") {
        PrincipalKind::Group
    } else {
        PrincipalKind::Other
    }
}

fn int_attr(entry: &Entry, name: &str) -> Option<u32> {
    entry
        .first(name)
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|v| u32::try_from(v & 0xffff_ffff).ok())
}

/// SIDs allowed by an msDS-GroupMSAMembership descriptor.
fn membership_sids(entry: &Entry) -> Result<Vec<Sid>, Error> {
    let Some(bytes) = entry.first_bin("msDS-GroupMSAMembership") else {
        return Ok(Vec::new());
    };
    let sd = SecurityDescriptor::parse(bytes).map_err(|e| Error::FailedPrecondition {
        reason: "BAD_GMSA_MEMBERSHIP",
        subject: entry.dn.clone(),
        message: format!(
            "msDS-GroupMSAMembership of {} is not a valid security descriptor: {e}",
            entry.dn
        ),
    })?;
    Ok(sd
        .dacl
        .map(|acl| {
            acl.aces
                .iter()
                .filter(|a| a.ace_type == provd_sd::AceType::ACCESS_ALLOWED)
                .filter_map(|a| a.sid().copied())
                .collect()
        })
        .unwrap_or_default())
}

fn membership_descriptor(sids: &[Sid]) -> Result<Vec<u8>, Error> {
    let aces: String = sids
        .iter()
        .map(|s| format!("(A;;{MEMBERSHIP_MASK};;;{s})"))
        .collect();
    SecurityDescriptor::from_sddl(&format!("O:BAD:{aces}"), None)
        .and_then(|sd| sd.to_bytes())
        .map_err(|e| Error::Internal(format!("building msDS-GroupMSAMembership: {e}")))
}

async fn resolve_sid(
    session: &mut dyn DirectorySession,
    domain_dn: &str,
    sid: &Sid,
) -> Result<Principal, Error> {
    let filter = format!("(objectSid={})", escape::binary(&sid.to_bytes()));
    let found = session
        .search(
            domain_dn,
            Scope::Subtree,
            &filter,
            &["sAMAccountName", "objectClass", "objectSid"],
        )
        .await
        .map_err(directory_error)?
        .into_iter()
        .next();
    Ok(match found {
        Some(e) => Principal {
            sid: sid.to_string(),
            sam_account_name: e.first("sAMAccountName").unwrap_or_default().to_owned(),
            kind: kind_of(&e),
            distinguished_name: e.dn,
        },
        None => Principal {
            sid: sid.to_string(),
            sam_account_name: String::new(),
            distinguished_name: String::new(),
            kind: PrincipalKind::Unresolved,
        },
    })
}

/// FILETIME (100 ns since 1601) to milliseconds since 1970.
fn filetime_ms(value: i64) -> i64 {
    value / 10_000 - 11_644_473_600_000
}

/// `20261127093015.0Z` to milliseconds since 1970.
fn generalized_ms(value: &str) -> Option<i64> {
    crate::backends::directory::ldap::parse_generalized_time(value)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

fn account_record(
    entry: &Entry,
    domain: &str,
    netbios: &str,
    origin: Origin,
    principals: Vec<Principal>,
) -> Result<AccountRecord, Error> {
    let uac = int_attr(entry, "userAccountControl").unwrap_or(0);
    let now = now_ms();
    Ok(AccountRecord {
        domain: domain.to_owned(),
        netbios: netbios.to_owned(),
        sam_account_name: entry.first("sAMAccountName").unwrap_or_default().to_owned(),
        distinguished_name: entry.dn.clone(),
        sid: entry_sid(entry)?.to_string(),
        origin,
        dns_host_name: entry.first("dNSHostName").unwrap_or_default().to_owned(),
        supported_encryption_types: int_attr(entry, "msDS-SupportedEncryptionTypes").unwrap_or(0),
        password_interval_days: int_attr(entry, "msDS-ManagedPasswordInterval").unwrap_or(0),
        principals,
        enabled: uac & UAC_ACCOUNTDISABLE == 0,
        create_time_ms: entry.first("whenCreated").and_then(generalized_ms),
        record_time_ms: now,
        observe_time_ms: now,
    })
}

async fn netbios_name(
    session: &mut dyn DirectorySession,
    config_dn: &str,
    domain_dn: &str,
) -> String {
    let filter = format!(
        "(&(objectClass=crossRef){})",
        escape::eq("nCName", domain_dn)
    );
    session
        .search(
            &format!("CN=Partitions,{config_dn}"),
            Scope::OneLevel,
            &filter,
            &["nETBIOSName"],
        )
        .await
        .ok()
        .and_then(|v| v.into_iter().next())
        .and_then(|e| e.first("nETBIOSName").map(str::to_owned))
        .unwrap_or_default()
}

pub async fn load_account(store: &Arc<dyn Store>) -> Result<Option<AccountRecord>, Error> {
    match blocking(store, |s| s.get_config(ACCOUNT_NS, ACCOUNT_KEY)).await? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Internal(format!("stored service account: {e}"))),
    }
}

async fn save_account(store: &Arc<dyn Store>, record: &AccountRecord) -> Result<(), Error> {
    let bytes = serde_json::to_vec(record).map_err(|e| Error::Internal(e.to_string()))?;
    blocking(store, move |s| {
        s.put_config(ACCOUNT_NS, ACCOUNT_KEY, Some(&bytes))
    })
    .await
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

impl GmsaWorkflows {
    pub fn new(
        operations: Arc<Operations>,
        store: Arc<dyn Store>,
        dcs: Arc<DcWorkflows>,
        host: Arc<dyn Host>,
    ) -> Self {
        Self {
            operations,
            store,
            dcs,
            host,
        }
    }

    async fn connect(
        dcs: &DcWorkflows,
        domain: &str,
        credential: &BindCredential,
        progress: &Progress,
    ) -> Result<Box<dyn DirectorySession>, Error> {
        progress
            .step_started(
                "connect",
                format!("binding to a domain controller of {domain}"),
            )
            .await?;
        let order = dcs.order(domain).await?;
        let session = dcs
            .connect_in_order(&order, credential, Some(progress), "connect")
            .await?;
        progress
            .step_succeeded("connect", format!("bound to {}", session.server()))
            .await?;
        Ok(session)
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
        let name = gmsa_name("name", &request.name).map_err(|e| v.push(e)).ok();
        let domain_dn = domain.as_deref().map(escape::domain_dn);
        let container = match (&domain_dn, request.container_dn.is_empty()) {
            (Some(d), true) => Some(format!("CN=Managed Service Accounts,{d}")),
            (Some(d), false) => dn_in_domain("container_dn", &request.container_dn, d)
                .map_err(|e| v.push(e))
                .ok(),
            (None, _) => None,
        };
        let dns_host = match (&domain, &name, request.dns_host_name.is_empty()) {
            (Some(d), Some(n), true) => Some(format!(
                "{}.{d}",
                n.trim_end_matches('$').to_ascii_lowercase()
            )),
            (_, _, false) => dns_name("dns_host_name", &request.dns_host_name)
                .map_err(|e| v.push(e))
                .ok(),
            _ => None,
        };
        let interval = match request.password_interval_days {
            0 => DEFAULT_INTERVAL_DAYS,
            n if n > MAX_INTERVAL_DAYS => {
                v.push(FieldViolation::new(
                    "password_interval_days",
                    format!("must be at most {MAX_INTERVAL_DAYS}"),
                ));
                DEFAULT_INTERVAL_DAYS
            }
            n => n,
        };
        let mut enc = 0;
        for (i, t) in request.encryption_types.iter().enumerate() {
            match t {
                Some(bit) => enc |= bit,
                None => v.push(FieldViolation::new(
                    format!("encryption_types[{i}]"),
                    "must be RC4, AES128 or AES256",
                )),
            }
        }
        if enc == 0 {
            enc = ENC_AES128 | ENC_AES256;
        }
        if request.principals.is_empty() {
            v.push(FieldViolation::new(
                "principals_allowed_to_retrieve_password",
                "at least one computer account or group is required (the agent host's, e.g. \"AGENT1$\")",
            ));
        } else if request.principals.len() > 100 {
            v.push(FieldViolation::new(
                "principals_allowed_to_retrieve_password",
                "at most 100",
            ));
        }
        let principals: Vec<String> = request
            .principals
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                principal_name(&format!("principals_allowed_to_retrieve_password[{i}]"), p)
                    .map_err(|e| v.push(e))
                    .ok()
            })
            .collect();
        v.extend(dc::credential("credential", request.credential.as_ref()));
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        let (Some(domain), Some(name), Some(container), Some(dns_host), Some(credential)) =
            (domain, name, container, dns_host, request.credential.take())
        else {
            return Err(Error::InvalidArgument(v));
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let spec = OperationSpec {
            kind: OperationKind::CreateGmsa,
            request_id,
            description: format!("create the gMSA {name} in {domain}"),
            initiator: caller.name.clone(),
        };
        let (store, dcs, host) = (self.store.clone(), self.dcs.clone(), self.host.clone());
        let plan = GmsaPlan {
            domain,
            name,
            container,
            dns_host,
            interval,
            enc,
            principals,
        };
        Ok((
            spec,
            job(move |progress| async move {
                let mut session = Self::connect(&dcs, &plan.domain, &credential, &progress).await?;
                drop(credential);
                let result = run_create(&progress, session.as_mut(), &store, &plan).await;
                session.unbind().await;
                let mut outcome = result?;
                configure_service(&progress, &host, &store, &mut outcome).await?;
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
        let name = if request.name.contains('=') {
            principal_name("name", &request.name)
                .map_err(|e| v.push(e))
                .ok()
        } else if request.name.is_empty() {
            v.push(FieldViolation::new("name", "is required"));
            None
        } else {
            gmsa_name("name", &request.name).map_err(|e| v.push(e)).ok()
        };
        let host = if request.host_account.is_empty() {
            v.push(FieldViolation::new(
                "host_account",
                "is required here: this host's computer account is unknown without the Windows host backend",
            ));
            None
        } else {
            principal_name("host_account", &request.host_account)
                .map_err(|e| v.push(e))
                .ok()
        };
        v.extend(dc::credential("credential", request.credential.as_ref()));
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        let (Some(domain), Some(name), Some(host), Some(credential)) =
            (domain, name, host, request.credential.take())
        else {
            return Err(Error::InvalidArgument(v));
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let spec = OperationSpec {
            kind: OperationKind::UseCustomGmsa,
            request_id,
            description: format!("use the custom gMSA {name} of {domain}"),
            initiator: caller.name.clone(),
        };
        let (store, dcs, agent_host) = (self.store.clone(), self.dcs.clone(), self.host.clone());
        Ok((
            spec,
            job(move |progress| async move {
                let mut session = Self::connect(&dcs, &domain, &credential, &progress).await?;
                drop(credential);
                let result =
                    run_use_custom(&progress, session.as_mut(), &store, &domain, &name, &host)
                        .await;
                session.unbind().await;
                let mut outcome = result?;
                configure_service(&progress, &agent_host, &store, &mut outcome).await?;
                Ok(outcome)
            }),
        ))
    }

    // ------------------------------------------------------------ GetServiceAccount

    pub async fn get(
        &self,
        domain: &str,
        credential: Option<BindCredential>,
    ) -> Result<ServiceAccountReport, Error> {
        let mut v = Vec::new();
        let domain = if domain.is_empty() {
            None
        } else {
            dns_name("domain", domain).map_err(|e| v.push(e)).ok()
        };
        if credential.is_some() {
            v.extend(dc::credential("credential", credential.as_ref()));
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
        let Some(credential) = credential else {
            return Ok(ServiceAccountReport {
                account: Some(account),
                domain,
                live: false,
                live_unavailable_reason:
                    "no credential given, and this host cannot bind as its computer account".into(),
                permissions: Vec::new(),
            });
        };
        let order = self.dcs.order(&domain).await?;
        let mut session = match self
            .dcs
            .connect_in_order(&order, &credential, None, "read")
            .await
        {
            Ok(s) => s,
            Err(Error::Unauthenticated(m)) => return Err(Error::Unauthenticated(m)),
            Err(e) => {
                return Ok(ServiceAccountReport {
                    account: Some(account),
                    domain,
                    live: false,
                    live_unavailable_reason: e.to_string(),
                    permissions: Vec::new(),
                });
            }
        };
        drop(credential);
        let live = read_live(session.as_mut(), &account, &domain).await;
        session.unbind().await;
        let (fresh, permissions) = live?;
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
        mut request: GrantPermissionsRequest,
    ) -> Result<(OperationSpec, Job), Error> {
        let mut v = Vec::new();
        let domain = dns_name("domain", &request.domain)
            .map_err(|e| v.push(e))
            .ok();
        let mut profiles = BTreeSet::new();
        if request.profiles.is_empty() {
            v.push(FieldViolation::new(
                "profiles",
                "at least one profile is required",
            ));
        }
        for (i, p) in request.profiles.iter().enumerate() {
            match p {
                Some(ProfileChoice::One(p)) => {
                    profiles.insert(*p);
                }
                Some(ProfileChoice::All) => profiles.extend(Profile::ALL),
                None => v.push(FieldViolation::new(
                    format!("profiles[{i}]"),
                    "is not a permission profile",
                )),
            }
        }
        let domain_dn = domain.as_deref().map(escape::domain_dn);
        if request.organizational_units.len() > 100 {
            v.push(FieldViolation::new("organizational_units", "at most 100"));
        }
        let ous: Vec<String> = match &domain_dn {
            Some(d) => request
                .organizational_units
                .iter()
                .enumerate()
                .filter_map(|(i, ou)| {
                    dn_in_domain(&format!("organizational_units[{i}]"), ou, d)
                        .map_err(|e| v.push(e))
                        .ok()
                })
                .collect(),
            None => Vec::new(),
        };
        let mode = request.mode;
        if mode.is_none() {
            v.push(FieldViolation::new(
                "mode",
                "is required: PLAN, APPLY, REMOVE or PLAN_REMOVE",
            ));
        }
        let trustee = if request.trustee.is_empty() {
            None
        } else {
            principal_name("trustee", &request.trustee)
                .map_err(|e| v.push(e))
                .ok()
        };
        v.extend(dc::credential("credential", request.credential.as_ref()));
        let request_id = validate::request_id("request_id", &request.request_id)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        let (Some(domain), Some(mode), Some(credential)) =
            (domain, mode, request.credential.take())
        else {
            return Err(Error::InvalidArgument(v));
        };
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let trustee = match trustee {
            Some(t) => t,
            None => match load_account(&self.store).await? {
                Some(a) => a.sid,
                None if self.operations.is_retry(request_id.as_deref()).await? => String::new(),
                None => {
                    return Err(Error::FailedPrecondition {
                        reason: "NO_SERVICE_ACCOUNT",
                        subject: "trustee".into(),
                        message: "no trustee: name one, or record the agent's account first with CreateGmsa or UseCustomGmsa".into(),
                    });
                }
            },
        };
        let spec = OperationSpec {
            kind: OperationKind::GrantPermissions,
            request_id,
            description: format!(
                "{} {} for {trustee} in {domain}",
                mode.name(),
                profiles
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            initiator: caller.name.clone(),
        };
        let dcs = self.dcs.clone();
        let profiles: Vec<Profile> = profiles.into_iter().collect();
        Ok((
            spec,
            job(move |progress| async move {
                let mut session = Self::connect(&dcs, &domain, &credential, &progress).await?;
                drop(credential);
                let result =
                    grant_in_session(&progress, session.as_mut(), &trustee, &profiles, &ous, mode)
                        .await;
                session.unbind().await;
                let totals = result?;
                Ok(Outcome::from([
                    ("mode".into(), mode.name().into()),
                    ("added".into(), totals.added.to_string()),
                    ("removed".into(), totals.removed.to_string()),
                    ("unchanged".into(), totals.unchanged.to_string()),
                    ("objects".into(), totals.objects.to_string()),
                ]))
            }),
        ))
    }
}

struct GmsaPlan {
    domain: String,
    name: String,
    container: String,
    dns_host: String,
    interval: u32,
    enc: u32,
    principals: Vec<String>,
}

async fn check_kds(session: &mut dyn DirectorySession, config_dn: &str) -> Result<(), Error> {
    let base =
        format!("CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,{config_dn}");
    let keys = match session
        .search(
            &base,
            Scope::OneLevel,
            "(objectClass=msKds-ProvRootKey)",
            &["msKds-UseStartTime", "cn"],
        )
        .await
    {
        Ok(k) => k,
        Err(DirectoryError::NoSuchObject { .. }) => Vec::new(),
        Err(e) => return Err(directory_error(e)),
    };
    let now = now_ms();
    let starts: Vec<i64> = keys
        .iter()
        .map(|k| {
            k.first("msKds-UseStartTime")
                .and_then(|v| v.parse::<i64>().ok())
                .map_or(0, filetime_ms)
        })
        .collect();
    if starts.iter().any(|s| *s <= now) {
        return Ok(());
    }
    let message = match starts.iter().min() {
        Some(first) => format!(
            "the KDS root key is not effective yet (it will be in {} minutes); wait, or in a single-DC lab \
             create one with Add-KdsRootKey -EffectiveTime ((Get-Date).AddHours(-10))",
            (first - now) / 60_000 + 1
        ),
        None => "no KDS root key exists: run Add-KdsRootKey -EffectiveImmediately as an Enterprise Admin and \
                 wait for it to replicate (10 hours); in a single-DC lab, \
                 Add-KdsRootKey -EffectiveTime ((Get-Date).AddHours(-10))"
            .to_owned(),
    };
    Err(Error::FailedPrecondition {
        reason: "NO_KDS_ROOT_KEY",
        subject: base,
        message,
    })
}

async fn run_create(
    progress: &Progress,
    session: &mut dyn DirectorySession,
    store: &Arc<dyn Store>,
    plan: &GmsaPlan,
) -> Result<Outcome, Error> {
    let (domain_dn, config_dn, schema_dn) = naming_contexts(session).await?;
    progress
        .step_started("check-prerequisites", "schema class and KDS root key")
        .await?;
    let class = session
        .search(
            &schema_dn,
            Scope::OneLevel,
            &escape::eq("lDAPDisplayName", GMSA_CLASS),
            &["cn"],
        )
        .await
        .map_err(directory_error)?;
    if class.is_empty() {
        return Err(Error::FailedPrecondition {
            reason: "NO_GMSA_CLASS",
            subject: schema_dn,
            message: "the schema lacks msDS-GroupManagedServiceAccount: extend it to the Windows Server 2012 schema".into(),
        });
    }
    check_kds(session, &config_dn).await?;
    progress
        .step_succeeded(
            "check-prerequisites",
            "the schema has gMSAs and a KDS root key is effective",
        )
        .await?;

    progress
        .step_started(
            "resolve-principals",
            "resolving who may retrieve the password",
        )
        .await?;
    let mut sids = Vec::new();
    let mut principals = Vec::new();
    for (i, name) in plan.principals.iter().enumerate() {
        let entry = find_account(
            session,
            &domain_dn,
            name,
            &["objectClass", "objectSid", "sAMAccountName"],
        )
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "principal {name} (principals_allowed_to_retrieve_password[{i}])"
            ))
        })?;
        let kind = kind_of(&entry);
        if !matches!(kind, PrincipalKind::Computer | PrincipalKind::Group) {
            return Err(Error::invalid(
                format!("principals_allowed_to_retrieve_password[{i}]"),
                format!("{name} ({}) is neither a computer nor a group", entry.dn),
            ));
        }
        let sid = entry_sid(&entry)?;
        event(
            progress,
            "resolve-principals",
            EventKind::Progress,
            format!("{name} is {sid}"),
            &[("principal", entry.dn.clone())],
        )
        .await?;
        if !sids.contains(&sid) {
            sids.push(sid);
            principals.push(Principal {
                sid: sid.to_string(),
                sam_account_name: entry.first("sAMAccountName").unwrap_or_default().to_owned(),
                distinguished_name: entry.dn.clone(),
                kind,
            });
        }
    }
    progress
        .step_succeeded("resolve-principals", format!("{} principals", sids.len()))
        .await?;

    progress
        .step_started(
            "create-account",
            format!("{} in {}", plan.name, plan.container),
        )
        .await?;
    let existing = find_account(session, &domain_dn, &plan.name, &ACCOUNT_ATTRS).await?;
    let netbios = netbios_name(session, &config_dn, &domain_dn).await;
    let mut changed = false;
    let entry = match existing {
        Some(entry) => {
            reconcile_existing(progress, session, &entry, plan, &sids)
                .await
                .map(|c| changed = c)?;
            find_account(session, &domain_dn, &plan.name, &ACCOUNT_ATTRS)
                .await?
                .ok_or_else(|| Error::Internal(format!("{} vanished", plan.name)))?
        }
        None => {
            let cn = plan.name.trim_end_matches('$');
            let dn = format!("CN={},{}", escape::dn_value(cn), plan.container);
            let text = |s: &str| vec![s.as_bytes().to_vec()];
            let attrs: Vec<(&str, Vec<Vec<u8>>)> = vec![
                ("objectClass", text(GMSA_CLASS)),
                ("cn", text(cn)),
                ("sAMAccountName", text(&plan.name)),
                ("dNSHostName", text(&plan.dns_host)),
                (
                    "msDS-ManagedPasswordInterval",
                    text(&plan.interval.to_string()),
                ),
                ("msDS-SupportedEncryptionTypes", text(&plan.enc.to_string())),
                (
                    "userAccountControl",
                    text(&UAC_WORKSTATION_TRUST.to_string()),
                ),
                (
                    "msDS-GroupMSAMembership",
                    vec![membership_descriptor(&sids)?],
                ),
            ];
            session.add(&dn, &attrs).await.map_err(|e| match e {
                DirectoryError::NoSuchObject { .. } => {
                    Error::NotFound(format!("container {}", plan.container))
                }
                other => directory_error(other),
            })?;
            changed = true;
            progress
                .step_succeeded("create-account", format!("created {dn}"))
                .await?;
            find_account(session, &domain_dn, &plan.name, &ACCOUNT_ATTRS)
                .await?
                .ok_or_else(|| Error::Internal(format!("{dn} cannot be read back")))?
        }
    };

    progress
        .step_started("record", "recording the account the agent uses")
        .await?;
    let record = account_record(&entry, &plan.domain, &netbios, Origin::Created, principals)?;
    let previous = load_account(store).await?;
    let same = previous
        .as_ref()
        .is_some_and(|p| p.sid == record.sid && p.origin == Origin::Created);
    save_account(store, &record).await?;
    if same {
        progress
            .step_skipped("record", "already the recorded account")
            .await?;
    } else {
        progress
            .step_succeeded(
                "record",
                format!(
                    "the agent's account is now {}\\{}",
                    netbios, record.sam_account_name
                ),
            )
            .await?;
    }
    Ok(Outcome::from([
        (
            "distinguished_name".into(),
            record.distinguished_name.clone(),
        ),
        ("sid".into(), record.sid.clone()),
        ("sam_account_name".into(), record.sam_account_name.clone()),
        ("changed".into(), changed.to_string()),
    ]))
}

/// An account of that name exists: identical → skip; principals differ →
/// rewrite them; anything else → FAILED_PRECONDITION naming each difference.
async fn reconcile_existing(
    progress: &Progress,
    session: &mut dyn DirectorySession,
    entry: &Entry,
    plan: &GmsaPlan,
    sids: &[Sid],
) -> Result<bool, Error> {
    let mut conflicts = Vec::new();
    if !classes(entry).contains(&GMSA_CLASS.to_ascii_lowercase()) {
        conflicts.push(format!(
            "{} is not a gMSA (objectClass {:?})",
            entry.dn,
            entry.all("objectClass")
        ));
    }
    let parent = entry.dn.split_once(',').map(|(_, p)| p).unwrap_or_default();
    if !parent.eq_ignore_ascii_case(&plan.container) {
        conflicts.push(format!(
            "container is {parent}, requested {}",
            plan.container
        ));
    }
    let interval = int_attr(entry, "msDS-ManagedPasswordInterval").unwrap_or(0);
    if interval != plan.interval {
        conflicts.push(format!(
            "password interval is {interval} days, requested {} (AD fixes it at creation: delete and create the account again, or adopt it as it is with UseCustomGmsa)",
            plan.interval
        ));
    }
    let enc = int_attr(entry, "msDS-SupportedEncryptionTypes").unwrap_or(0);
    if enc != plan.enc {
        conflicts.push(format!(
            "encryption types are {}, requested {}",
            enc_names(enc),
            enc_names(plan.enc)
        ));
    }
    let host = entry.first("dNSHostName").unwrap_or_default();
    if !host.eq_ignore_ascii_case(&plan.dns_host) {
        conflicts.push(format!(
            "dNSHostName is {host:?}, requested {:?}",
            plan.dns_host
        ));
    }
    if int_attr(entry, "userAccountControl").unwrap_or(0) & UAC_ACCOUNTDISABLE != 0 {
        conflicts.push("the account is disabled".into());
    }
    if !conflicts.is_empty() {
        return Err(Error::FailedPrecondition {
            reason: "GMSA_CONFLICT",
            subject: entry.dn.clone(),
            message: format!(
                "{} exists and differs: {}; nothing was changed",
                plan.name,
                conflicts.join("; ")
            ),
        });
    }
    let current: BTreeSet<Sid> = membership_sids(entry)?.into_iter().collect();
    let wanted: BTreeSet<Sid> = sids.iter().copied().collect();
    if current == wanted {
        progress
            .step_skipped(
                "create-account",
                format!("{} exists exactly as requested", entry.dn),
            )
            .await?;
        return Ok(false);
    }
    for added in wanted.difference(&current) {
        event(
            progress,
            "create-account",
            EventKind::Progress,
            format!("allowing {added} to retrieve the password"),
            &[("principal", added.to_string())],
        )
        .await?;
    }
    for removed in current.difference(&wanted) {
        event(
            progress,
            "create-account",
            EventKind::Warning,
            format!("no longer allowing {removed} to retrieve the password"),
            &[("principal", removed.to_string())],
        )
        .await?;
    }
    session
        .modify(
            &entry.dn,
            &[Change::Replace(
                "msDS-GroupMSAMembership".into(),
                vec![membership_descriptor(sids)?],
            )],
        )
        .await
        .map_err(directory_error)?;
    progress
        .step_succeeded("create-account", "allowed principals reconciled")
        .await?;
    Ok(true)
}

/// Step `configure-service`: the provisioning agent service logs on as the
/// recorded gMSA (what the wizard's gMSA page does), restarted if it runs.
async fn configure_service(
    progress: &Progress,
    host: &Arc<dyn Host>,
    store: &Arc<dyn Store>,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    const STEP: &str = "configure-service";
    let (service, display) = AGENT_SERVICES[0];
    progress
        .step_started(STEP, format!("{display} logs on as the gMSA"))
        .await?;
    if let Err(reason) = host.availability() {
        progress
            .warning(
                STEP,
                format!(
                    "{reason}: set the service's logon account on the agent host (`sc.exe config \
                     {service} obj= DOMAIN\\name$`)"
                ),
            )
            .await?;
        return progress.step_skipped(STEP, "no agent host here").await;
    }
    let Some(account) = load_account(store).await? else {
        return Err(Error::Internal("the account was not recorded".into()));
    };
    let logon = format!("{}\\{}", account.netbios, account.sam_account_name);
    let current = host
        .service_status(service)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    if current.state == ServiceState::NotInstalled {
        progress
            .warning(
                STEP,
                "the agent is not installed; Install, then run this again to set the logon account",
            )
            .await?;
        return progress.step_skipped(STEP, "agent not installed").await;
    }
    if current.account.eq_ignore_ascii_case(&logon) {
        outcome.insert("service_account".into(), logon.clone());
        return progress
            .step_skipped(STEP, format!("{service} already logs on as {logon}"))
            .await;
    }
    host.set_service_account(service, &logon)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    if current.state == ServiceState::Running {
        host.control_service(service, ServiceAction::Restart, SERVICE_RESTART_TIMEOUT)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
    }
    outcome.insert("service_account".into(), logon.clone());
    outcome.insert("changed".into(), "true".into());
    progress
        .step_succeeded(
            STEP,
            format!("{service} logs on as {logon} (was {:?})", current.account),
        )
        .await
}

/// How long the agent service may take to restart under its new account.
const SERVICE_RESTART_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether `host` (a sAMAccountName or DN) may retrieve the password of the
/// gMSA `entry` (read with msDS-GroupMSAMembership): directly or through
/// nested groups. `Ok(Err(why))` says why not.
pub async fn host_may_retrieve(
    session: &mut dyn DirectorySession,
    domain_dn: &str,
    entry: &Entry,
    host: &str,
) -> Result<Result<(), String>, Error> {
    let allowed = membership_sids(entry)?;
    let Some(h) = find_account(session, domain_dn, host, &["objectSid", "objectClass"]).await?
    else {
        return Ok(Err(format!("the host account {host} does not exist")));
    };
    let host_sid = entry_sid(&h)?;
    let mut may = allowed.contains(&host_sid);
    for sid in &allowed {
        if may {
            break;
        }
        let filter = format!(
            "(&(objectSid={})(member:{IN_CHAIN}:={}))",
            escape::binary(&sid.to_bytes()),
            escape::filter_value(&h.dn)
        );
        may = !session
            .search(domain_dn, Scope::Subtree, &filter, &["cn"])
            .await
            .map_err(directory_error)?
            .is_empty();
    }
    if may {
        return Ok(Ok(()));
    }
    Ok(Err(format!(
        "{host} may not retrieve the password: msDS-GroupMSAMembership allows {}",
        if allowed.is_empty() {
            "nobody".to_owned()
        } else {
            allowed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    )))
}

/// Reads the recorded gMSA's entry (with the attributes
/// [`host_may_retrieve`] needs).
pub async fn read_account_entry(
    session: &mut dyn DirectorySession,
    domain_dn: &str,
    account: &AccountRecord,
) -> Result<Option<Entry>, Error> {
    find_account(
        session,
        domain_dn,
        &account.distinguished_name,
        &ACCOUNT_ATTRS,
    )
    .await
}

async fn run_use_custom(
    progress: &Progress,
    session: &mut dyn DirectorySession,
    store: &Arc<dyn Store>,
    domain: &str,
    name: &str,
    host: &str,
) -> Result<Outcome, Error> {
    let (domain_dn, config_dn, schema_dn) = naming_contexts(session).await?;
    progress
        .step_started("read-account", format!("looking up {name}"))
        .await?;
    let entry = find_account(session, &domain_dn, name, &ACCOUNT_ATTRS)
        .await?
        .ok_or_else(|| Error::NotFound(format!("account {name} in {domain}")))?;
    progress
        .step_succeeded("read-account", format!("found {}", entry.dn))
        .await?;

    progress
        .step_started(
            "validate-account",
            "class, enabled, password retrieval, encryption types",
        )
        .await?;
    let mut problems = Vec::new();
    if !classes(&entry).contains(&GMSA_CLASS.to_ascii_lowercase()) {
        problems.push(format!(
            "the object class is {:?}, not msDS-GroupManagedServiceAccount",
            entry.all("objectClass")
        ));
    }
    if int_attr(&entry, "userAccountControl").unwrap_or(0) & UAC_ACCOUNTDISABLE != 0 {
        problems.push("the account is disabled".into());
    }
    if let Err(problem) = host_may_retrieve(session, &domain_dn, &entry, host).await? {
        problems.push(problem);
    }
    let enc = int_attr(&entry, "msDS-SupportedEncryptionTypes").unwrap_or(0);
    if enc & (ENC_AES128 | ENC_AES256) == 0 {
        problems.push(format!(
            "msDS-SupportedEncryptionTypes is {} without AES",
            enc_names(enc)
        ));
    }
    if !problems.is_empty() {
        return Err(Error::FailedPrecondition {
            reason: "GMSA_INVALID",
            subject: entry.dn.clone(),
            message: format!("{} cannot be used: {}", entry.dn, problems.join("; ")),
        });
    }
    if enc == 0 || enc & ENC_RC4 != 0 {
        progress.warning("validate-account", format!("encryption types {}: hosts with RC4 disabled have failed to install with such accounts", enc_names(enc))).await?;
    }
    progress
        .step_succeeded("validate-account", "usable")
        .await?;

    progress
        .step_started("check-permissions", "reading the domain root's DACL")
        .await?;
    let sid = entry_sid(&entry)?;
    let statuses = profile_statuses(session, &domain_dn, &config_dn, &schema_dn, sid).await?;
    let mut missing = Vec::new();
    for s in &statuses {
        event(
            progress,
            "check-permissions",
            EventKind::Progress,
            format!("{}: {}", s.profile.name(), s.message),
            &[
                ("profile", s.profile.name().into()),
                ("present", s.present.to_string()),
            ],
        )
        .await?;
        if !s.present {
            missing.push(s.profile.name());
        }
    }
    if !missing.is_empty() {
        progress
            .warning(
                "check-permissions",
                format!(
                    "the account lacks {}; grant them with GrantPermissions",
                    missing.join(", ")
                ),
            )
            .await?;
    }
    progress
        .step_succeeded("check-permissions", "checked")
        .await?;

    progress
        .step_started("record", "recording the account the agent uses")
        .await?;
    let mut principals = Vec::new();
    for s in &membership_sids(&entry)? {
        principals.push(resolve_sid(session, &domain_dn, s).await?);
    }
    let netbios = netbios_name(session, &config_dn, &domain_dn).await;
    let record = account_record(&entry, domain, &netbios, Origin::Custom, principals)?;
    let previous = load_account(store).await?;
    let changed = previous
        .as_ref()
        .is_none_or(|p| p.sid != record.sid || p.origin != Origin::Custom);
    save_account(store, &record).await?;
    if changed {
        progress
            .step_succeeded(
                "record",
                format!("the agent's account is now {}", record.sam_account_name),
            )
            .await?;
    } else {
        progress
            .step_skipped("record", "already the recorded account")
            .await?;
    }
    Ok(Outcome::from([
        (
            "distinguished_name".into(),
            record.distinguished_name.clone(),
        ),
        ("sid".into(), record.sid.clone()),
        ("sam_account_name".into(), record.sam_account_name.clone()),
        ("missing_profiles".into(), missing.join(",")),
        ("changed".into(), changed.to_string()),
    ]))
}

/// Per profile, whether `sid` holds it on the domain root.
pub async fn profile_statuses(
    session: &mut dyn DirectorySession,
    domain_dn: &str,
    config_dn: &str,
    schema_dn: &str,
    sid: Sid,
) -> Result<Vec<ProfileStatus>, Error> {
    let resolved = Resolved::resolve(session, schema_dn, config_dn, &Profile::ALL).await?;
    let sd = permissions::read_dacl(session, domain_dn).await?;
    let dacl = sd.dacl.unwrap_or_default();
    Ok(Profile::ALL
        .iter()
        .map(|p| status_of(*p, &resolved, sid, domain_dn, &dacl))
        .collect())
}

pub fn status_of(
    profile: Profile,
    resolved: &Resolved,
    sid: Sid,
    domain_dn: &str,
    dacl: &Acl,
) -> ProfileStatus {
    let (wanted, dropped) = permissions::wanted(&[profile], resolved, sid, domain_dn, &[]);
    let missing: Vec<AceChange> = wanted
        .iter()
        .filter(|w| !permissions::is_present(dacl, &w.ace))
        .map(|w| change(w, true))
        .collect();
    let mut message = format!(
        "{} of {} ACEs present",
        wanted.len() - missing.len(),
        wanted.len()
    );
    if !dropped.is_empty() {
        message.push_str(&format!(
            "; the schema lacks {} (those ACEs are left out)",
            dropped
                .iter()
                .map(|d| d.2)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    ProfileStatus {
        profile,
        present: missing.is_empty() && !wanted.is_empty(),
        missing,
        message,
    }
}

fn change(w: &Wanted, add: bool) -> AceChange {
    AceChange {
        object_dn: w.object_dn.clone(),
        add,
        ace: permissions::ace_sddl(&w.ace),
        description: w.description.clone(),
        profiles: w.profiles.clone(),
    }
}

async fn read_live(
    session: &mut dyn DirectorySession,
    account: &AccountRecord,
    domain: &str,
) -> Result<(AccountRecord, Vec<ProfileStatus>), Error> {
    let (domain_dn, config_dn, schema_dn) = naming_contexts(session).await?;
    let mut fresh = account.clone();
    if domain == account.domain
        && let Some(entry) = find_account(
            session,
            &domain_dn,
            &account.distinguished_name,
            &ACCOUNT_ATTRS,
        )
        .await?
    {
        let mut principals = Vec::new();
        for s in membership_sids(&entry)? {
            principals.push(resolve_sid(session, &domain_dn, &s).await?);
        }
        fresh = account_record(
            &entry,
            &account.domain,
            &account.netbios,
            account.origin,
            principals,
        )?;
        fresh.record_time_ms = account.record_time_ms;
    }
    let sid: Sid = account
        .sid
        .parse()
        .map_err(|e| Error::Internal(format!("recorded SID {}: {e}", account.sid)))?;
    let statuses = profile_statuses(session, &domain_dn, &config_dn, &schema_dn, sid).await?;
    Ok((fresh, statuses))
}

#[derive(Debug, Default)]
pub struct GrantTotals {
    pub added: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub objects: usize,
}

/// GrantPermissions' steps 2–6 on a bound session (also used by writeback).
pub async fn grant_in_session(
    progress: &Progress,
    session: &mut dyn DirectorySession,
    trustee: &str,
    profiles: &[Profile],
    ous: &[String],
    mode: GrantMode,
) -> Result<GrantTotals, Error> {
    let (domain_dn, config_dn, schema_dn) = naming_contexts(session).await?;
    progress
        .step_started(
            "resolve",
            format!("resolving {trustee} and the schema GUIDs"),
        )
        .await?;
    let sid = match trustee.parse::<Sid>() {
        Ok(sid) => sid,
        Err(_) => {
            let entry = find_account(session, &domain_dn, trustee, &["objectSid"])
                .await?
                .ok_or_else(|| Error::NotFound(format!("trustee {trustee}")))?;
            entry_sid(&entry)?
        }
    };
    let resolved = Resolved::resolve(session, &schema_dn, &config_dn, profiles).await?;
    let (wanted, dropped) = permissions::wanted(profiles, &resolved, sid, &domain_dn, ous);
    for (profile, description, missing) in &dropped {
        progress
            .warning(
                "resolve",
                format!(
                    "{}: left out \"{description}\": the schema has no {missing}",
                    profile.name()
                ),
            )
            .await?;
    }
    if !ous.is_empty() && wanted.iter().any(|w| w.object_dn == domain_dn) {
        progress
            .emit(NewEvent {
                step: "resolve".into(),
                kind: Some(EventKind::Progress),
                message: "rights that apply to this object only go on the domain root".into(),
                ..NewEvent::default()
            })
            .await?;
    }
    progress
        .step_succeeded("resolve", format!("trustee {sid}"))
        .await?;

    let mut objects: Vec<String> = Vec::new();
    for w in &wanted {
        if !objects.iter().any(|o| o.eq_ignore_ascii_case(&w.object_dn)) {
            objects.push(w.object_dn.clone());
        }
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        progress
            .step_started("read", format!("reading {} DACLs", objects.len()))
            .await?;
        let mut dacls = BTreeMap::new();
        for dn in &objects {
            dacls.insert(dn.clone(), permissions::read_dacl(session, dn).await?);
        }
        progress.step_succeeded("read", "read").await?;

        progress
            .step_started("plan", format!("{} for {sid}", mode.name()))
            .await?;
        let mut totals = GrantTotals::default();
        let mut changes: BTreeMap<String, Vec<(bool, Ace)>> = BTreeMap::new();
        for w in &wanted {
            let dacl = dacls
                .get(&w.object_dn)
                .and_then(|sd| sd.dacl.clone())
                .unwrap_or_default();
            let action = if mode.removes() {
                if !permissions::is_exactly_present(&dacl, &w.ace) {
                    totals.unchanged += 1;
                    continue;
                }
                if let Some(keeper) =
                    kept_for_other_profile(w, profiles, &resolved, sid, &domain_dn, ous, &dacl)
                {
                    progress
                        .emit(NewEvent {
                            step: "plan".into(),
                            kind: Some(EventKind::Progress),
                            message: format!(
                                "keeping \"{}\": {} also needs it and is held",
                                w.description,
                                keeper.name()
                            ),
                            ..NewEvent::default()
                        })
                        .await?;
                    totals.unchanged += 1;
                    continue;
                }
                false
            } else {
                if permissions::is_present(&dacl, &w.ace) {
                    totals.unchanged += 1;
                    continue;
                }
                true
            };
            let c = change(w, action);
            progress
                .emit(NewEvent {
                    step: "plan".into(),
                    kind: Some(EventKind::Progress),
                    message: c.description.clone(),
                    attributes: BTreeMap::from([
                        ("object".into(), c.object_dn.clone()),
                        ("ace".into(), c.ace.clone()),
                        (
                            "action".into(),
                            if action { "add" } else { "remove" }.into(),
                        ),
                        (
                            "profiles".into(),
                            c.profiles
                                .iter()
                                .map(|p| p.name())
                                .collect::<Vec<_>>()
                                .join(","),
                        ),
                    ]),
                    ..NewEvent::default()
                })
                .await?;
            if action {
                totals.added += 1;
            } else {
                totals.removed += 1;
            }
            changes
                .entry(w.object_dn.clone())
                .or_default()
                .push((action, w.ace.clone()));
        }
        totals.objects = changes.len();
        if changes.is_empty() {
            progress.step_skipped("plan", "nothing to change").await?;
            return Ok(totals);
        }
        progress
            .step_succeeded(
                "plan",
                format!(
                    "{} to add, {} to remove on {} objects",
                    totals.added, totals.removed, totals.objects
                ),
            )
            .await?;
        if !mode.writes() {
            return Ok(totals);
        }

        progress
            .step_started("write", format!("writing {} DACLs", changes.len()))
            .await?;
        let mut raced = false;
        for (dn, list) in &changes {
            progress.checkpoint()?;
            let Some(before) = dacls.get(dn) else {
                continue;
            };
            let now = permissions::read_dacl(session, dn).await?;
            if now.dacl != before.dacl {
                raced = true;
                break;
            }
            let mut sd = now;
            let mut dacl = sd.dacl.clone().unwrap_or_default();
            for (add, ace) in list {
                if *add {
                    dacl.insert_explicit(ace.clone());
                } else {
                    dacl.remove_exact(ace);
                }
            }
            sd.set_dacl(Some(dacl));
            let bytes = sd
                .to_bytes()
                .map_err(|e| Error::Internal(format!("encoding the DACL of {dn}: {e}")))?;
            session
                .write_security_descriptor(dn, SD_FLAGS_DACL, &bytes)
                .await
                .map_err(|e| match e {
                    DirectoryError::InsufficientAccess { .. } => {
                        Error::PermissionDenied(format!("may not write the DACL of {dn}: {e}"))
                    }
                    other => directory_error(other),
                })?;
            event(
                progress,
                "write",
                EventKind::Progress,
                format!("wrote the DACL of {dn}"),
                &[("object", dn.clone())],
            )
            .await?;
        }
        if raced {
            if attempt >= 3 {
                return Err(Error::Aborted(
                    "the DACLs kept changing while provd wrote them (3 attempts)".into(),
                ));
            }
            progress
                .warning(
                    "write",
                    "a DACL changed since it was read; reading and planning again",
                )
                .await?;
            continue;
        }
        progress.step_succeeded("write", "written").await?;

        progress
            .step_started("confirm", "reading the DACLs back")
            .await?;
        for (dn, list) in &changes {
            let dacl = permissions::read_dacl(session, dn)
                .await?
                .dacl
                .unwrap_or_default();
            for (add, ace) in list {
                let there = permissions::is_exactly_present(&dacl, ace)
                    || (*add && permissions::is_present(&dacl, ace));
                if there != *add {
                    return Err(Error::Internal(format!(
                        "the DC did not keep the change to {dn}: {} is {}",
                        permissions::ace_sddl(ace),
                        if *add { "missing" } else { "still there" }
                    )));
                }
            }
        }
        progress
            .step_succeeded("confirm", "every change is in place")
            .await?;
        progress.warning("confirm", "other domain controllers see the change after replication, which can take an hour in large forests").await?;
        return Ok(totals);
    }
}

/// A profile outside `profiles` that the trustee holds completely and that
/// needs this ACE too.
fn kept_for_other_profile(
    w: &Wanted,
    profiles: &[Profile],
    resolved: &Resolved,
    sid: Sid,
    domain_dn: &str,
    ous: &[String],
    dacl: &Acl,
) -> Option<Profile> {
    Profile::ALL
        .into_iter()
        .filter(|p| !profiles.contains(p))
        .find(|other| {
            let (needs, _) = permissions::wanted(&[*other], resolved, sid, domain_dn, ous);
            needs
                .iter()
                .any(|n| n.ace == w.ace && n.object_dn.eq_ignore_ascii_case(&w.object_dn))
                && needs
                    .iter()
                    .filter(|n| n.object_dn.eq_ignore_ascii_case(&w.object_dn))
                    .all(|n| permissions::is_present(dacl, &n.ace))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmsa_names() {
        assert_eq!(gmsa_name("n", "").unwrap(), DEFAULT_GMSA);
        assert_eq!(gmsa_name("n", "svc").unwrap(), "svc$");
        assert_eq!(gmsa_name("n", "a".repeat(15).as_str()).unwrap().len(), 16);
        for bad in [
            "a".repeat(16),
            "x*y".into(),
            "..".into(),
            "a\0".into(),
            "$".into(),
            "a,b".into(),
        ] {
            assert!(gmsa_name("n", &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_in_domain() {
        assert!(dn_in_domain("c", "OU=x,DC=lab,DC=test", "DC=lab,DC=test").is_ok());
        assert!(dn_in_domain("c", "OU=x,DC=evil,DC=test", "DC=lab,DC=test").is_err());
        assert!(dn_in_domain("c", "x,DC=lab,DC=test\0", "DC=lab,DC=test").is_err());
    }

    #[test]
    fn membership_round_trip() {
        let sid: Sid = "S-1-5-21-1111111111-2222222222-3333333333-1105"
            .parse()
            .unwrap();
        let bytes = membership_descriptor(&[sid]).unwrap();
        let mut entry = Entry::default();
        entry
            .bin_attrs
            .insert("msds-groupmsamembership".into(), vec![bytes]);
        assert_eq!(membership_sids(&entry).unwrap(), [sid]);
    }

    #[test]
    fn filetime() {
        // 2026-11-27T00:00:00Z
        assert_eq!(filetime_ms(134_402_112_000_000_000), 1_795_737_600_000);
    }
}
