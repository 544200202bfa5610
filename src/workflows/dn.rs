//! Distinguished names as RFC 4514 writes them, parsed only to check what a
//! request names before it reaches a DC (ldap3 has no DN parser, and the
//! workflows may not use it anyway). Spaces around `,`, `+` and `=` are
//! allowed, as AD accepts them (RFC 1779 style).

/// One attribute type and its value (unescaped) of an RDN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ava {
    pub(crate) attr: String,
    pub(crate) value: String,
}

/// The RDNs of `dn`, leftmost first, or why it is not a DN.
pub(crate) fn parse(dn: &str) -> Result<Vec<Vec<Ava>>, String> {
    let mut p = Parser {
        bytes: dn.as_bytes(),
        at: 0,
    };
    if dn.trim().is_empty() {
        return Err("it is empty".into());
    }
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    loop {
        rdn.push(p.ava()?);
        p.spaces();
        match p.next() {
            None => break,
            Some(b'+') => {}
            Some(b',') => rdns.push(std::mem::take(&mut rdn)),
            Some(c) => return Err(format!("unexpected {:?} after a value", char::from(c))),
        }
    }
    rdns.push(rdn);
    Ok(rdns)
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn ava(&mut self) -> Result<Ava, String> {
        self.spaces();
        let attr = self.attribute_type()?;
        self.spaces();
        if self.next() != Some(b'=') {
            return Err(format!("\"=\" must follow the attribute type {attr}"));
        }
        self.spaces();
        let value = if self.peek() == Some(b'#') {
            self.at += 1;
            self.hex_value()?
        } else {
            self.string_value()?
        };
        if value.is_empty() {
            return Err(format!("the value of {attr} is empty"));
        }
        Ok(Ava { attr, value })
    }

    /// A descriptor (`cn`, `msDS-x`) or a numeric OID (`2.5.4.3`).
    fn attribute_type(&mut self) -> Result<String, String> {
        let start = self.at;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() => {
                while self
                    .peek()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    self.at += 1;
                }
            }
            Some(b) if b.is_ascii_digit() => {
                while self.peek().is_some_and(|b| b.is_ascii_digit() || b == b'.') {
                    self.at += 1;
                }
                let oid = &self.bytes[start..self.at];
                let ok = oid
                    .split(|b| *b == b'.')
                    .all(|n| !n.is_empty() && (n == b"0" || n[0] != b'0'))
                    && oid.contains(&b'.');
                if !ok {
                    return Err("an attribute type must be a name or a dotted OID".into());
                }
            }
            _ => return Err("an attribute type must be a name or a dotted OID".into()),
        }
        Ok(String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned())
    }

    /// `#` already read: hex pairs (a BER value).
    fn hex_value(&mut self) -> Result<String, String> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_hexdigit()) {
            self.at += 1;
        }
        let hex = &self.bytes[start..self.at];
        if hex.is_empty() || !hex.len().is_multiple_of(2) {
            return Err("a value after \"#\" must be pairs of hex digits".into());
        }
        Ok(format!("#{}", String::from_utf8_lossy(hex)))
    }

    /// Up to an unescaped `,` or `+`; escapes decoded; unescaped trailing
    /// spaces dropped.
    fn string_value(&mut self) -> Result<String, String> {
        let mut out = Vec::new();
        let mut trailing_spaces = 0;
        while let Some(b) = self.peek() {
            match b {
                b',' | b'+' => break,
                b'\\' => {
                    self.at += 1;
                    out.push(self.escaped()?);
                    trailing_spaces = 0;
                }
                b'"' | b';' | b'<' | b'>' | 0 => {
                    return Err(format!(
                        "{:?} must be escaped with a backslash",
                        char::from(b)
                    ));
                }
                _ => {
                    self.at += 1;
                    out.push(b);
                    trailing_spaces = if b == b' ' { trailing_spaces + 1 } else { 0 };
                }
            }
        }
        out.truncate(out.len() - trailing_spaces);
        String::from_utf8(out).map_err(|_| "an escaped value is not UTF-8".to_owned())
    }

    /// After a backslash: a special character or two hex digits.
    fn escaped(&mut self) -> Result<u8, String> {
        const SPECIAL: &[u8] = b" \"#+,;<=>\\";
        let hex = |b: Option<u8>| b.and_then(|b| char::from(b).to_digit(16));
        match self.next() {
            Some(b) if SPECIAL.contains(&b) => Ok(b),
            first => match (hex(first), hex(self.next())) {
                (Some(hi), Some(lo)) => u8::try_from(hi * 16 + lo).map_err(|e| e.to_string()),
                _ => Err(
                    "a backslash must be followed by two hex digits or a special character".into(),
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(dn: &str) -> Vec<Vec<(String, String)>> {
        parse(dn)
            .unwrap()
            .into_iter()
            .map(|rdn| rdn.into_iter().map(|a| (a.attr, a.value)).collect())
            .collect()
    }

    #[test]
    fn dns_that_ad_writes() {
        let dn = values("CN=provAgentgMSA,CN=Managed Service Accounts,DC=lab,DC=example,DC=test");
        assert_eq!(dn.len(), 5);
        assert_eq!(dn[1], [("CN".into(), "Managed Service Accounts".into())]);
        assert_eq!(
            values("CN=Smith\\, John,OU=a\\2Cb,DC=x")[..2],
            [
                vec![("CN".to_owned(), "Smith, John".to_owned())],
                vec![("OU".to_owned(), "a,b".to_owned())]
            ]
        );
        assert_eq!(
            values("cn = a + sn=b , 2.5.4.3=#0403616263")[..],
            [
                vec![("cn".into(), "a".into()), ("sn".into(), "b".into())],
                vec![("2.5.4.3".into(), "#0403616263".into())]
            ]
        );
        assert_eq!(values("CN=\\ x\\ ")[0][0].1, " x ");
        assert_eq!(values("CN=caf\\C3\\A9")[0][0].1, "café");
        assert_eq!(values("CN=a=b")[0][0].1, "a=b", "RFC 4514 allows =");
    }

    #[test]
    fn what_is_no_dn() {
        for bad in [
            "",
            "  ",
            "x)(objectClass=*",
            "CN",
            "CN=",
            "=x",
            "CN=x,",
            ",CN=x",
            "CN=x,,DC=y",
            "CN=a\"b",
            "CN=a;b",
            "CN=a<b",
            "CN=a\0",
            "CN=a\\",
            "CN=a\\g1",
            "CN=a\\4",
            "CN=#",
            "CN=#abc",
            "CN=#zz",
            "1=x",
            "1..2=x",
            "01.2=x",
            "C N=x",
            "CN=\\ff",
            "CN=x;DC=y",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed: {:?}", parse(bad));
        }
    }
}
