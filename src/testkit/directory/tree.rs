//! The in-memory directory tree all of a fake domain's DCs share: entries
//! keyed by normalised DN, naming-context boundaries, searches, and the
//! seed captured from the Samba lab (`tests/data/samba-lab-domain.json`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::filter::{self, Context, Filter};
use crate::backends::directory::{Entry, Scope};

/// The seed: what a fresh Samba AD domain holds that provd reads.
pub const SAMBA_FIXTURE: &str = include_str!("../../../tests/data/samba-lab-domain.json");

#[derive(Deserialize)]
pub struct Fixture {
    pub domain: String,
    pub netbios: String,
    pub domain_sid: String,
    pub dcs: Vec<FixtureDc>,
    pub rootdse: BTreeMap<String, FixtureEntry>,
    pub entries: Vec<FixtureEntry>,
}

#[derive(Deserialize)]
pub struct FixtureDc {
    pub host: String,
    pub ip: String,
}

#[derive(Deserialize, Clone)]
pub struct FixtureEntry {
    pub dn: String,
    #[serde(default)]
    pub attrs: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub bin: BTreeMap<String, Vec<String>>,
}

impl FixtureEntry {
    pub fn to_obj(&self) -> Obj {
        let mut attrs: BTreeMap<String, Vec<Vec<u8>>> = self
            .attrs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.iter().map(|s| s.as_bytes().to_vec()).collect(),
                )
            })
            .collect();
        for (k, vs) in &self.bin {
            attrs.insert(
                k.to_ascii_lowercase(),
                vs.iter().filter_map(|h| hex::decode(h).ok()).collect(),
            );
        }
        Obj {
            dn: self.dn.clone(),
            attrs,
        }
    }
}

/// One stored object: its DN as written and its values by lower-case name.
#[derive(Debug, Clone, Default)]
pub struct Obj {
    pub dn: String,
    pub attrs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Obj {
    pub fn get(&self, attr: &str) -> &[Vec<u8>] {
        // Filters hand names over in lower case already: no copy for them.
        let found = match attr.bytes().any(|b| b.is_ascii_uppercase()) {
            true => self.attrs.get(&attr.to_ascii_lowercase()),
            false => self.attrs.get(attr),
        };
        found.map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn text(&self, attr: &str) -> Option<String> {
        self.get(attr)
            .first()
            .and_then(|v| String::from_utf8(v.clone()).ok())
    }

    pub fn set_text(&mut self, attr: &str, value: &str) {
        self.attrs
            .insert(attr.to_ascii_lowercase(), vec![value.as_bytes().to_vec()]);
    }

    pub fn has_class(&self, class: &str) -> bool {
        self.get("objectClass")
            .iter()
            .any(|c| filter::value_eq(c, class.as_bytes()))
    }

    /// The entry as ldap3 would hand it over: an attribute whose values are
    /// all UTF-8 is text, any other is binary.
    pub fn to_entry(&self, attrs: &[&str]) -> Entry {
        let all = attrs.is_empty() || attrs.contains(&"*");
        let wanted: Vec<String> = attrs.iter().map(|a| a.to_ascii_lowercase()).collect();
        let mut entry = Entry {
            dn: self.dn.clone(),
            ..Entry::default()
        };
        for (name, values) in &self.attrs {
            // Like AD, the security descriptor only comes when asked for.
            let asked = wanted.contains(name);
            if !(asked || all && name != "ntsecuritydescriptor") {
                continue;
            }
            if values.iter().all(|v| std::str::from_utf8(v).is_ok()) {
                entry.attrs.insert(
                    name.clone(),
                    values
                        .iter()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .collect(),
                );
            } else {
                entry.bin_attrs.insert(name.clone(), values.clone());
            }
        }
        entry
    }
}

/// Normalises a DN for lookups: RDNs split on unescaped commas, spaces
/// around separators dropped, lower case.
pub fn norm(dn: &str) -> String {
    rdns(dn)
        .iter()
        .map(|r| match r.split_once('=') {
            Some((t, v)) => format!("{}={}", t.trim(), v.trim()),
            None => r.trim().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase()
}

/// The RDNs of a DN, split on commas not escaped with a backslash.
pub fn rdns(dn: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    if !cur.trim().is_empty() || !out.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether `dn` is shaped like one: each RDN starts `type=value`, the type
/// a name or an OID. Enough to refuse what Samba answers "invalid basedn"
/// (34), e.g. `x)(objectClass=*`.
pub fn is_dn(dn: &str) -> bool {
    rdns(dn).iter().all(|rdn| {
        rdn.split_once('=').is_some_and(|(t, v)| {
            let t = t.trim();
            let name = t.starts_with(|c: char| c.is_ascii_alphabetic())
                && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            let oid = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.');
            (name || oid) && !v.trim().is_empty()
        })
    })
}

/// The parent DN (as written), `None` for a single RDN.
pub fn parent(dn: &str) -> Option<String> {
    let parts = rdns(dn);
    (parts.len() > 1).then(|| parts[1..].join(",").trim().to_owned())
}

#[derive(Debug, Clone, Default)]
pub struct Tree {
    pub objects: BTreeMap<String, Obj>,
    /// Normalised naming contexts, longest first.
    pub naming_contexts: Vec<String>,
}

impl Tree {
    pub fn get(&self, dn: &str) -> Option<&Obj> {
        self.objects.get(&norm(dn))
    }

    pub fn get_mut(&mut self, dn: &str) -> Option<&mut Obj> {
        self.objects.get_mut(&norm(dn))
    }

    pub fn insert(&mut self, obj: Obj) {
        self.objects.insert(norm(&obj.dn), obj);
    }

    pub fn has_children(&self, dn: &str) -> bool {
        let suffix = format!(",{}", norm(dn));
        self.objects.keys().any(|k| k.ends_with(&suffix))
    }

    /// The naming context holding a (normalised) DN.
    fn nc_of(&self, ndn: &str) -> Option<&str> {
        self.naming_contexts
            .iter()
            .find(|nc| is_at_or_under(ndn, nc))
            .map(String::as_str)
    }

    /// Entries in scope, in DN order. A subtree search stays inside the
    /// base's naming context: AD (and Samba) answer the nested contexts
    /// (Configuration under the domain, Schema under Configuration) with
    /// search references, which provd skips.
    pub fn scope(&self, base: &str, scope: Scope) -> Option<Vec<&Obj>> {
        let nbase = norm(base);
        let base_obj = self.objects.get(&nbase)?;
        let suffix = format!(",{nbase}");
        let nc = self.nc_of(&nbase);
        Some(match scope {
            Scope::Base => vec![base_obj],
            Scope::OneLevel => self
                .objects
                .iter()
                .filter(|(k, _)| {
                    k.strip_suffix(&suffix)
                        .is_some_and(|head| rdns(head).len() == 1)
                        && self.nc_of(k) == nc
                })
                .map(|(_, o)| o)
                .collect(),
            Scope::Subtree => self
                .objects
                .iter()
                .filter(|(k, _)| (**k == nbase || k.ends_with(&suffix)) && self.nc_of(k) == nc)
                .map(|(_, o)| o)
                .collect(),
        })
    }

    pub fn search(&self, base: &str, scope: Scope, filter: &Filter) -> Option<Vec<&Obj>> {
        let objs = self.scope(base, scope)?;
        // A class name in `objectCategory=` is looked up in the schema once
        // per search, not once per entry tested (1,800 schema entries).
        let categories = RefCell::new(HashMap::new());
        Some(
            objs.into_iter()
                .filter(|o| {
                    filter.matches(&Cx {
                        tree: self,
                        obj: o,
                        categories: &categories,
                    })
                })
                .collect(),
        )
    }

    /// The schema class entry named `ldap_name` (lDAPDisplayName).
    pub fn schema_class(&self, ldap_name: &str) -> Option<&Obj> {
        let schema = self
            .naming_contexts
            .iter()
            .find(|n| n.starts_with("cn=schema,"))?;
        let suffix = format!(",{schema}");
        self.objects.iter().find_map(|(k, o)| {
            (k.ends_with(&suffix)
                && o.has_class("classSchema")
                && o.text("lDAPDisplayName")
                    .is_some_and(|n| n.eq_ignore_ascii_case(ldap_name)))
            .then_some(o)
        })
    }
}

struct Cx<'a> {
    tree: &'a Tree,
    obj: &'a Obj,
    /// Class name (lower case) → its normalised defaultObjectCategory.
    categories: &'a RefCell<HashMap<String, Option<String>>>,
}

/// Whether normalised `ndn` is `nc` or below it, without allocating.
fn is_at_or_under(ndn: &str, nc: &str) -> bool {
    ndn == nc || ndn.strip_suffix(nc).is_some_and(|head| head.ends_with(','))
}

impl Context for Cx<'_> {
    fn values(&self, attr: &str) -> Cow<'_, [Vec<u8>]> {
        let values = self.obj.get(attr);
        if attr == "distinguishedname" && values.is_empty() {
            return Cow::Owned(vec![self.obj.dn.as_bytes().to_vec()]);
        }
        Cow::Borrowed(values)
    }

    fn category_matches(&self, value: &[u8]) -> bool {
        let Some(have) = self.obj.text("objectCategory") else {
            return false;
        };
        let value = String::from_utf8_lossy(value);
        if value.contains('=') {
            return norm(&value) == norm(&have);
        }
        // A class name stands for that class's defaultObjectCategory.
        let default_category = self
            .categories
            .borrow_mut()
            .entry(value.to_ascii_lowercase())
            .or_insert_with(|| {
                self.tree
                    .schema_class(&value)
                    .and_then(|c| c.text("defaultObjectCategory"))
                    .map(|c| norm(&c))
            })
            .clone();
        if let Some(cat) = default_category {
            return cat == norm(&have);
        }
        rdns(&have)
            .first()
            .and_then(|r| r.split_once('='))
            .is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case(&value))
    }

    fn in_chain(&self, attr: &str, dn: &str) -> bool {
        let target = norm(dn);
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![norm(&self.obj.dn)];
        while let Some(cur) = todo.pop() {
            if !seen.insert(cur.clone()) {
                continue;
            }
            let Some(o) = self.tree.objects.get(&cur) else {
                continue;
            };
            for v in o.get(attr) {
                let n = norm(&String::from_utf8_lossy(v));
                if n == target {
                    return true;
                }
                todo.push(n);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns() {
        assert_eq!(norm("CN=A\\, B , DC=Lab"), "cn=a\\, b,dc=lab");
        assert_eq!(
            parent("CN=x,DC=lab,DC=test").as_deref(),
            Some("DC=lab,DC=test")
        );
        assert_eq!(parent("DC=test"), None);
    }
}
