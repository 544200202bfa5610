use proptest::prelude::*;
use secrecy::ExposeSecret;
use sha2::{Digest as _, Sha256};

use super::*;

/// Made by `tests/data/gmsa/gen.py`, independently of this code (its own MD4,
/// Python's UTF-16 decoder); the expected values below are what it printed.
const NO_PREVIOUS: &[u8] = include_bytes!("../../tests/data/gmsa/no-previous.bin");
const WITH_PREVIOUS: &[u8] = include_bytes!("../../tests/data/gmsa/with-previous.bin");
const CURRENT_NT: &str = "46fbd702dbba1cc1b236670497c24093";
const CURRENT_KRB_SHA256: &str = "f6ee9c8393ace5bacc74e52c58f959921c6ff67890ee6619ae66421b582114d0";
const PREVIOUS_NT: &str = "252989f5ef41a79b95be96d4e52eba17";
const PREVIOUS_KRB_SHA256: &str =
    "4a3b23de43d6f39eeb330c15c8af9dba3001f6dde73bf34f31632d35bf5b1fd3";
/// 29.9 days in 100 ns units, and that minus five minutes.
const QUERY: Duration = Duration::from_secs(2_583_360);
const UNCHANGED: Duration = Duration::from_secs(2_583_360 - 300);

fn password(units: &[u16]) -> GmsaPassword {
    GmsaPassword {
        units: Zeroizing::new(units.to_vec()),
    }
}

fn krb_sha256(password: &GmsaPassword) -> (usize, String) {
    let form = password.kerberos_password();
    let bytes = form.expose_secret().as_bytes();
    (bytes.len(), hex::encode(Sha256::digest(bytes)))
}

/// A copy of `blob` with the u16 at `at` set to `value`.
fn with_u16(blob: &[u8], at: usize, value: u16) -> Vec<u8> {
    let mut out = blob.to_vec();
    out[at..at + 2].copy_from_slice(&value.to_le_bytes());
    out
}

/// A copy of `blob` cut or padded to `len`, with Length saying so.
fn resized(blob: &[u8], len: usize) -> Vec<u8> {
    let mut out = blob.to_vec();
    out.resize(len, 0);
    out[4..8].copy_from_slice(&u32::try_from(len).unwrap().to_le_bytes());
    out
}

#[test]
fn md4_passes_the_rfc_1320_suite() {
    // RFC 1320, appendix A.5, through the function the NT hash uses.
    let suite = [
        ("", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        ("a", "bde52cb31de33e46245e05fbdbd6fb24"),
        ("abc", "a448017aaf21d8525fc10ae87aa6729d"),
        ("message digest", "d9130a8164549fe818874806e1c7014b"),
        (
            "abcdefghijklmnopqrstuvwxyz",
            "d79e1c308aa5bbcdeea8ed63df412da9",
        ),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "043f8582f241db351ce627e153e7f0e4",
        ),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "e33b4ddc9c38f2199c3e7b164fcc0536",
        ),
    ];
    for (input, expected) in suite {
        let digest = md4(|hasher| hasher.update(input.as_bytes()));
        assert_eq!(hex::encode(*digest), expected, "MD4({input:?})");
    }
}

#[test]
fn nt_hash_is_md4_of_the_utf16le_password() {
    // The well-known NT hashes of "password" and of the empty password.
    let units: Vec<u16> = "password".encode_utf16().collect();
    assert_eq!(
        hex::encode(password(&units).nt_hash().expose_secret()),
        "8846f7eaee8fb117ad06bdd830b7586c"
    );
    assert_eq!(
        hex::encode(password(&[]).nt_hash().expose_secret()),
        "31d6cfe0d16ae931b73c59d7e0c089c0"
    );
}

#[test]
fn kerberos_form_is_samba_munged_utf8() {
    // Samba's own vector (lib/util/charset/tests/iconv.c, test_string2key):
    // lone surrogates become U+FFFD, a NUL U+0001.
    let units = [
        u16::from(b'a'),
        0xd805,
        u16::from(b'b'),
        0xdcf0,
        u16::from(b'c'),
        0,
        u16::from(b'd'),
        u16::from(b'e'),
        u16::from(b'f'),
        u16::from(b'g'),
    ];
    let form = password(&units).kerberos_password();
    assert_eq!(form.expose_secret(), "a\u{fffd}b\u{fffd}c\u{1}defg");
    // A valid pair stays one character; a trailing high surrogate is lone.
    let form = password(&[0xd83d, 0xde00, 0xd800]).kerberos_password();
    assert_eq!(form.expose_secret(), "\u{1f600}\u{fffd}");
}

#[test]
fn munged_utf8_has_exact_capacity() {
    // What keeps SecretString::from from reallocating (and leaving a copy).
    let text = munged_utf8(&[0xd83d, 0xde00, 0xd800, 0x41, 0]);
    assert_eq!(text.capacity(), text.len());
}

#[test]
fn decodes_a_blob_shaped_like_samba_4_22s() {
    // 290 bytes, offsets 16/0/274/282: what the lab's DC returned.
    let decoded = ManagedPassword::decode(NO_PREVIOUS).unwrap();
    assert_eq!(decoded.current.len_units(), 128);
    assert!(decoded.previous.is_none());
    assert_eq!(
        hex::encode(decoded.current.nt_hash().expose_secret()),
        CURRENT_NT
    );
    assert_eq!(
        krb_sha256(&decoded.current),
        (378, CURRENT_KRB_SHA256.to_string())
    );
    assert_eq!(decoded.query_interval, QUERY);
    assert_eq!(decoded.unchanged_interval, UNCHANGED);
}

#[test]
fn decodes_a_blob_with_a_previous_password_and_padding() {
    let decoded = ManagedPassword::decode(WITH_PREVIOUS).unwrap();
    let previous = decoded.previous.as_ref().unwrap();
    assert_eq!(
        hex::encode(decoded.current.nt_hash().expose_secret()),
        CURRENT_NT
    );
    assert_eq!(hex::encode(previous.nt_hash().expose_secret()), PREVIOUS_NT);
    assert_eq!(krb_sha256(previous), (376, PREVIOUS_KRB_SHA256.to_string()));
    assert_eq!(previous.expose_utf16().len(), 128);
    assert_eq!(decoded.query_interval, QUERY);
    assert_eq!(decoded.unchanged_interval, UNCHANGED);
}

#[test]
fn intervals_need_no_alignment_and_padding_may_be_odd() {
    // One stray byte after the terminator moves the intervals to 275/283.
    let mut blob = NO_PREVIOUS[..274].to_vec();
    blob.push(0);
    blob.extend_from_slice(&NO_PREVIOUS[274..]);
    let blob = with_u16(&resized(&blob, 291), 12, 275);
    let blob = with_u16(&blob, 14, 283);
    let decoded = ManagedPassword::decode(&blob).unwrap();
    assert_eq!(
        hex::encode(decoded.current.nt_hash().expose_secret()),
        CURRENT_NT
    );
    assert_eq!(decoded.unchanged_interval, UNCHANGED);
}

#[test]
fn debug_never_shows_a_secret() {
    // Exact text: lengths and intervals only, nothing a password could hide in.
    let decoded = ManagedPassword::decode(WITH_PREVIOUS).unwrap();
    assert_eq!(
        format!("{decoded:?}"),
        "ManagedPassword { \
         current: GmsaPassword { units: 128, value: \"<redacted>\" }, \
         previous: Some(GmsaPassword { units: 128, value: \"<redacted>\" }), \
         query_interval: 2583360s, unchanged_interval: 2583060s }"
    );
    assert_eq!(
        format!("{:?}", decoded.current.nt_hash()),
        "NtHash(<redacted>)"
    );
    assert!(
        !format!("{:?}", decoded.current.kerberos_password()).contains('\u{fffd}'),
        "the Kerberos form is a SecretString, whose Debug is redacted"
    );
}

#[test]
fn refuses_a_header_it_does_not_know() {
    use ManagedPasswordError as E;
    let decode = ManagedPassword::decode;
    assert_eq!(
        decode(&NO_PREVIOUS[..15]).unwrap_err(),
        E::TooShort { len: 15 }
    );
    assert_eq!(decode(&[]).unwrap_err(), E::TooShort { len: 0 });
    assert_eq!(
        decode(&with_u16(NO_PREVIOUS, 0, 2)).unwrap_err(),
        E::Version(2)
    );
    assert_eq!(
        decode(&with_u16(NO_PREVIOUS, 2, 7)).unwrap_err(),
        E::Reserved(7)
    );
    // Cut short (an odd length too) or stretched without Length saying so.
    assert_eq!(
        decode(&NO_PREVIOUS[..289]).unwrap_err(),
        E::Length {
            stated: 290,
            actual: 289
        }
    );
    let mut longer = NO_PREVIOUS.to_vec();
    longer.push(0);
    assert_eq!(
        decode(&longer).unwrap_err(),
        E::Length {
            stated: 290,
            actual: 291
        }
    );
}

#[test]
fn refuses_offsets_out_of_range_or_order() {
    // (blob, header byte of the offset, value, the field the error names)
    let cases: [(&[u8], usize, u16, &str); 9] = [
        // CurrentPasswordOffset MUST NOT be 0 (nor point into the header).
        (NO_PREVIOUS, 8, 0, "CurrentPasswordOffset"),
        (NO_PREVIOUS, 8, 14, "CurrentPasswordOffset"),
        (NO_PREVIOUS, 8, 0xffff, "CurrentPasswordOffset"),
        // The previous password before the current one, or past the intervals.
        (WITH_PREVIOUS, 10, 16, "PreviousPasswordOffset"),
        (WITH_PREVIOUS, 10, 540, "PreviousPasswordOffset"),
        // Intervals inside a password, overlapping each other or past the end.
        (WITH_PREVIOUS, 12, 200, "QueryPasswordIntervalOffset"),
        (NO_PREVIOUS, 12, 283, "QueryPasswordIntervalOffset"),
        (NO_PREVIOUS, 14, 278, "UnchangedPasswordIntervalOffset"),
        (NO_PREVIOUS, 14, 283, "UnchangedPasswordIntervalOffset"),
    ];
    for (blob, at, value, named) in cases {
        match ManagedPassword::decode(&with_u16(blob, at, value)) {
            Err(ManagedPasswordError::Offset { field, offset, .. }) => {
                assert_eq!((field, offset), (named, value));
            }
            other => panic!("{named} = {value}: {other:?}"),
        }
    }
    // A header with no room for anything.
    assert!(matches!(
        ManagedPassword::decode(&resized(&NO_PREVIOUS[..16], 16)),
        Err(ManagedPasswordError::Offset {
            field: "CurrentPasswordOffset",
            ..
        })
    ));
}

#[test]
fn refuses_a_password_without_terminator_or_empty() {
    use ManagedPasswordError::{Empty, Unterminated};
    let overwritten = |blob: &[u8], at: usize, bytes: &[u8]| {
        let mut out = blob.to_vec();
        out[at..at + bytes.len()].copy_from_slice(bytes);
        out
    };
    let cases = [
        // The current password's NUL overwritten: it would run into the intervals.
        (
            overwritten(NO_PREVIOUS, 272, b"A\0"),
            Unterminated {
                field: "CurrentPassword",
            },
        ),
        // An odd span (257 bytes) whose terminator straddles the next field.
        (
            with_u16(WITH_PREVIOUS, 10, 273),
            Unterminated {
                field: "CurrentPassword",
            },
        ),
        // The previous one's NUL and the zero padding that would end it too.
        (
            overwritten(WITH_PREVIOUS, 530, b"AAAAAA"),
            Unterminated {
                field: "PreviousPassword",
            },
        ),
        (
            overwritten(NO_PREVIOUS, 16, b"\0\0"),
            Empty {
                field: "CurrentPassword",
            },
        ),
    ];
    for (blob, expected) in cases {
        assert_eq!(ManagedPassword::decode(&blob).unwrap_err(), expected);
    }
}

#[test]
fn every_error_names_the_attribute_and_the_field() {
    let errors = [
        ManagedPassword::decode(&with_u16(NO_PREVIOUS, 14, 283)).unwrap_err(),
        ManagedPassword::decode(&with_u16(WITH_PREVIOUS, 10, 273)).unwrap_err(),
    ];
    assert_eq!(
        errors[0].to_string(),
        "msDS-ManagedPassword's UnchangedPasswordIntervalOffset 283 is outside 282..=282 \
         (the fields must follow the header and each other in order)"
    );
    assert_eq!(
        errors[1].to_string(),
        "msDS-ManagedPassword's CurrentPassword has no NUL terminator before the next field"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(blob in proptest::collection::vec(any::<u8>(), 0..700)) {
        match ManagedPassword::decode(&blob) {
            Ok(decoded) => prop_assert!(decoded.current.len_units() > 0),
            Err(error) => prop_assert!(error.to_string().starts_with("msDS-ManagedPassword")),
        }
    }

    #[test]
    fn mutated_blobs_never_panic(
        base in prop_oneof![Just(NO_PREVIOUS), Just(WITH_PREVIOUS)],
        edits in proptest::collection::vec((0usize..600, any::<u8>()), 1..8),
        cut in 0usize..600,
        fix_length in any::<bool>(),
    ) {
        // Header-aware: mostly valid blobs with a few bytes changed, cut
        // short, and Length often kept consistent so the offsets are reached.
        let mut blob = base.to_vec();
        for (at, value) in edits {
            if let Some(byte) = blob.get_mut(at % base.len()) {
                *byte = value;
            }
        }
        blob.truncate(cut.max(8));
        if fix_length && blob.len() >= 8 {
            let len = u32::try_from(blob.len()).unwrap();
            blob[4..8].copy_from_slice(&len.to_le_bytes());
        }
        if let Ok(decoded) = ManagedPassword::decode(&blob) {
            let _ = (decoded.current.nt_hash(), decoded.current.kerberos_password());
        }
    }
}
