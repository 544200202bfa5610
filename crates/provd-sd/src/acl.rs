//! ACLs and ACEs (MS-DTYP 2.4.4 and 2.4.5): binary codec and the small
//! editing helpers the permission workflows need.

use std::fmt;

use uuid::Uuid;

use super::error::SdError;
use super::sid::Sid;

/// ACL revision for ACLs without object ACEs (`ACL_REVISION`).
pub const ACL_REVISION: u8 = 2;
/// ACL revision for ACLs that may hold object ACEs (`ACL_REVISION_DS`).
/// Active Directory (and Samba) store every ACL with this revision.
pub const ACL_REVISION_DS: u8 = 4;

/// Size of the ACL header.
pub const ACL_HEADER_LEN: usize = 8;
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

/// Access-mask bits (MS-DTYP 2.4.3, MS-ADTS 5.1.3.2), with their SDDL
/// mnemonics.
pub mod rights {
    /// `CC` create child.
    pub const CREATE_CHILD: u32 = 0x0000_0001;
    /// `DC` delete child.
    pub const DELETE_CHILD: u32 = 0x0000_0002;
    /// `LC` list children.
    pub const LIST_CHILDREN: u32 = 0x0000_0004;
    /// `SW` validated write (self).
    pub const SELF_WRITE: u32 = 0x0000_0008;
    /// `RP` read property.
    pub const READ_PROPERTY: u32 = 0x0000_0010;
    /// `WP` write property.
    pub const WRITE_PROPERTY: u32 = 0x0000_0020;
    /// `DT` delete tree.
    pub const DELETE_TREE: u32 = 0x0000_0040;
    /// `LO` list object.
    pub const LIST_OBJECT: u32 = 0x0000_0080;
    /// `CR` control access (extended rights).
    pub const CONTROL_ACCESS: u32 = 0x0000_0100;
    /// `SD` delete.
    pub const DELETE: u32 = 0x0001_0000;
    /// `RC` read control.
    pub const READ_CONTROL: u32 = 0x0002_0000;
    /// `WD` write DACL.
    pub const WRITE_DAC: u32 = 0x0004_0000;
    /// `WO` write owner.
    pub const WRITE_OWNER: u32 = 0x0008_0000;
    /// Synchronize (no SDDL mnemonic).
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
    /// Access system security (no SDDL mnemonic).
    pub const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;
    /// Maximum allowed (no SDDL mnemonic).
    pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
    /// `GA` generic all.
    pub const GENERIC_ALL: u32 = 0x1000_0000;
    /// `GX` generic execute.
    pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
    /// `GW` generic write.
    pub const GENERIC_WRITE: u32 = 0x4000_0000;
    /// `GR` generic read.
    pub const GENERIC_READ: u32 = 0x8000_0000;
    /// What AD's "Full Control" grants: every DS right, SD, RC, WD and WO
    /// (`0x000f01ff`).
    pub const DS_FULL_CONTROL: u32 = 0x000f_01ff;
}

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
    fn malformed() {
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
