//! WIP placeholder until the Graph client lands (branch i15-http): every
//! call says it is not built. Removed at that merge.

use super::{CloudSyncApi, Organization};
use crate::backends::tenant::{HttpTenant, TenantError, Tokens};
use crate::model::{
    JobSchema, JobTemplate, ResetScope, SecretsRead, SyncApp, SyncJob, SyncScope, SyncSecrets,
};

fn pending<T>() -> Result<T, TenantError> {
    Err(TenantError::Config(
        "the cloud sync Graph client is not built yet".into(),
    ))
}

#[async_trait::async_trait]
impl CloudSyncApi for HttpTenant {
    async fn organization(&self, _: &Tokens) -> Result<Organization, TenantError> {
        pending()
    }
    async fn enable_sync(&self, _: &Tokens, _: &str) -> Result<(), TenantError> {
        pending()
    }
    async fn sync_apps(&self, _: &Tokens) -> Result<Vec<SyncApp>, TenantError> {
        pending()
    }
    async fn instantiate(&self, _: &Tokens, _: &str) -> Result<SyncApp, TenantError> {
        pending()
    }
    async fn jobs(&self, _: &Tokens, _: &str) -> Result<Vec<SyncJob>, TenantError> {
        pending()
    }
    async fn create_job(
        &self,
        _: &Tokens,
        _: &str,
        _: JobTemplate,
    ) -> Result<SyncJob, TenantError> {
        pending()
    }
    async fn start_job(&self, _: &Tokens, _: &str, _: &str) -> Result<(), TenantError> {
        pending()
    }
    async fn pause_job(&self, _: &Tokens, _: &str, _: &str) -> Result<(), TenantError> {
        pending()
    }
    async fn restart_job(
        &self,
        _: &Tokens,
        _: &str,
        _: &str,
        _: &[ResetScope],
    ) -> Result<(), TenantError> {
        pending()
    }
    async fn secrets(&self, _: &Tokens, _: &str) -> Result<SecretsRead, TenantError> {
        pending()
    }
    async fn put_secrets(&self, _: &Tokens, _: &str, _: &SyncSecrets) -> Result<(), TenantError> {
        pending()
    }
    async fn schema(&self, _: &Tokens, _: &str, _: &str) -> Result<JobSchema, TenantError> {
        pending()
    }
    async fn set_schema(
        &self,
        _: &Tokens,
        _: &str,
        _: &str,
        _: &SyncScope,
        _: bool,
    ) -> Result<(), TenantError> {
        pending()
    }
    async fn assign_agent(&self, _: &Tokens, _: &str, _: &str) -> Result<(), TenantError> {
        pending()
    }
    async fn remove_agent(&self, _: &Tokens, _: &str, _: &str) -> Result<(), TenantError> {
        pending()
    }
}
