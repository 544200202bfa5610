//! In-memory tenant state shared by every handler: device codes, tokens,
//! agents, agent groups, published resources, injected faults, the cloud
//! sync configurations (`sync/`), and the emulator's agent CA.
//!
//! Everything lives in one `Arc<Mutex<State>>`; handlers hold the lock only
//! for short, non-async sections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

/// Settings fixed at start-up (from the command line).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tenant id accepted in `/{tenant}/oauth2/v2.0/...`.
    pub tenant: String,
    /// `https://host:port` of this emulator, used in `verification_uri`.
    pub base_url: String,
    /// Lifetime of a device code (`expires_in`).
    pub device_code_ttl: Duration,
    /// Minimum polling interval (`interval`).
    pub poll_interval: Duration,
    /// Lifetime of an access token.
    pub token_ttl: Duration,
    /// An agent without a heartbeat for this long is "inactive".
    pub inactive_after: Duration,
    /// The audience (`aud`) of Graph tokens; Graph endpoints accept no other.
    pub graph_audience: String,
    /// The audience of the connector registration service's tokens;
    /// `POST /register/RegisterConnector` accepts no other.
    pub registration_audience: String,
    /// (client id, audience) pairs: which public client may get a token
    /// for which audience (see `audience.rs`).
    pub client_audiences: Vec<(String, String)>,
    /// How often the sync engine runs a cycle (Microsoft: every 2 minutes).
    pub sync_interval: Duration,
    /// Answer every synchronization secret's value as `"*"` on GET.
    pub mask_secrets: bool,
}

/// What the (emulated) user did with a device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Pending,
    Approved { user: String },
    Denied,
}

/// One outstanding device authorization request (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    pub client_id: String,
    pub scope: String,
    pub created: Instant,
    pub expires_at: Instant,
    pub last_poll: Option<Instant>,
    pub decision: Decision,
}

/// Who a token was issued to, for which resource, in which tenant.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: String,
    pub client_id: String,
    pub scope: String,
    /// The resource the access token is for (its `aud`), from `scope`.
    pub audience: String,
    /// The tenant id the user signed in to (the `tid` claim).
    pub tenant: String,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub grant: Grant,
    pub expires_at: Instant,
}

/// A registered provisioning agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub machine_name: String,
    pub external_ip: IpAddr,
    pub last_seen: Instant,
    pub password_writeback: bool,
}

/// An `onPremisesAgentGroup`.
#[derive(Debug, Clone)]
pub struct AgentGroup {
    pub id: String,
    pub display_name: String,
    pub is_default: bool,
    pub agent_ids: Vec<String>,
}

/// A `publishedResource` (for provisioning: one AD domain).
#[derive(Debug, Clone)]
pub struct PublishedResource {
    pub id: String,
    pub display_name: String,
    pub resource_name: String,
    pub group_ids: Vec<String>,
}

/// An injected fault: the next `remaining` requests whose path starts with
/// `path_prefix` are answered with `status`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub path_prefix: String,
    pub status: u16,
    pub remaining: u32,
    pub retry_after_secs: Option<u64>,
}

/// The mutable tenant.
#[derive(Debug, Default)]
pub struct State {
    pub device_codes: Vec<DeviceCode>,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, Grant>,
    pub agents: Vec<Agent>,
    pub groups: Vec<AgentGroup>,
    pub resources: Vec<PublishedResource>,
    pub faults: Vec<Fault>,
    /// A stable object id (`oid`) per signed-in user.
    pub user_oids: HashMap<String, String>,
    /// Every device code, access and refresh token ever issued, for
    /// `GET /_lab/issued-secrets` (tests scan provd's logs and spans for them).
    pub issued_secrets: Vec<String>,
    /// What `POST /_lab/agent-certificates` set; `None`: [`AGENT_CERT_VALIDITY`].
    pub agent_cert_validity: Option<time::Duration>,
    /// Organization flag, applications, service principals and their
    /// synchronization jobs, and the sync lab controls.
    pub sync: crate::sync::SyncState,
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub state: Arc<Mutex<State>>,
    pub agent_ca: Arc<AgentCa>,
}

impl App {
    pub fn new(settings: Settings, agent_ca: AgentCa) -> App {
        App {
            settings: Arc::new(settings),
            state: Arc::new(Mutex::new(State::default())),
            agent_ca: Arc::new(agent_ca),
        }
    }

    /// Locks the state. A handler that panicked while holding the lock
    /// cannot leave it half-updated in a way that matters for a lab tool,
    /// so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// The user's object id, the same for every token of that user.
    pub fn oid_of(&mut self, user: &str) -> String {
        self.user_oids
            .entry(user.to_ascii_lowercase())
            .or_insert_with(|| uuid::Uuid::new_v4().to_string())
            .clone()
    }
}

impl Agent {
    /// Whether the last heartbeat is newer than `inactive_after`.
    pub fn is_active(&self, now: Instant, inactive_after: Duration) -> bool {
        now.saturating_duration_since(self.last_seen) < inactive_after
    }

    /// `"active"` while [`Agent::is_active`], else `"inactive"`.
    pub fn status(&self, now: Instant, inactive_after: Duration) -> &'static str {
        if self.is_active(now, inactive_after) {
            "active"
        } else {
            "inactive"
        }
    }
}

/// A random opaque token (256 bits, hex).
pub fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A user code like `BCDF-GHJK` from the RFC 8628 §6.1 alphabet (no vowels,
/// no look-alike characters).
pub fn random_user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut code = String::with_capacity(9);
    for (i, b) in bytes.iter().take(8).enumerate() {
        if i == 4 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
    }
    code
}

/// Normalizes a user-typed code: upper case, without the hyphen or spaces.
pub fn normalize_user_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The emulator's own CA for agent client certificates, generated at start.
/// It is also the only trust anchor for client certificates presented in the
/// TLS handshake (see `tls_config` in the binary's main file).
pub struct AgentCa {
    issuer: Issuer<'static, KeyPair>,
    pub cert_pem: String,
    pub cert_der: CertificateDer<'static>,
}

/// Common name of the agent CA.
pub const AGENT_CA_COMMON_NAME: &str = "provd tenant emulator agent CA (LAB)";

/// Validity of issued agent certificates, unless a lab test sets another
/// (`POST /_lab/agent-certificates`).
pub const AGENT_CERT_VALIDITY: time::Duration = time::Duration::days(180);

impl AgentCa {
    /// Generates a fresh ECDSA P-256 CA valid for ten years.
    pub fn generate() -> Result<AgentCa, rcgen::Error> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, AGENT_CA_COMMON_NAME);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - time::Duration::minutes(1);
        params.not_after = now + time::Duration::days(3650);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        Ok(AgentCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Signs a DER (PKCS#10) CSR, as `RegisterConnector` carries it, and
    /// returns the certificate's DER.
    pub fn sign_csr_der(
        &self,
        csr_der: Vec<u8>,
        agent_id: &str,
        validity: time::Duration,
    ) -> Result<Vec<u8>, rcgen::Error> {
        let csr = CertificateSigningRequestParams::from_der(&csr_der.into())?;
        Ok(self.sign(csr, agent_id, validity)?.der().to_vec())
    }

    /// The subject and extensions requested in the CSR are not trusted:
    /// the certificate gets `CN=<agent id>`, no SANs, the clientAuth EKU
    /// and `validity` (180 days unless a lab test asked otherwise; a
    /// negative one issues a certificate that has already expired).
    fn sign(
        &self,
        mut csr: CertificateSigningRequestParams,
        agent_id: &str,
        validity: time::Duration,
    ) -> Result<rcgen::Certificate, rcgen::Error> {
        let now = OffsetDateTime::now_utc();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, agent_id);
        let serial = uuid::Uuid::new_v4().into_bytes();
        let mut serial = serial.to_vec();
        serial[0] &= 0x7f; // keep it positive
        csr.params = CertificateParams::default();
        csr.params.distinguished_name = dn;
        csr.params.is_ca = IsCa::ExplicitNoCa;
        csr.params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        csr.params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        csr.params.serial_number = Some(SerialNumber::from_slice(&serial));
        csr.params.not_after = now + validity;
        csr.params.not_before =
            (now - time::Duration::minutes(1)).min(csr.params.not_after - time::Duration::hours(1));
        csr.signed_by(&self.issuer)
    }
}
