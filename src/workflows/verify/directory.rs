//! Directory checks, one group per domain sharing its credential: the DCs
//! (reachable in priority order, certificates, clock skew), the recorded gMSA
//! and its permission profiles, and whether this host may retrieve the
//! gMSA's password (a Host check, but it needs the domain's bind) and, when
//! the session may read it, the password decoded (`proof`: `retrieved` or
//! `permitted`; never the password or a hash).

use std::time::{Duration, SystemTime};

use super::{Category, Check, DISCOVERY_REMEDY, Run, Status, check, skew_status};
use crate::workflows::domain_controllers::Reader;
use crate::workflows::permissions::Profile;
use crate::workflows::service_account::AccountRecord;

/// A DC certificate expiring sooner than this is a WARN.
const CERT_WARN_WITHIN: Duration = Duration::from_secs(30 * 24 * 3600);

const DIRECTORY_IDS: [&str; 5] = [
    "directory.dc.reachable",
    "directory.dc.certificate",
    "directory.dc.clock_skew",
    "directory.gmsa.account",
    "directory.permissions",
];

pub(super) async fn checks(run: &Run, domain: &str, directory: bool, host: bool) -> Vec<Check> {
    use Category::Directory as D;
    let mut out = Vec::new();
    // Nothing here needs a bind: none is tried.
    let needs_bind = directory || (host && run.account.is_some());
    if !needs_bind {
        return out;
    }
    let reader = match run.reader_for(domain).await {
        Ok(reader) => reader,
        Err(unread) => {
            if directory {
                for id in DIRECTORY_IDS {
                    out.push(unread.check(id, D, domain));
                }
            }
            if host && run.account.is_some() {
                out.push(unread.check("host.gmsa.retrievable", Category::Host, domain));
            }
            return out;
        }
    };
    if directory {
        out.extend(dc_checks(run, domain, reader).await);
    }
    let account_here = run.account.as_ref().filter(|a| a.domain == domain);
    if directory {
        out.extend(account_checks(run, domain, account_here, reader).await);
    }
    if host && let Some(account) = account_here {
        out.push(super::gmsa_proof::retrievable_check(run, domain, account, reader).await);
    }
    out
}

async fn dc_checks(run: &Run, domain: &str, reader: &Reader) -> Vec<Check> {
    use Category::Directory as D;
    let mut out = Vec::new();
    let discovery = match run.dcs.discover_as(domain, Some(reader), false, None).await {
        Ok(d) => d,
        Err(e) => {
            out.push(
                check("directory.dc.reachable", D, Status::Fail, e.to_string())
                    .subject(domain)
                    .remedy(DISCOVERY_REMEDY),
            );
            return out;
        }
    };
    let order: Vec<String> = discovery
        .dcs
        .iter()
        .map(|d| {
            let state = match &d.probe {
                Some(p) if p.reachable => "up",
                _ => "down",
            };
            format!("{} ({state})", d.host)
        })
        .collect();
    let reachable = discovery
        .dcs
        .iter()
        .filter(|d| d.probe.as_ref().is_some_and(|p| p.reachable))
        .count();
    let first_down = discovery
        .dcs
        .iter()
        .find(|d| d.priority_rank > 0 && !d.probe.as_ref().is_some_and(|p| p.reachable));
    let base = check(
        "directory.dc.reachable",
        D,
        Status::Pass,
        format!(
            "{reachable} of {} DC(s) answer LDAPS, in priority order: {}",
            discovery.dcs.len(),
            order.join(", ")
        ),
    )
    .subject(domain)
    .attr("order", order.join(","));
    out.push(if reachable == 0 {
        Check {
            status: Status::Fail,
            ..base
        }
        .remedy("no DC answers: check the network path and LDAPS (636) on the DCs")
    } else if let Some(down) = first_down {
        let why = down
            .probe
            .as_ref()
            .and_then(|p| p.error.clone())
            .unwrap_or_default();
        Check {
            status: Status::Warn,
            message: format!(
                "{}; preferred DC {} is down: {why}",
                base.message, down.host
            ),
            ..base
        }
        .remedy("bring the DC back, or change the DC priority with SetPriority")
    } else {
        base
    });
    let now = SystemTime::now();
    for dc in &discovery.dcs {
        let Some(p) = dc.probe.as_ref().filter(|p| p.reachable) else {
            continue;
        };
        let cert = check("directory.dc.certificate", D, Status::Pass, String::new())
            .subject(dc.host.clone())
            .attr("domain", domain);
        out.push(match p.certificate_not_after {
            _ if !p.certificate_trusted => Check {
                status: Status::Fail,
                message: format!(
                    "{}'s certificate ({}) is not trusted",
                    dc.host,
                    p.certificate_subject.clone().unwrap_or_default()
                ),
                ..cert
            }
            .remedy("issue the DC a certificate from a CA in directory.ca_file"),
            None => Check {
                status: Status::Warn,
                message: format!("{}'s certificate expiry could not be read", dc.host),
                ..cert
            },
            Some(not_after) => {
                let left = not_after.duration_since(now).unwrap_or(Duration::ZERO);
                let days = left.as_secs() / 86_400;
                let c = cert.attr("days_left", days.to_string());
                if left.is_zero() {
                    Check {
                        status: Status::Fail,
                        message: format!("{}'s certificate has expired", dc.host),
                        ..c
                    }
                    .remedy("renew the DC's certificate")
                } else if left < CERT_WARN_WITHIN {
                    Check {
                        status: Status::Warn,
                        message: format!("{}'s certificate expires in {days} days", dc.host),
                        ..c
                    }
                    .remedy("renew the DC's certificate before it expires")
                } else {
                    Check {
                        message: format!("{}'s certificate is valid for {days} more days", dc.host),
                        ..c
                    }
                }
            }
        });
        if let Some(skew) = p.clock_skew_secs {
            let c = check(
                "directory.dc.clock_skew",
                D,
                Status::Pass,
                format!("{}'s clock is {skew:+} s from this host's", dc.host),
            )
            .subject(dc.host.clone())
            .attr("domain", domain)
            .attr("skew_ms", (skew * 1000).to_string());
            out.push(match skew_status(skew) {
                Status::Fail => Check {
                    status: Status::Fail,
                    ..c
                }
                .remedy("sync this host's clock with the domain (w32tm /resync); Kerberos allows 5 minutes"),
                Status::Warn => Check {
                    status: Status::Warn,
                    ..c
                }
                .remedy("sync this host's clock with the domain (w32tm /resync)"),
                Status::Pass | Status::Skip => c,
            });
        }
    }
    out
}

async fn account_checks(
    run: &Run,
    domain: &str,
    account: Option<&AccountRecord>,
    reader: &Reader,
) -> Vec<Check> {
    use Category::Directory as D;
    let Some(recorded) = account else {
        let why = match &run.account {
            None => "no service account is recorded".to_owned(),
            Some(a) => format!("the service account lives in {}", a.domain),
        };
        return vec![
            check("directory.gmsa.account", D, Status::Skip, why.clone()).subject(domain),
            check("directory.permissions", D, Status::Skip, why).subject(domain),
        ];
    };
    let report = match run.gmsa.get_as(domain, Some(reader)).await {
        Ok(r) if r.live => r,
        Ok(r) => {
            return vec![
                check(
                    "directory.gmsa.account",
                    D,
                    Status::Fail,
                    format!(
                        "cannot read {}: {}",
                        recorded.distinguished_name, r.live_unavailable_reason
                    ),
                )
                .subject(domain),
            ];
        }
        Err(e) => {
            return vec![
                check(
                    "directory.gmsa.account",
                    D,
                    Status::Fail,
                    format!("cannot read {}: {e}", recorded.distinguished_name),
                )
                .subject(domain)
                .remedy("create it again with CreateGmsa, or choose one with UseCustomGmsa"),
            ];
        }
    };
    let mut out = Vec::new();
    let fresh = report.account.as_ref().unwrap_or(recorded);
    let c = check(
        "directory.gmsa.account",
        D,
        Status::Pass,
        format!(
            "{} exists and is enabled ({} principal(s) may retrieve its password)",
            fresh.sam_account_name,
            fresh.principals.len()
        ),
    )
    .subject(domain)
    .attr("dn", fresh.distinguished_name.clone());
    out.push(if fresh.enabled {
        c
    } else {
        Check {
            status: Status::Fail,
            message: format!("{} is disabled", fresh.sam_account_name),
            ..c
        }
        .remedy("enable the account in Active Directory")
    });
    let writeback_on = run.writeback_on().await;
    let mut required = vec![Profile::BasicRead];
    if writeback_on {
        required.push(Profile::PasswordWriteBack);
    }
    let missing: Vec<String> = report
        .permissions
        .iter()
        .filter(|p| required.contains(&p.profile) && !p.present)
        .map(|p| format!("{} ({})", p.profile.name(), p.message))
        .collect();
    let held: Vec<&str> = report
        .permissions
        .iter()
        .filter(|p| p.present)
        .map(|p| p.profile.name())
        .collect();
    let required_names: Vec<&str> = required.iter().map(|p| p.name()).collect();
    out.push(if missing.is_empty() {
        check(
            "directory.permissions",
            D,
            Status::Pass,
            format!(
                "the required profiles ({}) are present; held: {}",
                required_names.join(", "),
                held.join(", ")
            ),
        )
        .subject(domain)
    } else {
        check(
            "directory.permissions",
            D,
            Status::Fail,
            format!("missing: {}", missing.join("; ")),
        )
        .subject(domain)
        .remedy(format!(
            "grant them again: GrantPermissions with profiles {} (`provctl gmsa grant`)",
            required_names.join(", ")
        ))
    });
    out
}
