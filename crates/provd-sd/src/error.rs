//! The one error type of the security-descriptor codec.

/// What went wrong while decoding, encoding or converting a security
/// descriptor, a SID or SDDL text. Every message names the field and the
/// byte offset (binary) or the character position (SDDL) it refers to.
///
/// `what` fields are paths such as `"DACL ACE 3 SID"`; byte offsets are
/// counted from the start of the buffer given to the parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdError {
    /// The buffer ends before a field does.
    #[error("{what} at byte {offset}: needs {need} bytes, but only {have} remain")]
    Truncated {
        what: String,
        offset: usize,
        need: usize,
        have: usize,
    },
    /// A revision byte has a value this codec does not accept.
    #[error("{what} at byte {offset}: revision {found} is not {expected}")]
    BadRevision {
        what: String,
        offset: usize,
        found: u8,
        expected: &'static str,
    },
    /// Bytes are left over after a value that must fill its buffer exactly.
    #[error("{what} at byte {offset}: {extra} unexpected bytes after its end")]
    TrailingBytes {
        what: String,
        offset: usize,
        extra: usize,
    },
    /// A binary SID claims more than 15 sub-authorities.
    #[error("{what} at byte {offset}: {count} sub-authorities, at most 15 are allowed")]
    TooManySubAuthorities {
        what: String,
        offset: usize,
        count: usize,
    },
    /// An offset in the descriptor header points outside the buffer or into
    /// the header itself.
    #[error("{field} offset {value} is invalid: {reason}")]
    BadOffset {
        field: &'static str,
        value: u32,
        reason: String,
    },
    /// An ACL's `AclSize` is below its 8-byte header or runs past the buffer.
    #[error("{what} at byte {offset}: AclSize {size} {reason}")]
    BadAclSize {
        what: String,
        offset: usize,
        size: u16,
        reason: String,
    },
    /// An ACE's `AceSize` is below what its type needs or runs past its ACL.
    #[error("{what} at byte {offset}: AceSize {size} {reason}")]
    BadAceSize {
        what: String,
        offset: usize,
        size: u16,
        reason: String,
    },
    /// An object ACE's `Flags` field has bits other than
    /// `ACE_OBJECT_TYPE_PRESENT` and `ACE_INHERITED_OBJECT_TYPE_PRESENT`.
    #[error(
        "{what} at byte {offset}: object flags 0x{flags:08x} have unknown bits 0x{unknown:08x}"
    )]
    BadObjectFlags {
        what: String,
        offset: usize,
        flags: u32,
        unknown: u32,
    },
    /// A value cannot be encoded (too large for its size field, or
    /// inconsistent).
    #[error("cannot encode {what}: {reason}")]
    Encode { what: String, reason: String },
    /// A descriptor cannot be written as SDDL.
    #[error("cannot write {what} as SDDL: {reason}")]
    NotRepresentable { what: String, reason: String },
    /// A SID string (`S-1-…`) is malformed.
    #[error("SID string {text:?}: {reason}")]
    SidText { text: String, reason: String },
    /// SDDL text is malformed. `position` is the 0-based byte index in the
    /// input.
    #[error("SDDL at position {position}: {problem}")]
    Sddl {
        position: usize,
        problem: SddlProblem,
    },
}

/// What is wrong with SDDL text (see [`SdError::Sddl`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SddlProblem {
    #[error("non-ASCII character {0:?}")]
    NonAscii(char),
    #[error("expected a section O:, G:, D: or S:, found {0:?}")]
    ExpectedSection(String),
    #[error("expected an ACE \"(…)\", found {0:?}")]
    ExpectedAce(String),
    #[error("section {0}: appears twice")]
    DuplicateSection(char),
    #[error("section {0}: has no SID")]
    EmptySid(char),
    #[error("'(' has no matching ')'")]
    UnclosedParen,
    #[error("')' without a matching '('")]
    UnopenedParen,
    #[error("unexpected {0:?} after the ACL (expected '(', the next section or the end)")]
    TrailingGarbage(String),
    #[error("NO_ACCESS_CONTROL cannot be followed by ACEs")]
    AcesAfterNoAccessControl,
    #[error("unknown ACL flag at {0:?} (expected P, AR, AI or NO_ACCESS_CONTROL)")]
    UnknownAclFlag(String),
    #[error(
        "ACE has {0} fields separated by ';', expected 6 (type;flags;rights;object;inherited object;SID)"
    )]
    AceFieldCount(usize),
    #[error("unknown ACE type {0:?} (expected A, D, OA, OD, AU, OU, AL, OL or ML)")]
    UnknownAceType(String),
    #[error("unknown ACE flag {0:?} (expected OI, CI, NP, IO, ID, SA or FA)")]
    UnknownAceFlag(String),
    #[error("unknown access right {0:?}")]
    UnknownRight(String),
    #[error("bad hexadecimal access mask {0:?}")]
    BadHexMask(String),
    #[error("bad GUID {0:?} (expected xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
    BadGuid(String),
    #[error("ACE type {0} is not an object ACE type and cannot carry a GUID")]
    GuidOnNonObjectAce(String),
    #[error("unknown SID alias {0:?}")]
    UnknownAlias(String),
    #[error("SID alias {0:?} is relative to the domain SID, but no domain SID was given")]
    AliasNeedsDomain(String),
    #[error("bad SID {text:?}: {reason}")]
    BadSid { text: String, reason: String },
}
