//! Security identifiers (MS-DTYP 2.4.2): binary form to and from the
//! `S-1-5-21-…` string form.

/// The string form of a binary SID, or an error naming what is wrong.
pub fn to_string(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() < 8 {
        return Err(format!("SID of {} bytes is shorter than 8", bytes.len()));
    }
    let revision = bytes[0];
    if revision != 1 {
        return Err(format!("SID revision {revision} is not 1"));
    }
    let count = usize::from(bytes[1]);
    if count > 15 {
        return Err(format!("SID has {count} sub-authorities; at most 15"));
    }
    let expected = 8 + 4 * count;
    if bytes.len() != expected {
        return Err(format!(
            "SID with {count} sub-authorities must be {expected} bytes, not {}",
            bytes.len()
        ));
    }
    let authority = bytes[2..8]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = format!("S-1-{authority}");
    for chunk in bytes[8..].chunks_exact(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        out.push_str(&format!("-{sub}"));
    }
    Ok(out)
}

/// The binary form of `S-1-…`.
pub fn from_string(text: &str) -> Result<Vec<u8>, String> {
    let mut parts = text.split('-');
    if parts.next() != Some("S") || parts.next() != Some("1") {
        return Err(format!("{text:?} does not start with S-1-"));
    }
    let authority: u64 = parts
        .next()
        .and_then(|a| a.parse().ok())
        .filter(|a| *a < (1u64 << 48))
        .ok_or_else(|| format!("{text:?} has no valid identifier authority"))?;
    let subs = parts
        .map(|p| {
            p.parse::<u32>()
                .map_err(|_| format!("{text:?}: {p:?} is not a sub-authority"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if subs.len() > 15 {
        return Err(format!("{text:?} has more than 15 sub-authorities"));
    }
    let mut out = vec![1u8, u8::try_from(subs.len()).unwrap_or(15)];
    out.extend_from_slice(&authority.to_be_bytes()[2..]);
    for sub in subs {
        out.extend_from_slice(&sub.to_le_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = "S-1-5-21-1111111111-2222222222-3333333333";
        let bin = from_string(text).unwrap();
        assert_eq!(bin.len(), 8 + 16);
        assert_eq!(to_string(&bin).unwrap(), text);
        assert_eq!(
            to_string(&from_string("S-1-1-0").unwrap()).unwrap(),
            "S-1-1-0"
        );
    }

    #[test]
    fn malformed() {
        assert!(to_string(&[1, 2, 0, 0, 0, 0, 0, 5]).is_err());
        assert!(to_string(&[2, 0, 0, 0, 0, 0, 0, 5]).is_err());
        assert!(to_string(&[]).is_err());
        assert!(from_string("S-2-5").is_err());
        assert!(from_string("S-1-x").is_err());
        assert!(from_string("S-1-5-99999999999").is_err());
    }
}
