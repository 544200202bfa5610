//! A gMSA's password as the DC hands it out: the `msDS-ManagedPassword`
//! attribute's MSDS-MANAGEDPASSWORD_BLOB (MS-ADTS 2.2.19), decoded, and the
//! keys a client derives from it to authenticate as the account.
//!
//! Why here: the blob is a domain value read from a plain entry, like
//! GeneralizedTime. The directory backend hands out its raw bytes
//! (`DirectorySession::read_managed_password`, `None` when the DC withholds
//! the attribute), Verify's `host.gmsa.retrievable` decodes it to reach the
//! level "retrieved" (attribute `proof`), and the Kerberos proof
//! ("authenticated", not yet built) will give
//! [`GmsaPassword::kerberos_password`] back to the backend. Types that cross
//! the backend traits live in `model`; `provd-sd` stays the security
//! descriptor codec it says it is. Next step (issue 18): a session bound as
//! the host (Kerberos, or the computer account's password) so Verify reads
//! as the principal and not as the operator, and the authentication proof;
//! both need the Samba 4.22 lab.
//!
//! Layout, little-endian: Version u16 (1), Reserved u16 (0), Length u32 (the
//! blob's length), then the byte offsets of CurrentPassword, PreviousPassword
//! (0: none), QueryPasswordInterval and UnchangedPasswordInterval, each u16;
//! the passwords are NUL-terminated WCHAR strings, in that order, then
//! optional alignment padding and the two u64 intervals in 100 ns units. The
//! spec asks for 8-byte aligned intervals, but Samba's `gmsa.idl` notes that
//! Windows' blobs do not align them, and Samba 4.22's did not either (offset
//! 274, `/work/shared/notes/samba-422.md`): no alignment is required here.
//!
//! Secrets: the password and everything derived from it zeroize on drop,
//! print as `<redacted>` and implement neither `Clone` nor `Serialize`. The
//! blob itself is the caller's to zeroize. Limit: the `md4` crate's hasher
//! state (a copy of the last partial block) is not zeroized when it drops.

use std::time::Duration;

use md4::{Digest, Md4};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// The header's size; the current password starts at or after it.
const HEADER_LEN: usize = 16;
/// The two u64 intervals that end the blob.
const INTERVALS_LEN: usize = 16;

/// A decoded `msDS-ManagedPassword` value.
#[derive(Debug)]
pub struct ManagedPassword {
    /// The password the account has now.
    pub current: GmsaPassword,
    /// The one it had before the last change, while the DC still hands it out.
    pub previous: Option<GmsaPassword>,
    /// How long until the caller should read the password again.
    pub query_interval: Duration,
    /// How long the DC keeps handing out this current password (measured on
    /// Samba 4.22: the query interval minus five minutes of clock skew).
    pub unchanged_interval: Duration,
}

/// What is wrong with a blob; each names the field and the value seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedPasswordError {
    #[error("msDS-ManagedPassword is {len} bytes, shorter than its 16-byte header")]
    TooShort { len: usize },
    #[error("msDS-ManagedPassword has Version {0}, not 1")]
    Version(u16),
    #[error("msDS-ManagedPassword has Reserved {0}, not 0")]
    Reserved(u16),
    #[error("msDS-ManagedPassword states Length {stated} but is {actual} bytes")]
    Length { stated: u32, actual: usize },
    #[error(
        "msDS-ManagedPassword's {field} {offset} is outside {low}..={high} \
         (the fields must follow the header and each other in order)"
    )]
    Offset {
        field: &'static str,
        offset: u16,
        low: usize,
        high: usize,
    },
    #[error("msDS-ManagedPassword's {field} has no NUL terminator before the next field")]
    Unterminated { field: &'static str },
    #[error("msDS-ManagedPassword's {field} is empty")]
    Empty { field: &'static str },
}

impl ManagedPassword {
    /// Decodes the attribute's value. Never panics, whatever the bytes.
    pub fn decode(blob: &[u8]) -> Result<Self, ManagedPasswordError> {
        use ManagedPasswordError as E;
        if blob.len() < HEADER_LEN {
            return Err(E::TooShort { len: blob.len() });
        }
        let u16_at = |at: usize| u16::from_le_bytes([blob[at], blob[at + 1]]);
        let version = u16_at(0);
        if version != 1 {
            return Err(E::Version(version));
        }
        let reserved = u16_at(2);
        if reserved != 0 {
            return Err(E::Reserved(reserved));
        }
        let stated = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]);
        if usize::try_from(stated).ok() != Some(blob.len()) {
            return Err(E::Length {
                stated,
                actual: blob.len(),
            });
        }
        let (current_at, previous_at) = (u16_at(8), u16_at(10));
        let (query_at, unchanged_at) = (u16_at(12), u16_at(14));
        // Each field lies after the one before it and leaves room for what
        // follows: a password at least its terminator, an interval 8 bytes.
        let len = blob.len();
        let field = |name, offset: u16, low: usize, high: usize| {
            let at = usize::from(offset);
            if low <= at && at <= high {
                Ok(at)
            } else {
                Err(E::Offset {
                    field: name,
                    offset,
                    low,
                    high,
                })
            }
        };
        let interval_room = len.saturating_sub(INTERVALS_LEN);
        let current = field(
            "CurrentPasswordOffset",
            current_at,
            HEADER_LEN,
            interval_room.saturating_sub(2),
        )?;
        let previous = match previous_at {
            0 => None,
            at => Some(field(
                "PreviousPasswordOffset",
                at,
                current + 2,
                interval_room.saturating_sub(2),
            )?),
        };
        let query = field(
            "QueryPasswordIntervalOffset",
            query_at,
            previous.unwrap_or(current) + 2,
            interval_room,
        )?;
        let unchanged = field(
            "UnchangedPasswordIntervalOffset",
            unchanged_at,
            query + 8,
            len.saturating_sub(8),
        )?;
        let current_end = previous.unwrap_or(query);
        Ok(Self {
            current: GmsaPassword::read(&blob[current..current_end], "CurrentPassword")?,
            previous: match previous {
                Some(at) => Some(GmsaPassword::read(&blob[at..query], "PreviousPassword")?),
                None => None,
            },
            query_interval: interval(&blob[query..query + 8]),
            unchanged_interval: interval(&blob[unchanged..unchanged + 8]),
        })
    }
}

/// A u64 count of 100 ns units; split so that no value can overflow.
fn interval(bytes: &[u8]) -> Duration {
    let mut le = [0u8; 8];
    le.copy_from_slice(bytes);
    let ticks = u64::from_le_bytes(le);
    Duration::from_secs(ticks / 10_000_000) + Duration::from_nanos(ticks % 10_000_000 * 100)
}

/// One of a gMSA's passwords: UTF-16 code units, not necessarily valid
/// UTF-16 (a DC makes them from 256 random bytes, so most hold unpaired
/// surrogates), without the terminator.
pub struct GmsaPassword {
    units: Zeroizing<Vec<u16>>,
}

impl std::fmt::Debug for GmsaPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmsaPassword")
            .field("units", &self.units.len())
            .field("value", &"<redacted>")
            .finish()
    }
}

impl GmsaPassword {
    /// The units up to the first NUL of `span`, which must have one: a
    /// terminator-less string would run into the next field.
    fn read(span: &[u8], field: &'static str) -> Result<Self, ManagedPasswordError> {
        let pairs = span
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]));
        let len = pairs
            .clone()
            .position(|unit| unit == 0)
            .ok_or(ManagedPasswordError::Unterminated { field })?;
        if len == 0 {
            return Err(ManagedPasswordError::Empty { field });
        }
        // Exactly this capacity, so the vector never reallocates and leaves
        // an unzeroized copy behind.
        let mut units = Zeroizing::new(Vec::with_capacity(len));
        units.extend(pairs.take(len));
        Ok(Self { units })
    }

    /// How many UTF-16 code units the password has (a DC's: 128).
    pub fn len_units(&self) -> usize {
        self.units.len()
    }

    /// The NT hash (the RC4-HMAC key, what NTLM proves): MD4 of the
    /// password's UTF-16LE bytes without the terminator, as Windows and
    /// Samba (`mdfour` over the raw blob in `cli_credentials_set_utf16_password`)
    /// compute it. Taken over the units as they are, surrogates and all.
    pub fn nt_hash(&self) -> NtHash {
        // Unit by unit: no byte copy of the password to zeroize.
        NtHash(md4(|hasher| {
            for unit in self.units.iter() {
                hasher.update(unit.to_le_bytes());
            }
        }))
    }

    /// The password as MIT Kerberos takes it (`kinit`,
    /// `gss_acquire_cred_with_password`), from which it derives the AES keys
    /// with the salt the KDC announces. Kerberos string-to-key hashes bytes, so
    /// the DC must have chosen a byte form of the UTF-16 password, and it is
    /// Samba's `CH_UTF16MUNGED` → UTF-8 (`password_hash.c` makes the account's
    /// AES keys this way; Windows is said to do the same, unverified): an
    /// unpaired surrogate becomes U+FFFD and a NUL U+0001 (Samba's own
    /// iconv test, `test_string2key`). Measured against Samba 4.22's KDC: kinit
    /// with this form works, the form keeping the surrogates does not
    /// (`/work/shared/notes/samba-422.md`). It cannot be turned back into the UTF-16
    /// password, so it proves Kerberos only, never NTLM or a simple bind.
    pub fn kerberos_password(&self) -> SecretString {
        SecretString::from(munged_utf8(&self.units))
    }

    /// The raw units, for a later proof that needs them (NTLM). Named so that
    /// every use is easy to find.
    pub fn expose_utf16(&self) -> &[u16] {
        &self.units
    }
}

/// MD4 (RFC 1320) of what `feed` writes, straight into zeroizing storage so
/// no stray copy of the digest is left behind.
fn md4(feed: impl FnOnce(&mut Md4)) -> Zeroizing<[u8; 16]> {
    let mut hasher = Md4::new();
    feed(&mut hasher);
    let mut digest = Zeroizing::new([0u8; 16]);
    hasher.finalize_into(md4::digest::Output::<Md4>::from_mut_slice(&mut digest[..]));
    digest
}

/// UTF-16 → UTF-8 as Samba's `CH_UTF16MUNGED` converts it. The capacity is
/// exact, so the string never reallocates and `SecretString`'s conversion to a
/// boxed `str` does not either: no unzeroized copy is left behind.
fn munged_utf8(units: &[u16]) -> String {
    let chars = || {
        char::decode_utf16(units.iter().copied()).map(|c| match c {
            Ok('\0') => '\u{1}',
            Ok(c) => c,
            Err(_) => char::REPLACEMENT_CHARACTER,
        })
    };
    let mut text = String::with_capacity(chars().map(char::len_utf8).sum());
    text.extend(chars());
    text
}

/// An NT hash: 16 bytes that authenticate as the account wherever NTLM or
/// RC4-HMAC is accepted, so a secret like the password.
pub struct NtHash(Zeroizing<[u8; 16]>);

impl std::fmt::Debug for NtHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NtHash(<redacted>)")
    }
}

impl NtHash {
    /// The 16 bytes, for an NTLM or RC4 proof.
    pub fn expose_secret(&self) -> &[u8; 16] {
        &self.0
    }
}

#[cfg(test)]
#[path = "managed_password_tests.rs"]
mod tests;
