//! The files the stand-in keeps in `<ProgramData>\ProvdLabAgent\` (the ProgramData known
//! folder, `C:\ProgramData`), where the lab agent (`deploy/lab/windows/agent`) reads them:
//!
//! * `identity.json` — what `Connect-AADCloudSyncAzureAD` registered: the agent's id,
//!   certificate and key, the service URL and CA, the tenant. The real module keeps its
//!   identity in its own places; in the lab the stand-in writes this file and the lab
//!   agent heartbeats with it (provd never writes it). The fields are those of the
//!   `registration.json` provd wrote before issue 14, plus `tenantId`.
//! * `domains.json` — `[{"domain", "preferredDcs": [..]}]`, what `Add-AADCloudSyncADDomain`
//!   configured; `Get-AADCloudSyncDomains` reads it and the lab agent reports it.
//! * `powershell-calls.jsonl` — one line per agent cmdlet run, for tests: the script, the
//!   cmdlet, its parameter set and arguments, secrets only as SHA-256 (a credential's
//!   `passwordSha256`, a token's `sha256`), so a test can prove a value arrived byte for
//!   byte without a secret on disk.
//!
//! Platform-neutral formats (the Windows side reads and writes the files).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::run::Invocation;
use crate::scripts::sha256_hex;
use crate::value::Value;

pub const DIR: &str = "ProvdLabAgent";
pub const IDENTITY: &str = "identity.json";
pub const DOMAINS: &str = "domains.json";
pub const CALLS: &str = "powershell-calls.jsonl";

/// `identity.json`. No `Debug`: it holds a private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub agent_id: String,
    pub machine_name: String,
    pub service_url: String,
    pub certificate_pem: String,
    pub private_key_pem: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_ca_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<u64>,
    pub tenant_id: String,
}

/// One entry of `domains.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub domain: String,
    #[serde(default)]
    pub preferred_dcs: Vec<String>,
}

/// `Add-AADCloudSyncADDomain` again for a known domain (names compare case-insensitively,
/// agent 1.1.1373.0) replaces its preferred DCs; a new one is appended.
pub fn upsert(domains: &mut Vec<Domain>, domain: &str, preferred_dcs: Vec<String>) {
    match domains
        .iter_mut()
        .find(|d| d.domain.eq_ignore_ascii_case(domain))
    {
        Some(known) => {
            known.domain = domain.to_owned();
            known.preferred_dcs = preferred_dcs;
        }
        None => domains.push(Domain {
            domain: domain.to_owned(),
            preferred_dcs,
        }),
    }
}

/// `Get-AADCloudSyncDomains`' objects [I: the real output is undocumented; provd reads
/// `DomainName` and `PreferredDomainControllers`].
pub fn domain_objects(domains: &[Domain]) -> Vec<Map<String, Json>> {
    domains
        .iter()
        .map(|d| {
            let mut object = Map::new();
            object.insert("DomainName".into(), json!(d.domain));
            object.insert("PreferredDomainControllers".into(), json!(d.preferred_dcs));
            object
        })
        .collect()
}

/// Parameters whose values are secrets: recorded as a hash only.
const SECRET: [&str; 1] = ["AccessToken"];

/// One `powershell-calls.jsonl` line.
pub fn call_record(script: &str, call: &Invocation, unix: u64) -> String {
    let args: Map<String, Json> = call
        .args
        .iter()
        .map(|(name, value)| {
            let recorded = match value {
                Value::Credential { user, password } => {
                    json!({ "userName": user, "passwordSha256": sha256_hex(password.as_bytes()) })
                }
                Value::String(s) if SECRET.iter().any(|n| n.eq_ignore_ascii_case(name)) => {
                    json!({ "sha256": sha256_hex(s.as_bytes()) })
                }
                Value::SecureString(s) => json!({ "sha256": sha256_hex(s.as_bytes()) }),
                Value::String(s) => json!(s),
                Value::Strings(v) => json!(v),
                Value::Bool(b) => json!(b),
                Value::Null => Json::Null,
                Value::Json(j) => j.clone(),
            };
            (name.clone(), recorded)
        })
        .collect();
    json!({
        "unix": unix,
        "script": script,
        "cmdlet": call.cmdlet,
        "parameterSet": call.parameter_set,
        "parameters": args,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_upsert_case_insensitively_and_list_as_objects() {
        let mut domains = Vec::new();
        upsert(&mut domains, "lab.example.test", vec!["dc1".into()]);
        upsert(&mut domains, "b.test", vec![]);
        upsert(
            &mut domains,
            "LAB.example.test",
            vec!["dc2".into(), "dc1".into()],
        );
        assert_eq!(
            domains,
            [
                Domain {
                    domain: "LAB.example.test".into(),
                    preferred_dcs: vec!["dc2".into(), "dc1".into()]
                },
                Domain {
                    domain: "b.test".into(),
                    preferred_dcs: vec![]
                },
            ]
        );
        let text = serde_json::to_string(&domains).unwrap();
        assert_eq!(
            text,
            r#"[{"domain":"LAB.example.test","preferredDcs":["dc2","dc1"]},{"domain":"b.test","preferredDcs":[]}]"#
        );
        assert_eq!(
            Json::Object(domain_objects(&domains)[0].clone()),
            json!({"DomainName": "LAB.example.test", "PreferredDomainControllers": ["dc2", "dc1"]})
        );
    }

    #[test]
    fn call_records_keep_no_secret() {
        let call = Invocation {
            cmdlet: "Add-AADCloudSyncADDomain".into(),
            class: "C".into(),
            parameter_set: "__AllParameterSets".into(),
            args: vec![
                (
                    "DomainName".into(),
                    Value::String("lab.example.test".into()),
                ),
                (
                    "Credential".into(),
                    Value::Credential {
                        user: "LAB\\a".into(),
                        password: "s3cret'\n".into(),
                    },
                ),
                ("AccessToken".into(), Value::String("eyJ0".into())),
            ],
        };
        let line = call_record("add-domain", &call, 7);
        assert!(!line.contains("s3cret") && !line.contains("eyJ0"), "{line}");
        let parsed: Json = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed["parameters"]["Credential"]["passwordSha256"],
            json!(sha256_hex(b"s3cret'\n"))
        );
        assert_eq!(
            parsed["parameters"]["AccessToken"]["sha256"],
            json!(sha256_hex(b"eyJ0"))
        );
        assert_eq!(
            parsed["parameters"]["DomainName"],
            json!("lab.example.test")
        );
        assert_eq!(parsed["script"], json!("add-domain"));

        let identity: Identity = serde_json::from_value(json!({
            "agentId": "a", "machineName": "m", "serviceUrl": "https://x", "certificatePem": "c",
            "privateKeyPem": "k", "tenantId": "t"
        }))
        .unwrap();
        let text = serde_json::to_string(&identity).unwrap();
        assert!(
            !text.contains("serviceCaPem") && text.contains("\"tenantId\":\"t\""),
            "{text}"
        );
    }
}
