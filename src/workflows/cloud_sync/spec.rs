//! Validation of a configuration: the limits Microsoft documents
//! (<https://learn.microsoft.com/entra/identity/hybrid/cloud-sync/how-to-prerequisites>,
//! "Known limitations": the scoping configuration is limited to 4 MB,
//! "approximately 50 separate OUs or security groups") and the shapes Graph
//! takes, each violation naming its field under `prefix`.

use std::collections::BTreeSet;

use super::types::{CloudSyncInput, CloudSyncSpec};
use crate::backends::directory::escape::domain_dn;
use crate::model::SyncScope;
use crate::workflows::FieldViolation;
use crate::workflows::validate::{distinguished_name, dn_in_domain};

/// OUs or groups in one scope.
pub const MAX_SCOPE_ENTRIES: usize = 50;
/// Microsoft's default deletion threshold.
pub const DEFAULT_DELETE_THRESHOLD: u32 = 500;
/// provd's bound on the threshold [I: Graph documents none].
pub const MAX_DELETE_THRESHOLD: u32 = 1_000_000;
/// RFC 5321's path limit, less the angle brackets.
pub const MAX_EMAIL_LEN: usize = 254;

/// `input` as a spec for `domain`, or every violation found. `domain`
/// `None` (itself invalid): the DNs are checked as DNs only, so the
/// request's every mistake is still named.
pub fn validate(
    prefix: &str,
    domain: Option<&str>,
    input: &CloudSyncInput,
) -> Result<CloudSyncSpec, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let field = |name: &str| format!("{prefix}.{name}");
    let root = domain.map(domain_dn);
    let root = root.as_deref();
    let ous = dn_list(
        &field("organizational_units"),
        &input.organizational_units,
        root,
        &mut v,
    );
    let groups = dn_list(
        &field("security_groups"),
        &input.security_groups,
        root,
        &mut v,
    );
    let scope = match (ous.is_empty(), groups.is_empty()) {
        (true, true) => SyncScope::AllUsers,
        (false, true) => SyncScope::OrganizationalUnits(ous),
        (true, false) => SyncScope::SecurityGroups(groups),
        (false, false) => {
            v.push(FieldViolation::new(
                field("security_groups"),
                "scope by organizational units or by security groups, not both (Graph's \
                 containerFilter and groupFilter are mutually exclusive)",
            ));
            SyncScope::AllUsers
        }
    };
    let delete_threshold = match input.accidental_deletes {
        Some(d) if d.disabled => None,
        Some(d) if d.threshold > MAX_DELETE_THRESHOLD => {
            v.push(FieldViolation::new(
                field("accidental_deletes.threshold"),
                format!("must be at most {MAX_DELETE_THRESHOLD}"),
            ));
            None
        }
        Some(d) if d.threshold > 0 => Some(d.threshold),
        _ => Some(DEFAULT_DELETE_THRESHOLD),
    };
    let email = input.notification_email.trim();
    let notification_email = if email.is_empty() {
        None
    } else if let Err(why) = check_email(email) {
        // The value is not echoed: it is a secret's value.
        v.push(FieldViolation::new(field("notification_email"), why));
        None
    } else {
        Some(email.to_owned())
    };
    if !v.is_empty() {
        return Err(v);
    }
    Ok(CloudSyncSpec {
        enabled: input.enabled,
        password_hash_sync: input.password_hash_sync,
        scope,
        delete_threshold,
        notification_email,
    })
}

/// DNs inside the domain, at most 50, no duplicates (compared
/// case-insensitively, as AD compares them).
fn dn_list(
    field: &str,
    values: &[String],
    root: Option<&str>,
    v: &mut Vec<FieldViolation>,
) -> Vec<String> {
    if values.len() > MAX_SCOPE_ENTRIES {
        v.push(FieldViolation::new(
            field,
            format!(
                "at most {MAX_SCOPE_ENTRIES} entries (Microsoft: the scoping filter holds about \
                 50 OUs or groups within its 4 MB limit)"
            ),
        ));
        return Vec::new();
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let checked = match root {
            Some(root) => dn_in_domain(&at, value.trim(), root),
            None => distinguished_name(&at, value.trim()),
        };
        match checked {
            Err(e) => v.push(e),
            Ok(dn) if !seen.insert(dn.to_ascii_lowercase()) => {
                v.push(FieldViolation::new(at, "is listed twice"));
            }
            Ok(dn) => out.push(dn),
        }
    }
    out
}

/// One address as `local@domain`: printable ASCII or UTF-8 without spaces,
/// controls or a second `@`, at most 254 bytes. Deliverability is the
/// mail system's business.
fn check_email(email: &str) -> Result<(), String> {
    if email.len() > MAX_EMAIL_LEN {
        return Err(format!("must be at most {MAX_EMAIL_LEN} bytes"));
    }
    if email
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, ',' | ';' | '<' | '>'))
    {
        return Err("must be one email address (no spaces, separators or controls)".into());
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(())
        }
        _ => Err("must be an email address, local@domain".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::types::DeletePreventionInput;
    use super::*;

    const DOMAIN: &str = "lab.example.test";

    fn input() -> CloudSyncInput {
        CloudSyncInput {
            enabled: true,
            ..Default::default()
        }
    }

    fn fields(err: Vec<FieldViolation>) -> Vec<String> {
        err.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn defaults_are_microsofts() {
        let spec = validate("spec", Some(DOMAIN), &input()).unwrap();
        assert_eq!(spec.scope, SyncScope::AllUsers);
        assert_eq!(spec.delete_threshold, Some(500));
        assert_eq!(spec.notification_email, None);
    }

    #[test]
    fn scope_lists_are_checked_entry_by_entry() {
        let mut i = input();
        i.organizational_units = vec![
            "OU=SyncPilot,DC=lab,DC=example,DC=test".into(),
            "OU=Other,DC=elsewhere,DC=test".into(),
            "x)(objectClass=*".into(),
            "ou=syncpilot,dc=LAB,dc=example,dc=test".into(),
        ];
        let f = fields(validate("spec", Some(DOMAIN), &i).unwrap_err());
        assert_eq!(
            f,
            [
                "spec.organizational_units[1]",
                "spec.organizational_units[2]",
                "spec.organizational_units[3]"
            ]
        );
        i.organizational_units = (0..51)
            .map(|n| format!("OU=o{n},DC=lab,DC=example,DC=test"))
            .collect();
        assert_eq!(
            fields(validate("spec", Some(DOMAIN), &i).unwrap_err()),
            ["spec.organizational_units"]
        );
    }

    #[test]
    fn both_lists_are_refused() {
        let mut i = input();
        i.organizational_units = vec!["OU=A,DC=lab,DC=example,DC=test".into()];
        i.security_groups = vec!["CN=G,OU=A,DC=lab,DC=example,DC=test".into()];
        assert_eq!(
            fields(validate("d.cloud_sync", Some(DOMAIN), &i).unwrap_err()),
            ["d.cloud_sync.security_groups"]
        );
        i.organizational_units.clear();
        assert_eq!(
            validate("spec", Some(DOMAIN), &i).unwrap().scope,
            SyncScope::SecurityGroups(vec!["CN=G,OU=A,DC=lab,DC=example,DC=test".into()])
        );
    }

    #[test]
    fn thresholds_and_emails() {
        let mut i = input();
        i.accidental_deletes = Some(DeletePreventionInput {
            disabled: true,
            threshold: 7,
        });
        assert_eq!(
            validate("s", Some(DOMAIN), &i).unwrap().delete_threshold,
            None
        );
        i.accidental_deletes = Some(DeletePreventionInput {
            disabled: false,
            threshold: 1_000_001,
        });
        assert_eq!(
            fields(validate("s", Some(DOMAIN), &i).unwrap_err()),
            ["s.accidental_deletes.threshold"]
        );
        i.accidental_deletes = None;
        for bad in [
            "nobody",
            "a@b",
            "a b@c.d",
            "a@b.c,d@e.f",
            "a@@b.c",
            "x\0@y.z",
        ] {
            i.notification_email = bad.into();
            let err = validate("s", Some(DOMAIN), &i).unwrap_err();
            assert_eq!(err[0].field, "s.notification_email", "{bad}");
            assert!(!err[0].description.contains(bad), "the value is echoed");
        }
        i.notification_email = " ops@lab.example.test ".into();
        assert_eq!(
            validate("s", Some(DOMAIN), &i)
                .unwrap()
                .notification_email
                .as_deref(),
            Some("ops@lab.example.test")
        );
    }
}
