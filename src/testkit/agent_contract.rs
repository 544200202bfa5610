//! The agent-configuration contract: properties every [`AgentConfig`] must
//! have, run against `FakeAgentConfig` (hermetic:
//! `tests/integration/agent_config.rs`) and against the real Windows runner,
//! `PowerShellAgentConfig`, with the lab's stand-in `powershell.exe` under
//! Wine (`tests/agent_contract_wine.rs`, run by `deploy/test.sh`). Where the two differ, the fake is made to behave like
//! the stand-in, which mirrors Microsoft's cmdlets.
//!
//! Each property is one `pub async fn` taking an [`AgentContractEnv`]; it
//! panics (test support) naming what differed. Registration, the gMSA and
//! writeback need a tenant and an agent service: the Wine test covers them
//! end to end; these are the properties both backends can show alone.

use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::backends::agent_config::{
    AgentConfig, AgentConfigError, AgentDomain, MODULE_PATH, RunContext,
};
use crate::model::BindCredential;

/// The backend under test and what it may be given.
pub struct AgentContractEnv {
    pub agent: Arc<dyn AgentConfig>,
    /// A domain name unique to this run (the module has no remove-domain
    /// cmdlet, so each run adds its own).
    pub domain: String,
    /// Two DC host names, in priority order.
    pub dcs: [String; 2],
}

/// PowerShell's special characters, quotes and a line break: a value the
/// scripts must hand to the cmdlet as exactly this text.
pub const HOSTILE: &str = "x'; Remove-Item -Recurse C:\\ #\"$(exit 7)`n@{a=1}\r\nnext";

/// A password holding [`HOSTILE`]: it must reach the cmdlet and nothing
/// else (no transcript line, no error text).
pub fn hostile_credential() -> BindCredential {
    BindCredential::simple(
        "LAB\\Administrator",
        SecretString::from(format!("Pw-{HOSTILE}-7f3a")),
    )
}

/// A call's transcript lines, collected.
#[derive(Default)]
pub struct Lines(Mutex<Vec<String>>);

impl Lines {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

async fn call<T, F>(lines: &Lines, cancel: &CancellationToken, f: F) -> T
where
    F: AsyncFnOnce(&RunContext<'_>) -> T,
{
    let sink = |line: String| lines.0.lock().unwrap().push(line);
    let cx = RunContext {
        cancel,
        transcript: &sink,
    };
    f(&cx).await
}

async fn listed(env: &AgentContractEnv, domain: &str) -> Vec<AgentDomain> {
    let lines = Lines::default();
    let all = call(&lines, &CancellationToken::new(), async |cx| {
        env.agent.list_domains(cx).await
    })
    .await
    .unwrap_or_else(|e| panic!("list_domains: {e}"));
    all.into_iter()
        .filter(|d| d.domain.eq_ignore_ascii_case(domain))
        .collect()
}

/// `module_info` names Microsoft's module path, a dotted version and the
/// five execution-policy scopes `Get-ExecutionPolicy -List` lists.
pub async fn module_info_names_the_module_its_version_and_policies(env: &AgentContractEnv) {
    let lines = Lines::default();
    let info = call(&lines, &CancellationToken::new(), async |cx| {
        env.agent.module_info(cx).await
    })
    .await
    .unwrap_or_else(|e| panic!("module_info: {e}"));
    assert!(
        info.dll_path.eq_ignore_ascii_case(MODULE_PATH),
        "{}",
        info.dll_path
    );
    let version = info.version.expect("the module is installed");
    assert!(
        version.split('.').count() == 4 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "version {version:?}"
    );
    let scopes: Vec<&str> = info
        .execution_policies
        .iter()
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(
        scopes,
        [
            "MachinePolicy",
            "UserPolicy",
            "Process",
            "CurrentUser",
            "LocalMachine"
        ]
    );
}

/// A domain added is listed once, with its preferred DCs in order; adding
/// it again (another case, another order) updates it, never duplicates it.
pub async fn an_added_domain_is_listed_once_with_its_dcs_in_order(env: &AgentContractEnv) {
    let lines = Lines::default();
    let cancel = CancellationToken::new();
    let credential = hostile_credential();
    let [dc1, dc2] = &env.dcs;
    call(&lines, &cancel, async |cx| {
        let both = [dc1.clone(), dc2.clone()];
        env.agent
            .add_domain(&env.domain, &credential, &both, cx)
            .await
    })
    .await
    .unwrap_or_else(|e| panic!("add_domain: {e}"));
    let once = listed(env, &env.domain).await;
    assert_eq!(once.len(), 1, "{once:?}");
    assert_eq!(once[0].preferred_dcs, [dc1.clone(), dc2.clone()]);

    let upper = env.domain.to_ascii_uppercase();
    call(&lines, &cancel, async |cx| {
        let reversed = [dc2.clone(), dc1.clone()];
        env.agent
            .add_domain(&upper, &credential, &reversed, cx)
            .await
    })
    .await
    .unwrap_or_else(|e| panic!("add_domain again: {e}"));
    let again = listed(env, &env.domain).await;
    assert_eq!(again.len(), 1, "updated, not added twice: {again:?}");
    assert_eq!(again[0].preferred_dcs, [dc2.clone(), dc1.clone()]);
    assert_no_secret(&lines.take(), &credential);
}

/// A value full of PowerShell syntax reaches the cmdlet as exactly that
/// text (the module lists it back unchanged), and the password carrying it
/// appears in no transcript line.
pub async fn hostile_values_reach_the_cmdlet_literally(env: &AgentContractEnv) {
    let lines = Lines::default();
    let credential = hostile_credential();
    let domain = format!("{}{HOSTILE}", env.domain);
    // Get-AADCloudSyncDomains' shape is undocumented, so list-domains.ps1
    // returns each property as text, arrays joined by spaces, and provd
    // splits the DCs on spaces, commas and semicolons (none of which a DC
    // host name can hold; the API validates them). The DC's hostile part
    // has none of those; the domain's has them all.
    let dc = format!("{}'$(exit`7)\"#@{{a=1}}", env.dcs[0]);
    call(&lines, &CancellationToken::new(), async |cx| {
        env.agent
            .add_domain(&domain, &credential, std::slice::from_ref(&dc), cx)
            .await
    })
    .await
    .unwrap_or_else(|e| panic!("add_domain with a hostile name: {e}"));
    let back = listed(env, &domain).await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].domain, domain);
    assert_eq!(back[0].preferred_dcs, [dc]);
    assert_no_secret(&lines.take(), &credential);
}

/// A call whose operation is already cancelled fails `Cancelled` and
/// changes nothing.
pub async fn a_cancelled_call_changes_nothing(env: &AgentContractEnv) {
    let lines = Lines::default();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let domain = format!("cancelled.{}", env.domain);
    let result = call(&lines, &cancel, async |cx| {
        env.agent
            .add_domain(&domain, &hostile_credential(), &env.dcs, cx)
            .await
    })
    .await;
    assert!(
        matches!(result, Err(AgentConfigError::Cancelled)),
        "{result:?}"
    );
    assert!(listed(env, &domain).await.is_empty());
}

fn assert_no_secret(lines: &[String], credential: &BindCredential) {
    use secrecy::ExposeSecret as _;
    let secret = credential
        .password()
        .map(|p| p.expose_secret())
        .unwrap_or_default();
    for line in lines {
        assert!(
            !line.contains(secret),
            "a transcript line carries the password: {line:?}"
        );
    }
}

/// Every property, in order.
pub async fn run_all(env: &AgentContractEnv) {
    module_info_names_the_module_its_version_and_policies(env).await;
    an_added_domain_is_listed_once_with_its_dcs_in_order(env).await;
    hostile_values_reach_the_cmdlet_literally(env).await;
    a_cancelled_call_changes_nothing(env).await;
}
