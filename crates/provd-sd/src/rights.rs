//! Access-mask bits (MS-DTYP 2.4.3, MS-ADTS 5.1.3.2), with their SDDL
//! mnemonics.

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
