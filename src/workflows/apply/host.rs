//! The `[host]` section: the prerequisite fixes the document keeps made
//! (RemediateHost's fixes, judged by the same `host_fix::plan` Verify
//! uses). Two steps, because the fixes depend on different things:
//! `host` runs first, before the agent is installed or registered (an
//! `Unrestricted` execution policy breaks the registration; TLS 1.2 is
//! needed to reach the tenant at all); `host-agent-service` runs after the
//! agent section and before the service account (the managed-account flag
//! is on the agent's service, which the installer creates, and
//! `configure-service` fails without it: "Failed changing Windows service
//! credentials to gMSA").

use std::sync::Arc;

use super::sections::Change;
use super::stored::Stored;
use crate::backends::host::{Host, HostFix};
use crate::backends::store::Store;
use crate::workflows::Error;
use crate::workflows::host_fix::{self, PlannedFix, fix_from_name, fix_name};
use crate::workflows::operations::{Job, Outcome, job};

/// The step of the fixes made before the agent.
pub(super) const STEP: &str = "host";
/// The step of the fixes on the agent's service, after the agent.
pub(super) const AGENT_SERVICE_STEP: &str = "host-agent-service";

/// The step a fix belongs to.
pub(super) fn step_of(fix: HostFix) -> &'static str {
    match fix {
        HostFix::ServiceAccountManaged => AGENT_SERVICE_STEP,
        HostFix::Tls12 | HostFix::VaultSvcManual | HostFix::ExecutionPolicyRemoteSigned => STEP,
    }
}

/// The wanted fixes of `step` the host needs now, and their changes (the
/// managed-account fix is listed as "checked once the agent's installer has
/// created its service" while there is no service). On a host that cannot
/// be managed, each wanted fix is listed with the reason (apply then fails
/// in the step, as RemediateHost would).
pub(super) async fn changes(
    host: &dyn Host,
    wanted: &[HostFix],
    step: &'static str,
) -> Result<(Vec<PlannedFix>, Vec<Change>), Error> {
    let wanted: Vec<HostFix> = wanted
        .iter()
        .copied()
        .filter(|f| step_of(*f) == step)
        .collect();
    if wanted.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    if let Err(reason) = host.availability() {
        let listed = wanted
            .iter()
            .map(|f| Change {
                step: step.into(),
                action: "fix",
                detail: format!("{}: this host cannot: {reason}", fix_name(*f)),
            })
            .collect();
        return Ok((Vec::new(), listed));
    }
    let prerequisites = host.prerequisites().await?;
    let planned: Vec<PlannedFix> = host_fix::plan(&prerequisites)
        .into_iter()
        .filter(|p| wanted.contains(&p.fix))
        .collect();
    // The agent's service does not exist yet (apply installs it first):
    // whether its flag needs the fix is known only then.
    let later = (wanted.contains(&HostFix::ServiceAccountManaged)
        && prerequisites.service_account_managed.is_none())
    .then(|| Change {
        step: step.into(),
        action: "fix",
        detail: format!(
            "{}: checked once the agent's installer has created its service",
            fix_name(HostFix::ServiceAccountManaged)
        ),
    });
    let listed = planned
        .iter()
        .map(|p| described(p, step))
        .chain(later)
        .collect();
    Ok((planned, listed))
}

/// One planned fix as a change of `step`.
pub(super) fn described(p: &PlannedFix, step: &str) -> Change {
    Change {
        step: step.into(),
        action: "fix",
        detail: format!(
            "{}: {}{}",
            fix_name(p.fix),
            p.changes.join("; "),
            if p.reboot_required {
                " (takes effect after a restart of the server)"
            } else {
                ""
            }
        ),
    }
}

/// The section's work: the planned fixes, each a nested step named after
/// it (as RemediateHost reports them). On a host that cannot be managed
/// the availability error fails the step.
pub(super) fn job_of(host: Arc<dyn Host>, planned: Vec<PlannedFix>) -> Job {
    job(move |progress| async move {
        host.availability()
            .map_err(|reason| Error::from(crate::backends::host::HostError::Unavailable(reason)))?;
        let fixed = host_fix::make_fixes(&progress, host.as_ref(), &planned).await?;
        Ok(Outcome::from([
            ("fixes".into(), fixed.changed.join(",")),
            ("reboot_required".into(), fixed.reboot_required.to_string()),
        ]))
    })
}

/// What apply last kept fixed, by the fixes' names.
const KEPT: Stored = Stored {
    key: "host_fixes",
    what: "the host fixes",
};

/// What apply last kept fixed, for the drift watch (`[drift] reapply`).
pub(super) async fn save(store: &Arc<dyn Store>, fixes: &[HostFix]) -> Result<(), Error> {
    let names: Vec<&str> = fixes.iter().map(|f| fix_name(*f)).collect();
    KEPT.save(store, &names).await
}

/// Whether apply keeps a record; cleared unless `dry` (DecommissionAgent's
/// `forget`).
pub(super) async fn forget(store: &Arc<dyn Store>, dry: bool) -> Result<bool, Error> {
    KEPT.forget(store, dry).await
}

pub(super) async fn load(store: &Arc<dyn Store>) -> Result<Option<Vec<HostFix>>, Error> {
    let Some(names) = KEPT.load::<Vec<String>>(store).await? else {
        return Ok(None);
    };
    names
        .iter()
        .map(|n| {
            fix_from_name(n)
                .ok_or_else(|| Error::internal("stored host fixes", format!("unknown fix {n:?}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
