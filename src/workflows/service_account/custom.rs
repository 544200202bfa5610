//! UseCustomGmsa's work on a bound session: adopt an existing gMSA after
//! checking it can serve (class, enabled, the host may retrieve its
//! password, AES), report which permission profiles it holds, record it.

use std::sync::Arc;

use super::account::{
    ACCOUNT_ATTRS, GMSA_CLASS, Origin, UAC_ACCOUNTDISABLE, account_record, classes, int_attr,
    load_account, membership_sids, netbios_name, resolve_sid, save_account,
};
use super::logon::host_may_retrieve;
use super::{ENC_AES128, ENC_AES256, ENC_RC4, enc_names, event};
use crate::backends::directory::DirectorySession;
use crate::backends::store::{EventKind, Store};
use crate::workflows::Error;
use crate::workflows::PreconditionReason;
use crate::workflows::domain_controllers::{entry_sid, find_account, naming_contexts};
use crate::workflows::operations::{Outcome, Progress};
use crate::workflows::permissions::profile_statuses;

pub(super) async fn run_use_custom(
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
            reason: PreconditionReason::GmsaInvalid,
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
