//! Which fields of the contract are secrets, and a message's bytes without
//! them.
//!
//! [`SECRET_FIELDS`] is the one list (the redacted `Debug` impls in
//! `lib.rs` hide the same fields). [`canonical_without_secrets`] walks a
//! message's protobuf encoding with the descriptor set and drops every
//! secret field at any depth, so a digest of what remains (provd's audit
//! record) says nothing about a password: not even a hash a dictionary could
//! be run against. Feed it bytes prost encoded (fields in number order,
//! defaults omitted, unknown fields dropped) and the result is canonical:
//! two requests that decode alike give the same bytes.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, FileDescriptorSet};

/// Every field that carries a secret: `message.field`, the message by its
/// full name. A test fails when a field whose name looks like a secret is
/// in neither this list nor the reviewed non-secrets of the test.
pub const SECRET_FIELDS: &[&str] = &[
    // A directory or tenant admin's password.
    "provd.v1.Credential.password",
    // Part of a Graph secret's value (SyncNotificationSettings).
    "provd.v1.CloudSyncSpec.notification_email",
];

/// Why bytes could not be walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[derive(Debug)]
struct Field {
    name: String,
    secret: bool,
    /// The full name (no leading dot) of a message-typed field.
    message: Option<String>,
}

/// Message full name (no leading dot) → its fields by number; RPC path →
/// its request's full name.
struct Schema {
    messages: HashMap<String, HashMap<u32, Field>>,
    inputs: HashMap<String, String>,
}

fn collect(
    scope: &str,
    message: &DescriptorProto,
    into: &mut HashMap<String, HashMap<u32, Field>>,
) {
    let name = format!("{scope}.{}", message.name());
    for nested in &message.nested_type {
        collect(&name, nested, into);
    }
    let fields = message
        .field
        .iter()
        .filter_map(|f| {
            let number = u32::try_from(f.number()).ok()?;
            let full = format!("{name}.{}", f.name());
            Some((
                number,
                Field {
                    name: f.name().to_owned(),
                    secret: SECRET_FIELDS.contains(&full.as_str()),
                    message: (f.r#type() == Type::Message)
                        .then(|| f.type_name().trim_start_matches('.').to_owned()),
                },
            ))
        })
        .collect();
    into.insert(name, fields);
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let mut schema = Schema {
            messages: HashMap::new(),
            inputs: HashMap::new(),
        };
        // The set is this crate's own, built with it: it decodes.
        let Ok(set) = FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET) else {
            return schema;
        };
        for file in &set.file {
            let package = file.package();
            for message in &file.message_type {
                collect(package, message, &mut schema.messages);
            }
            for service in &file.service {
                for method in &service.method {
                    schema.inputs.insert(
                        format!("/{package}.{}/{}", service.name(), method.name()),
                        method.input_type().trim_start_matches('.').to_owned(),
                    );
                }
            }
        }
        schema
    })
}

/// The full name of the request message of the RPC at `path`
/// (`/provd.v1.AgentService/Install` → `provd.v1.InstallRequest`).
pub fn request_type(path: &str) -> Option<&'static str> {
    schema().inputs.get(path).map(String::as_str)
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or(Malformed("truncated varint"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Malformed("varint longer than 10 bytes"))
}

fn put_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One field of an encoding: its number and wire type, where it starts,
/// where its tag ends, where its payload starts (after a length-delimited
/// field's length) and where it ends.
struct Item {
    number: u64,
    wire: u64,
    start: usize,
    tag_end: usize,
    payload: usize,
    end: usize,
}

fn items(bytes: &[u8]) -> impl Iterator<Item = Result<Item, Malformed>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        let item = (|| {
            let tag = varint(bytes, &mut at)?;
            let (number, wire) = (tag >> 3, tag & 7);
            let tag_end = at;
            let payload = match wire {
                0 => {
                    varint(bytes, &mut at)?;
                    at
                }
                1 => {
                    at += 8;
                    at
                }
                5 => {
                    at += 4;
                    at
                }
                2 => {
                    let len = usize::try_from(varint(bytes, &mut at)?)
                        .map_err(|_| Malformed("length overflows"))?;
                    let payload = at;
                    at = at.checked_add(len).ok_or(Malformed("length overflows"))?;
                    payload
                }
                _ => return Err(Malformed("unsupported wire type (groups)")),
            };
            if at > bytes.len() {
                return Err(Malformed("field runs past the end"));
            }
            Ok(Item {
                number,
                wire,
                start,
                tag_end,
                payload,
                end: at,
            })
        })();
        if item.is_err() {
            at = bytes.len();
        }
        Some(item)
    })
}

fn strip(message: &str, bytes: &[u8], depth: usize, out: &mut Vec<u8>) -> Result<(), Malformed> {
    if depth > 32 {
        return Err(Malformed("nested deeper than 32"));
    }
    let fields = schema().messages.get(message);
    for item in items(bytes) {
        let item = item?;
        let field = fields.and_then(|f| u32::try_from(item.number).ok().and_then(|n| f.get(&n)));
        match field {
            Some(field) if field.secret => {}
            Some(Field {
                message: Some(inner),
                ..
            }) if item.wire == 2 => {
                let mut nested = Vec::new();
                strip(
                    inner,
                    &bytes[item.payload..item.end],
                    depth + 1,
                    &mut nested,
                )?;
                out.extend_from_slice(&bytes[item.start..item.tag_end]);
                put_varint(nested.len() as u64, out);
                out.extend_from_slice(&nested);
            }
            _ => out.extend_from_slice(&bytes[item.start..item.end]),
        }
    }
    Ok(())
}

/// `bytes`, an encoding of the message `message` (full name, e.g.
/// `provd.v1.AddDirectoryRequest`), without any field of
/// [`SECRET_FIELDS`] at any depth. Fields the descriptor set does not know
/// are kept as they are.
pub fn canonical_without_secrets(message: &str, bytes: &[u8]) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::with_capacity(bytes.len());
    strip(message, bytes, 0, &mut out)?;
    Ok(out)
}

/// The value of the top-level string field `name` of an encoding of
/// `message`, if it is set (the last occurrence wins, as in protobuf).
pub fn string_field(message: &str, bytes: &[u8], name: &str) -> Option<String> {
    let fields = schema().messages.get(message)?;
    let (number, _) = fields.iter().find(|(_, f)| f.name == name)?;
    let mut found = None;
    for item in items(bytes) {
        let item = item.ok()?;
        if item.number == u64::from(*number) && item.wire == 2 {
            found = Some(String::from_utf8_lossy(&bytes[item.payload..item.end]).into_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;

    #[test]
    fn secrets_go_at_any_depth_and_the_rest_stays() {
        let request = v1::AddDirectoryRequest {
            domain: "lab.example.test".into(),
            credential: Some(v1::Credential {
                username: "Administrator@lab.example.test".into(),
                password: "Pa55w0rd-planted".into(),
                kerberos: None,
            }),
            request_id: "rid-1".into(),
            ..Default::default()
        };
        let bytes = request.encode_to_vec();
        let stripped = canonical_without_secrets("provd.v1.AddDirectoryRequest", &bytes).unwrap();
        let back = v1::AddDirectoryRequest::decode(stripped.as_slice()).unwrap();
        assert_eq!(back.domain, "lab.example.test");
        assert_eq!(back.request_id, "rid-1");
        let credential = back.credential.as_ref().unwrap();
        assert_eq!(credential.username, "Administrator@lab.example.test");
        assert_eq!(credential.password, "");
        assert!(!stripped.windows(7).any(|w| w == b"Pa55w0r"));
        // Another password, the same bytes.
        let mut rotated = request.clone();
        rotated.credential.as_mut().unwrap().password = "other".into();
        assert_eq!(
            canonical_without_secrets("provd.v1.AddDirectoryRequest", &rotated.encode_to_vec())
                .unwrap(),
            stripped
        );
        assert_eq!(
            string_field("provd.v1.AddDirectoryRequest", &bytes, "request_id").as_deref(),
            Some("rid-1")
        );
        assert_eq!(
            request_type("/provd.v1.DirectoryService/AddDirectory"),
            Some("provd.v1.AddDirectoryRequest")
        );
    }

    #[test]
    fn a_secret_two_levels_down_goes_too() {
        let request = v1::SetCloudSyncRequest {
            domain: "lab.example.test".into(),
            spec: Some(v1::CloudSyncSpec {
                enabled: true,
                notification_email: "ops@example.test".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let stripped =
            canonical_without_secrets("provd.v1.SetCloudSyncRequest", &request.encode_to_vec())
                .unwrap();
        let back = v1::SetCloudSyncRequest::decode(stripped.as_slice()).unwrap();
        assert!(back.spec.as_ref().unwrap().enabled);
        assert_eq!(back.spec.unwrap().notification_email, "");
    }

    #[test]
    fn bad_bytes_are_refused_not_panicked_on() {
        for bytes in [&[0x0a, 0x05, b'a'][..], &[0xff; 12], &[0x0b]] {
            assert!(canonical_without_secrets("provd.v1.AddDirectoryRequest", bytes).is_err());
        }
        // An unknown message is copied as it is.
        assert_eq!(
            canonical_without_secrets("provd.v1.Nope", &[0x08, 0x01]).unwrap(),
            vec![0x08, 0x01]
        );
    }

    /// A field whose name says "secret" is either in SECRET_FIELDS or
    /// reviewed here as not one, so a new password field cannot reach an
    /// audit digest unnoticed.
    #[test]
    fn every_secret_looking_field_is_reviewed() {
        const NOT_SECRETS: &[&str] = &[
            // Settings and names about secrets, not their values.
            "provd.v1.AgentSettingsSpec.user_password_length",
            "provd.v1.CloudSyncSpec.password_hash_sync",
            "provd.v1.CloudSyncDomain.notification_email_set",
            "provd.v1.CloudSyncDomain.secret_keys",
            "provd.v1.CreateGmsaRequest.password_interval_days",
            "provd.v1.CreateGmsaRequest.principals_allowed_to_retrieve_password",
            "provd.v1.CreateGmsaSpec.principals_allowed_to_retrieve_password",
            "provd.v1.ServiceAccount.password_interval_days",
            "provd.v1.ServiceAccount.principals_allowed_to_retrieve_password",
            "provd.v1.PasswordWritebackDomain.min_password_age",
            // Paging cursors and session expiry, not credentials.
            "provd.v1.ListOperationsRequest.page_token",
            "provd.v1.ListOperationsResponse.next_page_token",
            "provd.v1.TenantSession.token_expires_in_secs",
        ];
        let looks_secret = |name: &str| {
            ["password", "secret", "token", "email"]
                .iter()
                .any(|w| name.contains(w))
        };
        let mut unreviewed = Vec::new();
        for (message, fields) in &schema().messages {
            for field in fields.values() {
                let full = format!("{message}.{}", field.name);
                if looks_secret(&field.name)
                    && !SECRET_FIELDS.contains(&full.as_str())
                    && !NOT_SECRETS.contains(&full.as_str())
                {
                    unreviewed.push(full);
                }
            }
        }
        unreviewed.sort();
        assert!(unreviewed.is_empty(), "secret or not? {unreviewed:?}");
        for listed in SECRET_FIELDS.iter().chain(NOT_SECRETS) {
            let (message, field) = listed.rsplit_once('.').unwrap();
            assert!(
                schema()
                    .messages
                    .get(message)
                    .is_some_and(|m| m.values().any(|f| f.name == field)),
                "{listed} is not in the contract"
            );
        }
    }
}
