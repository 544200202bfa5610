//! End-to-end tests of the `provd-tenant-emulator` binary: each test spawns
//! the real binary with a server certificate from a throwaway CA, reads the
//! bound address from its first stdout line, and talks HTTPS to it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

mod audiences;
mod sync;

use crate::common::tenant::TenantEmulator;

use std::time::Duration;

use provd::pki::{Ca, PemPair, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DAY: Duration = Duration::from_secs(86_400);
const TENANT: &str = crate::common::tenant::TENANT;
const CLIENT_ID: &str = "1950a258-227b-4e31-a9cf-717495945fc2";
const SCOPE: &str = "https://graph.microsoft.com/.default offline_access";
const AGENTS: &str = "/beta/onPremisesPublishingProfiles/provisioning/agents";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The shared lab emulator plus raw HTTP helpers for poking its API.
struct Emulator {
    inner: TenantEmulator,
    port: u16,
    /// The CA of the emulator's server certificate (PEM).
    ca_pem: String,
    http: reqwest::Client,
}

/// An agent registered with the emulator.
struct Registered {
    id: String,
    cert_pem: String,
    /// The CSR's key (PKCS#8 PEM), which the certificate certifies.
    key_pem: String,
    public_key: Vec<u8>,
}

impl Emulator {
    async fn start(extra: &[&str]) -> Emulator {
        let inner = TenantEmulator::start(
            &crate::common::workspace_bin("provd-tenant-emulator"),
            extra,
        )
        .await;
        let ca_pem = std::fs::read_to_string(&inner.ca_file).unwrap();
        Emulator {
            port: inner.port,
            http: crate::common::http_client(&ca_pem, None),
            ca_pem,
            inner,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    async fn stop(self) {
        self.inner.stop().await;
    }

    async fn json(&self, response: reqwest::Response) -> (StatusCode, Value) {
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.json(request.send().await.unwrap()).await
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.json(request.send().await.unwrap()).await
    }

    async fn form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.json(response).await
    }

    async fn device_code(&self) -> Value {
        let (status, body) = self
            .form(
                &format!("/{TENANT}/oauth2/v2.0/devicecode"),
                &[("client_id", CLIENT_ID), ("scope", SCOPE)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn poll(&self, device_code: &str) -> (StatusCode, Value) {
        self.form(
            &format!("/{TENANT}/oauth2/v2.0/token"),
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", CLIENT_ID),
                ("device_code", device_code),
            ],
        )
        .await
    }

    async fn decide(&self, user_code: &str, approve: bool) {
        let path = if approve {
            "/_lab/device/approve"
        } else {
            "/_lab/device/deny"
        };
        let (status, body) = self
            .post(
                path,
                None,
                &json!({ "user_code": user_code, "user": "admin@lab.example.test" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// The whole device code flow; returns the token response.
    async fn sign_in(&self) -> Value {
        let code = self.device_code().await;
        self.decide(code["user_code"].as_str().unwrap(), true).await;
        let (status, body) = self.poll(code["device_code"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn token(&self) -> String {
        self.sign_in().await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Registers an agent with a fresh key, as the agent's module does:
    /// `RegisterConnector` with a registration-audience token.
    async fn register(&self, machine: &str) -> Registered {
        let tokens = self
            .tokens_for(audiences::CONNECTOR, audiences::REGISTRATION_SCOPE)
            .await;
        let token = tokens["access_token"].as_str().unwrap();
        let (answer, key_pem) = self.register_connector(token, TENANT, machine).await;
        assert!(answer.successful, "{}", answer.error);
        let public_key = rcgen::KeyPair::from_pem(&key_pem)
            .unwrap()
            .public_key_raw()
            .to_vec();
        Registered {
            id: audiences::agent_id_of(&answer.certificate),
            cert_pem: der_to_pem(&answer.certificate),
            key_pem,
            public_key,
        }
    }

    /// An HTTPS client that presents `agent`'s certificate, as the agent does.
    fn agent_client(&self, agent: &Registered) -> reqwest::Client {
        crate::common::http_client(
            &self.ca_pem,
            Some(&PemPair {
                cert_pem: agent.cert_pem.clone(),
                key_pem: agent.key_pem.clone(),
            }),
        )
    }

    /// `POST /_agent/{id}/heartbeat` through `client` (which decides the
    /// client certificate, if any).
    async fn heartbeat(
        &self,
        client: &reqwest::Client,
        id: &str,
        machine: &str,
    ) -> (StatusCode, Value) {
        let response = client
            .post(self.url(&format!("/_agent/{id}/heartbeat")))
            .json(&json!({ "machineName": machine }))
            .send()
            .await
            .unwrap();
        self.json(response).await
    }

    /// The `status` the agent list reports for agent `id`.
    async fn agent_status(&self, token: &str, id: &str) -> String {
        let (status, body) = self.get(AGENTS, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("agent {id} not listed: {body}"))["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A DER certificate as PEM.
fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn pem_der(pem: &str) -> Vec<u8> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    block.contents
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn oauth_error(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn device_code_flow_pending_slow_down_then_tokens() {
    let emu = Emulator::start(&["--poll-interval", "1"]).await;
    let code = emu.device_code().await;
    let user_code = code["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9, "{code}");
    assert_eq!(&user_code[4..5], "-", "{code}");
    assert_eq!(
        code["verification_uri"].as_str().unwrap(),
        format!("https://127.0.0.1:{}/devicelogin", emu.port)
    );
    assert_eq!(code["expires_in"], 900);
    assert_eq!(code["interval"], 1);
    assert!(code["message"].as_str().unwrap().contains(user_code));
    let device_code = code["device_code"].as_str().unwrap();

    let (_, pending) = emu.get("/_lab/device/pending", None).await;
    assert!(
        pending["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["user_code"] == user_code),
        "{pending}"
    );

    let (status, body) = emu.poll(device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "authorization_pending", "{body}");
    let (status, body) = emu.poll(device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "slow_down", "{body}");

    emu.decide(user_code, true).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, tokens) = emu.poll(device_code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], SCOPE);
    assert_eq!(tokens["expires_in"], 3600);
    assert!(
        tokens["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // A redeemed device code is spent.
    let (status, body) = emu.poll(device_code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "invalid_grant", "{body}");

    // Refresh tokens work once and rotate.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let token_path = format!("/{TENANT}/oauth2/v2.0/token");
    let refresh_form = [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT_ID),
        ("refresh_token", refresh),
    ];
    let (status, refreshed) = emu.form(&token_path, &refresh_form).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["access_token"], tokens["access_token"]);
    let (status, _) = emu.get(AGENTS, refreshed["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = emu.form(&token_path, &refresh_form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "invalid_grant", "{body}");
    emu.stop().await;
}

#[tokio::test]
async fn device_code_expires() {
    let emu = Emulator::start(&["--device-code-ttl", "1"]).await;
    let code = emu.device_code().await;
    assert_eq!(code["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) = emu.poll(code["device_code"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "expired_token", "{body}");
    emu.stop().await;
}

#[tokio::test]
async fn device_code_denied() {
    let emu = Emulator::start(&[]).await;
    let code = emu.device_code().await;
    emu.decide(code["user_code"].as_str().unwrap(), false).await;
    let (status, body) = emu.poll(code["device_code"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "access_denied", "{body}");
    emu.stop().await;
}

#[tokio::test]
async fn bad_requests_get_error_bodies() {
    let emu = Emulator::start(&[]).await;
    let health = emu.http.get(emu.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let (status, body) = emu
        .form(
            &format!("/{TENANT}/oauth2/v2.0/devicecode"),
            &[("scope", SCOPE)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "invalid_request", "{body}");
    let (status, body) = emu
        .form(
            "/not-my-tenant/oauth2/v2.0/devicecode",
            &[("client_id", CLIENT_ID), ("scope", SCOPE)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "invalid_request", "{body}");
    let (status, body) = emu
        .form(
            &format!("/{TENANT}/oauth2/v2.0/token"),
            &[("grant_type", "password")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(oauth_error(&body), "unsupported_grant_type", "{body}");

    let response = emu
        .http
        .post(emu.url("/_lab/device/approve"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = emu.json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "BadRequest", "{body}");
    let (status, body) = emu
        .post(
            "/_lab/device/approve",
            None,
            &json!({ "user_code": "ZZZZ-ZZZZ" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "Request_ResourceNotFound", "{body}");
    emu.stop().await;
}

#[tokio::test]
async fn graph_requires_a_bearer_token() {
    let emu = Emulator::start(&[]).await;
    let (status, body) = emu.get(AGENTS, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "InvalidAuthenticationToken", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    let (status, body) = emu.get(AGENTS, Some("not-a-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "InvalidAuthenticationToken", "{body}");

    let token = emu.token().await;
    let (status, body) = emu.get(AGENTS, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], json!([]));
    assert!(
        body["@odata.context"].as_str().unwrap().contains("agents"),
        "{body}"
    );
    emu.stop().await;
}

#[tokio::test]
async fn agent_registration_heartbeat_status_and_groups() {
    let emu = Emulator::start(&["--inactive-after", "2"]).await;
    let token = emu.token().await;

    // provd's own registration path is gone (issue 14): agents register
    // through RegisterConnector, as the module does.
    let (status, _) = emu
        .post(
            "/_agent/register",
            Some(&token),
            &json!({ "machineName": "agent1", "csr": "" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let machine = "agent1.lab.example.test";
    let agent1 = emu.register(machine).await;
    let id = agent1.id.clone();

    // The certificate chains to the emulator's agent CA.
    let ca_pem = emu
        .http
        .get(emu.url("/_lab/agent-ca"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ca_der = pem_der(&ca_pem);
    let cert_der = pem_der(&agent1.cert_pem);
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    assert_eq!(cert.issuer(), ca.subject());
    assert!(ca.is_ca());
    cert.verify_signature(Some(ca.public_key())).unwrap();
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        agent1.public_key
    );
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        id
    );

    // Registering is the first contact; let it age out before heartbeats.
    assert_eq!(emu.agent_status(&token, &id).await, "active");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(emu.agent_status(&token, &id).await, "inactive");

    // A heartbeat needs the agent's own client certificate. Without one: 401.
    let (status, body) = emu.heartbeat(&emu.http, &id, machine).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "InvalidAuthenticationToken", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("client certificate"),
        "{body}"
    );
    // Another registered agent's certificate: 403.
    let agent2 = emu.register("agent2.lab.example.test").await;
    let agent2_http = emu.agent_client(&agent2);
    let (status, body) = emu.heartbeat(&agent2_http, &id, machine).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), "Authorization_RequestDenied", "{body}");
    // A certificate from another CA does not get through the handshake.
    let rogue_ca = Ca::generate("not the agent CA", DAY).unwrap();
    let rogue = rogue_ca.issue_client(&id, &[Role::Viewer], DAY).unwrap();
    let rogue_http = crate::common::http_client(&emu.ca_pem, Some(&rogue));
    let result = rogue_http
        .post(emu.url(&format!("/_agent/{id}/heartbeat")))
        .json(&json!({ "machineName": machine }))
        .send()
        .await;
    assert!(
        result.is_err(),
        "foreign client certificate accepted: {result:?}"
    );
    assert_eq!(emu.agent_status(&token, &id).await, "inactive");

    // The right certificate: machineName must still match, and the agent
    // id must be registered.
    let agent1_http = emu.agent_client(&agent1);
    let (status, body) = emu.heartbeat(&agent1_http, &id, "other").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = emu.heartbeat(&agent1_http, "no-such-agent", machine).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(emu.agent_status(&token, &id).await, "inactive");
    let (status, body) = emu.heartbeat(&agent1_http, &id, machine).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Graph, OAuth and lab calls still work over a connection with a
    // client certificate.
    let health = agent1_http.get(emu.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let (status, body) = emu.get(AGENTS, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let agent = &body["value"][0];
    assert_eq!(agent["id"], id.as_str());
    assert_eq!(agent["machineName"], machine);
    assert_eq!(agent["externalIp"], "127.0.0.1");
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["supportedPublishingTypes"], json!(["provisioning"]));
    assert!(agent.get("agentGroups").is_none(), "{agent}");

    // No more beats: inactive after --inactive-after; a beat revives it.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(emu.agent_status(&token, &id).await, "inactive");
    let (status, body) = emu.heartbeat(&agent1_http, &id, machine).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(emu.agent_status(&token, &id).await, "active");

    let (status, body) = emu
        .post(
            "/_lab/published-resources",
            None,
            &json!({ "domain": "lab.example.test" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = emu
        .post(
            "/_lab/published-resources",
            None,
            &json!({ "domain": "lab.example.test" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = emu
        .get(&format!("{AGENTS}?$expand=agentGroups"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let groups = body["value"][0]["agentGroups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{body}");
    assert!(
        groups[0]["displayName"]
            .as_str()
            .unwrap()
            .contains("lab.example.test"),
        "{body}"
    );
    assert_eq!(groups[0]["publishingType"], "provisioning");
    let group_id = groups[0]["id"].clone();

    let (status, body) = emu
        .get(
            "/beta/onPremisesPublishingProfiles/provisioning/publishedResources?%24expand=agentGroups",
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resource = &body["value"][0];
    assert_eq!(resource["resourceName"], "lab.example.test");
    assert_eq!(resource["publishingType"], "provisioning");
    assert_eq!(resource["agentGroups"][0]["id"], group_id);

    let (status, body) = emu
        .get(
            "/beta/onPremisesPublishingProfiles/provisioning/agentGroups?$expand=agents",
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"][0]["id"], group_id);
    assert_eq!(body["value"][0]["agents"][0]["id"], id.as_str());
    emu.stop().await;
}

#[tokio::test]
async fn password_writeback_flag() {
    let emu = Emulator::start(&[]).await;
    let token = emu.token().await;
    let id = emu.register("agent2").await.id;
    let path = format!("{AGENTS}/{id}/passwordWriteback");

    let (status, body) = emu.get(&path, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "enabled": false }));

    // Read only: the agent's module sets it (over the agent's own channel).
    let status = emu
        .http
        .put(emu.url(&path))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"enabled":true}"#)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (_, body) = emu.get(&path, Some(&token)).await;
    assert_eq!(body, json!({ "enabled": false }));

    let (status, body) = emu
        .get(
            &format!("{AGENTS}/no-such-agent/passwordWriteback"),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "Request_ResourceNotFound", "{body}");
    let (status, _) = emu.get(&path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    emu.stop().await;
}

#[tokio::test]
async fn faults_throttle_then_recover_and_deny() {
    let emu = Emulator::start(&[]).await;
    let token = emu.token().await;
    let (status, body) = emu
        .post(
            "/_lab/faults",
            None,
            &json!({ "path_prefix": "/beta/", "status": 429, "count": 3, "retry_after_secs": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for attempt in 0..3 {
        let response = emu
            .http
            .get(emu.url(AGENTS))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1"),
            "attempt {attempt}"
        );
        let (status, body) = emu.json(response).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "attempt {attempt}");
        assert_eq!(error_code(&body), "TooManyRequests", "{body}");
    }
    let (status, body) = emu.get(AGENTS, Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _) = emu
        .post(
            "/_lab/faults",
            None,
            &json!({ "path_prefix": "/beta/onPremisesPublishingProfiles", "status": 403, "count": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = emu.get(AGENTS, Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "Authorization_RequestDenied", "{body}");
    let (status, _) = emu.get(AGENTS, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = emu
        .post(
            "/_lab/faults",
            None,
            &json!({ "path_prefix": "/beta/", "status": 200 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "BadRequest", "{body}");
    emu.stop().await;
}

// ---------------------------------------------------------------------------
// provd's own tenant client (backends::tenant) against the emulator.
// ---------------------------------------------------------------------------

use provd::backends::tenant::{ClientScope, HttpTenant, RetryPolicy, TenantEndpoints, TenantError};

/// The client and scope the tests sign in with (provd adds the OpenID
/// Connect scopes).
fn graph_client() -> ClientScope {
    ClientScope {
        client_id: CLIENT_ID.into(),
        scope: "https://graph.microsoft.com/.default".into(),
    }
}

fn tenant_client(emu: &Emulator) -> HttpTenant {
    let base = format!("https://localhost:{}", emu.port);
    HttpTenant::new(
        TenantEndpoints {
            authority: base.clone(),
            graph: base,
            tenant: TENANT.into(),
        },
        Some(&emu.inner.ca_file),
        Duration::from_secs(10),
        RetryPolicy {
            attempts: 5,
            first_backoff: Duration::from_millis(100),
            max_wait: Duration::from_secs(5),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn tenant_client_reads_the_tenants_clock_from_its_date_header() {
    let emu = Emulator::start(&[]).await;
    let time = tenant_client(&emu).server_time().await.unwrap();
    assert_eq!(time.url, format!("https://localhost:{}", emu.port));
    // The emulator shares this host's clock; the header has whole seconds.
    assert!(time.skew_ms().abs() < 2_000, "{time:?}");
    emu.stop().await;
}

async fn approve(emu: &Emulator, user_code: &str) {
    let (status, body) = emu
        .post(
            "/_lab/device/approve",
            None,
            &json!({ "user_code": user_code, "user": "admin@lab.example.test" }),
        )
        .await;
    assert!(status.is_success(), "{body}");
}

#[tokio::test]
async fn tenant_client_signs_in_by_device_code_and_lists_agents_through_throttling() {
    let emu = Emulator::start(&["--poll-interval", "1"]).await;
    let client = tenant_client(&emu);
    let code = client.start_device_code(&graph_client()).await.unwrap();
    assert!(code.verification_uri.ends_with("/devicelogin"), "{code:?}");
    assert!(!code.user_code.is_empty());

    // The client waits (authorization_pending) until someone approves.
    let cancel = tokio_util::sync::CancellationToken::new();
    let waiting = tokio::spawn({
        let client = tenant_client(&emu);
        let cancel = cancel.clone();
        async move {
            let code = code;
            client.wait_for_tokens(&code, &cancel).await
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!waiting.is_finished(), "tokens before approval");
    let (_, pending) = emu.get("/_lab/device/pending", None).await;
    let user_code = pending
        .as_array()
        .and_then(|a| a.first())
        .and_then(|p| p["user_code"].as_str())
        .map(str::to_owned)
        .or_else(|| pending["value"][0]["user_code"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no pending code in {pending}"));
    approve(&emu, &user_code).await;
    let tokens = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    assert!(client.list_agents(&tokens).await.unwrap().is_empty());

    // A burst of 429s is retried (honouring Retry-After), then succeeds.
    let (status, _) = emu
        .post(
            "/_lab/faults",
            None,
            &json!({ "path_prefix": "/beta/", "status": 429, "count": 3, "retry_after_secs": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let started = std::time::Instant::now();
    assert!(client.list_agents(&tokens).await.unwrap().is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "Retry-After not honoured: {:?}",
        started.elapsed()
    );

    // A 403 is a clear error, not retried.
    let (status, _) = emu
        .post(
            "/_lab/faults",
            None,
            &json!({ "path_prefix": "/beta/", "status": 403, "count": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    match client.list_agents(&tokens).await {
        Err(TenantError::Forbidden(m)) => assert!(m.contains("Authorization_RequestDenied"), "{m}"),
        other => panic!("expected Forbidden, got {other:?}"),
    }
    emu.stop().await;
}

#[tokio::test]
async fn tenant_client_reports_expired_and_declined_sign_ins() {
    let emu = Emulator::start(&["--poll-interval", "1", "--device-code-ttl", "2"]).await;
    let client = tenant_client(&emu);
    let cancel = tokio_util::sync::CancellationToken::new();
    let code = client.start_device_code(&graph_client()).await.unwrap();
    match client.wait_for_tokens(&code, &cancel).await {
        Err(TenantError::DeviceCodeExpired) => {}
        other => panic!("expected DeviceCodeExpired, got {:?}", other.map(|_| ())),
    }

    let code = client.start_device_code(&graph_client()).await.unwrap();
    let (status, body) = emu
        .post(
            "/_lab/device/deny",
            None,
            &json!({ "user_code": code.user_code }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    match client.wait_for_tokens(&code, &cancel).await {
        Err(TenantError::AccessDenied) => {}
        other => panic!("expected AccessDenied, got {:?}", other.map(|_| ())),
    }
    emu.stop().await;
}
