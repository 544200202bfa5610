//! The cloud sync API contract (`provd::testkit::cloud_sync_contract`) on
//! both backends: `FakeTenant` (what the hermetic workflow tests rely on)
//! and `HttpTenant` against the tenant emulator binary (Graph's documented
//! behaviour, as the LAB STAND-IN mirrors it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use provd::backends::tenant::Tokens;
use provd::testkit::FakeTenant;
use provd::testkit::cloud_sync_contract::{SyncContractEnv, all};
use secrecy::SecretString;

#[tokio::test]
async fn the_fake_passes_the_cloud_sync_contract() {
    let env = SyncContractEnv {
        api: Arc::new(FakeTenant::new()),
        tokens: Tokens {
            access: SecretString::from("fake"),
            refresh: None,
            expires_at: Instant::now() + Duration::from_secs(3600),
            tenant_id: None,
            user_principal_name: None,
        },
        domain: "contract.example.test".into(),
    };
    all(&env).await;
}

#[tokio::test]
async fn the_graph_client_passes_the_cloud_sync_contract_against_the_emulator() {
    use crate::common::tenant::{TENANT, TenantEmulator};
    use provd::backends::tenant::{ClientScope, HttpTenant, RetryPolicy, TenantEndpoints};

    let emulator =
        TenantEmulator::start(&crate::common::workspace_bin("provd-tenant-emulator"), &[]).await;
    let client = HttpTenant::new(
        TenantEndpoints {
            authority: emulator.base(),
            graph: emulator.base(),
            tenant: TENANT.into(),
        },
        Some(&emulator.ca_file),
        Duration::from_secs(10),
        RetryPolicy::default(),
    )
    .unwrap();
    // Graph's delegated token, as an operator's device-code sign-in gets it.
    let graph = ClientScope {
        client_id: "14d82eec-204b-4c2f-b7e8-296a70dab67e".into(),
        scope: "https://graph.microsoft.com/.default".into(),
    };
    let code = client.start_device_code(&graph).await.unwrap();
    emulator.approve(&code.user_code).await;
    let tokens = client
        .wait_for_tokens(&code, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    let env = SyncContractEnv {
        api: Arc::new(client),
        tokens,
        domain: "contract.example.test".into(),
    };
    all(&env).await;
    emulator.stop().await;
}
