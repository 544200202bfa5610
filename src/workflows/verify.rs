//! VerifyService: read-only checks of the whole setup — host, tenant, each
//! domain, password writeback — streamed as they finish, then a summary.
//!
//! Checks run in groups that share one read (the agent status, the tenant's
//! agent list, one bind per domain); groups run concurrently, each under the
//! per-check time limit. A check that fails is a FAIL result with a remedy,
//! never an error of the call.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::directory::DirectoryWorkflows;
use super::domain_controllers::{Connect, DcSession, DomainControllerWorkflows};
use super::operations::now_ms;
use super::permissions::Profile;
use super::service_account::{self, AccountRecord, ServiceAccountWorkflows};
use super::tenant::{TenantWorkflows, tenant_error};
use super::validate::{self, dns_name};
use super::writeback::{self, MIN_AGENT_VERSION, TenantState, WritebackWorkflows};
use super::{Error, FieldViolation};
use crate::backends::directory::BindCredential;
use crate::backends::host::{AGENT_SERVICES, Host, ServiceState, StartType};
use crate::backends::store::Store;

pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// A DC certificate expiring sooner than this is a WARN.
const CERT_WARN_WITHIN: Duration = Duration::from_secs(30 * 24 * 3600);
const SKEW_WARN_SECS: i64 = 60;
const SKEW_FAIL_SECS: i64 = 300;
/// provd's own Windows service.
pub const PROVD_SERVICE: &str = "provd";
/// Users sampled for inheritance by the writeback checks.
const WRITEBACK_SAMPLE: u32 = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Host,
    Tenant,
    Directory,
    Writeback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
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
    tenant: Arc<TenantWorkflows>,
    gmsa: Arc<ServiceAccountWorkflows>,
    writeback: Arc<WritebackWorkflows>,
    credential: Option<BindCredential>,
    domains: Vec<String>,
    account: Option<AccountRecord>,
    /// The tenant's writeback flag, read once per run (host and directory
    /// checks both ask; it is a Graph call).
    writeback_flag: tokio::sync::OnceCell<TenantState>,
}

impl Run {
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
    tenant: Arc<TenantWorkflows>,
    gmsa: Arc<ServiceAccountWorkflows>,
    writeback: Arc<WritebackWorkflows>,
}

impl VerifyWorkflows {
    pub fn new(
        store: Arc<dyn Store>,
        dcs: Arc<DomainControllerWorkflows>,
        host: Arc<dyn Host>,
        tenant: Arc<TenantWorkflows>,
        gmsa: Arc<ServiceAccountWorkflows>,
        writeback: Arc<WritebackWorkflows>,
    ) -> Self {
        Self {
            store,
            dcs,
            host,
            tenant,
            gmsa,
            writeback,
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
        let run = Arc::new(Run {
            dcs: self.dcs.clone(),
            host: self.host.clone(),
            tenant: self.tenant.clone(),
            gmsa: self.gmsa.clone(),
            writeback: self.writeback.clone(),
            credential: request.credential,
            account: service_account::load_account(&self.store).await?,
            domains,
            writeback_flag: tokio::sync::OnceCell::new(),
        });

        let mut groups: Vec<Group> = Vec::new();
        if wanted(Category::Host) {
            groups.push(Group::Host);
        }
        if wanted(Category::Tenant) {
            groups.push(Group::Tenant);
        }
        for d in &run.domains {
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

        let (tx, rx) = mpsc::channel(64);
        // The checks' spans (LDAP probes, tenant requests) stay in the
        // caller's Verify trace.
        tokio::spawn(drive(run, groups, timeout, tx).instrument(tracing::Span::current()));
        Ok(rx)
    }
}

#[derive(Debug, Clone)]
enum Group {
    Host,
    Tenant,
    Directory {
        domain: String,
        directory: bool,
        host: bool,
    },
    Writeback,
}

impl Group {
    /// What a group reports when it runs out of time.
    fn timeout_check(&self, limit: Duration) -> Check {
        let (id, category, subject) = match self {
            Group::Host => ("host.agent.installed", Category::Host, String::new()),
            Group::Tenant => ("tenant.agent.registered", Category::Tenant, String::new()),
            Group::Directory { domain, .. } => (
                "directory.dc.reachable",
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
        .remedy("look for an unreachable DC or tenant endpoint, or raise check_timeout")
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
        Group::Host => host_checks(run).await,
        Group::Tenant => tenant_checks(run).await,
        Group::Directory {
            domain,
            directory,
            host,
        } => directory_checks(run, domain, *directory, *host).await,
        Group::Writeback => writeback_checks(run).await,
    }
}

// ---------------------------------------------------------------- host

async fn host_checks(run: &Run) -> Vec<Check> {
    use Category::Host as H;
    let mut out = Vec::new();
    if let Err(reason) = run.host.availability() {
        out.push(
            check("host.backend.available", H, Status::Fail, reason)
                .remedy("run provd on the Windows server that hosts the agent"),
        );
        return out;
    }
    out.push(check(
        "host.backend.available",
        H,
        Status::Pass,
        "the Windows host backend is available",
    ));
    let status = match run.host.agent_status().await {
        Ok(s) => s,
        Err(e) => {
            out.push(
                check("host.agent.installed", H, Status::Fail, e.to_string())
                    .remedy("check that provd runs as LocalSystem and the SCM answers"),
            );
            return out;
        }
    };
    let Some(version) = status.installed_version.clone() else {
        out.push(
            check(
                "host.agent.installed",
                H,
                Status::Fail,
                "the provisioning agent package is not installed",
            )
            .remedy("install it with Install (`provctl agent install`)"),
        );
        return out;
    };
    out.push(
        check(
            "host.agent.installed",
            H,
            Status::Pass,
            format!("agent package {version} is installed"),
        )
        .attr("version", version.clone()),
    );
    let writeback_on = run.writeback_on().await;
    let version_ok = writeback::version_at_least(&version, MIN_AGENT_VERSION);
    out.push(if version_ok || !writeback_on {
        check(
            "host.agent.version",
            H,
            Status::Pass,
            format!("version {version}"),
        )
        .attr("version", version.clone())
    } else {
        check(
            "host.agent.version",
            H,
            Status::Warn,
            format!(
                "version {version} is older than {MIN_AGENT_VERSION}, which password writeback needs"
            ),
        )
        .attr("version", version.clone())
        .remedy(format!(
            "install agent {MIN_AGENT_VERSION} or later with Install"
        ))
    });
    for service in &status.services {
        let running = service.state == ServiceState::Running;
        let automatic = matches!(
            service.start_type,
            Some(StartType::Automatic | StartType::AutomaticDelayed)
        );
        let seen = format!(
            "service {} ({}) is {:?}, start type {}",
            service.display_name,
            service.name,
            service.state,
            service
                .start_type
                .map_or_else(|| "unknown".to_owned(), |t| format!("{t:?}"))
        );
        let c = check("host.services.running", H, Status::Pass, seen.clone())
            .subject(service.name.clone())
            .attr("state", format!("{:?}", service.state));
        out.push(match (running, automatic) {
            (true, true) => c,
            (false, _) => Check {
                status: Status::Fail,
                ..c
            }
            .remedy(format!(
                "start it: `Start-Service {}` (or run Install again, which starts it)",
                service.name
            )),
            (true, false) => Check {
                status: Status::Warn,
                ..c
            }
            .remedy(format!(
                "set it to start automatically: `Set-Service {} -StartupType Automatic`",
                service.name
            )),
        });
    }
    if let Some(account) = &run.account {
        let expected = format!("{}\\{}", account.netbios, account.sam_account_name);
        let provisioning = status
            .services
            .iter()
            .find(|s| s.name == AGENT_SERVICES[0].0);
        if let Some(service) = provisioning {
            let matches = service.account.eq_ignore_ascii_case(&expected)
                || service
                    .account
                    .eq_ignore_ascii_case(&account.sam_account_name);
            let c = check(
                "host.services.logon_account",
                H,
                Status::Pass,
                format!("{} logs on as {}", service.name, service.account),
            )
            .subject(service.name.clone())
            .attr("account", service.account.clone())
            .attr("expected", expected.clone());
            out.push(if matches {
                c
            } else {
                Check {
                    status: Status::Fail,
                    message: format!(
                        "{} logs on as {:?}, not the recorded gMSA {expected}",
                        service.name, service.account
                    ),
                    ..c
                }
                .remedy(
                    "run CreateGmsa or UseCustomGmsa again: it sets the service's logon account",
                )
            });
        }
    }
    out.push(match run.host.service_status(PROVD_SERVICE).await {
        Ok(s) if s.state == ServiceState::Running => check(
            "host.provd.service",
            H,
            Status::Pass,
            format!(
                "provd's service is running (start type {})",
                s.start_type
                    .map_or_else(|| "unknown".to_owned(), |t| format!("{t:?}"))
            ),
        ),
        Ok(s) if s.state == ServiceState::NotInstalled => check(
            "host.provd.service",
            H,
            Status::Warn,
            "provd is not installed as a Windows service (it runs in a console)",
        )
        .remedy("`provd service install` so provd survives a restart"),
        Ok(s) => check(
            "host.provd.service",
            H,
            Status::Warn,
            format!("provd's service is {:?}", s.state),
        )
        .remedy("`Start-Service provd`"),
        Err(e) => check("host.provd.service", H, Status::Skip, e.to_string()),
    });
    out
}

// ---------------------------------------------------------------- tenant

async fn tenant_checks(run: &Run) -> Vec<Check> {
    use Category::Tenant as T;
    let mut out = Vec::new();
    let tenant = run.tenant.tenant().clone();
    let probes = tenant.probe_endpoints().await;
    let failed: Vec<String> = probes
        .iter()
        .filter_map(|p| p.outcome.as_ref().err().map(|e| format!("{}: {e}", p.url)))
        .collect();
    let urls: Vec<&str> = probes.iter().map(|p| p.url.as_str()).collect();
    out.push(if failed.is_empty() {
        check(
            "tenant.endpoints.reachable",
            T,
            Status::Pass,
            format!("reached {} over TLS", urls.join(", ")),
        )
    } else {
        check(
            "tenant.endpoints.reachable",
            T,
            Status::Fail,
            format!("cannot reach {}", failed.join("; ")),
        )
        .remedy(
            "allow outbound HTTPS (443) to the login, Graph and agent service hosts; proxies \
             must not inspect TLS",
        )
    });
    let registration = match run.tenant.registration().await {
        Ok(Some(r)) => r,
        Ok(None) => {
            out.push(
                check(
                    "tenant.agent.registered",
                    T,
                    Status::Fail,
                    "this machine's agent is not registered with the tenant",
                )
                .remedy("run Install (it signs in and registers the agent)"),
            );
            return out;
        }
        Err(e) => {
            out.push(check(
                "tenant.agent.registered",
                T,
                Status::Fail,
                e.to_string(),
            ));
            return out;
        }
    };
    let skip_all = |out: &mut Vec<Check>, why: String, remedy: &str| {
        for id in ["tenant.agent.registered", "tenant.agent.active"] {
            out.push(
                check(id, T, Status::Skip, why.clone())
                    .remedy(remedy)
                    .attr("agent_id", registration.agent_id.clone()),
            );
        }
    };
    let tokens = match run.tenant.tokens().await {
        Ok(Some(t)) => t,
        Ok(None) => {
            skip_all(
                &mut out,
                "provd holds no tenant session (tokens are in memory only)".into(),
                "sign in with `provctl agent sign-in`, then verify again",
            );
            return out;
        }
        Err(e) => {
            skip_all(&mut out, e.to_string(), "");
            return out;
        }
    };
    let agents = match tenant.list_agents(&tokens).await {
        Ok(a) => a,
        Err(e) => {
            let e = tenant_error(e);
            out.push(
                check(
                    "tenant.agent.registered",
                    T,
                    Status::Fail,
                    format!("cannot list the tenant's agents: {e}"),
                )
                .remedy("sign in as a Hybrid Identity Administrator; check the tenant endpoints"),
            );
            return out;
        }
    };
    let Some(agent) = agents.iter().find(|a| a.id == registration.agent_id) else {
        out.push(
            check(
                "tenant.agent.registered",
                T,
                Status::Fail,
                format!(
                    "agent {} is not in the tenant's list of {} agent(s)",
                    registration.agent_id,
                    agents.len()
                ),
            )
            .attr("agent_id", registration.agent_id.clone())
            .remedy("register it again: run Install"),
        );
        return out;
    };
    out.push(
        check(
            "tenant.agent.registered",
            T,
            Status::Pass,
            format!(
                "agent {} is registered as {} ({})",
                agent.id, agent.machine_name, agent.external_ip
            ),
        )
        .attr("agent_id", agent.id.clone())
        .attr("machine_name", agent.machine_name.clone()),
    );
    out.push(if agent.active {
        check(
            "tenant.agent.active",
            T,
            Status::Pass,
            format!("the tenant lists agent {} as active", agent.id),
        )
        .attr("agent_id", agent.id.clone())
    } else {
        check(
            "tenant.agent.active",
            T,
            Status::Fail,
            format!(
                "the tenant lists agent {} as inactive: it has not reported recently",
                agent.id
            ),
        )
        .attr("agent_id", agent.id.clone())
        .remedy(format!(
            "start the service {} and allow it outbound HTTPS",
            AGENT_SERVICES[0].1
        ))
    });
    if run.domains.is_empty() {
        return out;
    }
    let resources = match tenant.list_published_resources(&tokens).await {
        Ok(r) => r,
        Err(e) => {
            out.push(check(
                "tenant.agent.groups",
                T,
                Status::Fail,
                format!("cannot read published resources: {}", tenant_error(e)),
            ));
            return out;
        }
    };
    let agent_groups: Vec<&str> = agent.groups.iter().map(|g| g.id.as_str()).collect();
    for domain in &run.domains {
        let resource = resources.iter().find(|r| r.domain == *domain);
        out.push(match resource {
            None => check(
                "tenant.agent.groups",
                T,
                Status::Fail,
                format!(
                    "the tenant has no cloud sync configuration (published resource) for {domain}"
                ),
            )
            .subject(domain.clone())
            .remedy(format!(
                "create a cloud sync configuration for {domain} in the Microsoft Entra admin center"
            )),
            Some(r)
                if r.group_ids
                    .iter()
                    .any(|g| agent_groups.contains(&g.as_str())) =>
            {
                check(
                    "tenant.agent.groups",
                    T,
                    Status::Pass,
                    format!("agent {} serves {domain} through its agent group", agent.id),
                )
                .subject(domain.clone())
            }
            Some(_) => check(
                "tenant.agent.groups",
                T,
                Status::Fail,
                format!(
                    "agent {} is in none of the agent groups that serve {domain}",
                    agent.id
                ),
            )
            .subject(domain.clone())
            .remedy(format!(
                "assign the agent to {domain}'s agent group in the Microsoft Entra admin center"
            )),
        });
    }
    out
}

// ---------------------------------------------------------------- directory

const DIRECTORY_IDS: [&str; 5] = [
    "directory.dc.reachable",
    "directory.dc.certificate",
    "directory.dc.clock_skew",
    "directory.gmsa.account",
    "directory.permissions",
];

async fn directory_checks(run: &Run, domain: &str, directory: bool, host: bool) -> Vec<Check> {
    use Category::Directory as D;
    let mut out = Vec::new();
    let Some(credential) = run.credential.clone() else {
        let why = "no credential given, and this host cannot bind as its computer account";
        if directory {
            for id in DIRECTORY_IDS {
                out.push(check(id, D, Status::Skip, why).subject(domain));
            }
        }
        if host && run.account.is_some() {
            out.push(
                check("host.gmsa.retrievable", Category::Host, Status::Skip, why).subject(domain),
            );
        }
        return out;
    };
    if directory {
        out.extend(dc_checks(run, domain, &credential).await);
    }
    let account_here = run.account.as_ref().filter(|a| a.domain == domain);
    if directory {
        out.extend(account_checks(run, domain, account_here, &credential).await);
    }
    if host && let Some(account) = account_here {
        out.push(retrievable_check(run, domain, account, &credential).await);
    }
    out
}

async fn dc_checks(run: &Run, domain: &str, credential: &BindCredential) -> Vec<Check> {
    use Category::Directory as D;
    let mut out = Vec::new();
    let discovery = match run
        .dcs
        .discover(domain, Some(credential.clone()), false, None)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            out.push(
                check("directory.dc.reachable", D, Status::Fail, e.to_string())
                    .subject(domain)
                    .remedy("check DNS (SRV _ldap._tcp.dc._msdcs) and LDAPS (636) to the DCs"),
            );
            return out;
        }
    };
    let order: Vec<String> = discovery
        .dcs
        .iter()
        .map(|d| {
            let state = match &d.probe {
                Some(p) if p.reachable => "up",
                _ => "down",
            };
            format!("{} ({state})", d.host)
        })
        .collect();
    let reachable = discovery
        .dcs
        .iter()
        .filter(|d| d.probe.as_ref().is_some_and(|p| p.reachable))
        .count();
    let first_down = discovery
        .dcs
        .iter()
        .find(|d| d.priority_rank > 0 && !d.probe.as_ref().is_some_and(|p| p.reachable));
    let base = check(
        "directory.dc.reachable",
        D,
        Status::Pass,
        format!(
            "{reachable} of {} DC(s) answer LDAPS, in priority order: {}",
            discovery.dcs.len(),
            order.join(", ")
        ),
    )
    .subject(domain)
    .attr("order", order.join(","));
    out.push(if reachable == 0 {
        Check {
            status: Status::Fail,
            ..base
        }
        .remedy("no DC answers: check the network path and LDAPS (636) on the DCs")
    } else if let Some(down) = first_down {
        let why = down
            .probe
            .as_ref()
            .and_then(|p| p.error.clone())
            .unwrap_or_default();
        Check {
            status: Status::Warn,
            message: format!(
                "{}; preferred DC {} is down: {why}",
                base.message, down.host
            ),
            ..base
        }
        .remedy("bring the DC back, or change the DC priority with SetPriority")
    } else {
        base
    });
    let now = SystemTime::now();
    for dc in &discovery.dcs {
        let Some(p) = dc.probe.as_ref().filter(|p| p.reachable) else {
            continue;
        };
        let cert = check("directory.dc.certificate", D, Status::Pass, String::new())
            .subject(dc.host.clone())
            .attr("domain", domain);
        out.push(match p.certificate_not_after {
            _ if !p.certificate_trusted => Check {
                status: Status::Fail,
                message: format!(
                    "{}'s certificate ({}) is not trusted",
                    dc.host,
                    p.certificate_subject.clone().unwrap_or_default()
                ),
                ..cert
            }
            .remedy("issue the DC a certificate from a CA in directory.ca_file"),
            None => Check {
                status: Status::Warn,
                message: format!("{}'s certificate expiry could not be read", dc.host),
                ..cert
            },
            Some(not_after) => {
                let left = not_after.duration_since(now).unwrap_or(Duration::ZERO);
                let days = left.as_secs() / 86_400;
                let c = cert.attr("days_left", days.to_string());
                if left.is_zero() {
                    Check {
                        status: Status::Fail,
                        message: format!("{}'s certificate has expired", dc.host),
                        ..c
                    }
                    .remedy("renew the DC's certificate")
                } else if left < CERT_WARN_WITHIN {
                    Check {
                        status: Status::Warn,
                        message: format!("{}'s certificate expires in {days} days", dc.host),
                        ..c
                    }
                    .remedy("renew the DC's certificate before it expires")
                } else {
                    Check {
                        message: format!("{}'s certificate is valid for {days} more days", dc.host),
                        ..c
                    }
                }
            }
        });
        if let Some(skew) = p.clock_skew_secs {
            let c = check(
                "directory.dc.clock_skew",
                D,
                Status::Pass,
                format!("{}'s clock is {skew:+} s from this host's", dc.host),
            )
            .subject(dc.host.clone())
            .attr("domain", domain)
            .attr("skew_ms", (skew * 1000).to_string());
            out.push(if skew.abs() > SKEW_FAIL_SECS {
                Check {
                    status: Status::Fail,
                    ..c
                }
                .remedy("sync this host's clock with the domain (w32tm /resync); Kerberos allows 5 minutes")
            } else if skew.abs() > SKEW_WARN_SECS {
                Check {
                    status: Status::Warn,
                    ..c
                }
                .remedy("sync this host's clock with the domain (w32tm /resync)")
            } else {
                c
            });
        }
    }
    out
}

async fn account_checks(
    run: &Run,
    domain: &str,
    account: Option<&AccountRecord>,
    credential: &BindCredential,
) -> Vec<Check> {
    use Category::Directory as D;
    let Some(recorded) = account else {
        let why = match &run.account {
            None => "no service account is recorded".to_owned(),
            Some(a) => format!("the service account lives in {}", a.domain),
        };
        return vec![
            check("directory.gmsa.account", D, Status::Skip, why.clone()).subject(domain),
            check("directory.permissions", D, Status::Skip, why).subject(domain),
        ];
    };
    let report = match run.gmsa.get(domain, Some(credential.clone())).await {
        Ok(r) if r.live => r,
        Ok(r) => {
            return vec![
                check(
                    "directory.gmsa.account",
                    D,
                    Status::Fail,
                    format!(
                        "cannot read {}: {}",
                        recorded.distinguished_name, r.live_unavailable_reason
                    ),
                )
                .subject(domain),
            ];
        }
        Err(e) => {
            return vec![
                check(
                    "directory.gmsa.account",
                    D,
                    Status::Fail,
                    format!("cannot read {}: {e}", recorded.distinguished_name),
                )
                .subject(domain)
                .remedy("create it again with CreateGmsa, or choose one with UseCustomGmsa"),
            ];
        }
    };
    let mut out = Vec::new();
    let fresh = report.account.as_ref().unwrap_or(recorded);
    let c = check(
        "directory.gmsa.account",
        D,
        Status::Pass,
        format!(
            "{} exists and is enabled ({} principal(s) may retrieve its password)",
            fresh.sam_account_name,
            fresh.principals.len()
        ),
    )
    .subject(domain)
    .attr("dn", fresh.distinguished_name.clone());
    out.push(if fresh.enabled {
        c
    } else {
        Check {
            status: Status::Fail,
            message: format!("{} is disabled", fresh.sam_account_name),
            ..c
        }
        .remedy("enable the account in Active Directory")
    });
    let writeback_on = run.writeback_on().await;
    let mut required = vec![Profile::BasicRead];
    if writeback_on {
        required.push(Profile::PasswordWriteBack);
    }
    let missing: Vec<String> = report
        .permissions
        .iter()
        .filter(|p| required.contains(&p.profile) && !p.present)
        .map(|p| format!("{} ({})", p.profile.name(), p.message))
        .collect();
    let held: Vec<&str> = report
        .permissions
        .iter()
        .filter(|p| p.present)
        .map(|p| p.profile.name())
        .collect();
    let required_names: Vec<&str> = required.iter().map(|p| p.name()).collect();
    out.push(if missing.is_empty() {
        check(
            "directory.permissions",
            D,
            Status::Pass,
            format!(
                "the required profiles ({}) are present; held: {}",
                required_names.join(", "),
                held.join(", ")
            ),
        )
        .subject(domain)
    } else {
        check(
            "directory.permissions",
            D,
            Status::Fail,
            format!("missing: {}", missing.join("; ")),
        )
        .subject(domain)
        .remedy(format!(
            "grant them again: GrantPermissions with profiles {} (`provctl gmsa grant`)",
            required_names.join(", ")
        ))
    });
    out
}

/// The host's computer account: the first DNS label, at most 15
/// characters (the NetBIOS limit), plus `$`.
pub fn computer_account(machine_name: &str) -> String {
    let label = machine_name.split('.').next().unwrap_or_default();
    let short: String = label.chars().take(15).collect();
    format!("{}$", short.to_ascii_uppercase())
}

async fn retrievable_check(
    run: &Run,
    domain: &str,
    account: &AccountRecord,
    credential: &BindCredential,
) -> Check {
    let host_account = computer_account(&run.host.machine_name());
    let c = check(
        "host.gmsa.retrievable",
        Category::Host,
        Status::Pass,
        String::new(),
    )
    .subject(domain)
    .attr("host_account", host_account.clone());
    let result = async {
        let mut session = DcSession::open(&run.dcs, domain, credential, Connect::Quiet).await?;
        async {
            let root = session.root_dse().await?;
            let domain_dn = root
                .first("defaultNamingContext")
                .unwrap_or_default()
                .to_owned();
            let Some(entry) =
                service_account::read_account_entry(session.as_mut(), &domain_dn, account).await?
            else {
                return Ok(Err(format!(
                    "{} does not exist",
                    account.distinguished_name
                )));
            };
            service_account::host_may_retrieve(session.as_mut(), &domain_dn, &entry, &host_account)
                .await
        }
        .await
    }
    .await;
    match result {
        Ok(Ok(())) => Check {
            message: format!(
                "{host_account} may retrieve the password of {}",
                account.sam_account_name
            ),
            ..c
        },
        Ok(Err(why)) => Check {
            status: Status::Fail,
            message: why,
            ..c
        }
        .remedy(format!(
            "allow {host_account} to retrieve the password: CreateGmsa with it among the principals"
        )),
        Err(e) => Check {
            status: Status::Fail,
            message: format!("cannot check: {e}"),
            ..c
        },
    }
}

// ---------------------------------------------------------------- writeback

async fn writeback_checks(run: &Run) -> Vec<Check> {
    use Category::Writeback as W;
    let mut out = Vec::new();
    let report = match run
        .writeback
        .get("", run.credential.clone(), WRITEBACK_SAMPLE)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            out.push(check(
                "writeback.consistent",
                W,
                Status::Fail,
                e.to_string(),
            ));
            return out;
        }
    };
    let any_aces = report.domains.iter().any(|d| d.ready());
    let flag = match &report.tenant {
        TenantState::Enabled => check(
            "writeback.tenant_flag",
            W,
            Status::Pass,
            "password writeback is on in the tenant",
        ),
        TenantState::Disabled => check(
            "writeback.tenant_flag",
            W,
            Status::Pass,
            "password writeback is off in the tenant",
        ),
        TenantState::Unknown(why) => check(
            "writeback.tenant_flag",
            W,
            Status::Skip,
            format!("the tenant flag is unknown: {why}"),
        )
        .remedy("sign in with `provctl agent sign-in`, then verify again"),
    };
    out.push(flag);
    let on = report.tenant == TenantState::Enabled;
    if !on && !any_aces && report.tenant == TenantState::Disabled {
        for id in ["writeback.aces", "writeback.agent_version"] {
            out.push(check(id, W, Status::Skip, "password writeback is off"));
        }
        out.push(check(
            "writeback.consistent",
            W,
            Status::Pass,
            report.message.clone(),
        ));
        return out;
    }
    for d in &report.domains {
        let c = check("writeback.aces", W, Status::Pass, String::new()).subject(d.domain.clone());
        out.push(match (&d.read_error, &d.status) {
            (Some(e), _) => Check {
                status: Status::Skip,
                message: e.clone(),
                ..c
            },
            (None, Some(s)) if s.present => Check {
                message: format!("PasswordWriteBack ACEs present on {} ({})", d.domain, s.message),
                ..c
            },
            (None, status) => {
                let missing = status
                    .as_ref()
                    .map(|s| {
                        s.missing
                            .iter()
                            .map(|m| m.description.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                Check {
                    status: if on { Status::Fail } else { Status::Warn },
                    message: format!("PasswordWriteBack ACEs missing on {}: {missing}", d.domain),
                    ..c
                }
                .remedy("SetPasswordWriteback with enable=true grants them again (`provctl writeback enable`)")
            }
        });
        if d.read_error.is_none() {
            let inherit = check("writeback.inheritance", W, Status::Pass, String::new())
                .subject(d.domain.clone());
            out.push(if d.blocked == 0 {
                Check {
                    message: format!("none of {} sampled users block inheritance", d.sampled),
                    ..inherit
                }
            } else {
                Check {
                    status: Status::Warn,
                    message: format!(
                        "{} of {} sampled users block inheritance (e.g. {})",
                        d.blocked,
                        d.sampled,
                        d.blocked_samples.first().cloned().unwrap_or_default()
                    ),
                    ..inherit
                }
                .remedy("writeback cannot reset their passwords; re-enable inheritance on them")
            });
            let age = check("writeback.min_pwd_age", W, Status::Pass, String::new())
                .subject(d.domain.clone());
            out.push(if d.min_password_age_secs == 0 {
                Check {
                    message: "minPwdAge is 0".into(),
                    ..age
                }
            } else {
                Check {
                    status: Status::Warn,
                    message: format!("minPwdAge is {} s", d.min_password_age_secs),
                    ..age
                }
                .remedy("a password reset right after a change fails until minPwdAge passes; set it to 0")
            });
        }
    }
    out.push(match &report.agent_version {
        Some(v) if writeback::version_at_least(v, MIN_AGENT_VERSION) => check(
            "writeback.agent_version",
            W,
            Status::Pass,
            format!("agent {v} supports password writeback"),
        ),
        Some(v) => check(
            "writeback.agent_version",
            W,
            Status::Fail,
            format!("agent {v} is older than {MIN_AGENT_VERSION}"),
        )
        .remedy(format!(
            "install agent {MIN_AGENT_VERSION} or later with Install"
        )),
        None => check(
            "writeback.agent_version",
            W,
            Status::Skip,
            "the installed agent's version cannot be read on this host",
        ),
    });
    out.push(if report.consistent {
        check("writeback.consistent", W, Status::Pass, report.message.clone())
    } else {
        check("writeback.consistent", W, Status::Fail, report.message.clone()).remedy(
            "run SetPasswordWriteback again (enable or disable) so the tenant and the directory agree",
        )
    });
    out
}
