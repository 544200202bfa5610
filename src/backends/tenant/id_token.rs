//! Who signed in, read from the token answer's `id_token`: the tenant id
//! (`tid`) and the user's name (`preferred_username`), claims of
//! <https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference>.
//!
//! The token's signature is NOT verified. Microsoft's token-endpoint
//! documentation says a client may decode the id_token it got over TLS
//! straight from the token endpoint to learn who signed in, but "shouldn't
//! rely on them for any authorization or security boundaries"
//! (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token>).
//! provd uses these values only as inputs it passes on (the agent module's
//! `-TenantId` and `-UserPrincipalName`, the tenant in messages), never to
//! decide whether something is allowed: the tenant and Graph decide that
//! with the access token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::TenantError;

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
}

/// (`tid`, `preferred_username`) of a JWT-shaped id_token.
pub(super) fn signed_in(id_token: &str) -> Result<(Option<String>, Option<String>), TenantError> {
    let bad = |why: &str| TenantError::Protocol(format!("id_token: {why}"));
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not three dot-separated parts"));
    };
    // Base64url without padding (RFC 7515 §2); some encoders pad anyway.
    let json = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("the claims are not base64url"))?;
    let claims: Claims =
        serde_json::from_slice(&json).map_err(|_| bad("the claims are not a JSON object"))?;
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok((non_empty(claims.tid), non_empty(claims.preferred_username)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn reads_the_tenant_and_the_user() {
        let (tid, upn) = signed_in(&token(
            r#"{"tid":"t-1","preferred_username":"admin@contoso.example","aud":"c"}"#,
        ))
        .unwrap();
        assert_eq!(tid.as_deref(), Some("t-1"));
        assert_eq!(upn.as_deref(), Some("admin@contoso.example"));
        assert_eq!(signed_in(&token("{}")).unwrap(), (None, None));
    }

    #[test]
    fn a_malformed_token_is_a_protocol_error_without_its_text() {
        for bad in ["", "a.b", "a.!!!.c", &token("[1]"), "a.b.c.d"] {
            match signed_in(bad) {
                Err(TenantError::Protocol(m)) => assert!(m.starts_with("id_token: "), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
