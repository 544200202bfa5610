//! LDAP GeneralizedTime, the way AD writes times in text attributes
//! (`currentTime`, `whenCreated`, ...): read by the LDAP backend's probes and
//! by workflows from plain entries alike.

use std::time::{Duration, SystemTime};

/// `20261127093015.0Z` (LDAP GeneralizedTime, UTC) to a time.
pub fn parse_generalized_time(value: &str) -> Option<SystemTime> {
    let digits = value.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0..4)?).ok()?,
        month,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
    )
    .ok()?;
    let ts = time::PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp();
    u64::try_from(ts)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time() {
        let t = parse_generalized_time("20261127093015.0Z").unwrap();
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_795_771_815);
        assert!(parse_generalized_time("2026").is_none());
        assert!(parse_generalized_time("2026131709301Z").is_none());
    }
}
