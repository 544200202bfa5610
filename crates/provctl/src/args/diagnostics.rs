//! `provctl diagnostics …` and `provctl fleet diagnostics` (DiagnosticsService).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// What every export asks for.
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct BoundsArgs {
    /// Hours of the Application, System and the agent's Admin event logs
    /// (at most 168).
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// The most the bundle's files may hold before compression, in bytes
    /// (1 MiB to 256 MiB); parts that do not fit are listed in MISSING.txt.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_bytes: u64,
    /// Minutes of verbose agent tracing before collecting (at most 60; 0:
    /// none), as Export-AADCloudSyncToolsLogs does: Microsoft's
    /// Start-/Stop-AADCloudSyncToolsVerboseLogs edit the agent's exe.config
    /// and restart its service, so this runs as an operation and is
    /// refused while another runs.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub verbose_trace_minutes: u32,
}

#[derive(Subcommand)]
pub(crate) enum DiagnosticsCommand {
    /// Collect a redacted support bundle from the daemon's host (the agent's
    /// trace folder, event logs, exe.config, versions, provd's log, recent
    /// operations, a Verify report) and save it as a zip. Admin only.
    Export {
        /// Where to write the zip.
        #[arg(
            short = 'o',
            long,
            value_name = "FILE",
            default_value = "provd-diagnostics.zip"
        )]
        output: PathBuf,
        #[command(flatten)]
        bounds: BoundsArgs,
    },
}

#[derive(Args, Debug)]
pub(crate) struct FleetDiagnosticsArgs {
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// The folder the bundles go to, one `<host>.zip` each (created).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// Hosts collected from at once.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    #[command(flatten)]
    pub bounds: BoundsArgs,
}
