//! Tenant checks: the endpoints answer over TLS, the tenant's clock agrees
//! with this host's, this machine's agent is registered and active, and it
//! serves each domain through an agent group.

use super::{Category, Check, Run, Status, check, skew_status};
use crate::backends::host::AGENT_SERVICES;
use crate::backends::tenant::{ServerTime, TenantError};
use crate::workflows::Error;

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    use Category::Tenant as T;
    let mut out = Vec::new();
    let tenant = run.tenant.tenant().clone();
    let (probes, time) = tokio::join!(tenant.probe_endpoints(), tenant.server_time());
    let failed: Vec<String> = probes
        .iter()
        .filter_map(|p| p.outcome.as_ref().err().map(|e| format!("{}: {e}", p.url)))
        .collect();
    let urls: Vec<&str> = probes.iter().map(|p| p.url.as_str()).collect();
    out.push(if failed.is_empty() {
        check(
            "tenant.endpoints.reachable",
            T,
            Status::Pass,
            format!("reached {} over TLS", urls.join(", ")),
        )
    } else {
        check(
            "tenant.endpoints.reachable",
            T,
            Status::Fail,
            format!("cannot reach {}", failed.join("; ")),
        )
        .remedy(
            "allow outbound HTTPS (443) to the login, Graph and agent service hosts; proxies \
             must not inspect TLS",
        )
    });
    out.push(clock_skew(time));
    let registration = match run.tenant.registration().await {
        Ok(Some(r)) => r,
        Ok(None) if run.decommissioned.is_some() => {
            let why = run.decommissioned_skip().unwrap_or_default();
            out.push(check(
                "tenant.agent.registered",
                T,
                Status::Skip,
                format!(
                    "{why}: it left its agent groups, and the tenant lists it as inactive until \
                     Microsoft ages it out"
                ),
            ));
            return out;
        }
        Ok(None) => {
            out.push(
                check(
                    "tenant.agent.registered",
                    T,
                    Status::Fail,
                    "this machine's agent is not registered with the tenant",
                )
                .remedy("run Install (it signs in and registers the agent)"),
            );
            return out;
        }
        Err(e) => {
            out.push(check(
                "tenant.agent.registered",
                T,
                Status::Fail,
                e.to_string(),
            ));
            return out;
        }
    };
    let skip_all = |out: &mut Vec<Check>, why: String, remedy: &str| {
        for id in ["tenant.agent.registered", "tenant.agent.active"] {
            out.push(
                check(id, T, Status::Skip, why.clone())
                    .remedy(remedy)
                    .attr("agent_id", registration.agent_id.clone()),
            );
        }
    };
    let tokens = match run.tenant.tokens().await {
        Ok(Some(t)) => t,
        Ok(None) => {
            skip_all(
                &mut out,
                "provd holds no tenant session (tokens are in memory only)".into(),
                "sign in with `provctl agent sign-in`, then verify again",
            );
            return out;
        }
        Err(e) => {
            skip_all(&mut out, e.to_string(), "");
            return out;
        }
    };
    let agents = match tenant.list_agents(&tokens).await {
        Ok(a) => a,
        Err(e) => {
            let e = Error::from(e);
            out.push(
                check(
                    "tenant.agent.registered",
                    T,
                    Status::Fail,
                    format!("cannot list the tenant's agents: {e}"),
                )
                .remedy("sign in as a Hybrid Identity Administrator; check the tenant endpoints"),
            );
            return out;
        }
    };
    let Some(agent) = agents.iter().find(|a| a.id == registration.agent_id) else {
        out.push(
            check(
                "tenant.agent.registered",
                T,
                Status::Fail,
                format!(
                    "agent {} is not in the tenant's list of {} agent(s)",
                    registration.agent_id,
                    agents.len()
                ),
            )
            .attr("agent_id", registration.agent_id.clone())
            .remedy("register it again: run Install"),
        );
        return out;
    };
    out.push(
        check(
            "tenant.agent.registered",
            T,
            Status::Pass,
            format!(
                "agent {} is registered as {} ({})",
                agent.id, agent.machine_name, agent.external_ip
            ),
        )
        .attr("agent_id", agent.id.clone())
        .attr("machine_name", agent.machine_name.clone()),
    );
    out.push(if agent.active {
        check(
            "tenant.agent.active",
            T,
            Status::Pass,
            format!("the tenant lists agent {} as active", agent.id),
        )
        .attr("agent_id", agent.id.clone())
    } else {
        check(
            "tenant.agent.active",
            T,
            Status::Fail,
            format!(
                "the tenant lists agent {} as inactive: it has not reported recently",
                agent.id
            ),
        )
        .attr("agent_id", agent.id.clone())
        .remedy(format!(
            "start the service {} and allow it outbound HTTPS",
            AGENT_SERVICES[0].1
        ))
    });
    if run.domains.is_empty() {
        return out;
    }
    let resources = match tenant.list_published_resources(&tokens).await {
        Ok(r) => r,
        Err(e) => {
            out.push(check(
                "tenant.agent.group",
                T,
                Status::Fail,
                format!("cannot read published resources: {}", Error::from(e)),
            ));
            return out;
        }
    };
    let agent_groups: Vec<&str> = agent.groups.iter().map(|g| g.id.as_str()).collect();
    for domain in &run.domains {
        let resource = resources.iter().find(|r| r.domain == *domain);
        out.push(match resource {
            None => check(
                "tenant.agent.group",
                T,
                Status::Fail,
                format!(
                    "the tenant has no cloud sync configuration (published resource) for {domain}"
                ),
            )
            .subject(domain.clone())
            .remedy(format!(
                "run AddDirectory for {domain}: provd runs Add-AADCloudSyncADDomain and the agent \
                 registers the domain with the service; then give the domain a \
                 [domains.cloud_sync] table and apply (or SetCloudSync)"
            )),
            Some(r)
                if r.group_ids
                    .iter()
                    .any(|g| agent_groups.contains(&g.as_str())) =>
            {
                check(
                    "tenant.agent.group",
                    T,
                    Status::Pass,
                    format!("agent {} serves {domain} through its agent group", agent.id),
                )
                .subject(domain.clone())
                .attr(
                    "other_agents",
                    other_agents(&agents, &agent.id, &r.group_ids),
                )
            }
            Some(_) => check(
                "tenant.agent.group",
                T,
                Status::Fail,
                format!(
                    "agent {} is in none of the agent groups that serve {domain}",
                    agent.id
                ),
            )
            .subject(domain.clone())
            .remedy(format!(
                "apply a document with [domains.cloud_sync] for {domain} (its assign-agent-group \
                 change adds this agent to the domain's group), or SetCloudSync"
            )),
        });
    }
    out
}

/// `tenant.clock_skew`: the tenant's clock (its answer's `Date`) against
/// this host's; the same limits as `directory.dc.clock_skew`.
fn clock_skew(time: Result<ServerTime, TenantError>) -> Check {
    use Category::Tenant as T;
    let time = match time {
        Ok(t) => t,
        Err(e) => {
            return check(
                "tenant.clock_skew",
                T,
                Status::Skip,
                format!("cannot read the tenant's time: {}", Error::from(e)),
            );
        }
    };
    let skew_ms = time.skew_ms();
    // The Date header has whole seconds: report seconds, rounded.
    let skew = (skew_ms + skew_ms.signum() * 500) / 1000;
    let c = check(
        "tenant.clock_skew",
        T,
        Status::Pass,
        format!(
            "the tenant's clock ({}) is {skew:+} s from this host's",
            time.url
        ),
    )
    .attr("url", time.url.clone())
    .attr("skew_ms", skew_ms.to_string());
    match skew_status(skew) {
        Status::Fail => Check {
            status: Status::Fail,
            ..c
        }
        .remedy(
            "sync this host's clock (w32tm /resync, or the time source it is given): tokens \
             and the agent's sign-in are refused when clocks differ this much",
        ),
        Status::Warn => Check {
            status: Status::Warn,
            ..c
        }
        .remedy("sync this host's clock (w32tm /resync)"),
        Status::Pass | Status::Skip => c,
    }
}

/// The other agents in `groups`, as `machine (active|inactive)`: Microsoft
/// recommends three per domain, one active at a time.
fn other_agents(
    agents: &[crate::backends::tenant::ProvisioningAgent],
    mine: &str,
    groups: &[String],
) -> String {
    agents
        .iter()
        .filter(|a| a.id != mine && a.groups.iter().any(|g| groups.contains(&g.id)))
        .map(|a| {
            format!(
                "{} ({})",
                a.machine_name,
                if a.active { "active" } else { "inactive" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
