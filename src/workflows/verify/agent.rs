//! The agent's own configuration, read through its PowerShell module:
//! `agent.module` (the module is there, runs, and the host's execution
//! policies let it) and `agent.domains` (the domains the agent serves, with
//! their preferred DCs, are the ones provd manages, in provd's order).
//!
//! `Get-AADCloudSyncDomains`' output is undocumented (see
//! `backends::agent_config`); what the agent lists beyond the domain and
//! its DCs is shown in the message, never judged.

use super::{Category, Check, Run, Status, check};
use crate::backends::agent_config::{AgentDomain, RunContext, classify};
use tokio_util::sync::CancellationToken;

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    use Category::Host as H;
    if let Err(reason) = run.agent_config.availability() {
        return vec![
            check(
                "agent.module",
                H,
                Status::Skip,
                format!("the agent's module cannot run here: {reason}"),
            ),
            check(
                "agent.domains",
                H,
                Status::Skip,
                "the agent's module cannot run here",
            ),
        ];
    }
    let cancel = CancellationToken::new();
    let ignore = |_line: String| {};
    let cx = RunContext {
        cancel: &cancel,
        transcript: &ignore,
    };
    let mut out = Vec::new();
    let module = match run.agent_config.module_info(&cx).await {
        Ok(m) => m,
        Err(e) => {
            out.push(check("agent.module", H, Status::Fail, e.to_string()));
            out.push(unusable("the module's state could not be read"));
            return out;
        }
    };
    let Some(version) = module.version.clone() else {
        out.push(
            check(
                "agent.module",
                H,
                Status::Fail,
                format!("the agent's module is not at {}", module.dll_path),
            )
            .remedy("install the agent with Install (`provctl agent install`)"),
        );
        out.push(unusable("the module is not installed"));
        return out;
    };
    if let Err(e) = classify::execution_policy(&module.execution_policies) {
        out.push(
            check("agent.module", H, Status::Fail, e.to_string())
                .attr("version", version.clone()),
        );
        out.push(unusable("the execution policy stops the module"));
        return out;
    }
    out.push(
        check(
            "agent.module",
            H,
            Status::Pass,
            format!("module {version} at {}", module.dll_path),
        )
        .attr("version", version),
    );
    match run.agent_config.list_domains(&cx).await {
        Ok(listed) => out.extend(domain_checks(run, &listed).await),
        Err(e) => out.push(check("agent.domains", H, Status::Fail, e.to_string())),
    }
    out
}

fn unusable(why: &str) -> Check {
    check(
        "agent.domains",
        Category::Host,
        Status::Skip,
        format!("not read: {why}"),
    )
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
                    format!("the agent serves {domain}, preferring {}", wanted.join(", "))
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
            .remedy("run SetPriority again with a credential, so provd re-applies it to the agent"),
        });
    }
    for extra in listed.iter().filter(|d| {
        !run
            .domains
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&d.domain))
    }) {
        out.push(
            check(
                "agent.domains",
                H,
                Status::Warn,
                format!("the agent also serves {}, which provd does not manage", extra.domain),
            )
            .subject(extra.domain.clone())
            .remedy("add it with AddDirectory, or remove it from the agent"),
        );
    }
    out
}

/// Same DCs in the same order, case-insensitively.
fn same_order(agent: &[String], provd: &[String]) -> bool {
    agent.len() == provd.len()
        && agent
            .iter()
            .zip(provd)
            .all(|(a, p)| a.eq_ignore_ascii_case(p))
}

#[cfg(test)]
mod tests {
    use super::same_order;

    #[test]
    fn dc_order_matters_case_does_not() {
        let a = ["DC1.lab.test".to_owned(), "dc2.lab.test".to_owned()];
        let b = ["dc1.lab.test".to_owned(), "dc2.lab.test".to_owned()];
        assert!(same_order(&a, &b));
        let reversed = [b[1].clone(), b[0].clone()];
        assert!(!same_order(&a, &reversed));
        assert!(!same_order(&a, &b[..1]));
    }
}
