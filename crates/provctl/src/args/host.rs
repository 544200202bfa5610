//! `provctl host …`'s subcommands (HostService).

use clap::Subcommand;

use crate::{HostFix, MutateArgs};

#[derive(Subcommand)]
pub(crate) enum HostCommand {
    /// The fixes `host remediate` would make now, in its order, each with
    /// every value it changes and whether a restart is needed. Reads the
    /// registry and the SCM only; changes nothing.
    Plan,
    /// Make the planned fixes (starts a REMEDIATE_HOST operation). A value
    /// already as wanted is never written. provd never restarts the server:
    /// the result says when a restart is needed (`reboot_required`).
    Remediate {
        /// Only these fixes, comma-separated or repeated (each made only if
        /// planned) [default: every planned fix]: tls12 (SCHANNEL and .NET
        /// strong crypto; restart needed), vault-service-manual (VaultSvc
        /// from Disabled to Manual), service-account-managed (the agent
        /// service's managed-account flag), execution-policy-remote-signed
        /// (the LocalMachine execution policy).
        #[arg(long = "fix", value_enum, value_name = "FIX", value_delimiter = ',')]
        fixes: Vec<HostFix>,
        #[command(flatten)]
        mutate: MutateArgs,
    },
}
