//! Host checks: the host backend, the agent package and its version, the
//! agent services (state, start type, logon account) and provd's own service.
//!
//! After DecommissionAgent (its record, until an Install), the agent is
//! expected to be gone: `host.agent.decommissioned` is PASS when the host
//! is clean — no uninstall entry of the package's three products and
//! neither agent service — and FAIL naming whatever is left; the checks of
//! an installed agent are then SKIP, not FAIL.

use super::{Category, Check, Run, Status, check};
use crate::backends::host::{AGENT_SERVICES, AgentStatus, ServiceState, StartType};
use crate::workflows::writeback::{self, MIN_AGENT_VERSION};

/// provd's own Windows service.
pub const PROVD_SERVICE: &str = "provd";

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    use Category::Host as H;
    let mut out = Vec::new();
    if let Err(reason) = run.host.availability() {
        out.push(
            check("host.backend.available", H, Status::Fail, reason)
                .remedy("run provd on the Windows server that hosts the agent"),
        );
        return out;
    }
    out.push(check(
        "host.backend.available",
        H,
        Status::Pass,
        "the Windows host backend is available",
    ));
    let status = match run.host.agent_status().await {
        Ok(s) => s,
        Err(e) => {
            out.push(
                check("host.agent.installed", H, Status::Fail, e.to_string())
                    .remedy("check that provd runs as LocalSystem and the SCM answers"),
            );
            return out;
        }
    };
    if let Some(why) = run.decommissioned_skip() {
        out.push(decommissioned(run, &status));
        out.push(check("host.agent.installed", H, Status::Skip, why));
        out.push(provd_service(run).await);
        return out;
    }
    let Some(version) = status.installed_version.clone() else {
        out.push(
            check(
                "host.agent.installed",
                H,
                Status::Fail,
                "the provisioning agent package is not installed",
            )
            .remedy("install it with Install (`provctl agent install`)"),
        );
        return out;
    };
    out.push(
        check(
            "host.agent.installed",
            H,
            Status::Pass,
            format!("agent package {version} is installed"),
        )
        .attr("version", version.clone()),
    );
    let writeback_on = run.writeback_on().await;
    let version_ok = writeback::version_at_least(&version, MIN_AGENT_VERSION);
    out.push(if version_ok || !writeback_on {
        check(
            "host.agent.version",
            H,
            Status::Pass,
            format!("version {version}"),
        )
        .attr("version", version.clone())
    } else {
        check(
            "host.agent.version",
            H,
            Status::Warn,
            format!(
                "version {version} is older than {MIN_AGENT_VERSION}, which password writeback needs"
            ),
        )
        .attr("version", version.clone())
        .remedy(format!(
            "install agent {MIN_AGENT_VERSION} or later with Install"
        ))
    });
    for service in &status.services {
        let running = service.state == ServiceState::Running;
        let automatic = matches!(
            service.start_type,
            Some(StartType::Automatic | StartType::AutomaticDelayed)
        );
        let seen = format!(
            "service {} ({}) is {:?}, start type {}",
            service.display_name,
            service.name,
            service.state,
            service
                .start_type
                .map_or_else(|| "unknown".to_owned(), |t| format!("{t:?}"))
        );
        let c = check("host.services.running", H, Status::Pass, seen.clone())
            .subject(service.name.clone())
            .attr("state", format!("{:?}", service.state));
        out.push(match (running, automatic) {
            (true, true) => c,
            (false, _) => Check {
                status: Status::Fail,
                ..c
            }
            .remedy(format!(
                "start it: `Start-Service {}` (or run Install again, which starts it)",
                service.name
            )),
            (true, false) => Check {
                status: Status::Warn,
                ..c
            }
            .remedy(format!(
                "set it to start automatically: `Set-Service {} -StartupType Automatic`",
                service.name
            )),
        });
    }
    if let Some(account) = &run.account {
        let expected = format!("{}\\{}", account.netbios, account.sam_account_name);
        let provisioning = status
            .services
            .iter()
            .find(|s| s.name == AGENT_SERVICES[0].0);
        if let Some(service) = provisioning {
            let matches = service.account.eq_ignore_ascii_case(&expected)
                || service
                    .account
                    .eq_ignore_ascii_case(&account.sam_account_name);
            let c = check(
                "host.services.logon_account",
                H,
                Status::Pass,
                format!("{} logs on as {}", service.name, service.account),
            )
            .subject(service.name.clone())
            .attr("account", service.account.clone())
            .attr("expected", expected.clone());
            out.push(if matches {
                c
            } else {
                Check {
                    status: Status::Fail,
                    message: format!(
                        "{} logs on as {:?}, not the recorded gMSA {expected}",
                        service.name, service.account
                    ),
                    ..c
                }
                .remedy(
                    "run CreateGmsa or UseCustomGmsa again: it sets the service's logon account",
                )
            });
        }
    }
    out.push(provd_service(run).await);
    out
}

/// What is left of the agent after DecommissionAgent.
fn decommissioned(run: &Run, status: &AgentStatus) -> Check {
    let operation = run
        .decommissioned
        .as_ref()
        .map(|r| r.operation_id.clone())
        .unwrap_or_default();
    let mut left: Vec<String> = status
        .products
        .iter()
        .map(|p| format!("uninstall entry {p}"))
        .collect();
    left.extend(
        status
            .services
            .iter()
            .filter(|s| s.state != ServiceState::NotInstalled)
            .map(|s| format!("service {} ({:?})", s.name, s.state)),
    );
    let c = check(
        "host.agent.decommissioned",
        Category::Host,
        Status::Pass,
        format!(
            "decommissioned by operation {operation}: no uninstall entry of the agent's package \
             and no agent service is left"
        ),
    )
    .attr("operation_id", operation.clone());
    if left.is_empty() {
        return c;
    }
    Check {
        status: Status::Fail,
        message: format!(
            "decommissioned by operation {operation}, but left: {}",
            left.join("; ")
        ),
        ..c
    }
    .remedy("run DecommissionAgent again (`provctl agent decommission`): it removes what is left")
}

async fn provd_service(run: &Run) -> Check {
    use Category::Host as H;
    match run.host.service_status(PROVD_SERVICE).await {
        Ok(s) if s.state == ServiceState::Running => check(
            "host.provd.service",
            H,
            Status::Pass,
            format!(
                "provd's service is running (start type {})",
                s.start_type
                    .map_or_else(|| "unknown".to_owned(), |t| format!("{t:?}"))
            ),
        ),
        Ok(s) if s.state == ServiceState::NotInstalled => check(
            "host.provd.service",
            H,
            Status::Warn,
            "provd is not installed as a Windows service (it runs in a console)",
        )
        .remedy("`provd service install` so provd survives a restart"),
        Ok(s) => check(
            "host.provd.service",
            H,
            Status::Warn,
            format!("provd's service is {:?}", s.state),
        )
        .remedy("`Start-Service provd`"),
        Err(e) => check("host.provd.service", H, Status::Skip, e.to_string()),
    }
}
