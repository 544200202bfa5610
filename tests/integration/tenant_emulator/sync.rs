//! The cloud sync configuration through Graph (issue 15) against the
//! emulator binary: the documented sequence and its status codes, secrets,
//! schema, agent group links, and the job engine driven by agents'
//! heartbeats and the `/_lab/sync/` controls.

use super::*;

const TEMPLATE: &str = "1a4721b3-e57f-4451-ae87-ef078703ec94";
const DOMAIN: &str = "lab.example.test";
const MACHINE: &str = "agent1.lab.example.test";
const PROVISIONING: &str = "/beta/onPremisesPublishingProfiles/provisioning";
/// Short cycles, so the tests wait little.
const FAST: [&str; 2] = ["--sync-interval", "200ms"];

/// A configuration: its service principal and AD2AADProvisioning job.
struct Config {
    sp: String,
    job: String,
}

impl Config {
    fn sync(&self) -> String {
        format!("/beta/servicePrincipals/{}/synchronization", self.sp)
    }

    fn job_path(&self, tail: &str) -> String {
        format!("{}/jobs/{}{tail}", self.sync(), self.job)
    }
}

fn secrets(domain: &str) -> Value {
    json!({ "value": [
        { "key": "Domain", "value": format!(r#"{{"domain":"{domain}"}}"#) },
        { "key": "AppKey", "value": r#"{"appKeyScenario":"AD2AADPasswordHash"}"# },
        { "key": "SyncNotificationSettings", "value": r#"{"Enabled":false,"Recipients":"","DeleteThresholdEnabled":true,"DeleteThresholdValue":500}"# },
    ]})
}

impl Emulator {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.json(request.send().await.unwrap()).await
    }

    /// Instantiates the template for `domain` and creates its
    /// AD2AADProvisioning job (created, not started).
    async fn instantiate(&self, token: &str, domain: &str) -> Config {
        let path = format!("/beta/applicationTemplates/{TEMPLATE}/instantiate");
        let (status, body) = self
            .post(&path, Some(token), &json!({ "displayName": domain }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let sp = body["servicePrincipal"]["id"].as_str().unwrap().to_owned();
        let jobs = format!("/beta/servicePrincipals/{sp}/synchronization/jobs");
        let (status, job) = self
            .post(
                &jobs,
                Some(token),
                &json!({ "templateId": "AD2AADProvisioning" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{job}");
        let job = job["id"].as_str().unwrap().to_owned();
        Config { sp, job }
    }

    /// PUTs `body` as the secrets, then reads them back (`value`).
    async fn put_and_read_secrets(
        &self,
        token: &str,
        config: &Config,
        body: &Value,
    ) -> (StatusCode, Value) {
        let status = self.put_secrets(token, config, body).await;
        let path = format!("{}/secrets", config.sync());
        let (read, secrets) = self.get(&path, Some(token)).await;
        assert_eq!(read, StatusCode::OK, "{secrets}");
        (status, secrets["value"].clone())
    }

    /// An emulator started with `extra`, a Graph token, and a configuration
    /// of [`DOMAIN`] (instantiated, its job created).
    async fn instantiated(extra: &[&str]) -> (Emulator, String, Config) {
        let emu = Emulator::start(extra).await;
        let token = emu.token().await;
        let config = emu.instantiate(&token, DOMAIN).await;
        (emu, token, config)
    }

    async fn put_secrets(&self, token: &str, config: &Config, body: &Value) -> StatusCode {
        let path = format!("{}/secrets", config.sync());
        self.send(reqwest::Method::PUT, &path, token, Some(body))
            .await
            .0
    }

    /// `POST …/jobs/{job}/{action}` → 204.
    async fn act(&self, token: &str, config: &Config, action: &str, body: &Value) {
        let path = config.job_path(&format!("/{action}"));
        let (status, answer) = self.post(&path, Some(token), body).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{action}: {answer}");
    }

    /// A configuration of `domain` with its secrets, started.
    async fn configure(&self, token: &str, domain: &str) -> Config {
        let config = self.instantiate(token, domain).await;
        let status = self.put_secrets(token, &config, &secrets(domain)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        self.act(token, &config, "start", &Value::Null).await;
        config
    }

    async fn job(&self, token: &str, config: &Config) -> Value {
        let (status, job) = self.get(&config.job_path(""), Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{job}");
        job
    }

    /// Polls the job until `done` (15 s at most).
    async fn wait_job(
        &self,
        token: &str,
        config: &Config,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let job = self.job(token, config).await;
            if done(&job) {
                return job;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: the job is {job:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_quarantine(&self, token: &str, config: &Config, code: &str) -> Value {
        self.wait_job(token, config, code, |job| {
            job["status"]["code"] == "Quarantine"
                && job["status"]["quarantine"]["error"]["code"] == code
        })
        .await
    }

    async fn wait_imported(&self, token: &str, config: &Config, users: u64) -> Value {
        self.wait_job(token, config, "imported", |job| {
            job["status"]["code"] == "Active"
                && job["status"]["lastExecution"]["countImported"] == users
        })
        .await
    }

    /// The agent's heartbeat reporting `users` in [`DOMAIN`].
    async fn beat(&self, agent: &Registered, users: Option<u64>) {
        let mut domain = json!({ "name": DOMAIN, "preferredDcs": ["dc1.lab.example.test"] });
        if let Some(users) = users {
            domain["userCount"] = json!(users);
        }
        let response = self
            .agent_client(agent)
            .post(self.url(&format!("/_agent/{}/heartbeat", agent.id)))
            .json(&json!({ "machineName": MACHINE, "domains": [domain] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

fn run<'a>(job: &'a Value, which: &str) -> &'a Value {
    &job["status"][which]
}

#[tokio::test]
async fn the_documented_sequence_answers_with_the_documented_status_codes() {
    use reqwest::Method;
    let emu = Emulator::start(&[]).await;
    let token = emu.token().await;

    // 1. The organization's sync flag: null until PATCHed.
    let (status, org) = emu.get("/beta/organization", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{org}");
    assert_eq!(org["value"][0]["id"], TENANT);
    assert!(org["value"][0]["onPremisesSyncEnabled"].is_null(), "{org}");
    let flag = json!({ "onPremisesSyncEnabled": true });
    let path = format!("/beta/organization/{TENANT}");
    let (status, _) = emu.send(Method::PATCH, &path, &token, Some(&flag)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, org) = emu.get("/beta/organization", Some(&token)).await;
    assert_eq!(org["value"][0]["onPremisesSyncEnabled"], true);
    let (status, _) = emu
        .send(
            Method::PATCH,
            "/beta/organization/other",
            &token,
            Some(&flag),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // 2. Instantiate: only the cloud sync template; the service principal
    // carries both id and objectId.
    let (status, body) = emu
        .post(
            "/beta/applicationTemplates/00000000-0000-0000-0000-000000000000/instantiate",
            Some(&token),
            &json!({ "displayName": DOMAIN }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let instantiate = format!("/beta/applicationTemplates/{TEMPLATE}/instantiate");
    let (status, body) = emu
        .post(
            &instantiate,
            Some(&token),
            &json!({ "displayName": DOMAIN }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sp = &body["servicePrincipal"];
    assert_eq!(sp["id"], sp["objectId"]);
    assert_eq!(sp["appId"], body["application"]["appId"]);
    assert_eq!(sp["displayName"], DOMAIN);
    let sp_id = sp["id"].as_str().unwrap().to_owned();

    // 2b. Found again by template ($filter URL-encoded), or unfiltered.
    let filter = |template: &str| {
        format!(
            "/beta/servicePrincipals?{}={}",
            encode("$filter"),
            encode(&format!("applicationTemplateId eq '{template}'"))
        )
    };
    let (status, list) = emu.get(&filter(TEMPLATE), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["value"][0]["id"], sp_id.as_str());
    assert_eq!(list["value"][0]["applicationTemplateId"], TEMPLATE);
    let (_, list) = emu
        .get(
            &filter("00000000-0000-0000-0000-000000000000"),
            Some(&token),
        )
        .await;
    assert_eq!(list["value"], json!([]));
    let (_, list) = emu.get("/beta/servicePrincipals", Some(&token)).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
    let (status, _) = emu
        .get(
            "/beta/servicePrincipals?$filter=startswith(displayName,'x')",
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // 3. Jobs: 201 each template, 409 a second job of one, 400 another.
    let config = Config {
        sp: sp_id,
        job: String::new(),
    };
    let jobs = format!("{}/jobs", config.sync());
    let create = |template: &str| json!({ "templateId": template });
    let (status, job) = emu
        .post(&jobs, Some(&token), &create("AD2AADProvisioning"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{job}");
    assert!(
        job["id"]
            .as_str()
            .unwrap()
            .starts_with("AD2AADProvisioning.")
    );
    assert_eq!(job["schedule"]["state"], "Disabled");
    assert_eq!(job["status"]["code"], "Paused");
    let config = Config {
        job: job["id"].as_str().unwrap().to_owned(),
        ..config
    };
    let (status, _) = emu
        .post(&jobs, Some(&token), &create("AD2AADPasswordHash"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = emu
        .post(&jobs, Some(&token), &create("AD2AADProvisioning"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "Conflict");
    let (status, _) = emu.post(&jobs, Some(&token), &create("Other")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, list) = emu.get(&jobs, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["value"].as_array().unwrap().len(), 2, "{list}");

    // 4. Secrets: 204.
    let status = emu.put_secrets(&token, &config, &secrets(DOMAIN)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // 5. Schema: read, add the password hash mapping, write back whole.
    let (status, mut schema) = emu.get(&config.job_path("/schema"), Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    let rule = &mut schema["synchronizationRules"][0];
    assert_eq!(rule["id"], "6c409270-f78a-4bc6-af23-7cf3ab6482fe");
    assert_eq!(rule["sourceDirectoryName"], DOMAIN);
    let mappings = rule["objectMappings"][0]["attributeMappings"]
        .as_array_mut()
        .unwrap();
    mappings.push(json!({ "targetAttributeName": "CredentialData", "source": {
        "expression": "[PasswordHash]", "name": "PasswordHash", "type": "Attribute", "parameters": [] } }));
    schema["unknownField"] = json!("kept");
    let (status, _) = emu
        .send(
            Method::PUT,
            &config.job_path("/schema"),
            &token,
            Some(&schema),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, read) = emu.get(&config.job_path("/schema"), Some(&token)).await;
    assert_eq!(read, schema);

    // 6.–9. Start, pause, restart: 204; a flag Graph does not know: 400.
    emu.act(&token, &config, "start", &Value::Null).await;
    assert_eq!(
        emu.job(&token, &config).await["schedule"]["state"],
        "Active"
    );
    emu.act(&token, &config, "pause", &Value::Null).await;
    let job = emu.job(&token, &config).await;
    assert_eq!(
        (&job["schedule"]["state"], &job["status"]["code"]),
        (&json!("Paused"), &json!("Paused"))
    );
    let criteria = |scope: &str| json!({ "criteria": { "resetScope": scope } });
    emu.act(&token, &config, "restart", &criteria("Watermark, Escrows"))
        .await;
    let (status, body) = emu
        .post(
            &config.job_path("/restart"),
            Some(&token),
            &criteria("Everything"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Unknown objects: 404.
    let (status, body) = emu
        .get(
            "/beta/servicePrincipals/nope/synchronization/jobs",
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "Request_ResourceNotFound");
    let (status, _) = emu
        .get(&format!("{jobs}/AD2AADProvisioning.nope"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The calls, without bodies; nothing was deleted.
    let calls = emu.inner.sync_calls().await;
    assert!(calls.contains(&format!("POST {instantiate}")), "{calls:?}");
    assert!(
        calls.contains(&format!("PUT {}/secrets", config.sync())),
        "{calls:?}"
    );
    assert!(
        calls.contains(&format!("PATCH /beta/organization/{TENANT}")),
        "{calls:?}"
    );
    assert!(!calls.iter().any(|c| c.starts_with("DELETE")), "{calls:?}");
    emu.stop().await;
}

#[tokio::test]
async fn sync_paths_need_a_graph_token_and_take_faults() {
    let emu = Emulator::start(&[]).await;
    let path = "/beta/servicePrincipals";
    let (status, body) = emu.get(path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "InvalidAuthenticationToken");
    let registration = emu
        .tokens_for(audiences::CONNECTOR, audiences::REGISTRATION_SCOPE)
        .await;
    let (status, body) = emu.get(path, registration["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let token = emu.token().await;
    emu.inner.fault(path, 429, 1, Some(2)).await;
    let response = emu
        .http
        .get(emu.url(path))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    emu.inner
        .fault("/beta/applicationTemplates", 503, 1, None)
        .await;
    let instantiate = format!("/beta/applicationTemplates/{TEMPLATE}/instantiate");
    let body = json!({ "displayName": DOMAIN });
    let (status, answer) = emu.post(&instantiate, Some(&token), &body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&answer), "ServiceUnavailable");
    let (status, _) = emu.post(&instantiate, Some(&token), &body).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = emu.get(path, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);

    // Refused and faulted calls were made all the same.
    let calls = emu.inner.sync_calls().await;
    let gets = calls.iter().filter(|c| *c == "GET /beta/servicePrincipals");
    assert_eq!(gets.count(), 4, "{calls:?}");
    emu.stop().await;
}

#[tokio::test]
async fn secrets_put_replaces_all_and_a_masking_tenant_answers_stars() {
    let (emu, token, config) = Emulator::instantiated(&[]).await;
    let all = secrets(DOMAIN);
    let read = emu.put_and_read_secrets(&token, &config, &all).await;
    assert_eq!(read, (StatusCode::NO_CONTENT, all["value"].clone()));

    // Only Domain sent: AppKey and SyncNotificationSettings are gone.
    let other = r#"{"domain":"other.example.test"}"#;
    let domain_only = json!({ "value": [{ "key": "Domain", "value": other }] });
    let read = emu
        .put_and_read_secrets(&token, &config, &domain_only)
        .await;
    assert_eq!(read, (StatusCode::NO_CONTENT, domain_only["value"].clone()));

    // A key not in synchronizationSecret: 400, nothing changed.
    let unknown = json!({ "value": [{ "key": "Bogus", "value": "x" }] });
    let read = emu.put_and_read_secrets(&token, &config, &unknown).await;
    assert_eq!(
        read,
        (StatusCode::BAD_REQUEST, domain_only["value"].clone())
    );
    // "" removes a key.
    let empty = json!({ "value": [{ "key": "Domain", "value": "" }] });
    let read = emu.put_and_read_secrets(&token, &config, &empty).await;
    assert_eq!(read, (StatusCode::NO_CONTENT, json!([])));

    let seen = emu.inner.sync_secrets_seen().await;
    for pair in all["value"].as_array().unwrap() {
        assert!(seen.iter().any(|s| pair["value"] == *s), "{seen:?}");
    }
    assert!(seen.contains(&other.to_owned()), "{seen:?}");
    assert!(!seen.contains(&String::new()), "{seen:?}");
    emu.stop().await;

    let (emu, token, config) = Emulator::instantiated(&["--mask-secrets"]).await;
    let (status, read) = emu.put_and_read_secrets(&token, &config, &all).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let read = read.as_array().unwrap();
    let keys: Vec<&str> = read.iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["Domain", "AppKey", "SyncNotificationSettings"]);
    assert!(read.iter().all(|p| p["value"] == "*"), "{read:?}");
    emu.stop().await;
}

#[tokio::test]
async fn a_schema_with_both_filters_or_over_4_mib_is_refused() {
    use reqwest::Method;
    let (emu, token, config) = Emulator::instantiated(&[]).await;
    let path = config.job_path("/schema");
    let (_, mut schema) = emu.get(&path, Some(&token)).await;
    let ou = "OU=SyncPilot,DC=lab,DC=example,DC=test";
    schema["synchronizationRules"][0]["containerFilter"]["includedContainers"] = json!([ou]);
    let (status, _) = emu.send(Method::PUT, &path, &token, Some(&schema)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let mut both = schema.clone();
    both["synchronizationRules"][0]["groupFilter"]["includedGroups"] =
        json!([format!("CN=SyncPilotGroup,{ou}")]);
    let (status, body) = emu.send(Method::PUT, &path, &token, Some(&both)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "BadRequest");

    let mut huge = schema.clone();
    huge["padding"] = json!("x".repeat(4 * 1024 * 1024));
    let (status, body) = emu.send(Method::PUT, &path, &token, Some(&huge)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("4 MB"),
        "{body}"
    );

    assert_eq!(emu.get(&path, Some(&token)).await.1, schema);
    emu.stop().await;
}

#[tokio::test]
async fn a_started_job_syncs_the_users_its_agent_counted_and_pause_keeps_the_counters() {
    let emu = Emulator::start(&FAST).await;
    let token = emu.token().await;
    let agent = emu.register(MACHINE).await;
    // The heartbeat publishes the domain with the agent in its group.
    emu.beat(&agent, Some(25)).await;
    let config = emu.configure(&token, DOMAIN).await;

    let job = emu.wait_imported(&token, &config, 25).await;
    assert_eq!(run(&job, "lastExecution")["countExported"], 25);
    assert_eq!(run(&job, "lastExecution")["state"], "Succeeded");
    assert_eq!(
        run(&job, "lastSuccessfulExecutionWithExports")["countExported"],
        25
    );
    assert_eq!(
        job["status"]["synchronizedEntryCountByType"],
        json!([{ "key": "user", "value": 25 }])
    );
    assert!(job["status"]["quarantine"].is_null(), "{job}");

    // Two more users: only they are exported.
    emu.beat(&agent, Some(27)).await;
    let job = emu.wait_imported(&token, &config, 27).await;
    assert_eq!(run(&job, "lastExecution")["countExported"], 2);

    // Paused: no run while the count changes; counters kept.
    emu.act(&token, &config, "pause", &Value::Null).await;
    let paused = emu.job(&token, &config).await;
    assert_eq!(paused["status"]["code"], "Paused");
    emu.beat(&agent, Some(30)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let job = emu.job(&token, &config).await;
    assert_eq!(job["status"], paused["status"]);
    assert_eq!(run(&job, "lastExecution")["countImported"], 27);

    // Restart with Watermark: all 30 exported again.
    let criteria = json!({ "criteria": { "resetScope": "Watermark" } });
    emu.act(&token, &config, "restart", &criteria).await;
    let job = emu.wait_imported(&token, &config, 30).await;
    assert_eq!(run(&job, "lastExecution")["countExported"], 30);
    emu.stop().await;
}

#[tokio::test]
async fn an_agent_that_stops_beating_quarantines_the_job_until_it_beats_again() {
    let emu = Emulator::start(&[FAST[0], FAST[1], "--inactive-after", "2"]).await;
    let token = emu.token().await;
    let agent = emu.register(MACHINE).await;
    emu.beat(&agent, Some(5)).await;
    let config = emu.configure(&token, DOMAIN).await;
    emu.wait_imported(&token, &config, 5).await;

    let job = emu
        .wait_quarantine(&token, &config, "HybridIdentityServiceNoActiveAgents")
        .await;
    let quarantine = &job["status"]["quarantine"];
    assert_eq!(quarantine["reason"], "EncounteredQuarantineException");
    assert_eq!(quarantine["seriesCount"], 1);
    assert_eq!(quarantine["error"]["tenantActionable"], true);
    let message = quarantine["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("unable to find an active agent"),
        "{message}"
    );
    assert!(quarantine["nextAttempt"].is_string(), "{job}");
    assert_eq!(run(&job, "lastExecution")["state"], "Failed");
    // The last successful run is still there.
    assert_eq!(run(&job, "lastSuccessfulExecution")["countImported"], 5);

    emu.beat(&agent, None).await;
    let job = emu.wait_imported(&token, &config, 5).await;
    assert!(job["status"]["quarantine"].is_null(), "{job}");
    emu.stop().await;
}

#[tokio::test]
async fn quarantine_codes_follow_the_resource_its_agents_and_the_lab() {
    use reqwest::Method;
    let emu = Emulator::start(&FAST).await;
    let token = emu.token().await;
    let config = emu.configure(&token, DOMAIN).await;
    // No published resource for the Domain secret's domain.
    emu.wait_quarantine(&token, &config, "HybridIdentityServiceInvalidResource")
        .await;

    // Published, but its agent group is empty (no agent registered yet).
    emu.inner.publish(DOMAIN).await;
    emu.wait_quarantine(&token, &config, "HybridIdentityServiceNoAgentsAssigned")
        .await;

    // An agent linked to the group through Graph, its count set by hand.
    let agent = emu.register(MACHINE).await;
    let (_, resources) = emu
        .get(
            &format!("{PROVISIONING}/publishedResources?$expand=agentGroups"),
            Some(&token),
        )
        .await;
    let group = resources["value"][0]["agentGroups"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = format!("{PROVISIONING}/agents/{}/agentGroups/$ref", agent.id);
    let reference = json!({ "@odata.id": format!("https://graph.microsoft.com/beta{PROVISIONING}/agentGroups/{group}") });
    let (status, body) = emu.post(&link, Some(&token), &reference).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = emu.post(&link, Some(&token), &reference).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "already linked");
    emu.inner.sync_user_count(&agent.id, DOMAIN, 20).await;
    let stranger = json!({ "agentId": "no-such-agent", "domain": DOMAIN, "users": 1 });
    let (status, _) = emu.post("/_lab/sync/user-count", None, &stranger).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    emu.wait_imported(&token, &config, 20).await;

    // A lab quarantine code, with Microsoft's message for it.
    let code = "AzureActiveDirectoryInvalidCredential";
    emu.inner.sync_quarantine(DOMAIN, Some(code)).await;
    let job = emu.wait_quarantine(&token, &config, code).await;
    let message = job["status"]["quarantine"]["error"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("service account"), "{message}");
    assert_eq!(job["status"]["quarantine"]["seriesCount"], 1);

    // Restart with QuarantineState lifts it: the next cycle, still failing,
    // begins the series' second quarantine.
    let criteria = json!({ "criteria": { "resetScope": "QuarantineState" } });
    emu.act(&token, &config, "restart", &criteria).await;
    emu.wait_job(&token, &config, "second quarantine", |job| {
        job["status"]["quarantine"]["seriesCount"] == 2
    })
    .await;
    emu.inner.sync_quarantine(DOMAIN, None).await;
    let job = emu.wait_imported(&token, &config, 20).await;
    assert!(job["status"]["quarantine"].is_null(), "{job}");

    // The agent leaves the group: no agents assigned again.
    let unlink = format!(
        "{PROVISIONING}/agents/{}/agentGroups/{group}/$ref",
        agent.id
    );
    let (status, _) = emu.send(Method::DELETE, &unlink, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = emu.send(Method::DELETE, &unlink, &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    emu.wait_quarantine(&token, &config, "HybridIdentityServiceNoAgentsAssigned")
        .await;

    // The only deletes were the agent group link's.
    let calls = emu.inner.sync_calls().await;
    let deletes: Vec<&String> = calls.iter().filter(|c| c.starts_with("DELETE")).collect();
    assert_eq!(
        deletes,
        [&format!("DELETE {unlink}"), &format!("DELETE {unlink}")]
    );
    emu.stop().await;
}
