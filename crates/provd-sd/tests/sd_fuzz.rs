//! Property-based fuzzing of the security-descriptor codec: random and
//! mutated bytes and SDDL (from the captured corpora, `tests/data/sd/`) never
//! panic, and whatever parses round-trips; structured descriptors round-trip
//! through the binary form and through SDDL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that unwraps is asserting

mod common;

use common::*;
use proptest::prelude::*;
use provd_sd::*;
use uuid::Uuid;

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
    #![proptest_config(proptest_config(1500))]

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
    #![proptest_config(proptest_config(1500))]

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
    #![proptest_config(proptest_config(1500))]

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
    #![proptest_config(proptest_config(400))]

    #[test]
    fn fuzz_structured_binary_round_trip(sd in sd_strategy(false)) {
        let bytes = sd.to_bytes().unwrap();
        let back = SecurityDescriptor::parse(&bytes)
            .map_err(|e| TestCaseError::fail(format!("parse: {e}")))?;
        prop_assert_eq!(&back, &sd);
        prop_assert_eq!(back.layout.order(), present_parts(&sd, sd.layout.order()));
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
