//! The security-descriptor codec (`provd_sd`) against real
//! `nTSecurityDescriptor` values from the Samba AD lab (`tests/data/sd/`,
//! see its README), malformed inputs, and property-based fuzzing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

use std::path::PathBuf;

use proptest::prelude::*;
use provd_sd::*;
use uuid::Uuid;

const DOMAIN: &str = "S-1-5-21-1111111111-2222222222-3333333333";

fn domain() -> Sid {
    DOMAIN.parse().unwrap()
}

struct Sample {
    name: String,
    bytes: Vec<u8>,
    /// Samba 4.17's `as_sddl` rendering with the lab's domain SID.
    samba_sddl: Option<String>,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sd")
}

fn samples() -> &'static [Sample] {
    static SAMPLES: std::sync::OnceLock<Vec<Sample>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(|| {
        let mut out: Vec<Sample> = std::fs::read_dir(data_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .map(|p| Sample {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                bytes: std::fs::read(&p).unwrap(),
                samba_sddl: std::fs::read_to_string(p.with_extension("sddl"))
                    .ok()
                    .map(|s| s.trim_end().to_string()),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        assert!(out.len() >= 15, "only {} samples", out.len());
        out
    })
}

fn sample(name: &str) -> &'static Sample {
    samples().iter().find(|s| s.name == name).unwrap()
}

/// What an SDDL round trip keeps of `sd` (see `provd_sd::sddl`):
/// only the SDDL control bits, no ACL (and no ACL flags) whose present flag
/// is clear, no `rm_control`, ACL revision 4, no padding, the default
/// layout.
fn canonical_for_sddl(sd: &SecurityDescriptor) -> SecurityDescriptor {
    let mut c = sd.clone();
    c.rm_control = 0;
    c.layout = Layout::default();
    c.control = (sd.control & SDDL_CONTROL_BITS) | SE_SELF_RELATIVE;
    if c.control & SE_DACL_PRESENT == 0 {
        c.dacl = None;
        c.control &= !(SE_DACL_PROTECTED | SE_DACL_AUTO_INHERIT_REQ | SE_DACL_AUTO_INHERITED);
    }
    if c.control & SE_SACL_PRESENT == 0 {
        c.sacl = None;
        c.control &= !(SE_SACL_PROTECTED | SE_SACL_AUTO_INHERIT_REQ | SE_SACL_AUTO_INHERITED);
    }
    for acl in [&mut c.dacl, &mut c.sacl].into_iter().flatten() {
        acl.revision = ACL_REVISION_DS;
        acl.padding.clear();
        for ace in &mut acl.aces {
            match &mut ace.body {
                AceBody::Basic { padding, .. } | AceBody::Object { padding, .. } => padding.clear(),
                AceBody::Opaque(_) => {}
            }
        }
    }
    c
}

// ---------------------------------------------------------------------------
// The lab samples.

#[test]
fn samples_round_trip_byte_exact() {
    for s in samples() {
        let sd = SecurityDescriptor::parse(&s.bytes).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        assert_eq!(sd.to_bytes().unwrap(), s.bytes, "{}", s.name);
        // Samba's layout: the parts present, in owner, group, SACL, DACL
        // order, no gaps; every ACL revision 4, no padding.
        let expected: Vec<Part> = Layout::samba()
            .order()
            .into_iter()
            .filter(|p| match p {
                Part::Owner => sd.owner.is_some(),
                Part::Group => sd.group.is_some(),
                Part::Sacl => sd.sacl.is_some(),
                Part::Dacl => sd.dacl.is_some(),
            })
            .collect();
        assert_eq!(sd.layout.order(), expected, "{}", s.name);
        assert!(!sd.layout.has_gaps(), "{}", s.name);
        for acl in [&sd.dacl, &sd.sacl].into_iter().flatten() {
            assert_eq!(acl.revision, ACL_REVISION_DS, "{}", s.name);
            assert!(acl.padding.is_empty());
        }
    }
}

#[test]
fn samples_match_samba_sddl() {
    let d = domain();
    let mut compared = 0;
    for s in samples() {
        let Some(samba) = &s.samba_sddl else { continue };
        let sd = SecurityDescriptor::parse(&s.bytes).unwrap();
        assert_eq!(&sd.to_sddl(Some(&d)).unwrap(), samba, "{}", s.name);
        compared += 1;
    }
    assert!(compared >= 15, "only {compared} .sddl files");
}

#[test]
fn samples_round_trip_through_sddl() {
    let d = domain();
    for s in samples() {
        let sd = SecurityDescriptor::parse(&s.bytes).unwrap();
        for domain in [Some(&d), None] {
            let text = sd.to_sddl(domain).unwrap();
            let back = SecurityDescriptor::from_sddl(&text, domain)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", s.name));
            assert_eq!(back, canonical_for_sddl(&sd), "{}", s.name);
            // The lab's bytes come back except for the control bits SDDL
            // cannot carry (SE_OWNER_DEFAULTED, SE_GROUP_DEFAULTED).
            let bytes = back.to_bytes().unwrap();
            assert_eq!(bytes.len(), s.bytes.len(), "{}", s.name);
            assert_eq!(bytes[4..], s.bytes[4..], "{}", s.name);
            let control = u16::from_le_bytes([s.bytes[2], s.bytes[3]]);
            assert_eq!(back.control, control & SDDL_CONTROL_BITS, "{}", s.name);
            if control & !SDDL_CONTROL_BITS == 0 {
                assert_eq!(bytes, s.bytes, "{}", s.name);
            }
        }
    }
}

#[test]
fn samba_built_descriptor_is_reproduced_from_sddl() {
    // samba_gmsa_membership.bin is ndr_pack(descriptor.from_sddl(...)) from
    // python3-samba: our SDDL parser must produce the very same bytes.
    let s = sample("samba_gmsa_membership");
    let sd = SecurityDescriptor::from_sddl(
        "O:BAD:(A;;0xf01ff;;;S-1-5-21-1111111111-2222222222-3333333333-1105)",
        Some(&domain()),
    )
    .unwrap();
    assert_eq!(sd.to_bytes().unwrap(), s.bytes);
    assert_eq!(
        sd.to_sddl(Some(&domain())).unwrap(),
        s.samba_sddl.as_deref().unwrap()
    );
}

#[test]
fn sd_flags_variants_agree() {
    // SD_FLAGS=4 (DACL only) returns the same DACL as the full read.
    let full = SecurityDescriptor::parse(&sample("domain_root").bytes).unwrap();
    let dacl_only = SecurityDescriptor::parse(&sample("domain_root_dacl").bytes).unwrap();
    assert_eq!(full.dacl, dacl_only.dacl);
    assert!(dacl_only.owner.is_none() && dacl_only.group.is_none() && dacl_only.sacl.is_none());
    assert_eq!(dacl_only.dacl.as_ref().unwrap().aces.len(), 46);
    let users = SecurityDescriptor::parse(&sample("users").bytes).unwrap();
    for (name, want_owner, want_group, want_sacl, want_dacl) in [
        ("users_owner_only", true, false, false, false),
        ("users_group_only", false, true, false, false),
        ("users_sacl_only", false, false, true, false),
        ("users_no_sacl", true, true, false, true),
    ] {
        let part = SecurityDescriptor::parse(&sample(name).bytes).unwrap();
        assert_eq!(part.owner.is_some(), want_owner, "{name}");
        assert_eq!(part.group.is_some(), want_group, "{name}");
        assert_eq!(part.sacl.is_some(), want_sacl, "{name}");
        assert_eq!(part.dacl.is_some(), want_dacl, "{name}");
        if want_owner {
            assert_eq!(part.owner, users.owner);
        }
        if want_group {
            assert_eq!(part.group, users.group);
        }
        if want_sacl {
            assert_eq!(part.sacl, users.sacl);
        }
        if want_dacl {
            assert_eq!(part.dacl, users.dacl);
        }
    }
}

#[test]
fn windows_layout_round_trips() {
    for s in samples() {
        let mut sd = SecurityDescriptor::parse(&s.bytes).unwrap();
        sd.layout = Layout::windows();
        let bytes = sd.to_bytes().unwrap();
        let back = SecurityDescriptor::parse(&bytes).unwrap();
        assert_eq!(back, sd, "{}", s.name);
        assert_eq!(back.to_bytes().unwrap(), bytes, "{}", s.name);
        if sd.owner.is_some() && sd.dacl.is_some() {
            // The DACL now comes before the owner.
            let owner = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            let dacl = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
            assert!(dacl < owner, "{}", s.name);
        }
    }
}

/// The gMSA grant of `samba-lab.md` §7 on the real domain root DACL.
#[test]
fn writeback_grant_on_domain_root() {
    let d = domain();
    let s = sample("domain_root_dacl");
    let mut sd = SecurityDescriptor::parse(&s.bytes).unwrap();
    let gmsa = d.with_rid(1105).unwrap().to_string();
    let user = "bf967aba-0de6-11d0-a285-00aa003049e2";
    let grants: Vec<Ace> = [
        format!("(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;{user};{gmsa})"),
        format!("(OA;CIIO;CR;ab721a53-1e2f-11d0-9819-00aa0040529b;{user};{gmsa})"),
        format!("(OA;CIIO;RPWP;bf967a0a-0de6-11d0-a285-00aa003049e2;{user};{gmsa})"),
        format!("(OA;CIIO;RPWP;28630ebf-41d5-11d1-a9c1-0000f80367c1;{user};{gmsa})"),
    ]
    .iter()
    .map(|t| Ace::from_sddl(t, Some(&d)).unwrap())
    .collect();
    let dacl = sd.dacl.as_mut().unwrap();
    let before = dacl.aces.clone();
    // The domain root has only explicit ACEs: the grants go at the end.
    for ace in &grants {
        assert!(!dacl.contains(ace));
        let index = dacl.insert_explicit(ace.clone());
        assert_eq!(index, dacl.aces.len() - 1);
    }
    assert_eq!(dacl.aces[..before.len()], before[..]);
    let bytes = sd.to_bytes().unwrap();
    // Each grant: header 4, mask 4, flags 4, two GUIDs, a 28-byte SID.
    assert_eq!(bytes.len(), s.bytes.len() + 4 * 72);
    let back = SecurityDescriptor::parse(&bytes).unwrap();
    assert_eq!(back, sd);
    let dacl = sd.dacl.as_mut().unwrap();
    for ace in &grants {
        assert!(dacl.contains(ace));
        assert_eq!(dacl.remove_exact(ace), 1);
    }
    assert_eq!(sd.to_bytes().unwrap(), s.bytes);

    // On a child (the Users container) the inherited copies show up as
    // OA;CIIOID: contains() tells them apart, the ignoring-inherited
    // comparison does not.
    let users = SecurityDescriptor::parse(&sample("users").bytes).unwrap();
    let users_dacl = users.dacl.as_ref().unwrap();
    let inherited = users_dacl
        .aces
        .iter()
        .find(|a| a.is_inherited() && a.object_type().is_some())
        .unwrap();
    let mut explicit = inherited.clone();
    explicit.flags &= !INHERITED_ACE;
    assert!(!users_dacl.contains(&explicit));
    assert!(users_dacl.contains_ignoring_inherited(&explicit));
    assert!(ace_eq_ignoring_inherited(&explicit, inherited));
    // Inserting into a DACL with inherited ACEs: before the first one.
    let mut dacl = users_dacl.clone();
    let first_inherited = dacl.aces.iter().position(Ace::is_inherited).unwrap();
    assert_eq!(dacl.insert_explicit(grants[0].clone()), first_inherited);
}

// ---------------------------------------------------------------------------
// Malformed binary input.

fn set_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

fn set_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn get_u32(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
}

#[test]
fn truncated_at_every_length_is_an_error() {
    for name in [
        "domain_root",
        "schema_user",
        "extended_right_reset_pw",
        "users_sacl_only",
    ] {
        let bytes = &sample(name).bytes;
        for len in 0..bytes.len() {
            let err = SecurityDescriptor::parse(&bytes[..len]);
            assert!(err.is_err(), "{name} truncated to {len} parsed");
        }
    }
    let err = SecurityDescriptor::parse(&sample("domain_root").bytes[..10])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "security descriptor header at byte 0: needs 20 bytes, but only 10 remain"
    );
    let bytes = &sample("schema_user").bytes;
    let err = SecurityDescriptor::parse(&bytes[..bytes.len() - 1])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "DACL at byte 104: AclSize 84 runs past the end of the 187-byte buffer"
    );
}

#[test]
fn malformed_binary_table() {
    // schema_user: owner at 20, group at 48, SACL at 76 (28 bytes, 1 ACE),
    // DACL at 104 (84 bytes, 3 ACEs), 188 bytes in all.
    let base = sample("schema_user").bytes.clone();
    assert_eq!(
        (
            get_u32(&base, 4),
            get_u32(&base, 8),
            get_u32(&base, 12),
            get_u32(&base, 16)
        ),
        (20, 48, 76, 104)
    );
    type Edit = fn(&mut Vec<u8>);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "descriptor revision",
            |b| b[0] = 2,
            "security descriptor at byte 0: revision 2 is not 1",
        ),
        (
            "owner offset past the end",
            |b| set_u32(b, 4, 188),
            "OffsetOwner offset 188 is invalid: points past the end of the 188-byte descriptor",
        ),
        (
            "DACL offset far past the end",
            |b| set_u32(b, 16, u32::MAX),
            "OffsetDacl offset 4294967295 is invalid: points past the end",
        ),
        (
            "group offset into the header",
            |b| set_u32(b, 8, 19),
            "OffsetGroup offset 19 is invalid: points into the 20-byte header",
        ),
        (
            "owner SID with 16 sub-authorities",
            |b| b[21] = 16,
            "owner SID at byte 20: 16 sub-authorities, at most 15 are allowed",
        ),
        (
            "group SID revision",
            |b| b[48] = 5,
            "group SID at byte 48: revision 5 is not 1",
        ),
        (
            "owner SID running off the end",
            |b| set_u32(b, 4, 184),
            "owner SID at byte 184: needs 8 bytes, but only 4 remain",
        ),
        (
            "DACL revision",
            |b| b[104] = 9,
            "DACL at byte 104: revision 9 is not 2, 3 or 4",
        ),
        (
            "DACL size too small",
            |b| set_u16(b, 106, 4),
            "DACL at byte 104: AclSize 4 is smaller than the 8-byte ACL header",
        ),
        (
            "DACL size too large",
            |b| set_u16(b, 106, 85),
            "DACL at byte 104: AclSize 85 runs past the end of the 188-byte buffer",
        ),
        (
            "SACL size cutting its ACE",
            |b| set_u16(b, 78, 20),
            "SACL ACE 0 at byte 84: AceSize 20 runs past the end of its ACL at byte 96",
        ),
        (
            "more ACEs than the ACL holds",
            |b| set_u16(b, 108, 4),
            "DACL ACE 3 at byte 188: needs 4 bytes, but only 0 remain",
        ),
        (
            "ACE size below the header",
            |b| set_u16(b, 114, 2),
            "DACL ACE 0 at byte 112: AceSize 2 is smaller than the 8 bytes an ACE of type 0x00 needs before its SID",
        ),
        (
            "ACE size too small for its SID",
            |b| set_u16(b, 114, 12),
            "DACL ACE 0 SID at byte 120: needs 8 bytes, but only 4 remain",
        ),
        (
            "ACE SID with 16 sub-authorities",
            |b| b[121] = 16,
            "DACL ACE 0 SID at byte 120: 16 sub-authorities, at most 15 are allowed",
        ),
    ];
    for (label, edit, fragment) in cases {
        let mut bytes = base.clone();
        edit(&mut bytes);
        let err = SecurityDescriptor::parse(&bytes)
            .map(|_| ())
            .expect_err(label)
            .to_string();
        assert!(err.contains(fragment), "{label}: {err}");
    }
}

#[test]
fn object_ace_flags_claiming_guids_past_the_end() {
    // An object ACE of 4 + 8 + 16 + 12 bytes: one GUID and Everyone.
    let mut sd = SecurityDescriptor::new();
    let mut dacl = Acl::new();
    dacl.aces.push(Ace::allowed_object(
        0,
        rights::CONTROL_ACCESS,
        Some(Uuid::parse_str("00299570-246d-11d0-a768-00aa006e0529").unwrap()),
        None,
        Sid::world(),
    ));
    sd.set_dacl(Some(dacl));
    let good = sd.to_bytes().unwrap();
    assert_eq!(good.len(), 20 + 8 + 40);
    let ace_at = 28;
    // Claim both GUIDs: the second would run 4 bytes past the ACE.
    let mut bytes = good.clone();
    bytes[ace_at + 8] = 3;
    let err = SecurityDescriptor::parse(&bytes).unwrap_err().to_string();
    assert_eq!(
        err,
        "DACL ACE 0 inherited object type GUID at byte 56: needs 16 bytes, but only 12 remain"
    );
    // Shrink the ACE to header + mask + flags + 16: the inherited GUID
    // would start at its end.
    set_u16(&mut bytes, ace_at + 2, 28);
    set_u16(&mut bytes, 22, 8 + 28);
    bytes.truncate(20 + 8 + 28);
    let err = SecurityDescriptor::parse(&bytes).unwrap_err().to_string();
    assert_eq!(
        err,
        "DACL ACE 0 inherited object type GUID at byte 56: needs 16 bytes, but only 0 remain"
    );
    // Unknown object flag bits.
    let mut bytes = good.clone();
    bytes[ace_at + 8] = 0x81;
    let err = SecurityDescriptor::parse(&bytes).unwrap_err().to_string();
    assert_eq!(
        err,
        "DACL ACE 0 at byte 36: object flags 0x00000081 have unknown bits 0x00000080"
    );
}

// ---------------------------------------------------------------------------
// Malformed SDDL.

#[test]
fn malformed_sddl_table() {
    let d = domain();
    let cases: &[(&str, &str)] = &[
        (
            "D:(A;;RP;;;WD",
            "SDDL at position 2: '(' has no matching ')'",
        ),
        (
            "D:(A;;RP;;;WD(A;;RP;;;WD)",
            "SDDL at position 2: '(' has no matching ')'",
        ),
        (
            "D:(A;;RP;;;WD))",
            "SDDL at position 14: ')' without a matching '('",
        ),
        (
            "D:A;;RP;;;WD)",
            "SDDL at position 2: unknown ACL flag at \"A;;RP;;;WD)\"",
        ),
        (
            "D:(A;;RP;;;XX)",
            "SDDL at position 11: unknown SID alias \"XX\"",
        ),
        ("O:BAX", "SDDL at position 2: unknown SID alias \"BAX\""),
        (
            "D:(A;;RP;;;DA)",
            "SDDL at position 11: SID alias \"DA\" is relative to the domain SID, but no domain SID was given",
        ),
        (
            "D:(OA;;CR;00299570-246d-11d0-a768-00aa006e052;;WD)",
            "SDDL at position 10: bad GUID \"00299570-246d-11d0-a768-00aa006e052\"",
        ),
        (
            "D:(OA;;CR;{00299570-246d-11d0-a768-00aa006e0529};;WD)",
            "SDDL at position 10: bad GUID",
        ),
        (
            "D:(OA;;CR;;00299570-246d-11d0-a768-00aa006e052g;WD)",
            "SDDL at position 11: bad GUID",
        ),
        (
            "D:(A;;CR;00299570-246d-11d0-a768-00aa006e0529;;WD)",
            "SDDL at position 9: ACE type A is not an object ACE type and cannot carry a GUID",
        ),
        (
            "D:(A;;0xZZ;;;WD)",
            "SDDL at position 6: bad hexadecimal access mask \"0xZZ\"",
        ),
        ("D:(A;;0x;;;WD)", "bad hexadecimal access mask \"0x\""),
        (
            "D:(A;;0x100000000;;;WD)",
            "bad hexadecimal access mask \"0x100000000\"",
        ),
        (
            "D:(A;;RPXY;;;WD)",
            "SDDL at position 8: unknown access right \"XY\"",
        ),
        (
            "D:(A;;R;;;WD)",
            "SDDL at position 6: unknown access right \"R\"",
        ),
        ("D:(A;;16;;;WD)", "unknown access right \"16\""),
        (
            "D:(A;;RP;;;WD)xyz",
            "SDDL at position 14: unexpected \"xyz\" after the ACL",
        ),
        (
            "D:(A;;RP;;;WD) ",
            "SDDL at position 14: unexpected \" \" after the ACL",
        ),
        ("O:BA G:SY", "SDDL at position 2: unknown SID alias \"BA \""),
        (
            "Q:BA",
            "SDDL at position 0: expected a section O:, G:, D: or S:, found \"Q:BA\"",
        ),
        ("O:BAO:SY", "SDDL at position 4: section O: appears twice"),
        ("O:", "SDDL at position 2: section O: has no SID"),
        ("O:G:BA", "SDDL at position 2: section O: has no SID"),
        ("O:S-1-5-x", "SDDL at position 2: bad SID \"S-1-5-x\""),
        ("O:BÄ", "SDDL at position 3: non-ASCII character 'Ä'"),
        ("D:(A;;RP;;;WD;x)", "SDDL at position 2: ACE has 7 fields"),
        ("D:(A;;RP;;WD)", "SDDL at position 2: ACE has 5 fields"),
        (
            "D:(Z;;RP;;;WD)",
            "SDDL at position 3: unknown ACE type \"Z\"",
        ),
        ("D:(a;;RP;;;WD)", "unknown ACE type \"a\""),
        (
            "D:(A;CIQQ;RP;;;WD)",
            "SDDL at position 7: unknown ACE flag \"QQ\"",
        ),
        (
            "D:(A;;RP;;;)",
            "SDDL at position 11: bad SID \"\": the ACE has no SID",
        ),
        ("D:(A;;RP;;;wd)", "unknown SID alias \"wd\""),
        (
            "D:NO_ACCESS_CONTROL(A;;RP;;;WD)",
            "SDDL at position 19: NO_ACCESS_CONTROL cannot be followed by ACEs",
        ),
        ("S:PX", "SDDL at position 3: unknown ACL flag at \"X\""),
    ];
    for (text, fragment) in cases {
        // The `DA` case is about a missing domain SID.
        let domain = if text.contains(";DA)") {
            None
        } else {
            Some(&d)
        };
        let message = SecurityDescriptor::from_sddl(text, domain)
            .map(|_| ())
            .expect_err(text)
            .to_string();
        assert!(message.contains(fragment), "{text:?}: {message}");
    }
    let err = Ace::from_sddl("(A;;RP;;;WD)x", None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "SDDL at position 12: unexpected \"x\" after the ACL (expected '(', the next section or the end)"
    );
    let err = Ace::from_sddl("A;;RP;;;WD", None).unwrap_err().to_string();
    assert!(err.contains("expected an ACE"), "{err}");
}

// ---------------------------------------------------------------------------
// Property-based fuzzing.

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Parses `bytes`; if that works, checks that the value re-encodes, that
/// the encoding parses to an equal value and re-encodes identically, and
/// that an SDDL trip (when representable) gives the SDDL-canonical value.
fn check_parse(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(sd) = SecurityDescriptor::parse(bytes) else {
        return Ok(());
    };
    let encoded = sd
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("to_bytes of a parsed value: {e}")))?;
    let back = SecurityDescriptor::parse(&encoded)
        .map_err(|e| TestCaseError::fail(format!("re-parse: {e}")))?;
    prop_assert_eq!(&back, &sd);
    prop_assert_eq!(back.to_bytes().unwrap(), encoded);
    let d = domain();
    if let Ok(text) = sd.to_sddl(Some(&d)) {
        let from = SecurityDescriptor::from_sddl(&text, Some(&d))
            .map_err(|e| TestCaseError::fail(format!("from_sddl({text:?}): {e}")))?;
        prop_assert_eq!(from, canonical_for_sddl(&sd));
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Truncate {
        len: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: usize,
    },
    Splice {
        from: usize,
        src: usize,
        len: usize,
        at: usize,
    },
    SetU16 {
        at: usize,
        value: u16,
    },
    SetU32 {
        at: usize,
        value: u32,
    },
}

fn interesting_u16() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(0u16),
        Just(1),
        Just(3),
        Just(4),
        Just(7),
        Just(8),
        Just(16),
        Just(0xffff),
        any::<u16>()
    ]
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(19),
        Just(20),
        Just(3),
        Just(0xffff_ffff),
        0u32..300,
        any::<u32>()
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        1 => any::<usize>().prop_map(|len| Mutation::Truncate { len }),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Remove { at, len }),
        1 => (any::<usize>(), any::<usize>(), 1usize..64, any::<usize>())
            .prop_map(|(from, src, len, at)| Mutation::Splice { from, src, len, at }),
        2 => (any::<usize>(), interesting_u16()).prop_map(|(at, value)| Mutation::SetU16 { at, value }),
        2 => (any::<usize>(), interesting_u32()).prop_map(|(at, value)| Mutation::SetU32 { at, value }),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    let pos = |at: usize| if len == 0 { 0 } else { at % len };
    match m {
        Mutation::Flip { at, bit } => {
            if len > 0 {
                bytes[pos(*at)] ^= 1 << bit;
            }
        }
        Mutation::Truncate { len: l } => bytes.truncate(l % (len + 1)),
        Mutation::Insert { at, bytes: extra } => {
            let at = pos(*at);
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::Remove { at, len: n } => {
            let at = pos(*at);
            let end = (at + n).min(len);
            bytes.drain(at..end);
        }
        Mutation::Splice {
            from,
            src,
            len: n,
            at,
        } => {
            let other = &samples()[from % samples().len()].bytes;
            let src = src % other.len();
            let end = (src + n).min(other.len());
            let at = pos(*at);
            let end_dst = (at + (end - src)).min(len);
            bytes.splice(at..end_dst, other[src..end].iter().copied());
        }
        Mutation::SetU16 { at, value } => {
            if len >= 2 {
                let at = at % (len - 1);
                bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
            }
        }
        Mutation::SetU32 { at, value } => {
            if len >= 4 {
                let at = at % (len - 3);
                bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
        }
    }
}

/// A header with plausible offsets in front of random bytes, to get past
/// the header checks more often than pure noise does.
fn header_shaped() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_flat_map(|body| {
        let len = 20 + body.len();
        let offset = prop_oneof![Just(0u32), (0..len as u32 + 4)];
        (
            Just(body),
            any::<u16>(),
            [offset.clone(), offset.clone(), offset.clone(), offset],
        )
            .prop_map(|(body, control, offsets)| {
                let mut out = vec![1, 0];
                out.extend_from_slice(&control.to_le_bytes());
                for o in offsets {
                    out.extend_from_slice(&o.to_le_bytes());
                }
                out.extend_from_slice(&body);
                out
            })
    })
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn fuzz_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_parse(&bytes)?;
    }

    #[test]
    fn fuzz_header_shaped_bytes(bytes in header_shaped()) {
        check_parse(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn fuzz_mutated_lab_samples(
        index in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let mut bytes = samples()[index % samples().len()].bytes.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_parse(&bytes)?;
    }
}

/// SDDL-ish text: mostly tokens that appear in real SDDL.
fn sddl_noise() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "O:",
        "G:",
        "D:",
        "S:",
        "(",
        ")",
        ";",
        "A",
        "D",
        "OA",
        "OU",
        "AU",
        "P",
        "AI",
        "AR",
        "NO_ACCESS_CONTROL",
        "CI",
        "IO",
        "ID",
        "SA",
        "RP",
        "WP",
        "CR",
        "GA",
        "0x",
        "1f",
        "BA",
        "DA",
        "WD",
        "S-1-5-",
        "21",
        "-",
        "00299570-246d-11d0-a768-00aa006e0529",
        "x",
        " ",
        "é",
        "(A;CI;RPWP;;;AU)",
        "(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;bf967aba-0de6-11d0-a285-00aa003049e2;DA)",
        "(OU;SA;WP;;;WD)",
    ]);
    proptest::collection::vec(token, 0..30).prop_map(|t| t.concat())
}

#[derive(Clone, Debug)]
enum TextMutation {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    Cut(usize),
}

fn text_mutation() -> impl Strategy<Value = TextMutation> {
    let c = prop_oneof![
        Just('('),
        Just(')'),
        Just(';'),
        Just(':'),
        Just('-'),
        Just('A'),
        Just('0'),
        Just('x'),
        Just('S'),
        Just('D'),
        Just(' '),
        any::<char>()
    ];
    prop_oneof![
        any::<usize>().prop_map(TextMutation::Delete),
        (any::<usize>(), c.clone()).prop_map(|(i, c)| TextMutation::Insert(i, c)),
        (any::<usize>(), c).prop_map(|(i, c)| TextMutation::Replace(i, c)),
        any::<usize>().prop_map(TextMutation::Cut),
    ]
}

fn apply_text(text: &str, m: &TextMutation) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    match m {
        TextMutation::Delete(i) if n > 0 => {
            chars.remove(i % n);
        }
        TextMutation::Insert(i, c) => chars.insert(i % (n + 1), *c),
        TextMutation::Replace(i, c) if n > 0 => chars[i % n] = *c,
        TextMutation::Cut(i) => chars.truncate(i % (n + 1)),
        _ => {}
    }
    chars.into_iter().collect()
}

fn check_sddl(text: &str, domain: Option<&Sid>) -> Result<(), TestCaseError> {
    let Ok(sd) = SecurityDescriptor::from_sddl(text, domain) else {
        return Ok(());
    };
    let again = sd
        .to_sddl(domain)
        .map_err(|e| TestCaseError::fail(format!("to_sddl of parsed SDDL: {e}")))?;
    let back = SecurityDescriptor::from_sddl(&again, domain)
        .map_err(|e| TestCaseError::fail(format!("from_sddl({again:?}): {e}")))?;
    prop_assert_eq!(&back, &sd);
    let bytes = sd
        .to_bytes()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(SecurityDescriptor::parse(&bytes).unwrap(), sd);
    Ok(())
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn fuzz_arbitrary_strings(text in any::<String>(), with_domain in any::<bool>()) {
        let d = domain();
        check_sddl(&text, with_domain.then_some(&d))?;
    }

    #[test]
    fn fuzz_sddl_token_soup(text in sddl_noise(), with_domain in any::<bool>()) {
        let d = domain();
        check_sddl(&text, with_domain.then_some(&d))?;
    }

    #[test]
    fn fuzz_mutated_lab_sddl(
        index in any::<usize>(),
        mutations in proptest::collection::vec(text_mutation(), 1..4),
    ) {
        let with_sddl: Vec<&Sample> = samples().iter().filter(|s| s.samba_sddl.is_some()).collect();
        let mut text = with_sddl[index % with_sddl.len()].samba_sddl.clone().unwrap();
        for m in &mutations {
            text = apply_text(&text, m);
        }
        let d = domain();
        check_sddl(&text, Some(&d))?;
        // Without the domain SID, domain aliases are errors, never panics.
        let _ = SecurityDescriptor::from_sddl(&text, None);
    }
}

// Structured generation.

fn sid_strategy() -> impl Strategy<Value = Sid> {
    prop_oneof![
        // Well-known and domain SIDs (aliases) ...
        prop::sample::select(vec![
            "S-1-1-0",
            "S-1-3-0",
            "S-1-5-11",
            "S-1-5-18",
            "S-1-5-32-544",
            "S-1-5-32-554",
            "S-1-5-9",
            "S-1-5-10",
            "S-1-16-4096",
            "S-1-5-84-0-0-0-0-0",
            "S-1-5-32-557",
        ])
        .prop_map(|s| s.parse().unwrap()),
        prop::sample::select(vec![
            498u32, 500, 512, 513, 515, 516, 517, 518, 519, 520, 522, 553, 1105
        ])
        .prop_map(|rid| domain().with_rid(rid).unwrap()),
        // ... and anything else.
        (
            0u64..(1 << 48),
            proptest::collection::vec(any::<u32>(), 0..=15)
        )
            .prop_map(|(a, subs)| Sid::new(a, &subs).unwrap()),
    ]
}

fn guid_strategy() -> impl Strategy<Value = Option<Uuid>> {
    proptest::option::of(any::<[u8; 16]>().prop_map(Uuid::from_bytes))
}

fn mask_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(rights::DS_FULL_CONTROL),
        Just(rights::CONTROL_ACCESS),
        Just(rights::READ_PROPERTY | rights::WRITE_PROPERTY),
        Just(0u32),
        any::<u32>(),
    ]
}

/// Any ACE the binary codec can carry. With `sddl_safe`, only what SDDL
/// can express (SDDL types, known flags, no padding).
fn ace_strategy(sddl_safe: bool) -> BoxedStrategy<Ace> {
    let padding = if sddl_safe {
        Just(Vec::new()).boxed()
    } else {
        proptest::collection::vec(any::<u8>(), 0..6).boxed()
    };
    let flags = if sddl_safe {
        any::<u8>().prop_map(|f| f & !0x20).boxed()
    } else {
        any::<u8>().boxed()
    };
    let basic_types = if sddl_safe {
        prop::sample::select(vec![0x00u8, 0x01, 0x02, 0x03, 0x11]).boxed()
    } else {
        prop::sample::select(vec![0x00u8, 0x01, 0x02, 0x03, 0x11, 0x13]).boxed()
    };
    let basic = (
        basic_types,
        flags.clone(),
        mask_strategy(),
        sid_strategy(),
        padding.clone(),
    )
        .prop_map(|(t, flags, mask, sid, padding)| Ace {
            ace_type: AceType(t),
            flags,
            body: AceBody::Basic { mask, sid, padding },
        });
    let object = (
        0x05u8..=0x08,
        flags.clone(),
        mask_strategy(),
        guid_strategy(),
        guid_strategy(),
        sid_strategy(),
        padding,
    )
        .prop_map(
            |(t, flags, mask, object_type, inherited_object_type, sid, padding)| Ace {
                ace_type: AceType(t),
                flags,
                body: AceBody::Object {
                    mask,
                    object_type,
                    inherited_object_type,
                    sid,
                    padding,
                },
            },
        );
    if sddl_safe {
        prop_oneof![basic, object].boxed()
    } else {
        let opaque = (
            prop::sample::select(vec![0x04u8, 0x09, 0x0b, 0x12, 0x14, 0xff]),
            flags,
            proptest::collection::vec(any::<u8>(), 0..40),
        )
            .prop_map(|(t, flags, body)| Ace {
                ace_type: AceType(t),
                flags,
                body: AceBody::Opaque(body),
            });
        prop_oneof![3 => basic, 3 => object, 1 => opaque].boxed()
    }
}

fn acl_strategy(sddl_safe: bool) -> impl Strategy<Value = Acl> {
    let revision = if sddl_safe {
        Just(4u8).boxed()
    } else {
        (2u8..=4).boxed()
    };
    let padding = if sddl_safe {
        Just(Vec::new()).boxed()
    } else {
        proptest::collection::vec(any::<u8>(), 0..6).boxed()
    };
    (
        revision,
        proptest::collection::vec(ace_strategy(sddl_safe), 0..8),
        padding,
    )
        .prop_map(|(revision, aces, padding)| Acl {
            revision,
            aces,
            padding,
        })
}

fn sd_strategy(sddl_safe: bool) -> impl Strategy<Value = SecurityDescriptor> {
    (
        any::<u16>(),
        any::<u8>(),
        proptest::option::of(sid_strategy()),
        proptest::option::of(sid_strategy()),
        proptest::option::of(acl_strategy(sddl_safe)),
        proptest::option::of(acl_strategy(sddl_safe)),
        any::<bool>(),
    )
        .prop_map(
            move |(control, rm_control, owner, group, sacl, dacl, windows)| {
                let mut sd = SecurityDescriptor::new();
                sd.control = control;
                sd.rm_control = rm_control;
                sd.owner = owner;
                sd.group = group;
                sd.sacl = sacl;
                sd.dacl = dacl;
                if windows {
                    sd.layout = Layout::windows();
                }
                if sddl_safe {
                    sd = canonical_for_sddl(&sd);
                }
                sd
            },
        )
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn fuzz_structured_binary_round_trip(sd in sd_strategy(false)) {
        let bytes = sd.to_bytes().unwrap();
        let back = SecurityDescriptor::parse(&bytes)
            .map_err(|e| TestCaseError::fail(format!("parse: {e}")))?;
        prop_assert_eq!(&back, &sd);
        let expected: Vec<Part> = sd
            .layout
            .order()
            .into_iter()
            .filter(|p| match p {
                Part::Owner => sd.owner.is_some(),
                Part::Group => sd.group.is_some(),
                Part::Sacl => sd.sacl.is_some(),
                Part::Dacl => sd.dacl.is_some(),
            })
            .collect();
        prop_assert_eq!(back.layout.order(), expected);
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn fuzz_structured_sddl_round_trip(sd in sd_strategy(true), with_domain in any::<bool>()) {
        let d = domain();
        let domain = with_domain.then_some(&d);
        let text = sd.to_sddl(domain).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = SecurityDescriptor::from_sddl(&text, domain)
            .map_err(|e| TestCaseError::fail(format!("from_sddl({text:?}): {e}")))?;
        prop_assert_eq!(&back, &sd);
        prop_assert_eq!(back.to_bytes().unwrap(), sd.to_bytes().unwrap());
    }
}
