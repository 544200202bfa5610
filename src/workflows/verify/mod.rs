//! VerifyService: read-only checks of the whole setup — host, tenant, each
//! domain, password writeback — streamed as they finish, then a summary.
//!
//! Checks run in groups that share one read (the agent status, the tenant's
//! agent list, one bind per domain); groups run concurrently, each under the
//! per-check time limit. A check that fails is a FAIL result with a remedy,
//! never an error of the call. One file per group: `host`, `agent` (the
//! agent's module and the domains it serves), `tenant`, `directory` (DCs,
//! the gMSA and its permissions, and the host's right to its password),
//! `prereq` (the host's prerequisites from Microsoft's pages), `outbound`
//! (the documented endpoints through the agent's proxy), `writeback`,
//! `sync` (each domain's cloud sync jobs), `gmsa_prereq` (each domain's
//! Managed Service Accounts container, and a usable KDS root key on every
//! DC), `certificates` (provd's own server certificate and client CAs, as
//! served now) with `registration` (the agent's registration certificate).

mod agent;
mod certificates;
mod directory;
mod gmsa_prereq;
mod gmsa_proof;
mod host;
mod outbound;
mod prereq;
mod registration;
mod sync;
mod tenant;
mod writeback;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use opentelemetry::KeyValue;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::backends::agent_config::AgentConfig;
use crate::backends::directory::BindCredential;
use crate::backends::host::{Host, LogonRights};
use crate::backends::store::Store;
use crate::workflows::cloud_sync::CloudSyncWorkflows;
use crate::workflows::decommission::{self, record::DecommissionRecord};
use crate::workflows::directory::DirectoryWorkflows;
use crate::workflows::domain_controllers::{
    Connect, DcSession, DomainControllerWorkflows, NO_READER, Reader,
};
use crate::workflows::operations::now_ms;
use crate::workflows::service_account::{self, AccountRecord, ServiceAccountWorkflows};
use crate::workflows::tenant::TenantWorkflows;
use crate::workflows::validate::{self, dns_name};
use crate::workflows::writeback::{TenantState, WritebackWorkflows};
use crate::workflows::{Error, FieldViolation};

pub use certificates::Served;
pub use outbound::{OutboundProbes, OutboundSettings};

pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a domain's checks that need a bind are SKIP: nobody to bind as, or
/// this host's own identity did not bind.
struct Unread {
    message: String,
    remedy: &'static str,
}

impl Unread {
    fn check(&self, id: &'static str, category: Category, domain: &str) -> Check {
        check(id, category, Status::Skip, self.message.clone())
            .subject(domain)
            .remedy(self.remedy)
    }
}

/// What to look at when a domain's DCs cannot be found.
const DISCOVERY_REMEDY: &str = "check DNS (SRV _ldap._tcp.dc._msdcs) and LDAPS (636) to the DCs";

/// A clock this far from this host's (seconds) is a WARN, and this far a
/// FAIL: Kerberos allows 5 minutes.
const SKEW_WARN_SECS: i64 = 60;
const SKEW_FAIL_SECS: i64 = 300;

/// PASS, WARN or FAIL for a clock `skew_secs` away from this host's.
fn skew_status(skew_secs: i64) -> Status {
    if skew_secs.abs() > SKEW_FAIL_SECS {
        Status::Fail
    } else if skew_secs.abs() > SKEW_WARN_SECS {
        Status::Warn
    } else {
        Status::Pass
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Host,
    Tenant,
    Directory,
    Writeback,
}

impl Category {
    /// The metric label (`category`).
    pub fn label(self) -> &'static str {
        match self {
            Category::Host => "HOST",
            Category::Tenant => "TENANT",
            Category::Directory => "DIRECTORY",
            Category::Writeback => "WRITEBACK",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Pass, Status::Warn, Status::Fail, Status::Skip];

    /// The metric label (`status`).
    pub fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// Records a check's status as `provd.verify.check`: one series per status,
/// 1 on the check's status and 0 on the other three, so an alert or a
/// dashboard selects `status="FAIL"` and sums, without a value code to
/// know (see `deploy/otel/README.md`).
fn export(c: &Check) {
    let metrics = crate::telemetry::metrics();
    for status in Status::ALL {
        metrics.verify_check.record(
            u64::from(status == c.status),
            &[
                KeyValue::new("check", c.id),
                KeyValue::new("subject", c.subject.clone()),
                KeyValue::new("category", c.category.label()),
                KeyValue::new("status", status.label()),
            ],
        );
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub id: &'static str,
    pub category: Category,
    pub status: Status,
    pub subject: String,
    pub message: String,
    pub remedy: String,
    pub duration: Duration,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub status: Status,
    pub pass: u32,
    pub warn: u32,
    pub fail: u32,
    pub skip: u32,
    pub start_time_ms: i64,
    pub duration: Duration,
}

pub enum VerifyItem {
    Check(Check),
    Report(Report),
}

#[derive(Debug, Default)]
pub struct VerifyRequest {
    pub domains: Vec<String>,
    /// `None` marks a category the transport could not map (UNSPECIFIED).
    pub categories: Vec<Option<Category>>,
    pub credential: Option<BindCredential>,
    pub check_timeout: Option<Duration>,
}

/// Builds one check; `subject`, remedy and attributes are added by the
/// builder methods.
fn check(
    id: &'static str,
    category: Category,
    status: Status,
    message: impl Into<String>,
) -> Check {
    Check {
        id,
        category,
        status,
        subject: String::new(),
        message: message.into(),
        remedy: String::new(),
        duration: Duration::ZERO,
        attributes: BTreeMap::new(),
    }
}

impl Check {
    fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }
    fn remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remedy = remedy.into();
        self
    }
    fn attr(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attributes.insert(key.into(), value.into());
        self
    }
}

/// Everything a run needs, shared by its groups.
struct Run {
    dcs: Arc<DomainControllerWorkflows>,
    host: Arc<dyn Host>,
    logon_rights: Arc<dyn LogonRights>,
    agent_config: Arc<dyn AgentConfig>,
    tenant: Arc<TenantWorkflows>,
    gmsa: Arc<ServiceAccountWorkflows>,
    writeback: Arc<WritebackWorkflows>,
    cloud_sync: Arc<CloudSyncWorkflows>,
    outbound: OutboundProbes,
    /// What the TLS listener serves, as the run began.
    served: Arc<crate::pki::ServedCertificates>,
    /// Who the directory checks bind as: the request's credential, else
    /// this host's computer account.
    reader: Option<Reader>,
    domains: Vec<String>,
    account: Option<AccountRecord>,
    /// DecommissionAgent took this host's agent away (and no Install has
    /// since): the agent checks expect no agent.
    decommissioned: Option<DecommissionRecord>,
    /// The tenant's writeback flag, read once per run (host and directory
    /// checks both ask; it is a Graph call).
    writeback_flag: tokio::sync::OnceCell<TenantState>,
}

impl Run {
    /// Why a check of the agent is SKIP: DecommissionAgent took it away.
    fn decommissioned_skip(&self) -> Option<String> {
        self.decommissioned.as_ref().map(|r| {
            format!(
                "this host's agent was decommissioned (operation {}); see \
                 host.agent.decommissioned",
                r.operation_id
            )
        })
    }

    /// Who `domain`'s checks bind as, or why they read nothing: this
    /// host's identity is tried once first, so that its failure to bind
    /// skips the checks as a missing credential does, instead of failing
    /// each.
    async fn reader_for(&self, domain: &str) -> Result<&Reader, Unread> {
        let Some(reader) = &self.reader else {
            return Err(Unread {
                message: NO_READER.into(),
                remedy: "",
            });
        };
        if reader.is_host()
            && let Err(e) =
                DcSession::open(&self.dcs, domain, reader.credential(), Connect::Quiet).await
            && reader.host_refused(&e)
        {
            return Err(Unread {
                message: format!("cannot bind as {}: {e}", reader.who()),
                remedy: "fix this host's Kerberos identity (directory.host_principal and \
                         directory.host_keytab on Linux; the computer account of a joined \
                         Windows host), or verify with a credential",
            });
        }
        Ok(reader)
    }

    async fn writeback_on(&self) -> bool {
        let flag = self
            .writeback_flag
            .get_or_init(|| self.writeback.tenant_state())
            .await;
        *flag == TenantState::Enabled
    }
}

pub struct VerifyWorkflows {
    store: Arc<dyn Store>,
    dcs: Arc<DomainControllerWorkflows>,
    host: Arc<dyn Host>,
    logon_rights: Arc<dyn LogonRights>,
    agent_config: Arc<dyn AgentConfig>,
    tenant: Arc<TenantWorkflows>,
    gmsa: Arc<ServiceAccountWorkflows>,
    writeback: Arc<WritebackWorkflows>,
    cloud_sync: Arc<CloudSyncWorkflows>,
    outbound: OutboundProbes,
    served: Served,
}

impl VerifyWorkflows {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        dcs: Arc<DomainControllerWorkflows>,
        host: Arc<dyn Host>,
        logon_rights: Arc<dyn LogonRights>,
        agent_config: Arc<dyn AgentConfig>,
        tenant: Arc<TenantWorkflows>,
        gmsa: Arc<ServiceAccountWorkflows>,
        writeback: Arc<WritebackWorkflows>,
        cloud_sync: Arc<CloudSyncWorkflows>,
        outbound: OutboundProbes,
        served: Served,
    ) -> Self {
        Self {
            store,
            dcs,
            host,
            logon_rights,
            agent_config,
            tenant,
            gmsa,
            writeback,
            cloud_sync,
            outbound,
            served,
        }
    }

    /// Validates, then runs the checks in the background; the receiver gets
    /// each check as it finishes and the report last. Dropping the receiver
    /// stops the remaining checks.
    pub async fn verify(
        &self,
        request: VerifyRequest,
    ) -> Result<mpsc::Receiver<VerifyItem>, Error> {
        let mut v = Vec::new();
        let mut categories = Vec::new();
        // Too long a list is reported alone, not entry by entry.
        for bounded in [
            validate::at_most("domains", &request.domains, validate::MAX_NAME_LIST),
            validate::at_most("categories", &request.categories, validate::MAX_ENUM_LIST),
        ] {
            v.extend(bounded.err());
        }
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        for (i, c) in request.categories.iter().enumerate() {
            match c {
                Some(c) => categories.push(*c),
                None => v.push(FieldViolation::new(
                    format!("categories[{i}]"),
                    "must not be CHECK_CATEGORY_UNSPECIFIED",
                )),
            }
        }
        let mut domains = Vec::new();
        for (i, d) in request.domains.iter().enumerate() {
            match dns_name(&format!("domains[{i}]"), d) {
                Ok(d) => domains.push(d),
                Err(e) => v.push(e),
            }
        }
        let timeout = request.check_timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT);
        if !(Duration::from_secs(1)..=Duration::from_secs(120)).contains(&timeout) {
            v.push(FieldViolation::new(
                "check_timeout",
                "must be from 1s to 120s",
            ));
        }
        if request.credential.is_some() {
            v.extend(validate::credential(
                "credential",
                request.credential.as_ref(),
            ));
        }
        if !v.is_empty() {
            return Err(Error::InvalidArgument(v));
        }
        let added = DirectoryWorkflows::list_domains(&self.store).await?;
        if let Some(missing) = domains.iter().find(|d| !added.contains(d)) {
            return Err(Error::NotFound(format!("directory {missing}")));
        }
        if domains.is_empty() {
            domains = added;
        }
        let wanted = |c: Category| categories.is_empty() || categories.contains(&c);
        let reader = self.dcs.reader(request.credential);
        let run = self.run(reader, domains).await?;

        let mut groups: Vec<Group> = Vec::new();
        if wanted(Category::Host) {
            groups.push(Group::Host);
            groups.push(Group::Prerequisites);
            groups.push(Group::Outbound);
            groups.push(Group::Agent);
            groups.push(Group::Certificates);
        }
        if wanted(Category::Tenant) {
            groups.push(Group::Tenant);
            groups.push(Group::CloudSync);
        }
        for d in &run.domains {
            if wanted(Category::Directory) {
                groups.push(Group::GmsaPrereq { domain: d.clone() });
            }
            if wanted(Category::Directory) || wanted(Category::Host) {
                groups.push(Group::Directory {
                    domain: d.clone(),
                    directory: wanted(Category::Directory),
                    host: wanted(Category::Host),
                });
            }
        }
        if wanted(Category::Writeback) {
            groups.push(Group::Writeback);
        }

        Ok(start(run, groups, timeout))
    }

    /// The checks that need no credential (host, agent, tenant: no
    /// directory bind), as the drift scheduler runs them: each is
    /// exported like an RPC's, and the run is no operation.
    pub async fn verify_credential_free(&self) -> Result<mpsc::Receiver<VerifyItem>, Error> {
        let domains = DirectoryWorkflows::list_domains(&self.store).await?;
        let run = self.run(None, domains).await?;
        let groups = vec![
            Group::Host,
            Group::Prerequisites,
            Group::Outbound,
            Group::Agent,
            Group::Certificates,
            Group::Tenant,
            Group::CloudSync,
        ];
        Ok(start(run, groups, DEFAULT_CHECK_TIMEOUT))
    }

    async fn run(&self, reader: Option<Reader>, domains: Vec<String>) -> Result<Arc<Run>, Error> {
        let served = self.served.borrow().clone();
        Ok(Arc::new(Run {
            dcs: self.dcs.clone(),
            host: self.host.clone(),
            logon_rights: self.logon_rights.clone(),
            agent_config: self.agent_config.clone(),
            tenant: self.tenant.clone(),
            gmsa: self.gmsa.clone(),
            writeback: self.writeback.clone(),
            cloud_sync: self.cloud_sync.clone(),
            outbound: self.outbound.clone(),
            served,
            reader,
            account: service_account::load_account(&self.store).await?,
            decommissioned: decommission::record::load(&self.store).await?,
            domains,
            writeback_flag: tokio::sync::OnceCell::new(),
        }))
    }
}

/// Runs `groups` in the background; the receiver gets each check, then the
/// report. The checks' spans (LDAP probes, tenant requests) stay in the
/// caller's trace.
fn start(run: Arc<Run>, groups: Vec<Group>, timeout: Duration) -> mpsc::Receiver<VerifyItem> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(drive(run, groups, timeout, tx).instrument(tracing::Span::current()));
    rx
}

#[derive(Debug, Clone)]
enum Group {
    Host,
    Prerequisites,
    Outbound,
    Agent,
    Certificates,
    Tenant,
    CloudSync,
    Directory {
        domain: String,
        directory: bool,
        host: bool,
    },
    GmsaPrereq {
        domain: String,
    },
    Writeback,
}

impl Group {
    /// What a group reports when it runs out of time.
    fn timeout_check(&self, limit: Duration) -> Check {
        let (id, category, subject) = match self {
            Group::Host => ("host.agent.installed", Category::Host, String::new()),
            Group::Prerequisites => ("host.tls12", Category::Host, String::new()),
            Group::Outbound => ("host.outbound.https", Category::Host, String::new()),
            Group::Agent => ("agent.module", Category::Host, String::new()),
            Group::Certificates => (certificates::ID, Category::Host, String::new()),
            Group::Tenant => ("tenant.agent.registered", Category::Tenant, String::new()),
            Group::CloudSync => ("tenant.sync.job", Category::Tenant, String::new()),
            Group::Directory { domain, .. } => (
                "directory.dc.reachable",
                Category::Directory,
                domain.clone(),
            ),
            Group::GmsaPrereq { domain } => (
                "directory.kds.effective",
                Category::Directory,
                domain.clone(),
            ),
            Group::Writeback => ("writeback.consistent", Category::Writeback, String::new()),
        };
        check(
            id,
            category,
            Status::Fail,
            format!("the checks did not finish within {}s", limit.as_secs()),
        )
        .subject(subject)
        .remedy(
            "look for an unreachable DC or tenant endpoint, or raise check_timeout (above \
             [reachability] timeout for the outbound checks)",
        )
    }
}

async fn drive(run: Arc<Run>, groups: Vec<Group>, limit: Duration, tx: mpsc::Sender<VerifyItem>) {
    let started = Instant::now();
    let start_time_ms = now_ms();
    let mut tasks = tokio::task::JoinSet::new();
    for group in groups {
        let run = run.clone();
        tasks.spawn(
            async move {
                let began = Instant::now();
                let outcome = tokio::time::timeout(
                    limit,
                    std::panic::AssertUnwindSafe(run_group(&run, &group)).catch_unwind(),
                )
                .await;
                let mut checks = match outcome {
                    Ok(Ok(checks)) => checks,
                    Ok(Err(_)) => vec![{
                        let mut c = group.timeout_check(limit);
                        c.message = "the check panicked (a bug in provd)".into();
                        c
                    }],
                    Err(_) => vec![group.timeout_check(limit)],
                };
                let took = began.elapsed();
                for c in &mut checks {
                    if c.duration.is_zero() {
                        c.duration = took;
                    }
                }
                checks
            }
            .instrument(tracing::Span::current()),
        );
    }
    let mut report = Report {
        status: Status::Skip,
        pass: 0,
        warn: 0,
        fail: 0,
        skip: 0,
        start_time_ms,
        duration: Duration::ZERO,
    };
    loop {
        let next = tokio::select! {
            next = tasks.join_next() => next,
            () = tx.closed() => {
                tasks.abort_all();
                return;
            }
        };
        let Some(joined) = next else { break };
        let Ok(checks) = joined else { continue };
        for c in checks {
            export(&c);
            match c.status {
                Status::Pass => report.pass += 1,
                Status::Warn => report.warn += 1,
                Status::Fail => report.fail += 1,
                Status::Skip => report.skip += 1,
            }
            if tx.send(VerifyItem::Check(c)).await.is_err() {
                tasks.abort_all();
                return;
            }
        }
    }
    report.status = if report.fail > 0 {
        Status::Fail
    } else if report.warn > 0 {
        Status::Warn
    } else if report.pass > 0 {
        Status::Pass
    } else {
        Status::Skip
    };
    report.duration = started.elapsed();
    let _ = tx.send(VerifyItem::Report(report)).await;
}

async fn run_group(run: &Run, group: &Group) -> Vec<Check> {
    match group {
        Group::Host => host::checks(run).await,
        Group::Prerequisites => prereq::checks(run).await,
        Group::Outbound => outbound::checks(run).await,
        Group::Agent => agent::checks(run).await,
        Group::Certificates => {
            let now = time::OffsetDateTime::now_utc();
            let mut checks = certificates::checks(run, now);
            checks.extend(registration::checks(run, now).await);
            checks
        }
        Group::Tenant => tenant::checks(run).await,
        Group::CloudSync => sync::checks(run).await,
        Group::Directory {
            domain,
            directory,
            host,
        } => directory::checks(run, domain, *directory, *host).await,
        Group::GmsaPrereq { domain } => gmsa_prereq::checks(run, domain).await,
        Group::Writeback => writeback::checks(run).await,
    }
}
