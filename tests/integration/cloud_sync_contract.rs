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
