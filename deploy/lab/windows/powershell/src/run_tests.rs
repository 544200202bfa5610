//! The interpreter on Linux, over the shipped scripts' real plans (build.rs) and a fake lab.

use super::*;
use crate::scripts::{fixtures, shipped};

const MODULE: &str = r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Microsoft.CloudSync.PowerShell.dll";
const AGENT_KEY: &str =
    r"HKLM:\SOFTWARE\Microsoft\Azure AD Connect Agents\Azure AD Connect Provisioning Agent";

#[derive(Default)]
struct FakeLab {
    calls: Vec<Invocation>,
    imported: Vec<String>,
    import_fails: bool,
    fail_with: Option<String>,
    outputs: Vec<Output>,
}

impl Lab for FakeLab {
    fn import_module(&mut self, path: &str) -> Result<(), Failure> {
        if self.import_fails {
            return Err(errors::module_not_found(path));
        }
        self.imported.push(path.to_owned());
        Ok(())
    }
    fn invoke(&mut self, call: &Invocation) -> Result<Vec<Output>, Failure> {
        self.calls.push(call.clone());
        match &self.fail_with {
            Some(message) => Err(call.failed(message.clone())),
            None => Ok(self.outputs.clone()),
        }
    }
    fn file(&self, path: &str) -> Option<Option<String>> {
        (path == MODULE).then(|| Some("1.1.977.0".into()))
    }
    fn execution_policies(&self) -> Vec<(String, String)> {
        vec![
            ("MachinePolicy".into(), "Undefined".into()),
            ("LocalMachine".into(), "RemoteSigned".into()),
        ]
    }
    fn registry_value(&self, path: &str, name: &str) -> Option<String> {
        (path == AGENT_KEY && name == "TenantID").then(|| "tenant-1".into())
    }
}

fn stdin(request: &Json) -> Vec<u8> {
    // provd writes the base64 and closes stdin; a trailing newline is skipped as white space.
    format!("{}\r\n", STANDARD.encode(request.to_string())).into_bytes()
}

fn run_script(name: &str, input: &[u8], lab: &mut FakeLab) -> Outcome {
    let built = shipped();
    let script = built.iter().find(|b| b.name == name).unwrap();
    let plan = script.plan.as_ref().unwrap();
    run(script, plan, input, lab)
}

fn error_of(outcome: &Outcome) -> &Json {
    assert_eq!(outcome.exit_code, 1, "{outcome:?}");
    let result = outcome.result.as_ref().unwrap();
    assert_eq!(result["ok"], json!(false));
    &result["error"]
}

fn add_domain_request(password: &str, dcs: &[&str]) -> Json {
    json!({
        "domainName": "lab.example.test",
        "userName": "LAB\\Administrator",
        "password": password,
        "preferredDomainControllers": dcs,
    })
}

#[test]
fn add_domain_binds_the_request_into_the_cmdlet_and_answers_ok() {
    let mut lab = FakeLab::default();
    let request = add_domain_request(
        "Passw0rd!Lab1",
        &["dc2.lab.example.test", "dc1.lab.example.test"],
    );
    let outcome = run_script("add-domain", &stdin(&request), &mut lab);
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(outcome.result, Some(json!({"ok": true})));
    let line = outcome.result_line().unwrap();
    let payload = line
        .strip_prefix("PROVD-RESULT ")
        .unwrap()
        .strip_suffix("\r\n")
        .unwrap();
    assert_eq!(STANDARD.decode(payload).unwrap(), br#"{"ok":true}"#);
    assert_eq!(lab.imported, [MODULE]);
    assert_eq!(
        lab.calls,
        [Invocation {
            cmdlet: "Add-AADCloudSyncADDomain".into(),
            class: "Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain".into(),
            parameter_set: "__AllParameterSets".into(),
            args: vec![
                (
                    "DomainName".into(),
                    Value::String("lab.example.test".into())
                ),
                (
                    "Credential".into(),
                    Value::Credential {
                        user: "LAB\\Administrator".into(),
                        password: "Passw0rd!Lab1".into()
                    }
                ),
                (
                    "PreferredDomainControllers".into(),
                    Value::Strings(vec![
                        "dc2.lab.example.test".into(),
                        "dc1.lab.example.test".into()
                    ])
                ),
            ],
        }]
    );
}

#[test]
fn no_preferred_dcs_takes_the_else_branch() {
    let mut lab = FakeLab::default();
    let outcome = run_script(
        "add-domain",
        &stdin(&add_domain_request("p", &[])),
        &mut lab,
    );
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(lab.calls.len(), 1);
    let names: Vec<&str> = lab.calls[0].args.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["DomainName", "Credential"]);
}

#[test]
fn hostile_input_reaches_the_cmdlet_byte_for_byte_and_does_nothing_else() {
    let password = "'; Start-Process calc; $(whoami) `\n\"\u{1F600}\u{0}$env:PATH";
    let domain = "lab.example.test'; Remove-Item C:\\ -Recurse; '";
    let mut lab = FakeLab::default();
    let mut request = add_domain_request(password, &["$(calc)", "dc1; rm"]);
    request["domainName"] = json!(domain);
    let outcome = run_script("add-domain", &stdin(&request), &mut lab);
    assert_eq!(outcome.exit_code, 0);
    assert_eq!(lab.calls.len(), 1);
    let call = &lab.calls[0];
    assert_eq!(call.string("DomainName"), Some(domain));
    assert_eq!(
        call.get("Credential"),
        Some(&Value::Credential {
            user: "LAB\\Administrator".into(),
            password: password.into()
        })
    );
    assert_eq!(
        call.get("PreferredDomainControllers"),
        Some(&Value::Strings(vec!["$(calc)".into(), "dc1; rm".into()]))
    );
}

#[test]
fn request_problems_are_the_catch_blocks_records() {
    let mut lab = FakeLab::default();
    let mut request = add_domain_request("p", &[]);
    request.as_object_mut().unwrap().remove("password");
    let outcome = run_script("add-domain", &stdin(&request), &mut lab);
    let error = error_of(&outcome);
    assert_eq!(error["fullyQualifiedErrorId"], "PropertyNotFoundStrict");
    assert_eq!(
        error["message"],
        "The property 'password' cannot be found on this object. Verify that the property exists."
    );
    assert_eq!(error["command"], "");

    let error = error_of(&run_script("use-gmsa", b"not base64!", &mut lab)).clone();
    assert_eq!(error["fullyQualifiedErrorId"], "FormatException");
    assert_eq!(
        error["exceptionType"],
        "System.Management.Automation.MethodInvocationException"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Exception calling \"FromBase64String\"")
    );

    let outcome = run_script("use-gmsa", STANDARD.encode("{nope").as_bytes(), &mut lab);
    let error = error_of(&outcome);
    assert_eq!(
        error["fullyQualifiedErrorId"],
        "System.ArgumentException,Microsoft.PowerShell.Commands.ConvertFromJsonCommand"
    );
    assert_eq!(error["command"], "ConvertFrom-Json");
    // module-info and list-domains read no field: `{}` (or nothing) is fine.
    assert_eq!(
        run_script("list-domains", &stdin(&json!({})), &mut lab).exit_code,
        0
    );
    assert!(
        lab.calls
            .iter()
            .all(|c| c.cmdlet == "Get-AADCloudSyncDomains")
    );
}

#[test]
fn empty_secrets_and_names_fail_where_powershell_fails() {
    let mut lab = FakeLab::default();
    let error = error_of(&run_script(
        "add-domain",
        &stdin(&add_domain_request("", &[])),
        &mut lab,
    ))
    .clone();
    assert_eq!(
        error["fullyQualifiedErrorId"],
        "ParameterArgumentValidationErrorEmptyStringNotAllowed,Microsoft.PowerShell.Commands.ConvertToSecureStringCommand"
    );
    assert_eq!(
        error["message"],
        "Cannot bind argument to parameter 'String' because it is an empty string."
    );
    assert_eq!(error["command"], "ConvertTo-SecureString");

    let mut request = add_domain_request("p", &[]);
    request["userName"] = json!("");
    let error = error_of(&run_script("add-domain", &stdin(&request), &mut lab)).clone();
    assert_eq!(
        error["fullyQualifiedErrorId"],
        "ConstructorInvokedThrowException,Microsoft.PowerShell.Commands.NewObjectCommand"
    );

    let error = error_of(&run_script(
        "use-gmsa",
        &stdin(&json!({"customGmsaName": ""})),
        &mut lab,
    ))
    .clone();
    assert_eq!(
        error["fullyQualifiedErrorId"],
        "ParameterArgumentValidationErrorEmptyStringNotAllowed,Microsoft.CloudSync.Powershell.AddAADCloudSyncGMSA"
    );
    assert_eq!(error["command"], "Add-AADCloudSyncGMSA");
    assert!(lab.calls.is_empty(), "{:?}", lab.calls);
}

#[test]
fn import_and_cmdlet_failures_are_reported_as_records() {
    let mut lab = FakeLab {
        import_fails: true,
        ..FakeLab::default()
    };
    let outcome = run_script(
        "use-gmsa",
        &stdin(&json!({"customGmsaName": "provAgentgMSA$"})),
        &mut lab,
    );
    let error = error_of(&outcome);
    assert_eq!(
        error["fullyQualifiedErrorId"],
        "Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand"
    );
    assert_eq!(error["command"], "Import-Module");
    assert!(lab.calls.is_empty());

    let mut lab = FakeLab {
        fail_with: Some("Failed changing Windows service credentials to gMSA".into()),
        ..FakeLab::default()
    };
    let outcome = run_script(
        "use-gmsa",
        &stdin(&json!({"customGmsaName": "provAgentgMSA$"})),
        &mut lab,
    );
    assert_eq!(
        error_of(&outcome),
        &json!({
            "message": "Failed changing Windows service credentials to gMSA",
            "fullyQualifiedErrorId": "System.InvalidOperationException,Microsoft.CloudSync.Powershell.AddAADCloudSyncGMSA",
            "category": "NotSpecified",
            "exceptionType": "System.InvalidOperationException",
            "command": "Add-AADCloudSyncGMSA",
        })
    );
    assert_eq!(lab.calls[0].parameter_set, "CustomGMSA");
}

#[test]
fn set_writeback_connects_then_sets_with_powershells_bool_cast() {
    for (enable, wanted) in [
        (json!(true), true),
        (json!(false), false),
        (json!("false"), true),
        (json!(0), false),
    ] {
        let mut lab = FakeLab::default();
        let request = json!({"accessToken": "t0k", "tenantId": "tid", "userPrincipalName": "a@b", "enable": enable});
        assert_eq!(
            run_script("set-writeback", &stdin(&request), &mut lab).exit_code,
            0
        );
        let cmdlets: Vec<&str> = lab.calls.iter().map(|c| c.cmdlet.as_str()).collect();
        assert_eq!(
            cmdlets,
            [
                "Connect-AADCloudSyncAzureAD",
                "Set-AADCloudSyncPasswordWritebackConfiguration"
            ]
        );
        assert_eq!(lab.calls[0].parameter_set, "AccessToken");
        assert_eq!(lab.calls[0].string("AccessToken"), Some("t0k"));
        assert_eq!(
            lab.calls[1].get("Enable"),
            Some(&Value::Bool(wanted)),
            "{enable}"
        );
    }
}

#[test]
fn module_info_and_list_domains_build_their_results() {
    let mut lab = FakeLab::default();
    let outcome = run_script("module-info", &stdin(&json!({})), &mut lab);
    assert_eq!(
        outcome.result,
        Some(json!({
            "ok": true,
            "modulePath": MODULE,
            "modulePresent": true,
            "moduleVersion": "1.1.977.0",
            "executionPolicies": [
                {"scope": "MachinePolicy", "policy": "Undefined"},
                {"scope": "LocalMachine", "policy": "RemoteSigned"},
            ],
            "registeredTenant": "tenant-1",
        }))
    );
    assert!(
        lab.calls.is_empty() && lab.imported.is_empty(),
        "module-info imports nothing"
    );

    let mut lab = FakeLab {
        outputs: vec![
        serde_json::from_value(
            json!({"DomainName": "lab.example.test", "PreferredDomainControllers": ["dc2", "dc1"]}),
        )
        .unwrap(),
        serde_json::from_value(json!({"DomainName": "b.test", "PreferredDomainControllers": []}))
            .unwrap(),
        ],
        ..FakeLab::default()
    };
    let outcome = run_script("list-domains", &stdin(&json!({})), &mut lab);
    assert_eq!(
        outcome.result,
        Some(json!({
            "ok": true,
            "domains": [
                {"DomainName": "lab.example.test", "PreferredDomainControllers": "dc2 dc1"},
                {"DomainName": "b.test", "PreferredDomainControllers": ""},
            ],
        }))
    );
}

#[test]
fn binder_errors_from_provd_psscript_surface_when_the_call_is_reached() {
    let built = fixtures();
    let script = built
        .iter()
        .find(|b| b.name == "bad-parameter-fixture")
        .unwrap();
    let mut lab = FakeLab::default();
    let outcome = run(
        script,
        script.plan.as_ref().unwrap(),
        &stdin(&json!({"customGmsaName": "g$"})),
        &mut lab,
    );
    assert_eq!(
        error_of(&outcome),
        &json!({
            "message": "A parameter cannot be found that matches parameter name 'GmsaName'.",
            "fullyQualifiedErrorId": "NamedParameterNotFound,Microsoft.CloudSync.Powershell.AddAADCloudSyncGMSA",
            "category": "InvalidArgument",
            "exceptionType": "System.Management.Automation.ParameterBindingException",
            "command": "Add-AADCloudSyncGMSA",
        })
    );
    // The module was imported first: PowerShell binds a command only when it runs it.
    assert_eq!(lab.imported, [MODULE]);
    assert!(lab.calls.is_empty());

    let script = built
        .iter()
        .find(|b| b.name == "no-import-fixture")
        .unwrap();
    let outcome = run(
        script,
        script.plan.as_ref().unwrap(),
        &stdin(&json!({"customGmsaName": "g$"})),
        &mut lab,
    );
    let error = error_of(&outcome);
    assert_eq!(error["fullyQualifiedErrorId"], "CommandNotFoundException");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("The term 'Add-AADCloudSyncGMSA' is not recognized")
    );
    assert!(lab.calls.is_empty());
}

#[test]
fn the_verbose_trace_scripts_import_aadcloudsynctools_then_call_its_command() {
    const TOOLS: &str =
        r"C:\Program Files\Microsoft Azure AD Connect Provisioning Agent\Utility\AADCloudSyncTools";
    for (script, cmdlet) in [
        ("verbose-trace-start", "Start-AADCloudSyncToolsVerboseLogs"),
        ("verbose-trace-stop", "Stop-AADCloudSyncToolsVerboseLogs"),
    ] {
        let mut lab = FakeLab::default();
        let outcome = run_script(script, &stdin(&json!({})), &mut lab);
        assert_eq!(outcome.result, Some(json!({"ok": true})), "{script}");
        assert_eq!(lab.imported, [TOOLS]);
        let calls: Vec<_> = lab
            .calls
            .iter()
            .map(|c| (c.cmdlet.as_str(), c.args.len()))
            .collect();
        assert_eq!(calls, [(cmdlet, 0)], "{script}: no -SkipServiceRestart");
        assert_eq!(lab.calls[0].class, cmdlet);

        let mut lab = FakeLab {
            import_fails: true,
            ..FakeLab::default()
        };
        let outcome = run_script(script, &stdin(&json!({})), &mut lab);
        assert_eq!(
            error_of(&outcome)["fullyQualifiedErrorId"],
            json!("Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand")
        );
        assert!(lab.calls.is_empty());
    }
}
