//! Field validation shared by workflows. Each check returns a
//! [`FieldViolation`] naming the field, so a request's violations can be
//! reported together.

use std::collections::BTreeSet;

use super::FieldViolation;
use super::domain_controllers::MAX_PRIORITY_DCS;
use crate::backends::directory::BindCredential;

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

/// Lower-cases and checks a DNS domain or host name.
pub(crate) fn dns_name(field: &str, value: &str) -> Result<String, FieldViolation> {
    let name = value.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if name.len() > 253 {
        return Err(FieldViolation::new(field, "must be at most 253 characters"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(FieldViolation::new(
                field,
                "must be a DNS name: dot-separated labels of letters, digits and hyphens \
                 (1 to 63 characters each)",
            ));
        }
    }
    Ok(name)
}

/// The DC list of a request: valid names, no duplicates, at most 16.
pub(crate) fn dc_list(field: &str, values: &[String]) -> Result<Vec<String>, FieldViolation> {
    if values.len() > MAX_PRIORITY_DCS {
        return Err(FieldViolation::new(
            field,
            format!("at most {MAX_PRIORITY_DCS} domain controllers"),
        ));
    }
    let mut seen = BTreeSet::new();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = dns_name(&format!("{field}[{i}]"), v)?;
            if !seen.insert(name.clone()) {
                return Err(FieldViolation::new(
                    format!("{field}[{i}]"),
                    format!("{name} is listed twice"),
                ));
            }
            Ok(name)
        })
        .collect()
}

/// Checks a credential's fields (the password is never echoed).
pub(crate) fn credential(field: &str, credential: Option<&BindCredential>) -> Vec<FieldViolation> {
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
    let password = c.password.expose_secret();
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
    v
}

/// A DN inside the domain: ends with the domain DN, no NUL, at most 2048.
pub(crate) fn dn_in_domain(
    field: &str,
    value: &str,
    domain_dn: &str,
) -> Result<String, FieldViolation> {
    if value.len() > 2048 || value.contains('\0') {
        return Err(FieldViolation::new(
            field,
            "must be at most 2048 bytes without NUL",
        ));
    }
    let lower = value.to_ascii_lowercase();
    if !(lower == domain_dn.to_ascii_lowercase()
        || lower.ends_with(&format!(",{}", domain_dn.to_ascii_lowercase())))
    {
        return Err(FieldViolation::new(
            field,
            format!("must be a DN inside {domain_dn}"),
        ));
    }
    if !value.contains('=') {
        return Err(FieldViolation::new(field, "is not a distinguished name"));
    }
    Ok(value.to_owned())
}

/// A principal named by sAMAccountName, DN or SID: trimmed, bounded, no NUL.
pub(crate) fn principal_name(field: &str, value: &str) -> Result<String, FieldViolation> {
    if value.trim().is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if value.len() > 2048 || value.contains('\0') {
        return Err(FieldViolation::new(
            field,
            "must be at most 2048 bytes without NUL",
        ));
    }
    Ok(value.trim().to_owned())
}

// ---------------------------------------------------------------------------
// Length and count bounds of AgentService, OperationsService and
// WritebackService request fields the proto documents (issue 13, item 5):
// each bounds what a request may make provd store, echo or search with.

/// `InstallRequest.source` (and `AgentSpec.source`), the URI in bytes:
/// Linux's PATH_MAX, far above the 260 of Windows' MAX_PATH installers keep
/// to. The operation's description carries it.
pub const MAX_SOURCE_LEN: usize = 4096;

/// `ListOperationsRequest.page_token`, in bytes; the tokens provd issues
/// are under 64.
pub const MAX_PAGE_TOKEN_LEN: usize = 128;

/// `SetPasswordWritebackRequest.domains`: at most this many names.
pub const MAX_WRITEBACK_DOMAINS: usize = 64;

/// A string field of at most `max` bytes.
pub(crate) fn max_len(field: &str, value: &str, max: usize) -> Result<(), FieldViolation> {
    if value.len() > max {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    Ok(())
}

/// A list of DNS names (`dns_name` each): at most `max`, no duplicates.
pub(crate) fn dns_names(
    field: &str,
    values: &[String],
    max: usize,
) -> Result<Vec<String>, FieldViolation> {
    if values.len() > max {
        return Err(FieldViolation::new(field, format!("at most {max} names")));
    }
    let mut seen = BTreeSet::new();
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let name = dns_name(&format!("{field}[{i}]"), v)?;
            if !seen.insert(name.clone()) {
                return Err(FieldViolation::new(
                    format!("{field}[{i}]"),
                    format!("{name} is listed twice"),
                ));
            }
            Ok(name)
        })
        .collect()
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
    fn operation_ids() {
        assert!(operation_id("id", "nope").is_err());
        let id = uuid::Uuid::new_v4().to_string();
        assert_eq!(operation_id("id", &id.to_uppercase()).unwrap(), id);
    }

    #[test]
    fn dns_names() {
        assert_eq!(
            dns_name("d", "Lab.Example.TEST.").unwrap(),
            "lab.example.test"
        );
        for bad in [
            "",
            "*)(uid=*",
            ",DC=evil",
            "a..b",
            "-a.b",
            "a\0b",
            &"a".repeat(254),
        ] {
            assert!(dns_name("d", bad).is_err(), "{bad:?} accepted");
        }
        assert!(dns_name("d", &format!("{}.test", "a".repeat(64))).is_err());
    }

    #[test]
    fn dc_lists() {
        let list = dc_list("dcs", &["DC1.lab.test".into(), "dc2.lab.test".into()]).unwrap();
        assert_eq!(list, ["dc1.lab.test", "dc2.lab.test"]);
        let dup = dc_list("dcs", &["dc1.lab.test".into(), "DC1.lab.test".into()]).unwrap_err();
        assert_eq!(dup.field, "dcs[1]");
        assert!(dc_list("dcs", &vec!["a.b".to_owned(); 17]).is_err());
    }

    #[test]
    fn dns_in_domain() {
        assert!(dn_in_domain("c", "OU=x,DC=lab,DC=test", "DC=lab,DC=test").is_ok());
        assert!(dn_in_domain("c", "OU=x,DC=evil,DC=test", "DC=lab,DC=test").is_err());
        assert!(dn_in_domain("c", "x,DC=lab,DC=test\0", "DC=lab,DC=test").is_err());
    }
}

#[cfg(test)]
mod bounds_tests {
    use super::*;

    #[test]
    fn lengths_are_bytes_and_inclusive() {
        assert!(max_len("f", &"a".repeat(4096), MAX_SOURCE_LEN).is_ok());
        let err = max_len("f", &"a".repeat(4097), MAX_SOURCE_LEN).unwrap_err();
        assert_eq!(err.field, "f");
        assert!(err.description.contains("4096"), "{}", err.description);
        // 2 bytes a character: 2049 characters are 4098 bytes.
        assert!(max_len("f", &"é".repeat(2049), MAX_SOURCE_LEN).is_err());
    }

    #[test]
    fn dns_name_lists_are_counted_checked_and_distinct() {
        let names = dns_names("d", &["A.test".into(), "b.test".into()], 2).unwrap();
        assert_eq!(names, ["a.test", "b.test"]);
        assert_eq!(
            dns_names("d", &vec!["a.test".to_owned(); 3], 2)
                .unwrap_err()
                .field,
            "d"
        );
        let dup = dns_names("d", &["a.test".into(), "A.TEST.".into()], 2).unwrap_err();
        assert_eq!(dup.field, "d[1]");
        assert_eq!(
            dns_names("d", &["ok.test".into(), "bad..test".into()], 2)
                .unwrap_err()
                .field,
            "d[1]"
        );
    }
}
