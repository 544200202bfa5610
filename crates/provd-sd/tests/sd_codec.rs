//! The security-descriptor codec (`provd_sd`) against real
//! `nTSecurityDescriptor` values from the Samba AD labs (`tests/data/sd/`,
//! see its README) and malformed inputs. Property-based fuzzing is in
//! `sd_fuzz.rs`, the access-right letters in `sddl_rights.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

mod common;

use common::*;
use provd_sd::*;
use uuid::Uuid;

// ---------------------------------------------------------------------------
// The lab samples.

#[test]
fn samples_round_trip_byte_exact() {
    for s in samples() {
        let sd = SecurityDescriptor::parse(&s.bytes).unwrap_or_else(|e| panic!("{}: {e}", s.name));
        assert_eq!(sd.to_bytes().unwrap(), s.bytes, "{}", s.name);
        // Samba's layout: the parts present, in owner, group, SACL, DACL
        // order, no gaps; every ACL revision 4, no padding.
        let expected = present_parts(&sd, Layout::samba().order());
        assert_eq!(sd.layout.order(), expected, "{}", s.name);
        assert!(!sd.layout.has_gaps(), "{}", s.name);
        for acl in [&sd.dacl, &sd.sacl].into_iter().flatten() {
            assert_eq!(acl.revision, ACL_REVISION_DS, "{}", s.name);
            assert!(acl.padding.is_empty());
        }
    }
}

/// provd's SDDL is Samba's for the same bytes: exactly for a corpus whose
/// Samba writes Windows' order, else modulo the order of the rights letters
/// (Samba 4.17). Either way Samba's text parses to the descriptor the bytes
/// hold, so the parser takes both orders.
#[test]
fn samples_match_samba_sddl() {
    let d = domain();
    let mut compared = 0;
    for s in samples() {
        let Some(samba) = &s.samba_sddl else { continue };
        let sd = SecurityDescriptor::parse(&s.bytes).unwrap();
        let ours = sd.to_sddl(Some(&d)).unwrap();
        if s.corpus.windows_order {
            assert_eq!(&ours, samba, "{}", s.name);
        } else {
            assert_eq!(
                rights_letters_sorted(&ours),
                rights_letters_sorted(samba),
                "{}",
                s.name
            );
        }
        let from_samba = SecurityDescriptor::from_sddl(samba, Some(&d))
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        assert_eq!(from_samba, canonical_for_sddl(&sd), "{}", s.name);
        compared += 1;
    }
    assert!(compared >= 15, "only {compared} .sddl files");
}

/// The 4.17 corpus really is in another order, so the comparison above
/// is not vacuous there: AD's full control comes out reordered.
#[test]
fn samba_4_17_order_differs_from_ours() {
    let s = sample("domain_root");
    let samba = s.samba_sddl.as_deref().unwrap();
    let ours = SecurityDescriptor::parse(&s.bytes)
        .unwrap()
        .to_sddl(Some(&domain()))
        .unwrap();
    assert!(samba.contains(";RPWPCRCCDCLCLORCWOWDSDDTSW;"), "{samba}");
    assert!(!ours.contains(";RPWPCRCCDCLCLORCWOWDSDDTSW;"), "{ours}");
    assert!(ours.contains(";CCDCLCSWRPWPDTLOCRSDRCWDWO;"), "{ours}");
    assert_ne!(ours, samba);
}

/// The Samba 4.22 corpus is there and compared exactly (above), and it
/// holds the aliases that schema 2019 and level 2016 bring: Key Admins and
/// Enterprise Key Admins (msDS-KeyCredentialLink), Cloneable Controllers.
#[test]
fn samba_4_22_corpus_is_compared_exactly_and_has_the_2016_aliases() {
    let exact: Vec<&str> = samples()
        .iter()
        .filter(|s| s.corpus.windows_order)
        .filter_map(|s| s.samba_sddl.as_deref())
        .collect();
    assert!(exact.len() >= 20, "only {} 4.22 .sddl files", exact.len());
    for alias in ["KA", "EK", "CN"] {
        let ace_end = format!(";{alias})");
        assert!(
            exact.iter().any(|sddl| sddl.contains(&ace_end)),
            "no ACE for {alias} in the 4.22 corpus"
        );
    }
}

#[test]
fn rights_letters_sorted_touches_only_rights() {
    assert_eq!(
        rights_letters_sorted(
            "O:DAG:DAD:AI(A;CIID;RPWPCR;;;DA)(OA;;CR;a-b;;WD)S:(AU;SA;0x00000200;;;WD)"
        ),
        "O:DAG:DAD:AI(A;CIID;CRRPWP;;;DA)(OA;;CR;a-b;;WD)S:(AU;SA;0x00000200;;;WD)"
    );
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
    // Samba 4.17 wrote the letters in its own order.
    assert_eq!(
        rights_letters_sorted(&sd.to_sddl(Some(&domain())).unwrap()),
        rights_letters_sorted(s.samba_sddl.as_deref().unwrap())
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
