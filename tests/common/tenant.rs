//! The lab tenant: a `provd-tenant-emulator` process for a test, its lab
//! controls (approve a device code, publish a domain, inject faults, the
//! cloud sync controls of `/_lab/sync/`), and a watcher that signs in the
//! way a person would when an operation asks.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use provd::pki::Ca;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::DAY;

pub const TENANT: &str = "00000000-0000-4000-8000-00000000beef";
pub const ADMIN_UPN: &str = "admin@lab.example.test";
/// The CA that issues the emulator's server certificate: the lab's, which
/// a lab's `[reachability] expected_issuers` names.
pub const LAB_CA_NAME: &str = "tenant emulator lab CA";

/// `[reachability]` for a provd whose tenant is the emulator on `port`: its
/// HTTPS stands in for Microsoft's TLS endpoints and plain HTTP on the same
/// port for the CRL hosts; the lab CA counts as Microsoft's.
pub fn reachability_toml(port: u16) -> String {
    format!(
        "[reachability]\nendpoints = [\"https://127.0.0.1:{port}\", \
         \"http://127.0.0.1:{port}/crl/lab.crl\"]\nexpected_issuers = [\"{LAB_CA_NAME}\"]\n"
    )
}

pub struct TenantEmulator {
    child: Child,
    pub port: u16,
    /// PEM of the CA that issued the emulator's server certificate.
    pub ca_file: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TenantEmulator {
    /// Starts the emulator binary on 127.0.0.1 with `extra` arguments (e.g.
    /// `--inactive-after 6`).
    pub async fn start(binary: &str, extra: &[&str]) -> TenantEmulator {
        let dir = tempfile::tempdir().unwrap();
        provd::install_crypto_provider();
        let ca = Ca::generate(LAB_CA_NAME, DAY).unwrap();
        let server = ca
            .issue_server(&["localhost".into()], &["127.0.0.1".parse().unwrap()], DAY)
            .unwrap();
        let ca_file = dir.path().join("tenant-ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
        std::fs::write(&cert, &server.cert_pem).unwrap();
        std::fs::write(&key, &server.key_pem).unwrap();
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0", "--tenant", TENANT, "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line),
        )
        .await
        .expect("the emulator did not print its address")
        .unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        TenantEmulator {
            child,
            port,
            ca_file,
            http: super::http_client(&ca.cert_pem(), None),
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:<port>`: authority, Graph and the connector registration service.
    pub fn base(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// `[reachability]` for a provd whose tenant is this emulator.
    pub fn reachability_toml(&self) -> String {
        reachability_toml(self.port)
    }

    /// Points a daemon's tenant settings at this emulator.
    pub fn configure(&self, config: &mut provd::config::Config) {
        config.tenant.tenant = TENANT.into();
        config.tenant.authority = Some(self.base());
        config.tenant.graph = Some(self.base());
        config.tenant.ca_file = Some(self.ca_file.clone());
        config.tenant.request_timeout = Duration::from_secs(10);
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// What a person does on the verification page: signs in with the code.
    pub async fn approve(&self, user_code: &str) {
        let (status, body) = self
            .post(
                "/_lab/device/approve",
                &json!({ "user_code": user_code, "user": ADMIN_UPN }),
            )
            .await;
        assert!((200..300).contains(&status), "approve: {status} {body}");
    }

    /// A cloud sync configuration for `domain` (published resource + agent
    /// group holding every registered agent), as the admin center creates.
    pub async fn publish(&self, domain: &str) {
        let (status, body) = self
            .post("/_lab/published-resources", &json!({ "domain": domain }))
            .await;
        assert!((200..300).contains(&status), "publish: {status} {body}");
    }

    /// The validity of the agent certificates registrations issue from now
    /// on, in seconds (negative: already expired); `None` restores 180 days.
    pub async fn agent_certificate_validity(&self, seconds: Option<i64>) {
        let (status, body) = self
            .post(
                "/_lab/agent-certificates",
                &json!({ "validity_seconds": seconds }),
            )
            .await;
        assert_eq!(status, 204, "agent certificates: {body}");
    }

    /// The next `count` requests under `path_prefix` get `status`.
    pub async fn fault(
        &self,
        path_prefix: &str,
        status: u16,
        count: u32,
        retry_after: Option<u64>,
    ) {
        let (code, body) = self
            .post(
                "/_lab/faults",
                &json!({
                    "path_prefix": path_prefix,
                    "status": status,
                    "count": count,
                    "retry_after_secs": retry_after,
                }),
            )
            .await;
        assert_eq!(code, 201, "fault: {body}");
    }

    pub async fn clear_faults(&self) {
        self.http
            .delete(self.url("/_lab/faults"))
            .send()
            .await
            .unwrap();
    }

    /// The tenant's agents as Graph lists them, read with a fresh admin
    /// sign-in of the test's own.
    pub async fn agents(&self) -> Vec<Value> {
        let token = self.admin_token().await;
        let response =
            self.http
                .get(self.url(
                    "/beta/onPremisesPublishingProfiles/provisioning/agents?$expand=agentGroups",
                ))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
        let body: Value = response.json().await.unwrap();
        body["value"].as_array().cloned().unwrap_or_default()
    }

    async fn admin_token(&self) -> String {
        let client_id = provd::config::DEFAULT_TENANT_CLIENT_ID;
        let code: Value = self
            .http
            .post(self.url(&format!("/{TENANT}/oauth2/v2.0/devicecode")))
            .form(&[
                ("client_id", client_id),
                (
                    "scope",
                    "https://graph.microsoft.com/.default offline_access",
                ),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.approve(code["user_code"].as_str().unwrap()).await;
        let tokens: Value = self
            .http
            .post(self.url(&format!("/{TENANT}/oauth2/v2.0/token")))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", client_id),
                ("device_code", code["device_code"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {tokens}"))
            .to_owned()
    }

    /// Every device code and token the emulator issued so far.
    pub async fn issued_secrets(&self) -> Vec<String> {
        let body: Value = self
            .http
            .get(self.url("/_lab/issued-secrets"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    }

    async fn lab_get(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    /// What agent `agent_id` reports as the users of `domain` (without a
    /// heartbeat): the count a started cloud sync job imports.
    pub async fn sync_user_count(&self, agent_id: &str, domain: &str, users: u64) {
        let body = json!({ "agentId": agent_id, "domain": domain, "users": users });
        let (status, answer) = self.post("/_lab/sync/user-count", &body).await;
        assert_eq!(status, 204, "user-count: {answer}");
    }

    /// The cloud sync jobs of `domain` are quarantined with `code` from
    /// their next cycle (`None`: no more).
    pub async fn sync_quarantine(&self, domain: &str, code: Option<&str>) {
        let status = match code {
            Some(code) => {
                let body = json!({ "domain": domain, "code": code });
                self.post("/_lab/sync/quarantine", &body).await.0
            }
            None => {
                let path = format!("/_lab/sync/quarantine?domain={domain}");
                let response = self.http.delete(self.url(&path)).send().await.unwrap();
                response.status().as_u16()
            }
        };
        assert_eq!(status, 204, "quarantine {domain} {code:?}");
    }

    /// `"METHOD /path"` of every cloud sync call made to the emulator.
    pub async fn sync_calls(&self) -> Vec<String> {
        let body = self.lab_get("/_lab/sync/calls").await;
        serde_json::from_value(body["calls"].clone()).unwrap()
    }

    /// Every synchronization secret value ever PUT.
    pub async fn sync_secrets_seen(&self) -> Vec<String> {
        let body = self.lab_get("/_lab/sync/secrets-seen").await;
        serde_json::from_value(body["values"].clone()).unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
