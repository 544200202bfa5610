//! `FakeDirectory`: an in-memory Active Directory domain served by several
//! named DCs sharing one tree, seeded from what the Samba lab's DCs hold
//! (`tests/data/samba-lab-domain.json`), behaving like Samba where provd
//! can tell, with failure injection for the hermetic tests.
//!
//! ```ignore
//! let dir = FakeDirectory::new();                 // lab.example.test, dc1 + dc2, a KDS key
//! dir.set_reachable("dc2.lab.example.test", false);
//! dir.fail_after("dc1.lab.example.test", 3);      // goes away after 3 more operations
//! dir.deny_write(&dn, Some(WriteOp::WriteSecurityDescriptor));
//! let daemon = Daemon::builder(config).directory(Arc::new(dir.clone()));
//! ```
//!
//! gMSA passwords: the fake holds no KDS and derives nothing. A test seeds a
//! gMSA's `msDS-ManagedPassword` blob ([`FakeDirectory::set_managed_password`]);
//! a session reads it only when it is bound as an account that
//! msDS-GroupMSAMembership allows directly (an allow ACE for its SID; nested
//! groups are not followed), else the entry comes back without it, as a DC
//! answers. Without a seeded blob every session reads `None`, as Samba 4.17
//! answers everyone.

pub mod filter;
mod kerberos;
mod ops;
mod seed;
pub mod tree;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::backends::directory::{
    BindCredential, BindSecret, Change, Directory, DirectoryError, DirectorySession, Entry,
    KerberosSource, ProbeReport, Scope, SrvTarget,
};
use provd_sd::{SecurityDescriptor, Sid};
use tree::{Obj, Tree, norm};

/// The lab's Administrator password, which the fake's Administrator has too.
pub const ADMIN_PASSWORD: &str = "Passw0rd!Lab1";

/// A kind of write, for failure injection and the write log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOp {
    Add,
    Modify,
    Delete,
    WriteSecurityDescriptor,
}

/// One write the fake performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    pub dc: String,
    pub op: WriteOp,
    pub dn: String,
}

#[derive(Debug, Clone)]
struct DcState {
    host: String,
    ip: IpAddr,
    reachable: bool,
    refuse_bind: bool,
    /// Operations left before the DC goes away.
    budget: Option<u32>,
}

pub(crate) struct State {
    tree: Tree,
    domain: String,
    netbios: String,
    domain_sid: Sid,
    base_dn: String,
    rootdse: BTreeMap<String, Obj>,
    dcs: Vec<DcState>,
    passwords: BTreeMap<String, String>,
    next_rid: u32,
    usn: u64,
    denied: Vec<(String, Option<WriteOp>)>,
    constraints: Vec<(String, Option<WriteOp>)>,
    /// DNs another writer adds, with the same attributes, just before this
    /// directory's next add of them (a race lost).
    raced: Vec<String>,
    /// DNs whose next security-descriptor write another writer undoes, by
    /// writing back the descriptor it read before (a lost update).
    undone: Vec<String>,
    writes: Vec<WriteRecord>,
    connects: Vec<String>,
    /// (base, filter) of the searches served, in order.
    searched: Vec<(String, String)>,
    /// (DC, DN): the DN and its subtree have not replicated to the DC.
    unreplicated: Vec<(String, String)>,
    /// Seeded `msDS-ManagedPassword` blobs by normalized gMSA DN.
    managed_passwords: BTreeMap<String, Vec<u8>>,
    /// Lower-case principal → where this host keeps its keys.
    kerberos: BTreeMap<String, KerberosSource>,
}

/// The fake directory; clones share one domain, so a test keeps a clone
/// to inject failures and inspect what was written.
#[derive(Clone)]
pub struct FakeDirectory {
    state: Arc<Mutex<State>>,
}

impl Default for FakeDirectory {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeDirectory {
    /// The lab's domain (`lab.example.test`, DCs dc1 and dc2) with an
    /// effective KDS root key, ready for gMSAs.
    pub fn new() -> Self {
        let dir = Self::fresh_samba();
        dir.add_kds_key();
        dir
    }

    /// Exactly what a freshly provisioned Samba domain holds: no KDS
    /// root key (nor its container).
    pub fn fresh_samba() -> Self {
        Self {
            state: Arc::new(Mutex::new(seed::load())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ------------------------------------------------------------ facts

    pub fn domain(&self) -> String {
        self.lock().domain.clone()
    }

    pub fn netbios(&self) -> String {
        self.lock().netbios.clone()
    }

    pub fn base_dn(&self) -> String {
        self.lock().base_dn.clone()
    }

    pub fn domain_sid(&self) -> Sid {
        self.lock().domain_sid
    }

    pub fn configuration_dn(&self) -> String {
        format!("CN=Configuration,{}", self.base_dn())
    }

    /// DC host names, in seed order.
    pub fn dcs(&self) -> Vec<String> {
        self.lock().dcs.iter().map(|d| d.host.clone()).collect()
    }

    /// Administrator's UPN and password.
    pub fn admin_credential(&self) -> BindCredential {
        BindCredential::simple(format!("Administrator@{}", self.domain()), ADMIN_PASSWORD)
    }

    // ------------------------------------------------------------ failure injection

    fn with_dc(&self, dc: &str, f: impl FnOnce(&mut DcState)) {
        let mut s = self.lock();
        if let Some(d) = s.dcs.iter_mut().find(|d| d.host.eq_ignore_ascii_case(dc)) {
            f(d);
        }
    }

    /// A DC stops (or starts again) answering: connects and session
    /// operations fail with `Unreachable`.
    pub fn set_reachable(&self, dc: &str, reachable: bool) {
        self.with_dc(dc, |d| {
            d.reachable = reachable;
            if reachable {
                d.budget = None;
            }
        });
    }

    /// The DC refuses every bind (LDAP 49, InvalidCredentials).
    pub fn refuse_bind(&self, dc: &str, refuse: bool) {
        self.with_dc(dc, |d| d.refuse_bind = refuse);
    }

    /// The DC answers `ops` more session operations (searches, reads,
    /// writes), then goes away mid-operation, open sessions included.
    pub fn fail_after(&self, dc: &str, ops: u32) {
        self.with_dc(dc, |d| d.budget = Some(ops));
    }

    /// Writes of `op` (all kinds with `None`) on `dn` fail with
    /// `InsufficientAccess` (LDAP 50).
    pub fn deny_write(&self, dn: &str, op: Option<WriteOp>) {
        self.lock().denied.push((norm(dn), op));
    }

    /// Writes of `op` (all kinds with `None`) on `dn` fail with a
    /// constraint violation (LDAP 19).
    pub fn constraint_on_write(&self, dn: &str, op: Option<WriteOp>) {
        self.lock().constraints.push((norm(dn), op));
    }

    /// Another writer adds `dn` first: the next add of `dn` finds that
    /// writer's identical entry there and fails with `AlreadyExists` (LDAP
    /// 68), as when two hosts of a fleet create the account they share.
    pub fn race_next_add(&self, dn: &str) {
        self.lock().raced.push(norm(dn));
    }

    /// The next security-descriptor write on `dn` is undone right after
    /// it: another writer, who read the descriptor before, writes it back.
    /// Once per call.
    pub fn undo_next_sd_write(&self, dn: &str) {
        self.lock().undone.push(norm(dn));
    }

    /// `dn` and everything under it have not replicated to `dc` yet: that
    /// DC's searches do not see them, until [`Self::replicate`].
    pub fn hide_from(&self, dc: &str, dn: &str) {
        self.lock()
            .unreplicated
            .push((dc.to_ascii_lowercase(), norm(dn).to_ascii_lowercase()));
    }

    /// Every DC sees every object again.
    pub fn replicate(&self) {
        self.lock().unreplicated.clear();
    }

    /// Clears injected write faults.
    pub fn clear_write_faults(&self) {
        let mut s = self.lock();
        s.denied.clear();
        s.constraints.clear();
    }

    /// Sets a user's password (by sAMAccountName).
    pub fn set_password(&self, sam_account_name: &str, password: &str) {
        self.lock()
            .passwords
            .insert(sam_account_name.to_ascii_lowercase(), password.to_owned());
    }

    /// Seeds the `msDS-ManagedPassword` blob the DCs hand the gMSA `dn`'s
    /// principals (see the module doc for who reads it).
    pub fn set_managed_password(&self, dn: &str, blob: &[u8]) {
        self.lock()
            .managed_passwords
            .insert(norm(dn), blob.to_vec());
    }

    /// Sets the domain and forest functional level (RootDSE and
    /// msDS-Behavior-Version); Samba 4.17 is at 4 (2008 R2).
    pub fn set_functional_level(&self, level: u32) {
        let mut s = self.lock();
        let v = level.to_string();
        for root in s.rootdse.values_mut() {
            root.set_text("domainFunctionality", &v);
            root.set_text("forestFunctionality", &v);
        }
        let base = s.base_dn.clone();
        if let Some(head) = s.tree.get_mut(&base) {
            head.set_text("msDS-Behavior-Version", &v);
        }
    }

    /// The KDS root key container (made if missing) and an effective key.
    pub fn add_kds_key(&self) {
        seed::add_kds_key(&mut self.lock());
    }

    /// Removes every KDS root key and their containers (a fresh Samba).
    pub fn remove_kds_keys(&self) {
        let mut s = self.lock();
        let gkds = norm(&format!(
            "CN=Group Key Distribution Service,CN=Services,CN=Configuration,{}",
            s.base_dn
        ));
        let suffix = format!(",{gkds}");
        s.tree
            .objects
            .retain(|k, _| *k != gkds && !k.ends_with(&suffix));
    }

    // ------------------------------------------------------------ inspection

    /// An entry with all its attributes and its security descriptor.
    pub fn entry(&self, dn: &str) -> Option<Entry> {
        let s = self.lock();
        let obj = s.tree.get(dn)?;
        let mut e = obj.to_entry(&["*"]);
        if let Some(sd) = obj.get("nTSecurityDescriptor").first() {
            e.bin_attrs
                .insert("ntsecuritydescriptor".into(), vec![sd.clone()]);
        }
        Some(e)
    }

    /// The whole security descriptor of `dn`, parsed.
    pub fn security_descriptor(&self, dn: &str) -> Option<SecurityDescriptor> {
        let s = self.lock();
        let bytes = s.tree.get(dn)?.get("nTSecurityDescriptor").first()?.clone();
        SecurityDescriptor::parse(&bytes).ok()
    }

    /// Every write so far, in order.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.lock().writes.clone()
    }

    /// The DCs bound to so far, in order (successful binds only).
    pub fn connects(&self) -> Vec<String> {
        self.lock().connects.clone()
    }

    /// The (base DN, filter) of every search served so far, in order.
    pub fn searched(&self) -> Vec<(String, String)> {
        self.lock().searched.clone()
    }

    /// DNs under `base` (subtree, same naming context) matching `filter`.
    pub fn find(&self, base: &str, filter: &str) -> Vec<String> {
        let s = self.lock();
        let Ok(f) = filter::parse(filter) else {
            return Vec::new();
        };
        s.tree
            .search(base, Scope::Subtree, &f)
            .map(|v| v.into_iter().map(|o| o.dn.clone()).collect())
            .unwrap_or_default()
    }

    /// Replaces the security descriptor of an existing `dn` (as a fixture,
    /// not logged as a write); false if there is no such object.
    pub fn seed_security_descriptor(&self, dn: &str, sd: &SecurityDescriptor) -> bool {
        let Ok(bytes) = sd.to_bytes() else {
            return false;
        };
        let mut s = self.lock();
        let Some(obj) = s.tree.get_mut(dn) else {
            return false;
        };
        obj.attrs.insert("ntsecuritydescriptor".into(), vec![bytes]);
        true
    }

    /// Adds an object directly (as a fixture), outside any DC or fault.
    pub fn seed_object(
        &self,
        dn: &str,
        attrs: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), DirectoryError> {
        let mut s = self.lock();
        let logged = s.writes.len();
        let result = s.add("fixture", dn, attrs);
        // Fixture writes are not the workflows' writes.
        s.writes.truncate(logged);
        result
    }
}

// ---------------------------------------------------------------- DC resolution

fn unreachable(dc: &str, ip: Option<IpAddr>) -> DirectoryError {
    DirectoryError::Unreachable {
        dc: dc.into(),
        reason: match ip {
            Some(ip) => format!("connect to {ip}:636: Connection refused (os error 111)"),
            None => format!("{dc}: no record found for {dc}."),
        },
    }
}

impl State {
    fn dc(&self, name: &str) -> Option<&DcState> {
        self.dcs.iter().find(|d| {
            d.host.eq_ignore_ascii_case(name.trim_end_matches('.'))
                || name.parse::<IpAddr>().is_ok_and(|ip| ip == d.ip)
        })
    }

    /// True when `dn` has not replicated to `dc` ([`FakeDirectory::hide_from`]).
    fn hidden(&self, dc: &str, dn: &str) -> bool {
        let dn = norm(dn).to_ascii_lowercase();
        self.unreplicated
            .iter()
            .any(|(on, hidden)| on == dc && (dn == *hidden || dn.ends_with(&format!(",{hidden}"))))
    }

    /// One session operation on `dc`: fails when the DC is gone, and
    /// spends its budget when it is going away.
    fn tick(&mut self, dc: &str) -> Result<(), DirectoryError> {
        let Some(d) = self.dcs.iter_mut().find(|d| d.host == dc) else {
            return Err(unreachable(dc, None));
        };
        if !d.reachable {
            return Err(DirectoryError::Unreachable {
                dc: dc.into(),
                reason: "connection closed: the server went away".into(),
            });
        }
        match d.budget {
            Some(0) => {
                d.reachable = false;
                d.budget = None;
                Err(DirectoryError::Unreachable {
                    dc: dc.into(),
                    reason: "connection reset by peer: the DC went away mid-operation".into(),
                })
            }
            Some(n) => {
                d.budget = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The sAMAccountName a bind name stands for: a UPN, `NETBIOS\user`
    /// or a DN.
    fn bind_account(&self, username: &str) -> Option<String> {
        if let Some((user, domain)) = username.rsplit_once('@') {
            return domain
                .eq_ignore_ascii_case(&self.domain)
                .then(|| user.to_ascii_lowercase());
        }
        if let Some((nb, user)) = username.split_once('\\') {
            return nb
                .eq_ignore_ascii_case(&self.netbios)
                .then(|| user.to_ascii_lowercase());
        }
        self.tree
            .get(username)
            .and_then(|o| o.text("sAMAccountName"))
            .map(|s| s.to_ascii_lowercase())
    }

    fn check_bind(&self, dc: &str, credential: &BindCredential) -> Result<(), DirectoryError> {
        let refused = self.dc(dc).is_some_and(|d| d.refuse_bind);
        let password = match &credential.secret {
            BindSecret::Kerberos(source) if !refused => {
                return self.check_kerberos(dc, &credential.username, source);
            }
            BindSecret::Kerberos(_) => None,
            BindSecret::Password(password) => Some(password),
        };
        let ok = !refused
            && self
                .bind_account(&credential.username)
                .and_then(|sam| self.passwords.get(&sam))
                .zip(password)
                .is_some_and(|(pw, given)| pw == given.expose_secret());
        if ok {
            Ok(())
        } else {
            Err(DirectoryError::InvalidCredentials {
                dc: dc.into(),
                reason: "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1".into(),
            })
        }
    }

    fn root_dse(&self, dc: &str) -> Entry {
        let mut root = self
            .rootdse
            .get(&dc.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        let now = time::OffsetDateTime::now_utc();
        root.set_text(
            "currentTime",
            &format!(
                "{:04}{:02}{:02}{:02}{:02}{:02}.0Z",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            ),
        );
        root.set_text("highestCommittedUSN", &self.usn.to_string());
        root.to_entry(&["*"])
    }
}

#[async_trait::async_trait]
impl Directory for FakeDirectory {
    async fn srv_lookup(&self, domain: &str) -> Result<Vec<SrvTarget>, DirectoryError> {
        let s = self.lock();
        if !domain.trim_end_matches('.').eq_ignore_ascii_case(&s.domain) {
            return Err(DirectoryError::NoDnsRecords {
                name: format!("_ldap._tcp.dc._msdcs.{domain}"),
                kind: "SRV",
            });
        }
        let mut targets: Vec<SrvTarget> = s
            .dcs
            .iter()
            .map(|d| SrvTarget {
                host: d.host.clone(),
                port: 389,
                priority: 0,
                weight: 100,
            })
            .collect();
        targets.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(targets)
    }

    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, DirectoryError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let s = self.lock();
        s.dc(host)
            .map(|d| vec![d.ip])
            .ok_or_else(|| DirectoryError::NoDnsRecords {
                name: host.to_owned(),
                kind: "A or AAAA",
            })
    }

    async fn connect(
        &self,
        dc: &str,
        credential: &BindCredential,
    ) -> Result<Box<dyn DirectorySession>, DirectoryError> {
        let mut s = self.lock();
        let Some(d) = s.dc(dc).cloned() else {
            return Err(unreachable(dc, dc.parse().ok()));
        };
        if !d.reachable || d.budget == Some(0) {
            return Err(unreachable(dc, Some(d.ip)));
        }
        s.check_bind(&d.host, credential)?;
        s.connects.push(d.host.clone());
        let bound = s.bind_account(&credential.username).unwrap_or_default();
        Ok(Box::new(FakeSession {
            dir: self.clone(),
            dc: d.host,
            name: dc.to_owned(),
            bound,
        }))
    }

    async fn authenticate(
        &self,
        dc: &str,
        principal: &str,
        password: &secrecy::SecretString,
    ) -> Result<(), DirectoryError> {
        let s = self.lock();
        let Some(d) = s.dc(dc).cloned() else {
            return Err(unreachable(dc, dc.parse().ok()));
        };
        if !d.reachable {
            return Err(unreachable(dc, Some(d.ip)));
        }
        s.check_password_proof(&d.host, principal, password)
    }

    async fn read_root_dse(&self, dc: &str) -> Result<Entry, DirectoryError> {
        let s = self.lock();
        let Some(d) = s.dc(dc).cloned() else {
            return Err(unreachable(dc, dc.parse().ok()));
        };
        if !d.reachable {
            return Err(unreachable(dc, Some(d.ip)));
        }
        Ok(s.root_dse(&d.host))
    }

    async fn probe(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        _timeout: Duration,
    ) -> ProbeReport {
        let s = self.lock();
        let mut report = ProbeReport {
            started: Some(SystemTime::now()),
            ..ProbeReport::default()
        };
        let Some(d) = s.dc(dc).cloned() else {
            report.address = dc.parse().ok();
            report.error = Some(unreachable(dc, report.address).to_string());
            return report;
        };
        report.address = Some(d.ip);
        if !d.reachable {
            report.error = Some(unreachable(dc, Some(d.ip)).to_string());
            return report;
        }
        report.handshake_latency = Some(Duration::from_micros(800));
        report.certificate_subject = Some(format!("CN={}", d.host));
        report.certificate_not_after = Some(SystemTime::now() + Duration::from_secs(365 * 86_400));
        report.certificate_trusted = true;
        if let Some(c) = credential
            && let Err(e) = s.check_bind(&d.host, c)
        {
            report.error = Some(e.to_string());
            return report;
        }
        report.bind_latency = Some(Duration::from_micros(500));
        let root = s.root_dse(&d.host);
        report.dns_host_name = root.first("dnsHostName").map(str::to_ascii_lowercase);
        report.default_naming_context = root.first("defaultNamingContext").map(str::to_owned);
        report.clock_skew_secs = Some(0);
        report.reachable = true;
        report
    }
}

/// A bound session to one of the fake's DCs.
struct FakeSession {
    dir: FakeDirectory,
    /// The DC's host name.
    dc: String,
    /// The name the caller connected with.
    name: String,
    /// The bound account's sAMAccountName, lower case.
    bound: String,
}

impl FakeSession {
    fn state(&self) -> Result<MutexGuard<'_, State>, DirectoryError> {
        let mut s = self.dir.lock();
        s.tick(&self.dc)?;
        Ok(s)
    }
}

#[async_trait::async_trait]
impl DirectorySession for FakeSession {
    fn server(&self) -> &str {
        &self.name
    }

    async fn root_dse(&mut self) -> Result<Entry, DirectoryError> {
        Ok(self.state()?.root_dse(&self.dc))
    }

    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        let mut s = self.state()?;
        s.searched.push((base.to_owned(), filter.to_owned()));
        let f = filter::parse(filter)
            .map_err(|e| ops::ldap(&self.dc, 87, format!("bad search filter: {e}")))?;
        if base.is_empty() && scope == Scope::Base {
            let root = s.root_dse(&self.dc);
            return Ok(vec![root]);
        }
        if !base.is_empty() && !tree::is_dn(base) {
            return Err(ops::ldap(&self.dc, 34, "0000208F: NameErr: invalid basedn"));
        }
        if s.hidden(&self.dc, base) {
            return Err(ops::no_such_object(&self.dc, base));
        }
        let found = s
            .tree
            .search(base, scope, &f)
            .ok_or_else(|| ops::no_such_object(&self.dc, base))?;
        Ok(found
            .into_iter()
            .filter(|o| !s.hidden(&self.dc, &o.dn))
            .map(|o| o.to_entry(attrs))
            .collect())
    }

    async fn read_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
    ) -> Result<Option<Vec<u8>>, DirectoryError> {
        let s = self.state()?;
        match s.read_sd(dn, sd_flags) {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(Some(bytes)),
            Some(Err(e)) => Err(ops::ldap(&self.dc, 80, e)),
        }
    }

    async fn read_managed_password(
        &mut self,
        dn: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DirectoryError> {
        let s = self.state()?;
        if s.hidden(&self.dc, dn) {
            return Err(ops::no_such_object(&self.dc, dn));
        }
        s.read_managed_password(dn, &self.bound)
            .ok_or_else(|| ops::no_such_object(&self.dc, dn))
    }

    async fn write_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
        descriptor: &[u8],
    ) -> Result<(), DirectoryError> {
        let dc = self.dc.clone();
        self.state()?.write_sd(&dc, dn, sd_flags, descriptor)
    }

    async fn add(
        &mut self,
        dn: &str,
        attrs: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), DirectoryError> {
        let dc = self.dc.clone();
        self.state()?.add(&dc, dn, attrs)
    }

    async fn modify(&mut self, dn: &str, changes: &[Change]) -> Result<(), DirectoryError> {
        let dc = self.dc.clone();
        self.state()?.modify(&dc, dn, changes)
    }

    async fn delete(&mut self, dn: &str) -> Result<(), DirectoryError> {
        let dc = self.dc.clone();
        self.state()?.delete(&dc, dn)
    }

    async fn unbind(self: Box<Self>) {}
}
