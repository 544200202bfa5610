//! Host prerequisite checks, each from a Microsoft Learn page (its URL in
//! the `source` attribute): TLS 1.2, .NET, the OS, memory, the Credential
//! Manager service, "Log on as a service", the agent service's managed-
//! account flag, the execution policy, the Kerberos encryption types. Each shows the values it read as
//! attributes. Where RemediateHost can fix it, the `fix` attribute names
//! the fix, and the judgment is the plan's own (`host_fix`), so Verify and
//! the plan never disagree. The services' and policies' checks are in
//! `prereq/services.rs`.

mod services;

use super::{Category, Check, Run, Status, check};
use crate::backends::host::{HostPrerequisites, RegValue};
use crate::model::HostFix;
use crate::workflows::host_fix::{PREREQUISITES_PAGE, fix_name, plan};

/// .NET Framework 4.7.1's lowest `Release` value.
const DOTNET_471: u32 = 461_308;
/// Windows Server 2016's build.
const SERVER_2016_BUILD: u32 = 14_393;
const MIN_MEMORY: u64 = 4 << 30;

const IDS: [&str; 9] = [
    "host.tls12",
    "host.dotnet",
    "host.os",
    "host.memory",
    "host.vault_service",
    "host.logon_right",
    "host.service_managed",
    "host.execution_policy",
    "host.kerberos_enctypes",
];

pub(super) fn c(
    id: &'static str,
    status: Status,
    message: impl Into<String>,
    source: &str,
) -> Check {
    check(id, Category::Host, status, message).attr("source", source)
}

/// The fix's remedy text and attribute, when `fix` is planned for `p`.
pub(super) fn fixable(c: Check, p: &HostPrerequisites, fix: HostFix, by_hand: &str) -> Check {
    let planned = plan(p).into_iter().find(|f| f.fix == fix);
    match planned {
        Some(f) => c.attr("fix", fix_name(fix)).remedy(format!(
            "RemediateHost fixes it (fix {}: {}); by hand: {by_hand}",
            fix_name(fix),
            f.changes.join("; ")
        )),
        None => c.remedy(by_hand.to_owned()),
    }
}

pub(super) async fn checks(run: &Run) -> Vec<Check> {
    // Without a host backend, host.backend.available already says so.
    if run.host.availability().is_err() {
        return Vec::new();
    }
    let p = match run.host.prerequisites().await {
        Ok(p) => p,
        Err(e) => {
            return IDS
                .iter()
                .map(|id| check(id, Category::Host, Status::Skip, e.to_string()))
                .collect();
        }
    };
    let mut out = vec![tls12(&p), dotnet(&p), os(&p), memory(&p)];
    out.push(services::vault(&p));
    out.push(services::logon_right(
        run.logon_rights.service_logon_right().await,
    ));
    out.push(services::service_managed(&p));
    out.push(services::execution_policy(&p));
    let gmsa = run
        .account
        .as_ref()
        .map(|a| (a.sam_account_name.as_str(), a.supported_encryption_types));
    out.push(services::kerberos_enctypes(&p, gmsa));
    out
}

fn tls12(p: &HostPrerequisites) -> Check {
    let off = plan(p).iter().any(|f| f.fix == HostFix::Tls12);
    let mut check = if off {
        c(
            "host.tls12",
            Status::Fail,
            "TLS 1.2 is not enabled as the agent needs it (SCHANNEL client and server, .NET strong crypto in both registry views)",
            PREREQUISITES_PAGE,
        )
    } else {
        c(
            "host.tls12",
            Status::Pass,
            "TLS 1.2 is enabled for SCHANNEL and .NET",
            PREREQUISITES_PAGE,
        )
    };
    for r in &p.tls12 {
        check = check.attr(&r.path, r.shown());
    }
    if off {
        check = fixable(
            check,
            p,
            HostFix::Tls12,
            "merge the .reg file of the TLS requirements section, then restart the server",
        );
    }
    check
}

fn dotnet(p: &HostPrerequisites) -> Check {
    let r = &p.dotnet_release;
    let base = |status, message: String| {
        c("host.dotnet", status, message, PREREQUISITES_PAGE).attr(&r.path, r.shown())
    };
    match (&r.value, r.dword()) {
        (_, Some(v)) if v >= DOTNET_471 => base(
            Status::Pass,
            format!(".NET Framework 4.7.1 or later (Release {v})"),
        ),
        (RegValue::Unreadable(e), _) => {
            base(Status::Warn, format!("cannot read .NET's Release: {e}"))
                .remedy("check that provd runs as LocalSystem")
        }
        _ => base(
            Status::Fail,
            format!(".NET Framework is older than 4.7.1 (Release {})", r.shown()),
        )
        .remedy("install .NET Framework 4.7.1 or later (4.8 is current), then restart the server"),
    }
}

fn os(p: &HostPrerequisites) -> Check {
    let build = p.os_build.text().and_then(|b| b.trim().parse::<u32>().ok());
    let kind = p.os_installation_type.text().map(str::to_owned);
    let product = p.os_product_name.text().unwrap_or("unknown").to_owned();
    let status_message = match (kind.as_deref(), build) {
        (Some("Server Core"), _) => (
            Status::Fail,
            format!("{product} is a Server Core installation, which the agent does not support"),
        ),
        (Some(k), _) if !k.starts_with("Server") => (
            Status::Fail,
            format!("{product} is not Windows Server (installation type {k:?})"),
        ),
        (_, Some(b)) if b < SERVER_2016_BUILD => (
            Status::Fail,
            format!("{product} (build {b}) is older than Windows Server 2016"),
        ),
        (Some(_), Some(b)) => (Status::Pass, format!("{product}, build {b}")),
        _ => (
            Status::Warn,
            format!("cannot tell the Windows edition and build ({product})"),
        ),
    };
    let (status, message) = status_message;
    let mut check = c("host.os", status, message, PREREQUISITES_PAGE);
    for r in [&p.os_product_name, &p.os_build, &p.os_installation_type] {
        check = check.attr(&r.path, r.shown());
    }
    if status != Status::Pass {
        check = check.remedy(
            "run the agent on Windows Server 2016 or later with the Desktop Experience (not Server Core)",
        );
    }
    check
}

fn memory(p: &HostPrerequisites) -> Check {
    match &p.total_memory_bytes {
        Ok(bytes) => {
            let gib = *bytes as f64 / f64::from(1u32 << 30);
            let check = c(
                "host.memory",
                if *bytes >= MIN_MEMORY {
                    Status::Pass
                } else {
                    Status::Fail
                },
                format!("{gib:.1} GiB of memory installed (at least 4 GB needed)"),
                PREREQUISITES_PAGE,
            )
            .attr("total_memory_bytes", bytes.to_string())
            .attr("minimum_bytes", MIN_MEMORY.to_string());
            if *bytes >= MIN_MEMORY {
                check
            } else {
                check.remedy("give the server at least 4 GB of memory")
            }
        }
        Err(e) => c(
            "host.memory",
            Status::Warn,
            format!("cannot read the installed memory: {e}"),
            PREREQUISITES_PAGE,
        ),
    }
}
