//! The account fields of CreateGmsa and UseCustomGmsa, checked once for the
//! single RPCs and for the apply document (which names them under its own
//! path): every value that will reach a DC is a valid name, DN or SID first.

use super::create::GmsaPlan;
use super::{
    CreateGmsaRequest, DEFAULT_INTERVAL_DAYS, ENC_AES128, ENC_AES256, MAX_INTERVAL_DAYS,
    UseCustomGmsaRequest, gmsa_name,
};
use crate::backends::directory::escape;
use crate::workflows::FieldViolation;
use crate::workflows::validate::{self, dn_in_domain, dns_name};

/// CreateGmsa's fields other than `domain`, `credential` and `request_id`,
/// each violation pushed to `v`. `domain`: the request's, if valid (the
/// container and host name are checked against it). The plan when all
/// is well.
pub(crate) fn create_fields(
    domain: Option<&str>,
    r: &CreateGmsaRequest,
    v: &mut Vec<FieldViolation>,
) -> Option<GmsaPlan> {
    let name = gmsa_name("name", &r.name).map_err(|e| v.push(e)).ok();
    let domain_dn = domain.map(escape::domain_dn);
    let container = match (&domain_dn, r.container_dn.is_empty()) {
        (Some(d), true) => Some(super::prerequisites::default_msa_container(d)),
        (Some(d), false) => dn_in_domain("container_dn", &r.container_dn, d)
            .map_err(|e| v.push(e))
            .ok(),
        (None, true) => None,
        (None, false) => {
            // Still checked as a DN, so a bad domain does not hide it.
            v.extend(validate::distinguished_name("container_dn", &r.container_dn).err());
            None
        }
    };
    let dns_host = match (domain, &name, r.dns_host_name.is_empty()) {
        (Some(d), Some(n), true) => Some(format!(
            "{}.{d}",
            n.trim_end_matches('$').to_ascii_lowercase()
        )),
        (_, _, false) => dns_name("dns_host_name", &r.dns_host_name)
            .map_err(|e| v.push(e))
            .ok(),
        _ => None,
    };
    let interval = match r.password_interval_days {
        0 => DEFAULT_INTERVAL_DAYS,
        n if n > MAX_INTERVAL_DAYS => {
            v.push(FieldViolation::new(
                "password_interval_days",
                format!("must be at most {MAX_INTERVAL_DAYS}"),
            ));
            DEFAULT_INTERVAL_DAYS
        }
        n => n,
    };
    let enc = encryption_types(&r.encryption_types, v);
    let principals = principals(&r.principals, v);
    Some(GmsaPlan {
        domain: domain?.to_owned(),
        name: name?,
        container: container?,
        dns_host: dns_host?,
        interval,
        enc,
        principals: principals?,
    })
}

/// The bits asked for; AES128 and AES256 when none.
fn encryption_types(types: &[Option<u32>], v: &mut Vec<FieldViolation>) -> u32 {
    if let Err(e) = validate::at_most("encryption_types", types, validate::MAX_ENUM_LIST) {
        v.push(e);
        return 0;
    }
    let mut enc = 0;
    for (i, t) in types.iter().enumerate() {
        match t {
            Some(bit) => enc |= bit,
            None => v.push(FieldViolation::new(
                format!("encryption_types[{i}]"),
                "must be RC4, AES128 or AES256",
            )),
        }
    }
    if enc == 0 {
        ENC_AES128 | ENC_AES256
    } else {
        enc
    }
}

/// Computers or groups, by sAMAccountName or DN: at least one, at most 100.
fn principals(names: &[String], v: &mut Vec<FieldViolation>) -> Option<Vec<String>> {
    const FIELD: &str = "principals_allowed_to_retrieve_password";
    if names.is_empty() {
        v.push(FieldViolation::new(
            FIELD,
            "at least one computer account or group is required (the agent host's, e.g. \"AGENT1$\")",
        ));
        return None;
    }
    if let Err(e) = validate::at_most(FIELD, names, validate::MAX_NAME_LIST) {
        v.push(e);
        return None;
    }
    let before = v.len();
    let valid: Vec<String> = names
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            validate::account_name(&format!("{FIELD}[{i}]"), p, validate::MAX_SAM_LEN)
                .map_err(|e| v.push(e))
                .ok()
        })
        .collect();
    (v.len() == before).then_some(valid)
}

/// UseCustomGmsa's `name` (a gMSA by sAMAccountName or DN) and
/// `host_account` (a computer by sAMAccountName or DN), each violation
/// pushed to `v`.
pub(crate) fn custom_fields(
    r: &UseCustomGmsaRequest,
    v: &mut Vec<FieldViolation>,
) -> Option<(String, String)> {
    let name = if r.name.contains('=') {
        validate::distinguished_name("name", r.name.trim())
            .map_err(|e| v.push(e))
            .ok()
    } else if r.name.is_empty() {
        v.push(FieldViolation::new("name", "is required"));
        None
    } else {
        gmsa_name("name", &r.name).map_err(|e| v.push(e)).ok()
    };
    let host = if r.host_account.is_empty() {
        v.push(FieldViolation::new(
            "host_account",
            "is required here: this host's computer account is unknown without the Windows host backend",
        ));
        None
    } else {
        validate::account_name(
            "host_account",
            &r.host_account,
            validate::MAX_COMPUTER_SAM_LEN,
        )
        .map_err(|e| v.push(e))
        .ok()
    };
    Some((name?, host?))
}
