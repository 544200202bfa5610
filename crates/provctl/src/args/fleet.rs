//! The read-only fleet sweeps: `provctl fleet verify` and `fleet status`.

use std::path::PathBuf;

use clap::Args;

use crate::CredentialArgs;

/// Hosts read at once by default: enough for 200 hosts in a few seconds,
/// few enough for one runtime thread's TLS handshakes.
const READ_CONCURRENCY: &str = "64";

#[derive(Args, Debug)]
pub(crate) struct FleetVerifyArgs {
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// Hosts verified at once (one connection each).
    #[arg(long, default_value = READ_CONCURRENCY)]
    pub concurrency: usize,
    /// Without a credential only the checks that need none run (host,
    /// tenant; the directory checks bind as each host's computer account or
    /// are SKIP).
    #[command(flatten)]
    pub credential: CredentialArgs,
}

#[derive(Args, Debug)]
#[command(after_long_help = STATUS_HELP)]
pub(crate) struct FleetStatusArgs {
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,
    /// Hosts read at once (one connection each).
    #[arg(long, default_value = READ_CONCURRENCY)]
    pub concurrency: usize,
    /// Time allowed per host for the connection and the call; a host that
    /// takes longer is UNREACHABLE.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

const STATUS_HELP: &str = "\
A host FAILS (exit 1 if any does) for each of these reasons, reported as
`CODE: detail` in the row's REASONS (JSON: `reasons`, and `failed: true`):
  UNREACHABLE            no connection within --timeout, or TLS refused
  ERROR                  the call failed (e.g. PERMISSION_DENIED; UNAVAILABLE
                         when the host backend did not answer)
  HOST_UNAVAILABLE       provd cannot read the agent here (no Windows host
                         backend: any non-Windows host)
  AGENT_NOT_INSTALLED    no agent package
  SERVICE_NOT_RUNNING    either agent service (provisioning agent, updater)
                         is not RUNNING
  LAST_OPERATION_FAILED  provd's newest operation ended FAILED, CANCELLED or
                         INTERRUPTED
  DRIFT                  the drift watch has a present finding (agent version,
                         agent settings or host prerequisites changed outside
                         provd and not put back)
Not failures: the drift watch OFF ([drift] verify_interval unset) or PENDING
(no round yet), both shown as unknown; no registration or tenant session; an
operation running. The Python client's provd.fleet.status and the Ansible
module provd.agent.provd_status judge the same way.";
