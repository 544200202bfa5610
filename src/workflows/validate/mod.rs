//! Field validation shared by workflows. Each check returns a
//! [`FieldViolation`] naming the field, so a request's violations can be
//! reported together.
//!
//! `names`: DNS names, DNs, SIDs and account names (checked before any DC
//! sees them); `bounds`: the lengths and counts the proto documents.

mod bounds;
mod names;

pub use bounds::*;
pub(crate) use names::*;

use super::FieldViolation;
use crate::backends::directory::{BindCredential, BindSecret, KerberosSource};

pub const MAX_REQUEST_ID_LEN: usize = 128;

/// `request_id`: optional; at most 128 characters of `[A-Za-z0-9._:-]`.
pub fn request_id(field: &str, value: &str) -> Result<Option<String>, FieldViolation> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_REQUEST_ID_LEN {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_REQUEST_ID_LEN} characters"),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(FieldViolation::new(
            field,
            format!("character {bad:?} is not allowed; use [A-Za-z0-9._:-]"),
        ));
    }
    Ok(Some(value.to_owned()))
}

/// A SHA-256 digest written as 64 hex digits.
pub fn sha256_hex(field: &str, value: &str) -> Result<[u8; 32], FieldViolation> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    let mut digest = [0u8; 32];
    if value.len() != 64 || hex::decode_to_slice(value, &mut digest).is_err() {
        return Err(FieldViolation::new(
            field,
            "must be 64 hexadecimal digits (a SHA-256 digest)",
        ));
    }
    Ok(digest)
}

/// An operation id: a UUID as provd issues them.
pub fn operation_id(field: &str, value: &str) -> Result<String, FieldViolation> {
    if value.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    uuid::Uuid::parse_str(value)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| FieldViolation::new(field, "is not an operation id (a UUID)"))
}

/// Checks a credential's fields (the password is never echoed).
pub(crate) fn credential(field: &str, credential: Option<&BindCredential>) -> Vec<FieldViolation> {
    credential_checks(field, credential)
}

fn credential_checks(field: &str, credential: Option<&BindCredential>) -> Vec<FieldViolation> {
    use secrecy::ExposeSecret;
    let Some(c) = credential else {
        return vec![FieldViolation::new(field, "is required")];
    };
    let mut v = Vec::new();
    if c.username.trim().is_empty() {
        v.push(FieldViolation::new(
            format!("{field}.username"),
            "is required",
        ));
    } else if c.username.len() > 1024 || c.username.contains('\0') {
        v.push(FieldViolation::new(
            format!("{field}.username"),
            "must be at most 1024 bytes without NUL",
        ));
    }
    match &c.secret {
        BindSecret::Password(password) => {
            let password = password.expose_secret();
            if password.is_empty() {
                v.push(FieldViolation::new(
                    format!("{field}.password"),
                    "is required",
                ));
            } else if password.len() > 1024 || password.contains('\0') {
                v.push(FieldViolation::new(
                    format!("{field}.password"),
                    "must be at most 1024 bytes without NUL",
                ));
            }
        }
        BindSecret::Kerberos(source) => v.extend(kerberos_source(field, source)),
    }
    v
}

/// A keytab is an absolute path; a cache is `TYPE:residual`. Both name
/// something on the provd host; whether it holds usable keys is the bind's
/// business (with an error naming it).
fn kerberos_source(field: &str, source: &KerberosSource) -> Option<FieldViolation> {
    let (name, value, problem) = match source {
        KerberosSource::Keytab(path) => {
            let text = path.to_string_lossy();
            let problem = if text.is_empty() {
                Some("is required")
            } else if !path.is_absolute() {
                Some("must be an absolute path on the provd host")
            } else {
                None
            };
            ("keytab_path", text.into_owned(), problem)
        }
        KerberosSource::Ccache(name) => {
            let problem = match name.split_once(':') {
                _ if name.is_empty() => Some("is required"),
                // A MEMORY cache lives in one process: in provd's, it holds
                // the tickets provd got from keytabs, not a caller's.
                Some((kind, _)) if kind.eq_ignore_ascii_case("MEMORY") => Some(
                    "names a cache of provd's own memory; name a FILE:, DIR:, KCM: or KEYRING: \
                     cache on the provd host",
                ),
                Some((kind, rest))
                    if !kind.is_empty()
                        && !rest.is_empty()
                        && kind.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    None
                }
                _ => Some("must be TYPE:residual, e.g. FILE:/tmp/krb5cc_0 or KCM:1000"),
            };
            ("ccache", name.clone(), problem)
        }
        // Made by the daemon's assembly only; the contract cannot send it.
        KerberosSource::ServiceIdentity => {
            return Some(FieldViolation::new(
                format!("{field}.kerberos"),
                "set keytab_path or ccache",
            ));
        }
    };
    let field = format!("{field}.kerberos.{name}");
    if value.len() > 1024 || value.contains('\0') {
        return Some(FieldViolation::new(
            field,
            "must be at most 1024 bytes without NUL",
        ));
    }
    problem.map(|p| FieldViolation::new(field, p))
}

/// The agent's own module takes a password (Add-AADCloudSyncADDomain
/// -Credential, the writeback cmdlet): a Kerberos credential cannot reach it.
pub(crate) fn password_credential(
    field: &str,
    credential: Option<&BindCredential>,
) -> Vec<FieldViolation> {
    let mut v = credential_checks(field, credential);
    if let Some(BindSecret::Kerberos(_)) = credential.map(|c| &c.secret) {
        v.push(FieldViolation::new(
            format!("{field}.kerberos"),
            "this request hands the credential to the agent's PowerShell module, which takes a \
             password: use username and password",
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        assert_eq!(request_id("r", "").unwrap(), None);
        assert_eq!(
            request_id("r", "abc-1.2:3_x").unwrap().as_deref(),
            Some("abc-1.2:3_x")
        );
        assert!(
            request_id("r", "a b")
                .unwrap_err()
                .description
                .contains("' '")
        );
        assert!(request_id("r", &"a".repeat(129)).is_err());
        assert!(request_id("r", "x\0").is_err());
    }

    #[test]
    fn digests() {
        let ok = "AB".repeat(32);
        assert_eq!(sha256_hex("s", &ok).unwrap(), [0xab; 32]);
        assert!(
            sha256_hex("s", "")
                .unwrap_err()
                .description
                .contains("required")
        );
        assert!(sha256_hex("s", &"zz".repeat(32)).is_err());
        assert!(sha256_hex("s", "abcd").is_err());
    }

    #[test]
    fn kerberos_sources_name_their_field() {
        let field = |source: KerberosSource| {
            kerberos_source("credential", &source).map(|v| (v.field, v.description))
        };
        assert_eq!(
            field(KerberosSource::Keytab("/etc/krb5.keytab".into())),
            None
        );
        assert_eq!(field(KerberosSource::Ccache("KCM:1000".into())), None);
        assert_eq!(
            field(KerberosSource::Ccache("FILE:/tmp/krb5cc_0".into())),
            None
        );
        let (f, why) = field(KerberosSource::Keytab("krb5.keytab".into())).unwrap();
        assert_eq!(f, "credential.kerberos.keytab_path");
        assert!(why.contains("absolute"), "{why}");
        let (f, why) = field(KerberosSource::Ccache("/tmp/krb5cc_0".into())).unwrap();
        assert_eq!(f, "credential.kerberos.ccache");
        assert!(why.contains("TYPE:residual"), "{why}");
        let (_, why) = field(KerberosSource::Ccache("MEMORY:provd-0011".into())).unwrap();
        assert!(why.contains("provd's own memory"), "{why}");
        let (_, why) = field(KerberosSource::Ccache(format!(
            "FILE:/{}",
            "a".repeat(1024)
        )))
        .unwrap();
        assert!(why.contains("1024"), "{why}");
    }

    #[test]
    fn operation_ids() {
        assert!(operation_id("id", "nope").is_err());
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(operation_id("id", &id.to_uppercase()).unwrap(), id);
    }
}
