//! What passes between provd and a module script, platform-neutral so it
//! is tested everywhere.
//!
//! - stdin: base64 of the UTF-8 JSON request, then end of file. Base64
//!   because Windows PowerShell 5.1 decodes stdin in the console's code
//!   page; ASCII survives every code page, and the script decodes the UTF-8
//!   itself. Secrets travel only here: never in arguments or script text.
//! - stdout: one line `PROVD-RESULT <base64 of the UTF-8 JSON result>`,
//!   `{"ok": true, …}` or `{"ok": false, "error": {message,
//!   fullyQualifiedErrorId, category, exceptionType, command}}`. Every
//!   other stdout and stderr line is transcript (`transcript.rs`).

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::classify::{self, ScriptError};
use super::transcript::Redactor;
use super::{AgentConfigError, AgentDomain, ModuleInfo, TenantConnection};
use crate::model::BindCredential;

/// Starts the one stdout line that carries the result.
pub const RESULT_PREFIX: &[u8] = b"PROVD-RESULT ";

/// Windows PowerShell 5.1's exit code when the `-File` script does not
/// exist (0xFFFD0000; from memory, to confirm on a real server).
pub const EXIT_SCRIPT_MISSING: i32 = -196_608;

/// One script run's input: which script, its stdin, and the secrets the
/// output is redacted against.
pub struct Request {
    pub script: &'static str,
    /// Only reads the host (the runner gives it a shorter time limit).
    pub read_only: bool,
    stdin: SecretString,
    redactor: Redactor,
}

impl Request {
    pub fn stdin(&self) -> &SecretString {
        &self.stdin
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn module_info() -> Request {
        Self::new("module-info", true, &Empty {}, &[])
    }

    pub fn list_domains() -> Request {
        Self::new("list-domains", true, &Empty {}, &[])
    }

    /// `verbose-trace-start` or, with `on` false, `verbose-trace-stop`. Not
    /// read-only: each restarts the agent service.
    pub fn verbose_trace(on: bool) -> Request {
        let script = if on {
            "verbose-trace-start"
        } else {
            "verbose-trace-stop"
        };
        Self::new(script, false, &Empty {}, &[])
    }

    pub fn connect_tenant(connection: &TenantConnection) -> Request {
        let token = connection.access_token.expose_secret();
        let body = Connection::of(connection, token);
        Self::new("connect-tenant", false, &body, &[token])
    }

    pub fn use_gmsa(sam_account_name: &str) -> Request {
        let body = UseGmsa {
            custom_gmsa_name: sam_account_name,
        };
        Self::new("use-gmsa", false, &body, &[])
    }

    pub fn add_domain(
        domain: &str,
        credential: &BindCredential,
        preferred_dcs: &[String],
    ) -> Request {
        // Validation lets only a password credential reach the agent's
        // module; a Kerberos one would send an empty password and fail there.
        let password = credential
            .password()
            .map(|p| p.expose_secret())
            .unwrap_or_default();
        let body = AddDomain {
            domain_name: domain,
            user_name: &credential.username,
            password,
            preferred_domain_controllers: preferred_dcs,
        };
        Self::new("add-domain", false, &body, &[password])
    }

    pub fn set_writeback(enable: bool, connection: &TenantConnection) -> Request {
        let token = connection.access_token.expose_secret();
        let body = SetWriteback {
            enable,
            connection: Connection::of(connection, token),
        };
        Self::new("set-writeback", false, &body, &[token])
    }

    fn new<T: Serialize>(
        script: &'static str,
        read_only: bool,
        body: &T,
        secrets: &[&str],
    ) -> Request {
        // Sized first, so the buffer holding secrets never grows (a grown
        // buffer leaves an unzeroized copy behind). Serializing these
        // structs of strings cannot fail.
        let mut counter = Counter(0);
        let _ = serde_json::to_writer(&mut counter, body);
        let mut json = Zeroizing::new(Vec::with_capacity(counter.0));
        let _ = serde_json::to_writer(&mut *json, body);
        Request {
            script,
            read_only,
            stdin: SecretString::from(STANDARD.encode(json.as_slice())),
            redactor: Redactor::new(secrets.iter().copied()),
        }
    }
}

/// Counts what would be written.
struct Counter(usize);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Connection<'a> {
    access_token: &'a str,
    tenant_id: &'a str,
    user_principal_name: &'a str,
}

impl<'a> Connection<'a> {
    fn of(connection: &'a TenantConnection, token: &'a str) -> Self {
        Self {
            access_token: token,
            tenant_id: &connection.tenant_id,
            user_principal_name: &connection.user_principal_name,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UseGmsa<'a> {
    custom_gmsa_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AddDomain<'a> {
    domain_name: &'a str,
    user_name: &'a str,
    password: &'a str,
    preferred_domain_controllers: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SetWriteback<'a> {
    enable: bool,
    #[serde(flatten)]
    connection: Connection<'a>,
}

#[derive(Deserialize)]
struct ScriptResult {
    ok: bool,
    #[serde(default)]
    error: Option<ScriptError>,
    #[serde(flatten)]
    data: Map<String, Value>,
}

/// The base64 part of a result line, if `line` is one.
pub fn result_payload(line: &[u8]) -> Option<&[u8]> {
    line.strip_prefix(RESULT_PREFIX).map(<[u8]>::trim_ascii)
}

/// How a finished run went: from its result lines (the payloads), exit
/// code and the last (redacted) stderr lines. A success's fields come back
/// for the action to read.
pub fn outcome(
    request: &Request,
    exit_code: Option<i32>,
    results: &[Vec<u8>],
    stderr_tail: &[String],
) -> Result<Map<String, Value>, AgentConfigError> {
    let script = request.script;
    let code = exit_code.map_or_else(|| "none".to_owned(), |c| c.to_string());
    let payload = match results {
        [] => return Err(no_result(script, exit_code, &code, stderr_tail)),
        [one] => one,
        many => {
            return Err(AgentConfigError::Protocol(format!(
                "{script} wrote {} result lines",
                many.len()
            )));
        }
    };
    let result = decode(payload)
        .map_err(|e| AgentConfigError::Protocol(format!("{script}: unreadable result ({e})")))?;
    match (result.ok, result.error) {
        (true, _) if exit_code == Some(0) => Ok(result.data),
        (true, _) => Err(AgentConfigError::Protocol(format!(
            "{script} reported success but exited with code {code}"
        ))),
        (false, Some(error)) => Err(classify::classify(&scrub(request.redactor(), error))),
        (false, None) => Err(AgentConfigError::Protocol(format!(
            "{script} reported a failure without its error record"
        ))),
    }
}

fn decode(payload: &[u8]) -> Result<ScriptResult, String> {
    let json = STANDARD
        .decode(payload)
        .map_err(|e| format!("not base64: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("not the result JSON: {e}"))
}

/// No result line: PowerShell refused or never found the script, or the
/// script died before answering.
fn no_result(
    script: &str,
    exit_code: Option<i32>,
    code: &str,
    stderr_tail: &[String],
) -> AgentConfigError {
    let stderr = stderr_tail.join("\n");
    if let Some(refused) = classify::refused_script(&stderr) {
        return refused;
    }
    if exit_code == Some(EXIT_SCRIPT_MISSING) {
        return AgentConfigError::Io(format!(
            "PowerShell found no script file for {script} (exit code {code})"
        ));
    }
    let said = if stderr.is_empty() {
        "no error output".to_owned()
    } else {
        format!("its last error output: {}", stderr_tail.join(" | "))
    };
    AgentConfigError::Protocol(format!(
        "{script} ended with exit code {code} and no result line; {said}"
    ))
}

/// The error record with any line holding a secret withheld.
fn scrub(redactor: &Redactor, error: ScriptError) -> ScriptError {
    ScriptError {
        message: redactor.scrub(&error.message),
        fully_qualified_error_id: redactor.scrub(&error.fully_qualified_error_id),
        category: redactor.scrub(&error.category),
        exception_type: redactor.scrub(&error.exception_type),
        command: redactor.scrub(&error.command),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModuleInfoWire {
    module_path: String,
    module_present: bool,
    #[serde(default)]
    module_version: Option<String>,
    #[serde(default)]
    execution_policies: Vec<PolicyWire>,
    #[serde(default)]
    registered_tenant: Option<String>,
}

#[derive(Deserialize)]
struct PolicyWire {
    scope: String,
    policy: String,
}

/// module-info's answer: `modulePath`, `modulePresent`, `moduleVersion`,
/// `executionPolicies` (`[{scope, policy}]`), `registeredTenant`.
pub fn module_info(data: Map<String, Value>) -> Result<ModuleInfo, AgentConfigError> {
    let wire: ModuleInfoWire = serde_json::from_value(Value::Object(data))
        .map_err(|e| AgentConfigError::Protocol(format!("module-info: {e}")))?;
    let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Ok(ModuleInfo {
        dll_path: wire.module_path,
        version: present(wire.module_version.filter(|_| wire.module_present)),
        execution_policies: wire
            .execution_policies
            .into_iter()
            .map(|p| (p.scope, p.policy))
            .collect(),
        registered_tenant: present(wire.registered_tenant),
    })
}

/// list-domains' answer: `domains`, each object's properties as text. The
/// cmdlet's output is undocumented; the name is `DomainName` (or `Name`),
/// the DCs `PreferredDomainControllers` (a list, or text separated by
/// spaces, commas or semicolons).
pub fn domains(mut data: Map<String, Value>) -> Result<Vec<AgentDomain>, AgentConfigError> {
    let list = match data.remove("domains") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list,
        // ConvertTo-Json writes a one-element array as the element.
        Some(one @ Value::Object(_)) => vec![one],
        Some(other) => {
            return Err(AgentConfigError::Protocol(format!(
                "list-domains: domains is {other}, not a list"
            )));
        }
    };
    list.into_iter()
        .map(|item| {
            let Value::Object(props) = item else {
                return Err(AgentConfigError::Protocol(format!(
                    "list-domains: {item} is not an object"
                )));
            };
            let preferred_dcs = match props.get("PreferredDomainControllers") {
                Some(Value::Array(dcs)) => dcs.iter().map(as_text).collect(),
                Some(other) => as_text(other)
                    .split([' ', ',', ';'])
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                None => Vec::new(),
            };
            let raw: std::collections::BTreeMap<String, String> =
                props.iter().map(|(k, v)| (k.clone(), as_text(v))).collect();
            let domain = ["DomainName", "Name"]
                .iter()
                .find_map(|k| raw.get(*k).filter(|v| !v.is_empty()))
                .cloned()
                .ok_or_else(|| {
                    AgentConfigError::Protocol(format!(
                        "list-domains: an entry without DomainName or Name ({})",
                        raw.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
            Ok(AgentDomain {
                domain,
                preferred_dcs,
                raw,
            })
        })
        .collect()
}

fn as_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(as_text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
