//! The access-right letters of SDDL: provd writes Windows' order (Samba ≥
//! 4.19's), parses any order (Samba 4.17's included), and a trip through
//! SDDL keeps an ACE's bytes whatever order its letters come in.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

mod common;

use common::*;
use proptest::prelude::*;
use provd_sd::*;
use uuid::Uuid;

fn mask(rights: &str) -> u32 {
    Ace::from_sddl(&format!("(A;;{rights};;;WD)"), None)
        .unwrap()
        .mask()
        .unwrap()
}

#[test]
fn rights_parse_in_any_order() {
    // AD's full control as Samba 4.17 wrote it, as Windows writes it, and
    // reversed.
    for text in [
        "RPWPCRCCDCLCLORCWOWDSDDTSW",
        "CCDCLCSWRPWPDTLOCRSDRCWDWO",
        "WOWDRCSDCRLODTWPRPSWLCDCCC",
    ] {
        assert_eq!(mask(text), rights::DS_FULL_CONTROL, "{text}");
    }
    assert_eq!(mask("GAGRGWGX"), 0xf000_0000);
    assert_eq!(mask("GAGXGWGR"), 0xf000_0000);
    assert_eq!(mask("RPRPWP"), 0x30);
    assert_eq!(mask("0x00000200"), 0x200);
    assert_eq!(mask("0x200"), 0x200);
    // Whole-mask tokens, alone or with letters.
    assert_eq!(mask("FA"), 0x001f_01ff);
    assert_eq!(mask("FX"), 0x0012_00a0);
    assert_eq!(mask("KA"), 0x000f_003f);
    assert_eq!(mask("KRCR"), 0x0002_0119);
}

#[test]
fn samba_4_17_rights_fields_parse_to_the_same_mask_in_our_order() {
    let mut seen = 0;
    for s in samples().iter().filter(|s| !s.corpus.windows_order) {
        let Some(text) = &s.samba_sddl else { continue };
        for field in text
            .split('(')
            .skip(1)
            .filter_map(|ace| ace.split(';').nth(2))
        {
            let m = mask(field);
            assert_eq!(mask(&format_rights(m)), m, "{}: {field}", s.name);
            seen += 1;
        }
    }
    assert!(seen > 500, "only {seen} ACEs");
}

/// `KA` is a right (KEY_ALL) in the rights field and a SID (Key Admins,
/// domain RID 526) in the trustee field; `EK` and `CN` (schema 2019's
/// Enterprise Key Admins and Cloneable Domain Controllers) are SIDs only.
#[test]
fn ka_as_right_and_as_sid() {
    let d = domain();
    let ace = Ace::from_sddl("(A;;KA;;;KA)", Some(&d)).unwrap();
    assert_eq!(ace.mask(), Some(0x000f_003f));
    assert_eq!(ace.sid(), Some(&d.with_rid(526).unwrap()));
    // Written back: the letters for the mask, the alias for the SID.
    assert_eq!(
        ace.to_sddl(Some(&d)).unwrap(),
        "(A;;CCDCLCSWRPWPSDRCWDWO;;;KA)"
    );
    assert_eq!(
        ace.to_sddl(None).unwrap(),
        format!("(A;;CCDCLCSWRPWPSDRCWDWO;;;{DOMAIN}-526)")
    );
    for (alias, rid) in [("EK", 527), ("CN", 522), ("KA", 526)] {
        let text = format!("(OA;CI;RPWP;5b47d60f-6090-40b2-9f37-2a4de88f3063;;{alias})");
        let ace = Ace::from_sddl(&text, Some(&d)).unwrap();
        assert_eq!(ace.sid(), Some(&d.with_rid(rid).unwrap()), "{alias}");
        assert_eq!(ace.to_sddl(Some(&d)).unwrap(), text);
    }
    // Without the domain SID the alias cannot be resolved; the right can.
    let err = Ace::from_sddl("(A;;KA;;;KA)", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("KA"), "{err}");
    assert!(Ace::from_sddl("(A;;KA;;;WD)", None).is_ok());
    // EK and CN are no rights.
    for right in ["EK", "CN"] {
        assert!(Ace::from_sddl(&format!("(A;;{right};;;WD)"), None).is_err());
    }
}

// ---------------------------------------------------------------------------
// Properties.

/// Masks of every shape the writer knows: letters only, a file right, hex.
fn any_mask() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>().prop_map(|m| m & 0xf00f_01ff),
        prop::sample::select(vec![0x001f_01ffu32, 0x0012_0089, 0x0012_0116, 0x0012_00a0]),
        Just(rights::DS_FULL_CONTROL),
        any::<u32>(),
    ]
}

/// An ACE of each shape SDDL carries (basic, or object with its GUIDs).
fn any_ace() -> impl Strategy<Value = Ace> {
    let sid = prop::sample::select(vec![
        "S-1-1-0",
        "S-1-5-18",
        "S-1-5-32-544",
        "S-1-5-21-1111111111-2222222222-3333333333-526",
        "S-1-5-21-1111111111-2222222222-3333333333-527",
        "S-1-5-21-9-8-7-1105",
    ])
    .prop_map(|s| s.parse::<Sid>().unwrap());
    let guid = proptest::option::of(any::<[u8; 16]>().prop_map(Uuid::from_bytes));
    (
        prop::sample::select(vec![0x00u8, 0x01, 0x02, 0x05, 0x06, 0x07]),
        any::<u8>().prop_map(|f| f & 0xdf),
        any_mask(),
        guid.clone(),
        guid,
        sid,
    )
        .prop_map(|(t, flags, mask, object, inherited, sid)| {
            let ace_type = AceType(t);
            if ace_type.body_kind() == BodyKind::Object {
                Ace::object(ace_type, flags, mask, object, inherited, sid)
            } else {
                Ace::basic(ace_type, flags, mask, sid)
            }
        })
}

/// `text` (one ACE) with the two-letter tokens of its rights field in the
/// order `order` gives (indices into the tokens, taken modulo their count).
fn reorder_rights(text: &str, order: &[usize]) -> String {
    let fields: Vec<&str> = text.split(';').collect();
    let rights = fields[2];
    if rights.starts_with("0x") || rights.len() < 4 {
        return text.to_string();
    }
    let mut tokens: Vec<&str> = (0..rights.len())
        .step_by(2)
        .map(|i| &rights[i..i + 2])
        .collect();
    for (i, j) in order.iter().enumerate() {
        let n = tokens.len();
        tokens.swap(i % n, j % n);
    }
    let mut out = fields.clone();
    let joined = tokens.concat();
    out[2] = &joined;
    out.join(";")
}

proptest! {
    #![proptest_config(proptest_config(1000))]

    /// Bytes → ACE → SDDL → ACE → bytes gives the bytes back, with the
    /// domain SID (aliases) and without.
    #[test]
    fn sddl_trip_keeps_the_bytes(ace in any_ace(), with_domain in any::<bool>()) {
        let d = domain();
        let domain = with_domain.then_some(&d);
        let bytes = ace.to_bytes().unwrap();
        let parsed = Ace::from_bytes(&bytes).unwrap();
        let text = parsed.to_sddl(domain).unwrap();
        let back = Ace::from_sddl(&text, domain)
            .map_err(|e| TestCaseError::fail(format!("from_sddl({text:?}): {e}")))?;
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    /// The rights letters in any order parse to the same ACE, and the
    /// writer puts them back in Windows' order.
    #[test]
    fn permuted_rights_parse_to_the_same_ace(
        ace in any_ace(),
        order in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let d = domain();
        let text = ace.to_sddl(Some(&d)).unwrap();
        let permuted = reorder_rights(&text, &order);
        let back = Ace::from_sddl(&permuted, Some(&d))
            .map_err(|e| TestCaseError::fail(format!("from_sddl({permuted:?}): {e}")))?;
        prop_assert_eq!(back.to_bytes().unwrap(), ace.to_bytes().unwrap());
        prop_assert_eq!(back.to_sddl(Some(&d)).unwrap(), text);
    }

    /// Letters come out in ascending bit order, each once.
    #[test]
    fn letters_follow_the_bits(m in any::<u32>().prop_map(|m| m & 0xf00f_01ff)) {
        let text = format_rights(m);
        let bits: Vec<u32> = (0..text.len())
            .step_by(2)
            .map(|i| mask(&text[i..i + 2]))
            .collect();
        prop_assert!(bits.windows(2).all(|w| w[0] < w[1]), "{}", text);
        prop_assert_eq!(bits.iter().fold(0, |a, b| a | b), m);
    }
}
