//! Security identifiers (MS-DTYP 2.4.2): the binary form, the `S-1-…` string
//! form and the SDDL aliases (MS-DTYP 2.4.2.4, as Samba 4.17 knows them).

use std::fmt;
use std::str::FromStr;

use super::error::{SdError, SddlProblem};

/// At most this many sub-authorities (MS-DTYP 2.4.2.2).
pub const MAX_SUB_AUTHORITIES: usize = 15;

/// Identifier authorities are 48-bit.
const MAX_AUTHORITY: u64 = (1 << 48) - 1;

/// A SID of revision 1 with at most 15 sub-authorities.
///
/// Constructed only through checked paths, so every value is valid. It is
/// `Copy` (no heap): the sub-authorities live in a fixed array whose unused
/// slots are zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    authority: [u8; 6],
    count: u8,
    subs: [u32; MAX_SUB_AUTHORITIES],
}

impl Sid {
    /// A SID from its identifier authority (< 2^48) and sub-authorities.
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Result<Sid, SdError> {
        if authority > MAX_AUTHORITY {
            return Err(SdError::Encode {
                what: "SID".into(),
                reason: format!("identifier authority {authority} does not fit in 48 bits"),
            });
        }
        if sub_authorities.len() > MAX_SUB_AUTHORITIES {
            return Err(SdError::Encode {
                what: "SID".into(),
                reason: format!(
                    "{} sub-authorities, at most {MAX_SUB_AUTHORITIES} are allowed",
                    sub_authorities.len()
                ),
            });
        }
        let mut subs = [0u32; MAX_SUB_AUTHORITIES];
        for (slot, value) in subs.iter_mut().zip(sub_authorities) {
            *slot = *value;
        }
        let be = authority.to_be_bytes();
        Ok(Sid {
            authority: [be[2], be[3], be[4], be[5], be[6], be[7]],
            count: u8::try_from(sub_authorities.len()).unwrap_or(0),
            subs,
        })
    }

    /// The 48-bit identifier authority.
    pub fn authority(&self) -> u64 {
        self.authority
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }

    /// The sub-authorities, in order.
    pub fn sub_authorities(&self) -> &[u32] {
        self.subs.get(..usize::from(self.count)).unwrap_or(&[])
    }

    /// The last sub-authority (the RID for account SIDs).
    pub fn rid(&self) -> Option<u32> {
        self.sub_authorities().last().copied()
    }

    /// This SID with `rid` appended (e.g. domain SID + 512 = Domain Admins).
    pub fn with_rid(&self, rid: u32) -> Result<Sid, SdError> {
        let mut subs = self.sub_authorities().to_vec();
        subs.push(rid);
        Sid::new(self.authority(), &subs)
    }

    /// `Some(rid)` when this SID is `domain` plus exactly one RID.
    pub fn rid_in(&self, domain: &Sid) -> Option<u32> {
        let subs = self.sub_authorities();
        let (rid, prefix) = subs.split_last()?;
        (self.authority == domain.authority && prefix == domain.sub_authorities()).then_some(*rid)
    }

    /// Length of the binary form: 8 + 4 × sub-authority count.
    pub fn encoded_len(&self) -> usize {
        8 + 4 * usize::from(self.count)
    }

    /// The binary form (MS-DTYP 2.4.2.2).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write(&mut out);
        out
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.push(self.count);
        out.extend_from_slice(&self.authority);
        for sub in self.sub_authorities() {
            out.extend_from_slice(&sub.to_le_bytes());
        }
    }

    /// Parses a binary SID that fills `bytes` exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Sid, SdError> {
        let sid = Sid::decode(bytes, 0, bytes.len(), "SID")?;
        let extra = bytes.len().saturating_sub(sid.encoded_len());
        if extra > 0 {
            return Err(SdError::TrailingBytes {
                what: "SID".into(),
                offset: sid.encoded_len(),
                extra,
            });
        }
        Ok(sid)
    }

    /// Parses a binary SID at `offset` that must end at or before `end`
    /// (`end <= buf.len()`); errors name `what` and absolute offsets.
    pub(crate) fn decode(
        buf: &[u8],
        offset: usize,
        end: usize,
        what: &str,
    ) -> Result<Sid, SdError> {
        let end = end.min(buf.len());
        let have = end.saturating_sub(offset);
        let truncated = |need: usize| SdError::Truncated {
            what: what.to_string(),
            offset,
            need,
            have,
        };
        let head = buf
            .get(offset..end)
            .and_then(|b| b.get(..8))
            .ok_or_else(|| truncated(8))?;
        let revision = head.first().copied().unwrap_or(0);
        if revision != 1 {
            return Err(SdError::BadRevision {
                what: what.to_string(),
                offset,
                found: revision,
                expected: "1",
            });
        }
        let count = usize::from(head.get(1).copied().unwrap_or(0));
        if count > MAX_SUB_AUTHORITIES {
            return Err(SdError::TooManySubAuthorities {
                what: what.to_string(),
                offset,
                count,
            });
        }
        let need = 8 + 4 * count;
        let body = buf
            .get(offset..end)
            .and_then(|b| b.get(..need))
            .ok_or_else(|| truncated(need))?;
        let mut authority = [0u8; 6];
        authority.copy_from_slice(body.get(2..8).unwrap_or(&[0; 6]));
        let mut subs = [0u32; MAX_SUB_AUTHORITIES];
        for (slot, chunk) in subs
            .iter_mut()
            .zip(body.get(8..).unwrap_or(&[]).chunks_exact(4))
        {
            *slot = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok(Sid {
            authority,
            count: u8::try_from(count).unwrap_or(0),
            subs,
        })
    }

    /// The SDDL alias of this SID if it has one (`BA`, `SY`, and with a
    /// domain SID also `DA`, `DU`, …), else `None`.
    pub fn sddl_alias(&self, domain: Option<&Sid>) -> Option<&'static str> {
        let authority = self.authority();
        let subs = self.sub_authorities();
        if let Some((alias, _, _)) = WELL_KNOWN
            .iter()
            .find(|(_, a, s)| *a == authority && *s == subs)
        {
            return Some(alias);
        }
        let rid = self.rid_in(domain?)?;
        DOMAIN_RELATIVE
            .iter()
            .find(|(_, r)| *r == rid)
            .map(|(alias, _)| *alias)
    }

    /// The SID an SDDL alias stands for; domain-relative aliases need
    /// `domain`. `None` if the alias is unknown or needs a missing domain.
    pub fn from_alias(alias: &str, domain: Option<&Sid>) -> Option<Sid> {
        parse_alias(alias, domain).ok()
    }

    /// SDDL form: the alias when there is one, else `S-1-…`.
    pub fn to_sddl(&self, domain: Option<&Sid>) -> String {
        match self.sddl_alias(domain) {
            Some(alias) => alias.to_string(),
            None => self.to_string(),
        }
    }

    /// Parses an SDDL SID: an alias or `S-1-…`.
    pub fn from_sddl(text: &str, domain: Option<&Sid>) -> Result<Sid, SdError> {
        parse_sddl_sid(text, domain).map_err(|problem| SdError::Sddl {
            position: 0,
            problem,
        })
    }

    /// S-1-1-0, Everyone (`WD`).
    pub fn world() -> Sid {
        well_known(1, &[0])
    }

    /// S-1-5-18, Local System (`SY`).
    pub fn local_system() -> Sid {
        well_known(5, &[18])
    }

    /// S-1-5-11, Authenticated Users (`AU`).
    pub fn authenticated_users() -> Sid {
        well_known(5, &[11])
    }

    /// S-1-5-32-544, BUILTIN\Administrators (`BA`).
    pub fn builtin_administrators() -> Sid {
        well_known(5, &[32, 544])
    }
}

/// Only for the short literal tables in this file (always valid).
fn well_known(authority: u64, subs: &[u32]) -> Sid {
    Sid::new(authority, subs).unwrap_or(Sid {
        authority: [0; 6],
        count: 0,
        subs: [0; MAX_SUB_AUTHORITIES],
    })
}

/// Aliases for fixed SIDs: (alias, identifier authority, sub-authorities).
/// The set Samba 4.17 knows (probed with its python bindings), which is the
/// MS-DTYP 2.4.2.4 set for these SIDs.
const WELL_KNOWN: &[(&str, u64, &[u32])] = &[
    ("WD", 1, &[0]),
    ("CO", 3, &[0]),
    ("CG", 3, &[1]),
    ("OW", 3, &[4]),
    ("NU", 5, &[2]),
    ("IU", 5, &[4]),
    ("SU", 5, &[6]),
    ("AN", 5, &[7]),
    ("ED", 5, &[9]),
    ("PS", 5, &[10]),
    ("AU", 5, &[11]),
    ("RC", 5, &[12]),
    ("SY", 5, &[18]),
    ("LS", 5, &[19]),
    ("NS", 5, &[20]),
    ("WR", 5, &[33]),
    ("BA", 5, &[32, 544]),
    ("BU", 5, &[32, 545]),
    ("BG", 5, &[32, 546]),
    ("PU", 5, &[32, 547]),
    ("AO", 5, &[32, 548]),
    ("SO", 5, &[32, 549]),
    ("PO", 5, &[32, 550]),
    ("BO", 5, &[32, 551]),
    ("RE", 5, &[32, 552]),
    ("RU", 5, &[32, 554]),
    ("RD", 5, &[32, 555]),
    ("NO", 5, &[32, 556]),
    ("MU", 5, &[32, 558]),
    ("LU", 5, &[32, 559]),
    ("IS", 5, &[32, 568]),
    ("CY", 5, &[32, 569]),
    ("ER", 5, &[32, 573]),
    ("CD", 5, &[32, 574]),
    ("RA", 5, &[32, 575]),
    ("ES", 5, &[32, 576]),
    ("MS", 5, &[32, 577]),
    ("HA", 5, &[32, 578]),
    ("AA", 5, &[32, 579]),
    ("RM", 5, &[32, 580]),
    ("UD", 5, &[84, 0, 0, 0, 0, 0]),
    ("AC", 15, &[2, 1]),
    ("LW", 16, &[4096]),
    ("ME", 16, &[8192]),
    ("MP", 16, &[8448]),
    ("HI", 16, &[12288]),
    ("SI", 16, &[16384]),
    ("AS", 18, &[1]),
    ("SS", 18, &[2]),
];

/// Aliases relative to the domain SID: (alias, RID).
const DOMAIN_RELATIVE: &[(&str, u32)] = &[
    ("RO", 498),
    ("LA", 500),
    ("LG", 501),
    ("DA", 512),
    ("DU", 513),
    ("DG", 514),
    ("DC", 515),
    ("DD", 516),
    ("CA", 517),
    ("SA", 518),
    ("EA", 519),
    ("PA", 520),
    ("CN", 522),
    ("AP", 525),
    ("KA", 526),
    ("EK", 527),
    ("RS", 553),
];

fn parse_alias(alias: &str, domain: Option<&Sid>) -> Result<Sid, SddlProblem> {
    if let Some((_, authority, subs)) = WELL_KNOWN.iter().find(|(a, _, _)| *a == alias) {
        return Ok(well_known(*authority, subs));
    }
    if let Some((_, rid)) = DOMAIN_RELATIVE.iter().find(|(a, _)| *a == alias) {
        let domain = domain.ok_or_else(|| SddlProblem::AliasNeedsDomain(alias.to_string()))?;
        return domain.with_rid(*rid).map_err(|e| SddlProblem::BadSid {
            text: alias.to_string(),
            reason: e.to_string(),
        });
    }
    Err(SddlProblem::UnknownAlias(alias.to_string()))
}

/// An SDDL SID token: `S-1-…` or a two-letter alias.
pub(crate) fn parse_sddl_sid(text: &str, domain: Option<&Sid>) -> Result<Sid, SddlProblem> {
    if text.starts_with("S-") {
        text.parse::<Sid>().map_err(|e| match e {
            SdError::SidText { text, reason } => SddlProblem::BadSid { text, reason },
            other => SddlProblem::BadSid {
                text: text.to_string(),
                reason: other.to_string(),
            },
        })
    } else {
        parse_alias(text, domain)
    }
}

impl fmt::Display for Sid {
    /// `S-1-<authority>-<sub>…`; the authority in decimal below 2^32, else as
    /// `0x` and 12 hex digits (MS-DTYP 2.4.2.1).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authority = self.authority();
        if authority <= u64::from(u32::MAX) {
            write!(f, "S-1-{authority}")?;
        } else {
            write!(f, "S-1-0x{authority:012X}")?;
        }
        for sub in self.sub_authorities() {
            write!(f, "-{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({self})")
    }
}

impl FromStr for Sid {
    type Err = SdError;

    /// Parses `S-1-<authority>-<sub>…`: decimal parts only (the authority
    /// may be `0x` + hex), at most 15 sub-authorities, nothing else.
    fn from_str(text: &str) -> Result<Sid, SdError> {
        let bad = |reason: String| SdError::SidText {
            text: text.to_string(),
            reason,
        };
        let rest = text
            .strip_prefix("S-")
            .ok_or_else(|| bad("does not start with \"S-\"".into()))?;
        let mut parts = rest.split('-');
        match parts.next() {
            Some("1") => {}
            Some(other) => return Err(bad(format!("revision {other:?} is not 1"))),
            None => return Err(bad("has no revision".into())),
        }
        let authority_text = parts
            .next()
            .ok_or_else(|| bad("has no identifier authority".into()))?;
        let authority = parse_authority(authority_text).ok_or_else(|| {
            bad(format!(
                "identifier authority {authority_text:?} is not a number below 2^48"
            ))
        })?;
        let mut subs = Vec::new();
        for (index, part) in parts.enumerate() {
            if subs.len() == MAX_SUB_AUTHORITIES {
                return Err(bad(format!(
                    "more than {MAX_SUB_AUTHORITIES} sub-authorities"
                )));
            }
            let value = parse_decimal_u32(part).ok_or_else(|| {
                bad(format!(
                    "sub-authority {} ({part:?}) is not a decimal number below 2^32",
                    index + 1
                ))
            })?;
            subs.push(value);
        }
        Sid::new(authority, &subs).map_err(|e| bad(e.to_string()))
    }
}

fn parse_decimal_u32(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_authority(text: &str) -> Option<u64> {
    let value = if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()?
    } else {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse::<u64>().ok()?
    };
    (value <= MAX_AUTHORITY).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = "S-1-5-21-1111111111-2222222222-3333333333";

    #[test]
    fn binary_and_text_round_trip() {
        let sid: Sid = DOMAIN.parse().unwrap();
        let bytes = sid.to_bytes();
        assert_eq!(bytes.len(), 24);
        assert_eq!(Sid::from_bytes(&bytes).unwrap(), sid);
        assert_eq!(sid.to_string(), DOMAIN);
        assert_eq!(sid.authority(), 5);
        assert_eq!(sid.rid(), Some(3333333333));
        let everyone: Sid = "S-1-1-0".parse().unwrap();
        assert_eq!(everyone.to_bytes(), [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(everyone, Sid::world());
        let bare: Sid = "S-1-5".parse().unwrap();
        assert_eq!(bare.sub_authorities(), &[] as &[u32]);
        assert_eq!(bare.to_bytes().len(), 8);
    }

    #[test]
    fn large_authority_is_hex() {
        let sid: Sid = "S-1-0x123456789ABC-7".parse().unwrap();
        assert_eq!(sid.authority(), 0x1234_5678_9abc);
        assert_eq!(sid.to_string(), "S-1-0x123456789ABC-7");
        let sid: Sid = "S-1-4294967296-1".parse().unwrap();
        assert_eq!(sid.to_string(), "S-1-0x000100000000-1");
        let sid: Sid = "S-1-4294967295-1".parse().unwrap();
        assert_eq!(sid.to_string(), "S-1-4294967295-1");
        assert_eq!(Sid::from_bytes(&sid.to_bytes()).unwrap(), sid);
    }

    #[test]
    fn fifteen_sub_authorities_ok_sixteen_not() {
        let fifteen = format!("S-1-5{}", "-1".repeat(15));
        let sid: Sid = fifteen.parse().unwrap();
        assert_eq!(sid.sub_authorities().len(), 15);
        assert_eq!(Sid::from_bytes(&sid.to_bytes()).unwrap(), sid);
        let sixteen = format!("S-1-5{}", "-1".repeat(16));
        let err = sixteen.parse::<Sid>().unwrap_err().to_string();
        assert!(err.contains("more than 15 sub-authorities"), "{err}");
        let mut bytes = sid.to_bytes();
        bytes[1] = 16;
        bytes.extend_from_slice(&[1, 0, 0, 0]);
        let err = Sid::from_bytes(&bytes).unwrap_err().to_string();
        assert_eq!(
            err,
            "SID at byte 0: 16 sub-authorities, at most 15 are allowed"
        );
    }

    #[test]
    fn malformed_binary() {
        let err = Sid::from_bytes(&[1, 1, 0, 0]).unwrap_err().to_string();
        assert_eq!(err, "SID at byte 0: needs 8 bytes, but only 4 remain");
        let err = Sid::from_bytes(&[1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "SID at byte 0: needs 16 bytes, but only 12 remain");
        let err = Sid::from_bytes(&[2, 0, 0, 0, 0, 0, 0, 5])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "SID at byte 0: revision 2 is not 1");
        let err = Sid::from_bytes(&[1, 0, 0, 0, 0, 0, 0, 5, 9])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "SID at byte 8: 1 unexpected bytes after its end");
    }

    #[test]
    fn malformed_text() {
        for (text, fragment) in [
            ("", "does not start with \"S-\""),
            ("s-1-5", "does not start with \"S-\""),
            ("S-2-5", "revision \"2\" is not 1"),
            ("S-1", "has no identifier authority"),
            ("S-1-", "identifier authority \"\""),
            ("S-1-281474976710656", "below 2^48"),
            ("S-1-0x1000000000000", "below 2^48"),
            ("S-1-5-", "sub-authority 1 (\"\")"),
            ("S-1-5-4294967296", "sub-authority 1 (\"4294967296\")"),
            ("S-1-5-+3", "sub-authority 1 (\"+3\")"),
            ("S-1-5-21-x", "sub-authority 2 (\"x\")"),
        ] {
            let err = text.parse::<Sid>().unwrap_err().to_string();
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
    }

    #[test]
    fn aliases() {
        let domain: Sid = DOMAIN.parse().unwrap();
        for (alias, text) in [
            ("WD", "S-1-1-0"),
            ("CO", "S-1-3-0"),
            ("AU", "S-1-5-11"),
            ("SY", "S-1-5-18"),
            ("BA", "S-1-5-32-544"),
            ("BU", "S-1-5-32-545"),
            ("AO", "S-1-5-32-548"),
            ("SO", "S-1-5-32-549"),
            ("PO", "S-1-5-32-550"),
            ("BO", "S-1-5-32-551"),
            ("RU", "S-1-5-32-554"),
            ("ED", "S-1-5-9"),
            ("PS", "S-1-5-10"),
            ("LS", "S-1-5-19"),
            ("NS", "S-1-5-20"),
            ("AN", "S-1-5-7"),
            ("NU", "S-1-5-2"),
            ("IU", "S-1-5-4"),
            ("SU", "S-1-5-6"),
            ("RD", "S-1-5-32-555"),
            ("ER", "S-1-5-32-573"),
        ] {
            let sid: Sid = text.parse().unwrap();
            assert_eq!(Sid::from_sddl(alias, None).unwrap(), sid, "{alias}");
            assert_eq!(sid.to_sddl(None), alias);
            assert_eq!(sid.to_sddl(Some(&domain)), alias);
        }
        for (alias, rid) in [
            ("DA", 512),
            ("DU", 513),
            ("DC", 515),
            ("DD", 516),
            ("CA", 517),
            ("SA", 518),
            ("EA", 519),
            ("PA", 520),
            ("RS", 553),
            ("CN", 522),
            ("RO", 498),
        ] {
            let sid = domain.with_rid(rid).unwrap();
            assert_eq!(Sid::from_sddl(alias, Some(&domain)).unwrap(), sid);
            assert_eq!(sid.to_sddl(Some(&domain)), alias);
            assert_eq!(sid.to_sddl(None), sid.to_string());
            let err = Sid::from_sddl(alias, None).unwrap_err().to_string();
            assert!(err.contains("no domain SID was given"), "{err}");
        }
        let err = Sid::from_sddl("ZZ", None).unwrap_err().to_string();
        assert!(err.contains("unknown SID alias \"ZZ\""), "{err}");
        // A user RID has no alias.
        let user = domain.with_rid(1105).unwrap();
        assert_eq!(user.to_sddl(Some(&domain)), user.to_string());
        assert_eq!(user.rid_in(&domain), Some(1105));
        assert_eq!(domain.rid_in(&domain), None);
    }
}
