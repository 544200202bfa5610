#!/usr/bin/python3
"""Writes the synthetic MSDS-MANAGEDPASSWORD_BLOB test vectors (MS-ADTS 2.2.19) that
src/model/managed_password.rs decodes, and prints what each must decode to.

Independent of the Rust code on purpose: the layout is packed with `struct`, the NT hash
is this file's own MD4 (RFC 1320; OpenSSL 3's hashlib has none) over the UTF-16LE bytes,
and the Kerberos form is Python's `utf-16-le` decode with errors="replace" (an unpaired
surrogate becomes U+FFFD), then UTF-8: the form measured to work with kinit against
Samba 4.22 (/work/shared/notes/samba-422.md, "AES keys").

Run from this folder: python3 gen.py  (deterministic; the files are committed).
A blob captured from the Samba 4.22 lab, with the NT hash Samba itself computes
(Credentials.set_utf16_password().get_nt_hash()), belongs next to these once the lab runs 4.22."""
import hashlib, struct

def md4(msg: bytes) -> bytes:
    rol = lambda v, s: ((v << s) | (v >> (32 - s))) & 0xFFFFFFFF
    bits = len(msg) * 8
    msg += b"\x80" + b"\x00" * ((55 - len(msg)) % 64) + struct.pack("<Q", bits)
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    rounds = [
        (lambda x, y, z: (x & y) | (~x & z), 0, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], (3, 7, 11, 19)),
        (lambda x, y, z: (x & y) | (x & z) | (y & z), 0x5A827999, [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15], (3, 5, 9, 13)),
        (lambda x, y, z: x ^ y ^ z, 0x6ED9EBA1, [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15], (3, 9, 11, 15)),
    ]
    for i in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[i:i + 64])
        a, b, c, d = h
        for f, k, order, shifts in rounds:
            for n, j in enumerate(order):
                t = (a + f(b, c, d) + x[j] + k) & 0xFFFFFFFF
                a, b, c, d = d, rol(t, shifts[n % 4]), b, c
        h = [(v + w) & 0xFFFFFFFF for v, w in zip(h, (a, b, c, d))]
    return struct.pack("<4I", *h)

# RFC 1320 A.5, so this MD4 is known good before it makes the expected values.
assert md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
assert md4(b"message digest").hex() == "d9130a8164549fe818874806e1c7014b"

def password(seed: bytes) -> list:
    """128 pseudo-random UTF-16 units as a DC makes them (256 random bytes), after
    PostProcessPasswordBuffer (MS-ADTS 3.1.1.4.5.39): an interior wide NUL becomes 0x0001."""
    raw = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(8))
    units = [u or 1 for u in struct.unpack("<128H", raw)]
    units[5], units[6] = 0xD83D, 0xDE00        # a valid surrogate pair (U+1F600)
    units[127] = 0xD800                        # a high surrogate with nothing after it
    return units

def wchar_z(units) -> bytes:
    return struct.pack(f"<{len(units)}H", *units) + b"\x00\x00"

QUERY = 25_833_600_000_000                     # 29.9 days in 100 ns units (as measured)
UNCHANGED = QUERY - 3_000_000_000              # minus MaxClockSkew, 5 minutes

def blob(current, previous, pad) -> bytes:
    body = wchar_z(current) + (wchar_z(previous) if previous else b"") + b"\x00" * pad
    cur = 16
    prev = 16 + len(wchar_z(current)) if previous else 0
    query = 16 + len(body)
    length = query + 16
    return struct.pack("<HHIHHHH", 1, 0, length, cur, prev, query, query + 8) + body + struct.pack("<QQ", QUERY, UNCHANGED)

def describe(name, units):
    utf16 = struct.pack(f"<{len(units)}H", *units)
    krb = utf16.decode("utf-16-le", errors="replace").encode("utf-8")
    lone = sum(1 for ch in utf16.decode("utf-16-le", "surrogatepass") if 0xD800 <= ord(ch) <= 0xDFFF)
    print(f"  {name}: NT hash {md4(utf16).hex()}, Kerberos form {len(krb)} UTF-8 bytes, "
          f"SHA-256 {hashlib.sha256(krb).hexdigest()}, lone surrogates {lone}")

current = password(b"provd gmsa current")
previous = password(b"provd gmsa previous")
for name, data, pw in [
    # The layout Samba 4.22 returned in the lab: no previous password, intervals right after
    # the terminator (offset 274, not 8-byte aligned, as Samba's gmsa.idl says Windows does).
    ("no-previous.bin", blob(current, None, 0), [("current", current)]),
    # Both passwords and the spec's AlignmentPadding before the 8-byte aligned intervals.
    ("with-previous.bin", blob(current, previous, 4), [("current", current), ("previous", previous)]),
]:
    open(name, "wb").write(data)
    print(f"{name}: {len(data)} bytes, offsets {struct.unpack_from('<HHHH', data, 8)}")
    for label, units in pw:
        describe(label, units)
