//! The agent-configuration contract (`provd::testkit::agent_contract`)
//! against the real Windows runner, `PowerShellAgentConfig`: provd's shipped
//! scripts run by the lab's stand-in `powershell.exe` under Wine, with the
//! lab MSI's module installed. A Windows test binary: `deploy/test.sh`
//! installs the lab agent, then runs it under Wine as cargo's runner for
//! the target, after the Wine tests.
#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::sync::Arc;
use std::time::Duration;

use provd::backends::agent_config::windows::PowerShellAgentConfig;
use provd::testkit::agent_contract::{AgentContractEnv, run_all};

#[tokio::test]
#[ignore = "needs the Wine lab with the agent installed: deploy/test.sh runs it"]
async fn the_powershell_runner_passes_the_agent_config_contract() {
    let scripts = tempfile::tempdir().unwrap();
    // A domain of this run's own: the module has no remove-domain cmdlet.
    let run = std::process::id();
    let env = AgentContractEnv {
        agent: Arc::new(PowerShellAgentConfig::new(
            None,
            Some(scripts.path().join("scripts")),
            Duration::from_secs(60),
        )),
        domain: format!("contract{run}.lab.example.test"),
        dcs: ["dc1.lab.example.test".into(), "dc2.lab.example.test".into()],
    };
    run_all(&env).await;
}
