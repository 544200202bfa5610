//! One directory session per domain per operation.
//!
//! A workflow and everything it runs inside [`shared_sessions`] (every
//! operation of the engine, Verify, PlanConfiguration) share their bound
//! sessions: the first [`super::DcSession::open`] for a domain and a
//! credential binds, dropping the `DcSession` hands the session back here
//! instead of unbinding, and the next open for the same domain and
//! credential borrows it again; the DC work of an apply is one bind per
//! domain, and the reads its sections share are read once
//! ([`super::memo`]). Sticking to one DC for the whole operation also means
//! every section reads what the earlier ones wrote, with no replication in
//! between. A session whose DC stopped answering is not lent again: the
//! next open fails over as usual. The sessions unbind when the scope ends.
//!
//! A task-local rather than a parameter: the sessions are opened deep in
//! workflows that each section calls (service account, permissions,
//! writeback) and that also serve RPCs of their own, outside any shared
//! scope; threading a pool through all of them would change every
//! signature for what is an optimisation with one observable effect (fewer
//! binds). Work spawned onto other tasks does not inherit the scope and
//! binds on its own.

use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret;

use super::memo::MemoSession;
use crate::backends::directory::{BindCredential, BindSecret, DirectorySession, Entry};

tokio::task_local! {
    static POOL: Arc<SessionPool>;
}

/// Runs `work` with one directory session per domain and credential,
/// unbound when it ends. Inside a scope already, just runs `work`.
pub(crate) async fn shared_sessions<F: Future>(work: F) -> F::Output {
    if POOL.try_with(|_| ()).is_ok() {
        return work.await;
    }
    POOL.scope(Arc::new(SessionPool::default()), work).await
}

/// The scope's pool, if the running task is in one.
pub(super) fn current() -> Option<Arc<SessionPool>> {
    POOL.try_with(Arc::clone).ok()
}

/// The RootDSE of `dc` as a session of the current scope already read it.
pub(crate) fn known_root_dse(dc: &str) -> Option<Entry> {
    let pool = current()?;
    let idle = pool.lock();
    idle.iter()
        .filter(|i| i.session.server().eq_ignore_ascii_case(dc))
        .find_map(|i| i.session.known_root_dse().cloned())
}

struct Idle {
    domain: String,
    credential: BindCredential,
    session: Box<MemoSession>,
}

#[derive(Default)]
pub(super) struct SessionPool {
    idle: Mutex<Vec<Idle>>,
}

impl SessionPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Borrows the idle session of `domain` bound with `credential`; with
    /// `on`, only one served by that DC.
    pub(super) fn take(
        &self,
        domain: &str,
        credential: &BindCredential,
        on: Option<&str>,
    ) -> Option<Box<MemoSession>> {
        let mut idle = self.lock();
        let at = idle.iter().position(|i| {
            i.domain.eq_ignore_ascii_case(domain)
                && same_credential(&i.credential, credential)
                && on.is_none_or(|dc| i.session.server().eq_ignore_ascii_case(dc))
        })?;
        Some(idle.swap_remove(at).session)
    }

    /// Takes a session back. A broken one, or a second one for the same
    /// domain and credential (opened while the first was lent), unbinds.
    pub(super) fn put_back(
        &self,
        domain: String,
        credential: BindCredential,
        session: Box<MemoSession>,
    ) {
        let mut idle = self.lock();
        let duplicate = idle.iter().any(|i| {
            i.domain.eq_ignore_ascii_case(&domain) && same_credential(&i.credential, &credential)
        });
        if session.is_broken() || duplicate {
            drop(idle);
            unbind_later(session);
            return;
        }
        idle.push(Idle {
            domain,
            credential,
            session,
        });
    }
}

impl Drop for SessionPool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *self.lock());
        for idle in idle {
            unbind_later(idle.session);
        }
    }
}

/// Unbinds on the runtime, when there is one (without, the connection just
/// closes): `Drop` cannot await.
pub(super) fn unbind_later(session: Box<dyn DirectorySession>) {
    use tracing::Instrument;
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(session.unbind().instrument(tracing::Span::current()));
    }
}

/// Whether two credentials are the same identity with the same proof; a
/// session bound with one serves the other.
fn same_credential(a: &BindCredential, b: &BindCredential) -> bool {
    a.username == b.username
        && match (&a.secret, &b.secret) {
            (BindSecret::Password(x), BindSecret::Password(y)) => {
                x.expose_secret() == y.expose_secret()
            }
            (BindSecret::Kerberos(x), BindSecret::Kerberos(y)) => x == y,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::directory::KerberosSource;
    use secrecy::SecretString;

    fn password(user: &str, secret: &str) -> BindCredential {
        BindCredential {
            username: user.into(),
            secret: BindSecret::Password(SecretString::from(secret.to_owned())),
        }
    }

    #[test]
    fn a_session_serves_only_the_identity_and_proof_it_was_bound_with() {
        let a = password("admin@lab", "one");
        assert!(same_credential(&a, &password("admin@lab", "one")));
        assert!(!same_credential(&a, &password("admin@lab", "two")));
        assert!(!same_credential(&a, &password("other@lab", "one")));
        let keytab = |p: &str| BindCredential {
            username: "VM$@LAB".into(),
            secret: BindSecret::Kerberos(KerberosSource::Keytab(p.into())),
        };
        assert!(same_credential(&keytab("/k"), &keytab("/k")));
        assert!(!same_credential(&keytab("/k"), &keytab("/other")));
        assert!(!same_credential(&keytab("/k"), &a));
    }
}
