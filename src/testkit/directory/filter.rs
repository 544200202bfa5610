//! A small RFC 4515 search filter parser and evaluator: and/or/not,
//! equality, presence, substrings, ordering, approximate and the
//! extensible matches AD workflows use (LDAP_MATCHING_RULE_IN_CHAIN,
//! bitwise AND/OR).

use std::borrow::Cow;

/// `member:1.2.840.113556.1.4.1941:=` — transitive membership.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";
/// LDAP_MATCHING_RULE_BIT_AND.
pub const BIT_AND: &str = "1.2.840.113556.1.4.803";
/// LDAP_MATCHING_RULE_BIT_OR.
pub const BIT_OR: &str = "1.2.840.113556.1.4.804";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Equal(String, Vec<u8>),
    Present(String),
    Substrings {
        attr: String,
        initial: Option<Vec<u8>>,
        any: Vec<Vec<u8>>,
        last: Option<Vec<u8>>,
    },
    GreaterOrEqual(String, Vec<u8>),
    LessOrEqual(String, Vec<u8>),
    Approx(String, Vec<u8>),
    Extensible {
        attr: Option<String>,
        rule: Option<String>,
        value: Vec<u8>,
    },
}

/// What the evaluator needs from the directory: an attribute's values on
/// the entry being tested, and the two lookups AD filters imply.
pub trait Context {
    /// Values of `attr` (lower case) on the entry; empty when absent.
    fn values(&self, attr: &str) -> Cow<'_, [Vec<u8>]>;
    /// Whether `objectCategory=<value>` holds (a class name or a DN).
    fn category_matches(&self, value: &[u8]) -> bool;
    /// Whether the entry's `attr` reaches `dn` through a chain of `attr`
    /// links (LDAP_MATCHING_RULE_IN_CHAIN).
    fn in_chain(&self, attr: &str, dn: &str) -> bool;
}

/// Parses a filter; `Err` says where it went wrong (LDAP would answer
/// protocolError / filter error).
pub fn parse(text: &str) -> Result<Filter, String> {
    let text = text.trim();
    let bytes = text.as_bytes();
    // A bare item without parentheses is accepted by most servers.
    let (filter, end) = if bytes.first() == Some(&b'(') {
        parse_at(bytes, 0)?
    } else {
        let wrapped = format!("({text})");
        return parse(&wrapped);
    };
    if end != bytes.len() {
        return Err(format!("trailing text after the filter at {end}"));
    }
    Ok(filter)
}

fn parse_at(b: &[u8], pos: usize) -> Result<(Filter, usize), String> {
    if b.get(pos) != Some(&b'(') {
        return Err(format!("expected '(' at {pos}"));
    }
    let mut i = pos + 1;
    match b.get(i) {
        Some(b'&') | Some(b'|') => {
            let and = b[i] == b'&';
            i += 1;
            let mut items = Vec::new();
            while b.get(i) == Some(&b'(') {
                let (f, next) = parse_at(b, i)?;
                items.push(f);
                i = next;
            }
            if b.get(i) != Some(&b')') {
                return Err(format!("expected ')' at {i}"));
            }
            Ok((
                if and {
                    Filter::And(items)
                } else {
                    Filter::Or(items)
                },
                i + 1,
            ))
        }
        Some(b'!') => {
            let (f, next) = parse_at(b, i + 1)?;
            if b.get(next) != Some(&b')') {
                return Err(format!("expected ')' at {next}"));
            }
            Ok((Filter::Not(Box::new(f)), next + 1))
        }
        Some(_) => {
            let close = find_close(b, i)?;
            Ok((item(&b[i..close])?, close + 1))
        }
        None => Err("unexpected end of filter".into()),
    }
}

/// The ')' ending a simple item (values escape parentheses as \28 \29).
fn find_close(b: &[u8], from: usize) -> Result<usize, String> {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b')' => return Ok(i),
            b'(' => return Err(format!("unescaped '(' at {i}")),
            _ => i += 1,
        }
    }
    Err("missing ')'".into())
}

fn item(b: &[u8]) -> Result<Filter, String> {
    let text = std::str::from_utf8(b).map_err(|_| "filter is not UTF-8".to_owned())?;
    let eq = text
        .find('=')
        .ok_or_else(|| format!("no '=' in filter item {text:?}"))?;
    let (left, value) = (&text[..eq], &text[eq + 1..]);
    if let Some(left) = left.strip_suffix(':') {
        // attr[:dn][:rule]:=value  or  [:dn]:rule:=value
        let mut parts = left.split(':');
        let attr = parts.next().filter(|a| !a.is_empty()).map(attr_name);
        let mut rule = None;
        for p in parts {
            if !p.eq_ignore_ascii_case("dn") && !p.is_empty() {
                rule = Some(p.to_owned());
            }
        }
        if attr.is_none() && rule.is_none() {
            return Err(format!(
                "extensible match without attribute or rule: {text:?}"
            ));
        }
        return Ok(Filter::Extensible {
            attr,
            rule,
            value: unescape(value)?,
        });
    }
    let (attr, kind) = if let Some(a) = left.strip_suffix('>') {
        (a, '>')
    } else if let Some(a) = left.strip_suffix('<') {
        (a, '<')
    } else if let Some(a) = left.strip_suffix('~') {
        (a, '~')
    } else {
        (left, '=')
    };
    if attr.is_empty()
        || !attr
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';')
    {
        return Err(format!("bad attribute description {attr:?}"));
    }
    let attr = attr_name(attr);
    match kind {
        '>' => Ok(Filter::GreaterOrEqual(attr, unescape(value)?)),
        '<' => Ok(Filter::LessOrEqual(attr, unescape(value)?)),
        '~' => Ok(Filter::Approx(attr, unescape(value)?)),
        _ if value == "*" => Ok(Filter::Present(attr)),
        _ if value.contains('*') => {
            let pieces: Vec<&str> = value.split('*').collect();
            let n = pieces.len();
            let opt = |s: &str| -> Result<Option<Vec<u8>>, String> {
                if s.is_empty() {
                    Ok(None)
                } else {
                    unescape(s).map(Some)
                }
            };
            Ok(Filter::Substrings {
                attr,
                initial: opt(pieces[0])?,
                any: pieces[1..n - 1]
                    .iter()
                    .filter(|p| !p.is_empty())
                    .map(|p| unescape(p))
                    .collect::<Result<_, _>>()?,
                last: opt(pieces[n - 1])?,
            })
        }
        _ => Ok(Filter::Equal(attr, unescape(value)?)),
    }
}

fn attr_name(a: &str) -> String {
    a.to_ascii_lowercase()
}

/// `\2a` style escapes to bytes.
fn unescape(value: &str) -> Result<Vec<u8>, String> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad escape in {value:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Case-insensitive for text, exact for binary values.
pub fn value_eq(a: &[u8], b: &[u8]) -> bool {
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(x), Ok(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    }
}

fn lower(v: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(v) {
        Ok(s) => s.to_ascii_lowercase().into_bytes(),
        Err(_) => v.to_vec(),
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from);
    }
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn substring_match(
    v: &[u8],
    initial: &Option<Vec<u8>>,
    any: &[Vec<u8>],
    last: &Option<Vec<u8>>,
) -> bool {
    let v = lower(v);
    let mut pos = 0;
    if let Some(i) = initial {
        let i = lower(i);
        if !v.starts_with(&i) {
            return false;
        }
        pos = i.len();
    }
    for a in any {
        match find(&v, &lower(a), pos) {
            Some(p) => pos = p + a.len(),
            None => return false,
        }
    }
    match last {
        Some(l) => {
            let l = lower(l);
            v.len() >= pos + l.len() && v.ends_with(&l)
        }
        None => true,
    }
}

fn ordering(v: &[u8], wanted: &[u8]) -> Option<std::cmp::Ordering> {
    let (a, b) = (
        std::str::from_utf8(v).ok()?,
        std::str::from_utf8(wanted).ok()?,
    );
    match (a.parse::<i128>(), b.parse::<i128>()) {
        (Ok(x), Ok(y)) => Some(x.cmp(&y)),
        _ => Some(a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase())),
    }
}

impl Filter {
    pub fn matches(&self, cx: &dyn Context) -> bool {
        match self {
            Filter::And(items) => items.iter().all(|f| f.matches(cx)),
            Filter::Or(items) => items.iter().any(|f| f.matches(cx)),
            Filter::Not(f) => !f.matches(cx),
            Filter::Present(attr) => attr == "objectclass" || !cx.values(attr).is_empty(),
            Filter::Equal(attr, wanted) if attr == "objectcategory" => cx.category_matches(wanted),
            Filter::Equal(attr, wanted) | Filter::Approx(attr, wanted) => {
                cx.values(attr).iter().any(|v| value_eq(v, wanted))
            }
            Filter::Substrings {
                attr,
                initial,
                any,
                last,
            } => cx
                .values(attr)
                .iter()
                .any(|v| substring_match(v, initial, any, last)),
            Filter::GreaterOrEqual(attr, wanted) => cx
                .values(attr)
                .iter()
                .any(|v| ordering(v, wanted).is_some_and(|o| o.is_ge())),
            Filter::LessOrEqual(attr, wanted) => cx
                .values(attr)
                .iter()
                .any(|v| ordering(v, wanted).is_some_and(|o| o.is_le())),
            Filter::Extensible { attr, rule, value } => {
                let Some(attr) = attr else { return false };
                match rule.as_deref() {
                    Some(IN_CHAIN) => std::str::from_utf8(value)
                        .map(|dn| cx.in_chain(attr, dn))
                        .unwrap_or(false),
                    Some(r @ (BIT_AND | BIT_OR)) => {
                        let Some(mask) = std::str::from_utf8(value)
                            .ok()
                            .and_then(|v| v.parse::<i64>().ok())
                        else {
                            return false;
                        };
                        cx.values(attr).iter().any(|v| {
                            std::str::from_utf8(v)
                                .ok()
                                .and_then(|v| v.parse::<i64>().ok())
                                .is_some_and(|n| {
                                    if r == BIT_AND {
                                        n & mask == mask
                                    } else {
                                        n & mask != 0
                                    }
                                })
                        })
                    }
                    _ => cx.values(attr).iter().any(|v| value_eq(v, value)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct E(Vec<(&'static str, Vec<&'static [u8]>)>);
    impl Context for E {
        fn values(&self, attr: &str) -> Cow<'_, [Vec<u8>]> {
            self.0
                .iter()
                .filter(|(a, _)| a.eq_ignore_ascii_case(attr))
                .flat_map(|(_, v)| v.iter().map(|x| x.to_vec()))
                .collect::<Vec<_>>()
                .into()
        }
        fn category_matches(&self, value: &[u8]) -> bool {
            value_eq(value, b"person")
        }
        fn in_chain(&self, _attr: &str, dn: &str) -> bool {
            dn == "CN=x"
        }
    }

    #[test]
    fn parses_and_matches() {
        let e = E(vec![
            ("objectClass", vec![b"top", b"user"]),
            ("cn", vec![b"Alice (admin)"]),
            ("objectSid", vec![&[1, 2, 0xff]]),
            ("userAccountControl", vec![b"514"]),
        ]);
        for (f, want) in [
            ("(objectClass=USER)", true),
            ("(&(objectClass=user)(cn=alice*))", true),
            ("(|(cn=bob)(!(cn=alice \\28admin\\29)))", false),
            ("(cn=*\\28adm*)", true),
            ("(objectSid=\\01\\02\\ff)", true),
            ("(objectSid=\\01\\02\\fe)", false),
            ("(userAccountControl:1.2.840.113556.1.4.803:=2)", true),
            ("(member:1.2.840.113556.1.4.1941:=CN=x)", true),
            ("(&(objectCategory=person)(objectClass=user))", true),
            ("(mail=*)", false),
            ("(userAccountControl>=600)", false),
            ("objectClass=*", true),
        ] {
            assert_eq!(parse(f).unwrap().matches(&e), want, "{f}");
        }
        for bad in [
            "(cn=a",
            "(&(cn=a)",
            "((cn=a))",
            "(cn=\\zz)",
            "(=a)",
            "(cn=a))",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
