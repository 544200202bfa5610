//! Escaping of values placed in LDAP filters (RFC 4515) and DNs (RFC 4514).
//! Every value that comes from a request goes through one of these.

/// Escapes a value for an LDAP filter assertion: `*`, `(`, `)`, `\` and NUL
/// become `\2a`, `\28`, `\29`, `\5c`, `\00`; non-ASCII bytes are escaped too.
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'*' | b'(' | b')' | b'\\' | 0 => out.push_str(&format!("\\{byte:02x}")),
            0x80..=0xff => out.push_str(&format!("\\{byte:02x}")),
            _ => out.push(char::from(byte)),
        }
    }
    out
}

/// Every byte escaped (`\01\05…`): for binary assertions such as objectSid.
pub fn binary(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// `(attr=value)` with `value` escaped.
pub fn eq(attr: &str, value: &str) -> String {
    format!("({attr}={})", filter_value(value))
}

/// Escapes an attribute value for use in a DN: `, + " \ < > ;` and `=` are
/// backslash-escaped, a leading `#` or space and a trailing space too, NUL
/// becomes `\00`.
pub fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

/// `DC=lab,DC=example,DC=test` for `lab.example.test` (labels already
/// validated as a DNS name, escaped anyway).
pub fn domain_dn(domain: &str) -> String {
    domain
        .split('.')
        .map(|label| format!("DC={}", dn_value(label)))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_escaping_neutralises_injection() {
        assert_eq!(filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(filter_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(eq("cn", "x)(|(cn=*"), "(cn=x\\29\\28|\\28cn=\\2a)");
        assert_eq!(filter_value("é"), "\\c3\\a9");
        assert_eq!(binary(&[1, 0xff]), "\\01\\ff");
    }

    #[test]
    fn dn_escaping() {
        assert_eq!(dn_value(",DC=evil"), "\\,DC\\=evil");
        assert_eq!(dn_value("#x "), "\\#x\\ ");
        assert_eq!(dn_value("a+b;c\"d<e>"), "a\\+b\\;c\\\"d\\<e\\>");
        assert_eq!(domain_dn("lab.example.test"), "DC=lab,DC=example,DC=test");
    }
}
