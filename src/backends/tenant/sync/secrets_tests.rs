//! Canonical secret values, reading them back, masked reads, redaction.

use super::*;

fn lab(email: Option<&str>, threshold: Option<u32>, phs: bool) -> SyncSecrets {
    SyncSecrets {
        domain: "lab.example.test".into(),
        password_hash_sync: phs,
        notification_email: email.map(str::to_owned),
        delete_threshold: threshold,
    }
}

/// A GET answer holding `values` under the three keys.
fn answer(values: &[String]) -> String {
    let pairs: Vec<_> = SECRET_KEYS
        .iter()
        .zip(values)
        .map(|(k, v)| serde_json::json!({ "key": k, "value": v }))
        .collect();
    serde_json::json!({ "value": pairs }).to_string()
}

#[test]
fn canonical_values_are_the_interfaces_notes_bytes() {
    let values = canonical_secret_values(&lab(Some("ops@x"), Some(500), true));
    assert_eq!(
        values,
        [
            r#"{"domain":"lab.example.test"}"#,
            r#"{"appKeyScenario":"AD2AADPasswordHash"}"#,
            r#"{"Enabled":true,"Recipients":"ops@x","DeleteThresholdEnabled":true,"DeleteThresholdValue":500}"#,
        ]
    );
    let off = canonical_secret_values(&lab(None, None, false));
    assert_eq!(off[1], r#"{"appKeyScenario":"AD2AADProvisioning"}"#);
    assert_eq!(
        off[2],
        r#"{"Enabled":false,"Recipients":"","DeleteThresholdEnabled":false,"DeleteThresholdValue":500}"#
    );
}

#[test]
fn canonical_values_read_back_equal() {
    for secrets in [
        lab(Some("ops@x"), Some(500), true),
        lab(None, Some(1), false),
        lab(Some("a\"b@x"), None, true),
    ] {
        let read = parse_read(&answer(&canonical_secret_values(&secrets))).unwrap();
        assert_eq!(read.keys, SECRET_KEYS);
        assert_eq!(read.values.as_ref(), Some(&secrets));
    }
}

#[test]
fn masked_or_partial_secrets_list_keys_only() {
    let masked = answer(&["*".into(), "*".into(), "*".into()]);
    let read = parse_read(&masked).unwrap();
    assert_eq!(read.keys, SECRET_KEYS);
    assert_eq!(read.values, None);

    let mut values = canonical_secret_values(&lab(None, Some(500), false));
    // A key missing.
    let two = answer(&values[..2]);
    assert_eq!(parse_read(&two).unwrap().keys, ["Domain", "AppKey"]);
    assert_eq!(parse_read(&two).unwrap().values, None);
    // Not the documented JSON: an unknown scenario, an extra field.
    values[1] = r#"{"appKeyScenario":"Something"}"#.into();
    assert_eq!(parse_read(&answer(&values)).unwrap().values, None);
    values[1] = r#"{"appKeyScenario":"AD2AADProvisioning","x":1}"#.into();
    assert_eq!(parse_read(&answer(&values)).unwrap().values, None);
    // Nothing at all.
    let none = parse_read(r#"{"value":[]}"#).unwrap();
    assert!(none.keys.is_empty() && none.values.is_none());
}

#[test]
fn a_malformed_read_quotes_no_value() {
    let err = parse_read(r#"{"value":[{"key":"Domain","value":{"domain":"secret.example"}}]}"#)
        .unwrap_err();
    assert!(!format!("{err}").contains("secret.example"), "{err}");
}

#[test]
fn errors_are_redacted() {
    let values = canonical_secret_values(&lab(Some("ops@x"), Some(500), true));
    let mut needles = values.to_vec();
    needles.push("ops@x".into());
    let message = format!(
        "HTTP 400: BadRequest: value {} (escaped {}) or ops@x",
        values[0],
        serde_json::to_string(&values[2]).unwrap()
    );
    let redacted = redact(TenantError::Protocol(message), &needles).to_string();
    assert!(!redacted.contains("lab.example.test"), "{redacted}");
    assert!(!redacted.contains("ops@x"), "{redacted}");
    assert!(redacted.contains("<secret>"), "{redacted}");
}
