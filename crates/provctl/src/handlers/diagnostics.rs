//! `provctl diagnostics …`: DiagnosticsService (the download itself is
//! `crate::diagnostics`, shared with `fleet diagnostics`).

use std::process::ExitCode;

use super::*;

pub(super) fn bounds(args: crate::args::BoundsArgs) -> crate::diagnostics::Bounds {
    crate::diagnostics::Bounds {
        event_log_hours: args.hours,
        max_bytes: args.max_bytes,
        verbose_trace_minutes: args.verbose_trace_minutes,
    }
}

pub(super) async fn diagnostics(ctx: &Ctx, cmd: DiagnosticsCommand) -> anyhow::Result<ExitCode> {
    let DiagnosticsCommand::Export { output, bounds: b } = cmd;
    let summary = crate::diagnostics::export(ctx.channel.clone(), bounds(b), &output, |p| {
        if p.missing_reason.is_empty() && p.detail.is_empty() {
            eprintln!("  {}", p.path);
        } else if p.missing_reason.is_empty() {
            eprintln!("  {}: {}", p.path, p.detail);
        } else {
            eprintln!("  {} (missing: {})", p.path, first_line(&p.missing_reason));
        }
    })
    .await?;
    if ctx.out.is_json() {
        ctx.out.json(&serde_json::json!({
            "file": output.display().to_string(),
            "sizeBytes": summary.size_bytes,
            "files": summary.files,
            "missing": summary.missing,
            "redactions": summary.redactions,
            "sha256": summary.sha256,
        }))?;
    } else {
        ctx.out
            .text(&crate::diagnostics::render_summary(&output, &summary))?;
    }
    Ok(ExitCode::SUCCESS)
}
