//! The job's schema: who is in scope and whether password hashes flow.
//! `GET` and `PUT /servicePrincipals/{id}/synchronization/jobs/{id}/schema`
//! (the whole schema;
//! <https://learn.microsoft.com/graph/api/synchronization-synchronizationschema-update?view=graph-rest-beta>),
//! the rule's `containerFilter` / `groupFilter` (mutually exclusive, beta:
//! <https://learn.microsoft.com/graph/api/resources/synchronization-containerfilter?view=graph-rest-beta>,
//! `…-groupfilter`), and the how-to's `CredentialData` mapping
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-inbound-synch-ms-graph>,
//! "Enable Sync password hashes on configuration blade").
//!
//! The schema is edited as JSON so that every field provd does not know
//! goes back as it came. Object mappings are matched by `sourceObjectName`
//! (their names differ between editions [I]).

use bytes::Bytes;
use serde_json::{Value, json};

use super::super::http::HttpTenant;
use super::super::{TenantError, Tokens};
use super::SyncCall;
use super::call::{parse, segment};
use crate::model::{JobSchema, SyncScope};

/// Graph's limit on the scoping configuration ("4 MB in character length",
/// how-to-prerequisites), applied to the whole schema sent [I].
pub(super) const SCHEMA_LIMIT: usize = 4 * 1024 * 1024;

/// The object mappings that get the password hash mapping (the how-to's
/// "Provision Active Directory Users" and "… inetOrgPersons").
const HASHED_OBJECTS: [&str; 2] = ["user", "inetOrgPerson"];

/// The how-to's mapping, as printed.
fn credential_data() -> Value {
    json!({
        "defaultValue": null,
        "exportMissingReferences": false,
        "flowBehavior": "FlowWhenChanged",
        "flowType": "Always",
        "matchingPriority": 0,
        "targetAttributeName": "CredentialData",
        "source": {"expression": "[PasswordHash]", "name": "PasswordHash", "type": "Attribute", "parameters": []}
    })
}

fn bad(what: &str) -> TenantError {
    TenantError::Protocol(format!("{}: {what}", SyncCall::ReadSchema.request()))
}

fn rules(schema: &mut Value) -> Result<&mut Vec<Value>, TenantError> {
    schema
        .get_mut("synchronizationRules")
        .and_then(Value::as_array_mut)
        .filter(|rules| !rules.is_empty())
        .ok_or_else(|| bad("no synchronizationRules"))
}

/// `rule.filter.field` as strings; absent or null is empty.
fn list(rule: &Value, filter: &str, field: &str) -> Result<Vec<String>, TenantError> {
    let Some(items) = rule.get(filter).and_then(|f| f.get(field)) else {
        return Ok(Vec::new());
    };
    let items = match items {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err(bad(&format!("{filter}.{field} is not a list"))),
    };
    items
        .iter()
        .map(|i| i.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| bad(&format!("{filter}.{field} holds a non-string")))
}

/// Sets `rule.filter.field`; an empty list on an absent filter adds none.
fn set_list(rule: &mut Value, filter: &str, field: &str, items: &[String]) {
    let Some(rule) = rule.as_object_mut() else {
        return;
    };
    let absent = rule.get(filter).is_none_or(Value::is_null);
    if items.is_empty() && absent {
        return;
    }
    let object = rule.entry(filter).or_insert_with(|| json!({}));
    if !object.is_object() {
        *object = json!({});
    }
    object[field] = json!(items);
}

fn is_credential_data(mapping: &Value) -> bool {
    mapping
        .get("targetAttributeName")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("CredentialData"))
}

/// The rule's object mappings for `source` (e.g. `user`).
fn mappings<'a>(rule: &'a mut Value, source: &'a str) -> impl Iterator<Item = &'a mut Value> + 'a {
    let all = rule.get_mut("objectMappings").and_then(Value::as_array_mut);
    all.into_iter().flatten().filter(move |m| {
        m.get("sourceObjectName")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case(source))
    })
}

/// What the first rule says (the how-to edits `synchronizationRules[0]`).
pub(super) fn read(mut schema: Value) -> Result<JobSchema, TenantError> {
    let rule = &mut rules(&mut schema)?[0];
    let containers = list(rule, "containerFilter", "includedContainers")?;
    let groups = list(rule, "groupFilter", "includedGroups")?;
    let scope = match (containers.is_empty(), groups.is_empty()) {
        (false, _) => SyncScope::OrganizationalUnits(containers),
        (true, false) => SyncScope::SecurityGroups(groups),
        (true, true) => SyncScope::AllUsers,
    };
    let password_hash_mapping = mappings(rule, "user").any(|m| {
        m.get("attributeMappings")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(is_credential_data))
    });
    Ok(JobSchema {
        scope,
        password_hash_mapping,
    })
}

/// Sets the scope on every rule (the other filter emptied: never both),
/// and adds (once) or removes the `CredentialData` mapping on the first
/// rule's user and inetOrgPerson mappings.
pub(super) fn edit(schema: &mut Value, scope: &SyncScope, hashes: bool) -> Result<(), TenantError> {
    let (containers, groups): (&[String], &[String]) = match scope {
        SyncScope::AllUsers => (&[], &[]),
        SyncScope::OrganizationalUnits(ous) => (ous, &[]),
        SyncScope::SecurityGroups(groups) => (&[], groups),
    };
    let rules = rules(schema)?;
    for rule in rules.iter_mut() {
        set_list(rule, "containerFilter", "includedContainers", containers);
        set_list(rule, "groupFilter", "includedGroups", groups);
    }
    let rule = &mut rules[0];
    if hashes && mappings(rule, "user").next().is_none() {
        return Err(bad(
            "no object mapping for user: nowhere to map password hashes",
        ));
    }
    for source in HASHED_OBJECTS {
        for mapping in mappings(rule, source) {
            let Some(mapping) = mapping.as_object_mut() else {
                continue;
            };
            let attributes = mapping
                .entry("attributeMappings")
                .or_insert_with(|| json!([]));
            let Some(attributes) = attributes.as_array_mut() else {
                return Err(bad("attributeMappings is not a list"));
            };
            // "Backend doesn't dedupe for you" (the how-to).
            if !hashes {
                attributes.retain(|a| !is_credential_data(a));
            } else if !attributes.iter().any(is_credential_data) {
                attributes.push(credential_data());
            }
        }
    }
    Ok(())
}

/// The schema as sent; `TooLarge` above [`SCHEMA_LIMIT`].
pub(super) fn body(schema: &Value) -> Result<Bytes, TenantError> {
    let bytes = serde_json::to_vec(schema).unwrap_or_default();
    if bytes.len() > SCHEMA_LIMIT {
        return Err(TenantError::TooLarge {
            what: "the job schema".into(),
            bytes: bytes.len(),
            limit: SCHEMA_LIMIT,
        });
    }
    Ok(Bytes::from(bytes))
}

impl HttpTenant {
    fn schema_url(&self, sp: &str, job: &str) -> String {
        self.beta(&format!(
            "/servicePrincipals/{}/synchronization/jobs/{}/schema",
            segment(sp),
            segment(job)
        ))
    }

    async fn schema_json(&self, tokens: &Tokens, url: &str) -> Result<Value, TenantError> {
        let call = SyncCall::ReadSchema;
        let text = self.sync_send(tokens, call, url, None).await?;
        parse(call, &text)
    }

    pub async fn schema(
        &self,
        tokens: &Tokens,
        sp: &str,
        job: &str,
    ) -> Result<JobSchema, TenantError> {
        read(self.schema_json(tokens, &self.schema_url(sp, job)).await?)
    }

    /// GET, edit, PUT the whole schema back.
    pub async fn set_schema(
        &self,
        tokens: &Tokens,
        sp: &str,
        job: &str,
        scope: &SyncScope,
        password_hash_mapping: bool,
    ) -> Result<(), TenantError> {
        let url = self.schema_url(sp, job);
        let mut schema = self.schema_json(tokens, &url).await?;
        edit(&mut schema, scope, password_hash_mapping)?;
        let body = body(&schema)?;
        self.sync_send(tokens, SyncCall::PutSchema, &url, Some(body))
            .await
            .map(drop)
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
