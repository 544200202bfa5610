//! Just enough XML for the registration service's data-contract bodies:
//! the text of an element found by its local name (any namespace prefix),
//! and escaping for the answer. Not a general XML parser: no DTDs, CDATA
//! or nested markup inside the elements it reads (the bodies it serves
//! carry none there).

/// The text of the first element named `local_name` (`<a:MachineName>`
/// matches `MachineName`), entities decoded and surrounding whitespace
/// trimmed; `Some("")` for an empty or self-closing (`i:nil`) element.
pub fn element_text(xml: &str, local_name: &str) -> Option<String> {
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let tag = &rest[open + 1..];
        let close = tag.find('>')?;
        let inside = &tag[..close];
        rest = &tag[close + 1..];
        if inside.starts_with(['/', '?', '!']) {
            continue;
        }
        let name = inside
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        let local = name.rsplit_once(':').map_or(name, |(_, l)| l);
        if local != local_name {
            continue;
        }
        if inside.ends_with('/') {
            return Some(String::new());
        }
        let end = rest.find(&format!("</{name}>"))?;
        return Some(unescape(rest[..end].trim()));
    }
    None
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `text` safe inside an element.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_elements_by_local_name() {
        let xml = r#"<?xml version="1.0"?><R xmlns:i="x"><Base64Csr>
            QUJD
        </Base64Csr><Base64Pkcs10Csr i:nil="true"/><S><a:MachineName>h1</a:MachineName></S>
        <T>a &amp;lt; &lt;b&gt;</T></R>"#;
        assert_eq!(element_text(xml, "Base64Csr").as_deref(), Some("QUJD"));
        assert_eq!(element_text(xml, "Base64Pkcs10Csr").as_deref(), Some(""));
        assert_eq!(element_text(xml, "MachineName").as_deref(), Some("h1"));
        assert_eq!(element_text(xml, "T").as_deref(), Some("a &lt; <b>"));
        assert_eq!(element_text(xml, "Missing"), None);
        assert_eq!(element_text("<A>unterminated", "A"), None);
        assert_eq!(escape("a<&>"), "a&lt;&amp;&gt;");
    }
}
