//! Making the agent service log on as the gMSA, and whether this host may
//! retrieve the gMSA's password (what that logon needs).

use std::sync::Arc;

use super::account::{ACCOUNT_ATTRS, AccountRecord, load_account, membership_sids};
use crate::backends::agent_config::RunContext;
use crate::backends::directory::{DirectorySession, Entry, Scope, escape};
use crate::backends::host::{AGENT_SERVICES, ServiceAction, ServiceState};
use crate::backends::store::Store;
use crate::workflows::Error;
use crate::workflows::agent_module::{AgentSide, Transcript};
use crate::workflows::domain_controllers::{entry_sid, find_account};
use crate::workflows::operations::{Outcome, Progress};

/// LDAP_MATCHING_RULE_IN_CHAIN: transitive group membership.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// Step `configure-service`: the agent runs as the recorded gMSA, set the
/// way Microsoft documents it — `Add-AADCloudSyncGMSA -CustomGMSAName
/// name$` from the agent's module
/// (<https://learn.microsoft.com/en-us/entra/identity/hybrid/cloud-sync/how-to-gmsa-cmdlets>),
/// which also flags the service's account as managed — then read back from
/// the SCM and the service restarted if it ran.
pub(super) async fn configure_service(
    progress: &Progress,
    agent: &AgentSide,
    store: &Arc<dyn Store>,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    const STEP: &str = "configure-service";
    let (service, display) = AGENT_SERVICES[0];
    progress
        .step_started(STEP, format!("{display} logs on as the gMSA"))
        .await?;
    let Some(account) = load_account(store).await? else {
        return Err(Error::internal_msg("the account was not recorded"));
    };
    if let Some(reason) = agent.unavailable() {
        progress
            .warning(
                STEP,
                format!(
                    "{reason}: on the agent host, run `Add-AADCloudSyncGMSA -CustomGMSAName {}` \
                     from the agent's module",
                    account.sam_account_name
                ),
            )
            .await?;
        return progress.step_skipped(STEP, "no agent host here").await;
    }
    let logon = format!("{}\\{}", account.netbios, account.sam_account_name);
    let current = agent
        .host
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
    let transcript = Transcript::default();
    let sink = |line: String| transcript.push(line);
    let cx = RunContext {
        cancel: progress.cancellation(),
        transcript: &sink,
    };
    let used = agent
        .agent_config
        .use_gmsa(&account.sam_account_name, &cx)
        .await;
    transcript.emit(progress, STEP).await?;
    used?;
    let after = agent
        .host
        .service_status(service)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    if !after.account.eq_ignore_ascii_case(&logon) {
        return Err(Error::Unavailable(format!(
            "Add-AADCloudSyncGMSA succeeded but {service} logs on as {:?}, not {logon}",
            after.account
        )));
    }
    if current.state == ServiceState::Running {
        agent
            .host
            .control_service(service, ServiceAction::Restart, SERVICE_RESTART_TIMEOUT)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
    }
    outcome.insert("service_account".into(), logon.clone());
    outcome.insert("changed".into(), "true".into());
    progress
        .step_succeeded(
            STEP,
            format!(
                "{service} logs on as {logon} (was {:?}), set with Add-AADCloudSyncGMSA",
                current.account
            ),
        )
        .await
}

/// How long the agent service may take to restart under its new account.
const SERVICE_RESTART_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether `host` (a sAMAccountName or DN) may retrieve the password of the
/// gMSA `entry` (read with msDS-GroupMSAMembership): directly or through
/// nested groups. `Ok(Err(why))` says why not.
pub(crate) async fn host_may_retrieve(
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
            .await?
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
pub(crate) async fn read_account_entry(
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
