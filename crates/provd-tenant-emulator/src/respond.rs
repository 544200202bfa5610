//! Response shapes shared by the handlers: the Microsoft Graph error body,
//! the OAuth 2.0 error body, and small parsers for form and query strings
//! that never panic on bad input.
//!
//! Graph error shape: <https://learn.microsoft.com/graph/errors>.
//! OAuth error shape: RFC 6749 §5.2 and
//! <https://learn.microsoft.com/entra/identity-platform/reference-error-codes>.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// `{"error":{"code","message","innerError":{...}}}` with `status`.
pub fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": request_id,
            }
        }
    });
    (status, Json(body)).into_response()
}

/// The Graph error code conventionally sent with an HTTP status.
pub fn graph_code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BadRequest",
        401 => "InvalidAuthenticationToken",
        403 => "Authorization_RequestDenied",
        404 => "Request_ResourceNotFound",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "UnknownError",
    }
}

/// `{"error","error_description"}` (RFC 6749 §5.2), status 400 unless
/// stated otherwise.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": description,
        "timestamp": time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        "correlation_id": uuid::Uuid::new_v4().to_string(),
    });
    let mut response = (status, Json(body)).into_response();
    // RFC 6749 §5.1/§5.2: token responses must not be cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A Graph error not yet rendered; small, so `Result<_, GraphError>` stays
/// cheap to return.
#[derive(Debug)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        graph_error(self.status, self.code, &self.message)
    }
}

/// 404 `Request_ResourceNotFound` in Graph's wording, naming the kind of
/// object (`what`) for the reader of a lab log.
pub fn not_found(what: &str, id: &str) -> GraphError {
    GraphError {
        status: StatusCode::NOT_FOUND,
        code: "Request_ResourceNotFound",
        message: format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present ({what})."
        ),
    }
}

/// A 400 `BadRequest` with `message`.
pub fn bad_request(message: impl Into<String>) -> GraphError {
    GraphError {
        status: StatusCode::BAD_REQUEST,
        code: "BadRequest",
        message: message.into(),
    }
}

/// Parses a JSON body, answering a Graph-style 400 when it is malformed.
pub fn graph_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, GraphError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("Invalid JSON body: {e}")))
}

/// Decodes `application/x-www-form-urlencoded` text (also query strings).
/// Malformed percent escapes are kept literally.
pub fn parse_urlencoded(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// The first value of `key` in decoded pairs.
pub fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        let pairs = parse_urlencoded("a=1+2&%24expand=agentGroups&bad=%zz&tail=%4&x");
        assert_eq!(field(&pairs, "a"), Some("1 2"));
        assert_eq!(field(&pairs, "$expand"), Some("agentGroups"));
        assert_eq!(field(&pairs, "bad"), Some("%zz"));
        assert_eq!(field(&pairs, "tail"), Some("%4"));
        assert_eq!(field(&pairs, "x"), Some(""));
    }
}
