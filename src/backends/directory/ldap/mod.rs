//! [`Directory`] over ldap3 + rustls. provd resolves the DC itself (through
//! the configured DNS servers), opens the TCP connection, and hands it to
//! ldap3 with the DC's host name as the TLS name, so certificate checks use
//! the name even when the host's resolver cannot see the domain's DNS.
//!
//! A password is only ever sent in a simple bind over TLS: LDAPS (636) or
//! StartTLS (389). A Kerberos credential binds with SASL GSSAPI on plain 389
//! and the Kerberos security layer seals every message from the bind on
//! (`kerberos`); that is the only use of a plaintext socket, nothing is sent
//! on it before the bind, and the DC is authenticated by Kerberos mutual
//! authentication to `ldap/<dc>` instead of a certificate. Samba with its
//! default `ldap server require strong auth = yes`, and AD requiring LDAP
//! signing, both accept it; neither accepts GSSAPI inside TLS with a layer.
//!
//! Connecting and binding live here; `session` is a bound connection (the
//! [`DirectorySession`] operations), `probe` the reachability probe of one
//! DC, `time` the GeneralizedTime parser.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, StdStream};
use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use secrecy::ExposeSecret;

use opentelemetry::KeyValue;
use tracing::Instrument;
use tracing::field::Empty;

use super::dns::Dns;
use super::{
    BindCredential, BindSecret, Directory, DirectoryError, DirectorySession, Entry, ProbeReport,
    SrvTarget,
};

use session::LdapSession;

/// How provd reaches DCs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapTransport {
    /// TLS from the first byte, port 636.
    Ldaps,
    /// Plain LDAP on 389 upgraded with StartTLS before anything else.
    StartTls,
}

#[derive(Debug, Clone)]
pub struct LdapSettings {
    pub transport: LdapTransport,
    /// Kerberos binds over `transport` with channel binding instead of
    /// sealed on plain 389.
    pub kerberos_over_tls: bool,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    pub page_size: i32,
}

pub struct LdapDirectory {
    tls: Result<Arc<ClientConfig>, String>,
    roots: Option<Arc<rustls::RootCertStore>>,
    dns: Dns,
    settings: LdapSettings,
}

fn ldap_error(dc: &str, err: LdapError) -> DirectoryError {
    match err {
        LdapError::LdapResult { result } => {
            let reason = if result.text.is_empty() {
                format!("result code {}", result.rc)
            } else {
                result.text.clone()
            };
            DirectoryError::from_result_code(dc, result.rc, reason)
        }
        other => DirectoryError::Unreachable {
            dc: dc.into(),
            reason: other.to_string(),
        },
    }
}

/// A client span for one LDAP call to `dc`; more fields may follow. Never a
/// password, and binds do not even record the account.
macro_rules! ldap_span {
    ($name:literal, $dc:expr $(, $($field:tt)+)?) => {
        tracing::info_span!(
            $name,
            otel.kind = "client",
            otel.status_code = Empty,
            otel.status_description = Empty,
            server.address = %$dc,
            outcome = Empty,
            $($($field)+)?
        )
    };
}

// Declared after `ldap_span!`, which they use (macro_rules scope is textual).
#[cfg(unix)]
mod kerberos;
mod kerberos_bind;
mod kerberos_errors;
mod probe;
mod session;
mod time;

/// The `outcome` label of a failed directory call.
fn outcome(err: &DirectoryError) -> &'static str {
    match err {
        DirectoryError::Unreachable { .. } => "unreachable",
        DirectoryError::InvalidCredentials { .. } => "invalid_credentials",
        DirectoryError::InsufficientAccess { .. } => "insufficient_access",
        DirectoryError::NoSuchObject { .. } => "no_such_object",
        DirectoryError::AlreadyExists { .. } => "already_exists",
        DirectoryError::Rejected { .. } => "rejected",
        DirectoryError::Ldap { .. } => "ldap_error",
        DirectoryError::NoDnsRecords { .. } => "dns_no_records",
        DirectoryError::Dns(_) => "dns_error",
        DirectoryError::Config(_) => "config_error",
        DirectoryError::KerberosRejected { .. } => "kerberos_rejected",
        DirectoryError::Kerberos { .. } => "kerberos_error",
        DirectoryError::AllFailed(_) => "all_failed",
    }
}

/// Runs one LDAP call inside `span`, records its outcome there and counts it
/// in `provd.directory.calls` {dc, op, outcome}.
async fn observed<T>(
    span: tracing::Span,
    dc: &str,
    op: &'static str,
    call: impl Future<Output = Result<T, DirectoryError>>,
) -> Result<T, DirectoryError> {
    let result = call.instrument(span.clone()).await;
    let label = match &result {
        Ok(_) => "ok",
        Err(err) => {
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_description", err.to_string().as_str());
            outcome(err)
        }
    };
    span.record("outcome", label);
    crate::telemetry::metrics().directory_calls.add(
        1,
        &[
            KeyValue::new("dc", dc.to_owned()),
            KeyValue::new("op", op),
            KeyValue::new("outcome", label),
        ],
    );
    result
}

fn load_roots(ca_file: &Path) -> Result<rustls::RootCertStore, String> {
    let pem = std::fs::read(ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: {e}", ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no certificate", ca_file.display()));
    }
    Ok(roots)
}

impl LdapDirectory {
    /// `ca_file`: the CA bundle DC certificates must chain to; without one,
    /// every connection fails with a configuration error naming the key.
    pub fn new(
        ca_file: Option<&Path>,
        dns_servers: &[SocketAddr],
        settings: LdapSettings,
    ) -> Result<Self, DirectoryError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (tls, roots) = match ca_file.map(load_roots) {
            None => (
                Err(
                    "directory.ca_file is not configured: provd verifies every DC certificate"
                        .to_owned(),
                ),
                None,
            ),
            Some(Err(e)) => (Err(e), None),
            Some(Ok(roots)) => {
                let roots = Arc::new(roots);
                let config = ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| DirectoryError::Config(e.to_string()))?
                    .with_root_certificates(roots.clone())
                    .with_no_client_auth();
                (Ok(Arc::new(config)), Some(roots))
            }
        };
        Ok(Self {
            tls,
            roots,
            dns: Dns::new(dns_servers)?,
            settings,
        })
    }

    fn port(&self) -> u16 {
        match self.settings.transport {
            LdapTransport::Ldaps => 636,
            LdapTransport::StartTls => 389,
        }
    }

    async fn tcp(&self, dc: &str) -> Result<(tokio::net::TcpStream, IpAddr), DirectoryError> {
        self.tcp_to(dc, self.port()).await
    }

    async fn tcp_to(
        &self,
        dc: &str,
        port: u16,
    ) -> Result<(tokio::net::TcpStream, IpAddr), DirectoryError> {
        let addresses = self
            .dns
            .addresses(dc)
            .await
            .map_err(|e| DirectoryError::Unreachable {
                dc: dc.into(),
                reason: e.to_string(),
            })?;
        let mut last = String::new();
        for ip in addresses {
            let addr = SocketAddr::new(ip, port);
            match tokio::time::timeout(
                self.settings.connect_timeout,
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok((stream, ip));
                }
                Ok(Err(e)) => last = format!("connect to {addr}: {e}"),
                Err(_) => last = format!("connect to {addr}: timed out"),
            }
        }
        Err(DirectoryError::Unreachable {
            dc: dc.into(),
            reason: last,
        })
    }

    /// TCP, then TLS (LDAPS or StartTLS) through ldap3 on our stream.
    async fn open(&self, dc: &str) -> Result<Ldap, DirectoryError> {
        let transport = match self.settings.transport {
            LdapTransport::Ldaps => "ldaps",
            LdapTransport::StartTls => "starttls",
        };
        let span = ldap_span!(
            "ldap.connect",
            dc,
            ldap.transport = transport,
            server.port = self.port()
        );
        observed(span, dc, "connect", self.open_unobserved(dc)).await
    }

    async fn open_unobserved(&self, dc: &str) -> Result<Ldap, DirectoryError> {
        let tls = self.tls.clone().map_err(DirectoryError::Config)?;
        let (stream, _) = self.tcp(dc).await?;
        let stream = stream.into_std().map_err(|e| DirectoryError::Unreachable {
            dc: dc.into(),
            reason: e.to_string(),
        })?;
        let starttls = self.settings.transport == LdapTransport::StartTls;
        let url = if starttls {
            format!("ldap://{dc}:389")
        } else {
            format!("ldaps://{dc}:636")
        };
        let settings = LdapConnSettings::new()
            .set_config(tls)
            .set_conn_timeout(self.settings.connect_timeout)
            .set_starttls(starttls)
            .set_std_stream(StdStream::Tcp(stream));
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &url)
            .await
            .map_err(|e| ldap_error(dc, e))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    async fn bind(
        &self,
        dc: &str,
        ldap: &mut Ldap,
        credential: Option<&BindCredential>,
    ) -> Result<(), DirectoryError> {
        let (user, password) = match credential.map(|c| (c, &c.secret)) {
            Some((c, BindSecret::Password(password))) => {
                (c.username.as_str(), password.expose_secret())
            }
            // A Kerberos bind seals its own connection: the probe measures
            // it on one, and leaves this one anonymous for the RootDSE.
            Some((c, BindSecret::Kerberos(_))) => {
                let mut sealed = self.connect_kerberos(dc, c).await?;
                let _ = sealed.unbind().await;
                return Ok(());
            }
            None => ("", ""),
        };
        let span = ldap_span!("ldap.bind", dc, ldap.anonymous = credential.is_none());
        let timeout = self.settings.operation_timeout;
        observed(span, dc, "bind", async move {
            ldap.with_timeout(timeout)
                .simple_bind(user, password)
                .await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(dc, e))
        })
        .await
    }
}

#[async_trait::async_trait]
impl Directory for LdapDirectory {
    async fn srv_lookup(&self, domain: &str) -> Result<Vec<SrvTarget>, DirectoryError> {
        let span = tracing::info_span!("dns.srv", otel.kind = "client", dns.domain = domain);
        self.dns.srv(domain).instrument(span).await
    }

    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, DirectoryError> {
        let span = tracing::info_span!("dns.resolve", otel.kind = "client", dns.host = host);
        self.dns.addresses(host).instrument(span).await
    }

    async fn connect(
        &self,
        dc: &str,
        credential: &BindCredential,
    ) -> Result<Box<dyn DirectorySession>, DirectoryError> {
        let ldap = match &credential.secret {
            BindSecret::Kerberos(_) => self.connect_kerberos(dc, credential).await?,
            BindSecret::Password(_) => {
                let mut ldap = self.open(dc).await?;
                if let Err(err) = self.bind(dc, &mut ldap, Some(credential)).await {
                    let _ = ldap.unbind().await;
                    return Err(err);
                }
                ldap
            }
        };
        Ok(Box::new(LdapSession {
            dc: dc.to_owned(),
            ldap,
            settings: self.settings.clone(),
        }))
    }
    async fn read_root_dse(&self, dc: &str) -> Result<Entry, DirectoryError> {
        let mut ldap = self.open(dc).await?;
        let root = session::read_root_dse(dc, &mut ldap, self.settings.operation_timeout).await;
        let _ = ldap.unbind().await;
        root
    }

    async fn probe(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        timeout: Duration,
    ) -> ProbeReport {
        self.run_probe(dc, credential, timeout).await
    }

    async fn authenticate(
        &self,
        dc: &str,
        principal: &str,
        password: &secrecy::SecretString,
    ) -> Result<(), DirectoryError> {
        self.authenticate_kerberos(dc, principal, password).await
    }
}

/// On Windows provd binds as its own service identity (SSPI's default
/// credentials, `kerberos_bind`); cross-krb5 0.4 cannot log a principal in
/// with a password there, so the gMSA's password is not proven by a bind.
#[cfg(not(unix))]
impl LdapDirectory {
    async fn authenticate_kerberos(
        &self,
        _dc: &str,
        _principal: &str,
        _password: &secrecy::SecretString,
    ) -> Result<(), DirectoryError> {
        Err(DirectoryError::Config(
            "provd does not prove a password with Kerberos on Windows hosts (SSPI with explicit \
             credentials is not implemented, and Wine cannot test it)"
                .into(),
        ))
    }
}

/// A keytab or a cache on Windows: provd has no MIT krb5 there.
#[cfg(not(unix))]
const WINDOWS_KERBEROS: &str = "Kerberos binds with a keytab or a credential cache are not \
    supported on Windows hosts: provd binds as its own service identity (SSPI) when a \
    read-only request names no credential; otherwise use a username and password";

/// The service's own identity off Windows: there is no SSPI.
#[cfg(unix)]
const SERVICE_IDENTITY_OFF_WINDOWS: &str = "binding as this service's own identity (SSPI) \
    works on Windows hosts only: on Linux set directory.host_principal and \
    directory.host_keytab";
