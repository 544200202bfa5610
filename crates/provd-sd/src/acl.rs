//! ACLs (MS-DTYP 2.4.5): the binary codec and the small editing helpers the
//! permission workflows need. The ACEs themselves are in `ace`.

use super::ace::{Ace, BodyKind, ace_eq_ignoring_inherited};
use super::error::SdError;

/// ACL revision for ACLs without object ACEs (`ACL_REVISION`).
pub const ACL_REVISION: u8 = 2;
/// ACL revision for ACLs that may hold object ACEs (`ACL_REVISION_DS`).
/// Active Directory (and Samba) store every ACL with this revision.
pub const ACL_REVISION_DS: u8 = 4;

/// Size of the ACL header.
pub const ACL_HEADER_LEN: usize = 8;

/// `N` bytes at `offset`, which must end by `end`.
pub(crate) fn read_array<const N: usize>(
    buf: &[u8],
    offset: usize,
    end: usize,
    what: &str,
) -> Result<[u8; N], SdError> {
    let end = end.min(buf.len());
    let slice = buf
        .get(offset..end)
        .and_then(|b| b.get(..N))
        .ok_or_else(|| SdError::Truncated {
            what: what.to_string(),
            offset,
            need: N,
            have: end.saturating_sub(offset),
        })?;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Ok(out)
}

/// An access control list.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Acl {
    /// `ACL_REVISION` (2) or `ACL_REVISION_DS` (4); 3 is accepted too.
    pub revision: u8,
    pub aces: Vec<Ace>,
    /// Bytes counted in `AclSize` after the last ACE (normally none).
    pub padding: Vec<u8>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

impl Acl {
    /// An empty ACL of revision `ACL_REVISION_DS`, as AD stores them.
    pub fn new() -> Acl {
        Acl {
            revision: ACL_REVISION_DS,
            aces: Vec::new(),
            padding: Vec::new(),
        }
    }

    /// `AclSize`: header, ACEs and padding.
    pub fn encoded_len(&self) -> usize {
        ACL_HEADER_LEN + self.aces.iter().map(Ace::encoded_len).sum::<usize>() + self.padding.len()
    }

    /// An ACE equal to `ace` (flags, padding and all) is present.
    pub fn contains(&self, ace: &Ace) -> bool {
        self.aces.iter().any(|a| a == ace)
    }

    /// An ACE equal to `ace` apart from `INHERITED_ACE` and padding is
    /// present.
    pub fn contains_ignoring_inherited(&self, ace: &Ace) -> bool {
        self.aces.iter().any(|a| ace_eq_ignoring_inherited(a, ace))
    }

    /// Inserts `ace` right after the last explicit (non-inherited) ACE, or
    /// at index 0 when there is none, and returns its index. No other ACE
    /// moves relative to the rest. Raises the revision to `ACL_REVISION_DS`
    /// when `ace` is an object ACE.
    pub fn insert_explicit(&mut self, ace: Ace) -> usize {
        let index = self
            .aces
            .iter()
            .rposition(|a| !a.is_inherited())
            .map_or(0, |i| i + 1);
        if ace.ace_type.body_kind() == BodyKind::Object && self.revision < ACL_REVISION_DS {
            self.revision = ACL_REVISION_DS;
        }
        self.aces.insert(index, ace);
        index
    }

    /// Removes every ACE equal to `ace`; returns how many.
    pub fn remove_exact(&mut self, ace: &Ace) -> usize {
        let before = self.aces.len();
        self.aces.retain(|a| a != ace);
        before - self.aces.len()
    }

    /// The binary ACL.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SdError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out, "ACL")?;
        Ok(out)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>, what: &str) -> Result<(), SdError> {
        if !(2..=4).contains(&self.revision) {
            return Err(SdError::Encode {
                what: what.to_string(),
                reason: format!("revision {} is not 2, 3 or 4", self.revision),
            });
        }
        let size = u16::try_from(self.encoded_len()).map_err(|_| SdError::Encode {
            what: what.to_string(),
            reason: format!(
                "{} bytes is more than AclSize can hold (65535)",
                self.encoded_len()
            ),
        })?;
        let count = u16::try_from(self.aces.len()).map_err(|_| SdError::Encode {
            what: what.to_string(),
            reason: format!("{} ACEs is more than AceCount can hold", self.aces.len()),
        })?;
        out.push(self.revision);
        out.push(0);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for (index, ace) in self.aces.iter().enumerate() {
            ace.encode(out, &format!("{what} ACE {index}"))?;
        }
        out.extend_from_slice(&self.padding);
        Ok(())
    }

    /// Parses an ACL that fills `bytes` exactly (`AclSize` = length).
    pub fn from_bytes(bytes: &[u8]) -> Result<Acl, SdError> {
        let acl = Acl::decode(bytes, 0, "ACL")?;
        let extra = bytes.len().saturating_sub(acl.encoded_len());
        if extra > 0 {
            return Err(SdError::TrailingBytes {
                what: "ACL".into(),
                offset: acl.encoded_len(),
                extra,
            });
        }
        Ok(acl)
    }

    /// Parses the ACL at `offset`; its `AclSize` must fit in `buf`. The
    /// reserved `Sbz1`/`Sbz2` fields are ignored (and written as zero).
    pub(crate) fn decode(buf: &[u8], offset: usize, what: &str) -> Result<Acl, SdError> {
        let header = read_array::<8>(buf, offset, buf.len(), &format!("{what} header"))?;
        let revision = header[0];
        if !(2..=4).contains(&revision) {
            return Err(SdError::BadRevision {
                what: what.to_string(),
                offset,
                found: revision,
                expected: "2, 3 or 4",
            });
        }
        let size = u16::from_le_bytes([header[2], header[3]]);
        let count = u16::from_le_bytes([header[4], header[5]]);
        let bad_size = |reason: String| SdError::BadAclSize {
            what: what.to_string(),
            offset,
            size,
            reason,
        };
        if usize::from(size) < ACL_HEADER_LEN {
            return Err(bad_size("is smaller than the 8-byte ACL header".into()));
        }
        let end = offset
            .checked_add(usize::from(size))
            .filter(|end| *end <= buf.len())
            .ok_or_else(|| {
                bad_size(format!(
                    "runs past the end of the {}-byte buffer",
                    buf.len()
                ))
            })?;
        // Each ACE takes at least 4 bytes; never trust AceCount for the
        // allocation.
        let mut aces = Vec::with_capacity(usize::from(count).min((usize::from(size) - 8) / 4));
        let mut at = offset + ACL_HEADER_LEN;
        for index in 0..usize::from(count) {
            let ace = Ace::decode(buf, at, end, &format!("{what} ACE {index}"))?;
            at += ace.encoded_len();
            aces.push(ace);
        }
        let padding = buf.get(at..end).unwrap_or(&[]).to_vec();
        Ok(Acl {
            revision,
            aces,
            padding,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ace::{AceBody, AceType, CONTAINER_INHERIT_ACE, INHERITED_ACE};
    use crate::sid::Sid;

    fn sid(text: &str) -> Sid {
        text.parse().unwrap()
    }

    #[test]
    fn padding_and_opaque_round_trip() {
        let mut ace = Ace::allowed(0, 0x1f01ff, sid("S-1-1-0"));
        if let AceBody::Basic { padding, .. } = &mut ace.body {
            padding.extend_from_slice(&[0, 0, 0, 0]);
        }
        let opaque = Ace {
            ace_type: AceType(0x09),
            flags: 0x03,
            body: AceBody::Opaque(vec![1, 2, 3, 4, 5, 6, 7]),
        };
        let acl = Acl {
            revision: ACL_REVISION,
            aces: vec![ace, opaque],
            padding: vec![0xee; 6],
        };
        let bytes = acl.to_bytes().unwrap();
        assert_eq!(bytes.len(), 8 + 24 + 11 + 6);
        assert_eq!(Acl::from_bytes(&bytes).unwrap(), acl);
    }

    #[test]
    fn insert_explicit_goes_after_last_explicit() {
        let e = |n| Ace::allowed(0, n, sid("S-1-5-18"));
        let i = |n| Ace::allowed(INHERITED_ACE, n, sid("S-1-5-18"));
        let mut acl = Acl {
            revision: ACL_REVISION,
            aces: vec![e(1), e(2), i(3), i(4)],
            padding: vec![],
        };
        assert_eq!(acl.insert_explicit(e(5)), 2);
        assert_eq!(
            acl.aces
                .iter()
                .map(|a| a.mask().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 5, 3, 4]
        );
        // Non-canonical order: after the *last* explicit ACE.
        let mut acl = Acl {
            revision: ACL_REVISION,
            aces: vec![e(1), i(2), e(3), i(4)],
            padding: vec![],
        };
        assert_eq!(acl.insert_explicit(e(5)), 3);
        // Only inherited ACEs: at the front.
        let mut acl = Acl {
            revision: ACL_REVISION,
            aces: vec![i(1)],
            padding: vec![],
        };
        let object = Ace::allowed_object(0, 1, None, None, sid("S-1-5-18"));
        assert_eq!(acl.insert_explicit(object.clone()), 0);
        assert_eq!(acl.revision, ACL_REVISION_DS);
        assert!(acl.contains(&object));
        assert!(!acl.contains(&i(5)));
        // Empty ACL.
        let mut acl = Acl::new();
        assert_eq!(acl.insert_explicit(e(1)), 0);
    }

    #[test]
    fn remove_and_compare() {
        let a = Ace::allowed(CONTAINER_INHERIT_ACE, 0x10, sid("S-1-5-11"));
        let mut inherited = a.clone();
        inherited.flags |= INHERITED_ACE;
        let mut acl = Acl::new();
        acl.aces = vec![a.clone(), inherited.clone(), a.clone()];
        assert!(ace_eq_ignoring_inherited(&a, &inherited));
        assert!(a.eq_ignoring_inherited(&inherited));
        assert!(!ace_eq_ignoring_inherited(
            &a,
            &Ace::allowed(0, 0x10, sid("S-1-5-11"))
        ));
        assert_eq!(acl.remove_exact(&a), 2);
        assert_eq!(acl.aces, vec![inherited.clone()]);
        assert!(acl.contains_ignoring_inherited(&a));
        assert!(!acl.contains(&a));
        assert_eq!(acl.remove_exact(&a), 0);
    }

    #[test]
    fn malformed_acl() {
        // ACL revision and size.
        let err = Acl::from_bytes(&[1, 0, 8, 0, 0, 0, 0, 0])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "ACL at byte 0: revision 1 is not 2, 3 or 4");
        let err = Acl::from_bytes(&[2, 0, 7, 0, 0, 0, 0, 0])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "ACL at byte 0: AclSize 7 is smaller than the 8-byte ACL header"
        );
        let err = Acl::from_bytes(&[2, 0, 9, 0, 0, 0, 0, 0])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "ACL at byte 0: AclSize 9 runs past the end of the 8-byte buffer"
        );
        let err = Acl::from_bytes(&[2, 0, 8, 0, 1, 0, 0, 0])
            .unwrap_err()
            .to_string();
        assert_eq!(err, "ACL ACE 0 at byte 8: needs 4 bytes, but only 0 remain");
    }
}
