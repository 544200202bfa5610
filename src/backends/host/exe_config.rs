//! `AADConnectProvisioningAgent.exe.config` read and edited as XML: the
//! outbound proxy (`<configuration><system.net><defaultProxy>`, the element
//! Microsoft's troubleshooting page tells administrators to add) and
//! `<configuration><runtime><enforceFIPSPolicy enabled="..."/>`.
//!
//! Why quick-xml: the edit must keep everything else of a file Microsoft's
//! installer (and AADCloudSyncTools' verbose-trace cmdlets, and the
//! administrator) own — declaration, comments, attribute order and quoting,
//! whitespace, line endings. A DOM crate rewrites the whole document in its
//! own style; quick-xml's reader hands each piece of markup over as it was
//! read and its writer puts it back unchanged, so only the two elements
//! provd owns are inserted, replaced or removed. It is pure Rust, widely
//! used and maintained, and has no C dependency to cross-build.
//!
//! The encoding is kept: UTF-8 with or without its byte-order mark, and
//! UTF-16 (LE or BE, with its mark) are read and written back as they came;
//! any other encoding is refused, never guessed.

use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::escape::escape;
use quick_xml::events::{BytesEnd, BytesStart, Event};

use super::AgentProxy;

/// The lab stand-in's exe.config (`deploy/lab/windows/`, which the lab's
/// agent MSI installs): a realistic file for the editor's tests and
/// `FakeHost` to start from.
#[cfg(any(test, feature = "testkit"))]
pub const SAMPLE: &[u8] =
    include_bytes!("../../../deploy/lab/windows/AADConnectProvisioningAgent.exe.config");

/// The file's encoding, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
}

fn decode(bytes: &[u8]) -> Result<(Encoding, String), String> {
    let utf16 = |body: &[u8], le: bool| -> Result<String, String> {
        if !body.len().is_multiple_of(2) {
            return Err("odd length for UTF-16".into());
        }
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|e| format!("not valid UTF-16: {e}"))
    };
    if let Some(body) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        let text = std::str::from_utf8(body).map_err(|e| format!("not valid UTF-8: {e}"))?;
        return Ok((Encoding::Utf8Bom, text.to_owned()));
    }
    if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return Ok((Encoding::Utf16Le, utf16(body, true)?));
    }
    if let Some(body) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return Ok((Encoding::Utf16Be, utf16(body, false)?));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((Encoding::Utf8, text.to_owned())),
        Err(_) => {
            Err("neither UTF-8 nor UTF-16 with a byte-order mark: provd does not edit it".into())
        }
    }
}

fn encode(encoding: Encoding, text: &str) -> Vec<u8> {
    match encoding {
        Encoding::Utf8 => text.as_bytes().to_vec(),
        Encoding::Utf8Bom => [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
        Encoding::Utf16Le => [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect(),
        Encoding::Utf16Be => [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
            .collect(),
    }
}

/// What the file says of the two settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExeConfigSettings {
    pub proxy: AgentProxy,
    pub enforce_fips_policy: Option<bool>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn flag(value: Option<String>) -> Option<bool> {
    match value?.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn name_of(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.name().as_ref()).into_owned()
}

fn is(path: &[String], want: &[&str]) -> bool {
    path.len() == want.len() && path.iter().zip(want).all(|(a, b)| a == b)
}

/// The next piece of markup, or where the file stops being XML.
fn next<'a>(reader: &mut Reader<&'a [u8]>) -> Result<Event<'a>, String> {
    reader.read_event().map_err(|e| {
        format!(
            "not well-formed XML at byte {}: {e}",
            reader.error_position()
        )
    })
}

const PROXY_PATH: [&str; 3] = ["configuration", "system.net", "defaultProxy"];
const FIPS_PATH: [&str; 3] = ["configuration", "runtime", "enforceFIPSPolicy"];

/// Reads the proxy and the FIPS flag. A `<defaultProxy enabled="false">`
/// reads as a proxy without an address, so a desired proxy replaces it.
pub fn read(bytes: &[u8]) -> Result<ExeConfigSettings, String> {
    let (_, text) = decode(bytes)?;
    let mut reader = Reader::from_str(&text);
    let mut path: Vec<String> = Vec::new();
    let mut proxy = AgentProxy::None;
    let mut fips = None;
    let mut enabled = true;
    loop {
        let event = next(&mut reader)?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e), false),
            Event::Empty(e) => (Some(e), true),
            Event::End(_) => {
                path.pop();
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let Some(e) = start else { continue };
        path.push(name_of(e));
        if is(&path, &PROXY_PATH) {
            enabled = flag(attr(e, "enabled")) != Some(false);
            proxy = AgentProxy::Address {
                address: String::new(),
                bypass_on_local: false,
                bypass_list: Vec::new(),
            };
        } else if path.len() == 4 && is(&path[..3], &PROXY_PATH) && path[3] == "proxy" {
            if let AgentProxy::Address {
                address,
                bypass_on_local,
                ..
            } = &mut proxy
            {
                *address = attr(e, "proxyaddress").unwrap_or_default();
                *bypass_on_local = flag(attr(e, "bypassonlocal")) == Some(true);
            }
        } else if path.len() == 5
            && is(&path[..3], &PROXY_PATH)
            && path[3] == "bypasslist"
            && path[4] == "add"
        {
            if let (AgentProxy::Address { bypass_list, .. }, Some(a)) =
                (&mut proxy, attr(e, "address"))
            {
                bypass_list.push(a);
            }
        } else if is(&path, &FIPS_PATH) {
            fips = flag(attr(e, "enabled"));
        }
        if empty {
            path.pop();
        }
    }
    if !enabled && let AgentProxy::Address { address, .. } = &mut proxy {
        address.clear();
    }
    Ok(ExeConfigSettings {
        proxy,
        enforce_fips_policy: fips,
    })
}

/// The layout new elements follow: the file's line ending and indent unit.
struct Layout {
    newline: &'static str,
    unit: String,
}

impl Layout {
    fn of(text: &str) -> Self {
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        // The first indented line's indent: one level under the root.
        let unit = text
            .lines()
            .map(|l| {
                l.chars()
                    .take_while(|c| *c == ' ' || *c == '\t')
                    .collect::<String>()
            })
            .find(|i| !i.is_empty())
            .unwrap_or_else(|| "    ".into());
        Self { newline, unit }
    }

    /// `lines` (each relative to the element's own indent) joined so the
    /// first starts where the cursor is and the rest at `indent`.
    fn block(&self, indent: &str, lines: &[(usize, String)]) -> String {
        let mut out = String::new();
        for (i, (depth, line)) in lines.iter().enumerate() {
            if i > 0 {
                out.push_str(self.newline);
                out.push_str(indent);
            }
            out.push_str(&self.unit.repeat(*depth));
            out.push_str(line);
        }
        out
    }
}

fn proxy_lines(proxy: &AgentProxy) -> Vec<(usize, String)> {
    let AgentProxy::Address {
        address,
        bypass_on_local,
        bypass_list,
    } = proxy
    else {
        return Vec::new();
    };
    // As Microsoft's troubleshooting page writes it.
    let mut lines = vec![
        (
            0,
            r#"<defaultProxy enabled="true" useDefaultCredentials="true">"#.to_owned(),
        ),
        (
            1,
            format!(
                r#"<proxy usesystemdefault="true" proxyaddress="{}" bypassonlocal="{}" />"#,
                escape(address.as_str()),
                bypass_on_local
            ),
        ),
    ];
    if !bypass_list.is_empty() {
        lines.push((1, "<bypasslist>".into()));
        for a in bypass_list {
            lines.push((2, format!(r#"<add address="{}" />"#, escape(a.as_str()))));
        }
        lines.push((1, "</bypasslist>".into()));
    }
    lines.push((0, "</defaultProxy>".into()));
    lines
}

fn fips_lines(enabled: bool) -> Vec<(usize, String)> {
    vec![(0, format!(r#"<enforceFIPSPolicy enabled="{enabled}"/>"#))]
}

/// What [`edit`] should make of the two settings: `None` leaves one as it
/// is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted<'a> {
    pub proxy: Option<&'a AgentProxy>,
    pub enforce_fips_policy: Option<bool>,
}

/// One element provd owns: its path, what replaces it (empty: removed),
/// and whether it is in place yet.
struct Owned {
    path: [&'static str; 3],
    /// `None`: leave the element alone.
    lines: Option<Vec<(usize, String)>>,
    done: bool,
}

impl Owned {
    fn wanted(&self) -> bool {
        self.lines.as_ref().is_some_and(|l| !l.is_empty())
    }
}

/// The file with `wanted` in place and every other byte as it was (in the
/// file's own encoding). Elements are replaced where they stand, inserted
/// at the end of their parent (a missing parent at the end of
/// `<configuration>`), and removed with the whitespace before them.
pub fn edit(bytes: &[u8], wanted: Wanted<'_>) -> Result<Vec<u8>, String> {
    let (encoding, text) = decode(bytes)?;
    let layout = Layout::of(&text);
    let mut owned = [
        Owned {
            path: PROXY_PATH,
            lines: wanted.proxy.map(proxy_lines),
            done: false,
        },
        Owned {
            path: FIPS_PATH,
            lines: wanted.enforce_fips_policy.map(fips_lines),
            done: false,
        },
    ];
    let mut reader = Reader::from_str(&text);
    let mut writer = Writer::new(Vec::new());
    let mut path: Vec<String> = Vec::new();
    // Whitespace is held back until the next event says whether it goes
    // (before a removed element) or stays.
    let mut pending = String::new();
    // Inside a replaced or removed element: its depth.
    let mut skipping: Option<usize> = None;
    let mut seen_root = false;
    let err = |e: std::io::Error| e.to_string();
    loop {
        let event = next(&mut reader)?;
        if let Some(depth) = skipping {
            match &event {
                Event::Start(_) => path.push(String::new()),
                Event::End(_) => {
                    path.pop();
                    if path.len() < depth {
                        skipping = None;
                    }
                }
                Event::Eof => return Err("the file ends inside an element".into()),
                _ => {}
            }
            continue;
        }
        if let Event::Text(t) = &event {
            let raw = std::str::from_utf8(t.as_ref()).map_err(|e| e.to_string())?;
            if raw.trim().is_empty() {
                pending.push_str(raw);
                continue;
            }
        }
        let indent_of = |ws: &str| -> String {
            ws.rsplit(['\n', '\r'])
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(event, Event::Empty(_));
                path.push(name_of(e));
                if path.len() == 1 {
                    seen_root = true;
                }
                if let Some(o) = owned
                    .iter_mut()
                    .find(|o| !o.done && is(&path, &o.path) && o.lines.is_some())
                {
                    o.done = true;
                    let lines = o.lines.clone().unwrap_or_default();
                    if lines.is_empty() {
                        pending.clear();
                    } else {
                        let indent = indent_of(&pending);
                        writer.get_mut().extend(pending.as_bytes());
                        pending.clear();
                        writer
                            .get_mut()
                            .extend(layout.block(&indent, &lines).as_bytes());
                    }
                    if empty {
                        path.pop();
                    } else {
                        skipping = Some(path.len());
                    }
                    continue;
                }
                writer.get_mut().extend(pending.as_bytes());
                pending.clear();
                if empty {
                    // A childless parent of an element to insert opens up.
                    let inserts = inserts_under(&mut owned, &path);
                    if inserts.is_empty() {
                        writer.write_event(event.borrow()).map_err(err)?;
                    } else {
                        let indent = current_indent(writer.get_ref());
                        writer.write_event(Event::Start(e.borrow())).map_err(err)?;
                        write_children(&mut writer, &layout, &indent, &inserts);
                        writer.get_mut().extend(layout.newline.as_bytes());
                        writer.get_mut().extend(indent.as_bytes());
                        let name = name_of(e);
                        writer
                            .write_event(Event::End(BytesEnd::new(name)))
                            .map_err(err)?;
                    }
                    path.pop();
                } else {
                    writer.write_event(event.borrow()).map_err(err)?;
                }
            }
            Event::End(_) => {
                let inserts = inserts_under(&mut owned, &path);
                let closing = indent_of(&pending);
                if !inserts.is_empty() {
                    write_children(&mut writer, &layout, &closing, &inserts);
                    if pending.is_empty() {
                        pending = format!("{}{closing}", layout.newline);
                    }
                }
                writer.get_mut().extend(pending.as_bytes());
                pending.clear();
                writer.write_event(event.borrow()).map_err(err)?;
                path.pop();
            }
            Event::Eof => {
                writer.get_mut().extend(pending.as_bytes());
                break;
            }
            _ => {
                writer.get_mut().extend(pending.as_bytes());
                pending.clear();
                writer.write_event(event.borrow()).map_err(err)?;
            }
        }
    }
    if !seen_root {
        return Err("no <configuration> element".into());
    }
    if let Some(o) = owned.iter().find(|o| o.wanted() && !o.done) {
        return Err(format!(
            "could not place <{}> (the root is not <configuration>)",
            o.path.join("><")
        ));
    }
    let out = String::from_utf8(writer.into_inner()).map_err(|e| e.to_string())?;
    Ok(encode(encoding, &out))
}

/// What to insert as children of the element at `path` (now closing):
/// each wanted element not yet in place whose parent is `path`, or — when
/// `path` is the root — whose parent is missing, wrapped in that parent.
fn inserts_under(owned: &mut [Owned], path: &[String]) -> Vec<Vec<(usize, String)>> {
    let mut out = Vec::new();
    for o in owned.iter_mut().filter(|o| o.wanted() && !o.done) {
        let lines = o.lines.clone().unwrap_or_default();
        if is(path, &o.path[..2]) {
            o.done = true;
            out.push(lines);
        } else if is(path, &o.path[..1]) {
            o.done = true;
            let parent = o.path[1];
            let mut wrapped = vec![(0, format!("<{parent}>"))];
            wrapped.extend(lines.into_iter().map(|(d, l)| (d + 1, l)));
            wrapped.push((0, format!("</{parent}>")));
            out.push(wrapped);
        }
    }
    out
}

/// Each insert on its own line, one level under `indent`.
fn write_children(
    writer: &mut Writer<Vec<u8>>,
    layout: &Layout,
    indent: &str,
    inserts: &[Vec<(usize, String)>],
) {
    let child = format!("{indent}{}", layout.unit);
    for lines in inserts {
        let text = format!("{}{child}{}", layout.newline, layout.block(&child, lines));
        writer.get_mut().extend(text.as_bytes());
    }
}

/// The indent of the line the writer is on.
fn current_indent(out: &[u8]) -> String {
    let line_start = out
        .iter()
        .rposition(|b| *b == b'\n' || *b == b'\r')
        .map_or(0, |i| i + 1);
    out[line_start..]
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .map(|b| *b as char)
        .collect()
}

#[cfg(test)]
mod tests;
