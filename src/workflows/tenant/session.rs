//! The tenant session: what one sign-in gives provd, kept in memory only.
//!
//! provd needs tokens for two resources: the connector registration
//! service (for the agent's module, `Connect-AADCloudSyncAzureAD
//! -AccessToken`) and Microsoft Graph (provd's own reads). The operator
//! signs in once, by device code, for the registration client and scope;
//! Graph then comes from the refresh grant with that client's refresh
//! token, which is bound to user and client but not to a resource
//! (<https://learn.microsoft.com/entra/identity-platform/refresh-tokens>).
//! Whether the tenant lets the registration client have Graph is not
//! documented for this client: when it refuses (consent), provd says so in
//! a WARNING event and asks for a second device code, for the Graph client
//! (`tenant.client_id`) — never a silent failure.
//!
//! Each resource's tokens are refreshed before they expire with the newest
//! refresh token of the client that holds them (an answer may replace it).
//! A refused refresh ends the session: the operator signs in again. Tokens
//! are never written to the store, an event, a log line or an error.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::TenantWorkflows;
use crate::backends::store::EventKind;
use crate::backends::tenant::{ClientScope, TenantError, Tokens};
use crate::workflows::Error;
use crate::workflows::operations::{NewEvent, Progress};

/// Tokens this close to expiry are refreshed before use.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

const STEP: &str = "sign-in";

/// The clients and scopes provd signs in with (`[tenant]`).
#[derive(Debug, Clone)]
pub struct SignInClients {
    /// The device code's client and the registration scope.
    pub registration: ClientScope,
    /// The Graph scope, first asked of the registration client; this
    /// client signs in only when the tenant refuses that.
    pub graph: ClientScope,
}

/// Which resource's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    Registration,
    Graph,
}

/// One resource's tokens and the client and scope they came from.
struct Held {
    client: ClientScope,
    tokens: Tokens,
}

/// Both resources' tokens.
pub(super) struct Session {
    registration: Held,
    graph: Held,
    /// The newest refresh token of each client.
    refresh: HashMap<String, SecretString>,
}

impl Session {
    /// `graph` came after `registration`: its refresh token is the newer.
    fn new(registration: Held, graph: Held) -> Self {
        let mut refresh = HashMap::new();
        for held in [&registration, &graph] {
            if let Some(token) = &held.tokens.refresh {
                refresh.insert(held.client.client_id.clone(), token.clone());
            }
        }
        Self {
            registration,
            graph,
            refresh,
        }
    }

    fn held(&mut self, audience: Audience) -> &mut Held {
        match audience {
            Audience::Registration => &mut self.registration,
            Audience::Graph => &mut self.graph,
        }
    }

    /// Refreshed tokens; an answer without an id_token keeps who signed in.
    fn store(&mut self, audience: Audience, mut fresh: Tokens) {
        let held = self.held(audience);
        if let Some(token) = &fresh.refresh {
            let client = held.client.client_id.clone();
            self.refresh.insert(client, token.clone());
        }
        let held = self.held(audience);
        fresh.tenant_id = fresh.tenant_id.or(held.tokens.tenant_id.take());
        fresh.user_principal_name = fresh
            .user_principal_name
            .or(held.tokens.user_principal_name.take());
        held.tokens = fresh;
    }

    /// The Graph token's expiry, and whether the session can get another.
    fn graph_status(&self) -> GraphStatus {
        GraphStatus {
            expires_at: self.graph.tokens.expires_at,
            refreshable: self.refresh.contains_key(&self.graph.client.client_id),
        }
    }
}

/// What GetAgent reports of a session: no token, only when and whether.
#[derive(Debug, Clone, Copy)]
pub(super) struct GraphStatus {
    pub(super) expires_at: Instant,
    pub(super) refreshable: bool,
}

impl TenantWorkflows {
    /// Valid Graph tokens, refreshed when close to expiry; `None` when there
    /// is no session (never signed in, refused, or provd restarted: tokens
    /// are never written down).
    pub async fn tokens(&self) -> Result<Option<Tokens>, Error> {
        self.audience_tokens(Audience::Graph).await
    }

    /// Valid tokens for the registration service, as [`Self::tokens`].
    pub async fn registration_tokens(&self) -> Result<Option<Tokens>, Error> {
        self.audience_tokens(Audience::Registration).await
    }

    /// What GetAgent will report, set under the session's lock.
    fn publish(&self, session: Option<&Session>) {
        *self
            .graph_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            session.map(Session::graph_status);
    }

    async fn audience_tokens(&self, audience: Audience) -> Result<Option<Tokens>, Error> {
        let mut guard = self.session.lock().await;
        let Some(session) = guard.as_mut() else {
            return Ok(None);
        };
        let held = session.held(audience);
        if held.tokens.expires_at > Instant::now() + REFRESH_MARGIN {
            return Ok(Some(held.tokens.clone()));
        }
        let client = held.client.clone();
        let Some(refresh) = session.refresh.get(&client.client_id).cloned() else {
            *guard = None;
            self.publish(None);
            return Ok(None);
        };
        match self.tenant.refresh(&client, &refresh).await {
            Ok(fresh) => {
                tracing::info!(?audience, "refreshed a tenant access token");
                session.store(audience, fresh);
                self.publish(Some(session));
                Ok(Some(session.held(audience).tokens.clone()))
            }
            Err(e @ (TenantError::Unauthorized(_) | TenantError::ConsentRequired { .. })) => {
                tracing::warn!(reason = %e, "the refresh was refused; sign in again");
                *guard = None;
                self.publish(None);
                Ok(None)
            }
            Err(e) => Err(Error::from(e)),
        }
    }

    /// The `sign-in` step: skipped while a session is valid, otherwise a
    /// device-code sign-in relayed to the operator. Returns the Graph
    /// tokens (what today's callers use).
    pub async fn ensure_signed_in(&self, progress: &Progress) -> Result<Tokens, Error> {
        progress
            .step_started(
                STEP,
                format!("signing in to tenant {}", self.tenant.tenant()),
            )
            .await?;
        if let Some(tokens) = self.tokens().await? {
            progress
                .step_skipped(STEP, "already signed in; the session is still valid")
                .await?;
            return Ok(tokens);
        }
        let session = self.sign_in_both(progress).await?;
        let graph = session.graph.tokens.clone();
        let who = match (&graph.user_principal_name, &graph.tenant_id) {
            (Some(user), Some(tenant)) => format!(" as {user} (tenant {tenant})"),
            _ => String::new(),
        };
        let mut guard = self.session.lock().await;
        self.publish(Some(&session));
        *guard = Some(session);
        drop(guard);
        progress
            .step_succeeded(
                STEP,
                format!(
                    "signed in{who} for the registration service and Graph; the session is \
                     kept in memory only"
                ),
            )
            .await?;
        Ok(graph)
    }

    /// One device code for the registration client, then Graph through the
    /// refresh grant, or a second device code when the tenant refuses it.
    async fn sign_in_both(&self, progress: &Progress) -> Result<Session, Error> {
        let clients = &self.clients;
        let registration = Held {
            client: clients.registration.clone(),
            tokens: self.device_code(progress, &clients.registration).await?,
        };
        let via_registration = ClientScope {
            client_id: clients.registration.client_id.clone(),
            scope: clients.graph.scope.clone(),
        };
        let why = match &registration.tokens.refresh {
            None => "the tenant issued no refresh token".to_owned(),
            Some(refresh) => match self.tenant.refresh(&via_registration, refresh).await {
                Ok(tokens) => {
                    let graph = Held {
                        client: via_registration,
                        tokens,
                    };
                    return Ok(Session::new(registration, graph));
                }
                // Another client may have Graph; the same one would be
                // refused again.
                Err(TenantError::ConsentRequired { message, .. })
                    if clients.graph.client_id != via_registration.client_id =>
                {
                    message
                }
                Err(e) => return Err(Error::from(e)),
            },
        };
        progress
            .warning(
                STEP,
                format!(
                    "no Graph token for client {} (tenant.registration_client_id): {why}. \
                     Sign in once more, for client {} (tenant.client_id)",
                    via_registration.client_id, clients.graph.client_id
                ),
            )
            .await?;
        let graph = Held {
            client: clients.graph.clone(),
            tokens: self.device_code(progress, &clients.graph).await?,
        };
        Ok(Session::new(registration, graph))
    }

    /// A device code for `client`, relayed as ACTION_REQUIRED, then the
    /// wait (cancellable) until the operator approves, declines, or the
    /// code expires.
    async fn device_code(
        &self,
        progress: &Progress,
        client: &ClientScope,
    ) -> Result<Tokens, Error> {
        let code = self
            .tenant
            .start_device_code(client)
            .await
            .map_err(Error::from)?;
        let expires_in = code.expires_at.saturating_duration_since(Instant::now());
        let message = if code.message.is_empty() {
            format!(
                "To sign in, use a web browser to open the page {} and enter the code {} to \
                 authenticate.",
                code.verification_uri, code.user_code
            )
        } else {
            code.message.clone()
        };
        progress
            .emit(NewEvent {
                step: STEP.into(),
                kind: Some(EventKind::ActionRequired),
                message,
                percent: 0,
                attributes: BTreeMap::from([
                    ("verification_uri".into(), code.verification_uri.clone()),
                    ("user_code".into(), code.user_code.clone()),
                    ("expires_in_secs".into(), expires_in.as_secs().to_string()),
                    ("client_id".into(), client.client_id.clone()),
                    ("scope".into(), client.scope.clone()),
                ]),
            })
            .await?;
        self.tenant
            .wait_for_tokens(&code, progress.cancellation())
            .await
            .map_err(Error::from)
    }
}
