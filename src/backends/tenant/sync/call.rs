//! What every cloud sync request shares: its method, whether it may be sent
//! again, its URL under `{graph}/beta`, JSON in and out, and the paging of
//! Graph's collections (`@odata.nextLink`,
//! <https://learn.microsoft.com/graph/paging>).

use bytes::Bytes;
use percent_encoding::{PercentEncode, utf8_percent_encode};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::graph::PATH_SEGMENT;
use super::super::http::HttpTenant;
use super::super::send::{Idempotent, Request};
use super::super::{TenantError, Tokens};
use super::SyncCall;

impl SyncCall {
    pub(super) fn method(self) -> Method {
        match self {
            Self::ReadOrganization
            | Self::ListApps
            | Self::ListJobs
            | Self::ReadSecrets
            | Self::ReadSchema => Method::GET,
            Self::EnableSync => Method::PATCH,
            Self::Instantiate
            | Self::CreateJob
            | Self::StartJob
            | Self::PauseJob
            | Self::RestartJob
            | Self::AssignAgent => Method::POST,
            Self::PutSecrets | Self::PutSchema => Method::PUT,
            Self::RemoveAgent | Self::DeleteApp => Method::DELETE,
        }
    }

    /// Whether a request that Graph may have carried out can be sent again.
    pub(super) fn idempotent(self) -> Idempotent {
        match self {
            // Each success makes a new application or job.
            Self::Instantiate | Self::CreateJob => Idempotent::No,
            // A second link is refused (400 [I]): a resend that follows a
            // lost success would report a failure.
            Self::AssignAgent => Idempotent::No,
            // Reads, whole replacements, setting a flag, and state changes
            // whose second application leaves the same state (a restart
            // resets what the first one reset).
            Self::ReadOrganization
            | Self::EnableSync
            | Self::ListApps
            | Self::ListJobs
            | Self::StartJob
            | Self::PauseJob
            | Self::RestartJob
            | Self::ReadSecrets
            | Self::PutSecrets
            | Self::ReadSchema
            | Self::PutSchema
            | Self::RemoveAgent
            | Self::DeleteApp => Idempotent::Yes,
        }
    }
}

/// One URL path segment (an id Graph gave us), escaped.
pub(super) fn segment(id: &str) -> PercentEncode<'_> {
    utf8_percent_encode(id, PATH_SEGMENT)
}

/// A request body as compact JSON.
pub(super) fn json_body<T: Serialize>(body: &T) -> Bytes {
    // Serializing plain structs and `Value`s to memory cannot fail.
    Bytes::from(serde_json::to_vec(body).unwrap_or_default())
}

/// The answer of `call` in the documented shape, else `Protocol` naming the
/// call and serde's reason.
pub(super) fn parse<T: DeserializeOwned>(call: SyncCall, text: &str) -> Result<T, TenantError> {
    serde_json::from_str(text)
        .map_err(|e| TenantError::Protocol(format!("{}: {e}", call.request())))
}

/// One page of a Graph collection.
#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

impl HttpTenant {
    /// `{graph}/beta{path}`.
    pub(super) fn beta(&self, path: &str) -> String {
        format!("{}/beta{path}", self.endpoints.graph.trim_end_matches('/'))
    }

    /// Sends `call` to `url` with its method, resend rule and 403 text.
    pub(super) async fn sync_send(
        &self,
        tokens: &Tokens,
        call: SyncCall,
        url: &str,
        body: Option<Bytes>,
    ) -> Result<String, TenantError> {
        let request = Request {
            method: call.method(),
            url,
            body,
            idempotent: call.idempotent(),
            call: Some(call),
        };
        self.send(tokens, request).await
    }

    /// Every item of a collection, following `@odata.nextLink` (only to
    /// this Graph: the link receives the token).
    pub(super) async fn sync_list<T: DeserializeOwned>(
        &self,
        tokens: &Tokens,
        call: SyncCall,
        path: &str,
    ) -> Result<Vec<T>, TenantError> {
        let graph = format!("{}/", self.endpoints.graph.trim_end_matches('/'));
        let mut url = self.beta(path);
        let mut items = Vec::new();
        loop {
            let text = self.sync_send(tokens, call, &url, None).await?;
            let page: Page<T> = parse(call, &text)?;
            items.extend(page.value);
            match page.next_link {
                None => return Ok(items),
                Some(next) if next.starts_with(&graph) => url = next,
                Some(next) => {
                    return Err(TenantError::Protocol(format!(
                        "{}: the next page is not on {graph}: {next}",
                        call.request()
                    )));
                }
            }
        }
    }
}
