//! SignIn with two audiences on `FakeTenant`: one device code for the
//! registration client and scope, Graph through the refresh grant; a
//! second device code (for `tenant.client_id`) with a WARNING saying why
//! when the tenant refuses Graph to the registration client; and no token
//! in an event, a log line or the store.

use crate::common::LogCapture;
use crate::common::hermetic::*;
use provd::backends::tenant::ClientScope;
use provd::config::{
    DEFAULT_REGISTRATION_CLIENT_ID, DEFAULT_REGISTRATION_SCOPE, DEFAULT_TENANT_CLIENT_ID,
};
use provd::testkit::tenant::{FAKE_TENANT_ID, FAKE_USER};
use provd_proto::v1;
use provd_proto::v1::EventKind::{ActionRequired, StepSkipped, Warning};

use super::support_ta::{assert_not_echoed, assert_not_stored};

/// The default: the least-privileged permission of each call.
fn graph_scope() -> String {
    provd::backends::tenant::graph_scope(provd::model::Cloud::AzurePublic)
}

fn client(client_id: &str, scope: &str) -> ClientScope {
    ClientScope {
        client_id: client_id.into(),
        scope: scope.into(),
    }
}

fn registration() -> ClientScope {
    client(DEFAULT_REGISTRATION_CLIENT_ID, DEFAULT_REGISTRATION_SCOPE)
}

fn of_kind(events: &[v1::OperationEvent], kind: v1::EventKind) -> Vec<&v1::OperationEvent> {
    events.iter().filter(|e| e.kind == kind as i32).collect()
}

async fn signed_in(d: &Hermetic) -> bool {
    d.agent()
        .get_agent(v1::GetAgentRequest {})
        .await
        .unwrap()
        .into_inner()
        .tenant
        .is_some_and(|t| t.signed_in)
}

#[tokio::test]
async fn one_device_code_gets_tokens_for_the_registration_service_and_graph() {
    let d = Hermetic::start().await;
    let (events, op) = d.sign_in().await;
    ok(&op);
    let asked = of_kind(&events, ActionRequired);
    assert_eq!(asked.len(), 1, "{events:#?}");
    assert_eq!(
        asked[0].attributes["client_id"],
        DEFAULT_REGISTRATION_CLIENT_ID
    );
    assert_eq!(asked[0].attributes["scope"], DEFAULT_REGISTRATION_SCOPE);
    assert!(of_kind(&events, Warning).is_empty(), "{events:#?}");
    let tenant = &d.fakes.tenant;
    assert_eq!(tenant.device_codes(), [registration()]);
    // Graph from the registration client's refresh token.
    assert_eq!(
        tenant.refreshes(),
        [client(DEFAULT_REGISTRATION_CLIENT_ID, &graph_scope())]
    );
    assert_eq!(tenant.sign_ins(), 1);
    for key in [
        "token_expires_in_secs",
        "registration_token_expires_in_secs",
    ] {
        assert!(
            op.result[key].parse::<u64>().unwrap() > 3000,
            "{key}: {op:?}"
        );
    }
    // Who signed in, from the id_token, for the agent's module later.
    assert_eq!(op.result["tenant_id"], FAKE_TENANT_ID);
    assert_eq!(op.result["user_principal_name"], FAKE_USER);
    assert!(signed_in(&d).await);

    // The session holds: no second device code.
    let (events, op) = d.sign_in().await;
    ok(&op);
    assert!(!of_kind(&events, StepSkipped).is_empty(), "{events:#?}");
    assert_eq!(tenant.device_codes().len(), 1);
    d.shutdown().await;
}

#[tokio::test]
async fn a_refused_graph_audience_asks_once_more_for_the_graph_client_saying_why() {
    let d = Hermetic::start().await;
    let tenant = &d.fakes.tenant;
    tenant.refuse(DEFAULT_REGISTRATION_CLIENT_ID, &graph_scope());
    let (events, op) = d.sign_in().await;
    ok(&op);
    let asked = of_kind(&events, ActionRequired);
    assert_eq!(asked.len(), 2, "{events:#?}");
    assert_eq!(asked[1].attributes["client_id"], DEFAULT_TENANT_CLIENT_ID);
    assert_eq!(asked[1].attributes["scope"], graph_scope());
    assert_eq!(
        tenant.device_codes(),
        [
            registration(),
            client(DEFAULT_TENANT_CLIENT_ID, &graph_scope())
        ]
    );
    // Said before the second code, naming the client, the reason and the key.
    let warning = of_kind(&events, Warning);
    assert_eq!(warning.len(), 1, "{events:#?}");
    let why = &warning[0].message;
    for needle in [
        DEFAULT_REGISTRATION_CLIENT_ID,
        "AADSTS65001",
        "tenant.client_id",
    ] {
        assert!(why.contains(needle), "{needle}: {why}");
    }
    let position = |e: &v1::OperationEvent| events.iter().position(|x| x == e).unwrap();
    assert!(position(warning[0]) < position(asked[1]));
    assert_eq!(tenant.sign_ins(), 2);
    assert!(op.result.contains_key("registration_token_expires_in_secs"));
    assert!(signed_in(&d).await);
    d.shutdown().await;
}

#[tokio::test]
async fn the_same_client_refused_graph_fails_naming_the_keys() {
    let fakes = Fakes::default();
    fakes
        .tenant
        .refuse(DEFAULT_REGISTRATION_CLIENT_ID, &graph_scope());
    let d = Hermetic::start_configured(fakes, |c| {
        c.tenant.client_id = DEFAULT_REGISTRATION_CLIENT_ID.into();
    })
    .await;
    let (events, op) = d.sign_in().await;
    let error = failed(&op);
    assert_eq!(error.code, "PERMISSION_DENIED", "{error:?}");
    assert_eq!(error.step, "sign-in");
    for needle in [
        "AADSTS65001",
        "tenant.registration_client_id",
        "tenant.graph_scope",
    ] {
        assert!(
            error.message.contains(needle),
            "{needle}: {}",
            error.message
        );
    }
    // Asking the same client again would only be refused again.
    assert_eq!(of_kind(&events, ActionRequired).len(), 1);
    assert!(!signed_in(&d).await);
    d.shutdown().await;
}

#[tokio::test]
async fn the_configured_clients_and_scopes_are_the_ones_asked_for() {
    let d = Hermetic::start_configured(Fakes::default(), |c| {
        c.tenant.registration_client_id = "reg-client".into();
        c.tenant.registration_scope = "api://reg/user_impersonation".into();
        c.tenant.graph_scope = Some("https://graph.microsoft.us/.default".into());
    })
    .await;
    ok(&d.sign_in().await.1);
    let tenant = &d.fakes.tenant;
    assert_eq!(
        tenant.device_codes(),
        [client("reg-client", "api://reg/user_impersonation")]
    );
    assert_eq!(
        tenant.refreshes(),
        [client("reg-client", "https://graph.microsoft.us/.default")]
    );
    d.shutdown().await;
}

#[tokio::test]
async fn no_token_or_device_code_reaches_events_logs_or_the_store() {
    // Everything the daemon logs on this (current-thread) runtime, every
    // level, with span fields at span open and close.
    let log = LogCapture::start();

    let d = Hermetic::start().await;
    // Both device codes and a refused refresh: every path a secret takes.
    d.fakes
        .tenant
        .refuse(DEFAULT_REGISTRATION_CLIENT_ID, &graph_scope());
    let (events, op) = d.sign_in().await;
    ok(&op);
    let (again, op2) = d.sign_in().await;
    ok(&op2);
    let secrets = d.fakes.tenant.issued_secrets();
    assert!(
        secrets.len() >= 6,
        "two device codes, two token pairs: {secrets:?}"
    );
    let text = log.text();
    assert!(
        text.contains("operation started"),
        "the capture saw the daemon"
    );
    for secret in &secrets {
        assert_not_echoed(&events, &op, secret);
        assert_not_echoed(&again, &op2, secret);
        assert_not_stored(&d, secret);
        assert!(!text.contains(secret.as_str()), "{secret} logged");
    }
    d.shutdown().await;
}
