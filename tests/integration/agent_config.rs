//! `FakeAgentConfig`, the hermetic tier's agent module: what workflow
//! tests will rely on it for — calls recorded without their secrets, state
//! that later calls see, a transcript line per call, and each error variant
//! on demand.

use std::sync::Mutex;

use provd::backends::agent_config::{AgentConfig, AgentConfigError, RunContext, TenantConnection};
use provd::model::BindCredential;
use provd::testkit::{AgentConfigAction, AgentConfigCall, AgentConfigFault, FakeAgentConfig};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "S3cret-Passw0rd!";
const TOKEN: &str = "eyJ0eXAiOiJKV1QifQ.registration-audience-token";

fn connection() -> TenantConnection {
    TenantConnection {
        access_token: SecretString::from(TOKEN),
        tenant_id: "tenant-guid".into(),
        user_principal_name: "admin@contoso.example".into(),
    }
}

fn admin() -> BindCredential {
    BindCredential::simple("LAB\\Administrator", SecretString::from(PASSWORD))
}

#[tokio::test]
async fn calls_are_recorded_without_secrets_and_change_what_later_calls_see() {
    let fake = FakeAgentConfig::new();
    let cancel = CancellationToken::new();
    let lines = Mutex::new(Vec::new());
    let emit = |line: String| lines.lock().unwrap().push(line);
    let cx = RunContext {
        cancel: &cancel,
        transcript: &emit,
    };
    let dcs = vec![
        "dc2.lab.example.test".to_owned(),
        "dc1.lab.example.test".into(),
    ];
    assert!(fake.availability().is_ok());
    assert_eq!(fake.module_info(&cx).await.unwrap().registered_tenant, None);
    fake.connect_tenant(&connection(), &cx).await.unwrap();
    fake.use_gmsa("provAgentgMSA$", &cx).await.unwrap();
    fake.add_domain("lab.example.test", &admin(), &dcs[..1], &cx)
        .await
        .unwrap();
    // Again with the whole priority list: updated, not added twice.
    fake.add_domain("LAB.example.test", &admin(), &dcs, &cx)
        .await
        .unwrap();
    fake.set_writeback(true, &connection(), &cx).await.unwrap();

    let info = fake.module_info(&cx).await.unwrap();
    assert_eq!(info.registered_tenant.as_deref(), Some("tenant-guid"));
    let domains = fake.list_domains(&cx).await.unwrap();
    assert_eq!(domains.len(), 1);
    assert_eq!(domains[0].preferred_dcs, dcs);
    assert_eq!(fake.gmsa().as_deref(), Some("provAgentgMSA$"));
    assert_eq!(fake.writeback(), Some(true));

    let calls = fake.calls();
    assert_eq!(calls.len(), 8);
    assert_eq!(
        calls[1],
        AgentConfigCall::ConnectTenant {
            tenant_id: "tenant-guid".into(),
            user_principal_name: "admin@contoso.example".into(),
        }
    );
    assert_eq!(
        calls[4],
        AgentConfigCall::AddDomain {
            domain: "LAB.example.test".into(),
            username: "LAB\\Administrator".into(),
            preferred_dcs: dcs,
        }
    );
    let lines = lines.into_inner().unwrap();
    assert_eq!(lines.len(), calls.len(), "one transcript line per call");
    let everything = format!(
        "{calls:?} {lines:?} {connection:?}",
        connection = connection()
    );
    assert!(!everything.contains(PASSWORD) && !everything.contains(TOKEN));
}

#[tokio::test]
async fn each_error_variant_can_be_injected_per_call() {
    let fake = FakeAgentConfig::new();
    let cancel = CancellationToken::new();
    let cx = RunContext {
        cancel: &cancel,
        transcript: &|_| {},
    };
    for fault in AgentConfigFault::ALL {
        fake.fail(AgentConfigAction::AddDomain, fault);
        let err = fake
            .add_domain("lab.example.test", &admin(), &[], &cx)
            .await
            .unwrap_err();
        assert_eq!(
            std::mem::discriminant(&err),
            std::mem::discriminant(&fault.error()),
            "{fault:?}: {err:?}"
        );
        // Other calls are unaffected.
        fake.use_gmsa("gmsa$", &cx).await.unwrap();
    }
    fake.clear_faults();
    fake.add_domain("lab.example.test", &admin(), &[], &cx)
        .await
        .unwrap();

    cancel.cancel();
    let err = fake.list_domains(&cx).await.unwrap_err();
    assert!(matches!(err, AgentConfigError::Cancelled), "{err:?}");
}

/// The contract the real runner passes under Wine with the lab's stand-in
/// (`tests/agent_contract_wine.rs`).
#[tokio::test]
async fn the_fake_passes_the_agent_config_contract() {
    use provd::testkit::agent_contract::{AgentContractEnv, run_all};
    let env = AgentContractEnv {
        agent: std::sync::Arc::new(FakeAgentConfig::new()),
        domain: "contract.lab.example.test".into(),
        dcs: ["dc1.lab.example.test".into(), "dc2.lab.example.test".into()],
    };
    run_all(&env).await;
}
