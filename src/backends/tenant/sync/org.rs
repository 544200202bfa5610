//! The tenant flag that turns directory sync on: `GET /organization` and
//! `PATCH /organization/{id}` `{"onPremisesSyncEnabled": true}` → 204
//! (<https://learn.microsoft.com/graph/api/organization-update?view=graph-rest-beta>;
//! the how-to's "Enable tenant flags" does the same with
//! `Update-MgBetaOrganization`).

use serde::Deserialize;
use serde_json::json;

use super::super::http::HttpTenant;
use super::super::{TenantError, Tokens};
use super::call::{json_body, segment};
use super::{Organization, SyncCall};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrganizationBody {
    id: String,
    /// `null` until the tenant was first synchronized.
    #[serde(default)]
    on_premises_sync_enabled: Option<bool>,
}

impl HttpTenant {
    /// The signed-in tenant's organization (the collection holds exactly it).
    pub async fn organization(&self, tokens: &Tokens) -> Result<Organization, TenantError> {
        let call = SyncCall::ReadOrganization;
        let list: Vec<OrganizationBody> = self.sync_list(tokens, call, "/organization").await?;
        let org = list.into_iter().next().ok_or_else(|| {
            TenantError::Protocol(format!("{}: no organization in the answer", call.request()))
        })?;
        Ok(Organization {
            id: org.id,
            sync_enabled: org.on_premises_sync_enabled,
        })
    }

    pub async fn enable_sync(
        &self,
        tokens: &Tokens,
        organization_id: &str,
    ) -> Result<(), TenantError> {
        let url = self.beta(&format!("/organization/{}", segment(organization_id)));
        let body = json_body(&json!({ "onPremisesSyncEnabled": true }));
        self.sync_send(tokens, SyncCall::EnableSync, &url, Some(body))
            .await
            .map(drop)
    }
}
