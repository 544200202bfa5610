//! Self-relative security descriptors (MS-DTYP 2.4.6).

use super::acl::{Acl, read_array};
use super::error::SdError;
use super::sid::Sid;

// Control flags (MS-DTYP 2.4.6).
pub const SE_OWNER_DEFAULTED: u16 = 0x0001;
pub const SE_GROUP_DEFAULTED: u16 = 0x0002;
pub const SE_DACL_PRESENT: u16 = 0x0004;
pub const SE_DACL_DEFAULTED: u16 = 0x0008;
pub const SE_SACL_PRESENT: u16 = 0x0010;
pub const SE_SACL_DEFAULTED: u16 = 0x0020;
pub const SE_DACL_TRUSTED: u16 = 0x0040;
pub const SE_SERVER_SECURITY: u16 = 0x0080;
pub const SE_DACL_AUTO_INHERIT_REQ: u16 = 0x0100;
pub const SE_SACL_AUTO_INHERIT_REQ: u16 = 0x0200;
pub const SE_DACL_AUTO_INHERITED: u16 = 0x0400;
pub const SE_SACL_AUTO_INHERITED: u16 = 0x0800;
pub const SE_DACL_PROTECTED: u16 = 0x1000;
pub const SE_SACL_PROTECTED: u16 = 0x2000;
pub const SE_RM_CONTROL_VALID: u16 = 0x4000;
pub const SE_SELF_RELATIVE: u16 = 0x8000;

/// Size of the self-relative header.
pub const SD_HEADER_LEN: usize = 20;

/// One of the four variable-length parts of a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    Owner,
    Group,
    Sacl,
    Dacl,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Owner => "owner",
            Part::Group => "group",
            Part::Sacl => "SACL",
            Part::Dacl => "DACL",
        }
    }
}

/// Where the parts sit in the binary form: their order and any bytes
/// between them or after the last one. [`SecurityDescriptor::parse`]
/// records it so [`SecurityDescriptor::to_bytes`] reproduces the input byte
/// for byte; parts added later go after the recorded ones, in
/// [`Layout::samba`] order.
///
/// Samba (and so the lab) writes owner, group, SACL, DACL, right after the
/// header, with no gaps. Windows' `MakeSelfRelativeSD` writes SACL, DACL,
/// owner, group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Parts in offset order, each with the bytes that precede it (after the
    /// header or the previous part).
    entries: Vec<(Part, Vec<u8>)>,
    /// Bytes after the last part.
    trailing: Vec<u8>,
}

impl Default for Layout {
    fn default() -> Self {
        Layout::samba()
    }
}

impl Layout {
    /// Owner, group, SACL, DACL; no gaps. What Samba's NDR encoder (and so
    /// the Samba AD DC) writes. The default.
    pub fn samba() -> Layout {
        Layout::ordered(&[Part::Owner, Part::Group, Part::Sacl, Part::Dacl])
    }

    /// SACL, DACL, owner, group; no gaps. What Windows'
    /// `MakeSelfRelativeSD` writes.
    pub fn windows() -> Layout {
        Layout::ordered(&[Part::Sacl, Part::Dacl, Part::Owner, Part::Group])
    }

    fn ordered(parts: &[Part]) -> Layout {
        Layout {
            entries: parts.iter().map(|p| (*p, Vec::new())).collect(),
            trailing: Vec::new(),
        }
    }

    /// The parts in the order they are written.
    pub fn order(&self) -> Vec<Part> {
        self.entries.iter().map(|(p, _)| *p).collect()
    }

    /// Whether there are bytes between or after the parts.
    pub fn has_gaps(&self) -> bool {
        !self.trailing.is_empty() || self.entries.iter().any(|(_, gap)| !gap.is_empty())
    }
}

/// A security descriptor in self-relative form.
///
/// Equality compares the content (revision, control, owner, group, ACLs,
/// including ACE/ACL padding) but not the [`Layout`]; compare
/// [`SecurityDescriptor::to_bytes`] outputs for byte identity.
#[derive(Clone, Debug)]
pub struct SecurityDescriptor {
    /// Always 1.
    pub revision: u8,
    /// The `Sbz1` byte: resource-manager control bits, meaningful when
    /// `SE_RM_CONTROL_VALID` is set; normally 0.
    pub rm_control: u8,
    /// `SE_*` control flags, kept verbatim (`to_bytes` does not adjust
    /// them; see [`SecurityDescriptor::set_dacl`]).
    pub control: u16,
    pub owner: Option<Sid>,
    pub group: Option<Sid>,
    pub sacl: Option<Acl>,
    /// `None` with `SE_DACL_PRESENT` set is a NULL DACL (everyone has full
    /// access); `None` without it means no DACL was supplied.
    pub dacl: Option<Acl>,
    pub layout: Layout,
}

impl PartialEq for SecurityDescriptor {
    fn eq(&self, other: &Self) -> bool {
        self.revision == other.revision
            && self.rm_control == other.rm_control
            && self.control == other.control
            && self.owner == other.owner
            && self.group == other.group
            && self.sacl == other.sacl
            && self.dacl == other.dacl
    }
}

impl Eq for SecurityDescriptor {}

impl Default for SecurityDescriptor {
    fn default() -> Self {
        SecurityDescriptor::new()
    }
}

impl SecurityDescriptor {
    /// An empty self-relative descriptor: no owner, group or ACLs.
    pub fn new() -> SecurityDescriptor {
        SecurityDescriptor {
            revision: 1,
            rm_control: 0,
            control: SE_SELF_RELATIVE,
            owner: None,
            group: None,
            sacl: None,
            dacl: None,
            layout: Layout::default(),
        }
    }

    /// Whether all bits of `flags` are set in `control`.
    pub fn has_control(&self, flags: u16) -> bool {
        self.control & flags == flags
    }

    /// Sets the DACL and `SE_DACL_PRESENT` (`None` makes a NULL DACL).
    pub fn set_dacl(&mut self, dacl: Option<Acl>) {
        self.dacl = dacl;
        self.control |= SE_DACL_PRESENT;
    }

    /// Sets the SACL and `SE_SACL_PRESENT`.
    pub fn set_sacl(&mut self, sacl: Option<Acl>) {
        self.sacl = sacl;
        self.control |= SE_SACL_PRESENT;
    }

    /// Parses a self-relative descriptor such as AD's `nTSecurityDescriptor`.
    ///
    /// Offsets must lie in `20..len`; each part must fit the buffer. Parts
    /// whose offset is non-zero are decoded whatever the `*_PRESENT` flags
    /// say (as Samba does), and the control word is kept verbatim. Parts
    /// may come in any order with gaps between them; if two overlap, the
    /// descriptor is still accepted but `to_bytes` writes the
    /// [`Layout::samba`] layout.
    pub fn parse(bytes: &[u8]) -> Result<SecurityDescriptor, SdError> {
        let header =
            read_array::<SD_HEADER_LEN>(bytes, 0, bytes.len(), "security descriptor header")?;
        let revision = header[0];
        if revision != 1 {
            return Err(SdError::BadRevision {
                what: "security descriptor".into(),
                offset: 0,
                found: revision,
                expected: "1",
            });
        }
        let rm_control = header[1];
        let control = u16::from_le_bytes([header[2], header[3]]);
        let field = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let offsets = [
            (Part::Owner, "OffsetOwner", field(4)),
            (Part::Group, "OffsetGroup", field(8)),
            (Part::Sacl, "OffsetSacl", field(12)),
            (Part::Dacl, "OffsetDacl", field(16)),
        ];
        let mut sd = SecurityDescriptor {
            revision,
            rm_control,
            control,
            owner: None,
            group: None,
            sacl: None,
            dacl: None,
            layout: Layout::default(),
        };
        // (start, end, part) of each part present.
        let mut extents: Vec<(usize, usize, Part)> = Vec::with_capacity(4);
        for (part, field_name, value) in offsets {
            if value == 0 {
                continue;
            }
            let start = usize::try_from(value).unwrap_or(usize::MAX);
            if start < SD_HEADER_LEN {
                return Err(SdError::BadOffset {
                    field: field_name,
                    value,
                    reason: format!("points into the {SD_HEADER_LEN}-byte header"),
                });
            }
            if start >= bytes.len() {
                return Err(SdError::BadOffset {
                    field: field_name,
                    value,
                    reason: format!("points past the end of the {}-byte descriptor", bytes.len()),
                });
            }
            let len = match part {
                Part::Owner => {
                    let sid = Sid::decode(bytes, start, bytes.len(), "owner SID")?;
                    sd.owner = Some(sid);
                    sid.encoded_len()
                }
                Part::Group => {
                    let sid = Sid::decode(bytes, start, bytes.len(), "group SID")?;
                    sd.group = Some(sid);
                    sid.encoded_len()
                }
                Part::Sacl => {
                    let acl = Acl::decode(bytes, start, "SACL")?;
                    let len = acl.encoded_len();
                    sd.sacl = Some(acl);
                    len
                }
                Part::Dacl => {
                    let acl = Acl::decode(bytes, start, "DACL")?;
                    let len = acl.encoded_len();
                    sd.dacl = Some(acl);
                    len
                }
            };
            extents.push((start, start.saturating_add(len), part));
        }
        extents.sort_by_key(|(start, _, _)| *start);
        sd.layout = record_layout(bytes, &extents).unwrap_or_default();
        Ok(sd)
    }

    /// The self-relative binary form, laid out as [`Self::layout`] says
    /// (byte-identical to the parsed input if nothing changed). Fails if
    /// the revision is not 1, a part is too large for its size field, or
    /// an ACE body does not fit its type.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SdError> {
        if self.revision != 1 {
            return Err(SdError::Encode {
                what: "security descriptor".into(),
                reason: format!("revision {} is not 1", self.revision),
            });
        }
        let present = |part: Part| match part {
            Part::Owner => self.owner.is_some(),
            Part::Group => self.group.is_some(),
            Part::Sacl => self.sacl.is_some(),
            Part::Dacl => self.dacl.is_some(),
        };
        let mut order: Vec<(Part, &[u8])> = self
            .layout
            .entries
            .iter()
            .filter(|(part, _)| present(*part))
            .map(|(part, gap)| (*part, gap.as_slice()))
            .collect();
        for part in [Part::Owner, Part::Group, Part::Sacl, Part::Dacl] {
            if present(part) && !order.iter().any(|(p, _)| *p == part) {
                order.push((part, &[]));
            }
        }
        let mut out = vec![0u8; SD_HEADER_LEN];
        let mut offsets = [0u32; 4];
        for (part, gap) in order {
            out.extend_from_slice(gap);
            let offset = u32::try_from(out.len()).map_err(|_| SdError::Encode {
                what: format!("{} offset", part.name()),
                reason: format!("{} does not fit in 32 bits", out.len()),
            })?;
            match part {
                Part::Owner => {
                    if let Some(sid) = &self.owner {
                        offsets[0] = offset;
                        sid.write(&mut out);
                    }
                }
                Part::Group => {
                    if let Some(sid) = &self.group {
                        offsets[1] = offset;
                        sid.write(&mut out);
                    }
                }
                Part::Sacl => {
                    if let Some(acl) = &self.sacl {
                        offsets[2] = offset;
                        acl.encode(&mut out, "SACL")?;
                    }
                }
                Part::Dacl => {
                    if let Some(acl) = &self.dacl {
                        offsets[3] = offset;
                        acl.encode(&mut out, "DACL")?;
                    }
                }
            }
        }
        out.extend_from_slice(&self.layout.trailing);
        let mut header = Vec::with_capacity(SD_HEADER_LEN);
        header.push(self.revision);
        header.push(self.rm_control);
        header.extend_from_slice(&self.control.to_le_bytes());
        for offset in offsets {
            header.extend_from_slice(&offset.to_le_bytes());
        }
        for (slot, byte) in out.iter_mut().zip(header) {
            *slot = byte;
        }
        Ok(out)
    }

    /// Equal content and the same byte layout.
    pub fn eq_exact(&self, other: &Self) -> bool {
        self == other && self.layout == other.layout
    }
}

/// The layout of non-overlapping parts sorted by start, or `None` when two
/// overlap (then the default layout applies).
fn record_layout(bytes: &[u8], extents: &[(usize, usize, Part)]) -> Option<Layout> {
    let mut entries = Vec::with_capacity(extents.len());
    let mut previous_end = SD_HEADER_LEN;
    for (start, end, part) in extents {
        let gap = bytes.get(previous_end..*start)?;
        entries.push((*part, gap.to_vec()));
        previous_end = *end;
    }
    let trailing = bytes.get(previous_end..)?.to_vec();
    Some(Layout { entries, trailing })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ace;

    fn sample() -> SecurityDescriptor {
        let mut sd = SecurityDescriptor::new();
        sd.owner = Some("S-1-5-32-544".parse().unwrap());
        sd.group = Some("S-1-5-18".parse().unwrap());
        let mut dacl = Acl::new();
        dacl.aces.push(Ace::allowed(0, 0x10, Sid::world()));
        sd.set_dacl(Some(dacl));
        let mut sacl = Acl::new();
        sacl.aces.push(Ace::basic(
            crate::AceType::SYSTEM_AUDIT,
            0x40,
            0x20,
            Sid::world(),
        ));
        sd.set_sacl(Some(sacl));
        sd
    }

    #[test]
    fn samba_and_windows_layouts() {
        let mut sd = sample();
        let samba = sd.to_bytes().unwrap();
        // owner at 20 (16 bytes), group at 36 (12), SACL at 48, DACL after.
        assert_eq!(
            samba[4..20],
            [20, 0, 0, 0, 36, 0, 0, 0, 48, 0, 0, 0, 76, 0, 0, 0]
        );
        let parsed = SecurityDescriptor::parse(&samba).unwrap();
        assert!(parsed.eq_exact(&sd));
        sd.layout = Layout::windows();
        let windows = sd.to_bytes().unwrap();
        // SACL at 20 (28 bytes), DACL at 48 (28), owner at 76, group at 92.
        assert_eq!(
            windows[4..20],
            [76, 0, 0, 0, 92, 0, 0, 0, 20, 0, 0, 0, 48, 0, 0, 0]
        );
        let parsed = SecurityDescriptor::parse(&windows).unwrap();
        assert_eq!(parsed.layout.order(), Layout::windows().order());
        assert_eq!(parsed.to_bytes().unwrap(), windows);
        assert_eq!(parsed, sd);
        // Parts added after parsing go after the recorded ones.
        let mut partial = sample();
        partial.owner = None;
        partial.sacl = None;
        partial.layout = Layout::windows();
        let bytes = partial.to_bytes().unwrap();
        let mut parsed = SecurityDescriptor::parse(&bytes).unwrap();
        assert_eq!(parsed.layout.order(), [Part::Dacl, Part::Group]);
        parsed.owner = Some(Sid::local_system());
        let grown = SecurityDescriptor::parse(&parsed.to_bytes().unwrap()).unwrap();
        assert_eq!(grown.layout.order(), [Part::Dacl, Part::Group, Part::Owner]);
        assert_eq!(grown, parsed);
    }

    #[test]
    fn gaps_and_trailing_bytes_are_kept() {
        let sd = sample();
        let plain = sd.to_bytes().unwrap();
        // Re-lay out by hand: 4 bytes after the header, 8 between owner and
        // group, 2 trailing; offsets adjusted.
        let mut bytes = plain[..20].to_vec();
        bytes.extend_from_slice(&[0xa1; 4]);
        bytes.extend_from_slice(&plain[20..36]); // owner
        bytes.extend_from_slice(&[0xb2; 8]);
        bytes.extend_from_slice(&plain[36..]); // group, SACL, DACL
        bytes.extend_from_slice(&[0xc3; 2]);
        for (field, offset) in [(4, 24u32), (8, 48), (12, 60), (16, 88)] {
            bytes[field..field + 4].copy_from_slice(&offset.to_le_bytes());
        }
        let parsed = SecurityDescriptor::parse(&bytes).unwrap();
        assert_eq!(parsed, sd);
        assert!(parsed.layout.has_gaps());
        assert_eq!(parsed.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn overlapping_parts_are_accepted_and_canonicalised() {
        let mut sd = sample();
        sd.group = sd.owner;
        let mut bytes = sd.to_bytes().unwrap();
        // Point the group at the owner's bytes: a shared SID.
        bytes[8..12].copy_from_slice(&20u32.to_le_bytes());
        let parsed = SecurityDescriptor::parse(&bytes).unwrap();
        assert_eq!(parsed, sd);
        assert_eq!(parsed.layout, Layout::samba());
        let canonical = parsed.to_bytes().unwrap();
        assert_eq!(canonical, sd.to_bytes().unwrap());
        assert_eq!(SecurityDescriptor::parse(&canonical).unwrap(), sd);
    }

    #[test]
    fn control_and_null_dacl() {
        let mut sd = SecurityDescriptor::new();
        sd.set_dacl(None);
        let bytes = sd.to_bytes().unwrap();
        assert_eq!(
            bytes,
            [
                1, 0, 4, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]
        );
        let parsed = SecurityDescriptor::parse(&bytes).unwrap();
        assert!(parsed.has_control(SE_DACL_PRESENT | SE_SELF_RELATIVE));
        assert!(parsed.dacl.is_none());
        let mut bad = sd.clone();
        bad.revision = 2;
        let err = bad.to_bytes().unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot encode security descriptor: revision 2 is not 1"
        );
    }
}
