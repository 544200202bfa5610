//! Names that reach the directory: DNS names, DNs (RFC 4514, parsed by
//! `workflows::dn`), SID strings and sAMAccountNames.

use std::collections::BTreeSet;

use provd_sd::Sid;

use super::bounds::*;
use crate::workflows::FieldViolation;
use crate::workflows::dn;
use crate::workflows::domain_controllers::MAX_PRIORITY_DCS;

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
    dns_names(field, values, MAX_PRIORITY_DCS)
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
    fn dns_name_rules() {
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
