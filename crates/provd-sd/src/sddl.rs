//! SDDL (MS-DTYP 2.5.1): text to and from [`SecurityDescriptor`].
//!
//! Output follows Windows (`ConvertSecurityDescriptorToStringSecurityDescriptor`)
//! and Samba ≥ 4.19's `sddl_encode` (what 4.22's `as_sddl` and samba-tool print):
//! sections `O:` `G:` `D:` `S:`; ACL flags `P`, `AR`, `AI`; ACE flags in the
//! order `OI CI NP IO ID SA FA`; GUIDs in lower case; SIDs as aliases when
//! known. Rights:
//! * letters in ascending bit order, `CC DC LC SW RP WP DT LO CR SD RC WD WO
//!   GA GX GW GR`, when letters cover the mask (`CCDCLCSWRPWPDTLOCRSDRCWDWO`
//!   for AD's full control);
//! * else `FA`, `FR`, `FW` or `FX` when the mask is exactly that file right
//!   (each holds SYNCHRONIZE, which has no letter);
//! * else `0x` and lower-case hex without leading zeros (`0x200`).
//!
//! Samba 4.17 wrote the same bytes differently: letters in the order `RP WP
//! CR CC DC LC LO RC WO WD SD DT SW GA GR GW GX`, hex with eight digits, never
//! `F*`. Compare descriptors (or masks), not SDDL text, across DC versions.
//! Differences from Samba: a NULL DACL/SACL is written as
//! `D:NO_ACCESS_CONTROL` (as Windows does; Samba omits the section) and
//! mandatory-label ACEs (`ML`, policies `NW NR NX`) are supported.
//!
//! Input is strict: no whitespace, upper-case tokens, exactly six ACE
//! fields, GUIDs only on object ACE types. Sections may come in any order,
//! each at most once. Rights letters may come in any order, as Windows and
//! Samba accept them (Samba 4.17's order, Windows', or another; a repeated
//! letter adds nothing); a hex mask is `0x` and up to 32 bits of hex digits
//! (with or without leading zeros). The whole-mask tokens of
//! MS-DTYP 2.5.1.1 are accepted with their Windows values: `FA`, `FR`, `FW`,
//! `FX` (file), `KA`, `KR`, `KW`, `KX` (registry) and `NR`, `NW`, `NX`
//! (label policies). `K*` are never written: on directory objects their masks
//! are ordinary combinations of DS rights (`KA` = `CCDCLCSWRPWPSDRCWDWO`) and
//! Samba never writes them (Windows' writer may, for registry keys).
//!
//! A token means what its field says: `KA` is KEY_ALL in the rights field
//! and Key Admins (domain RID 526) as a SID; `FA` is FILE_ALL as a right and
//! the failed-access audit flag among the ACE flags. Domain-relative aliases
//! (`DA`, `DU`, `KA`, `EK`, `CN`, …) need the domain SID.
//!
//! What SDDL cannot carry, and so a binary → SDDL → binary trip drops or
//! normalises: control bits other than the present/protected/auto-inherit
//! ones (e.g. `SE_OWNER_DEFAULTED`), an ACL whose present flag is clear
//! (and the flags of a section that is not written), `rm_control`, ACL
//! revisions (SDDL
//! input always gives `ACL_REVISION_DS`, as AD stores them), ACE and ACL
//! padding, and the layout. ACEs of undecoded types and unknown ACE flag
//! bits cannot be written at all ([`SdError::NotRepresentable`]).

use uuid::Uuid;

use super::ace::{
    Ace, AceBody, AceType, BodyKind, CONTAINER_INHERIT_ACE, FAILED_ACCESS_ACE_FLAG,
    INHERIT_ONLY_ACE, INHERITED_ACE, NO_PROPAGATE_INHERIT_ACE, OBJECT_INHERIT_ACE,
    SUCCESSFUL_ACCESS_ACE_FLAG,
};
use super::acl::{ACL_REVISION_DS, Acl};
use super::descriptor::{
    SE_DACL_AUTO_INHERIT_REQ, SE_DACL_AUTO_INHERITED, SE_DACL_PRESENT, SE_DACL_PROTECTED,
    SE_SACL_AUTO_INHERIT_REQ, SE_SACL_AUTO_INHERITED, SE_SACL_PRESENT, SE_SACL_PROTECTED,
    SE_SELF_RELATIVE, SecurityDescriptor,
};
use super::error::{SdError, SddlProblem};
use super::rights;
use super::sid::{Sid, parse_sddl_sid};

/// The control bits SDDL can express.
pub const SDDL_CONTROL_BITS: u16 = SE_SELF_RELATIVE
    | SE_DACL_PRESENT
    | SE_SACL_PRESENT
    | SE_DACL_PROTECTED
    | SE_SACL_PROTECTED
    | SE_DACL_AUTO_INHERIT_REQ
    | SE_SACL_AUTO_INHERIT_REQ
    | SE_DACL_AUTO_INHERITED
    | SE_SACL_AUTO_INHERITED;

const ACE_TYPES: &[(&str, AceType)] = &[
    ("A", AceType::ACCESS_ALLOWED),
    ("D", AceType::ACCESS_DENIED),
    ("OA", AceType::ACCESS_ALLOWED_OBJECT),
    ("OD", AceType::ACCESS_DENIED_OBJECT),
    ("AU", AceType::SYSTEM_AUDIT),
    ("AL", AceType::SYSTEM_ALARM),
    ("OU", AceType::SYSTEM_AUDIT_OBJECT),
    ("OL", AceType::SYSTEM_ALARM_OBJECT),
    ("ML", AceType::SYSTEM_MANDATORY_LABEL),
];

const ACE_FLAGS: &[(&str, u8)] = &[
    ("OI", OBJECT_INHERIT_ACE),
    ("CI", CONTAINER_INHERIT_ACE),
    ("NP", NO_PROPAGATE_INHERIT_ACE),
    ("IO", INHERIT_ONLY_ACE),
    ("ID", INHERITED_ACE),
    ("SA", SUCCESSFUL_ACCESS_ACE_FLAG),
    ("FA", FAILED_ACCESS_ACE_FLAG),
];

/// Rights written as letters, in Windows' order: ascending bits. Samba
/// writes this order since 4.19 ("Reorder SDDL access flags table to match
/// Windows"); 4.17 had its own (see the module documentation).
const RIGHTS: &[(&str, u32)] = &[
    ("CC", rights::CREATE_CHILD),
    ("DC", rights::DELETE_CHILD),
    ("LC", rights::LIST_CHILDREN),
    ("SW", rights::SELF_WRITE),
    ("RP", rights::READ_PROPERTY),
    ("WP", rights::WRITE_PROPERTY),
    ("DT", rights::DELETE_TREE),
    ("LO", rights::LIST_OBJECT),
    ("CR", rights::CONTROL_ACCESS),
    ("SD", rights::DELETE),
    ("RC", rights::READ_CONTROL),
    ("WD", rights::WRITE_DAC),
    ("WO", rights::WRITE_OWNER),
    ("GA", rights::GENERIC_ALL),
    ("GX", rights::GENERIC_EXECUTE),
    ("GW", rights::GENERIC_WRITE),
    ("GR", rights::GENERIC_READ),
];

/// File rights (MS-DTYP 2.5.1.1 values), written for exactly these masks
/// when the letters cannot cover them, as Windows and Samba ≥ 4.19 do.
const FILE_RIGHTS: &[(&str, u32)] = &[
    ("FA", 0x001f_01ff),
    ("FR", 0x0012_0089),
    ("FW", 0x0012_0116),
    ("FX", 0x0012_00a0),
];

/// Rights accepted on input only (MS-DTYP 2.5.1.1 values): registry rights
/// and, outside `ML` ACEs, the label policies.
const INPUT_ONLY_RIGHTS: &[(&str, u32)] = &[
    ("KA", 0x000f_003f),
    ("KR", 0x0002_0019),
    ("KW", 0x0002_0006),
    ("KX", 0x0002_0019),
    ("NW", 0x0000_0001),
    ("NR", 0x0000_0002),
    ("NX", 0x0000_0004),
];

/// Mandatory-label policies, written for `ML` ACEs.
const LABEL_RIGHTS: &[(&str, u32)] = &[("NW", 0x1), ("NR", 0x2), ("NX", 0x4)];

impl SecurityDescriptor {
    /// Parses SDDL. `domain_sid` resolves domain-relative aliases (`DA`,
    /// `DU`, …). The result has `SE_SELF_RELATIVE`, the present flags of the
    /// sections given, ACLs of revision `ACL_REVISION_DS` and the default
    /// layout.
    pub fn from_sddl(text: &str, domain_sid: Option<&Sid>) -> Result<SecurityDescriptor, SdError> {
        Parser::new(text, domain_sid)?.descriptor()
    }

    /// Writes SDDL (see the module documentation for the format). With
    /// `domain_sid`, SIDs in that domain get their aliases (`DA`, …).
    ///
    /// A `D:` (`S:`) section is written only when `SE_DACL_PRESENT`
    /// (`SE_SACL_PRESENT`) is set, as Windows and Samba do: an ACL whose
    /// present flag is clear does not count and is left out.
    pub fn to_sddl(&self, domain_sid: Option<&Sid>) -> Result<String, SdError> {
        let mut out = String::new();
        if let Some(owner) = &self.owner {
            out.push_str("O:");
            out.push_str(&owner.to_sddl(domain_sid));
        }
        if let Some(group) = &self.group {
            out.push_str("G:");
            out.push_str(&group.to_sddl(domain_sid));
        }
        if self.control & SE_DACL_PRESENT != 0 {
            out.push_str("D:");
            write_acl(
                &mut out,
                self.control,
                [
                    SE_DACL_PROTECTED,
                    SE_DACL_AUTO_INHERIT_REQ,
                    SE_DACL_AUTO_INHERITED,
                ],
                self.dacl.as_ref(),
                domain_sid,
                "DACL",
            )?;
        }
        if self.control & SE_SACL_PRESENT != 0 {
            out.push_str("S:");
            write_acl(
                &mut out,
                self.control,
                [
                    SE_SACL_PROTECTED,
                    SE_SACL_AUTO_INHERIT_REQ,
                    SE_SACL_AUTO_INHERITED,
                ],
                self.sacl.as_ref(),
                domain_sid,
                "SACL",
            )?;
        }
        Ok(out)
    }
}

impl Ace {
    /// Parses one ACE string, `(type;flags;rights;object;inherited;sid)`.
    pub fn from_sddl(text: &str, domain_sid: Option<&Sid>) -> Result<Ace, SdError> {
        let mut parser = Parser::new(text, domain_sid)?;
        let ace = match parser.peek() {
            Some(b'(') => parser.ace()?,
            _ => return Err(parser.error(0, SddlProblem::ExpectedAce(snippet(text)))),
        };
        if parser.pos < text.len() {
            let rest = text.get(parser.pos..).unwrap_or_default();
            return Err(parser.error(parser.pos, SddlProblem::TrailingGarbage(snippet(rest))));
        }
        Ok(ace)
    }

    /// The ACE as SDDL, `(type;flags;rights;object;inherited;sid)`.
    pub fn to_sddl(&self, domain_sid: Option<&Sid>) -> Result<String, SdError> {
        let mut out = String::new();
        write_ace(&mut out, self, domain_sid, "ACE")?;
        Ok(out)
    }
}

/// Formats an access mask as SDDL rights: letters when they cover it, else
/// a file right's name when it is exactly that mask, else `0x` and hex
/// without leading zeros; empty for 0.
pub fn format_rights(mask: u32) -> String {
    format_mask(mask, RIGHTS, FILE_RIGHTS)
}

fn format_mask(mask: u32, letters: &[(&str, u32)], whole: &[(&str, u32)]) -> String {
    let covered = letters.iter().fold(0u32, |acc, (_, bit)| acc | bit);
    if mask & !covered == 0 {
        return letters
            .iter()
            .filter(|(_, bit)| mask & bit != 0)
            .map(|(name, _)| *name)
            .collect();
    }
    match whole.iter().find(|(_, value)| *value == mask) {
        Some((name, _)) => (*name).to_string(),
        None => format!("{mask:#x}"),
    }
}

fn write_acl(
    out: &mut String,
    control: u16,
    [protected, auto_inherit_req, auto_inherited]: [u16; 3],
    acl: Option<&Acl>,
    domain: Option<&Sid>,
    what: &str,
) -> Result<(), SdError> {
    if control & protected != 0 {
        out.push('P');
    }
    if control & auto_inherit_req != 0 {
        out.push_str("AR");
    }
    if control & auto_inherited != 0 {
        out.push_str("AI");
    }
    match acl {
        None => out.push_str("NO_ACCESS_CONTROL"),
        Some(acl) => {
            for (index, ace) in acl.aces.iter().enumerate() {
                write_ace(out, ace, domain, &format!("{what} ACE {index}"))?;
            }
        }
    }
    Ok(())
}

fn write_ace(out: &mut String, ace: &Ace, domain: Option<&Sid>, what: &str) -> Result<(), SdError> {
    let not_representable = |reason: String| SdError::NotRepresentable {
        what: what.to_string(),
        reason,
    };
    let type_name = ACE_TYPES
        .iter()
        .find(|(_, t)| *t == ace.ace_type)
        .map(|(name, _)| *name)
        .ok_or_else(|| {
            not_representable(format!(
                "ACE type 0x{:02x} has no SDDL form",
                ace.ace_type.0
            ))
        })?;
    let known_flags = ACE_FLAGS.iter().fold(0u8, |acc, (_, bit)| acc | bit);
    if ace.flags & !known_flags != 0 {
        return Err(not_representable(format!(
            "ACE flags 0x{:02x} include bits with no SDDL form (0x{:02x})",
            ace.flags,
            ace.flags & !known_flags
        )));
    }
    let (mask, object_type, inherited_object_type, sid) = match &ace.body {
        AceBody::Basic { mask, sid, .. } => (*mask, None, None, sid),
        AceBody::Object {
            mask,
            object_type,
            inherited_object_type,
            sid,
            ..
        } => (*mask, *object_type, *inherited_object_type, sid),
        AceBody::Opaque(_) => {
            return Err(not_representable("the ACE body is not decoded".into()));
        }
    };
    if ace.ace_type.body_kind() != ace.body.kind() {
        return Err(not_representable(format!(
            "type 0x{:02x} needs a {:?} body",
            ace.ace_type.0,
            ace.ace_type.body_kind()
        )));
    }
    out.push('(');
    out.push_str(type_name);
    out.push(';');
    for (name, bit) in ACE_FLAGS {
        if ace.flags & bit != 0 {
            out.push_str(name);
        }
    }
    out.push(';');
    if ace.ace_type == AceType::SYSTEM_MANDATORY_LABEL {
        out.push_str(&format_mask(mask, LABEL_RIGHTS, &[]));
    } else {
        out.push_str(&format_rights(mask));
    }
    out.push(';');
    if let Some(guid) = object_type {
        out.push_str(&guid.hyphenated().to_string());
    }
    out.push(';');
    if let Some(guid) = inherited_object_type {
        out.push_str(&guid.hyphenated().to_string());
    }
    out.push(';');
    out.push_str(&sid.to_sddl(domain));
    out.push(')');
    Ok(())
}

/// Up to 16 characters of `text`, for error messages.
fn snippet(text: &str) -> String {
    text.chars().take(16).collect()
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    domain: Option<&'a Sid>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, domain: Option<&'a Sid>) -> Result<Parser<'a>, SdError> {
        if let Some((position, c)) = text.char_indices().find(|(_, c)| !c.is_ascii()) {
            return Err(SdError::Sddl {
                position,
                problem: SddlProblem::NonAscii(c),
            });
        }
        Ok(Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            domain,
        })
    }

    fn error(&self, position: usize, problem: SddlProblem) -> SdError {
        SdError::Sddl { position, problem }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or_default()
    }

    /// A section header (`O:`, `G:`, `D:`, `S:`) starts at `at`.
    fn section_at(&self, at: usize) -> Option<u8> {
        match (self.bytes.get(at), self.bytes.get(at.saturating_add(1))) {
            (Some(c @ (b'O' | b'G' | b'D' | b'S')), Some(b':')) => Some(*c),
            _ => None,
        }
    }

    fn descriptor(&mut self) -> Result<SecurityDescriptor, SdError> {
        let mut sd = SecurityDescriptor::new();
        let mut seen: Vec<u8> = Vec::new();
        while self.pos < self.bytes.len() {
            let Some(section) = self.section_at(self.pos) else {
                return Err(
                    self.error(self.pos, SddlProblem::ExpectedSection(snippet(self.rest())))
                );
            };
            if seen.contains(&section) {
                return Err(
                    self.error(self.pos, SddlProblem::DuplicateSection(char::from(section)))
                );
            }
            seen.push(section);
            self.pos += 2;
            match section {
                b'O' => sd.owner = Some(self.section_sid('O')?),
                b'G' => sd.group = Some(self.section_sid('G')?),
                b'D' => {
                    let (flags, acl) = self.acl([
                        SE_DACL_PROTECTED,
                        SE_DACL_AUTO_INHERIT_REQ,
                        SE_DACL_AUTO_INHERITED,
                    ])?;
                    sd.control |= flags | SE_DACL_PRESENT;
                    sd.dacl = acl;
                }
                _ => {
                    let (flags, acl) = self.acl([
                        SE_SACL_PROTECTED,
                        SE_SACL_AUTO_INHERIT_REQ,
                        SE_SACL_AUTO_INHERITED,
                    ])?;
                    sd.control |= flags | SE_SACL_PRESENT;
                    sd.sacl = acl;
                }
            }
        }
        Ok(sd)
    }

    /// The SID of an `O:` or `G:` section: everything up to the next
    /// section header (SIDs contain no ':').
    fn section_sid(&mut self, section: char) -> Result<Sid, SdError> {
        let start = self.pos;
        let end = match self.rest().find(':') {
            // The character before the next ':' is the next section's letter.
            Some(colon) => (start + colon).saturating_sub(1).max(start),
            None => self.bytes.len(),
        };
        let text = self.text.get(start..end).unwrap_or_default();
        if text.is_empty() {
            return Err(self.error(start, SddlProblem::EmptySid(section)));
        }
        let sid = parse_sddl_sid(text, self.domain).map_err(|p| self.error(start, p))?;
        self.pos = end;
        Ok(sid)
    }

    /// ACL flags and ACEs of a `D:` or `S:` section. Returns the control
    /// bits for the flags and the ACL (`None` for `NO_ACCESS_CONTROL`).
    fn acl(
        &mut self,
        [protected, req, inherited]: [u16; 3],
    ) -> Result<(u16, Option<Acl>), SdError> {
        let mut flags = 0u16;
        let mut null = false;
        loop {
            let rest = self.rest();
            if rest.starts_with("NO_ACCESS_CONTROL") {
                null = true;
                self.pos += "NO_ACCESS_CONTROL".len();
            } else if rest.starts_with("AR") {
                flags |= req;
                self.pos += 2;
            } else if rest.starts_with("AI") {
                flags |= inherited;
                self.pos += 2;
            } else if rest.starts_with('P') {
                flags |= protected;
                self.pos += 1;
            } else {
                break;
            }
        }
        let mut acl = Acl::new();
        acl.revision = ACL_REVISION_DS;
        let flags_end = self.pos;
        while self.peek() == Some(b'(') {
            if null {
                return Err(self.error(self.pos, SddlProblem::AcesAfterNoAccessControl));
            }
            acl.aces.push(self.ace()?);
        }
        match self.peek() {
            None => {}
            Some(_) if self.section_at(self.pos).is_some() => {}
            Some(b')') => return Err(self.error(self.pos, SddlProblem::UnopenedParen)),
            Some(_) if self.pos == flags_end && acl.aces.is_empty() => {
                return Err(self.error(self.pos, SddlProblem::UnknownAclFlag(snippet(self.rest()))));
            }
            Some(_) => {
                return Err(
                    self.error(self.pos, SddlProblem::TrailingGarbage(snippet(self.rest())))
                );
            }
        }
        Ok((flags, if null { None } else { Some(acl) }))
    }

    /// One `(…)` ACE at the current position.
    fn ace(&mut self) -> Result<Ace, SdError> {
        let open = self.pos;
        let body_start = open + 1;
        let close = match self
            .bytes
            .get(body_start..)
            .and_then(|b| b.iter().position(|c| *c == b'(' || *c == b')'))
        {
            Some(i) if self.bytes.get(body_start + i) == Some(&b')') => body_start + i,
            _ => return Err(self.error(open, SddlProblem::UnclosedParen)),
        };
        let body = self.text.get(body_start..close).unwrap_or_default();
        let mut fields: Vec<(usize, &str)> = Vec::with_capacity(6);
        let mut field_start = body_start;
        for field in body.split(';') {
            fields.push((field_start, field));
            field_start += field.len() + 1;
        }
        let [
            (type_at, type_text),
            (flags_at, flags_text),
            (rights_at, rights_text),
            (object_at, object_text),
            (inherited_at, inherited_text),
            (sid_at, sid_text),
        ] = fields[..]
        else {
            return Err(self.error(open, SddlProblem::AceFieldCount(fields.len())));
        };
        let ace_type = ACE_TYPES
            .iter()
            .find(|(name, _)| *name == type_text)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                self.error(type_at, SddlProblem::UnknownAceType(type_text.to_string()))
            })?;
        let mut flags = 0u8;
        for (i, token) in tokens(flags_text) {
            let bit = ACE_FLAGS
                .iter()
                .find(|(name, _)| *name == token)
                .map(|(_, bit)| *bit)
                .ok_or_else(|| {
                    self.error(flags_at + i, SddlProblem::UnknownAceFlag(token.to_string()))
                })?;
            flags |= bit;
        }
        let mask = self.rights(rights_at, rights_text)?;
        let object_type = self.guid(object_at, object_text, type_text, ace_type)?;
        let inherited_object_type = self.guid(inherited_at, inherited_text, type_text, ace_type)?;
        if sid_text.is_empty() {
            return Err(self.error(
                sid_at,
                SddlProblem::BadSid {
                    text: String::new(),
                    reason: "the ACE has no SID".into(),
                },
            ));
        }
        let sid = parse_sddl_sid(sid_text, self.domain).map_err(|p| self.error(sid_at, p))?;
        self.pos = close + 1;
        Ok(match ace_type.body_kind() {
            BodyKind::Object => Ace::object(
                ace_type,
                flags,
                mask,
                object_type,
                inherited_object_type,
                sid,
            ),
            _ => Ace::basic(ace_type, flags, mask, sid),
        })
    }

    fn rights(&self, at: usize, text: &str) -> Result<u32, SdError> {
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            let bad = || self.error(at, SddlProblem::BadHexMask(text.to_string()));
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            return u32::from_str_radix(hex, 16).map_err(|_| bad());
        }
        let mut mask = 0u32;
        for (i, token) in tokens(text) {
            let bit = RIGHTS
                .iter()
                .chain(FILE_RIGHTS)
                .chain(INPUT_ONLY_RIGHTS)
                .find(|(name, _)| *name == token)
                .map(|(_, bit)| *bit)
                .ok_or_else(|| self.error(at + i, SddlProblem::UnknownRight(token.to_string())))?;
            mask |= bit;
        }
        Ok(mask)
    }

    fn guid(
        &self,
        at: usize,
        text: &str,
        type_text: &str,
        ace_type: AceType,
    ) -> Result<Option<Uuid>, SdError> {
        if text.is_empty() {
            return Ok(None);
        }
        if ace_type.body_kind() != BodyKind::Object {
            return Err(self.error(at, SddlProblem::GuidOnNonObjectAce(type_text.to_string())));
        }
        parse_guid(text)
            .map(Some)
            .ok_or_else(|| self.error(at, SddlProblem::BadGuid(text.to_string())))
    }
}

/// Two-character tokens with their offsets; an odd last character is a
/// token of its own (and matches nothing).
fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    (0..text.len()).step_by(2).map(move |i| {
        (
            i,
            text.get(i..i.saturating_add(2).min(text.len()))
                .unwrap_or_default(),
        )
    })
}

/// A GUID in exactly the `8-4-4-4-12` hex form (either case).
fn parse_guid(text: &str) -> Option<Uuid> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let well_formed = bytes.iter().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => *b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    if !well_formed {
        return None;
    }
    Uuid::try_parse(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Sid {
        "S-1-5-21-1111111111-2222222222-3333333333".parse().unwrap()
    }

    #[test]
    fn rights_format_like_windows() {
        // Windows' and Samba 4.22's rendering; the hex and generic cases are
        // from Wine's ConvertSecurityDescriptorToStringSecurityDescriptor
        // conformance tests, which also run on Windows.
        for (mask, text) in [
            (0, ""),
            (0x1, "CC"),
            (0x10, "RP"),
            (0x3, "CCDC"),
            (0x000f_01ff, "CCDCLCSWRPWPDTLOCRSDRCWDWO"),
            (0x000f_003f, "CCDCLCSWRPWPSDRCWDWO"),
            (0x0002_001f, "CCDCLCSWRPRC"),
            (0x0002_0094, "LCRPLORC"),
            (0x1000_0000, "GA"),
            (0xf000_0000, "GAGXGWGR"),
            (0x1000_0001, "CCGA"),
            (0x200, "0x200"),
            (0x0012_019f, "0x12019f"),
            (0x001f_01ff, "FA"),
            (0x0012_0089, "FR"),
            (0x0012_0116, "FW"),
            (0x0012_00a0, "FX"),
            (0x0012_00a9, "0x1200a9"),
            (0xffff_ffff, "0xffffffff"),
        ] {
            assert_eq!(format_rights(mask), text, "{mask:#x}");
        }
    }

    #[test]
    fn ace_round_trip() {
        let d = domain();
        for text in [
            "(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;S-1-5-21-1111111111-2222222222-3333333333-1105)",
            "(OA;CIIO;RPWP;bf967a0a-0de6-11d0-a285-00aa003049e2;bf967aba-0de6-11d0-a285-00aa003049e2;DA)",
            "(OA;;CR;1131f6aa-9c07-11d1-f79f-00c04fc2dcd2;;RO)",
            "(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;SY)",
            "(OU;CIIOIDSA;WP;f30e3bbe-9ff0-11d1-b603-0000f80367c1;bf967aa5-0de6-11d0-a285-00aa003049e2;WD)",
            "(AU;FA;0x200;;;S-1-5-32-557)",
            "(A;;FA;;;KA)",
            "(D;OICINPIOID;GA;;;AN)",
            "(OD;;;;;WD)",
            "(AL;SAFA;RP;;;WD)",
            "(OL;;RP;;;WD)",
            "(ML;;NWNR;;;LW)",
        ] {
            let ace = Ace::from_sddl(text, Some(&d)).unwrap();
            assert_eq!(ace.to_sddl(Some(&d)).unwrap(), text);
            let bytes = ace.to_bytes().unwrap();
            assert_eq!(Ace::from_bytes(&bytes).unwrap(), ace);
        }
        let reset = Ace::from_sddl(
            "(OA;CIIO;CR;00299570-246D-11D0-A768-00AA006E0529;;AU)",
            None,
        )
        .unwrap();
        assert_eq!(
            reset.object_type().unwrap().to_string(),
            "00299570-246d-11d0-a768-00aa006e0529"
        );
        assert_eq!(
            Ace::from_sddl("(A;;FA;;;WD)", None).unwrap().mask(),
            Some(0x001f_01ff)
        );
        assert_eq!(
            Ace::from_sddl("(A;;0X1F;;;WD)", None).unwrap().mask(),
            Some(0x1f)
        );
    }

    #[test]
    fn descriptor_sections() {
        let d = domain();
        let sd = SecurityDescriptor::from_sddl("D:PAI(A;;RP;;;WD)O:BAG:DU", Some(&d)).unwrap();
        assert_eq!(
            sd.control,
            SE_SELF_RELATIVE | SE_DACL_PRESENT | SE_DACL_PROTECTED | SE_DACL_AUTO_INHERITED
        );
        assert_eq!(sd.to_sddl(Some(&d)).unwrap(), "O:BAG:DUD:PAI(A;;RP;;;WD)");
        let sd = SecurityDescriptor::from_sddl("D:PARAINO_ACCESS_CONTROLS:", None).unwrap();
        assert!(sd.dacl.is_none());
        assert_eq!(sd.sacl, Some(Acl::new()));
        assert_eq!(sd.to_sddl(None).unwrap(), "D:PARAINO_ACCESS_CONTROLS:");
        let sd = SecurityDescriptor::from_sddl("", None).unwrap();
        assert_eq!(sd, SecurityDescriptor::new());
        assert_eq!(sd.to_sddl(None).unwrap(), "");
        let sd = SecurityDescriptor::from_sddl(
            "O:S-1-5-21-1111111111-2222222222-3333333333-512G:S-1-5-32-544",
            None,
        )
        .unwrap();
        assert_eq!(sd.to_sddl(Some(&d)).unwrap(), "O:DAG:BA");
        assert_eq!(
            sd.to_sddl(None).unwrap(),
            "O:S-1-5-21-1111111111-2222222222-3333333333-512G:BA"
        );
    }

    #[test]
    fn unrepresentable() {
        let mut sd = SecurityDescriptor::new();
        let mut acl = Acl::new();
        acl.aces.push(Ace {
            ace_type: AceType(0x09),
            flags: 0,
            body: AceBody::Opaque(vec![0; 12]),
        });
        sd.set_dacl(Some(acl));
        let err = sd.to_sddl(None).unwrap_err().to_string();
        assert_eq!(
            err,
            "cannot write DACL ACE 0 as SDDL: ACE type 0x09 has no SDDL form"
        );
        let mut ace = Ace::allowed(0x20, 1, Sid::world());
        let err = ace.to_sddl(None).unwrap_err().to_string();
        assert!(
            err.contains("include bits with no SDDL form (0x20)"),
            "{err}"
        );
        ace.flags = 0;
        assert_eq!(ace.to_sddl(None).unwrap(), "(A;;CC;;;WD)");
    }
}
