//! Writeback checks: the tenant flag, the PasswordWriteBack ACEs per domain,
//! users that block inheritance, minPwdAge, the agent version, and whether
//! the tenant and the directories agree.

use super::{Category, Check, Run, Status, check};
use crate::workflows::writeback::{self, MIN_AGENT_VERSION, TenantState};

/// Users sampled for inheritance by the writeback checks.
const WRITEBACK_SAMPLE: u32 = 200;

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    use Category::Writeback as W;
    let mut out = Vec::new();
    let report = match run
        .writeback
        .get_as("", run.reader.as_ref(), WRITEBACK_SAMPLE)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            out.push(check(
                "writeback.consistent",
                W,
                Status::Fail,
                e.to_string(),
            ));
            return out;
        }
    };
    let any_aces = report.domains.iter().any(|d| d.ready());
    let flag = match &report.tenant {
        TenantState::Enabled => check(
            "writeback.tenant_flag",
            W,
            Status::Pass,
            "password writeback is on in the tenant",
        ),
        TenantState::Disabled => check(
            "writeback.tenant_flag",
            W,
            Status::Pass,
            "password writeback is off in the tenant",
        ),
        TenantState::Unknown(why) => check(
            "writeback.tenant_flag",
            W,
            Status::Skip,
            format!("the tenant flag is unknown: {why}"),
        )
        .remedy("sign in with `provctl agent sign-in`, then verify again"),
    };
    out.push(flag);
    let on = report.tenant == TenantState::Enabled;
    let unseen = unseen(&report);
    if !on && !any_aces && report.tenant == TenantState::Disabled && unseen.is_empty() {
        for id in ["writeback.aces", "writeback.agent_version"] {
            out.push(check(id, W, Status::Skip, "password writeback is off"));
        }
        out.push(check(
            "writeback.consistent",
            W,
            Status::Pass,
            report.message.clone(),
        ));
        return out;
    }
    for d in &report.domains {
        let c = check("writeback.aces", W, Status::Pass, String::new()).subject(d.domain.clone());
        out.push(match (&d.read_error, &d.status) {
            (Some(e), _) => Check {
                status: Status::Skip,
                message: e.clone(),
                ..c
            },
            (None, Some(s)) if s.present => Check {
                message: format!("PasswordWriteBack ACEs present on {} ({})", d.domain, s.message),
                ..c
            },
            (None, status) => {
                let missing = status
                    .as_ref()
                    .map(|s| {
                        s.missing
                            .iter()
                            .map(|m| m.description.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                Check {
                    status: if on { Status::Fail } else { Status::Warn },
                    message: format!("PasswordWriteBack ACEs missing on {}: {missing}", d.domain),
                    ..c
                }
                .remedy("SetPasswordWriteback with enable=true grants them again (`provctl writeback enable`)")
            }
        });
        if d.read_error.is_none() {
            let inherit = check("writeback.inheritance", W, Status::Pass, String::new())
                .subject(d.domain.clone());
            out.push(if d.blocked == 0 {
                Check {
                    message: format!("none of {} sampled users block inheritance", d.sampled),
                    ..inherit
                }
            } else {
                Check {
                    status: Status::Warn,
                    message: format!(
                        "{} of {} sampled users block inheritance (e.g. {})",
                        d.blocked,
                        d.sampled,
                        d.blocked_samples.first().cloned().unwrap_or_default()
                    ),
                    ..inherit
                }
                .remedy("writeback cannot reset their passwords; re-enable inheritance on them")
            });
            let age = check("writeback.min_pwd_age", W, Status::Pass, String::new())
                .subject(d.domain.clone());
            out.push(if d.min_password_age_secs == 0 {
                Check {
                    message: "minPwdAge is 0".into(),
                    ..age
                }
            } else {
                Check {
                    status: Status::Warn,
                    message: format!("minPwdAge is {} s", d.min_password_age_secs),
                    ..age
                }
                .remedy("a password reset right after a change fails until minPwdAge passes; set it to 0")
            });
        }
    }
    out.push(match &report.agent_version {
        Some(v) if writeback::version_at_least(v, MIN_AGENT_VERSION) => check(
            "writeback.agent_version",
            W,
            Status::Pass,
            format!("agent {v} supports password writeback"),
        ),
        Some(v) => check(
            "writeback.agent_version",
            W,
            Status::Fail,
            format!("agent {v} is older than {MIN_AGENT_VERSION}"),
        )
        .remedy(format!(
            "install agent {MIN_AGENT_VERSION} or later with Install"
        )),
        None => check(
            "writeback.agent_version",
            W,
            Status::Skip,
            "the installed agent's version cannot be read on this host",
        ),
    });
    out.push(if !unseen.is_empty() {
        check(
            "writeback.consistent",
            W,
            Status::Skip,
            format!(
                "cannot tell whether the tenant and the directory agree: {}",
                unseen.join("; ")
            ),
        )
    } else if report.consistent {
        check("writeback.consistent", W, Status::Pass, report.message.clone())
    } else {
        check("writeback.consistent", W, Status::Fail, report.message.clone()).remedy(
            "run SetPasswordWriteback again (enable or disable) so the tenant and the directory agree",
        )
    });
    out
}

/// What the report could not see: the tenant flag, or a domain's ACEs.
/// Consistency is then unknown, which is a SKIP, not a FAIL.
fn unseen(report: &writeback::WritebackReport) -> Vec<String> {
    let tenant = match &report.tenant {
        TenantState::Unknown(why) => Some(format!("the tenant flag is unknown ({why})")),
        TenantState::Enabled | TenantState::Disabled => None,
    };
    tenant
        .into_iter()
        .chain(report.domains.iter().filter_map(|d| {
            let why = d.read_error.as_ref()?;
            Some(format!("the ACEs of {} were not read ({why})", d.domain))
        }))
        .collect()
}
