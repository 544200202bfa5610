//! The fake's sign-in: device codes approved at once, tokens per client
//! and scope with an id_token's `tid`/`preferred_username` already read,
//! refresh tokens that work only for the client they were issued to, and
//! (client, scope) pairs the tenant refuses, as Entra refuses a client a
//! resource it has no consent for (AADSTS65001).

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::FakeTenant;
use crate::backends::tenant::{ClientScope, DeviceCode, TenantError, Tokens};

/// The tenant id the fake's tokens name.
pub const FAKE_TENANT_ID: &str = "00000000-0000-4000-8000-0000000000c0";

/// The user who signs in to the fake.
pub const FAKE_USER: &str = "admin@contoso.example";

impl FakeTenant {
    /// The tenant gives `client_id` no token for `scope`.
    pub fn refuse(&self, client_id: &str, scope: &str) {
        self.lock().refused.push(ClientScope {
            client_id: client_id.into(),
            scope: scope.into(),
        });
    }

    /// Every device code asked for, in order.
    pub fn device_codes(&self) -> Vec<ClientScope> {
        self.lock().device_codes.clone()
    }

    /// Every refresh asked for, in order (refused ones too).
    pub fn refreshes(&self) -> Vec<ClientScope> {
        self.lock().refreshes.clone()
    }

    /// Every device code, access token and refresh token handed out: what
    /// must never show up in events, logs or the store.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    pub(super) fn device_code(&self, client: &ClientScope) -> DeviceCode {
        let mut s = self.lock();
        s.device_codes.push(client.clone());
        let secret = format!("fake-device-code-{}", s.device_codes.len());
        s.issued.push(secret.clone());
        DeviceCode::new(
            "FAKE-CODE".into(),
            "https://login.fake.invalid/device".into(),
            String::new(),
            Duration::from_secs(900),
            Duration::from_millis(10),
            client.clone(),
            SecretString::from(secret),
        )
    }

    /// A refresh token of `client`'s is spent on a refresh: fine when it was
    /// issued to that client.
    pub(super) fn redeem(
        &self,
        client: &ClientScope,
        refresh_token: &SecretString,
    ) -> Result<(), TenantError> {
        let mut s = self.lock();
        s.refreshes.push(client.clone());
        match s.refresh_tokens.get(refresh_token.expose_secret()) {
            Some(owner) if *owner == client.client_id => Ok(()),
            _ => Err(TenantError::Unauthorized(
                "the refresh token was refused: unknown, or issued to another client".into(),
            )),
        }
    }

    /// Tokens for `client`, unless the tenant refuses it that scope.
    pub(super) fn issue(&self, client: &ClientScope) -> Result<Tokens, TenantError> {
        let mut s = self.lock();
        if s.refused.contains(client) {
            return Err(TenantError::ConsentRequired {
                client_id: client.client_id.clone(),
                scope: client.scope.clone(),
                message: format!(
                    "AADSTS65001: The user or administrator has not consented to use the \
                     application with ID '{}'.",
                    client.client_id
                ),
            });
        }
        let n = s.issued.len() + 1;
        let access = format!("fake-access-token-{n}");
        let refresh = format!("fake-refresh-token-{n}");
        s.issued.extend([access.clone(), refresh.clone()]);
        s.refresh_tokens
            .insert(refresh.clone(), client.client_id.clone());
        Ok(Tokens {
            access: SecretString::from(access),
            refresh: Some(SecretString::from(refresh)),
            expires_at: Instant::now() + Duration::from_secs(3600),
            tenant_id: Some(FAKE_TENANT_ID.into()),
            user_principal_name: Some(FAKE_USER.into()),
        })
    }
}
