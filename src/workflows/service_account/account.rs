//! The service account in AD and in provd's store: looking accounts up,
//! msDS-GroupMSAMembership, the record provd keeps (never a password).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::DEFAULT_GMSA;
use crate::backends::directory::{DirectorySession, Entry, Scope, escape};
use crate::backends::store::Store;
use crate::workflows::PreconditionReason;
use crate::workflows::domain_controllers::{entry_sid, find_account, naming_contexts};
use crate::workflows::operations::{blocking, now_ms, read};
use crate::workflows::permissions::{ProfileStatus, profile_statuses};
use crate::workflows::{Error, FieldViolation, validate};
use provd_sd::{SecurityDescriptor, Sid};

const ACCOUNT_NS: &str = "service_account";
const ACCOUNT_KEY: &str = "current";
pub(super) const UAC_ACCOUNTDISABLE: u32 = 0x2;
pub(super) const UAC_WORKSTATION_TRUST: u32 = 0x1000;
pub(super) const GMSA_CLASS: &str = "msDS-GroupManagedServiceAccount";
/// The schema's gMSA class, one filter for every check of it (the
/// operation's session then reads it once).
pub(crate) const GMSA_CLASS_FILTER: &str =
    "(&(objectClass=classSchema)(lDAPDisplayName=msDS-GroupManagedServiceAccount))";
/// The rights New-ADServiceAccount grants each principal in
/// msDS-GroupMSAMembership.
const MEMBERSHIP_MASK: &str = "0xf01ff";

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

/// sAMAccountName of a gMSA: `$` appended; 1–15 characters before it.
pub(crate) fn gmsa_name(field: &str, value: &str) -> Result<String, FieldViolation> {
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
    // `@` and a second `$` are legal in a sAMAccountName, not in a gMSA's.
    if let Some(bad) = base.chars().find(|c| matches!(c, '@' | '$')) {
        return Err(FieldViolation::new(
            field,
            format!("character {bad:?} is not allowed in a gMSA's name"),
        ));
    }
    validate::sam_account_name(field, base, 15)?;
    Ok(format!("{base}$"))
}

pub(super) const ACCOUNT_ATTRS: [&str; 10] = [
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

pub(super) fn classes(entry: &Entry) -> BTreeSet<String> {
    entry
        .all("objectClass")
        .iter()
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

pub(super) fn kind_of(entry: &Entry) -> PrincipalKind {
    let c = classes(entry);
    if c.contains("computer") && !c.contains(&GMSA_CLASS.to_ascii_lowercase()) {
        PrincipalKind::Computer
    } else if c.contains("group") {
        PrincipalKind::Group
    } else {
        PrincipalKind::Other
    }
}

pub(super) fn int_attr(entry: &Entry, name: &str) -> Option<u32> {
    entry
        .first(name)
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|v| u32::try_from(v & 0xffff_ffff).ok())
}

/// SIDs allowed by an msDS-GroupMSAMembership descriptor.
pub(crate) fn membership_sids(entry: &Entry) -> Result<Vec<Sid>, Error> {
    let Some(bytes) = entry.first_bin("msDS-GroupMSAMembership") else {
        return Ok(Vec::new());
    };
    let sd = SecurityDescriptor::parse(bytes).map_err(|e| Error::FailedPrecondition {
        reason: PreconditionReason::BadGmsaMembership,
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

pub(crate) fn membership_descriptor(sids: &[Sid]) -> Result<Vec<u8>, Error> {
    let aces: String = sids
        .iter()
        .map(|s| format!("(A;;{MEMBERSHIP_MASK};;;{s})"))
        .collect();
    SecurityDescriptor::from_sddl(&format!("O:BAD:{aces}"), None)
        .and_then(|sd| sd.to_bytes())
        .map_err(|e| Error::internal("building msDS-GroupMSAMembership", e))
}

pub(crate) async fn resolve_sid(
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
        .await?
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

/// `20261127093015.0Z` to milliseconds since 1970.
fn generalized_ms(value: &str) -> Option<i64> {
    crate::model::parse_generalized_time(value)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

pub(super) fn account_record(
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

pub(super) async fn netbios_name(
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

pub(crate) async fn load_account(store: &Arc<dyn Store>) -> Result<Option<AccountRecord>, Error> {
    match read(store, |s| s.get_config(ACCOUNT_NS, ACCOUNT_KEY))? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::internal("stored service account", e)),
    }
}

/// Clears the record (DecommissionAgent's `forget`); `true` when there was
/// one.
pub(crate) async fn forget_account(store: &Arc<dyn Store>) -> Result<bool, Error> {
    let had = load_account(store).await?.is_some();
    if had {
        blocking(store, |s| s.put_config(ACCOUNT_NS, ACCOUNT_KEY, None)).await?;
    }
    Ok(had)
}

pub(super) async fn save_account(
    store: &Arc<dyn Store>,
    record: &AccountRecord,
) -> Result<(), Error> {
    let bytes = serde_json::to_vec(record)
        .map_err(|e| Error::internal("encoding a record for the store", e))?;
    blocking(store, move |s| {
        s.put_config(ACCOUNT_NS, ACCOUNT_KEY, Some(&bytes))
    })
    .await
}

/// GetServiceAccount's live read: the account as the DC has it now, and
/// which profiles it holds.
pub(super) async fn read_live(
    session: &mut dyn DirectorySession,
    account: &AccountRecord,
    domain: &str,
) -> Result<(AccountRecord, Vec<ProfileStatus>), Error> {
    let contexts = naming_contexts(session).await?;
    let domain_dn = &contexts.0;
    let mut fresh = account.clone();
    if domain == account.domain
        && let Some(entry) = find_account(
            session,
            domain_dn,
            &account.distinguished_name,
            &ACCOUNT_ATTRS,
        )
        .await?
    {
        let mut principals = Vec::new();
        for s in membership_sids(&entry)? {
            principals.push(resolve_sid(session, domain_dn, &s).await?);
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
    let statuses = statuses_of(session, &contexts, account).await?;
    Ok((fresh, statuses))
}

/// The permission profiles' state for the recorded account (its SID as
/// recorded), without reading the account itself.
pub(super) async fn read_permissions(
    session: &mut dyn DirectorySession,
    account: &AccountRecord,
) -> Result<Vec<ProfileStatus>, Error> {
    let contexts = naming_contexts(session).await?;
    statuses_of(session, &contexts, account).await
}

async fn statuses_of(
    session: &mut dyn DirectorySession,
    (domain_dn, config_dn, schema_dn): &(String, String, String),
    account: &AccountRecord,
) -> Result<Vec<ProfileStatus>, Error> {
    let sid: Sid = account
        .sid
        .parse()
        .map_err(|e| Error::internal(format!("recorded SID {}", account.sid), e))?;
    profile_statuses(session, domain_dn, config_dn, schema_dn, sid).await
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
}
