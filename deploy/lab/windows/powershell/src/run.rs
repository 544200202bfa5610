//! Running a recognised script's plan: the request read from stdin into the script's
//! locals, the one `if ($local.Count -gt 0)` branch decided, each call's binding (from
//! build time) and its values' types checked, the agent's cmdlets handed to the [`Lab`],
//! and the result object the script would write, or the error record its `catch` would.
//!
//! What it models of the scripts (their rules, design note 3.2, make this all there is):
//! `$request = … [Console]::In.ReadToEnd() … | ConvertFrom-Json`, `$x = [type]$request.f`,
//! `ConvertTo-SecureString -String $x -AsPlainText -Force`, `New-Object -TypeName
//! System.Management.Automation.PSCredential -ArgumentList $user, $secure`, `Import-Module
//! -Name '<literal>'`, the agent cmdlets with locals or literals as arguments, and the
//! read-only built-ins of `module-info` and `list-domains`, whose results are built per
//! script ([`result`]). `$ErrorActionPreference = 'Stop'`: the first error goes to the
//! `catch`; outside `try` it ends the script without a result line.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value as Json, json};

use crate::errors;
use crate::plan::{ArgValue, Bound, BuiltScript, CallStep, Failure, Plan, Step};
use crate::value::{self, Value};

/// The module whose cmdlets the [`Lab`] performs.
pub const AGENT_MODULE: &str = "Microsoft.CloudSync.PowerShell";
/// Microsoft's AADCloudSyncTools (the verbose-trace commands), performed by the [`Lab`] too.
pub const TOOLS_MODULE: &str = "AADCloudSyncTools";

/// One agent cmdlet call, bound and converted.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    /// As the table spells it.
    pub cmdlet: String,
    pub class: String,
    pub parameter_set: String,
    pub args: Vec<(String, Value)>,
}

impl Invocation {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.args
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn string(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The error record for a failure of this cmdlet (see [`errors::cmdlet_failed`]).
    pub fn failed(&self, message: impl Into<String>) -> Failure {
        errors::cmdlet_failed(message, &self.class, &self.cmdlet)
    }
}

/// What a cmdlet writes to the pipeline: objects of named properties.
pub type Output = Map<String, Json>;

/// The host the cmdlets act on: the Wine lab (`lab/`), or a fake in the tests.
pub trait Lab {
    /// `Import-Module -Name <path>`.
    fn import_module(&mut self, path: &str) -> Result<(), Failure>;
    /// An agent cmdlet.
    fn invoke(&mut self, call: &Invocation) -> Result<Vec<Output>, Failure>;
    /// `Get-Item -LiteralPath <path>`: `None` when absent, else its `VersionInfo.FileVersion`.
    fn file(&self, path: &str) -> Option<Option<String>>;
    /// `Get-ExecutionPolicy -List`: (scope, policy) in PowerShell's order.
    fn execution_policies(&self) -> Vec<(String, String)>;
    /// `Get-ItemProperty -LiteralPath HKLM:\… -Name <name>`.
    fn registry_value(&self, path: &str, name: &str) -> Option<String>;
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The object the script writes as `PROVD-RESULT <base64 JSON>` (none when it died
    /// outside its `try`).
    pub result: Option<Json>,
    pub exit_code: i32,
    /// PowerShell's error text when the script died outside its `try`.
    pub stderr: String,
}

impl Outcome {
    /// The stdout line, as `[Console]::Out.WriteLine` writes it.
    pub fn result_line(&self) -> Option<String> {
        let json = self.result.as_ref()?;
        Some(format!(
            "PROVD-RESULT {}\r\n",
            STANDARD.encode(json.to_string())
        ))
    }
}

#[derive(Default)]
struct Session {
    locals: Vec<(String, Value)>,
    imported: Vec<String>,
    /// Each agent cmdlet's output, by the table's name.
    outputs: Vec<(String, Vec<Output>)>,
}

impl Session {
    fn get(&self, name: &str) -> Result<&Value, Failure> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .ok_or_else(|| errors::variable_not_set(name))
    }

    fn set(&mut self, name: &str, value: Value) {
        self.locals.push((name.to_owned(), value));
    }
}

/// Runs `plan` with `stdin` as the script's standard input.
pub fn run(script: &BuiltScript, plan: &Plan, stdin: &[u8], lab: &mut dyn Lab) -> Outcome {
    let mut session = Session::default();
    for step in &plan.steps {
        let (line, in_try, done) = match step {
            Step::Local {
                line,
                name,
                field,
                ty,
                in_try,
            } => (*line, *in_try, local(&mut session, name, field, ty)),
            Step::Call(call) => (
                call.line,
                call.in_try,
                execute(&mut session, call, stdin, lab),
            ),
        };
        if let Err(failure) = done {
            return if in_try {
                Outcome {
                    result: Some(json!({
                        "ok": false,
                        "error": {
                            "message": failure.message,
                            "fullyQualifiedErrorId": failure.fully_qualified_error_id,
                            "category": failure.category,
                            "exceptionType": failure.exception_type,
                            "command": failure.command,
                        }
                    })),
                    exit_code: 1,
                    stderr: String::new(),
                }
            } else {
                Outcome {
                    result: None,
                    exit_code: 1,
                    stderr: errors::console_text(&failure, &format!("{}.ps1", script.name), line),
                }
            };
        }
    }
    Outcome {
        result: Some(result(script, plan, &session, lab)),
        exit_code: 0,
        stderr: String::new(),
    }
}

fn local(session: &mut Session, name: &str, field: &str, ty: &str) -> Result<(), Failure> {
    let request = session.get("request")?;
    let json = value::property(request, field)?;
    session.set(name, value::cast(&json, ty));
    Ok(())
}

/// The read-only built-ins whose effect is only in the result (`result`).
const READ_ONLY: [&str; 6] = [
    "Set-StrictMode",
    "ConvertTo-Json",
    "Get-Item",
    "Get-ItemProperty",
    "Get-ExecutionPolicy",
    "ForEach-Object",
];

fn execute(
    session: &mut Session,
    call: &CallStep,
    stdin: &[u8],
    lab: &mut dyn Lab,
) -> Result<(), Failure> {
    // Script-block bodies run per input object: their work is in `result`.
    if call.in_script_block {
        return Ok(());
    }
    if let Some((local, non_empty)) = &call.branch
        && (session.get(local)?.count() > 0) != *non_empty
    {
        return Ok(());
    }
    let bound = call.binding.as_ref().map_err(Clone::clone)?;
    match bound.cmdlet.as_str() {
        "ConvertFrom-Json" => {
            let request = decode(stdin)?;
            session.set(call.assigned_to.as_deref().unwrap_or("request"), request);
            Ok(())
        }
        "ConvertTo-SecureString" => {
            let param = parameter(bound, "String")?;
            let text = value::bind_value(
                param,
                resolve(session, &param.value)?,
                &bound.class,
                &bound.cmdlet,
            )?;
            if let Some(target) = &call.assigned_to {
                session.set(target, Value::SecureString(text.shown()));
            }
            Ok(())
        }
        "New-Object" => {
            let credential = new_credential(session, bound)?;
            if let Some(target) = &call.assigned_to {
                session.set(target, credential);
            }
            Ok(())
        }
        "Import-Module" => match &parameter(bound, "Name")?.value {
            ArgValue::Literal(path) => {
                lab.import_module(path)?;
                session.imported.push(path.to_ascii_lowercase());
                Ok(())
            }
            other => Err(errors::not_modelled(
                "Import-Module",
                &format!("Import-Module -Name {other:?}"),
            )),
        },
        name if READ_ONLY.contains(&name) => Ok(()),
        _ if bound.module == AGENT_MODULE || bound.module == TOOLS_MODULE => {
            // A command is known once its own module was imported (the agent's module is
            // the only one whose path is not a folder named like it).
            let tools = |path: &String| path.ends_with(&TOOLS_MODULE.to_ascii_lowercase());
            let loaded = if bound.module == TOOLS_MODULE {
                session.imported.iter().any(tools)
            } else {
                session.imported.iter().any(|p| !tools(p))
            };
            if !loaded {
                return Err(errors::command_not_found(&call.command));
            }
            let mut args = Vec::new();
            for param in &bound.parameters {
                let v = resolve(session, &param.value)?;
                args.push((
                    param.name.clone(),
                    value::bind_value(param, v, &bound.class, &bound.cmdlet)?,
                ));
            }
            let invocation = Invocation {
                cmdlet: bound.cmdlet.clone(),
                class: bound.class.clone(),
                parameter_set: bound.parameter_set.clone(),
                args,
            };
            let output = lab.invoke(&invocation)?;
            session.outputs.push((bound.cmdlet.clone(), output));
            Ok(())
        }
        other => Err(errors::not_modelled(other, other)),
    }
}

/// `[Text.Encoding]::UTF8.GetString([Convert]::FromBase64String([Console]::In.ReadToEnd())) | ConvertFrom-Json`.
fn decode(stdin: &[u8]) -> Result<Value, Failure> {
    // FromBase64String skips white space.
    let text: Vec<u8> = stdin
        .iter()
        .copied()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    let bytes = STANDARD.decode(&text).map_err(|_| errors::not_base64())?;
    let text = String::from_utf8_lossy(&bytes);
    // 5.1's ConvertFrom-Json gives nothing for empty input [I].
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str::<Json>(&text)
        .map(Value::Json)
        .map_err(|_| {
            let token: String = text
                .trim_start()
                .chars()
                .take_while(|c| !c.is_whitespace())
                .take(20)
                .collect();
            errors::not_json(&token)
        })
}

fn parameter<'b>(bound: &'b Bound, name: &str) -> Result<&'b crate::plan::BoundParam, Failure> {
    bound
        .parameters
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            errors::not_modelled(&bound.cmdlet, &format!("{} without -{name}", bound.cmdlet))
        })
}

fn resolve(session: &Session, arg: &ArgValue) -> Result<Value, Failure> {
    match arg {
        ArgValue::Local(name) => session.get(name).cloned(),
        ArgValue::Literal(text) => Ok(Value::String(text.clone())),
        ArgValue::Bool(b) => Ok(Value::Bool(*b)),
        ArgValue::Null => Ok(Value::Null),
        ArgValue::List(items) => {
            let mut strings = Vec::new();
            for item in items {
                match resolve(session, item)? {
                    Value::String(s) => strings.push(s),
                    other => {
                        return Err(errors::not_modelled(
                            "",
                            &format!("a list holding {}", other.type_name()),
                        ));
                    }
                }
            }
            Ok(Value::Strings(strings))
        }
        ArgValue::Other(text) => Err(errors::not_modelled("", &format!("the expression {text}"))),
    }
}

/// `New-Object -TypeName System.Management.Automation.PSCredential -ArgumentList $user, $secure`.
fn new_credential(session: &Session, bound: &Bound) -> Result<Value, Failure> {
    let type_name = match &parameter(bound, "TypeName")?.value {
        ArgValue::Literal(t) => t.clone(),
        other => format!("{other:?}"),
    };
    if !type_name.eq_ignore_ascii_case("System.Management.Automation.PSCredential") {
        return Err(errors::not_modelled(
            "New-Object",
            &format!("New-Object -TypeName {type_name}"),
        ));
    }
    let ArgValue::List(items) = &parameter(bound, "ArgumentList")?.value else {
        return Err(errors::not_modelled(
            "New-Object",
            "a PSCredential without two arguments",
        ));
    };
    let [user, secure] = items.as_slice() else {
        return Err(errors::not_modelled(
            "New-Object",
            "a PSCredential without two arguments",
        ));
    };
    let user = resolve(session, user)?.shown();
    let Value::SecureString(password) = resolve(session, secure)? else {
        return Err(errors::not_modelled(
            "New-Object",
            "a PSCredential whose password is no SecureString",
        ));
    };
    if user.is_empty() {
        return Err(errors::credential_user_name());
    }
    Ok(Value::Credential { user, password })
}

/// The literal argument of `cmdlet -param` in the plan.
fn literal<'p>(plan: &'p Plan, cmdlet: &str, param: &str) -> Option<&'p str> {
    plan.steps.iter().find_map(|step| match step {
        Step::Call(CallStep {
            binding: Ok(bound), ..
        }) if bound.cmdlet == cmdlet => bound.parameters.iter().find_map(|p| match &p.value {
            ArgValue::Literal(v) if p.name == param => Some(v.as_str()),
            _ => None,
        }),
        _ => None,
    })
}

/// The result object the script builds on success (scripts.rs's table in provd: `ok`, and
/// module-info's and list-domains' own fields).
fn result(script: &BuiltScript, plan: &Plan, session: &Session, lab: &dyn Lab) -> Json {
    let mut out = Map::new();
    out.insert("ok".into(), Json::Bool(true));
    match script.name.as_str() {
        "module-info" => {
            let path = literal(plan, "Get-Item", "LiteralPath").unwrap_or_default();
            let file = lab.file(path);
            out.insert("modulePath".into(), json!(path));
            out.insert("modulePresent".into(), json!(file.is_some()));
            out.insert("moduleVersion".into(), json!(file.flatten()));
            let policies: Vec<Json> = lab
                .execution_policies()
                .into_iter()
                .map(|(scope, policy)| json!({ "scope": scope, "policy": policy }))
                .collect();
            out.insert("executionPolicies".into(), Json::Array(policies));
            let key = literal(plan, "Get-ItemProperty", "LiteralPath").unwrap_or_default();
            let name = literal(plan, "Get-ItemProperty", "Name").unwrap_or_default();
            out.insert(
                "registeredTenant".into(),
                json!(lab.registry_value(key, name)),
            );
        }
        "list-domains" => {
            // `$properties[$_.Name] = "$($_.Value)"`: every property as a string.
            let domains: Vec<Json> = session
                .outputs
                .iter()
                .filter(|(cmdlet, _)| cmdlet == "Get-AADCloudSyncDomains")
                .flat_map(|(_, objects)| objects)
                .map(|object| {
                    Json::Object(
                        object
                            .iter()
                            .map(|(k, v)| (k.clone(), Json::String(value::to_string(v))))
                            .collect(),
                    )
                })
                .collect();
            out.insert("domains".into(), Json::Array(domains));
        }
        _ => {}
    }
    Json::Object(out)
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
