//! What the host, the tenant and the directory say now (read without
//! changing anything), and each step's judgement of it: PlanDecommission
//! describes the judgements, the operation acts on them.

use super::{Parts, Valid};
use crate::backends::directory::DirectorySession;
use crate::backends::host::{AgentProduct, ProductUninstall, ServiceState};
use crate::backends::tenant::{AgentGroup, ProvisioningAgent, Tokens};
use crate::model::computer_account;
use crate::workflows::Error;
use crate::workflows::apply::{Change, forget_kept};
use crate::workflows::domain_controllers::{entry_sid, find_account, naming_contexts};
use crate::workflows::permissions::{
    Profile, Resolved, is_exactly_present, read_dacl, recorded_ous, wanted,
};
use crate::workflows::service_account::{
    AccountRecord, host_may_retrieve, load_account, membership_descriptor, membership_sids,
    read_account_entry, resolve_sid,
};
use crate::workflows::tenant::RegistrationRecord;
use provd_sd::Sid;

/// A step's judgement.
pub(super) enum Judgement<T> {
    Do(T),
    /// Nothing to do, and why.
    Skip(String),
    /// Not known without a read the plan could not make (no session, no
    /// credential); the operation makes it.
    Unread(String),
    /// Refused (the operation fails before changing anything).
    Refused(String),
}

pub(super) enum Directory {
    /// Left alone, and why (keep_gmsa, no gMSA recorded).
    Skipped(String),
    /// Not read (PlanDecommission without a credential).
    NotRead,
    /// Read; `None` when the recorded gMSA no longer exists.
    Read(Option<Box<Gmsa>>),
}

pub(super) struct Gmsa {
    pub dn: String,
    pub sam: String,
    /// This host's computer account (`HOST1$`).
    pub host_account: String,
    /// `None`: the directory has no such computer account.
    pub host_sid: Option<Sid>,
    pub principals: Vec<Sid>,
    /// The principals once this host is removed, and their names.
    pub remaining: Vec<Sid>,
    pub remaining_names: Vec<String>,
    /// Machine names of the tenant's other agents whose computers may still
    /// retrieve the password once this host is removed.
    pub others_using: Vec<String>,
    /// Profiles with at least one ACE of the gMSA's exactly present on the
    /// domain root or an OU GrantPermissions recorded, and how many such ACEs.
    pub held: Vec<Profile>,
    pub aces: usize,
    /// Whether the domain root holds any of them.
    pub root_held: bool,
    /// The recorded OUs that hold any of them.
    pub ous_held: Vec<String>,
}

pub(super) struct Facts {
    pub running: Vec<String>,
    /// The package's uninstall entries, in removal order.
    pub products: Vec<AgentProduct>,
    pub registration: Option<RegistrationRecord>,
    /// `None`: the tenant was not read.
    pub agents: Option<Vec<ProvisioningAgent>>,
    pub account: Option<AccountRecord>,
    pub kept: Vec<&'static str>,
    pub directory: Directory,
    /// The configuration `delete_cloud_sync` names, as the tenant has it.
    pub cloud: super::cloud::CloudFacts,
}

/// Reads everything the steps judge. `session` is bound to the recorded
/// account's domain (none: the directory is not read).
pub(super) async fn read(
    p: &Parts,
    valid: &Valid,
    tokens: Option<&Tokens>,
    session: Option<&mut dyn DirectorySession>,
) -> Result<Facts, Error> {
    let status = p
        .host
        .agent_status()
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let running = status
        .services
        .iter()
        .filter(|s| !matches!(s.state, ServiceState::NotInstalled | ServiceState::Stopped))
        .map(|s| s.display_name.clone())
        .collect();
    let registration = p.tenant.registration().await?;
    let agents = match tokens {
        Some(t) => Some(p.tenant.tenant().list_agents(t).await?),
        None => None,
    };
    let account = load_account(&p.store).await?;
    let directory = match (&account, session) {
        _ if valid.keep_gmsa => Directory::Skipped(
            "keep_gmsa: the gMSA's principals and permissions are left alone".into(),
        ),
        (None, _) => Directory::Skipped("no gMSA is recorded".into()),
        (Some(_), None) => Directory::NotRead,
        (Some(account), Some(session)) => {
            let this = registration.as_ref().map(|r| r.agent_id.as_str());
            let machine = p.host.machine_name();
            let ous = recorded_ous(&p.store, &account.domain, &account.sid).await?;
            Directory::Read(
                read_gmsa(session, account, &machine, this, agents.as_deref(), &ous).await?,
            )
        }
    };
    let this = registration.as_ref().map(|r| r.agent_id.as_str());
    let cloud = super::cloud::read(p, valid, tokens, this).await?;
    Ok(Facts {
        cloud,
        running,
        products: status.products,
        registration,
        agents,
        account,
        kept: forget_kept(&p.store, true).await?,
        directory,
    })
}

async fn read_gmsa(
    session: &mut dyn DirectorySession,
    account: &AccountRecord,
    machine: &str,
    this_agent: Option<&str>,
    agents: Option<&[ProvisioningAgent]>,
    ous: &[String],
) -> Result<Option<Box<Gmsa>>, Error> {
    let (domain_dn, config_dn, schema_dn) = naming_contexts(session).await?;
    let Some(entry) = read_account_entry(session, &domain_dn, account).await? else {
        return Ok(None);
    };
    let host_account = computer_account(machine);
    let host_sid = match find_account(session, &domain_dn, &host_account, &["objectSid"]).await? {
        Some(e) => Some(entry_sid(&e)?),
        None => None,
    };
    let principals = membership_sids(&entry)?;
    let remaining: Vec<Sid> = principals
        .iter()
        .filter(|s| Some(**s) != host_sid)
        .copied()
        .collect();
    let mut remaining_names = Vec::new();
    for sid in &remaining {
        let principal = resolve_sid(session, &domain_dn, sid).await?;
        remaining_names.push(if principal.sam_account_name.is_empty() {
            sid.to_string()
        } else {
            principal.sam_account_name
        });
    }
    // The account as it will be once this host is removed: which of the
    // tenant's other agents run on a computer that may still retrieve it.
    let mut after = entry.clone();
    after.bin_attrs.insert(
        "msds-groupmsamembership".into(),
        vec![membership_descriptor(&remaining)?],
    );
    let mut others_using = Vec::new();
    for agent in agents.unwrap_or_default() {
        let theirs = computer_account(&agent.machine_name);
        if Some(agent.id.as_str()) == this_agent || theirs == host_account {
            continue;
        }
        if host_may_retrieve(session, &domain_dn, &after, &theirs)
            .await?
            .is_ok()
        {
            others_using.push(agent.machine_name.clone());
        }
    }
    let sid: Sid = account
        .sid
        .parse()
        .map_err(|e| Error::internal(format!("recorded SID {}", account.sid), e))?;
    let resolved = Resolved::resolve(session, &schema_dn, &config_dn).await?;
    let mut held: Vec<Profile> = Vec::new();
    let mut aces = 0;
    let mut root_held = false;
    let mut ous_held = Vec::new();
    // The domain root (GrantPermissions' target without OUs), then each OU
    // it recorded; an OU deleted since holds nothing.
    for target in std::iter::once(None).chain(ous.iter().map(Some)) {
        let targets: Vec<String> = target.cloned().into_iter().collect();
        let dn = target.map_or(domain_dn.as_str(), String::as_str);
        let (wanted, _) = wanted(&Profile::ALL, &resolved, sid, &domain_dn, &targets);
        let dacl = match read_dacl(session, dn).await {
            Ok(sd) => sd.dacl.unwrap_or_default(),
            Err(Error::NotFound(_)) if target.is_some() => continue,
            Err(e) => return Err(e),
        };
        let mut here = 0;
        for w in wanted.iter().filter(|w| is_exactly_present(&dacl, &w.ace)) {
            here += 1;
            for profile in &w.profiles {
                if !held.contains(profile) {
                    held.push(*profile);
                }
            }
        }
        aces += here;
        match target {
            _ if here == 0 => {}
            None => root_held = true,
            Some(ou) => ous_held.push(ou.clone()),
        }
    }
    Ok(Some(Box::new(Gmsa {
        dn: entry.dn,
        sam: account.sam_account_name.clone(),
        host_account,
        host_sid,
        principals,
        remaining,
        remaining_names,
        others_using,
        held,
        aces,
        root_held,
        ous_held,
    })))
}

/// The tenant's answer for its lack of a session (PlanDecommission).
const NO_SESSION: &str =
    "the tenant is not read (no session: sign in with SignIn); the operation signs in first";

impl Facts {
    pub fn stop(&self) -> Judgement<Vec<String>> {
        if self.running.is_empty() {
            Judgement::Skip("no agent service is running".into())
        } else {
            Judgement::Do(self.running.clone())
        }
    }

    /// This agent's id and its groups.
    pub fn agent_groups(&self) -> Judgement<(String, Vec<AgentGroup>)> {
        let Some(registration) = &self.registration else {
            return Judgement::Skip(
                "no registration is recorded (not registered through provd, or forgotten)".into(),
            );
        };
        let id = &registration.agent_id;
        let Some(agents) = &self.agents else {
            return Judgement::Unread(format!("agent {id}: {NO_SESSION}"));
        };
        match agents.iter().find(|a| &a.id == id) {
            None => Judgement::Skip(format!("the tenant no longer lists agent {id}")),
            Some(a) if a.groups.is_empty() => {
                Judgement::Skip(format!("agent {id} is in no agent group"))
            }
            Some(a) => Judgement::Do((id.clone(), a.groups.clone())),
        }
    }

    pub fn uninstall(&self) -> Judgement<&[AgentProduct]> {
        if self.products.is_empty() {
            Judgement::Skip("no uninstall entry of the agent's package is left".into())
        } else {
            Judgement::Do(&self.products)
        }
    }

    /// The gMSA as read, or (`Err`: unread, else skip) why there is none.
    fn gmsa(&self) -> Result<&Gmsa, (bool, String)> {
        match &self.directory {
            Directory::Skipped(why) => Err((false, why.clone())),
            Directory::NotRead => Err((
                true,
                "the directory is not read (no credential given)".into(),
            )),
            Directory::Read(None) => Err((
                false,
                format!(
                    "the gMSA {} no longer exists",
                    self.account
                        .as_ref()
                        .map(|a| a.sam_account_name.as_str())
                        .unwrap_or_default()
                ),
            )),
            Directory::Read(Some(g)) => Ok(g),
        }
    }

    pub fn principals(&self) -> Judgement<&Gmsa> {
        let g = match self.gmsa() {
            Ok(g) => g,
            Err(j) => return retype(j),
        };
        match g.host_sid {
            None => Judgement::Skip(format!(
                "the directory has no computer account {}",
                g.host_account
            )),
            Some(sid) if !g.principals.contains(&sid) => Judgement::Skip(format!(
                "{} is not one of {}'s principals",
                g.host_account, g.sam
            )),
            Some(_) => Judgement::Do(g),
        }
    }

    pub fn permissions(&self) -> Judgement<&Gmsa> {
        let g = match self.gmsa() {
            Ok(g) => g,
            Err(j) => return retype(j),
        };
        if g.aces == 0 {
            return Judgement::Skip(format!(
                "{} holds no permission profile's ACEs on the domain root or the OUs provd \
                 granted on",
                g.sam
            ));
        }
        if self.agents.is_none() {
            return Judgement::Unread(format!(
                "{} holds {} ACEs; whether other agents use it: {NO_SESSION}",
                g.sam, g.aces
            ));
        }
        if !g.others_using.is_empty() {
            return Judgement::Skip(format!(
                "{}'s ACEs are kept: other agents of the tenant run on computers that may \
                 retrieve its password: {}",
                g.sam,
                g.others_using.join(", ")
            ));
        }
        Judgement::Do(g)
    }

    pub fn delete(&self, valid: &Valid) -> Judgement<&Gmsa> {
        if !valid.delete_gmsa {
            return Judgement::Skip("not asked (delete_gmsa)".into());
        }
        let g = match self.gmsa() {
            Ok(g) => g,
            Err(j) => return retype(j),
        };
        if !g.remaining.is_empty() {
            return Judgement::Refused(format!(
                "{} is still used: other principals may retrieve its password: {}; remove \
                 them (or decommission their agents) first",
                g.sam,
                g.remaining_names.join(", ")
            ));
        }
        Judgement::Do(g)
    }

    /// provd's records of this agent that `forget` clears.
    pub fn forget(&self, valid: &Valid) -> Judgement<Vec<&'static str>> {
        let mut records = Vec::new();
        if self.registration.is_some() {
            records.push("the registration");
        }
        if self.account.is_some() && !valid.keep_gmsa {
            records.push("the recorded service account");
        }
        records.extend(self.kept.iter().copied());
        if records.is_empty() {
            Judgement::Skip("provd keeps no record of this agent".into())
        } else {
            Judgement::Do(records)
        }
    }

    /// PlanDecommission's answer: every step, in the operation's order.
    pub fn describe(&self, valid: &Valid) -> Vec<Change> {
        let mut out = Vec::new();
        let mut add = |step: &str, action: &'static str, j: Judgement<String>| {
            let (action, detail) = match j {
                Judgement::Do(d) => (action, d),
                Judgement::Skip(why) => ("skip", why),
                Judgement::Unread(why) => ("check", why),
                Judgement::Refused(why) => ("refuse", why),
            };
            out.push(Change {
                step: step.to_owned(),
                action,
                detail,
            });
        };
        add("stop-services", "stop", map(self.stop(), |s| s.join(", ")));
        add(
            "leave-agent-groups",
            "remove",
            map(self.agent_groups(), |(id, groups)| {
                format!(
                    "agent {id} from {}; the tenant then lists it as inactive until Microsoft \
                     ages it out (Graph has no delete-agent method)",
                    groups
                        .iter()
                        .map(|g| format!("{} ({})", g.display_name, g.id))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        );
        add(
            "uninstall-package",
            "uninstall",
            map(self.uninstall(), |products| {
                products
                    .iter()
                    .map(|p| format!("{p} {}", how(&p.uninstall)))
                    .collect::<Vec<_>>()
                    .join("; then ")
            }),
        );
        add(
            "gmsa-principals",
            "remove",
            map(self.principals(), |g| {
                format!(
                    "{} from {}'s principals; remaining: {}",
                    g.host_account,
                    g.sam,
                    remaining(g)
                )
            }),
        );
        add(
            "permissions",
            "remove",
            map(self.permissions(), |g| {
                let mut on: Vec<&str> = Vec::new();
                if g.root_held {
                    on.push("the domain root");
                }
                on.extend(g.ous_held.iter().map(String::as_str));
                format!(
                    "{} ACEs of {} ({}) on {}",
                    g.aces,
                    g.sam,
                    g.held
                        .iter()
                        .map(|p| p.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    on.join("; ")
                )
            }),
        );
        add(
            "delete-gmsa",
            "delete",
            map(self.delete(valid), |g| g.dn.clone()),
        );
        add(
            super::cloud::STEP,
            "delete",
            map(self.cloud.judge(), |(domain, app, others)| {
                super::cloud::describe(domain, app, others)
            }),
        );
        add(
            "forget",
            "forget",
            map(self.forget(valid), |r| r.join(", ")),
        );
        out
    }
}

/// How an entry is removed, for the plan.
fn how(uninstall: &ProductUninstall) -> String {
    match uninstall {
        ProductUninstall::Msi { product_code } => {
            format!("with `msiexec /x {product_code} /quiet /norestart`")
        }
        ProductUninstall::Bundle { .. } => "with its QuietUninstallString (`/uninstall /quiet`, \
             plus /norestart and /log): Burn removes the MSIs it chained, so entries below \
             may already be gone"
            .into(),
        ProductUninstall::Unknown => {
            "— refused: neither a Windows Installer product nor a Burn bundle".into()
        }
    }
}

pub(super) fn remaining(g: &Gmsa) -> String {
    if g.remaining_names.is_empty() {
        "none".into()
    } else {
        g.remaining_names.join(", ")
    }
}

/// `gmsa()`'s reason as a judgement.
fn retype<T>((unread, why): (bool, String)) -> Judgement<T> {
    if unread {
        Judgement::Unread(why)
    } else {
        Judgement::Skip(why)
    }
}

pub(super) fn map<T, U>(j: Judgement<T>, f: impl FnOnce(T) -> U) -> Judgement<U> {
    match j {
        Judgement::Do(t) => Judgement::Do(f(t)),
        Judgement::Skip(s) => Judgement::Skip(s),
        Judgement::Unread(s) => Judgement::Unread(s),
        Judgement::Refused(s) => Judgement::Refused(s),
    }
}
