//! Uninstall's steps, which DecommissionAgent runs too: `stop-services`
//! and `uninstall-package`. The package leaves up to three uninstall
//! entries (the Agent Updater, the Provisioning Agent, the package's Burn
//! bundle: `backends::host::installer` cites Microsoft's page); each is
//! removed silently with Install's typed exit codes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::agent::{SERVICE_TIMEOUT, installer_error};
use super::drift::AgentChanges;
use super::operations::{Outcome, Progress};
use super::{Error, PreconditionReason};
use crate::backends::host::{AgentProduct, Host, ServiceAction, ServiceState};

const UNINSTALL: &str = "uninstall-package";

/// Uninstall's job.
pub(super) async fn run(
    progress: Progress,
    host: Arc<dyn Host>,
    changes: Arc<AgentChanges>,
    staging_dir: PathBuf,
) -> Result<Outcome, Error> {
    stop_services(&progress, &host).await?;
    let changed = uninstall_package(&progress, &host, &changes, &staging_dir).await?;
    Ok(BTreeMap::from([("changed".into(), changed.to_string())]))
}

/// Step `stop-services`: `true` when a service was stopped.
pub(crate) async fn stop_services(
    progress: &Progress,
    host: &Arc<dyn Host>,
) -> Result<bool, Error> {
    progress
        .step_started("stop-services", "stopping the agent services")
        .await?;
    let unavailable = |reason: String| Error::FailedPrecondition {
        reason: PreconditionReason::HostUnavailable,
        subject: "host".into(),
        message: format!("cannot uninstall: {reason}"),
    };
    host.availability().map_err(unavailable)?;
    let status = host
        .agent_status()
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let mut stopped = 0;
    for service in &status.services {
        if matches!(
            service.state,
            ServiceState::NotInstalled | ServiceState::Stopped
        ) {
            continue;
        }
        host.control_service(&service.name, ServiceAction::Stop, SERVICE_TIMEOUT)
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        stopped += 1;
        progress
            .progress(
                "stop-services",
                format!("stopped {}", service.display_name),
                0,
            )
            .await?;
    }
    if stopped == 0 {
        progress
            .step_skipped("stop-services", "no agent service is running")
            .await?;
    } else {
        progress
            .step_succeeded("stop-services", format!("{stopped} stopped"))
            .await?;
    }
    Ok(stopped > 0)
}

/// Step `uninstall-package`: every uninstall entry of the package, in the
/// host's removal order (the bundle first: Burn removes the MSIs it
/// chained; then what is left, read again, the updater before the agent),
/// each logged to its own file in staging. `true` when an uninstaller ran.
/// An uninstaller that exits with success but leaves its entry fails the
/// step (INSTALLER_FAILED), so a second run never reports a clean host
/// that is not.
pub(crate) async fn uninstall_package(
    progress: &Progress,
    host: &Arc<dyn Host>,
    changes: &Arc<AgentChanges>,
    staging_dir: &Path,
) -> Result<bool, Error> {
    progress
        .step_started(
            UNINSTALL,
            "removing the agent package's uninstall entries silently",
        )
        .await?;
    tokio::fs::create_dir_all(staging_dir)
        .await
        .map_err(|e| Error::internal(staging_dir.display().to_string(), e))?;
    let read = || async {
        host.agent_status()
            .await
            .map(|s| s.products)
            .map_err(|e| Error::Unavailable(e.to_string()))
    };
    let mut removed: Vec<AgentProduct> = Vec::new();
    {
        let _provds = changes.begin();
        while let Some(next) = read()
            .await?
            .into_iter()
            .find(|p| !removed.iter().any(|r| r.key == p.key))
        {
            let log = staging_dir.join(format!(
                "uninstall-{}-{}.log",
                progress.operation_id(),
                removed.len() + 1
            ));
            host.uninstall_product(&next, &log)
                .await
                .map_err(|e| installer_error(e, &log))?;
            progress
                .progress(UNINSTALL, format!("removed {next}"), 0)
                .await?;
            removed.push(next);
        }
    }
    if removed.is_empty() {
        progress
            .step_skipped(
                UNINSTALL,
                "no uninstall entry of the agent's package is left",
            )
            .await?;
        return Ok(false);
    }
    if let Some(left) = read()
        .await?
        .into_iter()
        .find(|p| removed.iter().any(|r| r.key == p.key))
    {
        return Err(Error::FailedPrecondition {
            reason: PreconditionReason::InstallerFailed,
            subject: left.key.clone(),
            message: format!(
                "the uninstaller of {left} reported success but its uninstall entry is still \
                 there; remove it by hand (Apps & features) and run again"
            ),
        });
    }
    progress
        .step_succeeded(
            UNINSTALL,
            format!(
                "removed {} uninstall entries: {}",
                removed.len(),
                removed
                    .iter()
                    .map(|p| p.display_name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .await?;
    Ok(true)
}
