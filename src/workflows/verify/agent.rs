//! The agent's own configuration, read through its PowerShell module:
//! `agent.module` — the module is where the agent installs it, answers, and
//! the host's execution policies let it run (Microsoft's troubleshooting
//! page: machine and user policies Undefined or RemoteSigned).

use super::{Category, Check, Run, Status, check};
use crate::backends::agent_config::{RunContext, classify};
use tokio_util::sync::CancellationToken;

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    vec![module(run).await]
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
