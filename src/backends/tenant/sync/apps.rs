//! The cloud sync applications: instantiating the cloud sync application
//! template (`POST /applicationTemplates/{id}/instantiate` → 201
//! `{application, servicePrincipal}`,
//! <https://learn.microsoft.com/graph/api/applicationtemplate-instantiate?view=graph-rest-beta>)
//! and finding its service principals again (`GET /servicePrincipals` with
//! `$filter=applicationTemplateId eq '…'`,
//! <https://learn.microsoft.com/graph/api/serviceprincipal-list?view=graph-rest-beta>;
//! the how-to lists them all and looks for the name), and deleting one
//! (`DELETE /servicePrincipals/{id}`,
//! <https://learn.microsoft.com/graph/api/serviceprincipal-delete?view=graph-rest-beta>:
//! its synchronization jobs, secrets and schema are its children; the
//! application registration the template made stays).

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Deserialize;
use serde_json::json;

use super::super::http::HttpTenant;
use super::super::{TenantError, Tokens};
use super::SyncCall;
use super::call::{json_body, parse};
use crate::model::{CLOUD_SYNC_APP_TEMPLATE, SyncApp};

/// Escaped in a query value: what would end or change the query
/// (`&`, `=`, `#`, `+`), quotes, and spaces (as `%20`, which Graph's
/// examples use, not `+`).
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'\'')
    .add(b'+')
    .add(b'<')
    .add(b'=')
    .add(b'>');

/// A service principal. Beta's instantiate examples name its object id
/// `objectId`, v1.0's and the list's `id`: either is read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PrincipalBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationBody {
    #[serde(default)]
    app_id: Option<String>,
}

/// `applicationServicePrincipal`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstantiatedBody {
    #[serde(default)]
    application: Option<ApplicationBody>,
    service_principal: PrincipalBody,
}

impl PrincipalBody {
    fn into_app(self, call: SyncCall, app_id: Option<String>) -> Result<SyncApp, TenantError> {
        let id = self.id.or(self.object_id).ok_or_else(|| {
            TenantError::Protocol(format!(
                "{}: a service principal without id or objectId",
                call.request()
            ))
        })?;
        Ok(SyncApp {
            service_principal_id: id,
            app_id: self.app_id.or(app_id).unwrap_or_default(),
            display_name: self.display_name.unwrap_or_default(),
        })
    }
}

/// `/servicePrincipals?$filter=applicationTemplateId eq '<template>'`.
pub(super) fn apps_path() -> String {
    let filter = format!("applicationTemplateId eq '{CLOUD_SYNC_APP_TEMPLATE}'");
    format!(
        "/servicePrincipals?$filter={}",
        utf8_percent_encode(&filter, QUERY_VALUE)
    )
}

impl HttpTenant {
    /// The service principals made from the cloud sync template.
    pub async fn sync_apps(&self, tokens: &Tokens) -> Result<Vec<SyncApp>, TenantError> {
        let call = SyncCall::ListApps;
        let list: Vec<PrincipalBody> = self.sync_list(tokens, call, &apps_path()).await?;
        list.into_iter().map(|sp| sp.into_app(call, None)).collect()
    }

    /// Deletes the configuration's service principal; one already gone
    /// (a resend after a lost answer) is done.
    pub async fn delete_app(&self, tokens: &Tokens, sp: &str) -> Result<(), TenantError> {
        let url = self.beta(&format!("/servicePrincipals/{}", super::call::segment(sp)));
        match self
            .sync_send(tokens, SyncCall::DeleteApp, &url, None)
            .await
        {
            Ok(_) | Err(TenantError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A new application and service principal from the template. Not
    /// sent again after a 5xx or a lost answer (see `send`).
    pub async fn instantiate(
        &self,
        tokens: &Tokens,
        display_name: &str,
    ) -> Result<SyncApp, TenantError> {
        let call = SyncCall::Instantiate;
        let url = self.beta(&format!(
            "/applicationTemplates/{CLOUD_SYNC_APP_TEMPLATE}/instantiate"
        ));
        let body = json_body(&json!({ "displayName": display_name }));
        let text = self.sync_send(tokens, call, &url, Some(body)).await?;
        let answer: InstantiatedBody = parse(call, &text)?;
        let app_id = answer.application.and_then(|a| a.app_id);
        answer.service_principal.into_app(call, app_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_is_percent_encoded() {
        assert_eq!(
            apps_path(),
            "/servicePrincipals?$filter=applicationTemplateId%20eq%20%271a4721b3-e57f-4451-ae87-ef078703ec94%27"
        );
    }

    #[test]
    fn instantiate_reads_id_else_object_id() {
        let call = SyncCall::Instantiate;
        // Shapes of the instantiate page's beta (objectId) and v1.0 (id)
        // examples, trimmed; the ids are made up.
        let beta = r#"{"application":{"objectId":"cbfe4a9e-5dcd-4a9a-b66c-1b4c82ce2bd8","appId":"39fe0da7-fab4-4a2d-b0f4-8a1d22c1a0a6","displayName":"lab.example.test"},
            "servicePrincipal":{"objectId":"7b351a9c-9a9a-4ae7-a5bf-4c81a4e0e2f1","appId":"39fe0da7-fab4-4a2d-b0f4-8a1d22c1a0a6","displayName":"lab.example.test"}}"#;
        let v1 = r#"{"application":{"id":"a","appId":"app"},"servicePrincipal":{"id":"sp","displayName":"d"}}"#;
        let both = r#"{"servicePrincipal":{"id":"sp-id","objectId":"sp-object","appId":"x"}}"#;
        let app = |text| {
            let body: InstantiatedBody = parse(call, text).unwrap();
            let app_id = body.application.and_then(|a| a.app_id);
            body.service_principal.into_app(call, app_id)
        };
        let beta = app(beta).unwrap();
        assert_eq!(
            beta.service_principal_id,
            "7b351a9c-9a9a-4ae7-a5bf-4c81a4e0e2f1"
        );
        assert_eq!(beta.app_id, "39fe0da7-fab4-4a2d-b0f4-8a1d22c1a0a6");
        assert_eq!(beta.display_name, "lab.example.test");
        let v1 = app(v1).unwrap();
        assert_eq!(
            (v1.service_principal_id.as_str(), v1.app_id.as_str()),
            ("sp", "app")
        );
        assert_eq!(app(both).unwrap().service_principal_id, "sp-id");
        assert!(matches!(
            app(r#"{"servicePrincipal":{"appId":"x"}}"#),
            Err(TenantError::Protocol(_))
        ));
    }
}
