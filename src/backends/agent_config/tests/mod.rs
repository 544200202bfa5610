//! The platform-neutral half of the agent module backend, on any OS: the
//! stdin/stdout protocol, the transcript's redaction and caps, the
//! classification of PowerShell's and the module's texts, and the mapping
//! of each error to the workflow error and the gRPC status clients see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod classify;
mod errors;
mod protocol;
mod transcript;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use super::TenantConnection;
use super::protocol::Request;

/// A password no script may ever interpret: quotes, PowerShell
/// subexpressions, a newline, a non-ASCII letter.
pub(super) const PASSWORD: &str = "'; Start-Process calc; $(whoami) `\n\"Pässwörd\\";
/// Token-shaped (a JWT's three base64url parts).
pub(super) const TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3Byb3h5LmNsb3Vkd2ViYXBwcHJveHkubmV0L3JlZ2lzdGVyYXBwIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";

pub(super) fn connection() -> TenantConnection {
    TenantConnection {
        access_token: SecretString::from(TOKEN),
        tenant_id: "00000000-0000-0000-0000-0000000000aa".into(),
        user_principal_name: "admin@contoso.example".into(),
    }
}

/// The JSON a script reads from `request`'s stdin.
pub(super) fn sent(request: &Request) -> serde_json::Value {
    let bytes = STANDARD.decode(request.stdin().expose_secret()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A stdout result line as a script writes it.
pub(super) fn result_line(json: &serde_json::Value) -> Vec<u8> {
    format!("PROVD-RESULT {}", STANDARD.encode(json.to_string())).into_bytes()
}
