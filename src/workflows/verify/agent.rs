//! The agent's own configuration, read through its PowerShell module:
//! `agent.module` — the module is where the agent installs it, answers, and
//! the host's execution policies let it run (Microsoft's troubleshooting
//! page: machine and user policies Undefined or RemoteSigned) — and
//! `agent.domains`: the domains the agent serves, with their preferred DCs,
//! are the ones provd manages, in provd's order. `Get-AADCloudSyncDomains`'
//! output is undocumented (see `backends::agent_config`); what the agent
//! lists beyond a domain and its DCs is never judged.

use super::{Category, Check, Run, Status, check};
use crate::backends::agent_config::{AgentDomain, RunContext, classify};
use crate::workflows::agent_module::same_order;
use tokio_util::sync::CancellationToken;

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    if let Some(why) = run.decommissioned_skip() {
        return ["agent.module", "agent.domains"]
            .into_iter()
            .map(|id| check(id, Category::Host, Status::Skip, why.clone()))
            .collect();
    }
    let module = module(run).await;
    let usable = module.status == Status::Pass;
    let mut out = vec![module];
    if !usable {
        out.push(check(
            "agent.domains",
            Category::Host,
            Status::Skip,
            "not read: the agent's module is not usable (see agent.module)",
        ));
        return out;
    }
    let cancel = CancellationToken::new();
    let ignore = |_line: String| {};
    let cx = RunContext {
        cancel: &cancel,
        transcript: &ignore,
    };
    match run.agent_config.list_domains(&cx).await {
        Ok(listed) => out.extend(domain_checks(run, &listed).await),
        Err(e) => out.push(check(
            "agent.domains",
            Category::Host,
            Status::Fail,
            e.to_string(),
        )),
    }
    out
}

async fn module(run: &Run) -> Check {
    use Category::Host as H;
    if let Err(reason) = run.agent_config.availability() {
        return check(
            "agent.module",
            H,
            Status::Skip,
            format!("the agent's module cannot run here: {reason}"),
        );
    }
    let cancel = CancellationToken::new();
    let ignore = |_line: String| {};
    let cx = RunContext {
        cancel: &cancel,
        transcript: &ignore,
    };
    let module = match run.agent_config.module_info(&cx).await {
        Ok(m) => m,
        Err(e) => return check("agent.module", H, Status::Fail, e.to_string()),
    };
    let Some(version) = module.version.clone() else {
        return check(
            "agent.module",
            H,
            Status::Fail,
            format!("the agent's module is not at {}", module.dll_path),
        )
        .remedy("install the agent with Install (`provctl agent install`)");
    };
    // The error's text carries the remedy for the scope at fault.
    if let Err(e) = classify::execution_policy(&module.execution_policies) {
        return check("agent.module", H, Status::Fail, e.to_string()).attr("version", version);
    }
    check(
        "agent.module",
        H,
        Status::Pass,
        format!("module {version} at {}", module.dll_path),
    )
    .attr("version", version)
}

/// One check per provd directory, and a WARN for each domain the agent
/// serves that provd does not manage.
async fn domain_checks(run: &Run, listed: &[AgentDomain]) -> Vec<Check> {
    use Category::Host as H;
    let mut out = Vec::new();
    for domain in &run.domains {
        let wanted = match run.dcs.priority(domain).await {
            Ok(p) => p.dcs,
            Err(e) => {
                out.push(
                    check("agent.domains", H, Status::Fail, e.to_string()).subject(domain.clone()),
                );
                continue;
            }
        };
        let found = listed
            .iter()
            .find(|d| d.domain.eq_ignore_ascii_case(domain));
        out.push(match found {
            None => check(
                "agent.domains",
                H,
                Status::Fail,
                format!("the agent does not serve {domain}"),
            )
            .subject(domain.clone())
            .remedy("run AddDirectory for it again (provd runs Add-AADCloudSyncADDomain)"),
            Some(d) if same_order(&d.preferred_dcs, &wanted) => check(
                "agent.domains",
                H,
                Status::Pass,
                if wanted.is_empty() {
                    format!("the agent serves {domain}, with no preferred DC")
                } else {
                    format!(
                        "the agent serves {domain}, preferring {}",
                        wanted.join(", ")
                    )
                },
            )
            .subject(domain.clone()),
            Some(d) => check(
                "agent.domains",
                H,
                Status::Fail,
                format!(
                    "the agent prefers [{}] for {domain}; provd's priority is [{}]",
                    d.preferred_dcs.join(", "),
                    wanted.join(", ")
                ),
            )
            .subject(domain.clone())
            .remedy("run SetPriority with a credential, or AddDirectory again: either gives the agent provd's order"),
        });
    }
    for extra in listed.iter().filter(|d| {
        !run.domains
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&d.domain))
    }) {
        out.push(
            check(
                "agent.domains",
                H,
                Status::Warn,
                format!(
                    "the agent also serves {}, which provd does not manage",
                    extra.domain
                ),
            )
            .subject(extra.domain.clone())
            .remedy("add it with AddDirectory, or remove it from the agent"),
        );
    }
    out
}
