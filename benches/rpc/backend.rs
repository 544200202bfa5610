//! The daemon's backends in the bench: the testkit's fakes (the fake
//! directory is the one the directory contract suite passes), the directory
//! wrapped to time every call so a read's backend share can be shown apart
//! from the transport's, and an outbound backend that reaches no network.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use provd::backends::directory::{
    BindCredential, Change, Directory, DirectoryError, DirectorySession, Entry, ProbeReport, Scope,
    SrvTarget,
};
use provd::backends::outbound::{HttpAnswer, Outbound, OutboundError, Proxy, TlsSeen};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Nanoseconds spent inside directory calls (and sessions' calls), summed
/// over every task: the wall time of each call, which for the in-memory
/// fake is its CPU time (it never waits).
#[derive(Clone, Default)]
pub struct BackendClock(Arc<AtomicU64>);

impl BackendClock {
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    async fn time<T>(&self, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = call.await;
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(ns, Ordering::Relaxed);
        out
    }
}

/// A directory whose every call is timed on `clock`.
pub struct Timed<D> {
    pub inner: D,
    pub clock: BackendClock,
}

#[async_trait::async_trait]
impl<D: Directory> Directory for Timed<D> {
    async fn srv_lookup(&self, domain: &str) -> Result<Vec<SrvTarget>, DirectoryError> {
        self.clock.time(self.inner.srv_lookup(domain)).await
    }
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, DirectoryError> {
        self.clock.time(self.inner.resolve(host)).await
    }
    async fn connect(
        &self,
        dc: &str,
        credential: &BindCredential,
    ) -> Result<Box<dyn DirectorySession>, DirectoryError> {
        let inner = self.clock.time(self.inner.connect(dc, credential)).await?;
        Ok(Box::new(TimedSession {
            inner,
            clock: self.clock.clone(),
        }))
    }
    async fn read_root_dse(&self, dc: &str) -> Result<Entry, DirectoryError> {
        self.clock.time(self.inner.read_root_dse(dc)).await
    }
    async fn probe(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        timeout: Duration,
    ) -> ProbeReport {
        self.clock
            .time(self.inner.probe(dc, credential, timeout))
            .await
    }
    async fn authenticate(
        &self,
        dc: &str,
        principal: &str,
        password: &SecretString,
    ) -> Result<(), DirectoryError> {
        self.clock
            .time(self.inner.authenticate(dc, principal, password))
            .await
    }
}

struct TimedSession {
    inner: Box<dyn DirectorySession>,
    clock: BackendClock,
}

#[async_trait::async_trait]
impl DirectorySession for TimedSession {
    fn server(&self) -> &str {
        self.inner.server()
    }
    async fn root_dse(&mut self) -> Result<Entry, DirectoryError> {
        self.clock.time(self.inner.root_dse()).await
    }
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        self.clock
            .time(self.inner.search(base, scope, filter, attrs))
            .await
    }
    async fn read_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
    ) -> Result<Option<Vec<u8>>, DirectoryError> {
        self.clock
            .time(self.inner.read_security_descriptor(dn, sd_flags))
            .await
    }
    async fn write_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
        descriptor: &[u8],
    ) -> Result<(), DirectoryError> {
        self.clock
            .time(
                self.inner
                    .write_security_descriptor(dn, sd_flags, descriptor),
            )
            .await
    }
    async fn read_managed_password(
        &mut self,
        dn: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, DirectoryError> {
        self.clock.time(self.inner.read_managed_password(dn)).await
    }
    async fn add(
        &mut self,
        dn: &str,
        attrs: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), DirectoryError> {
        self.clock.time(self.inner.add(dn, attrs)).await
    }
    async fn modify(&mut self, dn: &str, changes: &[Change]) -> Result<(), DirectoryError> {
        self.clock.time(self.inner.modify(dn, changes)).await
    }
    async fn delete(&mut self, dn: &str) -> Result<(), DirectoryError> {
        self.clock.time(self.inner.delete(dn)).await
    }
    async fn unbind(self: Box<Self>) {
        let TimedSession { inner, clock } = *self;
        clock.time(inner.unbind()).await
    }
}

/// Verify's outbound probes answered at once with "no network": the bench
/// must never reach Microsoft's endpoints.
pub struct NoNetwork;

#[async_trait::async_trait]
impl Outbound for NoNetwork {
    async fn tls_handshake(
        &self,
        host: &str,
        port: u16,
        _: Option<&Proxy>,
        _: Duration,
    ) -> Result<TlsSeen, OutboundError> {
        Err(no_network(host, port))
    }
    async fn http_get(
        &self,
        host: &str,
        port: u16,
        _: &str,
        _: Option<&Proxy>,
        _: Duration,
    ) -> Result<HttpAnswer, OutboundError> {
        Err(no_network(host, port))
    }
}

fn no_network(host: &str, port: u16) -> OutboundError {
    OutboundError::Protocol {
        peer: format!("{host}:{port}"),
        reason: "the RPC bench reaches no network".into(),
    }
}
