//! The documented requests as they go on the wire, against the scripted
//! server of `test_server`; and no secret value in what provd logs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::test_server::{Server, answer, graph_error, tokens};
use super::*;
use crate::model::SECRET_KEYS;

const SP: &str = "sp-1";
const JOB: &str = "AD2AADProvisioning.0123456789abcdef0123456789abcdef";
const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_organization_flag_is_read_and_set() {
    let org = r#"{"value":[{"id":"org-1","onPremisesSyncEnabled":null}]}"#;
    let server = Server::start(vec![answer(200, org), answer(204, "")]).await;
    let client = server.client(TIMEOUT);
    let read = client.organization(&tokens()).await.unwrap();
    assert_eq!((read.id.as_str(), read.sync_enabled), ("org-1", None));
    client.enable_sync(&tokens(), "org-1").await.unwrap();
    let seen = server.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.as_str()),
        ("GET", "/beta/organization")
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].uri.as_str()),
        ("PATCH", "/beta/organization/org-1")
    );
    assert_eq!(seen[1].body, r#"{"onPremisesSyncEnabled":true}"#);
}

#[tokio::test]
async fn sync_apps_are_filtered_by_template_and_paged_on_this_graph_only() {
    let first = |base: &str| {
        json!({"value": [{"id": "sp-a", "appId": "app-a", "displayName": "lab.example.test",
            "applicationTemplateId": "1a4721b3-e57f-4451-ae87-ef078703ec94"}],
            "@odata.nextLink": format!("{base}/beta/servicePrincipals?$skiptoken=page2")})
        .to_string()
    };
    // The base is known once the server runs: start it, then script.
    let server = Server::start(Vec::new()).await;
    let foreign = r#"{"value":[],"@odata.nextLink":"https://elsewhere.example/beta/servicePrincipals?$skiptoken=x"}"#;
    server.push(vec![
        answer(200, &first(&server.base)),
        answer(
            200,
            r#"{"value":[{"id":"sp-b","appId":"app-b","displayName":"other.test"}]}"#,
        ),
        answer(200, foreign),
    ]);
    let client = server.client(TIMEOUT);
    let apps = client.sync_apps(&tokens()).await.unwrap();
    let ids: Vec<_> = apps
        .iter()
        .map(|a| a.service_principal_id.as_str())
        .collect();
    assert_eq!(ids, ["sp-a", "sp-b"]);
    assert_eq!(apps[0].app_id, "app-a");
    let seen = server.seen();
    assert_eq!(
        seen[0].uri,
        "/beta/servicePrincipals?$filter=applicationTemplateId%20eq%20%271a4721b3-e57f-4451-ae87-ef078703ec94%27"
    );
    assert_eq!(seen[1].uri, "/beta/servicePrincipals?$skiptoken=page2");

    let err = client.sync_apps(&tokens()).await.unwrap_err();
    assert!(
        matches!(&err, TenantError::Protocol(m) if m.contains("elsewhere")),
        "{err:?}"
    );
    assert_eq!(server.seen().len(), 3, "the token never went elsewhere");
}

#[tokio::test]
async fn secrets_go_as_canonical_json_and_no_value_is_logged() {
    // Every level, span fields at open and close. A second, silent
    // dispatcher first: with one, a callsite's interest is cached from
    // whichever thread hits it first, and other tests' threads could
    // disable it for this capture.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // `&File` writes, so an `Arc<File>` is a `MakeWriter`.
    let log = Arc::new(tempfile::tempfile().unwrap());
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let secrets = SyncSecrets {
        domain: "secret-domain.example".into(),
        password_hash_sync: true,
        notification_email: Some("sync-canary-5f1c@lab.example.test".into()),
        delete_threshold: Some(500),
    };
    let values = canonical_secret_values(&secrets);
    let read_back = json!({"value": SECRET_KEYS.iter().zip(&values)
        .map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>()});
    // Graph quoting the request in an error [I: it may].
    let echo = graph_error(400, "BadRequest", &format!("cannot use {}", values[2]));
    let server = Server::start(vec![
        graph_error(
            503,
            "ServiceUnavailable",
            &format!("busy with {}", values[0]),
        ),
        answer(204, ""),
        answer(200, &read_back.to_string()),
        echo,
    ])
    .await;
    let client = server.client(TIMEOUT);
    client.put_secrets(&tokens(), SP, &secrets).await.unwrap();
    let read = client.secrets(&tokens(), SP).await.unwrap();
    assert_eq!(read.values.as_ref(), Some(&secrets));
    let err = client
        .put_secrets(&tokens(), SP, &secrets)
        .await
        .unwrap_err();

    let seen = server.seen();
    assert_eq!(seen[1].method, "PUT");
    assert_eq!(
        seen[1].uri,
        "/beta/servicePrincipals/sp-1/synchronization/secrets"
    );
    let sent: Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(sent, read_back, "all three keys, in order");
    assert_eq!(
        seen[1].body,
        read_back.to_string(),
        "compact, byte for byte"
    );

    let mut text = String::new();
    let mut file = &*log;
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_string(&mut text).unwrap();
    assert!(
        text.contains("PUT /beta/servicePrincipals/sp-1/synchronization/secrets"),
        "{text}"
    );
    assert!(text.contains("retrying"), "the 503 was logged: {text}");
    let error = format!("{err} {err:?} {secrets:?}");
    let mut needles = vec!["secret-domain", "sync-canary-5f1c"];
    needles.extend(values.iter().map(String::as_str));
    for needle in needles {
        assert!(!text.contains(needle), "{needle} logged: {text}");
        assert!(!error.contains(needle), "{needle} in {error}");
    }
}

#[tokio::test]
async fn set_schema_puts_the_edited_schema_back_unless_too_large() {
    let schema = json!({"id": "AD2AADProvisioning", "extra": {"kept": true},
        "synchronizationRules": [{"id": "r", "containerFilter": {"includedContainers": []},
            "groupFilter": {"includedGroups": []},
            "objectMappings": [{"sourceObjectName": "user", "attributeMappings": []}]}]});
    let server = Server::start(vec![
        answer(200, &schema.to_string()),
        answer(204, ""),
        answer(200, &schema.to_string()),
    ])
    .await;
    let client = server.client(TIMEOUT);
    let ous = SyncScope::OrganizationalUnits(vec!["OU=SyncPilot,DC=lab,DC=example,DC=test".into()]);
    client
        .set_schema(&tokens(), SP, JOB, &ous, true)
        .await
        .unwrap();
    let seen = server.seen();
    let url = format!("/beta/servicePrincipals/sp-1/synchronization/jobs/{JOB}/schema");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.as_str()),
        ("GET", url.as_str())
    );
    assert_eq!(
        (seen[1].method.as_str(), seen[1].uri.as_str()),
        ("PUT", url.as_str())
    );
    let put: Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(put["extra"], json!({"kept": true}));
    let rule = &put["synchronizationRules"][0];
    assert_eq!(
        rule["containerFilter"]["includedContainers"][0],
        "OU=SyncPilot,DC=lab,DC=example,DC=test"
    );
    assert_eq!(
        rule["objectMappings"][0]["attributeMappings"][0]["targetAttributeName"],
        "CredentialData"
    );

    let huge = SyncScope::SecurityGroups(vec!["CN=g,DC=lab".repeat(1000); 500]);
    let err = client
        .set_schema(&tokens(), SP, JOB, &huge, false)
        .await
        .unwrap_err();
    assert!(matches!(err, TenantError::TooLarge { .. }), "{err:?}");
    assert_eq!(server.seen().len(), 3, "read, never sent");
}

#[tokio::test]
async fn agent_group_links_use_ref() {
    let server = Server::start(vec![answer(204, ""), answer(204, "")]).await;
    let client = server.client(TIMEOUT);
    client
        .assign_agent(&tokens(), "agent-1", "group-1")
        .await
        .unwrap();
    client
        .remove_agent(&tokens(), "agent-1", "group-1")
        .await
        .unwrap();
    let seen = server.seen();
    let agent = "/beta/onPremisesPublishingProfiles/provisioning/agents/agent-1/agentGroups";
    assert_eq!(
        (seen[0].method.as_str(), seen[0].uri.clone()),
        ("POST", format!("{agent}/$ref"))
    );
    let group = format!(
        "{}/beta/onPremisesPublishingProfiles/provisioning/agentGroups/group-1",
        server.base
    );
    assert_eq!(seen[0].body, json!({"@odata.id": group}).to_string());
    assert_eq!(
        (seen[1].method.as_str(), seen[1].uri.clone()),
        ("DELETE", format!("{agent}/group-1/$ref"))
    );
}
