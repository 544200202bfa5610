//! `provctl cloud-sync …`'s subcommands (CloudSyncService).

use clap::Subcommand;

use crate::{CloudSyncSpecArgs, MutateArgs, ResetScope};

#[derive(Subcommand)]
pub(crate) enum CloudSyncCommand {
    /// Show each added domain's configuration (or one's): jobs, quarantines
    /// with Microsoft's remedy, last runs, scope, agents, which secret keys
    /// are set (never a value). Reads only; never starts a sign-in.
    Get {
        /// Only this domain [default: every added domain].
        #[arg(long)]
        domain: Option<String>,
    },
    /// The Graph changes `cloud-sync set` would make now, changing nothing.
    Plan {
        /// An added domain, e.g. lab.example.test.
        #[arg(long)]
        domain: String,
        #[command(flatten)]
        spec: CloudSyncSpecArgs,
    },
    /// Make a domain's configuration as the flags say (starts a
    /// SET_CLOUD_SYNC operation). The flags are the whole configuration:
    /// what is left out takes its default.
    Set {
        /// An added domain, e.g. lab.example.test.
        #[arg(long)]
        domain: String,
        #[command(flatten)]
        spec: CloudSyncSpecArgs,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Start or resume the domain's jobs. Starting a quarantined job lifts
    /// its quarantine (Microsoft documents it so): the operator's choice.
    Start {
        /// An added domain whose configuration exists.
        #[arg(long)]
        domain: String,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Pause the domain's jobs (their state is kept; nothing is deleted).
    Pause {
        /// An added domain whose configuration exists.
        #[arg(long)]
        domain: String,
        /// Also stop provd managing the configuration (what apply does when
        /// a domain's [domains.cloud_sync] is removed from the document).
        #[arg(long)]
        release: bool,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Restart the domain's jobs. Not idempotent: each call restarts (a
    /// --request-id makes a retry safe).
    Restart {
        /// An added domain whose configuration exists.
        #[arg(long)]
        domain: String,
        /// What to reset, comma-separated or repeated: escrows (stop
        /// retrying failed entries), watermark (re-evaluate every user),
        /// quarantine-state (lift the quarantine for now), full (all three),
        /// force-deletes (carry out the deletes accidental delete prevention
        /// held back).
        #[arg(
            long,
            value_enum,
            value_name = "SCOPE",
            value_delimiter = ',',
            required = true
        )]
        reset_scope: Vec<ResetScope>,
        #[command(flatten)]
        mutate: MutateArgs,
    },
}
