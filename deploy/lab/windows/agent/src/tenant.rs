//! The tenant heartbeat of the `AADConnectProvisioningAgent` role (LAB STAND-IN).
//!
//! The agent's identity is registered with the tenant (in the lab: `provd-tenant-emulator`)
//! and written to a file (temp file + rename, UTF-8 JSON): `identity.json`, by the lab's
//! `powershell.exe` stand-in when `Connect-AADCloudSyncAzureAD` runs (with `tenantId`; provd
//! writes no identity since issue 14):
//!
//! ```json
//! { "agentId": "…", "machineName": "…", "serviceUrl": "https://127.0.0.1:PORT",
//!   "certificatePem": "…", "privateKeyPem": "…",
//!   "serviceCaPem": "… (optional)", "heartbeatIntervalSeconds": 2 }
//! ```
//!
//! A worker thread re-reads that file every second (it may appear, change or disappear while
//! the service runs) and every `heartbeatIntervalSeconds` (default 5) posts
//! `{"machineName": …, "domains": [{"name": …, "preferredDcs": […]}]}` to
//! `{serviceUrl}/_agent/{agentId}/heartbeat` over HTTPS, presenting the client certificate
//! and key from the file and trusting `serviceCaPem` (the webpki roots when absent). The
//! domains are those of `domains.json` (`[{"domain", "preferredDcs"}]`, written by the
//! stand-in's `Add-AADCloudSyncADDomain`), read at every beat; without that file (or with one
//! that does not read) the heartbeat carries no `domains` and the tenant changes nothing. How
//! the real agent reports its domains is not documented: the emulator models it this way. Each
//! domain also carries `userCount` when the lab agent could count its users (`ldap.rs`). A
//! new or changed identity is acted on at once. Each request is time-boxed
//! ([`REQUEST_TIMEOUT`]); no connection is kept between beats.
//!
//! The outcome is a short word for the heartbeat file's `tenant=` field ([`TenantStatus`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::ldap::{Directory, UserCounts};
use crate::log::Log;

/// Heartbeat interval when `identity.json` does not say.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// Upper bound for one heartbeat request, from DNS to the response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the identity file is looked at (and a stop noticed).
const TICK: Duration = Duration::from_secs(1);
/// Longest `heartbeatIntervalSeconds` taken as given.
const MAX_INTERVAL_SECS: u64 = 3600;
/// Longest reason kept in `error:<reason>`.
const MAX_REASON: usize = 60;

/// `identity.json` (camelCase; unknown fields, e.g. `tenantId`, are
/// ignored). No `Debug`: it holds a private key.
#[derive(Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    agent_id: String,
    machine_name: String,
    service_url: String,
    certificate_pem: String,
    private_key_pem: String,
    #[serde(default)]
    service_ca_pem: Option<String>,
    #[serde(default)]
    heartbeat_interval_seconds: Option<u64>,
}

/// What the heartbeat file reports in `tenant=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantStatus {
    /// No `identity.json`.
    Unregistered,
    /// The last heartbeat was answered with 2xx.
    Ok,
    /// The registration is unusable or the last heartbeat failed: a reason without spaces.
    Error(String),
}

impl std::fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TenantStatus::Unregistered => f.write_str("unregistered"),
            TenantStatus::Ok => f.write_str("ok"),
            TenantStatus::Error(reason) => write!(f, "error:{reason}"),
        }
    }
}

impl TenantStatus {
    fn error(reason: impl AsRef<str>) -> TenantStatus {
        TenantStatus::Error(word(reason.as_ref()))
    }
}

/// `text` as one short word: runs of anything but ASCII letters, digits, `.` and `_` become
/// one `-`.
fn word(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(MAX_REASON).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("unknown");
    }
    out
}

/// One entry of `domains.json`, as the powershell.exe stand-in writes it.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    domain: String,
    #[serde(default)]
    preferred_dcs: Vec<String>,
}

/// The domains file, if it is there and reads as a list of domains.
fn read_domains(path: &std::path::Path) -> Option<Vec<Domain>> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The heartbeat's body: the machine name, and the domains when there is a domains file, each
/// with its user count when known.
fn body(machine_name: &str, domains: Option<&[Domain]>, users: &BTreeMap<String, u64>) -> String {
    let mut body = serde_json::json!({ "machineName": machine_name });
    if let Some(domains) = domains {
        body["domains"] = domains
            .iter()
            .map(|d| {
                let mut entry =
                    serde_json::json!({ "name": d.domain, "preferredDcs": d.preferred_dcs });
                if let Some(count) = users.get(&d.domain) {
                    entry["userCount"] = (*count).into();
                }
                entry
            })
            .collect();
    }
    body.to_string()
}

/// A ready heartbeat sender for one registration.
struct Sender {
    agent: ureq::Agent,
    url: String,
    machine_name: String,
    interval: Duration,
}

impl Sender {
    fn new(registration: &Registration) -> Result<Sender, TenantStatus> {
        let bad = |what: &str| TenantStatus::error(format!("registration-{what}"));
        let id = registration.agent_id.trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(bad("agentId"));
        }
        if registration.machine_name.trim().is_empty() {
            return Err(bad("machineName"));
        }
        let base = registration.service_url.trim().trim_end_matches('/');
        if !base
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        {
            return Err(bad("serviceUrl"));
        }
        let chain =
            certificates(&registration.certificate_pem).map_err(|_| bad("certificatePem"))?;
        if chain.is_empty() {
            return Err(bad("certificatePem"));
        }
        let key = PrivateKey::from_pem(registration.private_key_pem.as_bytes())
            .map_err(|_| bad("privateKeyPem"))?;
        let roots = match registration.service_ca_pem.as_deref().map(str::trim) {
            None | Some("") => RootCerts::WebPki,
            Some(pem) => match certificates(pem) {
                Ok(cas) if !cas.is_empty() => RootCerts::new_with_certs(&cas),
                _ => return Err(bad("serviceCaPem")),
            },
        };
        let tls = TlsConfig::builder()
            .client_cert(Some(ClientCert::new_with_certs(&chain, key)))
            .root_certs(roots)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(REQUEST_TIMEOUT))
            // One connection per beat: nothing stale to trip over, and a changed certificate
            // is used at once.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            // The lab talks to the tenant directly, whatever *_proxy the host has.
            .proxy(None)
            .http_status_as_error(false)
            .user_agent(concat!(
                "provd-lab-agent/",
                env!("CARGO_PKG_VERSION"),
                " (lab stand-in)"
            ))
            .build()
            .into();
        let interval = registration
            .heartbeat_interval_seconds
            .filter(|&s| s > 0)
            .map_or(DEFAULT_INTERVAL, |s| {
                Duration::from_secs(s.min(MAX_INTERVAL_SECS))
            });
        Ok(Sender {
            agent,
            url: format!("{base}/_agent/{id}/heartbeat"),
            machine_name: registration.machine_name.clone(),
            interval,
        })
    }

    /// One heartbeat reporting the domains of `domains` and their user counts; the request
    /// takes at most [`REQUEST_TIMEOUT`] (a count before it, see `ldap.rs`).
    fn beat(&self, domains: &std::path::Path, users: &mut UserCounts) -> TenantStatus {
        let domains = read_domains(domains);
        let names: Vec<&str> = domains
            .iter()
            .flatten()
            .map(|d| d.domain.as_str())
            .collect();
        let body = body(
            &self.machine_name,
            domains.as_deref(),
            users.for_beat(&names),
        );
        let status = match self
            .agent
            .post(&self.url)
            .content_type("application/json")
            .send(&body)
        {
            Ok(response) if response.status().is_success() => TenantStatus::Ok,
            Ok(response) => TenantStatus::error(format!("http-{}", response.status().as_u16())),
            Err(e) => TenantStatus::error(reason(&e)),
        };
        users.sent(status == TenantStatus::Ok);
        status
    }
}

fn certificates(pem: &str) -> Result<Vec<Certificate<'static>>, ureq::Error> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        if let PemItem::Certificate(cert) = item? {
            certs.push(cert);
        }
    }
    Ok(certs)
}

/// A short reason for a failed request.
fn reason(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(_) => "timeout".to_owned(),
        ureq::Error::HostNotFound => "host-not-found".to_owned(),
        ureq::Error::ConnectionFailed => "connection-failed".to_owned(),
        // rustls errors come wrapped in io::Error ("invalid peer certificate: UnknownIssuer",
        // "received fatal alert: BadCertificate").
        ureq::Error::Io(e) => match e.get_ref() {
            Some(inner) => inner.to_string(),
            None => format!("io-{}", e.kind()),
        },
        ureq::Error::Rustls(e) => format!("tls-{e}"),
        ureq::Error::Tls(e) => format!("tls-{e}"),
        other => other.to_string(),
    }
}

/// The running worker: [`Heartbeat::status`] for the heartbeat file, [`Heartbeat::stop`] at
/// the end.
pub struct Heartbeat {
    status: Arc<Mutex<TenantStatus>>,
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Heartbeat {
    /// Starts the worker for the identity file (the first of `paths` that exists) and the
    /// domains file; what the user count has to say goes to the `log` file.
    pub fn spawn(
        paths: Vec<PathBuf>,
        domains: PathBuf,
        log: PathBuf,
    ) -> std::io::Result<Heartbeat> {
        let status = Arc::new(Mutex::new(TenantStatus::Unregistered));
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("tenant-heartbeat".into())
            .spawn({
                let status = status.clone();
                move || {
                    let mut users = UserCounts::new(Directory::from_registry, Log::new(log));
                    let run = || worker(&paths, &domains, &mut users, &status, &stopped);
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).is_err() {
                        *status.lock().unwrap_or_else(|e| e.into_inner()) =
                            TenantStatus::error("panic");
                    }
                }
            })?;
        Ok(Heartbeat {
            status,
            stop,
            thread,
        })
    }

    pub fn status(&self) -> TenantStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Tells the worker to stop and waits for it at most `wait` (a request in flight ends
    /// within [`REQUEST_TIMEOUT`]); a worker still busy then is left to the process exit.
    /// Returns the last status.
    pub fn stop(self, wait: Duration) -> TenantStatus {
        let _ = self.stop.send(());
        let deadline = Instant::now() + wait;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The content of the first of `paths` that exists (NotFound if none does).
fn read_first(paths: &[PathBuf]) -> std::io::Result<Vec<u8>> {
    for path in paths {
        match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => return other,
        }
    }
    Err(std::io::ErrorKind::NotFound.into())
}

fn worker(
    paths: &[PathBuf],
    domains: &std::path::Path,
    users: &mut UserCounts,
    status: &Mutex<TenantStatus>,
    stop: &mpsc::Receiver<()>,
) {
    let set = |s: TenantStatus| *status.lock().unwrap_or_else(|e| e.into_inner()) = s;
    // The file content last acted on, and the sender built from it (None: unusable).
    let mut seen: Option<Vec<u8>> = None;
    let mut sender: Option<Sender> = None;
    let mut next_beat = Instant::now();
    loop {
        match read_first(paths) {
            Ok(bytes) if seen.as_ref() != Some(&bytes) => {
                sender = match serde_json::from_slice::<Registration>(&bytes) {
                    Ok(registration) => match Sender::new(&registration) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            set(e);
                            None
                        }
                    },
                    Err(_) => {
                        set(TenantStatus::error("registration-not-json"));
                        None
                    }
                };
                seen = Some(bytes);
                next_beat = Instant::now();
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                seen = None;
                sender = None;
                set(TenantStatus::Unregistered);
            }
            // Anything else (e.g. a sharing violation while provd replaces the file) is
            // usually transient: keep beating with what we have and look again at the next
            // tick; without a usable registration, say why.
            Err(e) => {
                if sender.is_none() {
                    set(TenantStatus::error(format!("registration-{}", e.kind())));
                }
            }
        }
        if let Some(sender) = &sender {
            let now = Instant::now();
            if now >= next_beat {
                set(sender.beat(domains, users));
                next_beat = now + sender.interval;
            }
        }
        let wait = if sender.is_some() {
            next_beat
                .saturating_duration_since(Instant::now())
                .min(TICK)
        } else {
            TICK
        };
        match stop.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_single_words() {
        assert_eq!(TenantStatus::Unregistered.to_string(), "unregistered");
        assert_eq!(TenantStatus::Ok.to_string(), "ok");
        assert_eq!(
            TenantStatus::error("tls-invalid peer certificate: UnknownIssuer").to_string(),
            "error:tls-invalid-peer-certificate-UnknownIssuer"
        );
        assert_eq!(TenantStatus::error(" ").to_string(), "error:unknown");
        assert!(
            !TenantStatus::error("x ".repeat(100))
                .to_string()
                .contains(' ')
        );
    }

    #[test]
    fn bad_registrations_are_named() {
        let registration = |url: &str, cert: &str| Registration {
            agent_id: "0f0e".into(),
            machine_name: "host1".into(),
            service_url: url.into(),
            certificate_pem: cert.into(),
            private_key_pem: String::new(),
            service_ca_pem: None,
            heartbeat_interval_seconds: None,
        };
        let err = |r: &Registration| Sender::new(r).err().map(|e| e.to_string());
        assert_eq!(
            err(&registration("http://127.0.0.1:1", "")).as_deref(),
            Some("error:registration-serviceUrl")
        );
        assert_eq!(
            err(&registration("https://127.0.0.1:1", "")).as_deref(),
            Some("error:registration-certificatePem")
        );
        let parsed: Registration = serde_json::from_str(
            r#"{"agentId":"a","machineName":"m","serviceUrl":"https://x","certificatePem":"c",
                "privateKeyPem":"k","extra":1}"#,
        )
        .unwrap();
        assert_eq!(parsed.heartbeat_interval_seconds, None);
        assert_eq!(parsed.service_ca_pem, None);
        // identity.json: the agent fields and the tenant.
        let identity: Registration = serde_json::from_str(
            r#"{"agentId":"a","machineName":"m","serviceUrl":"https://x","certificatePem":"c",
                "privateKeyPem":"k","serviceCaPem":"ca","heartbeatIntervalSeconds":2,"tenantId":"t"}"#,
        )
        .unwrap();
        assert_eq!(identity.heartbeat_interval_seconds, Some(2));
    }

    #[test]
    fn the_heartbeat_reports_the_domains_file() {
        let dir = std::env::temp_dir().join(format!("lab-agent-domains-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("domains.json");
        // The stand-in's format (`state.rs` of deploy/lab/windows/powershell).
        std::fs::write(
            &path,
            r#"[{"domain":"lab.example.test","preferredDcs":["dc2.lab.example.test","dc1.lab.example.test"]},
                {"domain":"b.test","preferredDcs":[]}]"#,
        )
        .unwrap();
        let domains = read_domains(&path);
        let none = BTreeMap::new();
        let parsed: serde_json::Value =
            serde_json::from_str(&body("host1", domains.as_deref(), &none)).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({
                "machineName": "host1",
                "domains": [
                    {"name": "lab.example.test", "preferredDcs": ["dc2.lab.example.test", "dc1.lab.example.test"]},
                    {"name": "b.test", "preferredDcs": []},
                ],
            })
        );
        // A known user count goes with its domain; an unknown one is absent.
        let users = BTreeMap::from([("lab.example.test".to_owned(), 26)]);
        let parsed: serde_json::Value =
            serde_json::from_str(&body("host1", domains.as_deref(), &users)).unwrap();
        assert_eq!(parsed["domains"][0]["userCount"], 26);
        assert!(parsed["domains"][1].get("userCount").is_none());
        // No file, or one that does not read: no `domains` (the tenant changes nothing).
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(read_domains(&path), None);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read_domains(&path), None);
        assert_eq!(body("host1", None, &none), r#"{"machineName":"host1"}"#);
        assert_eq!(
            body("host1", Some(&[]), &none),
            r#"{"domains":[],"machineName":"host1"}"#
        );
    }
}
