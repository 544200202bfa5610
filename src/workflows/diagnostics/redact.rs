//! The support bundle's redactor: every file passes through it before it
//! enters the zip. It removes what the agent, its installer, provd and the
//! event logs are known to write that is secret — private keys (PEM), JSON
//! web tokens, `Bearer` credentials, and the value of any key, attribute,
//! JSON member or connection-string part whose name says secret (password,
//! secret, token, device/user code, `AppKey`, `SharedAccessKey`, …) — and
//! counts what it removed, so the manifest can say how much was taken out.
//!
//! Patterns, not a parser: the sources are logs in many shapes. A pattern
//! that misses a shape leaks, so the test plants secrets in each source's
//! real shape (tests/integration/workflows/diagnostics.rs).

use std::sync::LazyLock;

use regex::bytes::{Captures, Regex};

/// A constant pattern: a mistake in one fails every test of this module.
#[expect(
    clippy::expect_used,
    reason = "constant patterns, each compiled by the unit tests"
)]
fn pattern(text: &str) -> Regex {
    Regex::new(text).expect("a valid constant pattern")
}

/// What replaces a secret.
pub const MARK: &str = "[REDACTED]";

/// Key names whose values are secret (case-insensitive, whole name).
const NAMES: &str = r"password|passwd|pwd|secret|client_?secret|app_?key|access_?token|refresh_?token|id_?token|token|device_?code|user_?code|code_?verifier|assertion|shared_?access_?key|account_?key|private_?key|credential|authorization|sync_?secret";

static PEM_KEY: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"(?s)-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END ([A-Z0-9 ]*)PRIVATE KEY-----|\z)",
    )
});
static JWT: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"));
static BEARER: LazyLock<Regex> =
    LazyLock::new(|| pattern(r"(?i)(\b(?:bearer|basic)\s+)([A-Za-z0-9._~+/=-]{6,})"));
/// `"password": "…"` (JSON), the value with its escapes.
static JSON_MEMBER: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r#"(?i)("(?:[A-Za-z_]*_)?(?:{NAMES})"\s*:\s*")((?:[^"\\]|\\.)*)"#
    ))
});
/// `{"key": "AppKey", "value": "…"}` (Graph's secrets) and
/// `<add key="AppKey" value="…"/>` (.config files).
static KEY_VALUE_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r#"(?i)(["']?key["']?\s*[:=]\s*["'](?:{NAMES})["']\s*,?\s*["']?value["']?\s*[:=]\s*["'])([^"']*)"#
    ))
});
/// `<Data Name="Password">…</Data>` (rendered events) and
/// `<password>…</password>` (XML elements).
static XML_ELEMENT: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r#"(?i)(<(?:data\s+name\s*=\s*"(?:[A-Za-z]*_)?(?:{NAMES})"|(?:{NAMES}))\s*>)([^<]*)"#
    ))
});
/// `password=…`, `Password: …`, `SharedAccessKey=…;`, `pwd="…"` (XML
/// attributes, command lines, query strings, connection strings).
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    pattern(&format!(
        r#"(?i)(\b(?:[A-Za-z]+_)?(?:{NAMES})\b\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"'&;,<>]+)"#
    ))
});

/// `text` with every secret it recognises replaced by [`MARK`], and how
/// many it replaced. Bytes need not be UTF-8 (logs in other code pages).
pub fn redact(text: &[u8]) -> (Vec<u8>, usize) {
    let mut count = 0;
    let mut out = PEM_KEY
        .replace_all(text, |_: &Captures| {
            count += 1;
            b"[REDACTED private key]".to_vec()
        })
        .into_owned();
    out = JWT
        .replace_all(&out, |_: &Captures| {
            count += 1;
            MARK.as_bytes().to_vec()
        })
        .into_owned();
    for pattern in [&*BEARER, &*JSON_MEMBER, &*KEY_VALUE_PAIR, &*XML_ELEMENT] {
        out = pattern
            .replace_all(&out, |c: &Captures| keep_name(c, &mut count))
            .into_owned();
    }
    out = ASSIGNMENT
        .replace_all(&out, |c: &Captures| {
            let value = &c[2];
            // Already redacted by an earlier pattern (`Authorization: Bearer
            // [REDACTED]` leaves the scheme name as the value).
            if value.windows(MARK.len()).any(|w| w == MARK.as_bytes())
                || value.eq_ignore_ascii_case(b"bearer")
                || value.eq_ignore_ascii_case(b"basic")
            {
                return c[0].to_vec();
            }
            let quote = match value.first() {
                Some(&q @ (b'"' | b'\'')) => vec![q],
                _ => Vec::new(),
            };
            count += 1;
            [&c[1], &quote[..], MARK.as_bytes(), &quote[..]].concat()
        })
        .into_owned();
    (out, count)
}

/// The name part kept, the value replaced (unless already redacted).
fn keep_name(c: &Captures, count: &mut usize) -> Vec<u8> {
    if &c[2] == MARK.as_bytes() || c[2].is_empty() {
        return c[0].to_vec();
    }
    *count += 1;
    [&c[1], MARK.as_bytes()].concat()
}

/// `text` as UTF-16LE (Windows' own files: .reg exports, some logs), when
/// it has the byte-order mark; the caller redacts it as UTF-8 and writes
/// it back as UTF-8 (the bundle's manifest says so).
pub fn utf16le_to_utf8(bytes: &[u8]) -> Option<Vec<u8>> {
    let body = bytes.strip_prefix(&[0xFF, 0xFE])?;
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    Some(String::from_utf16_lossy(&units).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> (String, usize) {
        let (out, n) = redact(text.as_bytes());
        (String::from_utf8(out).unwrap(), n)
    }

    #[test]
    fn each_shape_loses_its_secret_and_keeps_its_name() {
        for (input, secret, kept) in [
            (
                r#"{"password": "hunter2\"x"}"#,
                "hunter2",
                r#""password": "[REDACTED]"#,
            ),
            (r#"{"client_secret":"s3cr3t"}"#, "s3cr3t", "client_secret"),
            (
                r#"{"key":"AppKey","value":"QUJD=="}"#,
                "QUJD",
                r#""key":"AppKey""#,
            ),
            (
                r#"<add key="AppKey" value="QUJD==" />"#,
                "QUJD",
                r#"key="AppKey""#,
            ),
            (
                "Authorization: Bearer abc.def-ghi_jkl",
                "abc.def",
                "Bearer [REDACTED]",
            ),
            ("url?access_token=tok123&x=1", "tok123", "&x=1"),
            (
                "Endpoint=sb://x/;SharedAccessKeyName=n;SharedAccessKey=K3y=;",
                "K3y",
                "SharedAccessKeyName=n",
            ),
            ("Password = 'p@ss word'", "p@ss", "Password = '[REDACTED]'"),
            (
                "device_code: GAQABAAEAAA",
                "GAQABAAEAAA",
                "device_code: [REDACTED]",
            ),
            (
                "sign in with code user_code=FGH3KLMNP",
                "FGH3KLMNP",
                "user_code=",
            ),
            (
                "id eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl end",
                "eyJzdWIiOi",
                "id [REDACTED] end",
            ),
            (
                r#"<Data Name="Password">P4ss</Data>"#,
                "P4ss",
                r#"<Data Name="Password">[REDACTED]</Data>"#,
            ),
            (
                "<AppKey>QUJD</AppKey>",
                "QUJD",
                "<AppKey>[REDACTED]</AppKey>",
            ),
        ] {
            let (out, n) = r(input);
            assert!(!out.contains(secret), "{input} -> {out}");
            assert!(out.contains(kept), "{input} -> {out}");
            assert!(n >= 1, "{input}");
        }
    }

    #[test]
    fn a_private_key_goes_whole_even_when_cut_off() {
        let pem =
            "a\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\nAAAA\n-----END RSA PRIVATE KEY-----\nb";
        assert_eq!(r(pem), ("a\n[REDACTED private key]\nb".into(), 1));
        let cut = "x -----BEGIN PRIVATE KEY-----\nMIIE";
        assert_eq!(r(cut).0, "x [REDACTED private key]");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        for text in [
            "Password writeback enabled for contoso.com",
            "the token endpoint answered 200",
            "<add key=\"LogLevel\" value=\"Verbose\" />",
            "{\"passwordPolicy\": 3}",
        ] {
            assert_eq!(r(text), (text.to_owned(), 0), "{text}");
        }
    }

    #[test]
    fn utf16_files_are_read_as_text() {
        let wide: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("pwd=x".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let text = utf16le_to_utf8(&wide).unwrap();
        assert_eq!(redact(&text).0, b"pwd=[REDACTED]");
        assert_eq!(utf16le_to_utf8(b"plain"), None);
    }
}
