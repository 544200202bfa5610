//! The one way a workflow talks to a domain: [`DcSession`] binds to the
//! first DC of the domain's order that answers (failing over with events)
//! and unbinds when dropped, on every path. Plus the lookups every bound
//! session starts with.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::DomainControllerWorkflows;
use super::memo::MemoSession;
use super::pool::{self, SessionPool};
use crate::backends::directory::{
    BindCredential, Change, DirectoryError, DirectorySession, Entry, Scope, escape,
};
use crate::backends::store::EventKind;
use crate::workflows::Error;
use crate::workflows::operations::{NewEvent, Progress};
use provd_sd::Sid;

/// What a connect reports, and where.
#[derive(Clone, Copy)]
pub(crate) enum Connect<'a> {
    /// No events: reads (GetServiceAccount, Verify, discovery).
    Quiet,
    /// The failover WARNING events and the serving DC's PROGRESS event,
    /// under the caller's step (which the caller starts and ends).
    Within(&'a Progress, &'a str),
    /// A step of its own, `connect`: STEP_STARTED before the DCs are even
    /// ordered, the events of `Within`, STEP_SUCCEEDED naming the DC.
    Step(&'a Progress),
}

/// A bound session to one DC of a domain; unbinds when dropped, or, inside
/// [`super::shared_sessions`] (every operation), goes back to the
/// operation's pool for the next section to borrow ([`pool`]).
///
/// A guard rather than a scoped `with_session(.., async |session| ..)`:
/// that closure form does not compile inside the operations' `Send` jobs
/// (rustc cannot prove an async closure over a borrowed `&mut dyn
/// DirectorySession` `Send` for every lifetime: "implementation of `Send` is
/// not general enough"), and a boxed-future closure would make every caller
/// clone what it captures. Unbinding is async and `Drop` cannot await, so
/// the drop spawns it on the runtime (when there is one; without, the
/// connection just closes): the caller's result does not wait for the DC's
/// goodbye, and every exit — the end of the scope, `?`, a cancelled or
/// timed-out future — unbinds the same way.
pub(crate) struct DcSession {
    held: Held,
}

enum Held {
    /// Bound for this caller alone: unbinds when dropped.
    Own(Box<dyn DirectorySession>),
    /// Borrowed from the operation's [`pool`]: goes back when dropped.
    Lent {
        session: Box<MemoSession>,
        pool: Arc<SessionPool>,
        domain: String,
        credential: BindCredential,
    },
    /// Handed on by `Drop`.
    Gone(Unbound),
}

impl DcSession {
    /// Binds to a DC of `domain`, trying them in the domain's order (the
    /// stored priority, else the SRV records).
    pub(crate) async fn open(
        dcs: &DomainControllerWorkflows,
        domain: &str,
        credential: &BindCredential,
        connect: Connect<'_>,
    ) -> Result<DcSession, Error> {
        Self::open_preferring(dcs, domain, &[], credential, connect).await
    }

    /// As [`DcSession::open`], but tries `preferred` instead of the
    /// domain's order when it is not empty (AddDirectory's preferred DCs,
    /// or an order the caller has already read).
    pub(crate) async fn open_preferring(
        dcs: &DomainControllerWorkflows,
        domain: &str,
        preferred: &[String],
        credential: &BindCredential,
        connect: Connect<'_>,
    ) -> Result<DcSession, Error> {
        if let Connect::Step(progress) = connect {
            progress
                .step_started(
                    "connect",
                    format!("binding to a domain controller of {domain}"),
                )
                .await?;
        }
        let reporting = match connect {
            Connect::Quiet => None,
            Connect::Within(progress, step) => Some((progress, step)),
            Connect::Step(progress) => Some((progress, "connect")),
        };
        let pool = pool::current();
        let lent = pool
            .as_ref()
            .and_then(|p| p.take(domain, credential, preferred.first().map(String::as_str)));
        let held = match (pool, lent) {
            (Some(pool), Some(session)) => {
                if let Some((progress, step)) = reporting {
                    report_served(progress, step, session.server(), true).await?;
                }
                Held::Lent {
                    session,
                    pool,
                    domain: domain.to_owned(),
                    credential: credential.clone(),
                }
            }
            (pool, _) => {
                let order = if preferred.is_empty() {
                    dcs.order(domain).await?
                } else {
                    preferred.to_vec()
                };
                let session = connect_in_order(dcs, &order, credential, reporting).await?;
                match pool {
                    Some(pool) => Held::Lent {
                        session: Box::new(MemoSession::new(session)),
                        pool,
                        domain: domain.to_owned(),
                        credential: credential.clone(),
                    },
                    None => Held::Own(session),
                }
            }
        };
        let session = DcSession { held };
        if let Connect::Step(progress) = connect {
            progress
                .step_succeeded("connect", format!("bound to {}", session.server()))
                .await?;
        }
        Ok(session)
    }

    /// The bound session, for the directory helpers.
    pub(crate) fn as_mut(&mut self) -> &mut dyn DirectorySession {
        &mut **self
    }
}

impl std::ops::Deref for DcSession {
    type Target = dyn DirectorySession;
    fn deref(&self) -> &Self::Target {
        match &self.held {
            Held::Own(session) => session.as_ref(),
            Held::Lent { session, .. } => session.as_ref(),
            Held::Gone(unbound) => unbound,
        }
    }
}

impl std::ops::DerefMut for DcSession {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match &mut self.held {
            Held::Own(session) => session.as_mut(),
            Held::Lent { session, .. } => session.as_mut(),
            Held::Gone(unbound) => unbound,
        }
    }
}

impl Drop for DcSession {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.held, Held::Gone(Unbound)) {
            // In the dropping code's span, where the awaited unbind was.
            Held::Own(session) => pool::unbind_later(session),
            Held::Lent {
                session,
                pool,
                domain,
                credential,
            } => pool.put_back(domain, credential, session),
            Held::Gone(_) => {}
        }
    }
}

/// What a dropped [`DcSession`] holds after handing its session to the
/// unbind; never called.
struct Unbound;

fn unbound() -> DirectoryError {
    DirectoryError::Config("the directory session was unbound".into())
}

#[async_trait::async_trait]
impl DirectorySession for Unbound {
    fn server(&self) -> &str {
        ""
    }
    async fn root_dse(&mut self) -> Result<Entry, DirectoryError> {
        Err(unbound())
    }
    async fn search(
        &mut self,
        _base: &str,
        _scope: Scope,
        _filter: &str,
        _attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        Err(unbound())
    }
    async fn read_security_descriptor(
        &mut self,
        _dn: &str,
        _sd_flags: u32,
    ) -> Result<Option<Vec<u8>>, DirectoryError> {
        Err(unbound())
    }
    async fn read_managed_password(
        &mut self,
        _dn: &str,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, DirectoryError> {
        Err(unbound())
    }
    async fn write_security_descriptor(
        &mut self,
        _dn: &str,
        _sd_flags: u32,
        _descriptor: &[u8],
    ) -> Result<(), DirectoryError> {
        Err(unbound())
    }
    async fn add(
        &mut self,
        _dn: &str,
        _attrs: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), DirectoryError> {
        Err(unbound())
    }
    async fn modify(&mut self, _dn: &str, _changes: &[Change]) -> Result<(), DirectoryError> {
        Err(unbound())
    }
    async fn delete(&mut self, _dn: &str) -> Result<(), DirectoryError> {
        Err(unbound())
    }
    async fn unbind(self: Box<Self>) {}
}

/// The PROGRESS event naming the DC that serves `step`: `reused` when it
/// is the operation's session, bound by an earlier step.
async fn report_served(
    progress: &Progress,
    step: &str,
    dc: &str,
    reused: bool,
) -> Result<(), Error> {
    let message = match reused {
        true => format!("using this operation's session to {dc}"),
        false => format!("connected to {dc}"),
    };
    progress
        .emit(NewEvent {
            step: step.into(),
            kind: Some(EventKind::Progress),
            message,
            attributes: BTreeMap::from([("dc".into(), dc.to_owned())]),
            ..NewEvent::default()
        })
        .await
}

/// Binds to the first DC of `order` that answers. Each failover is a
/// WARNING event; the DC that serves is a PROGRESS event with attribute
/// `dc`. A rejected bind stops at once.
async fn connect_in_order(
    dcs: &DomainControllerWorkflows,
    order: &[String],
    credential: &BindCredential,
    reporting: Option<(&Progress, &str)>,
) -> Result<Box<dyn DirectorySession>, Error> {
    let mut attempts = Vec::new();
    for dc in order {
        match dcs.directory().connect(dc, credential).await {
            Ok(session) => {
                if let Some((p, step)) = reporting {
                    report_served(p, step, dc, false).await?;
                }
                return Ok(session);
            }
            Err(err) if err.is_failover() => {
                tracing::warn!(dc = %dc, error = %err, "DC did not answer; trying the next");
                if let Some((p, step)) = reporting {
                    p.emit(NewEvent {
                        step: step.into(),
                        kind: Some(EventKind::Warning),
                        message: format!("{err}; trying the next domain controller"),
                        attributes: BTreeMap::from([("dc".into(), dc.clone())]),
                        ..NewEvent::default()
                    })
                    .await?;
                    p.checkpoint()?;
                }
                attempts.push((dc.clone(), err.to_string()));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(DirectoryError::AllFailed(attempts).into())
}

// The lookups below live here, not with the service account, because the
// permissions engine needs them too and sits below the service account.

/// Naming contexts from the RootDSE: (domain, configuration, schema).
pub(crate) async fn naming_contexts(
    session: &mut dyn DirectorySession,
) -> Result<(String, String, String), Error> {
    let root = session.root_dse().await?;
    let get = |n: &str| {
        root.first(n)
            .map(str::to_owned)
            .ok_or_else(|| Error::internal_msg(format!("RootDSE has no {n}")))
    };
    Ok((
        get("defaultNamingContext")?,
        get("configurationNamingContext")?,
        get("schemaNamingContext")?,
    ))
}

/// Finds an object by DN (if `name` looks like one) or sAMAccountName.
pub(crate) async fn find_account(
    session: &mut dyn DirectorySession,
    domain_dn: &str,
    name: &str,
    attrs: &[&str],
) -> Result<Option<Entry>, Error> {
    let result = if name.contains('=') {
        session
            .search(name, Scope::Base, "(objectClass=*)", attrs)
            .await
    } else {
        session
            .search(
                domain_dn,
                Scope::Subtree,
                &escape::eq("sAMAccountName", name),
                attrs,
            )
            .await
    };
    match result {
        Ok(entries) => Ok(entries.into_iter().next()),
        Err(DirectoryError::NoSuchObject { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn entry_sid(entry: &Entry) -> Result<Sid, Error> {
    entry
        .first_bin("objectSid")
        .ok_or_else(|| Error::internal_msg(format!("{} has no objectSid", entry.dn)))
        .and_then(|b| {
            Sid::from_bytes(b).map_err(|e| Error::internal(format!("objectSid of {}", entry.dn), e))
        })
}
