//! Windows security descriptors: SIDs, ACLs, self-relative descriptors and
//! SDDL (MS-DTYP 2.4.2, 2.4.4–2.4.6, 2.5.1). Pure data and codecs, no I/O.
//!
//! * [`Sid`]: binary and `S-1-…` forms, SDDL aliases (`BA`, `SY`, and with
//!   the domain SID `DA`, `DU`, …).
//! * [`Acl`] / [`Ace`]: the ACE types AD uses (`A`, `D`, `AU`, `OA`, `OD`,
//!   `OU`, plus alarm and label ACEs); other types are kept as opaque bytes.
//!   Helpers: [`Acl::contains`], [`ace_eq_ignoring_inherited`],
//!   [`Acl::insert_explicit`], [`Acl::remove_exact`].
//! * [`SecurityDescriptor`]: [`SecurityDescriptor::parse`] and
//!   [`SecurityDescriptor::to_bytes`] round-trip AD's `nTSecurityDescriptor`
//!   byte for byte (part order, gaps, ACL revisions, ACE padding); SDDL
//!   through [`SecurityDescriptor::from_sddl`] and
//!   [`SecurityDescriptor::to_sddl`] (see [`sddl`] for what SDDL drops).
//!
//! Parsing never panics: every offset and size is checked, errors
//! ([`SdError`]) name the field and byte offset or SDDL position.
//!
//! What the Samba 4.17 lab returns (`crates/provd-sd/tests/data/sd/samba-4.17/`):
//! header, then owner, group, SACL, DACL, with no gaps and no padding; every
//! ACL has revision 4 (`ACL_REVISION_DS`), also ACLs without object ACEs;
//! control usually `0x8c17` or `0x8c14`. Windows DCs write SACL, DACL, owner,
//! group.

mod ace;
mod acl;
mod descriptor;
mod error;
pub mod rights;
pub mod sddl;
mod sid;

pub use ace::{
    ACE_HEADER_LEN, ACE_INHERITED_OBJECT_TYPE_PRESENT, ACE_OBJECT_TYPE_PRESENT, Ace, AceBody,
    AceType, BodyKind, CONTAINER_INHERIT_ACE, FAILED_ACCESS_ACE_FLAG, INHERIT_ONLY_ACE,
    INHERITED_ACE, NO_PROPAGATE_INHERIT_ACE, OBJECT_INHERIT_ACE, SUCCESSFUL_ACCESS_ACE_FLAG,
    ace_eq_ignoring_inherited,
};
pub use acl::{ACL_HEADER_LEN, ACL_REVISION, ACL_REVISION_DS, Acl};
pub use descriptor::{
    Layout, Part, SD_HEADER_LEN, SE_DACL_AUTO_INHERIT_REQ, SE_DACL_AUTO_INHERITED,
    SE_DACL_DEFAULTED, SE_DACL_PRESENT, SE_DACL_PROTECTED, SE_DACL_TRUSTED, SE_GROUP_DEFAULTED,
    SE_OWNER_DEFAULTED, SE_RM_CONTROL_VALID, SE_SACL_AUTO_INHERIT_REQ, SE_SACL_AUTO_INHERITED,
    SE_SACL_DEFAULTED, SE_SACL_PRESENT, SE_SACL_PROTECTED, SE_SELF_RELATIVE, SE_SERVER_SECURITY,
    SecurityDescriptor,
};
pub use error::{SdError, SddlProblem};
pub use sddl::{SDDL_CONTROL_BITS, format_rights};
pub use sid::{MAX_SUB_AUTHORITIES, Sid};
