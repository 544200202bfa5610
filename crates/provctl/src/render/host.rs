//! `provctl host plan`: the fixes RemediateHost would make.

use provd_proto::v1;

/// A fix by its step name (the `--fix` value too), or the enum's name in
/// the same spelling if a daemon left the step out.
fn fix_name(fix: &v1::PlannedHostFix) -> String {
    if !fix.step.is_empty() {
        return fix.step.clone();
    }
    v1::HostFix::try_from(fix.fix).map_or_else(
        |_| format!("UNKNOWN({})", fix.fix),
        |f| {
            let name = f.as_str_name();
            name.strip_prefix("HOST_FIX_")
                .unwrap_or(name)
                .to_lowercase()
                .replace('_', "-")
        },
    )
}

/// PlanHostRemediation's answer: each fix in the order RemediateHost makes
/// it, whether it needs a restart, and every value it changes.
pub fn host_plan(r: &v1::PlanHostRemediationResponse) -> String {
    if r.fixes.is_empty() {
        return "no fixes: the host's prerequisites provd can fix are as required\n".into();
    }
    let mut out = format!("plan: {} fix(es)\n", r.fixes.len());
    let mut restart = Vec::new();
    for fix in &r.fixes {
        let name = fix_name(fix);
        let when = if fix.reboot_required {
            restart.push(name.clone());
            "restart required"
        } else {
            "no restart"
        };
        out.push_str(&format!("  {name} ({when})\n"));
        for change in &fix.changes {
            out.push_str(&format!("    {change}\n"));
        }
    }
    if !restart.is_empty() {
        out.push_str(&format!(
            "a restart of the server is needed after {}: provd never restarts it\n",
            restart.join(", ")
        ));
    }
    out
}
