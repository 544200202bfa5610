//! Field validation shared by workflows. Each check returns a
//! [`FieldViolation`] naming the field, so a request's violations can be
//! reported together.

use std::collections::BTreeSet;

use provd_sd::Sid;

use super::FieldViolation;
use super::dn;
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
    if name.parse::<std::net::IpAddr>().is_ok() || numeric_label(name.rsplit('.').next()) {
        return Err(FieldViolation::new(
            field,
            "must be a DNS name, not an IP address (its last label may not be a number)",
        ));
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

/// Whether a DNS label is a number as inet_aton reads one (`127`, `0x7f`),
/// which makes `10.1` or `0x7f000001` an address to some resolvers.
fn numeric_label(label: Option<&str>) -> bool {
    let Some(label) = label else { return false };
    match label.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => label.bytes().all(|b| b.is_ascii_digit()),
    }
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

/// A DN inside the domain (or the domain root itself), as
/// [`distinguished_name`] checks it.
pub(crate) fn dn_in_domain(
    field: &str,
    value: &str,
    domain_dn: &str,
) -> Result<String, FieldViolation> {
    let rdns = parse_dn(field, value)?;
    let outside = || FieldViolation::new(field, format!("must be a DN inside {domain_dn}"));
    let domain = dn::parse(domain_dn).map_err(|_| outside())?;
    let Some(tail) = rdns.len().checked_sub(domain.len()).map(|at| &rdns[at..]) else {
        return Err(outside());
    };
    let same = |a: &dn::Ava, b: &dn::Ava| {
        a.attr.eq_ignore_ascii_case(&b.attr) && a.value.eq_ignore_ascii_case(&b.value)
    };
    let inside = tail
        .iter()
        .zip(&domain)
        .all(|(r, d)| r.len() == d.len() && r.iter().zip(d).all(|(a, b)| same(a, b)));
    if !inside {
        return Err(outside());
    }
    Ok(value.to_owned())
}

/// DNs: at most this many bytes.
pub const MAX_DN_LEN: usize = 2048;
/// sAMAccountName: the schema's limit (rangeUpper), which groups may use.
pub const MAX_SAM_LEN: usize = 256;
/// sAMAccountName of a user or computer account: the SAM's limit.
pub const MAX_COMPUTER_SAM_LEN: usize = 20;
/// A list of enum values (duplicates collapse, so more is never needed).
pub const MAX_ENUM_LIST: usize = 16;
/// A list of names: domains, principals, organizational units.
pub const MAX_NAME_LIST: usize = 100;
pub const MAX_ETAG_LEN: usize = 128;

/// A trustee: a DN (if it has `=`), a SID string (if it starts with
/// `S-1-`), else a sAMAccountName of at most 256 characters. Trimmed.
pub(crate) fn principal_name(field: &str, value: &str) -> Result<String, FieldViolation> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if value.contains('=') {
        distinguished_name(field, value)
    } else if value
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("S-1-"))
    {
        sid_string(field, value)
    } else {
        sam_account_name(field, value, MAX_SAM_LEN)
    }
}

/// An account named by DN (if it has `=`) or by sAMAccountName of at most
/// `max_sam` characters; a SID is refused where the contract takes names
/// only. Trimmed.
pub(crate) fn account_name(
    field: &str,
    value: &str,
    max_sam: usize,
) -> Result<String, FieldViolation> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldViolation::new(field, "must not be empty"));
    }
    if value.contains('=') {
        return distinguished_name(field, value);
    }
    if value.parse::<Sid>().is_ok() {
        return Err(FieldViolation::new(
            field,
            "name the account by sAMAccountName or DN, not by SID",
        ));
    }
    sam_account_name(field, value, max_sam)
}

/// A DN as RFC 4514 writes it (spaces around separators allowed), at most
/// 2048 bytes.
pub(crate) fn distinguished_name(field: &str, value: &str) -> Result<String, FieldViolation> {
    parse_dn(field, value)?;
    Ok(value.to_owned())
}

fn parse_dn(field: &str, value: &str) -> Result<Vec<Vec<dn::Ava>>, FieldViolation> {
    if value.len() > MAX_DN_LEN {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {MAX_DN_LEN} bytes"),
        ));
    }
    dn::parse(value)
        .map_err(|why| FieldViolation::new(field, format!("is not a distinguished name: {why}")))
}

/// A SID string, `S-1-<authority>-<sub-authority>…`; returned canonical.
pub(crate) fn sid_string(field: &str, value: &str) -> Result<String, FieldViolation> {
    // The value is not echoed: the parser's message would quote it.
    value
        .get(1..)
        .map(|rest| format!("S{rest}"))
        .and_then(|v| v.parse::<Sid>().ok())
        .map(|sid| sid.to_string())
        .ok_or_else(|| {
            FieldViolation::new(
                field,
                "is not a SID string (S-1-<authority>-<sub-authority>…)",
            )
        })
}

/// A sAMAccountName: at most `max` characters, none that AD forbids
/// (`"/\[]:;|=,+*?<>` and control characters), not only dots and spaces.
pub(crate) fn sam_account_name(
    field: &str,
    value: &str,
    max: usize,
) -> Result<String, FieldViolation> {
    if value.chars().count() > max {
        return Err(FieldViolation::new(
            field,
            format!("a sAMAccountName has at most {max} characters"),
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| c.is_control() || "\"/\\[]:;|=,+*?<>".contains(*c))
    {
        return Err(FieldViolation::new(
            field,
            format!("character {bad:?} is not allowed in a sAMAccountName"),
        ));
    }
    if value.chars().all(|c| c == '.' || c == ' ') {
        return Err(FieldViolation::new(
            field,
            "a sAMAccountName is not only dots and spaces",
        ));
    }
    Ok(value.to_owned())
}

/// An etag as provd issues them: at most 128 bytes of printable ASCII.
/// Checked before anything echoes it.
pub(crate) fn etag(field: &str, value: &str) -> Result<(), FieldViolation> {
    if value.len() > MAX_ETAG_LEN || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldViolation::new(
            field,
            format!(
                "must be at most {MAX_ETAG_LEN} printable ASCII characters, as GetPriority returns it"
            ),
        ));
    }
    Ok(())
}

/// A repeated field of at most `max` entries.
pub(crate) fn at_most<T>(field: &str, list: &[T], max: usize) -> Result<(), FieldViolation> {
    if list.len() > max {
        return Err(FieldViolation::new(field, format!("at most {max} entries")));
    }
    Ok(())
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
        for ip in [
            "127.0.0.2",
            "127.0.0.2.",
            "::1",
            "10.1",
            "0x7f000001",
            "1.2.0x7F",
        ] {
            let err = dns_name("d", ip).unwrap_err();
            assert!(err.description.contains("IP address"), "{ip:?}: {err:?}");
        }
        assert!(
            dns_name("d", "0xdc.lab.test").is_ok(),
            "only the last label"
        );
        assert!(dns_name("d", "1lab.test1").is_ok());
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
        let domain = "DC=lab,DC=test";
        for ok in [
            domain,
            "ou=x , dc=LAB, dc=test",
            r"OU=a\,DC=evil,DC=lab,DC=test",
        ] {
            assert!(dn_in_domain("c", ok, domain).is_ok(), "{ok:?}");
        }
        for bad in [
            "x)(objectClass=*",
            "OU=x,DC=test",
            r"OU=x,DC=lab\,DC=test",
            "OU=x,DC=lab+CN=y,DC=test",
            "OU=x,DC=notlab,DC=test",
            &format!("OU={},{domain}", "a".repeat(2048)),
        ] {
            assert_eq!(dn_in_domain("c", bad, domain).unwrap_err().field, "c");
        }
    }

    #[test]
    fn principals_by_dn_sid_or_account_name() {
        assert_eq!(principal_name("t", " svc$ ").unwrap(), "svc$");
        assert_eq!(principal_name("t", "s-1-5-32-544").unwrap(), "S-1-5-32-544");
        assert!(principal_name("t", "CN=a,DC=lab").is_ok());
        assert!(principal_name("t", &"g".repeat(256)).is_ok());
        for bad in [
            "",
            "  ",
            "x)(objectClass=*",
            "S-1-5-21-x",
            "S-1-",
            "a[b]",
            "a\tb",
            "..",
            &"g".repeat(257),
        ] {
            assert_eq!(principal_name("t", bad).unwrap_err().field, "t", "{bad:?}");
        }
    }

    #[test]
    fn accounts_by_dn_or_account_name() {
        assert_eq!(account_name("h", "AGENT1$", 20).unwrap(), "AGENT1$");
        assert!(account_name("h", "CN=AGENT1,CN=Computers,DC=lab", 20).is_ok());
        assert!(account_name("h", &"A".repeat(20), 20).is_ok());
        assert!(account_name("h", &"A".repeat(21), 20).is_err());
        assert!(account_name("h", "S-1-5-32-544", 256).is_err(), "no SIDs");
        assert!(account_name("h", "S-1-admins", 256).is_ok(), "not a SID");
        assert!(account_name("h", "x)(objectClass=*", 256).is_err());
        for c in "\"/\\[]:;|,+*?<>\u{7f}".chars() {
            assert!(
                sam_account_name("n", &format!("a{c}b"), 256).is_err(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn etags_and_lists() {
        assert!(etag("e", "").is_ok());
        assert!(etag("e", "g42").is_ok());
        assert!(etag("e", &"g".repeat(128)).is_ok());
        for bad in ["g".repeat(129), "g 1".into(), "g\n".into(), "é".into()] {
            let err = etag("e", &bad).unwrap_err();
            assert!(!err.description.contains(&bad));
        }
        assert!(at_most("l", &[1; 16], MAX_ENUM_LIST).is_ok());
        assert_eq!(
            at_most("l", &[1; 17], MAX_ENUM_LIST).unwrap_err().field,
            "l"
        );
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
