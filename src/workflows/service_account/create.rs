//! CreateGmsa's work on a bound session: prerequisites (schema class, an
//! effective KDS root key), the principals, the account (created, or an
//! existing one reconciled), the record.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::account::{
    ACCOUNT_ATTRS, GMSA_CLASS, GMSA_CLASS_FILTER, Origin, Principal, PrincipalKind,
    UAC_ACCOUNTDISABLE, UAC_WORKSTATION_TRUST, account_record, classes, int_attr, kind_of,
    load_account, membership_descriptor, membership_sids, netbios_name, save_account,
};
use super::prerequisites::{kds_container, read_kds_keys};
use super::{enc_names, event};
use crate::backends::directory::{Change, DirectoryError, DirectorySession, Entry, Scope, escape};
use crate::backends::store::{EventKind, Store};
use crate::workflows::Error;
use crate::workflows::PreconditionReason;
use crate::workflows::domain_controllers::{entry_sid, find_account, naming_contexts};
use crate::workflows::operations::{Outcome, Progress, now_ms};
use provd_sd::Sid;

/// A validated CreateGmsa request.
pub(crate) struct GmsaPlan {
    pub(super) domain: String,
    pub(super) name: String,
    pub(super) container: String,
    pub(super) dns_host: String,
    pub(super) interval: u32,
    pub(super) enc: u32,
    pub(super) principals: Vec<String>,
}

async fn check_kds(session: &mut dyn DirectorySession, config_dn: &str) -> Result<(), Error> {
    let keys = read_kds_keys(session, config_dn).await?;
    let now = now_ms();
    // A start time this account cannot read counts as effective: the DC
    // is the judge when the account is created.
    let starts: Vec<i64> = keys.iter().map(|k| k.use_start_ms.unwrap_or(0)).collect();
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
        reason: PreconditionReason::NoKdsRootKey,
        subject: kds_container(config_dn),
        message,
    })
}

/// Samba 4.22 refuses the add with noSuchObject and NTE_NO_KEY (0x8009000D)
/// when no KDS root key was effective at the start of the GKDI key interval
/// the first password falls in (`gkdi_most_recently_created_root_key`), which
/// can be the case for a key our own check counts as effective.
fn is_no_usable_root_key(reason: &str) -> bool {
    reason.contains("8009000D") || reason.to_ascii_lowercase().contains("root key")
}

fn no_usable_root_key(config_dn: &str, reason: &str) -> Error {
    Error::FailedPrecondition {
        reason: PreconditionReason::NoKdsRootKey,
        subject: kds_container(config_dn),
        message: format!(
            "the DC found no KDS root key it may use for the new account's first password \
             ({reason}): a DC uses a key only once it was effective at the start of the \
             current key interval (up to 10 hours after its effective time); wait, or in a lab \
             create one with Add-KdsRootKey -EffectiveTime ((Get-Date).AddHours(-20))"
        ),
    }
}

pub(super) async fn run_create(
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
        .search(&schema_dn, Scope::OneLevel, GMSA_CLASS_FILTER, &["cn"])
        .await?;
    if class.is_empty() {
        return Err(Error::FailedPrecondition {
            reason: PreconditionReason::NoGmsaClass,
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
    let found = match existing {
        Some(entry) => Some(entry),
        None => add_account(progress, session, plan, &sids, &config_dn, &domain_dn).await?,
    };
    // What was written is read back; an account left as found is used as read.
    let (entry, changed) = match found {
        Some(entry) => match reconcile_existing(progress, session, &entry, plan, &sids).await? {
            false => (entry, false),
            true => (read_back(session, &domain_dn, plan).await?, true),
        },
        None => (read_back(session, &domain_dn, plan).await?, true),
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

/// Adds the account: `None` once added, or the account another writer
/// added between the search and this add (hosts of a fleet rolled out at
/// once, each creating the account they share), to be reconciled like one
/// found in the first place.
async fn add_account(
    progress: &Progress,
    session: &mut dyn DirectorySession,
    plan: &GmsaPlan,
    sids: &[Sid],
    config_dn: &str,
    domain_dn: &str,
) -> Result<Option<Entry>, Error> {
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
            vec![membership_descriptor(sids)?],
        ),
    ];
    match session.add(&dn, &attrs).await {
        Ok(()) => {
            progress
                .step_succeeded("create-account", format!("created {dn}"))
                .await?;
            Ok(None)
        }
        Err(DirectoryError::AlreadyExists { .. }) => {
            let note = format!("{dn} was created meanwhile by another writer; checking it");
            progress.progress("create-account", note, 0).await?;
            find_account(session, domain_dn, &plan.name, &ACCOUNT_ATTRS)
                .await?
                .map(Some)
                .ok_or_else(|| Error::FailedPrecondition {
                    reason: PreconditionReason::GmsaConflict,
                    subject: dn.clone(),
                    message: format!(
                        "{dn} exists but is not the account {}; nothing was changed",
                        plan.name
                    ),
                })
        }
        Err(DirectoryError::NoSuchObject { reason, .. }) if is_no_usable_root_key(&reason) => {
            Err(no_usable_root_key(config_dn, &reason))
        }
        Err(DirectoryError::NoSuchObject { .. }) => {
            Err(Error::NotFound(format!("container {}", plan.container)))
        }
        Err(other) => Err(other.into()),
    }
}

async fn read_back(
    session: &mut dyn DirectorySession,
    domain_dn: &str,
    plan: &GmsaPlan,
) -> Result<Entry, Error> {
    find_account(session, domain_dn, &plan.name, &ACCOUNT_ATTRS)
        .await?
        .ok_or_else(|| Error::internal_msg(format!("{} cannot be read back", plan.name)))
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
            reason: PreconditionReason::GmsaConflict,
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
        .await?;
    progress
        .step_succeeded("create-account", "allowed principals reconciled")
        .await?;
    Ok(true)
}
