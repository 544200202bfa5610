//! The agent module's failure modes on the Wine host, each driven through
//! provd.exe's API and ending in its typed error with the remedy
//! (`deploy/windows/agent-module-design.md` §1.6): an `Unrestricted`
//! execution policy, Newtonsoft.Json 13 under a module built for 12, the
//! agent service not flagged for a managed account, a hung module call
//! (timeout, and cancel: the process tree goes); and hostile text reaching
//! a cmdlet only as the literal value it is. The stand-in powershell.exe
//! reproduces each failure (its `src/main.rs`); this test puts the lab
//! back after each one, and on the way out however it ends.

use super::*;

use provd_proto::v1::domain_controller_service_client::DomainControllerServiceClient;
use provd_proto::v1::operations_service_client::OperationsServiceClient;
use provd_proto::v1::service_account_service_client::ServiceAccountServiceClient;

pub(super) const POLICY_LM: &str =
    r"HKLM\SOFTWARE\Microsoft\PowerShell\1\ShellIds\Microsoft.PowerShell";
const POLICY_CU: &str = r"HKCU\Software\Microsoft\PowerShell\1\ShellIds\Microsoft.PowerShell";
const LAB_PS_KEY: &str = r"HKLM\SOFTWARE\ProvdLab\PowerShell";
pub(super) const SERVICE_KEY: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Services\AADConnectProvisioningAgent";
/// The agent's install folder in the prefix.
const AGENT_DIR: &str = "drive_c/Program Files/Microsoft Azure AD Connect Provisioning Agent";
/// The stand-in's data folder in the prefix.
const AGENT_DATA: &str = "drive_c/ProgramData/ProvdLabAgent";
/// As hostile as a gMSA's name can be and pass the API's rules (quotes, a
/// backtick, `#`, `&`, brackets, a space; `$` and `;` are refused): it must
/// reach Add-AADCloudSyncGMSA as this literal.
const GMSA: &str = "pf' `#&(x){y}";
/// What the hang fault's child runs (`cmd /c ping -n 600 127.0.0.1`).
const HUNG_CHILD: &str = "-n 600 127.0.0.1";

#[tokio::test]
#[ignore = "needs the Wine lab and PROVD_WINE_EXE (deploy/test.sh runs it)"]
async fn agent_module_failures_are_typed_with_their_remedy() {
    // A short script limit, so the hung call's timeout is quick to see.
    let provd = WineProvd::start(
        "provd-failures",
        "[agent_module]\nscript_timeout = \"8s\"\n",
    )
    .await;
    let (env, channel, tenant) = (&provd.env, &provd.channel, &provd.tenant);
    let _restore = Restore(env.clone());
    let prefix = Path::new(&env["WINEPREFIX"]);
    let msi = Path::new(&env["WINE_LAB_MSI"]);
    let msi_sha = &env["WINE_LAB_MSI_SHA256"];

    // Execution policy Unrestricted in a machine, then a user scope:
    // registration is refused before the module is asked, naming the scope
    // and how to change it.
    for (key, scope) in [(POLICY_LM, "LocalMachine"), (POLICY_CU, "CurrentUser")] {
        reg_set(env, key, "ExecutionPolicy", "REG_SZ", "Unrestricted");
        let (events, op) = install(channel, msi, msi_sha, tenant).await;
        reg_delete(env, key, "ExecutionPolicy");
        let error = failed(&op, &events, "connect-tenant", "AGENT_EXECUTION_POLICY");
        for part in [
            format!("Unrestricted ({scope})"),
            "Undefined or RemoteSigned".into(),
            format!("Set-ExecutionPolicy RemoteSigned -Scope {scope}"),
        ] {
            assert!(error.message.contains(&part), "{part}: {}", error.message);
        }
    }
    assert!(tenant.agents().await.is_empty(), "registered despite it");
    let (_, op) = install(channel, msi, msi_sha, tenant).await;
    ok(&op);

    // The agent service not flagged for a managed account: the gMSA is
    // created and recorded, but the module cannot make the service log on
    // as it; flagged again, the same request finishes the job.
    let machine = agent(channel).await.tenant.unwrap().machine_name;
    let host_account = lab_prerequisites(&machine, GMSA).await;
    reg_delete(env, SERVICE_KEY, "ServiceAccountManaged");
    let request = v1::CreateGmsaRequest {
        dns_host_name: format!("provfail.{}", var("LAB_DOMAIN")),
        ..gmsa_request(GMSA, &[&host_account])
    };
    let data = prefix.join(AGENT_DATA);
    let before = calls(&data).len();
    let (events, op) = create(channel, request.clone()).await;
    let error = failed(
        &op,
        &events,
        "configure-service",
        "AGENT_SERVICE_NOT_MANAGED",
    );
    assert!(
        error
            .message
            .contains("sc.exe managedaccount AADConnectProvisioningAgent true"),
        "{}",
        error.message
    );
    assert!(flag_managed(env), "reg add ServiceAccountManaged");
    let (_, op) = create(channel, request).await;
    ok(&op);
    let logon = agent(channel).await.services[0]
        .account
        .to_ascii_lowercase();
    let literal = format!("{GMSA}$");
    assert!(
        logon.ends_with(&format!("\\{}", literal.to_ascii_lowercase())),
        "{logon}"
    );
    let records = records(&calls(&data), before);
    let names: Vec<_> = records
        .iter()
        .filter(|r| r["cmdlet"] == "Add-AADCloudSyncGMSA")
        .map(|r| r["parameters"]["CustomGMSAName"].clone())
        .collect();
    assert_eq!(names, [literal.as_str(); 2], "{records:#?}");

    // Newtonsoft.Json 13 where the module wants 12 (azure-docs#104689):
    // giving the agent the DC order fails with "upgrade the agent".
    let dll = prefix.join(AGENT_DIR).join("Newtonsoft.Json.dll");
    let dcs = [var("LAB_DC1_HOST"), var("LAB_DC2_HOST")];
    std::fs::copy(&env["WINE_LAB_NEWTONSOFT_13"], &dll).unwrap();
    let (events, op) = set_priority(channel, &var("LAB_DOMAIN"), &dcs, admin()).await;
    std::fs::copy(&env["WINE_LAB_NEWTONSOFT_12"], &dll).unwrap();
    let error = failed(&op, &events, "add-domain", "AGENT_MODULE_CONFLICT");
    for part in ["Newtonsoft.Json", "0x80131040", "upgrade the agent"] {
        assert!(error.message.contains(part), "{part}: {}", error.message);
    }

    hostile_text_stays_literal(&provd).await;
    hung_calls_end_with_their_process_tree(env, channel, tenant).await;

    let mut s = admin_session().await;
    delete_gmsa(s.as_mut(), GMSA).await;
    s.unbind().await;
    provd.stop().await;
}

/// Text with PowerShell's metacharacters is refused at the API where a name
/// is expected; where it is free text (a credential) it reaches the cmdlet
/// as exactly that value and does nothing else, and the password is in no
/// log, event or record.
async fn hostile_text_stays_literal(provd: &WineProvd) {
    let (env, channel) = (&provd.env, &provd.channel);
    let data = Path::new(&env["WINEPREFIX"]).join(AGENT_DATA);
    let domain = var("LAB_DOMAIN");
    let dcs = [var("LAB_DC2_HOST"), var("LAB_DC1_HOST")];

    // Names: refused before anything runs.
    let hostile_domain = format!("{domain}'; Remove-Item C:\\ -Recurse #");
    let refused = DomainControllerServiceClient::new(channel.clone())
        .set_priority(priority_request(&hostile_domain, &dcs, admin()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    let refused = ServiceAccountServiceClient::new(channel.clone())
        .create_gmsa(gmsa_request("g;$(calc)`", &["HOST$"]))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");

    // A credential: free text, so it goes all the way to
    // Add-AADCloudSyncADDomain (the stand-in does not check it against
    // the domain). Were it spliced into the script, the canary would go
    // and C:\pwned.txt would appear.
    let canary = data.join("canary.txt");
    std::fs::write(&canary, "still here").unwrap();
    let pwned = Path::new(&env["WINEPREFIX"]).join("drive_c/pwned.txt");
    let _ = std::fs::remove_file(&pwned);
    // Plain letters no other text here contains: what the secret checks
    // look for (the rest is escaped differently in JSON and logs).
    const MARKER: &str = "Qx7hostileZ";
    let password = format!(
        "{MARKER}'; Remove-Item C:\\ProgramData\\ProvdLabAgent\\canary.txt #\"\r\n\
         $(New-Item C:\\pwned.txt) `$env:PATH ${{x}} @' | & ; ''\n'@"
    );
    let username = "LAB\\o'; Remove-Item C:\\ -Recurse #$(whoami)`\"".to_owned();
    let before = calls(&data).len();
    let credential = v1::Credential {
        username: username.clone(),
        password: password.clone(),
        kerberos: None,
    };
    let (events, op) = set_priority(channel, &domain, &dcs, credential).await;
    ok(&op);

    let recorded = calls(&data);
    let records = records(&recorded, before);
    let cmdlets: Vec<_> = records.iter().map(|r| r["cmdlet"].clone()).collect();
    assert_eq!(
        cmdlets,
        ["Get-AADCloudSyncDomains", "Add-AADCloudSyncADDomain"],
        "{records:#?}"
    );
    let added = &records[1]["parameters"];
    assert_eq!(added["DomainName"], domain.as_str());
    assert_eq!(added["PreferredDomainControllers"], serde_json::json!(dcs));
    assert_eq!(added["Credential"]["userName"], username.as_str());
    assert_eq!(
        added["Credential"]["passwordSha256"],
        sha256_hex(password.as_bytes()).as_str()
    );
    assert!(canary.is_file(), "the canary was removed");
    assert!(!pwned.exists(), "C:\\pwned.txt was created");
    let domains: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("domains.json")).unwrap()).unwrap();
    assert_eq!(
        domains,
        serde_json::json!([{"domain": domain, "preferredDcs": dcs}])
    );
    let _ = std::fs::remove_file(&canary);

    let log = std::fs::read_to_string(provd.dir.join("provd.log")).unwrap();
    for (place, text) in [
        ("provd.log", log),
        ("the events", format!("{events:?} {op:?}")),
        ("powershell-calls.jsonl", recorded),
    ] {
        assert!(!text.contains(MARKER), "the password is in {place}");
    }
}

/// The hang fault: a module call that never returns is ended by the
/// runner's limit with a typed error, and a cancelled one ends CANCELLED;
/// either way its whole process tree is gone.
async fn hung_calls_end_with_their_process_tree(
    env: &BTreeMap<String, String>,
    channel: &Channel,
    tenant: &TenantEmulator,
) {
    let msi = Path::new(&env["WINE_LAB_MSI"]);
    let msi_sha = &env["WINE_LAB_MSI_SHA256"];
    assert!(running(HUNG_CHILD).is_empty(), "a hung child is left over");
    reg_set(env, LAB_PS_KEY, "Hang", "REG_DWORD", "1");

    // Install again: connect-tenant asks the module what it has, which hangs.
    let watch = async {
        wait_until("the hung child started", 30, || {
            !running(HUNG_CHILD).is_empty()
        })
        .await;
    };
    let ((events, op), ()) = tokio::join!(install(channel, msi, msi_sha, tenant), watch);
    let error = op.error.clone().unwrap();
    assert_eq!(
        (error.code.as_str(), error.step.as_str()),
        ("UNAVAILABLE", "connect-tenant"),
        "{error:?} {events:#?}"
    );
    for part in ["did not finish within 8s", "agent_module.script_timeout"] {
        assert!(error.message.contains(part), "{part}: {}", error.message);
    }
    // Its transcript came through as it ran.
    assert!(
        events
            .iter()
            .any(|e| e.step == "connect-tenant" && e.message.contains("started cmd.exe pid")),
        "{events:#?}"
    );
    tree_gone().await;

    // The same, cancelled while the script hangs.
    let op = start_install(channel, msi, msi_sha).await;
    wait_until("the hung child started", 30, || {
        !running(HUNG_CHILD).is_empty()
    })
    .await;
    OperationsServiceClient::new(channel.clone())
        .cancel_operation(v1::CancelOperationRequest { id: op.id.clone() })
        .await
        .unwrap();
    let (events, op) = finish_with(channel, op, Some(tenant)).await;
    assert_eq!(
        op.state,
        v1::OperationState::Cancelled as i32,
        "{:?} {events:#?}",
        op.error
    );
    tree_gone().await;
    reg_delete(env, LAB_PS_KEY, "Hang");
}

/// The stand-in's record of the agent cmdlets it ran.
fn calls(data: &Path) -> String {
    std::fs::read_to_string(data.join("powershell-calls.jsonl")).unwrap_or_default()
}

/// The records `text` holds after its first `from` bytes.
fn records(text: &str, from: usize) -> Vec<serde_json::Value> {
    text[from..]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Neither the hung child nor the stand-in that started it runs any more.
async fn tree_gone() {
    wait_until("the hung process tree ended", 15, || {
        running(HUNG_CHILD).is_empty() && running("powershell.exe -NoLogo").is_empty()
    })
    .await;
}

/// Linux pids of live processes whose command line contains `needle`
/// (Wine shows a Windows process's command line there; `wine tasklist`
/// prints nothing on Wine 8).
fn running(needle: &str) -> Vec<u32> {
    let needle = needle.to_ascii_lowercase();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // A zombie (nothing reaps here) has no command line: skipped.
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .to_ascii_lowercase()
                    .contains(&needle)
            })
        })
        .collect()
}

async fn wait_until(what: &str, seconds: u64, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {seconds} s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The operation failed at `step` with FAILED_PRECONDITION `reason`.
fn failed(
    op: &v1::Operation,
    events: &[v1::OperationEvent],
    step: &str,
    reason: &str,
) -> v1::OperationError {
    let error = op.error.clone().unwrap_or_default();
    assert_eq!(
        (
            error.code.as_str(),
            error.reason.as_str(),
            error.step.as_str()
        ),
        ("FAILED_PRECONDITION", reason, step),
        "{error:?} {events:#?}"
    );
    error
}

fn priority_request(
    domain: &str,
    dcs: &[String],
    credential: v1::Credential,
) -> v1::SetPriorityRequest {
    v1::SetPriorityRequest {
        domain: domain.into(),
        domain_controllers: dcs.to_vec(),
        credential: Some(credential),
        ..Default::default()
    }
}

/// SetPriority with a credential: the agent is given the order too.
async fn set_priority(
    channel: &Channel,
    domain: &str,
    dcs: &[String],
    credential: v1::Credential,
) -> (Vec<v1::OperationEvent>, v1::Operation) {
    let response = DomainControllerServiceClient::new(channel.clone())
        .set_priority(priority_request(domain, dcs, credential))
        .await
        .unwrap();
    finish(channel, response.into_inner().operation.unwrap()).await
}

pub(super) fn reg_set(
    env: &BTreeMap<String, String>,
    key: &str,
    name: &str,
    kind: &str,
    data: &str,
) {
    assert!(reg_add(env, key, name, kind, data), "reg add {key}\\{name}");
}

fn reg_add(env: &BTreeMap<String, String>, key: &str, name: &str, kind: &str, data: &str) -> bool {
    let args = ["reg", "add", key, "/v", name, "/t", kind, "/d", data, "/f"];
    wine(env, &args).status.success()
}

/// Best effort: the value may not be there.
pub(super) fn reg_delete(env: &BTreeMap<String, String>, key: &str, name: &str) {
    let _ = wine(env, &["reg", "delete", key, "/v", name, "/f"]);
}

/// What `sc.exe managedaccount AADConnectProvisioningAgent true` writes
/// (and the lab MSI sets).
fn flag_managed(env: &BTreeMap<String, String>) -> bool {
    reg_add(
        env,
        SERVICE_KEY,
        "ServiceAccountManaged",
        "REG_BINARY",
        "01000000",
    )
}

/// Flags the agent service managed again, only while the service exists: a
/// value alone would leave a key that looks like a broken service.
pub(super) fn flag_managed_if_installed(env: &BTreeMap<String, String>) {
    if wine(env, &["reg", "query", SERVICE_KEY, "/v", "ImagePath"])
        .status
        .success()
    {
        let _ = flag_managed(env);
    }
}

/// Puts back what the failure modes changed, however the test ends, so
/// the other Wine test and the next run find the lab as `wine.sh up` and
/// the lab MSI leave it.
struct Restore(BTreeMap<String, String>);

impl Drop for Restore {
    fn drop(&mut self) {
        let env = &self.0;
        for (key, name) in [
            (POLICY_LM, "ExecutionPolicy"),
            (POLICY_CU, "ExecutionPolicy"),
            (LAB_PS_KEY, "Hang"),
        ] {
            reg_delete(env, key, name);
        }
        let dll = Path::new(&env["WINEPREFIX"])
            .join(AGENT_DIR)
            .join("Newtonsoft.Json.dll");
        if dll.is_file() {
            let _ = std::fs::copy(&env["WINE_LAB_NEWTONSOFT_12"], &dll);
        }
        flag_managed_if_installed(env);
    }
}
