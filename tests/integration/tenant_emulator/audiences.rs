//! Token audiences, the id_token, the connector registration
//! (`POST /register/RegisterConnector`) and what an agent reports over its
//! own certificate, against the emulator binary on loopback.

use super::*;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

pub(super) const CONNECTOR: &str = "55747057-9b5d-4bd4-b387-abf52a8bd489";
const GRAPH_CLI: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
const REGISTRATION: &str = "https://proxy.cloudwebappproxy.net/registerapp";
pub(super) const REGISTRATION_SCOPE: &str = "https://proxy.cloudwebappproxy.net/registerapp/user_impersonation openid profile offline_access";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default openid profile offline_access";
const RESOURCES: &str = "/beta/onPremisesPublishingProfiles/provisioning/publishedResources";

/// What `RegisterConnector` answered.
pub(super) struct Registration {
    pub(super) successful: bool,
    pub(super) error: String,
    pub(super) certificate: Vec<u8>,
}

impl Emulator {
    /// Device code for `client` and `scope`, approved, redeemed once.
    async fn sign_in_as(&self, client: &str, scope: &str) -> (StatusCode, Value) {
        let (status, code) = self
            .form(
                &format!("/{TENANT}/oauth2/v2.0/devicecode"),
                &[("client_id", client), ("scope", scope)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{code}");
        self.decide(code["user_code"].as_str().unwrap(), true).await;
        self.form(
            &format!("/{TENANT}/oauth2/v2.0/token"),
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", client),
                ("device_code", code["device_code"].as_str().unwrap()),
            ],
        )
        .await
    }

    pub(super) async fn tokens_for(&self, client: &str, scope: &str) -> Value {
        let (status, tokens) = self.sign_in_as(client, scope).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        tokens
    }

    async fn refresh(&self, client: &str, tokens: &Value, scope: &str) -> (StatusCode, Value) {
        self.form(
            &format!("/{TENANT}/oauth2/v2.0/token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("scope", scope),
            ],
        )
        .await
    }

    /// `RegisterConnector` in the shape of the public research; returns
    /// the answer and the key the certificate would certify.
    pub(super) async fn register_connector(
        &self,
        token: &str,
        tenant: &str,
        machine: &str,
    ) -> (Registration, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap();
        let body = format!(
            r#"<RegistrationRequest xmlns="http://schemas.datacontract.org/2004/07/Microsoft.ApplicationProxy.Common.Registration" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Base64Csr>{}</Base64Csr><AuthenticationToken>{token}</AuthenticationToken><Base64Pkcs10Csr i:nil="true"/><Feature>ApplicationProxy</Feature><FeatureString>SyncFabric</FeatureString><RegistrationRequestSettings><SystemSettings i:type="a:SystemSettings" xmlns:a="http://schemas.datacontract.org/2004/07/Microsoft.ApplicationProxy.Common.Utilities.SystemSettings"><a:MachineName>{machine}</a:MachineName></SystemSettings></RegistrationRequestSettings><TenantId>{tenant}</TenantId><UserAgent>provd-test</UserAgent></RegistrationRequest>"#,
            STANDARD.encode(csr.der())
        );
        let response = self
            .http
            .post(self.url("/register/RegisterConnector"))
            .header("content-type", "application/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let xml = response.text().await.unwrap();
        let text = |name: &str| {
            xml.split_once(&format!("<{name}>"))
                .and_then(|(_, rest)| rest.split_once(&format!("</{name}>")))
                .map(|(inner, _)| inner.to_owned())
                .unwrap_or_default()
        };
        let registration = Registration {
            successful: text("IsSuccessful") == "true",
            error: text("ErrorMessage"),
            certificate: STANDARD.decode(text("Certificate")).unwrap(),
        };
        (registration, key.serialize_pem())
    }
}

/// The claims of an id_token (signature not checked: the emulator's is
/// unsigned, as Microsoft's examples are).
fn claims(id_token: &str) -> Value {
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3, "{id_token}");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["typ"], "JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

pub(super) fn agent_id_of(certificate: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate).unwrap();
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn graph_refuses_a_registration_token_and_the_refresh_grant_switches_audience() {
    let emu = Emulator::start(&[]).await;
    let registration = emu.tokens_for(CONNECTOR, REGISTRATION_SCOPE).await;
    let (status, body) = emu.get(AGENTS, registration["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(error_code(&body), "InvalidAuthenticationToken", "{body}");
    assert_eq!(
        body["error"]["message"],
        "Access token validation failure. Invalid audience."
    );

    // One sign-in, two audiences: the refresh token is the client's, not
    // the resource's.
    let (status, graph) = emu.refresh(CONNECTOR, &registration, GRAPH_SCOPE).await;
    assert_eq!(status, StatusCode::OK, "{graph}");
    assert_eq!(graph["scope"], GRAPH_SCOPE);
    let (status, body) = emu.get(AGENTS, graph["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    emu.stop().await;
}

#[tokio::test]
async fn a_client_not_allowed_an_audience_gets_invalid_grant_consent_required() {
    let emu = Emulator::start(&[]).await;
    // Device code: the person approves, the tenant still refuses the client.
    let (status, body) = emu.sign_in_as(GRAPH_CLI, REGISTRATION_SCOPE).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(oauth_error(&body), "invalid_grant", "{body}");
    assert_eq!(body["error_codes"], json!([65001]), "{body}");
    assert_eq!(body["suberror"], "consent_required", "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.starts_with("AADSTS65001"), "{description}");
    assert!(description.contains(GRAPH_CLI), "{description}");

    // Refresh grant: refused for the other audience, and the refresh token
    // is not spent by the refusal.
    let graph = emu.tokens_for(GRAPH_CLI, GRAPH_SCOPE).await;
    let (status, body) = emu.refresh(GRAPH_CLI, &graph, REGISTRATION_SCOPE).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(oauth_error(&body), "invalid_grant", "{body}");
    assert_eq!(body["error_codes"], json!([65001]), "{body}");
    let (status, body) = emu.refresh(GRAPH_CLI, &graph, GRAPH_SCOPE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    emu.stop().await;

    // The table is configurable: a connector client without Graph.
    let audience = format!("--client-audience={CONNECTOR}={REGISTRATION}");
    let emu = Emulator::start(&[&audience]).await;
    let registration = emu.tokens_for(CONNECTOR, REGISTRATION_SCOPE).await;
    let (status, body) = emu.refresh(CONNECTOR, &registration, GRAPH_SCOPE).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(oauth_error(&body), "invalid_grant", "{body}");
    emu.stop().await;
}

#[tokio::test]
async fn an_id_token_names_the_tenant_and_the_user_when_openid_is_asked() {
    let emu = Emulator::start(&[]).await;
    let tokens = emu.tokens_for(CONNECTOR, REGISTRATION_SCOPE).await;
    let first = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(first["tid"], TENANT);
    assert_eq!(first["preferred_username"], "admin@lab.example.test");
    assert_eq!(first["aud"], CONNECTOR);
    let oid = first["oid"].as_str().unwrap();
    assert_eq!(oid.len(), 36, "{first}");
    // The same user is the same object, whichever client and resource.
    let (_, graph) = emu.refresh(CONNECTOR, &tokens, GRAPH_SCOPE).await;
    let again = claims(graph["id_token"].as_str().unwrap());
    assert_eq!(again["oid"], oid);

    // No openid, no id_token.
    let plain = emu.sign_in().await;
    assert!(plain.get("id_token").is_none(), "{plain}");
    emu.stop().await;
}

#[tokio::test]
async fn register_connector_refuses_graph_other_tenant_unknown_and_expired_tokens() {
    let emu = Emulator::start(&["--token-ttl", "2"]).await;
    let graph = emu.tokens_for(GRAPH_CLI, GRAPH_SCOPE).await;
    let graph = graph["access_token"].as_str().unwrap();
    let (answer, _) = emu.register_connector(graph, TENANT, "h1").await;
    assert!(!answer.successful);
    assert!(answer.error.contains("audience"), "{}", answer.error);
    assert!(!answer.error.contains(graph), "the token is never echoed");

    let registration = emu.tokens_for(CONNECTOR, REGISTRATION_SCOPE).await;
    let token = registration["access_token"].as_str().unwrap();
    let other = "11111111-2222-4333-8444-555555555555";
    let (answer, _) = emu.register_connector(token, other, "h1").await;
    assert!(!answer.successful);
    assert!(answer.error.contains("tenant"), "{}", answer.error);
    let (answer, _) = emu.register_connector("not-a-token", TENANT, "h1").await;
    assert!(!answer.successful);
    assert!(answer.error.contains("not valid"), "{}", answer.error);
    let (answer, _) = emu.register_connector(token, TENANT, "bad name!").await;
    assert!(!answer.successful);
    assert!(answer.error.contains("MachineName"), "{}", answer.error);

    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (answer, _) = emu.register_connector(token, TENANT, "h1").await;
    assert!(!answer.successful);
    assert!(answer.error.contains("expired"), "{}", answer.error);

    // Not a RegistrationRequest at all.
    let response = emu
        .http
        .post(emu.url("/register/RegisterConnector"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<IsSuccessful>false")
    );

    // Nothing was registered.
    let (_, body) = emu.get(AGENTS, Some(&emu.token().await)).await;
    assert_eq!(body["value"], json!([]), "{body}");
    emu.stop().await;
}

#[tokio::test]
async fn a_registered_connector_heartbeats_its_domains_into_published_resources() {
    let emu = Emulator::start(&[]).await;
    let registration = emu.tokens_for(CONNECTOR, REGISTRATION_SCOPE).await;
    let token = registration["access_token"].as_str().unwrap();
    let machine = "agent1.lab.example.test";
    let (answer, key_pem) = emu.register_connector(token, TENANT, machine).await;
    assert!(answer.successful, "{}", answer.error);
    let id = agent_id_of(&answer.certificate);
    let ca_pem = emu
        .http
        .get(emu.url("/_lab/agent-ca"))
        .send()
        .await
        .unwrap();
    let ca_der = pem_der(&ca_pem.text().await.unwrap());
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&answer.certificate).unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
    let agent = Registered {
        id: id.clone(),
        cert_pem: pem_of(&answer.certificate),
        key_pem,
        public_key: Vec::new(),
    };
    let graph = emu.tokens_for(GRAPH_CLI, GRAPH_SCOPE).await;
    let graph = graph["access_token"].as_str().unwrap();
    assert_eq!(emu.agent_status(graph, &id).await, "active");

    // The heartbeat reports the agent's domains: each gets its published
    // resource and an agent group holding the agent (once).
    let client = emu.agent_client(&agent);
    let beat = json!({ "machineName": machine, "domains": [{ "name": "Lab.Example.Test", "preferredDcs": ["dc1"] }] });
    let send = |body: Value| {
        client
            .post(emu.url(&format!("/_agent/{id}/heartbeat")))
            .json(&body)
            .send()
    };
    for _ in 0..2 {
        let response = send(beat.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let (status, body) = emu
        .get(&format!("{RESOURCES}?$expand=agentGroups"), Some(graph))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resources = body["value"].as_array().unwrap();
    assert_eq!(resources.len(), 1, "{body}");
    assert_eq!(resources[0]["resourceName"], "lab.example.test");
    let group = resources[0]["agentGroups"][0]["id"].clone();
    let (_, groups) = emu
        .get(
            "/beta/onPremisesPublishingProfiles/provisioning/agentGroups?$expand=agents",
            Some(graph),
        )
        .await;
    let members = &groups["value"][0]["agents"];
    assert_eq!(groups["value"][0]["id"], group);
    assert_eq!(members.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(members[0]["id"], id.as_str());
    let bad = json!({ "machineName": machine, "domains": [{ "name": "not a domain" }] });
    let response = send(bad).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The agent sets its writeback flag over its own certificate; Graph
    // reads it.
    let path = format!("/_agent/{id}/passwordWriteback");
    let put = |client: &reqwest::Client| {
        client
            .put(emu.url(&path))
            .json(&json!({ "enabled": true }))
            .send()
    };
    assert_eq!(
        put(&emu.http).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let other = emu.register("agent2.lab.example.test").await;
    let other = emu.agent_client(&other);
    assert_eq!(put(&other).await.unwrap().status(), StatusCode::FORBIDDEN);
    let flag = format!("{AGENTS}/{id}/passwordWriteback");
    assert_eq!(
        emu.get(&flag, Some(graph)).await.1,
        json!({ "enabled": false })
    );
    assert_eq!(put(&client).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        emu.get(&flag, Some(graph)).await.1,
        json!({ "enabled": true })
    );
    emu.stop().await;
}

fn pem_of(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn provds_client_reads_who_signed_in_and_names_a_refused_audience() {
    let emu = Emulator::start(&["--poll-interval", "1"]).await;
    let client = tenant_client(&emu);
    let cancel = tokio_util::sync::CancellationToken::new();
    let registration = ClientScope {
        client_id: CONNECTOR.into(),
        scope: format!("{REGISTRATION}/user_impersonation"),
    };
    let code = client.start_device_code(&registration).await.unwrap();
    emu.decide(&code.user_code, true).await;
    let tokens = client.wait_for_tokens(&code, &cancel).await.unwrap();
    assert_eq!(tokens.tenant_id.as_deref(), Some(TENANT));
    assert_eq!(
        tokens.user_principal_name.as_deref(),
        Some("admin@lab.example.test")
    );
    // The registration token is no Graph token; the refresh grant gets one.
    assert!(matches!(
        client.list_agents(&tokens).await,
        Err(TenantError::Unauthorized(_))
    ));
    let graph = ClientScope {
        client_id: CONNECTOR.into(),
        scope: "https://graph.microsoft.com/.default".into(),
    };
    let refresh = tokens.refresh.clone().unwrap();
    let graph_tokens = client.refresh(&graph, &refresh).await.unwrap();
    assert!(client.list_agents(&graph_tokens).await.unwrap().is_empty());
    assert_eq!(graph_tokens.tenant_id.as_deref(), Some(TENANT));

    // A client the tenant refuses the registration audience.
    let cli = ClientScope {
        client_id: GRAPH_CLI.into(),
        scope: "https://graph.microsoft.com/.default".into(),
    };
    let code = client.start_device_code(&cli).await.unwrap();
    emu.decide(&code.user_code, true).await;
    let cli_tokens = client.wait_for_tokens(&code, &cancel).await.unwrap();
    let refused = ClientScope {
        client_id: GRAPH_CLI.into(),
        scope: registration.scope.clone(),
    };
    match client
        .refresh(&refused, cli_tokens.refresh.as_ref().unwrap())
        .await
    {
        Err(TenantError::ConsentRequired {
            client_id,
            scope,
            message,
        }) => {
            assert_eq!((client_id.as_str(), scope), (GRAPH_CLI, refused.scope));
            assert!(message.starts_with("AADSTS65001"), "{message}");
        }
        other => panic!("expected ConsentRequired, got {:?}", other.map(|_| ())),
    }
    emu.stop().await;
}
