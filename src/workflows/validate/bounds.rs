//! Lengths and counts: what a request may make provd store, echo or search
//! with. Each limit is documented on its proto field.

use crate::workflows::FieldViolation;

/// DNs: at most this many bytes.
pub const MAX_DN_LEN: usize = 2048;
/// sAMAccountName: the schema's limit (rangeUpper), which groups may use.
pub const MAX_SAM_LEN: usize = 256;
/// sAMAccountName of a user or computer account: the SAM's limit.
pub const MAX_COMPUTER_SAM_LEN: usize = 20;
/// A list of enum values (duplicates collapse, so more is never needed).
pub const MAX_ENUM_LIST: usize = 16;
/// A list of names: domains, principals, organizational units.
pub const MAX_NAME_LIST: usize = 100;
pub const MAX_ETAG_LEN: usize = 128;

/// An etag as provd issues them: at most 128 bytes of printable ASCII.
/// Checked before anything echoes it.
pub(crate) fn etag(field: &str, value: &str) -> Result<(), FieldViolation> {
    if value.len() > MAX_ETAG_LEN || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldViolation::new(
            field,
            format!(
                "must be at most {MAX_ETAG_LEN} printable ASCII characters, as GetPriority returns it"
            ),
        ));
    }
    Ok(())
}

/// A repeated field of at most `max` entries.
pub(crate) fn at_most<T>(field: &str, list: &[T], max: usize) -> Result<(), FieldViolation> {
    if list.len() > max {
        return Err(FieldViolation::new(field, format!("at most {max} entries")));
    }
    Ok(())
}

/// `InstallRequest.source` (and `AgentSpec.source`), the URI in bytes:
/// Linux's PATH_MAX, far above the 260 of Windows' MAX_PATH installers keep
/// to. The operation's description carries it.
pub const MAX_SOURCE_LEN: usize = 4096;

/// `ListOperationsRequest.page_token`, in bytes; the tokens provd issues
/// are under 64.
pub const MAX_PAGE_TOKEN_LEN: usize = 128;

/// `ListOperationsRequest.initiator`: RFC 5280's bound on a common name,
/// in characters.
pub const MAX_INITIATOR_CHARS: usize = 64;

/// The seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range
/// of google.protobuf.Timestamp.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// A google.protobuf.Timestamp as milliseconds since the epoch, rounded up
/// (a bound inside a millisecond counts from the next one).
pub(crate) fn timestamp_ms(field: &str, seconds: i64, nanos: i32) -> Result<i64, FieldViolation> {
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(FieldViolation::new(
            field,
            "nanos must be from 0 to 999999999",
        ));
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds) {
        return Err(FieldViolation::new(
            field,
            "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z",
        ));
    }
    Ok(seconds * 1000 + (i64::from(nanos) + 999_999) / 1_000_000)
}

/// `SetPasswordWritebackRequest.domains`: at most this many names.
pub const MAX_WRITEBACK_DOMAINS: usize = 64;

/// A string field of at most `max` bytes.
pub(crate) fn max_len(field: &str, value: &str, max: usize) -> Result<(), FieldViolation> {
    if value.len() > max {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {max} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_lists() {
        assert!(etag("e", "").is_ok());
        assert!(etag("e", "g42").is_ok());
        assert!(etag("e", &"g".repeat(128)).is_ok());
        for bad in ["g".repeat(129), "g 1".into(), "g\n".into(), "é".into()] {
            let err = etag("e", &bad).unwrap_err();
            assert!(!err.description.contains(&bad));
        }
        assert!(at_most("l", &[1; 16], MAX_ENUM_LIST).is_ok());
        assert_eq!(
            at_most("l", &[1; 17], MAX_ENUM_LIST).unwrap_err().field,
            "l"
        );
    }

    #[test]
    fn lengths_are_bytes_and_inclusive() {
        assert!(max_len("f", &"a".repeat(4096), MAX_SOURCE_LEN).is_ok());
        let err = max_len("f", &"a".repeat(4097), MAX_SOURCE_LEN).unwrap_err();
        assert_eq!(err.field, "f");
        assert!(err.description.contains("4096"), "{}", err.description);
        // 2 bytes a character: 2049 characters are 4098 bytes.
        assert!(max_len("f", &"é".repeat(2049), MAX_SOURCE_LEN).is_err());
    }

    #[test]
    fn timestamps_round_up_to_the_millisecond_within_the_protobuf_range() {
        assert_eq!(timestamp_ms("t", 1, 0), Ok(1000));
        assert_eq!(timestamp_ms("t", 1, 1), Ok(1001));
        assert_eq!(timestamp_ms("t", 1, 999_999_999), Ok(2000));
        assert_eq!(timestamp_ms("t", -1, 500_000_000), Ok(-500));
        assert!(timestamp_ms("t", MAX_TIMESTAMP_SECONDS, 999_999_999).is_ok());
        for (s, n) in [
            (0, -1),
            (0, 1_000_000_000),
            (MAX_TIMESTAMP_SECONDS + 1, 0),
            (MIN_TIMESTAMP_SECONDS - 1, 0),
            (i64::MAX, 0),
        ] {
            assert_eq!(timestamp_ms("t", s, n).unwrap_err().field, "t", "{s} {n}");
        }
    }
}
