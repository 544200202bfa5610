//! `provctl agent …`'s subcommands (AgentService).

use clap::{Args, Subcommand};

use crate::{Cloud, CredentialArgs, MutateArgs};

/// DecommissionAgent's and PlanDecommission's fields.
#[derive(Args, Debug)]
pub(crate) struct DecommissionArgs {
    /// Leave the gMSA's principals and the permissions alone (no domain
    /// admin credential needed).
    #[arg(long)]
    pub(crate) keep_gmsa: bool,
    /// Delete the gMSA too; NAME must be its sAMAccountName (the
    /// confirmation).
    #[arg(long, value_name = "NAME", conflicts_with = "keep_gmsa")]
    pub(crate) delete_gmsa: Option<String>,
    /// Delete the cloud sync configuration of DOMAIN too (the domain's DNS
    /// name is the confirmation).
    #[arg(long, value_name = "DOMAIN")]
    pub(crate) delete_cloud_sync: Option<String>,
    /// A domain admin of the gMSA's domain.
    #[command(flatten)]
    pub(crate) credential: CredentialArgs,
}

#[derive(Subcommand)]
pub(crate) enum AgentCommand {
    /// Install the agent package (starts an INSTALL operation).
    Install {
        /// Package URI, e.g. file:///srv/AADConnectProvisioningAgentSetup.msi.
        #[arg(long, value_name = "URI")]
        source: String,
        /// Expected SHA-256 of the package (64 hex digits).
        #[arg(long, value_name = "HEX")]
        sha256: String,
        /// Accept the agent's license terms (required by the daemon).
        #[arg(long)]
        accept_license: bool,
        /// Cloud to register with [daemon default: its tenant.cloud].
        #[arg(long, value_enum)]
        cloud: Option<Cloud>,
        /// Install the package only: no sign-in, no registration.
        #[arg(long)]
        skip_registration: bool,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Upload a local package into the host's staging (PackageService),
    /// streamed in 256 KiB chunks, resumed if the connection breaks; prints
    /// the `staged:sha256:<hex>` source Install then takes.
    Upload {
        /// The package (.msi or .exe).
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Sign provd in to the tenant (device code; starts a SIGN_IN operation).
    SignIn {
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Uninstall the agent package (starts an UNINSTALL operation).
    Uninstall {
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Take this host out of cloud sync: stop, leave the tenant's agent
    /// groups, uninstall, leave the gMSA's principals, remove the
    /// permissions when no other agent uses the account, forget (starts a
    /// DECOMMISSION operation).
    Decommission {
        #[command(flatten)]
        decommission: DecommissionArgs,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// What `agent decommission` with the same flags would do now; changes
    /// nothing.
    PlanDecommission {
        #[command(flatten)]
        decommission: DecommissionArgs,
    },
    /// Register the agent again through its module when its registration
    /// certificate expired or the tenant quarantines a configuration with
    /// HybridIdentityServiceInvalidResource (starts a REPAIR_AGENT
    /// operation; a no-op when nothing is broken, unless --force).
    Repair {
        /// Register again even when nothing is found broken.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Show the agent as the host sees it.
    Get,
}
