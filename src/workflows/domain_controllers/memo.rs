//! The session an operation shares across its sections ([`super::pool`]):
//! a bound session that answers repeated reads of what cannot change under
//! the operation from memory, and remembers whether its DC stopped
//! answering so the pool binds anew instead of lending a dead session.
//!
//! What it keeps, and until when (read-your-writes holds: every write
//! through the session drops what it could have changed):
//! - the RootDSE: the naming contexts and the DC's identity, for the
//!   session's life;
//! - searches based under the configuration naming context (schema GUIDs,
//!   extended rights, the partitions' NetBIOS names, KDS root keys): until
//!   a write under that naming context;
//! - base reads of only `objectSid`/`objectGUID` (which never change while
//!   the object lives, e.g. the domain SID): until that object is deleted;
//! - security descriptors: until any write (a DACL written on a parent
//!   changes its children's inherited ACEs).
//!
//! Nothing secret is kept: `msDS-ManagedPassword` reads go to the DC every
//! time.

use std::collections::HashMap;

use zeroize::Zeroizing;

use crate::backends::directory::{Change, DirectoryError, DirectorySession, Entry, Scope};

/// Attributes whose values never change while the object exists.
const IMMUTABLE: [&str; 2] = ["objectsid", "objectguid"];

type SearchKey = (String, u8, String, Vec<String>);

pub(super) struct MemoSession {
    inner: Box<dyn DirectorySession>,
    root_dse: Option<Entry>,
    /// Lower-case "cn=configuration,..." once the RootDSE is known.
    configuration: Option<String>,
    searches: HashMap<SearchKey, Vec<Entry>>,
    descriptors: HashMap<(String, u32), Option<Vec<u8>>>,
    /// The DC stopped answering: the pool must not lend this session again.
    broken: bool,
}

impl MemoSession {
    pub(super) fn new(inner: Box<dyn DirectorySession>) -> Self {
        Self {
            inner,
            root_dse: None,
            configuration: None,
            searches: HashMap::new(),
            descriptors: HashMap::new(),
            broken: false,
        }
    }

    pub(super) fn is_broken(&self) -> bool {
        self.broken
    }

    /// The RootDSE read so far, without asking the DC.
    pub(super) fn known_root_dse(&self) -> Option<&Entry> {
        self.root_dse.as_ref()
    }

    fn seen<T>(&mut self, result: Result<T, DirectoryError>) -> Result<T, DirectoryError> {
        if let Err(err) = &result
            && err.is_failover()
        {
            self.broken = true;
        }
        result
    }

    fn under_configuration(&self, dn: &str) -> bool {
        let dn = dn.to_ascii_lowercase();
        match &self.configuration {
            Some(nc) => dn == *nc || dn.ends_with(&format!(",{nc}")),
            // Unknown naming contexts: anything may be configuration.
            None => true,
        }
    }

    fn cacheable(&self, base: &str, scope: Scope, attrs: &[&str]) -> bool {
        let immutable_read = scope == Scope::Base
            && !attrs.is_empty()
            && attrs
                .iter()
                .all(|a| IMMUTABLE.contains(&a.to_ascii_lowercase().as_str()));
        immutable_read || (self.configuration.is_some() && self.under_configuration(base))
    }

    /// What a write to `dn` may have changed is forgotten.
    fn written(&mut self, dn: &str, deleted: bool) {
        self.descriptors.clear();
        if self.under_configuration(dn) {
            self.searches.clear();
        } else if deleted {
            let dn = dn.to_ascii_lowercase();
            self.searches.retain(|(base, ..), _| *base != dn);
        }
    }
}

fn search_key(base: &str, scope: Scope, filter: &str, attrs: &[&str]) -> SearchKey {
    let scope = match scope {
        Scope::Base => 0,
        Scope::OneLevel => 1,
        Scope::Subtree => 2,
    };
    (
        base.to_ascii_lowercase(),
        scope,
        filter.to_owned(),
        attrs.iter().map(|a| a.to_ascii_lowercase()).collect(),
    )
}

#[async_trait::async_trait]
impl DirectorySession for MemoSession {
    fn server(&self) -> &str {
        self.inner.server()
    }

    async fn root_dse(&mut self) -> Result<Entry, DirectoryError> {
        if let Some(root) = &self.root_dse {
            return Ok(root.clone());
        }
        let read = self.inner.root_dse().await;
        let root = self.seen(read)?;
        self.configuration = root
            .first("configurationNamingContext")
            .map(str::to_ascii_lowercase);
        self.root_dse = Some(root.clone());
        Ok(root)
    }

    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        if !self.cacheable(base, scope, attrs) {
            let found = self.inner.search(base, scope, filter, attrs).await;
            return self.seen(found);
        }
        let key = search_key(base, scope, filter, attrs);
        if let Some(hit) = self.searches.get(&key) {
            return Ok(hit.clone());
        }
        let found = self.inner.search(base, scope, filter, attrs).await;
        let found = self.seen(found)?;
        self.searches.insert(key, found.clone());
        Ok(found)
    }

    async fn read_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
    ) -> Result<Option<Vec<u8>>, DirectoryError> {
        let key = (dn.to_ascii_lowercase(), sd_flags);
        if let Some(hit) = self.descriptors.get(&key) {
            return Ok(hit.clone());
        }
        let read = self.inner.read_security_descriptor(dn, sd_flags).await;
        let read = self.seen(read)?;
        self.descriptors.insert(key, read.clone());
        Ok(read)
    }

    async fn write_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
        descriptor: &[u8],
    ) -> Result<(), DirectoryError> {
        self.written(dn, false);
        let wrote = self
            .inner
            .write_security_descriptor(dn, sd_flags, descriptor)
            .await;
        self.seen(wrote)
    }

    async fn read_managed_password(
        &mut self,
        dn: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DirectoryError> {
        let read = self.inner.read_managed_password(dn).await;
        self.seen(read)
    }

    async fn add(
        &mut self,
        dn: &str,
        attrs: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), DirectoryError> {
        self.written(dn, false);
        let added = self.inner.add(dn, attrs).await;
        self.seen(added)
    }

    async fn modify(&mut self, dn: &str, changes: &[Change]) -> Result<(), DirectoryError> {
        self.written(dn, false);
        let modified = self.inner.modify(dn, changes).await;
        self.seen(modified)
    }

    async fn delete(&mut self, dn: &str) -> Result<(), DirectoryError> {
        self.written(dn, true);
        let deleted = self.inner.delete(dn).await;
        self.seen(deleted)
    }

    async fn unbind(self: Box<Self>) {
        self.inner.unbind().await;
    }
}

#[cfg(all(test, feature = "testkit"))]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting
mod tests {
    use super::super::pool::SessionPool;
    use super::*;
    use crate::backends::directory::Directory;
    use crate::testkit::FakeDirectory;

    async fn memo(fake: &FakeDirectory, dc: &str) -> Box<MemoSession> {
        let bound = fake.connect(dc, &fake.admin_credential()).await;
        Box::new(MemoSession::new(bound.expect("bind")))
    }

    async fn user_class(session: &mut MemoSession, schema: &str) -> Vec<Entry> {
        let filter = "(lDAPDisplayName=user)";
        session
            .search(schema, Scope::OneLevel, filter, &["cn"])
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn configuration_reads_are_kept_until_a_write_there_and_descriptors_until_any_write() {
        let fake = FakeDirectory::new();
        let dc = fake.dcs()[0].clone();
        let mut session = memo(&fake, &dc).await;
        let root = session.root_dse().await.unwrap();
        let schema = root.first("schemaNamingContext").unwrap().to_owned();
        let base = fake.base_dn();
        let first = user_class(&mut session, &schema).await;
        assert_eq!(first.len(), 1);
        // The DC goes away: what is kept still answers, anything else fails
        // and marks the session broken.
        fake.set_reachable(&dc, false);
        assert_eq!(user_class(&mut session, &schema).await, first);
        assert!(session.root_dse().await.is_ok());
        assert!(!session.is_broken());
        let read = session.read_security_descriptor(&base, 4).await;
        assert!(read.unwrap_err().is_failover());
        assert!(session.is_broken());

        // A session that saw its DC go is not lent again.
        let pool = SessionPool::default();
        let credential = fake.admin_credential();
        pool.put_back(fake.domain(), credential.clone(), session);
        assert!(pool.take(&fake.domain(), &credential, None).is_none());
    }

    #[tokio::test]
    async fn writes_drop_what_they_may_have_changed() {
        let fake = FakeDirectory::new();
        let dc = fake.dcs()[0].clone();
        let mut session = memo(&fake, &dc).await;
        let root = session.root_dse().await.unwrap();
        let config = root.first("configurationNamingContext").unwrap().to_owned();
        let base = fake.base_dn();
        let before = session.read_security_descriptor(&base, 4).await.unwrap();
        let services = format!("CN=Services,{config}");
        let filter = "(cn=provd-memo-test)";
        assert!(
            session
                .search(&services, Scope::OneLevel, filter, &["cn"])
                .await
                .unwrap()
                .is_empty()
        );
        // Written through another session: what is kept stays (an
        // operation's own writes go through its own session).
        let mut other = fake.connect(&dc, &fake.admin_credential()).await.unwrap();
        let dn = format!("CN=provd-memo-test,{services}");
        let container = vec![b"container".to_vec()];
        other
            .add(&dn, &[("objectClass", container.clone())])
            .await
            .unwrap();
        assert!(
            session
                .search(&services, Scope::OneLevel, filter, &["cn"])
                .await
                .unwrap()
                .is_empty()
        );
        // A write of its own under the configuration NC forgets them.
        let second = format!("CN=provd-memo-test2,{services}");
        session
            .add(&second, &[("objectClass", container)])
            .await
            .unwrap();
        let found = session
            .search(&services, Scope::OneLevel, filter, &["cn"])
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        // And any write forgets the descriptors read.
        assert_eq!(
            session.read_security_descriptor(&base, 4).await.unwrap(),
            before
        );
        assert_eq!(session.descriptors.len(), 1, "kept until the next write");
        session.delete(&second).await.unwrap();
        assert!(session.descriptors.is_empty());
    }
}
