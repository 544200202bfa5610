//! DecommissionAgent's operation: sign in and read (nothing changed yet,
//! so a refused `delete_gmsa` changes nothing), then each step acts on its
//! judgement or is a skip saying why.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::facts::{self, Facts, Judgement, remaining};
use super::{Parts, Valid, host_unavailable};
use crate::backends::directory::{Change as LdapChange, DirectorySession};
use crate::backends::store::{EventKind, Store};
use crate::backends::tenant::Tokens;
use crate::workflows::apply::forget_kept;
use crate::workflows::domain_controllers::{Connect, DcSession};
use crate::workflows::operations::{NewEvent, Outcome, Progress};
use crate::workflows::permissions::{GrantMode, grant_in_session, record_ou_grants};
use crate::workflows::service_account::{forget_account, load_account, membership_descriptor};
use crate::workflows::uninstall::{stop_services, uninstall_package};
use crate::workflows::{Error, PreconditionReason};

/// Said once this host's agent has left its groups: Graph has no method to
/// delete an agent.
const STILL_LISTED: &str = "the tenant keeps listing this agent, inactive, until Microsoft ages \
     it out: Graph has no delete-agent method";

pub(super) async fn run(progress: Progress, p: Parts, valid: Valid) -> Result<Outcome, Error> {
    p.host.availability().map_err(host_unavailable)?;
    let registration = p.tenant.registration().await?;
    let account = load_account(&p.store).await?;
    let tenant_needed = registration.is_some()
        || (!valid.keep_gmsa && account.is_some())
        || valid.delete_cloud_sync.is_some();
    let tokens = if tenant_needed {
        Some(p.tenant.ensure_signed_in(&progress).await?)
    } else {
        None
    };
    let mut session = match (&account, &valid.credential) {
        (Some(account), Some(credential)) if !valid.keep_gmsa => Some(
            DcSession::open(
                &p.dcs,
                &account.domain,
                credential,
                Connect::Step(&progress),
            )
            .await?,
        ),
        _ => None,
    };
    let facts = facts::read(
        &p,
        &valid,
        tokens.as_ref(),
        session.as_mut().map(|s| s.as_mut()),
    )
    .await?;
    if let Judgement::Refused(why) = facts.delete(&valid) {
        let subject = facts_gmsa(&facts)
            .map(|g| g.remaining_names.join(","))
            .unwrap_or_default();
        return Err(Error::FailedPrecondition {
            reason: PreconditionReason::GmsaInUse,
            subject,
            message: format!("{why}; nothing was changed"),
        });
    }

    let mut outcome = Outcome::new();
    let mut changed = stop_services(&progress, &p.host).await?;
    changed |= leave_agent_groups(&progress, &p, &facts, tokens.as_ref()).await?;
    changed |= uninstall_package(&progress, &p.host, &p.changes, &p.staging_dir).await?;
    changed |= gmsa_principals(&progress, &facts, bound(&mut session)).await?;
    changed |= permissions(
        &progress,
        &p.store,
        &facts,
        bound(&mut session),
        &mut outcome,
    )
    .await?;
    changed |= delete_gmsa(&progress, &facts, &valid, bound(&mut session)).await?;
    drop(session);
    changed |= super::cloud::delete(&progress, &p, &facts.cloud, tokens.as_ref()).await?;
    changed |= forget(&progress, &p, &facts, &valid).await?;
    // Verify now expects no agent here. A run that found nothing to do
    // leaves the record as it was, so a second run changes nothing.
    if changed {
        super::record::save(&p.store, progress.operation_id()).await?;
    }
    outcome.insert("changed".into(), changed.to_string());
    Ok(outcome)
}

/// Starts `step` and ends it as a skip (`Ok(false)`) unless `j` is `Do`.
async fn start<T>(
    progress: &Progress,
    step: &str,
    intro: &str,
    j: Judgement<T>,
) -> Result<Option<T>, Error> {
    progress.step_started(step, intro).await?;
    match j {
        Judgement::Do(t) => Ok(Some(t)),
        Judgement::Skip(why) | Judgement::Unread(why) | Judgement::Refused(why) => {
            progress.step_skipped(step, why).await?;
            Ok(None)
        }
    }
}

fn bound(session: &mut Option<DcSession>) -> Option<&mut dyn DirectorySession> {
    session.as_mut().map(|s| s.as_mut())
}

fn no_session() -> Error {
    Error::internal_msg("a directory step without a bound session")
}

async fn leave_agent_groups(
    progress: &Progress,
    p: &Parts,
    facts: &Facts,
    tokens: Option<&Tokens>,
) -> Result<bool, Error> {
    const STEP: &str = "leave-agent-groups";
    let listed = facts
        .registration
        .as_ref()
        .is_some_and(|r| facts.agents.iter().flatten().any(|a| a.id == r.agent_id));
    let judged = facts.agent_groups();
    let Some((id, groups)) = start(
        progress,
        STEP,
        "removing this host's agent from its agent groups",
        judged,
    )
    .await?
    else {
        if listed {
            progress.warning(STEP, STILL_LISTED).await?;
        }
        return Ok(false);
    };
    let tokens = tokens.ok_or_else(|| Error::internal_msg("no tenant session"))?;
    for group in &groups {
        p.api.remove_agent(tokens, &id, &group.id).await?;
        progress
            .progress(
                STEP,
                format!(
                    "removed agent {id} from agent group {} ({})",
                    group.display_name, group.id
                ),
                0,
            )
            .await?;
    }
    progress.warning(STEP, STILL_LISTED).await?;
    progress
        .step_succeeded(
            STEP,
            format!("agent {id} left {} agent groups", groups.len()),
        )
        .await?;
    Ok(true)
}

async fn gmsa_principals(
    progress: &Progress,
    facts: &Facts,
    session: Option<&mut dyn DirectorySession>,
) -> Result<bool, Error> {
    const STEP: &str = "gmsa-principals";
    let Some(g) = start(
        progress,
        STEP,
        "removing this host from the gMSA's principals",
        facts.principals(),
    )
    .await?
    else {
        return Ok(false);
    };
    let session = session.ok_or_else(no_session)?;
    session
        .modify(
            &g.dn,
            &[LdapChange::Replace(
                "msDS-GroupMSAMembership".into(),
                vec![membership_descriptor(&g.remaining)?],
            )],
        )
        .await?;
    progress
        .step_succeeded(
            STEP,
            format!(
                "{} may no longer retrieve {}'s password; remaining principals: {}",
                g.host_account,
                g.sam,
                remaining(g)
            ),
        )
        .await?;
    Ok(true)
}

async fn permissions(
    progress: &Progress,
    store: &Arc<dyn Store>,
    facts: &Facts,
    session: Option<&mut dyn DirectorySession>,
    outcome: &mut Outcome,
) -> Result<bool, Error> {
    const STEP: &str = "permissions";
    let judged = facts.permissions();
    if let (Judgement::Skip(why), Ok(g)) = (&judged, facts_gmsa(facts))
        && !g.others_using.is_empty()
    {
        outcome.insert("permissions_kept_for".into(), g.others_using.join(","));
        progress
            .emit(NewEvent {
                step: STEP.into(),
                kind: Some(EventKind::Warning),
                message: why.clone(),
                attributes: BTreeMap::from([("agents".into(), g.others_using.join(","))]),
                ..NewEvent::default()
            })
            .await?;
    }
    let Some(g) = start(
        progress,
        STEP,
        "removing the permission profiles' ACEs of the gMSA",
        judged,
    )
    .await?
    else {
        return Ok(false);
    };
    let session = session.ok_or_else(no_session)?;
    let account_sid = facts
        .account
        .as_ref()
        .map(|a| a.sid.clone())
        .ok_or_else(|| Error::internal_msg("no recorded account"))?;
    let mut removed = 0;
    // The root, then the recorded OUs (grant_in_session's targets: none is
    // the domain root).
    let mut targets: Vec<Vec<String>> = Vec::new();
    if g.root_held {
        targets.push(Vec::new());
    }
    if !g.ous_held.is_empty() {
        targets.push(g.ous_held.clone());
    }
    for ous in &targets {
        let totals = grant_in_session(
            progress,
            &mut *session,
            &account_sid,
            &g.held,
            ous,
            GrantMode::Remove,
        )
        .await?;
        removed += totals.removed;
    }
    if let Some(account) = &facts.account {
        record_ou_grants(
            store,
            &account.domain,
            &account_sid,
            &g.ous_held,
            GrantMode::Remove,
        )
        .await?;
    }
    progress
        .step_succeeded(
            STEP,
            format!(
                "removed {} ACEs of {} ({})",
                removed,
                g.sam,
                g.held
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await?;
    Ok(removed > 0)
}

/// The gMSA as read, when it was.
fn facts_gmsa(facts: &Facts) -> Result<&facts::Gmsa, ()> {
    match &facts.directory {
        facts::Directory::Read(Some(g)) => Ok(g),
        _ => Err(()),
    }
}

async fn delete_gmsa(
    progress: &Progress,
    facts: &Facts,
    valid: &Valid,
    session: Option<&mut dyn DirectorySession>,
) -> Result<bool, Error> {
    const STEP: &str = "delete-gmsa";
    let Some(g) = start(progress, STEP, "deleting the gMSA", facts.delete(valid)).await? else {
        return Ok(false);
    };
    let session = session.ok_or_else(no_session)?;
    session.delete(&g.dn).await?;
    progress
        .step_succeeded(STEP, format!("deleted {}", g.dn))
        .await?;
    Ok(true)
}

async fn forget(
    progress: &Progress,
    p: &Parts,
    facts: &Facts,
    valid: &Valid,
) -> Result<bool, Error> {
    const STEP: &str = "forget";
    let Some(records) = start(
        progress,
        STEP,
        "clearing provd's records of this agent",
        facts.forget(valid),
    )
    .await?
    else {
        return Ok(false);
    };
    p.tenant.forget_registration().await?;
    if !valid.keep_gmsa {
        forget_account(&p.store).await?;
    }
    forget_kept(&p.store, false).await?;
    progress
        .step_succeeded(STEP, format!("forgot {}", records.join(", ")))
        .await?;
    Ok(true)
}
