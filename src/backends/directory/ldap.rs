//! [`Directory`] over ldap3 + rustls. provd resolves the DC itself (through
//! the configured DNS servers), opens the TCP connection, and hands it to
//! ldap3 with the DC's host name as the TLS name, so certificate checks use
//! the name even when the host's resolver cannot see the domain's DNS.
//!
//! Binds are simple binds, and only ever over TLS: LDAPS (636) or StartTLS
//! (389); there is no plaintext mode to configure.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use std::collections::HashSet;

use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, SearchEntry, StdStream};
use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use secrecy::ExposeSecret;

use opentelemetry::KeyValue;
use tracing::Instrument;
use tracing::field::Empty;

use super::dns::Dns;
use super::{
    BindCredential, Change, Directory, DirectoryError, DirectorySession, Entry, ProbeReport,
    SD_FLAGS_OID, Scope, SrvTarget, sd_flags_value,
};

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
            match result.rc {
                49 => DirectoryError::InvalidCredentials {
                    dc: dc.into(),
                    reason,
                },
                50 => DirectoryError::InsufficientAccess {
                    dc: dc.into(),
                    reason,
                },
                32 => DirectoryError::NoSuchObject {
                    dc: dc.into(),
                    reason,
                },
                // busy, unavailable, unwilling: another DC may serve.
                51..=53 => DirectoryError::Unreachable {
                    dc: dc.into(),
                    reason,
                },
                code => DirectoryError::Ldap {
                    dc: dc.into(),
                    code,
                    reason,
                },
            }
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

/// The `outcome` label of a failed directory call.
fn outcome(err: &DirectoryError) -> &'static str {
    match err {
        DirectoryError::Unreachable { .. } => "unreachable",
        DirectoryError::InvalidCredentials { .. } => "invalid_credentials",
        DirectoryError::InsufficientAccess { .. } => "insufficient_access",
        DirectoryError::NoSuchObject { .. } => "no_such_object",
        DirectoryError::Ldap { .. } => "ldap_error",
        DirectoryError::Dns(_) => "dns_error",
        DirectoryError::Config(_) => "config_error",
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

/// Attribute names of a change list (values are never recorded: they may
/// be passwords).
fn attribute_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(",")
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
            let addr = SocketAddr::new(ip, self.port());
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
        let span = ldap_span!("ldap.bind", dc, ldap.anonymous = credential.is_none());
        let (user, password) = match credential {
            Some(c) => (c.username.as_str(), c.password.expose_secret()),
            None => ("", ""),
        };
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
        let mut ldap = self.open(dc).await?;
        if let Err(err) = self.bind(dc, &mut ldap, Some(credential)).await {
            let _ = ldap.unbind().await;
            return Err(err);
        }
        Ok(Box::new(LdapSession {
            dc: dc.to_owned(),
            ldap,
            settings: self.settings.clone(),
        }))
    }

    async fn probe(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        timeout: Duration,
    ) -> ProbeReport {
        let mut report = ProbeReport {
            started: Some(SystemTime::now()),
            ..ProbeReport::default()
        };
        let span = ldap_span!("ldap.probe", dc, ldap.anonymous = credential.is_none());
        let step = Mutex::new("connect");
        let run = self.probe_steps(dc, credential, &mut report, &step);
        match tokio::time::timeout(timeout, run)
            .instrument(span.clone())
            .await
        {
            Ok(Ok(())) => report.reachable = true,
            Ok(Err(err)) => report.error = Some(err),
            Err(_) => {
                let at = *step.lock().unwrap_or_else(|p| p.into_inner());
                report.error = Some(format!("timed out after {timeout:?} during {at}"));
            }
        }
        let label = match &report.error {
            None => "ok",
            Some(err) => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_description", err.as_str());
                "unreachable"
            }
        };
        span.record("outcome", label);
        crate::telemetry::metrics().directory_calls.add(
            1,
            &[
                KeyValue::new("dc", dc.to_owned()),
                KeyValue::new("op", "probe"),
                KeyValue::new("outcome", label),
            ],
        );
        report
    }
}

impl LdapDirectory {
    async fn probe_steps(
        &self,
        dc: &str,
        credential: Option<&BindCredential>,
        report: &mut ProbeReport,
        step: &Mutex<&'static str>,
    ) -> Result<(), String> {
        let set = |s| *step.lock().unwrap_or_else(|p| p.into_inner()) = s;
        let roots = self.roots.clone().ok_or_else(|| match &self.tls {
            Err(e) => e.clone(),
            Ok(_) => "no CA bundle".to_owned(),
        })?;
        // 1. TCP + TLS handshake, recording the certificate whatever its trust.
        let started = Instant::now();
        let (tcp, ip) = self.tcp(dc).await.map_err(|e| e.to_string())?;
        report.address = Some(ip);
        set("TLS handshake");
        let seen = Arc::new(Mutex::new(None));
        let verifier = Arc::new(RecordingVerifier {
            inner: WebPkiServerVerifier::builder(roots)
                .build()
                .map_err(|e| e.to_string())?,
            seen: seen.clone(),
        });
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
        let name = ServerName::try_from(dc.to_owned()).map_err(|e| format!("{dc}: {e}"))?;
        if self.settings.transport == LdapTransport::Ldaps {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {ip}: {e}"))?;
            report.handshake_latency = Some(started.elapsed());
            drop(tls);
        } else {
            drop(tcp);
        }
        if let Some((der, trusted)) = seen.lock().unwrap_or_else(|p| p.into_inner()).take() {
            report.certificate_trusted = trusted.is_ok();
            if let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) {
                report.certificate_subject = Some(cert.subject().to_string());
                let secs = cert.validity().not_after.timestamp();
                report.certificate_not_after = u64::try_from(secs)
                    .ok()
                    .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
            }
            if let Err(e) = trusted {
                return Err(format!("certificate not trusted: {e}"));
            }
        }
        // 2. Bind over a real LDAP session, then read the RootDSE.
        set("bind");
        let mut ldap = self.open(dc).await.map_err(|e| e.to_string())?;
        let bind_started = Instant::now();
        let bound = self.bind(dc, &mut ldap, credential).await;
        if bound.is_ok() {
            report.bind_latency = Some(bind_started.elapsed());
        }
        set("RootDSE read");
        let before = SystemTime::now();
        let root = read_root_dse(dc, &mut ldap, self.settings.operation_timeout).await;
        let after = SystemTime::now();
        let _ = ldap.unbind().await;
        let root = root.map_err(|e| e.to_string())?;
        report.dns_host_name = root.first("dnsHostName").map(str::to_ascii_lowercase);
        report.default_naming_context = root.first("defaultNamingContext").map(str::to_owned);
        if let Some(dc_time) = root.first("currentTime").and_then(parse_generalized_time) {
            let midpoint = before + after.duration_since(before).unwrap_or_default() / 2;
            report.clock_skew_secs = Some(signed_secs(dc_time, midpoint));
        }
        bound.map_err(|e| e.to_string())
    }
}

fn signed_secs(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `20261127093015.0Z` (LDAP GeneralizedTime, UTC) to a time.
pub fn parse_generalized_time(value: &str) -> Option<SystemTime> {
    let digits = value.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0..4)?).ok()?,
        month,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
    )
    .ok()?;
    let ts = time::PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp();
    u64::try_from(ts)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

async fn read_root_dse(
    dc: &str,
    ldap: &mut Ldap,
    timeout: Duration,
) -> Result<Entry, DirectoryError> {
    let span = ldap_span!(
        "ldap.search",
        dc,
        ldap.base = "",
        ldap.scope = "base",
        ldap.filter = "(objectClass=*)",
        ldap.entries = Empty,
    );
    observed(
        span,
        dc,
        "search",
        read_root_dse_unobserved(dc, ldap, timeout),
    )
    .await
}

async fn read_root_dse_unobserved(
    dc: &str,
    ldap: &mut Ldap,
    timeout: Duration,
) -> Result<Entry, DirectoryError> {
    let (entries, _) = ldap
        .with_timeout(timeout)
        .search("", ldap3::Scope::Base, "(objectClass=*)", vec!["*", "+"])
        .await
        .and_then(|r| r.success())
        .map_err(|e| ldap_error(dc, e))?;
    tracing::Span::current().record("ldap.entries", entries.len());
    entries
        .into_iter()
        .next()
        .map(|e| entry(SearchEntry::construct(e)))
        .ok_or_else(|| DirectoryError::Ldap {
            dc: dc.into(),
            code: 32,
            reason: "no RootDSE".into(),
        })
}

fn entry(e: SearchEntry) -> Entry {
    Entry {
        dn: e.dn,
        attrs: e
            .attrs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        bin_attrs: e
            .bin_attrs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
    }
}

fn value_set(values: &[Vec<u8>]) -> HashSet<&[u8]> {
    values.iter().map(Vec::as_slice).collect()
}

struct LdapSession {
    dc: String,
    ldap: Ldap,
    settings: LdapSettings,
}

impl LdapSession {
    async fn search_observed(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        let (scope, scope_name) = match scope {
            Scope::Base => (ldap3::Scope::Base, "base"),
            Scope::OneLevel => (ldap3::Scope::OneLevel, "one"),
            Scope::Subtree => (ldap3::Scope::Subtree, "sub"),
        };
        let span = ldap_span!(
            "ldap.search",
            self.dc,
            ldap.base = base,
            ldap.scope = scope_name,
            ldap.filter = filter,
            ldap.entries = Empty,
        );
        let dc = self.dc.clone();
        observed(
            span,
            &dc,
            "search",
            self.search_unobserved(base, scope, filter, attrs),
        )
        .await
    }

    async fn search_unobserved(
        &mut self,
        base: &str,
        scope: ldap3::Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        let adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(self.settings.page_size)),
        ];
        let dc = self.dc.clone();
        let mut stream = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .streaming_search_with(adapters, base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| ldap_error(&dc, e))?;
        let mut out = Vec::new();
        while let Some(raw) = stream.next().await.map_err(|e| ldap_error(&dc, e))? {
            out.push(entry(SearchEntry::construct(raw)));
        }
        stream
            .finish()
            .await
            .success()
            .map_err(|e| ldap_error(&dc, e))?;
        tracing::Span::current().record("ldap.entries", out.len());
        Ok(out)
    }
}

#[async_trait::async_trait]
impl DirectorySession for LdapSession {
    fn server(&self) -> &str {
        &self.dc
    }

    async fn root_dse(&mut self) -> Result<Entry, DirectoryError> {
        read_root_dse(&self.dc, &mut self.ldap, self.settings.operation_timeout).await
    }

    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>, DirectoryError> {
        self.search_observed(base, scope, filter, attrs).await
    }

    async fn read_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
    ) -> Result<Option<Vec<u8>>, DirectoryError> {
        let control = RawControl {
            ctype: SD_FLAGS_OID.into(),
            crit: true,
            val: Some(sd_flags_value(sd_flags)),
        };
        let dc = self.dc.clone();
        let span = ldap_span!(
            "ldap.sd_read",
            dc,
            ldap.dn = dn,
            ldap.sd_flags = sd_flags,
            ldap.found = Empty
        );
        observed(span, &dc, "sd_read", async {
            let result = self
                .ldap
                .with_controls(control)
                .with_timeout(self.settings.operation_timeout)
                .search(
                    dn,
                    ldap3::Scope::Base,
                    "(objectClass=*)",
                    vec!["nTSecurityDescriptor"],
                )
                .await
                .and_then(|r| r.success());
            let found = match result {
                Ok((entries, _)) => Ok(entries.into_iter().next().and_then(|e| {
                    let e = SearchEntry::construct(e);
                    e.bin_attrs
                        .into_iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("nTSecurityDescriptor"))
                        .and_then(|(_, mut v)| v.pop())
                })),
                Err(err) => match ldap_error(&self.dc, err) {
                    DirectoryError::NoSuchObject { .. } => Ok(None),
                    other => Err(other),
                },
            };
            if let Ok(sd) = &found {
                tracing::Span::current().record("ldap.found", sd.is_some());
            }
            found
        })
        .await
    }

    async fn write_security_descriptor(
        &mut self,
        dn: &str,
        sd_flags: u32,
        descriptor: &[u8],
    ) -> Result<(), DirectoryError> {
        let control = RawControl {
            ctype: SD_FLAGS_OID.into(),
            crit: true,
            val: Some(sd_flags_value(sd_flags)),
        };
        let values: HashSet<&[u8]> = HashSet::from([descriptor]);
        let attr: &[u8] = b"nTSecurityDescriptor";
        let dc = self.dc.clone();
        let span = ldap_span!(
            "ldap.sd_write",
            dc,
            ldap.dn = dn,
            ldap.sd_flags = sd_flags,
            ldap.sd_bytes = descriptor.len(),
        );
        let call = self
            .ldap
            .with_controls(control)
            .with_timeout(self.settings.operation_timeout)
            .modify(dn, vec![Mod::Replace(attr, values)]);
        observed(span, &dc, "sd_write", async {
            call.await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(&dc, e))
        })
        .await
    }

    async fn add(
        &mut self,
        dn: &str,
        attrs: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), DirectoryError> {
        let attrs: Vec<(&[u8], HashSet<&[u8]>)> = attrs
            .iter()
            .map(|(name, values)| {
                (
                    name.as_bytes(),
                    values.iter().map(Vec::as_slice).collect::<HashSet<_>>(),
                )
            })
            .collect();
        let dc = self.dc.clone();
        let names = attribute_names(
            attrs
                .iter()
                .map(|(name, _)| std::str::from_utf8(name).unwrap_or("?")),
        );
        let span = ldap_span!(
            "ldap.add",
            dc,
            ldap.dn = dn,
            ldap.attributes = names.as_str()
        );
        let call = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .add(dn, attrs);
        observed(span, &dc, "add", async {
            call.await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(&dc, e))
        })
        .await
    }

    async fn modify(&mut self, dn: &str, changes: &[Change]) -> Result<(), DirectoryError> {
        let mods: Vec<Mod<&[u8]>> = changes
            .iter()
            .map(|c| match c {
                Change::Replace(a, v) => Mod::Replace(a.as_bytes(), value_set(v)),
                Change::Add(a, v) => Mod::Add(a.as_bytes(), value_set(v)),
                Change::Delete(a, v) => Mod::Delete(a.as_bytes(), value_set(v)),
            })
            .collect();
        let dc = self.dc.clone();
        let names = attribute_names(changes.iter().map(|c| match c {
            Change::Replace(a, _) | Change::Add(a, _) | Change::Delete(a, _) => a.as_ref(),
        }));
        let span = ldap_span!(
            "ldap.modify",
            dc,
            ldap.dn = dn,
            ldap.attributes = names.as_str()
        );
        let call = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .modify(dn, mods);
        observed(span, &dc, "modify", async {
            call.await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(&dc, e))
        })
        .await
    }

    async fn delete(&mut self, dn: &str) -> Result<(), DirectoryError> {
        let dc = self.dc.clone();
        let span = ldap_span!("ldap.delete", dc, ldap.dn = dn);
        let call = self
            .ldap
            .with_timeout(self.settings.operation_timeout)
            .delete(dn);
        observed(span, &dc, "delete", async {
            call.await
                .and_then(|r| r.success())
                .map(|_| ())
                .map_err(|e| ldap_error(&dc, e))
        })
        .await
    }

    async fn unbind(mut self: Box<Self>) {
        let _ = self.ldap.unbind().await;
    }
}

/// The DC's certificate (DER) and whether it verified.
type SeenCertificate = Arc<Mutex<Option<(Vec<u8>, Result<(), String>)>>>;

/// Records the end-entity certificate and the real verification outcome,
/// then lets the probe's handshake complete either way (the probe sends no
/// credentials on that connection).
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: SeenCertificate,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let outcome = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| e.to_string());
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((end_entity.as_ref().to_vec(), outcome));
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time() {
        let t = parse_generalized_time("20261127093015.0Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_795_771_815);
        assert!(parse_generalized_time("2026").is_none());
        assert!(parse_generalized_time("2026131709301Z").is_none());
    }
}
