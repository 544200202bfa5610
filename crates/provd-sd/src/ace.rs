//! ACEs (MS-DTYP 2.4.4): the ACE flags, types and bodies, and the binary
//! codec of one ACE.

use std::fmt;

use uuid::Uuid;

use super::acl::read_array;
use super::error::SdError;
use super::sid::Sid;

/// Size of the ACE header (type, flags, size).
pub const ACE_HEADER_LEN: usize = 4;

// ACE flags (MS-DTYP 2.4.4.1).
/// `OI`: non-container children inherit the ACE.
pub const OBJECT_INHERIT_ACE: u8 = 0x01;
/// `CI`: container children inherit the ACE.
pub const CONTAINER_INHERIT_ACE: u8 = 0x02;
/// `NP`: inherited copies lose OI/CI.
pub const NO_PROPAGATE_INHERIT_ACE: u8 = 0x04;
/// `IO`: the ACE applies only to children, not to this object.
pub const INHERIT_ONLY_ACE: u8 = 0x08;
/// `ID`: the ACE was inherited.
pub const INHERITED_ACE: u8 = 0x10;
/// `SA`: audit successful access (SACL ACEs).
pub const SUCCESSFUL_ACCESS_ACE_FLAG: u8 = 0x40;
/// `FA`: audit failed access (SACL ACEs).
pub const FAILED_ACCESS_ACE_FLAG: u8 = 0x80;

// Object ACE `Flags` field (MS-DTYP 2.4.4.3).
/// The object ACE carries `ObjectType`.
pub const ACE_OBJECT_TYPE_PRESENT: u32 = 0x1;
/// The object ACE carries `InheritedObjectType`.
pub const ACE_INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;

/// An ACE type byte (MS-DTYP 2.4.4.1). Any value is kept; the constants name
/// the ones this codec decodes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AceType(pub u8);

impl AceType {
    pub const ACCESS_ALLOWED: AceType = AceType(0x00);
    pub const ACCESS_DENIED: AceType = AceType(0x01);
    pub const SYSTEM_AUDIT: AceType = AceType(0x02);
    pub const SYSTEM_ALARM: AceType = AceType(0x03);
    pub const ACCESS_ALLOWED_OBJECT: AceType = AceType(0x05);
    pub const ACCESS_DENIED_OBJECT: AceType = AceType(0x06);
    pub const SYSTEM_AUDIT_OBJECT: AceType = AceType(0x07);
    pub const SYSTEM_ALARM_OBJECT: AceType = AceType(0x08);
    pub const SYSTEM_MANDATORY_LABEL: AceType = AceType(0x11);
    pub const SYSTEM_SCOPED_POLICY_ID: AceType = AceType(0x13);

    /// How the body of an ACE of this type is laid out.
    pub fn body_kind(self) -> BodyKind {
        match self.0 {
            0x00..=0x03 | 0x11 | 0x13 => BodyKind::Basic,
            0x05..=0x08 => BodyKind::Object,
            _ => BodyKind::Opaque,
        }
    }

    /// The Windows name, if the type is one of the named constants.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x00 => "ACCESS_ALLOWED",
            0x01 => "ACCESS_DENIED",
            0x02 => "SYSTEM_AUDIT",
            0x03 => "SYSTEM_ALARM",
            0x05 => "ACCESS_ALLOWED_OBJECT",
            0x06 => "ACCESS_DENIED_OBJECT",
            0x07 => "SYSTEM_AUDIT_OBJECT",
            0x08 => "SYSTEM_ALARM_OBJECT",
            0x11 => "SYSTEM_MANDATORY_LABEL",
            0x13 => "SYSTEM_SCOPED_POLICY_ID",
            _ => return None,
        })
    }
}

impl fmt::Debug for AceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "AceType(0x{:02x})", self.0),
        }
    }
}

/// Body layouts (see [`AceType::body_kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// Access mask, then SID.
    Basic,
    /// Access mask, object flags, optional GUIDs, then SID.
    Object,
    /// Not decoded (callback, compound, resource-attribute and unknown
    /// types); kept verbatim.
    Opaque,
}

/// The part of an ACE after its 4-byte header.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum AceBody {
    Basic {
        mask: u32,
        sid: Sid,
        /// Bytes counted in `AceSize` after the SID (normally none).
        padding: Vec<u8>,
    },
    Object {
        mask: u32,
        /// `ObjectType`: the property, property set, child class or
        /// extended right the ACE is about.
        object_type: Option<Uuid>,
        /// `InheritedObjectType`: the class of child objects that inherit it.
        inherited_object_type: Option<Uuid>,
        sid: Sid,
        /// Bytes counted in `AceSize` after the SID (normally none).
        padding: Vec<u8>,
    },
    /// The body of an ACE whose type is not decoded, byte for byte.
    Opaque(Vec<u8>),
}

impl AceBody {
    pub fn kind(&self) -> BodyKind {
        match self {
            AceBody::Basic { .. } => BodyKind::Basic,
            AceBody::Object { .. } => BodyKind::Object,
            AceBody::Opaque(_) => BodyKind::Opaque,
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            AceBody::Basic { sid, padding, .. } => 4 + sid.encoded_len() + padding.len(),
            AceBody::Object {
                object_type,
                inherited_object_type,
                sid,
                padding,
                ..
            } => {
                8 + 16 * usize::from(object_type.is_some())
                    + 16 * usize::from(inherited_object_type.is_some())
                    + sid.encoded_len()
                    + padding.len()
            }
            AceBody::Opaque(bytes) => bytes.len(),
        }
    }

    /// The body without its padding, for comparisons that ignore it.
    fn without_padding(&self) -> AceBody {
        match self {
            AceBody::Basic { mask, sid, .. } => AceBody::Basic {
                mask: *mask,
                sid: *sid,
                padding: Vec::new(),
            },
            AceBody::Object {
                mask,
                object_type,
                inherited_object_type,
                sid,
                ..
            } => AceBody::Object {
                mask: *mask,
                object_type: *object_type,
                inherited_object_type: *inherited_object_type,
                sid: *sid,
                padding: Vec::new(),
            },
            AceBody::Opaque(bytes) => AceBody::Opaque(bytes.clone()),
        }
    }
}

/// An access control entry. `body` must be of the kind
/// `ace_type.body_kind()` names; [`Ace::encode`] checks.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Ace {
    pub ace_type: AceType,
    /// `*_ACE` flag bits (`OBJECT_INHERIT_ACE`, …).
    pub flags: u8,
    pub body: AceBody,
}

impl Ace {
    /// A basic ACE (`A`, `D`, `AU`, …) of `ace_type`.
    pub fn basic(ace_type: AceType, flags: u8, mask: u32, sid: Sid) -> Ace {
        Ace {
            ace_type,
            flags,
            body: AceBody::Basic {
                mask,
                sid,
                padding: Vec::new(),
            },
        }
    }

    /// An object ACE (`OA`, `OD`, `OU`, …) of `ace_type`.
    pub fn object(
        ace_type: AceType,
        flags: u8,
        mask: u32,
        object_type: Option<Uuid>,
        inherited_object_type: Option<Uuid>,
        sid: Sid,
    ) -> Ace {
        Ace {
            ace_type,
            flags,
            body: AceBody::Object {
                mask,
                object_type,
                inherited_object_type,
                sid,
                padding: Vec::new(),
            },
        }
    }

    /// `(A;flags;mask;;;sid)`.
    pub fn allowed(flags: u8, mask: u32, sid: Sid) -> Ace {
        Ace::basic(AceType::ACCESS_ALLOWED, flags, mask, sid)
    }

    /// `(D;flags;mask;;;sid)`.
    pub fn denied(flags: u8, mask: u32, sid: Sid) -> Ace {
        Ace::basic(AceType::ACCESS_DENIED, flags, mask, sid)
    }

    /// `(OA;flags;mask;object;inherited;sid)`.
    pub fn allowed_object(
        flags: u8,
        mask: u32,
        object_type: Option<Uuid>,
        inherited_object_type: Option<Uuid>,
        sid: Sid,
    ) -> Ace {
        Ace::object(
            AceType::ACCESS_ALLOWED_OBJECT,
            flags,
            mask,
            object_type,
            inherited_object_type,
            sid,
        )
    }

    /// `(OD;flags;mask;object;inherited;sid)`.
    pub fn denied_object(
        flags: u8,
        mask: u32,
        object_type: Option<Uuid>,
        inherited_object_type: Option<Uuid>,
        sid: Sid,
    ) -> Ace {
        Ace::object(
            AceType::ACCESS_DENIED_OBJECT,
            flags,
            mask,
            object_type,
            inherited_object_type,
            sid,
        )
    }

    pub fn mask(&self) -> Option<u32> {
        match &self.body {
            AceBody::Basic { mask, .. } | AceBody::Object { mask, .. } => Some(*mask),
            AceBody::Opaque(_) => None,
        }
    }

    pub fn sid(&self) -> Option<&Sid> {
        match &self.body {
            AceBody::Basic { sid, .. } | AceBody::Object { sid, .. } => Some(sid),
            AceBody::Opaque(_) => None,
        }
    }

    pub fn object_type(&self) -> Option<Uuid> {
        match &self.body {
            AceBody::Object { object_type, .. } => *object_type,
            _ => None,
        }
    }

    pub fn inherited_object_type(&self) -> Option<Uuid> {
        match &self.body {
            AceBody::Object {
                inherited_object_type,
                ..
            } => *inherited_object_type,
            _ => None,
        }
    }

    /// Whether `INHERITED_ACE` is set.
    pub fn is_inherited(&self) -> bool {
        self.flags & INHERITED_ACE != 0
    }

    /// Equal apart from the `INHERITED_ACE` flag and any padding: the same
    /// grant, whether set here or inherited from a parent.
    pub fn eq_ignoring_inherited(&self, other: &Ace) -> bool {
        ace_eq_ignoring_inherited(self, other)
    }

    /// `AceSize`: header plus body.
    pub fn encoded_len(&self) -> usize {
        ACE_HEADER_LEN + self.body.encoded_len()
    }

    /// The binary ACE. Fails if the body does not fit the type or the ACE
    /// is larger than 65535 bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SdError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out, "ACE")?;
        Ok(out)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>, what: &str) -> Result<(), SdError> {
        if self.ace_type.body_kind() != self.body.kind() {
            return Err(SdError::Encode {
                what: what.to_string(),
                reason: format!(
                    "type 0x{:02x} needs a {:?} body, but it has a {:?} body",
                    self.ace_type.0,
                    self.ace_type.body_kind(),
                    self.body.kind()
                ),
            });
        }
        let size = u16::try_from(self.encoded_len()).map_err(|_| SdError::Encode {
            what: what.to_string(),
            reason: format!(
                "{} bytes is more than AceSize can hold (65535)",
                self.encoded_len()
            ),
        })?;
        out.push(self.ace_type.0);
        out.push(self.flags);
        out.extend_from_slice(&size.to_le_bytes());
        match &self.body {
            AceBody::Basic { mask, sid, padding } => {
                out.extend_from_slice(&mask.to_le_bytes());
                sid.write(out);
                out.extend_from_slice(padding);
            }
            AceBody::Object {
                mask,
                object_type,
                inherited_object_type,
                sid,
                padding,
            } => {
                out.extend_from_slice(&mask.to_le_bytes());
                let mut flags = 0u32;
                if object_type.is_some() {
                    flags |= ACE_OBJECT_TYPE_PRESENT;
                }
                if inherited_object_type.is_some() {
                    flags |= ACE_INHERITED_OBJECT_TYPE_PRESENT;
                }
                out.extend_from_slice(&flags.to_le_bytes());
                for guid in [object_type, inherited_object_type].into_iter().flatten() {
                    out.extend_from_slice(&guid.to_bytes_le());
                }
                sid.write(out);
                out.extend_from_slice(padding);
            }
            AceBody::Opaque(bytes) => out.extend_from_slice(bytes),
        }
        Ok(())
    }

    /// Parses one ACE that fills `bytes` exactly.
    pub fn from_bytes(bytes: &[u8]) -> Result<Ace, SdError> {
        let ace = Ace::decode(bytes, 0, bytes.len(), "ACE")?;
        let extra = bytes.len().saturating_sub(ace.encoded_len());
        if extra > 0 {
            return Err(SdError::TrailingBytes {
                what: "ACE".into(),
                offset: ace.encoded_len(),
                extra,
            });
        }
        Ok(ace)
    }

    /// Parses the ACE at `offset`, which must end by `end` (the end of its
    /// ACL). The returned ACE's `encoded_len()` is its `AceSize`.
    pub(crate) fn decode(
        buf: &[u8],
        offset: usize,
        end: usize,
        what: &str,
    ) -> Result<Ace, SdError> {
        let end = end.min(buf.len());
        let header = read_array::<4>(buf, offset, end, what)?;
        let ace_type = AceType(header[0]);
        let flags = header[1];
        let size = u16::from_le_bytes([header[2], header[3]]);
        let bad_size = |reason: String| SdError::BadAceSize {
            what: what.to_string(),
            offset,
            size,
            reason,
        };
        let ace_end = offset
            .checked_add(usize::from(size))
            .ok_or_else(|| bad_size("overflows".into()))?;
        let min = match ace_type.body_kind() {
            BodyKind::Basic => ACE_HEADER_LEN + 4,
            BodyKind::Object => ACE_HEADER_LEN + 8,
            BodyKind::Opaque => ACE_HEADER_LEN,
        };
        if usize::from(size) < min {
            return Err(bad_size(format!(
                "is smaller than the {min} bytes an ACE of type 0x{:02x} needs before its SID",
                ace_type.0
            )));
        }
        if ace_end > end {
            return Err(bad_size(format!(
                "runs past the end of its ACL at byte {end}"
            )));
        }
        let body_start = offset + ACE_HEADER_LEN;
        let body = match ace_type.body_kind() {
            BodyKind::Opaque => {
                AceBody::Opaque(buf.get(body_start..ace_end).unwrap_or(&[]).to_vec())
            }
            BodyKind::Basic => {
                let mask = u32::from_le_bytes(read_array::<4>(buf, body_start, ace_end, what)?);
                let sid_at = body_start + 4;
                let sid = Sid::decode(buf, sid_at, ace_end, &format!("{what} SID"))?;
                let padding = buf
                    .get(sid_at + sid.encoded_len()..ace_end)
                    .unwrap_or(&[])
                    .to_vec();
                AceBody::Basic { mask, sid, padding }
            }
            BodyKind::Object => {
                let mask = u32::from_le_bytes(read_array::<4>(buf, body_start, ace_end, what)?);
                let flags_at = body_start + 4;
                let object_flags =
                    u32::from_le_bytes(read_array::<4>(buf, flags_at, ace_end, what)?);
                let unknown =
                    object_flags & !(ACE_OBJECT_TYPE_PRESENT | ACE_INHERITED_OBJECT_TYPE_PRESENT);
                if unknown != 0 {
                    return Err(SdError::BadObjectFlags {
                        what: what.to_string(),
                        offset: flags_at,
                        flags: object_flags,
                        unknown,
                    });
                }
                let mut at = flags_at + 4;
                let mut guid = |present: bool, name: &str| -> Result<Option<Uuid>, SdError> {
                    if !present {
                        return Ok(None);
                    }
                    let bytes = read_array::<16>(buf, at, ace_end, &format!("{what} {name} GUID"))?;
                    at += 16;
                    Ok(Some(Uuid::from_bytes_le(bytes)))
                };
                let object_type = guid(object_flags & ACE_OBJECT_TYPE_PRESENT != 0, "object type")?;
                let inherited_object_type = guid(
                    object_flags & ACE_INHERITED_OBJECT_TYPE_PRESENT != 0,
                    "inherited object type",
                )?;
                let sid = Sid::decode(buf, at, ace_end, &format!("{what} SID"))?;
                let padding = buf
                    .get(at + sid.encoded_len()..ace_end)
                    .unwrap_or(&[])
                    .to_vec();
                AceBody::Object {
                    mask,
                    object_type,
                    inherited_object_type,
                    sid,
                    padding,
                }
            }
        };
        Ok(Ace {
            ace_type,
            flags,
            body,
        })
    }
}

/// Equal apart from the `INHERITED_ACE` flag and any padding.
pub fn ace_eq_ignoring_inherited(a: &Ace, b: &Ace) -> bool {
    a.ace_type == b.ace_type
        && (a.flags & !INHERITED_ACE) == (b.flags & !INHERITED_ACE)
        && a.body.without_padding() == b.body.without_padding()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rights;

    fn sid(text: &str) -> Sid {
        text.parse().unwrap()
    }

    fn guid(text: &str) -> Uuid {
        Uuid::parse_str(text).unwrap()
    }

    #[test]
    fn object_ace_guid_is_mixed_endian() {
        let reset = guid("00299570-246d-11d0-a768-00aa006e0529");
        let ace = Ace::allowed_object(
            CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE,
            rights::CONTROL_ACCESS,
            Some(reset),
            None,
            sid("S-1-5-11"),
        );
        let bytes = ace.to_bytes().unwrap();
        assert_eq!(bytes[..4], [0x05, 0x0a, 40, 0]);
        assert_eq!(bytes[8..12], [1, 0, 0, 0]);
        assert_eq!(
            bytes[12..28],
            [
                0x70, 0x95, 0x29, 0x00, 0x6d, 0x24, 0xd0, 0x11, 0xa7, 0x68, 0x00, 0xaa, 0x00, 0x6e,
                0x05, 0x29
            ]
        );
        assert_eq!(Ace::from_bytes(&bytes).unwrap(), ace);
    }

    #[test]
    fn body_must_fit_type() {
        let ace = Ace {
            ace_type: AceType::ACCESS_ALLOWED_OBJECT,
            flags: 0,
            body: AceBody::Basic {
                mask: 1,
                sid: sid("S-1-1-0"),
                padding: vec![],
            },
        };
        let err = ace.to_bytes().unwrap_err().to_string();
        assert!(err.contains("type 0x05 needs a Object body"), "{err}");
    }

    #[test]
    fn malformed_ace() {
        // ACE size smaller than its header.
        let err = Ace::from_bytes(&[0, 0, 3, 0]).unwrap_err().to_string();
        assert_eq!(
            err,
            "ACE at byte 0: AceSize 3 is smaller than the 8 bytes an ACE of type 0x00 needs before its SID"
        );
        // Object ACE claiming a GUID that is not there.
        let mut bytes = vec![0x05, 0, 20, 0, 0x10, 0, 0, 0, 0x03, 0, 0, 0];
        bytes.extend_from_slice(&[0; 8]);
        let err = Ace::from_bytes(&bytes).unwrap_err().to_string();
        assert_eq!(
            err,
            "ACE object type GUID at byte 12: needs 16 bytes, but only 8 remain"
        );
        let mut bytes = vec![0x05, 0, 12, 0, 0x10, 0, 0, 0, 0x04, 0, 0, 0];
        let err = Ace::from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains("unknown bits 0x00000004"), "{err}");
        bytes[8] = 0;
        let err = Ace::from_bytes(&bytes).unwrap_err().to_string();
        assert_eq!(err, "ACE SID at byte 12: needs 8 bytes, but only 0 remain");
    }
}
