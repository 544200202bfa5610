//! `provctl`: the command-line client of provd.
//!
//! Talks gRPC over mutual TLS to one daemon. Connection settings come from
//! flags or a small TOML file (see `connect.rs`); every RPC of every provd.v1
//! service has a subcommand (flags here and in `args/`, calls in
//! `handlers/`); output is friendly text or proto3 JSON, one document per
//! line (see `render/`).
//!
//! Exit codes: 0 success; 1 an RPC or I/O error, an operation watched to a
//! FAILED/CANCELLED/INTERRUPTED end, a Verify report of FAIL, or a health
//! status other than SERVING; 2 a usage error.

// The crate root is this file, so submodules need explicit paths.
mod args;
mod connect;
mod diagnostics;
mod document;
mod fleet;
mod fleet_status;
mod fleet_verify;
mod handlers;
mod hosts;
mod render;
mod upload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use provd_proto::v1;

use args::{
    AgentCommand, CloudSyncCommand, DiagnosticsCommand, FleetDiagnosticsArgs, FleetStatusArgs,
    FleetVerifyArgs, HostCommand,
};

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

#[derive(Parser)]
#[command(
    name = "provctl",
    version,
    about = "Command-line client for provd (gRPC over mutual TLS)"
)]
struct Cli {
    /// Output format: friendly text, or proto3 JSON (one document per line).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Human,
    Json,
}

/// How to reach the daemon. Flags win over the config file.
#[derive(Args, Debug, Default)]
#[command(next_help_heading = "Connection")]
struct ConnArgs {
    /// Daemon address [default: https://127.0.0.1:8443].
    #[arg(long, global = true, value_name = "URL")]
    endpoint: Option<String>,
    /// TOML file with keys endpoint, ca, cert, key, server_name (relative
    /// paths are relative to the file).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// CA certificate (PEM) the server certificate must chain to.
    #[arg(long, global = true, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Name to verify the server certificate against [default: the
    /// endpoint's host].
    #[arg(long, global = true, value_name = "NAME")]
    server_name: Option<String>,
    /// Directory written by `provd pki init`: means --ca DIR/ca.pem,
    /// --cert DIR/client-ROLE.pem, --key DIR/client-ROLE.key.
    #[arg(long, global = true, value_name = "DIR", requires = "role")]
    pki_dir: Option<PathBuf>,
    /// Which client certificate of --pki-dir to use.
    #[arg(long, global = true, value_enum, requires = "pki_dir")]
    role: Option<Role>,
    /// Start a trace: send a new W3C traceparent with every call and print
    /// "trace id: <32 hex>" to stderr (the daemon's spans carry that id).
    #[arg(long, global = true)]
    trace: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Role {
    Admin,
    Operator,
    Viewer,
}

#[derive(Subcommand)]
enum Command {
    /// The provisioning agent on the daemon's host (AgentService).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Long-running operations (OperationsService).
    #[command(subcommand, visible_alias = "op")]
    Ops(OpsCommand),
    /// Stream an operation's events until it ends (same as `ops watch`).
    Watch(WatchArgs),
    /// The agent's gMSA and its directory permissions (ServiceAccountService).
    #[command(subcommand)]
    Gmsa(GmsaCommand),
    /// The AD domains the agent synchronizes (DirectoryService).
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Domain controllers: discovery and priority (DomainControllerService).
    #[command(subcommand)]
    Dc(DcCommand),
    /// Reconcile the host with a desired-state document (TOML, YAML or JSON):
    /// prints the plan, applies it as one operation and follows it; exits 1
    /// unless it SUCCEEDED.
    Apply(ApplyArgs),
    /// What `apply` would change now, changing nothing.
    Plan(PlanArgs),
    /// Many daemons at once, from an inventory (see `fleet apply --help`).
    #[command(subcommand)]
    Fleet(FleetCommand),
    /// Run the end-to-end checks (VerifyService); exits 1 on a FAIL report.
    Verify(VerifyArgs),
    /// Password writeback (WritebackService).
    #[command(subcommand)]
    Writeback(WritebackCommand),
    /// Microsoft Entra cloud sync configurations, one per added domain
    /// (CloudSyncService).
    #[command(subcommand)]
    CloudSync(CloudSyncCommand),
    /// The host's prerequisites provd can fix: TLS 1.2, VaultSvc, the agent
    /// service's managed-account flag, the execution policy (HostService).
    #[command(subcommand)]
    Host(HostCommand),
    /// A redacted support bundle from the daemon's host (DiagnosticsService).
    #[command(subcommand)]
    Diagnostics(DiagnosticsCommand),
    /// grpc.health.v1 Check; exits 1 unless SERVING.
    Health {
        /// Service name to check; empty means the whole daemon.
        #[arg(long, default_value = "")]
        service: String,
    },
}

/// Flags every mutating command takes.
#[derive(Args, Debug)]
struct MutateArgs {
    /// Idempotency key: retrying with the same key returns the same operation.
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
    /// Watch the operation to its end; exit 1 unless it SUCCEEDED.
    #[arg(long)]
    wait: bool,
}

/// A directory or tenant account. The password is never a flag.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("password_source").args(["password_file", "password_stdin"])))]
struct CredentialArgs {
    /// Account name: user@domain (UPN), DOMAIN\user, or a bind DN.
    #[arg(long, value_name = "USER", requires = "password_source")]
    username: Option<String>,
    /// Read the password from the first line of FILE.
    #[arg(
        long,
        value_name = "FILE",
        requires = "username",
        conflicts_with = "password_stdin"
    )]
    password_file: Option<PathBuf>,
    /// Read the password from the first line of standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum OpsCommand {
    /// Show one operation.
    Get { id: String },
    /// List operations, newest first.
    List {
        /// Only operations in this state.
        #[arg(long, value_enum)]
        state: Option<OpState>,
        /// Only operations of this kind.
        #[arg(long, value_enum)]
        kind: Option<OpKind>,
        /// Only operations this caller started (the client certificate's
        /// common name, exactly; `drift` for the drift watch's re-apply).
        #[arg(long = "by", value_name = "CN")]
        by: Option<String>,
        /// Only operations created at or after this time: RFC 3339
        /// (`2025-06-01T08:00:00Z`) or a duration ago (`2h`, `7days`).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<pbjson_types::Timestamp>,
        /// Only operations created before this time (same forms).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: Option<pbjson_types::Timestamp>,
        /// At most this many (daemon default 50, at most 1000).
        #[arg(long, value_name = "N")]
        page_size: Option<u32>,
        /// Token from a previous page.
        #[arg(long, value_name = "TOKEN")]
        page_token: Option<String>,
    },
    /// Request cancellation of a running operation.
    Cancel {
        id: String,
        /// Watch the operation to its end.
        #[arg(long)]
        wait: bool,
    },
    /// Stream an operation's events until it ends.
    Watch(WatchArgs),
}

#[derive(Args, Debug)]
struct WatchArgs {
    id: String,
    /// Replay only events after this sequence number.
    #[arg(long, value_name = "N", default_value_t = 0)]
    after: u64,
}

#[derive(Subcommand)]
enum GmsaCommand {
    /// Create a gMSA and record it as the agent's account.
    Create {
        /// Domain to create it in, e.g. lab.example.test.
        #[arg(long)]
        domain: String,
        /// sAMAccountName [daemon default: provAgentgMSA$].
        #[arg(long)]
        name: Option<String>,
        /// Container DN [daemon default: CN=Managed Service Accounts,<domain DN>].
        #[arg(long, value_name = "DN")]
        container_dn: Option<String>,
        /// dNSHostName [daemon default: <name>.<domain>].
        #[arg(long, value_name = "HOST")]
        dns_host_name: Option<String>,
        /// Days between password changes [daemon default: 30].
        #[arg(long, value_name = "DAYS")]
        password_interval_days: Option<u32>,
        /// Kerberos encryption type (repeatable) [daemon default: aes128, aes256].
        #[arg(long = "encryption-type", value_enum, value_name = "TYPE")]
        encryption_types: Vec<EncryptionType>,
        /// Computer or group allowed to retrieve the password (repeatable).
        #[arg(long = "principal", value_name = "NAME")]
        principals: Vec<String>,
        #[command(flatten)]
        credential: CredentialArgs,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Validate an existing gMSA and record it as the agent's account.
    UseCustom {
        /// The gMSA, by sAMAccountName or DN.
        #[arg(long)]
        name: String,
        #[arg(long)]
        domain: String,
        /// Computer account that must be able to retrieve the password
        /// [daemon default: this host's].
        #[arg(long, value_name = "NAME")]
        host_account: Option<String>,
        #[command(flatten)]
        credential: CredentialArgs,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Show the recorded service account and its permissions.
    Get {
        /// Domain whose permissions to report [default: the account's].
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        credential: CredentialArgs,
    },
    /// Grant, plan or remove permission profiles.
    Grant {
        #[arg(long)]
        domain: String,
        /// Profile (repeatable).
        #[arg(long = "profile", value_enum, value_name = "PROFILE")]
        profiles: Vec<Profile>,
        /// OU DN to set the ACEs on (repeatable) [default: the domain root].
        #[arg(long = "ou", value_name = "DN")]
        organizational_units: Vec<String>,
        #[arg(long, value_enum)]
        mode: GrantMode,
        /// Account the ACEs are for [default: the recorded gMSA].
        #[arg(long)]
        trustee: Option<String>,
        #[command(flatten)]
        credential: CredentialArgs,
        #[command(flatten)]
        mutate: MutateArgs,
    },
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Add (or refresh) a domain.
    Add {
        domain: String,
        /// DC to use, in order (repeatable); becomes the domain's DC priority.
        #[arg(long = "preferred-dc", value_name = "HOST")]
        preferred_domain_controllers: Vec<String>,
        #[command(flatten)]
        credential: CredentialArgs,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// List the domains added.
    List,
    /// Remove a domain from provd's configuration.
    Remove {
        domain: String,
        #[command(flatten)]
        mutate: MutateArgs,
    },
}

#[derive(Subcommand)]
enum DcCommand {
    /// List a domain's DCs and probe each.
    Discover {
        domain: String,
        /// List only; do not probe.
        #[arg(long)]
        skip_probe: bool,
        /// Per-DC probe time limit, e.g. 5s, 500ms.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        probe_timeout: Option<pbjson_types::Duration>,
        #[command(flatten)]
        credential: CredentialArgs,
    },
    /// Show a domain's DC priority and its etag.
    GetPriority { domain: String },
    /// Set a domain's DC priority (most preferred first), or clear it.
    #[command(group(ArgGroup::new("list").args(["domain_controllers", "clear"]).required(true)))]
    SetPriority {
        domain: String,
        /// DC host names, most preferred first.
        #[arg(value_name = "DC")]
        domain_controllers: Vec<String>,
        /// Clear the priority (DNS SRV order applies again).
        #[arg(long)]
        clear: bool,
        /// Write only if the stored priority still has this etag.
        #[arg(long)]
        etag: Option<String>,
        /// Keep DCs that cannot be reached or confirmed now, with a warning.
        #[arg(long)]
        allow_unreachable: bool,
        /// Optional: with a domain admin, the agent is given the new order too.
        #[command(flatten)]
        credential: CredentialArgs,
        #[command(flatten)]
        mutate: MutateArgs,
    },
}

#[derive(Args, Debug)]
struct ApplyArgs {
    /// The desired-state document (e.g. deploy/examples/agent-host.toml).
    file: PathBuf,
    /// Start the operation and return without following it.
    #[arg(long)]
    no_wait: bool,
    /// Idempotency key: retrying with the same key returns the same operation.
    #[arg(long, value_name = "ID")]
    request_id: Option<String>,
    /// The domain admin for directory changes.
    #[command(flatten)]
    credential: CredentialArgs,
}

#[derive(Subcommand, Debug)]
enum FleetCommand {
    /// Apply one document to every host of an inventory: a canary first
    /// (the host marked `canary = true`, else the first), then waves; stop
    /// at the first failure unless --continue-on-error. Prints a table;
    /// exits 1 unless every host SUCCEEDED.
    Apply(FleetApplyArgs),
    /// Verify every host; one row each. Exits 1 if any host fails: its
    /// report is FAIL or SKIP, or it is unreachable (PASS and WARN pass).
    Verify(FleetVerifyArgs),
    /// Every host's status in one call each (StatusService.GetHostStatus):
    /// agent version, services, last operation, drift; one row each. Exits
    /// 1 if any host fails (see `fleet status --help` for the reasons).
    Status(FleetStatusArgs),
    /// A support bundle from every host, `--concurrency` at once, into
    /// `--out-dir/<host>.zip`; one row each. Exits 1 unless every host's
    /// bundle arrived whole.
    Diagnostics(FleetDiagnosticsArgs),
}

#[derive(Args, Debug)]
struct FleetApplyArgs {
    /// Inventory (TOML): `[defaults]` ca/cert/key/server_name, then
    /// `[[hosts]]` name, endpoint, optional canary and overrides.
    #[arg(long, value_name = "FILE")]
    inventory: PathBuf,
    /// The desired-state document, as for `apply`.
    file: PathBuf,
    /// Hosts applied at once.
    #[arg(long, default_value_t = 10)]
    concurrency: usize,
    /// Package uploads at once, for an `upload:` agent source (at most
    /// `--concurrency`): each stream holds about 1 MiB in flight, and the
    /// transfer is bound by the link and TLS rather than the hosts'
    /// latency, so more streams cost memory without speed.
    #[arg(long, default_value_t = 32)]
    upload_concurrency: usize,
    /// Hosts per wave after the canary [default: all the rest].
    #[arg(long)]
    wave_size: Option<usize>,
    /// Least time between two hosts starting an agent registration (the
    /// document has an agent section), e.g. 30s; 0 for none.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    registration_gap: std::time::Duration,
    /// Keep going after a host fails.
    #[arg(long)]
    continue_on_error: bool,
    /// No canary host alone first: allowed only for a document of domains
    /// (without cloud sync), the service account and permissions, or an
    /// empty one; refused for one with an agent, host, writeback or cloud
    /// sync section.
    #[arg(long)]
    no_canary: bool,
    /// Also write the JSON report here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// The domain admin for directory changes (the same on every host).
    #[command(flatten)]
    credential: CredentialArgs,
}

#[derive(Args, Debug)]
struct PlanArgs {
    /// The desired-state document.
    file: PathBuf,
    /// The domain admin the plan reads the directory as.
    #[command(flatten)]
    credential: CredentialArgs,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Only check this domain (repeatable) [default: every added domain].
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,
    /// Only run this category (repeatable) [default: all].
    #[arg(long = "category", value_enum, value_name = "CATEGORY")]
    categories: Vec<Category>,
    /// Time limit per check, e.g. 10s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    check_timeout: Option<pbjson_types::Duration>,
    #[command(flatten)]
    credential: CredentialArgs,
}

#[derive(Subcommand)]
enum WritebackCommand {
    /// Enable or disable password writeback.
    #[command(group(ArgGroup::new("switch").args(["enable", "disable"]).required(true)))]
    Set {
        #[arg(long)]
        enable: bool,
        #[arg(long)]
        disable: bool,
        /// Domain to grant/revoke in (repeatable) [default: every added domain].
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        #[command(flatten)]
        credential: CredentialArgs,
        #[command(flatten)]
        mutate: MutateArgs,
    },
    /// Report the tenant flag, each domain's readiness and whether they agree.
    Get {
        /// Only this domain [default: every added domain].
        #[arg(long)]
        domain: Option<String>,
        /// Users to sample per domain for blocked inheritance [daemon default: 1000].
        #[arg(long, value_name = "N")]
        user_sample_size: Option<u32>,
        #[command(flatten)]
        credential: CredentialArgs,
    },
}

/// A domain's cloud sync configuration (provd.v1.CloudSyncSpec). The
/// notification email is part of a secret's value, so it is never a flag.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("jobs").args(["enabled", "disabled"]).required(true)))]
#[command(group(ArgGroup::new("email_source").args(["notification_email_file", "notification_email_stdin"])))]
struct CloudSyncSpecArgs {
    /// The jobs run.
    #[arg(long)]
    enabled: bool,
    /// The jobs are paused (state kept; nothing deleted).
    #[arg(long)]
    disabled: bool,
    /// Also sync password hashes (the AD2AADPasswordHash job).
    #[arg(long)]
    password_hash_sync: bool,
    /// An OU in scope (repeatable). Neither --ou nor --group: all users; not
    /// both (the daemon refuses that).
    #[arg(long = "ou", value_name = "DN")]
    organizational_units: Vec<String>,
    /// A security group whose direct members are in scope (repeatable).
    #[arg(long = "group", value_name = "DN")]
    security_groups: Vec<String>,
    /// Accidental delete prevention's threshold: a run deletes at most N − 1
    /// users [default: 500].
    #[arg(long, value_name = "N")]
    delete_threshold: Option<u32>,
    /// Turn accidental delete prevention off.
    #[arg(long, conflicts_with = "delete_threshold")]
    no_delete_prevention: bool,
    /// Read the email address quarantine notifications go to from the first
    /// line of FILE. It is part of a secret's value, so it is never a
    /// command-line argument. Left out: no notifications.
    #[arg(long, value_name = "FILE")]
    notification_email_file: Option<PathBuf>,
    /// Read that email address from the first line of standard input.
    #[arg(long)]
    notification_email_stdin: bool,
}

/// An RFC 3339 time, or a duration meaning that long ago.
fn parse_time(text: &str) -> Result<pbjson_types::Timestamp, String> {
    parse_time_at(text, std::time::SystemTime::now())
}

fn parse_time_at(
    text: &str,
    now: std::time::SystemTime,
) -> Result<pbjson_types::Timestamp, String> {
    use std::time::UNIX_EPOCH;
    let at = match humantime::parse_rfc3339_weak(text) {
        Ok(at) => at,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                format!("{text:?} is neither an RFC 3339 time (2025-06-01T08:00:00Z) nor a duration ago (2h)")
            })?;
            now.checked_sub(ago)
                .ok_or_else(|| format!("{text:?} ago is before the epoch"))?
        }
    };
    let since = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{text:?} is before 1970"))?;
    Ok(pbjson_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).map_err(|_| "time too far".to_string())?,
        // Below 1e9, so it fits.
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    })
}

fn parse_duration(text: &str) -> Result<pbjson_types::Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    Ok(pbjson_types::Duration {
        seconds: i64::try_from(d.as_secs()).map_err(|_| "duration too long".to_string())?,
        // Below 1e9, so it fits.
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------
// Enums: clap spelling -> proto value
// ---------------------------------------------------------------------------

/// Declares a clap value enum whose variants map onto a proto enum.
macro_rules! proto_enum {
    ($name:ident => $proto:ty { $($variant:ident => $value:ident),* $(,)? }) => {
        #[derive(Clone, Copy, Debug, ValueEnum)]
        enum $name { $($variant),* }

        impl $name {
            fn proto(self) -> i32 {
                match self { $(Self::$variant => <$proto>::$value as i32),* }
            }
        }
    };
}

proto_enum!(Cloud => v1::CloudEnvironment {
    Public => AzurePublic,
    UsGovernment => AzureUsGovernment,
});

proto_enum!(OpState => v1::OperationState {
    Pending => Pending,
    Running => Running,
    Succeeded => Succeeded,
    Failed => Failed,
    Cancelled => Cancelled,
    Interrupted => Interrupted,
});

proto_enum!(OpKind => v1::OperationKind {
    Install => Install,
    CreateGmsa => CreateGmsa,
    UseCustomGmsa => UseCustomGmsa,
    GrantPermissions => GrantPermissions,
    AddDirectory => AddDirectory,
    RemoveDirectory => RemoveDirectory,
    SetDcPriority => SetDcPriority,
    SetPasswordWriteback => SetPasswordWriteback,
    Uninstall => Uninstall,
    SignIn => SignIn,
    ApplyConfiguration => ApplyConfiguration,
    SetCloudSync => SetCloudSync,
    ControlCloudSync => ControlCloudSync,
    RemediateHost => RemediateHost,
    Decommission => Decommission,
    RepairAgent => RepairAgent,
    VerboseTrace => VerboseTrace,
});

proto_enum!(EncryptionType => v1::EncryptionType {
    Rc4 => Rc4,
    Aes128 => Aes128,
    Aes256 => Aes256,
});

proto_enum!(Profile => v1::PermissionProfile {
    BasicRead => BasicRead,
    PasswordHashSync => PasswordHashSync,
    PasswordWriteBack => PasswordWriteBack,
    HybridExchange => HybridExchange,
    ExchangeMailPublicFolder => ExchangeMailPublicFolder,
    UserGroupCreateDelete => UserGroupCreateDelete,
    ConsistencyGuid => ConsistencyGuid,
    All => All,
});

proto_enum!(GrantMode => v1::GrantMode {
    Plan => Plan,
    Apply => Apply,
    Remove => Remove,
    PlanRemove => PlanRemove,
});

proto_enum!(ResetScope => v1::ResetScope {
    Escrows => Escrows,
    Watermark => Watermark,
    QuarantineState => QuarantineState,
    Full => Full,
    ForceDeletes => ForceDeletes,
});

proto_enum!(HostFix => v1::HostFix {
    Tls12 => Tls12,
    VaultServiceManual => VaultServiceManual,
    ServiceAccountManaged => ServiceAccountManaged,
    ExecutionPolicyRemoteSigned => ExecutionPolicyRemoteSigned,
});

proto_enum!(Category => v1::CheckCategory {
    Host => Host,
    Tenant => Tenant,
    Directory => Directory,
    Writeback => Writeback,
});

// ---------------------------------------------------------------------------
// Entry point and error reporting
// ---------------------------------------------------------------------------

/// A mistake in how provctl was invoked that clap cannot see (exit 2).
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider (ring) for every rustls config in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("provctl: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(handlers::run(cli)) {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// The error and its causes joined by ": ", leaving out a cause that only
/// repeats the one before it (hyper and rustls errors often nest an error
/// in one that displays it again).
fn chain(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|prev| prev.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// Prints `err` to stderr and picks the exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    if let Some(UsageError(message)) = err.downcast_ref::<UsageError>() {
        eprintln!("provctl: {message}");
        return ExitCode::from(2);
    }
    if let Some(status) = err.downcast_ref::<tonic::Status>() {
        eprint!("{}", render::status(status));
        return ExitCode::FAILURE;
    }
    if let Some(io) = err.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        // The reader went away (`provctl ... | head`): nothing left to say.
        return ExitCode::SUCCESS;
    }
    eprintln!("provctl: {}", chain(err));
    ExitCode::FAILURE
}
