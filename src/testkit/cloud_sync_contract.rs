//! The cloud sync API contract: properties every [`CloudSyncApi`] must have,
//! run against `FakeTenant` (hermetic: `tests/integration/tenant.rs`) and
//! against `HttpTenant` talking to the lab's tenant emulator, which mirrors
//! Graph's documented behaviour (`tests/integration/tenant_emulator/sync.rs`).
//! Where the two differ, the fake is made to behave like the emulator.
//!
//! Each property is one `pub async fn` taking a [`SyncContractEnv`] and
//! panics naming what differed. Each run instantiates its own application,
//! named after a domain unique to the run.

use std::sync::Arc;

use crate::backends::tenant::{CloudSyncApi, TenantError, Tokens};
use crate::model::{
    JobCode, JobTemplate, ResetScope, SECRET_KEYS, Schedule, SyncScope, SyncSecrets,
};

/// The backend under test and a token it accepts.
pub struct SyncContractEnv {
    pub api: Arc<dyn CloudSyncApi>,
    pub tokens: Tokens,
    /// A domain name unique to this run.
    pub domain: String,
}

fn secrets(domain: &str, email: Option<&str>, phs: bool) -> SyncSecrets {
    SyncSecrets {
        domain: domain.to_owned(),
        password_hash_sync: phs,
        notification_email: email.map(str::to_owned),
        delete_threshold: Some(500),
    }
}

/// Instantiate makes an application listed among the sync applications,
/// named as asked.
pub async fn instantiate_is_listed(env: &SyncContractEnv) {
    let app = env.api.instantiate(&env.tokens, &env.domain).await.unwrap();
    assert_eq!(app.display_name, env.domain);
    let apps = env.api.sync_apps(&env.tokens).await.unwrap();
    assert!(
        apps.iter()
            .any(|a| a.service_principal_id == app.service_principal_id),
        "{apps:?}"
    );
}

/// A new job is Disabled and Paused (the how-to's example); a second of
/// one template is a conflict; start, pause and restart move the schedule.
pub async fn jobs_start_pause_and_conflict(env: &SyncContractEnv) {
    let app = env.api.instantiate(&env.tokens, &env.domain).await.unwrap();
    let sp = &app.service_principal_id;
    let job = env
        .api
        .create_job(&env.tokens, sp, JobTemplate::Provisioning)
        .await
        .unwrap();
    assert_eq!(job.template(), Some(JobTemplate::Provisioning));
    assert_eq!(job.schedule, Schedule::Disabled);
    let again = env
        .api
        .create_job(&env.tokens, sp, JobTemplate::Provisioning)
        .await;
    assert!(matches!(again, Err(TenantError::Conflict(_))), "{again:?}");
    env.api.start_job(&env.tokens, sp, &job.id).await.unwrap();
    let listed = env.api.jobs(&env.tokens, sp).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].schedule, Schedule::Active);
    assert_ne!(listed[0].status.code, JobCode::Paused);
    env.api.pause_job(&env.tokens, sp, &job.id).await.unwrap();
    let listed = env.api.jobs(&env.tokens, sp).await.unwrap();
    assert_eq!(listed[0].schedule, Schedule::Paused);
    env.api
        .restart_job(&env.tokens, sp, &job.id, &[ResetScope::Full])
        .await
        .unwrap();
    let missing = env.api.start_job(&env.tokens, sp, "no-such-job").await;
    assert!(
        matches!(missing, Err(TenantError::NotFound(_))),
        "{missing:?}"
    );
}

/// Secrets read back as set, all three keys; a second PUT replaces the
/// first entirely.
pub async fn secrets_round_trip_and_replace(env: &SyncContractEnv) {
    let app = env.api.instantiate(&env.tokens, &env.domain).await.unwrap();
    let sp = &app.service_principal_id;
    let empty = env.api.secrets(&env.tokens, sp).await.unwrap();
    assert!(empty.keys.is_empty(), "{empty:?}");
    let first = secrets(&env.domain, Some("ops@contract.example"), true);
    env.api.put_secrets(&env.tokens, sp, &first).await.unwrap();
    let read = env.api.secrets(&env.tokens, sp).await.unwrap();
    assert_eq!(read.keys, SECRET_KEYS.map(str::to_owned));
    assert_eq!(read.values.as_ref(), Some(&first));
    let second = secrets(&env.domain, None, false);
    env.api.put_secrets(&env.tokens, sp, &second).await.unwrap();
    let read = env.api.secrets(&env.tokens, sp).await.unwrap();
    assert_eq!(read.values.as_ref(), Some(&second));
}

/// The schema's scope and hash mapping read back as set, and clear again.
pub async fn schema_scope_round_trips(env: &SyncContractEnv) {
    let app = env.api.instantiate(&env.tokens, &env.domain).await.unwrap();
    let sp = &app.service_principal_id;
    let job = env
        .api
        .create_job(&env.tokens, sp, JobTemplate::Provisioning)
        .await
        .unwrap();
    let fresh = env.api.schema(&env.tokens, sp, &job.id).await.unwrap();
    assert_eq!(fresh.scope, SyncScope::AllUsers);
    assert!(!fresh.password_hash_mapping);
    let ous = SyncScope::OrganizationalUnits(vec![format!("OU=Pilot,DC={}", env.domain)]);
    env.api
        .set_schema(&env.tokens, sp, &job.id, &ous, true)
        .await
        .unwrap();
    let read = env.api.schema(&env.tokens, sp, &job.id).await.unwrap();
    assert_eq!(read.scope, ous);
    assert!(read.password_hash_mapping);
    let groups = SyncScope::SecurityGroups(vec![format!("CN=G,DC={}", env.domain)]);
    env.api
        .set_schema(&env.tokens, sp, &job.id, &groups, true)
        .await
        .unwrap();
    let read = env.api.schema(&env.tokens, sp, &job.id).await.unwrap();
    assert_eq!(read.scope, groups, "one filter replaces the other");
    assert!(
        read.password_hash_mapping,
        "the mapping is not added twice or lost"
    );
    env.api
        .set_schema(&env.tokens, sp, &job.id, &SyncScope::AllUsers, false)
        .await
        .unwrap();
    let read = env.api.schema(&env.tokens, sp, &job.id).await.unwrap();
    assert_eq!(read.scope, SyncScope::AllUsers);
    assert!(!read.password_hash_mapping);
}

/// The tenant flag reads back true once enabled.
pub async fn enabling_sync_sets_the_flag(env: &SyncContractEnv) {
    let org = env.api.organization(&env.tokens).await.unwrap();
    env.api.enable_sync(&env.tokens, &org.id).await.unwrap();
    let org = env.api.organization(&env.tokens).await.unwrap();
    assert_eq!(org.sync_enabled, Some(true));
}

/// Deleting a configuration's service principal unlists it with its jobs;
/// deleting it again is no error (a resend after a lost answer).
pub async fn delete_removes_the_configuration(env: &SyncContractEnv) {
    let app = env.api.instantiate(&env.tokens, &env.domain).await.unwrap();
    let sp = &app.service_principal_id;
    env.api
        .create_job(&env.tokens, sp, JobTemplate::Provisioning)
        .await
        .unwrap();
    env.api.delete_app(&env.tokens, sp).await.unwrap();
    let apps = env.api.sync_apps(&env.tokens).await.unwrap();
    assert!(
        !apps.iter().any(|a| &a.service_principal_id == sp),
        "{apps:?}"
    );
    assert!(
        matches!(
            env.api.jobs(&env.tokens, sp).await,
            Err(TenantError::NotFound(_))
        ),
        "the jobs went with it"
    );
    env.api.delete_app(&env.tokens, sp).await.unwrap();
}

/// Every property, in order.
pub async fn all(env: &SyncContractEnv) {
    enabling_sync_sets_the_flag(env).await;
    instantiate_is_listed(env).await;
    jobs_start_pause_and_conflict(env).await;
    secrets_round_trip_and_replace(env).await;
    schema_scope_round_trips(env).await;
    delete_removes_the_configuration(env).await;
}
