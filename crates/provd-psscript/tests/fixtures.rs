//! Each rule fires: one fixture per rule (`tests/fixtures/<rule>.ps1`), each the valid
//! `ok.ps1` with one thing changed, refused with that rule (or that binder error).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::path::PathBuf;

use provd_psscript::{BindError, ParseError, Rule, ScriptPlan, Table, bind, extract};

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.ps1"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixture's rule violations (it must parse).
fn violations(name: &str) -> Vec<Rule> {
    match extract(&fixture(name)) {
        Err(ParseError::Rules(v)) => v.into_iter().map(|v| v.rule).collect(),
        other => panic!("{name}: expected rule violations, got {other:?}"),
    }
}

/// The first binder error of a fixture that passes the rules.
fn bind_error(name: &str) -> BindError {
    let plan = extract(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let table = Table::load().unwrap();
    plan.calls
        .iter()
        .find_map(|c| bind(&table, c).err())
        .unwrap_or_else(|| panic!("{name}: every call bound"))
}

#[test]
fn the_baseline_fixture_passes_and_binds() {
    let plan: ScriptPlan = extract(&fixture("ok")).unwrap();
    let table = Table::load().unwrap();
    for call in &plan.calls {
        bind(&table, call).unwrap_or_else(|e| panic!("line {}: {e}", call.line));
    }
    assert_eq!(plan.header.name, "ok");
    assert_eq!(plan.derived_locals, ["securePassword", "credential"]);
}

#[test]
fn each_rule_fires_on_its_fixture() {
    let cases = [
        ("no-header", Rule::Header),
        ("non-ascii", Rule::NonAscii),
        ("invoke-operator", Rule::InvokeOperator),
        ("dot-source", Rule::DotSource),
        ("invoke-expression", Rule::InvokeExpression),
        ("iex", Rule::InvokeExpression),
        ("splatting", Rule::Splatting),
        ("scriptblock-create", Rule::ScriptBlockCreate),
        ("dynamic-code", Rule::DynamicCode),
        ("add-type", Rule::AddType),
        ("execution-policy", Rule::ExecutionPolicy),
        ("redirection", Rule::Redirection),
        ("control-flow", Rule::ControlFlow),
        ("argument-shape", Rule::ArgumentShape),
        ("module-not-literal", Rule::ModuleNotLiteral),
        ("request-field", Rule::RequestField),
        ("request-in-string", Rule::RequestInString),
        ("request-in-expression", Rule::RequestInExpression),
    ];
    for (name, rule) in cases {
        let found = violations(name);
        assert!(found.contains(&rule), "{name}: {rule:?} not in {found:?}");
    }
}

#[test]
fn a_syntax_error_refuses_the_whole_script() {
    // The shared note's case: a missing `)` that, in the recovered tree, moves
    // -PreferredDomainControllers onto New-Object.
    match extract(&fixture("parse-error")) {
        Err(ParseError::Syntax { line, .. }) => assert!(line >= 1),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn an_unknown_parameter_is_powershells_named_parameter_not_found() {
    let e = bind_error("unknown-parameter");
    assert_eq!(
        e.fully_qualified_error_id(),
        "NamedParameterNotFound,Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain"
    );
    assert_eq!(
        e.to_string(),
        "A parameter cannot be found that matches parameter name 'DomainController'."
    );
    assert_eq!(e.category(), "InvalidArgument");
    assert_eq!(
        e.exception_type(),
        "System.Management.Automation.ParameterBindingException"
    );
}

#[test]
fn a_missing_mandatory_parameter_fails_as_under_noninteractive() {
    let e = bind_error("missing-mandatory");
    assert_eq!(
        e.fully_qualified_error_id(),
        "MissingMandatoryParameter,Microsoft.CloudSync.Powershell.AddAADCloudSyncADDomain"
    );
    assert_eq!(
        e.to_string(),
        "Cannot process command because of one or more missing mandatory parameters: Credential."
    );
}

#[test]
fn parameters_of_two_sets_are_an_ambiguous_parameter_set() {
    let e = bind_error("ambiguous-parameter-set");
    assert_eq!(
        e.fully_qualified_error_id(),
        "AmbiguousParameterSet,Microsoft.CloudSync.Powershell.ConnectAADCloudSyncAzureAD"
    );
    assert_eq!(
        e.to_string(),
        "Parameter set cannot be resolved using the specified named parameters."
    );
}

#[test]
fn a_positional_argument_and_an_unknown_command_are_refused() {
    let e = bind_error("positional-argument");
    assert!(
        e.fully_qualified_error_id()
            .starts_with("PositionalParameterNotFound,"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "A positional parameter cannot be found that accepts argument '$domainName'."
    );
    let e = bind_error("unknown-command");
    assert_eq!(e.fully_qualified_error_id(), "CommandNotFoundException");
    assert!(
        e.to_string()
            .starts_with("The term 'Start-Process' is not recognized")
    );
}
