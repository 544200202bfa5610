use serde_json::json;

use super::{PASSWORD, TOKEN, connection, result_line, sent};
use crate::backends::agent_config::AgentConfigError;
use crate::backends::agent_config::classify::ScriptError;
use crate::backends::agent_config::protocol::{self, EXIT_SCRIPT_MISSING, Request, result_payload};
use crate::model::BindCredential;
use secrecy::{ExposeSecret, SecretString};

fn admin() -> BindCredential {
    BindCredential::simple("LAB\\Administrator", SecretString::from(PASSWORD))
}

#[test]
fn each_request_is_ascii_base64_of_the_json_its_script_reads() {
    let dcs = vec![
        "dc1.lab.example.test".to_owned(),
        "dc2.lab.example.test".into(),
    ];
    let add = Request::add_domain("lab.example.test", &admin(), &dcs);
    assert_eq!(add.script, "add-domain");
    assert!(!add.read_only);
    assert!(add.stdin().expose_secret().is_ascii());
    assert_eq!(
        sent(&add),
        json!({
            "domainName": "lab.example.test",
            "userName": "LAB\\Administrator",
            "password": PASSWORD,
            "preferredDomainControllers": dcs,
        })
    );
    // Byte for byte: the hostile password arrives as the data it is.
    assert_eq!(sent(&add)["password"].as_str(), Some(PASSWORD));

    let connect = Request::connect_tenant(&connection());
    assert_eq!(connect.script, "connect-tenant");
    assert_eq!(
        sent(&connect),
        json!({
            "accessToken": TOKEN,
            "tenantId": "00000000-0000-0000-0000-0000000000aa",
            "userPrincipalName": "admin@contoso.example",
        })
    );
    let writeback = Request::set_writeback(true, &connection());
    assert_eq!(writeback.script, "set-writeback");
    assert_eq!(sent(&writeback)["enable"], json!(true));
    assert_eq!(sent(&writeback)["accessToken"], json!(TOKEN));
    let gmsa = Request::use_gmsa("provAgentgMSA$");
    assert_eq!(sent(&gmsa), json!({"customGmsaName": "provAgentgMSA$"}));
    for (read, script) in [
        (Request::module_info(), "module-info"),
        (Request::list_domains(), "list-domains"),
    ] {
        assert_eq!(read.script, script);
        assert!(read.read_only);
        assert_eq!(sent(&read), json!({}));
    }
}

fn run_outcome(
    request: &Request,
    code: i32,
    lines: &[Vec<u8>],
    stderr: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, AgentConfigError> {
    let results: Vec<Vec<u8>> = lines
        .iter()
        .filter_map(|l| result_payload(l).map(<[u8]>::to_vec))
        .collect();
    let tail: Vec<String> = stderr.iter().map(|s| (*s).to_owned()).collect();
    protocol::outcome(request, Some(code), &results, &tail)
}

#[test]
fn a_result_line_round_trips_and_its_fields_come_back() {
    let request = Request::module_info();
    let answer = json!({
        "ok": true,
        "modulePath": crate::backends::agent_config::MODULE_PATH,
        "modulePresent": true,
        "moduleVersion": "1.1.2505.0",
        "executionPolicies": [
            {"scope": "MachinePolicy", "policy": "Undefined"},
            {"scope": "LocalMachine", "policy": "RemoteSigned"},
        ],
        "registeredTenant": null,
    });
    let mut line = result_line(&answer);
    line.extend_from_slice(b"  ");
    let data = run_outcome(&request, 0, &[line], &[]).unwrap();
    let info = protocol::module_info(data).unwrap();
    assert_eq!(info.version.as_deref(), Some("1.1.2505.0"));
    assert_eq!(info.registered_tenant, None);
    assert_eq!(
        info.execution_policies,
        [
            ("MachinePolicy".to_owned(), "Undefined".to_owned()),
            ("LocalMachine".into(), "RemoteSigned".into())
        ]
    );
    // No dll: no version, whatever the field says.
    let absent = json!({"ok": true, "modulePath": "C:\\m.dll", "modulePresent": false,
        "moduleVersion": "1.0", "executionPolicies": [], "registeredTenant": ""});
    let data = run_outcome(&request, 0, &[result_line(&absent)], &[]).unwrap();
    let info = protocol::module_info(data).unwrap();
    assert_eq!((info.version, info.registered_tenant), (None, None));
}

#[test]
fn a_failure_record_is_classified_with_secrets_withheld() {
    let request = Request::add_domain("lab.example.test", &admin(), &[]);
    let answer = json!({"ok": false, "error": {
        "message": format!("Cannot bind argument: {PASSWORD}"),
        "fullyQualifiedErrorId": "System.InvalidOperationException,Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain",
        "category": "NotSpecified",
        "exceptionType": "System.InvalidOperationException",
        "command": "Add-AADCloudSyncADDomain",
    }});
    let err = run_outcome(&request, 1, &[result_line(&answer)], &[]).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AgentConfigError::Cmdlet { .. }), "{err:?}");
    assert!(text.contains("withheld"), "{text}");
    for piece in PASSWORD.lines() {
        assert!(!text.contains(piece.trim()), "{text}");
    }
}

#[test]
fn without_a_usable_result_the_run_says_why() {
    let request = Request::use_gmsa("gmsa$");
    let protocol_error = |r| matches!(r, Err(AgentConfigError::Protocol(_)));
    assert!(protocol_error(run_outcome(&request, 1, &[], &["boom"])));
    let err = run_outcome(&request, 3, &[], &["Exception: boom"]).unwrap_err();
    assert!(err.to_string().contains("exit code 3") && err.to_string().contains("boom"));
    let twice = result_line(&json!({"ok": true}));
    assert!(protocol_error(run_outcome(
        &request,
        0,
        &[twice.clone(), twice.clone()],
        &[]
    )));
    assert!(protocol_error(run_outcome(&request, 1, &[twice], &[])));
    assert!(protocol_error(run_outcome(
        &request,
        0,
        &[b"PROVD-RESULT %%%".to_vec()],
        &[]
    )));
    let not_json = format!("PROVD-RESULT {}", base64_of("not json")).into_bytes();
    assert!(protocol_error(run_outcome(&request, 0, &[not_json], &[])));
    let no_record = result_line(&json!({"ok": false}));
    assert!(protocol_error(run_outcome(&request, 1, &[no_record], &[])));
    assert!(matches!(
        run_outcome(&request, EXIT_SCRIPT_MISSING, &[], &[]),
        Err(AgentConfigError::Io(_))
    ));
    let refused = run_outcome(
        &request,
        1,
        &[],
        &[
            "File C:\\ProgramData\\provd\\scripts\\use-gmsa.ps1 cannot be loaded because running scripts is disabled on this system.",
            "    + FullyQualifiedErrorId : UnauthorizedAccess",
        ],
    );
    assert!(
        matches!(refused, Err(AgentConfigError::ExecutionPolicy { .. })),
        "{refused:?}"
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn the_error_record_tolerates_nulls() {
    let record: ScriptError =
        serde_json::from_value(json!({"message": "m", "command": null, "category": null})).unwrap();
    assert_eq!(record.message, "m");
    assert_eq!(record.command, "");
}

#[test]
fn domains_are_read_from_any_shape_the_cmdlet_may_give() {
    let data = |v: serde_json::Value| v.as_object().unwrap().clone();
    let list = protocol::domains(data(json!({"domains": [
        {"DomainName": "lab.example.test", "PreferredDomainControllers": ["dc2.lab.example.test", "dc1.lab.example.test"], "Id": 7},
        {"Name": "other.example.test", "PreferredDomainControllers": "dc9.other.example.test dc8.other.example.test"},
    ]})))
    .unwrap();
    assert_eq!(list[0].domain, "lab.example.test");
    assert_eq!(
        list[0].preferred_dcs,
        ["dc2.lab.example.test", "dc1.lab.example.test"]
    );
    assert_eq!(list[0].raw["Id"], "7");
    assert_eq!(
        list[1].preferred_dcs,
        ["dc9.other.example.test", "dc8.other.example.test"]
    );
    // ConvertTo-Json writes a one-element list as the element.
    let one = protocol::domains(data(json!({"domains": {"DomainName": "a.test"}}))).unwrap();
    assert_eq!(one.len(), 1);
    assert!(
        protocol::domains(data(json!({"domains": null})))
            .unwrap()
            .is_empty()
    );
    assert!(protocol::domains(data(json!({"domains": [{"Id": 1}]}))).is_err());
    assert!(protocol::domains(data(json!({"domains": "x"}))).is_err());
}
