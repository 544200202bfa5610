//! Writes as a Samba DC performs them: add (class chains, SIDs, defaults,
//! an inherited security descriptor), modify (replace/add/delete values),
//! delete, and security descriptors read and written under SD_FLAGS — with
//! the LDAP result codes Samba answers.

use super::tree::{Obj, norm, parent, rdns};
use super::{State, WriteOp};
use crate::backends::directory::{Change, DirectoryError};
use provd_sd::{
    Ace, Acl, CONTAINER_INHERIT_ACE, INHERIT_ONLY_ACE, INHERITED_ACE, NO_PROPAGATE_INHERIT_ACE,
    OBJECT_INHERIT_ACE, SE_DACL_AUTO_INHERIT_REQ, SE_DACL_AUTO_INHERITED, SE_DACL_DEFAULTED,
    SE_DACL_PRESENT, SE_DACL_PROTECTED, SE_SACL_AUTO_INHERIT_REQ, SE_SACL_AUTO_INHERITED,
    SE_SACL_DEFAULTED, SE_SACL_PRESENT, SE_SACL_PROTECTED, SecurityDescriptor, Sid,
};
use zeroize::Zeroizing;

const DACL_BITS: u16 = SE_DACL_PRESENT
    | SE_DACL_DEFAULTED
    | SE_DACL_AUTO_INHERIT_REQ
    | SE_DACL_AUTO_INHERITED
    | SE_DACL_PROTECTED;
const SACL_BITS: u16 = SE_SACL_PRESENT
    | SE_SACL_DEFAULTED
    | SE_SACL_AUTO_INHERIT_REQ
    | SE_SACL_AUTO_INHERITED
    | SE_SACL_PROTECTED;

impl State {
    /// What a session bound as `bound` (a lower-case sAMAccountName) reads
    /// of `dn`'s `msDS-ManagedPassword`: `None` if `dn` does not exist,
    /// `Some(None)` if the DC withholds it (no seeded blob, or `bound` is not
    /// directly among the principals).
    pub(super) fn read_managed_password(
        &self,
        dn: &str,
        bound: &str,
    ) -> Option<Option<Zeroizing<Vec<u8>>>> {
        let gmsa = self.tree.get(dn)?;
        let Some(blob) = self.managed_passwords.get(&norm(dn)) else {
            return Some(None);
        };
        let bound_sid = self
            .tree
            .objects
            .values()
            .find(|o| {
                o.text("sAMAccountName")
                    .is_some_and(|sam| sam.eq_ignore_ascii_case(bound))
            })
            .and_then(|o| o.get("objectSid").first())
            .and_then(|bytes| Sid::from_bytes(bytes).ok());
        let allowed = gmsa
            .get("msDS-GroupMSAMembership")
            .first()
            .and_then(|bytes| SecurityDescriptor::parse(bytes).ok())
            .and_then(|sd| sd.dacl)
            .is_some_and(|acl| {
                acl.aces.iter().any(|ace| {
                    ace.ace_type == provd_sd::AceType::ACCESS_ALLOWED
                        && ace.sid().is_some_and(|sid| Some(*sid) == bound_sid)
                })
            });
        Some(allowed.then(|| Zeroizing::new(blob.clone())))
    }
}

/// An LDAP result, classified as the real backend classifies it.
pub fn ldap(dc: &str, code: u32, reason: impl Into<String>) -> DirectoryError {
    DirectoryError::from_result_code(dc, code, reason.into())
}

pub fn no_such_object(dc: &str, dn: &str) -> DirectoryError {
    DirectoryError::NoSuchObject {
        dc: dc.into(),
        reason: format!(
            "0000208D: NameErr: DSID-0310028B, problem 2001 (NO_OBJECT), data 0, best match of: '{dn}'"
        ),
    }
}

/// The structural class chain Samba stores for a new object of `class`.
fn class_chain(class: &str) -> Vec<&str> {
    match class.to_ascii_lowercase().as_str() {
        "user" => vec!["top", "person", "organizationalPerson", "user"],
        "computer" => vec!["top", "person", "organizationalPerson", "user", "computer"],
        "msds-groupmanagedserviceaccount" => vec![
            "top",
            "person",
            "organizationalPerson",
            "user",
            "computer",
            "msDS-GroupManagedServiceAccount",
        ],
        "inetorgperson" => vec![
            "top",
            "person",
            "organizationalPerson",
            "user",
            "inetOrgPerson",
        ],
        "contact" => vec!["top", "person", "organizationalPerson", "contact"],
        _ => vec!["top"],
    }
}

fn now_generalized() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}.0Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

impl State {
    /// Refuses a write the test injected a fault for.
    fn injected(&self, dc: &str, dn: &str, op: WriteOp) -> Result<(), DirectoryError> {
        let n = norm(dn);
        if self
            .denied
            .iter()
            .any(|(d, o)| *d == n && o.is_none_or(|o| o == op))
        {
            return Err(DirectoryError::InsufficientAccess {
                dc: dc.into(),
                reason: format!(
                    "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0 ({op:?} of {dn} refused)"
                ),
            });
        }
        if self
            .constraints
            .iter()
            .any(|(d, o)| *d == n && o.is_none_or(|o| o == op))
        {
            return Err(ldap(
                dc,
                19,
                format!("0000202F: constraint violation on {dn}"),
            ));
        }
        Ok(())
    }

    fn record(&mut self, dc: &str, op: WriteOp, dn: &str) {
        self.usn += 1;
        self.writes.push(super::WriteRecord {
            dc: dc.to_owned(),
            op,
            dn: dn.to_owned(),
        });
    }

    pub fn add(
        &mut self,
        dc: &str,
        dn: &str,
        attrs: &[(&str, Vec<Vec<u8>>)],
    ) -> Result<(), DirectoryError> {
        self.injected(dc, dn, WriteOp::Add)?;
        if let Some(i) = self.raced.iter().position(|d| *d == norm(dn)) {
            self.raced.remove(i);
            self.add(dc, dn, attrs)?;
        }
        let first = rdns(dn).into_iter().next().unwrap_or_default();
        let Some((rdn_type, rdn_value)) = first.split_once('=') else {
            return Err(ldap(dc, 34, format!("invalid DN {dn:?}")));
        };
        if self.tree.get(dn).is_some() {
            return Err(ldap(dc, 68, format!("Entry {dn} already exists")));
        }
        let parent_dn =
            parent(dn).ok_or_else(|| ldap(dc, 53, format!("cannot add a naming context {dn}")))?;
        let Some(parent_obj) = self.tree.get(&parent_dn).cloned() else {
            return Err(no_such_object(dc, &parent_dn));
        };
        let mut obj = Obj {
            dn: dn.trim().to_owned(),
            ..Obj::default()
        };
        for (name, values) in attrs {
            let key = name.to_ascii_lowercase();
            if values.is_empty() {
                return Err(ldap(dc, 21, format!("attribute {name} has no values")));
            }
            obj.attrs
                .entry(key)
                .or_default()
                .extend(values.iter().cloned());
        }
        // objectClass: the most specific class must exist in the schema.
        let classes: Vec<String> = obj
            .get("objectClass")
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let Some(class) = classes.last().cloned() else {
            return Err(ldap(
                dc,
                65,
                format!("00002014: objectclass: Cannot add {dn}, no objectClass found in request"),
            ));
        };
        let Some(schema) = self.tree.schema_class(&class).cloned() else {
            return Err(ldap(
                dc,
                65,
                format!("00002014: objectclass: Cannot add {dn}, unknown class {class}"),
            ));
        };
        let class_name = schema.text("lDAPDisplayName").unwrap_or(class.clone());
        let mut chain: Vec<String> = class_chain(&class_name)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if !chain.iter().any(|c| c.eq_ignore_ascii_case(&class_name)) {
            chain.push(class_name.clone());
        }
        obj.attrs.insert(
            "objectclass".into(),
            chain.iter().map(|c| c.as_bytes().to_vec()).collect(),
        );
        let is_gmsa = obj.has_class("msDS-GroupManagedServiceAccount");
        if is_gmsa && obj.get("msDS-ManagedPasswordInterval").is_empty() {
            return Err(ldap(
                dc,
                65,
                format!(
                    "00002014: objectclass_attrs: at least one mandatory attribute ('msDS-ManagedPasswordInterval') on entry '{dn}' wasn't specified!"
                ),
            ));
        }
        // The RDN value names the object.
        let rdn_value = rdn_value.trim().replace('\\', "");
        obj.set_text(rdn_type.trim(), &rdn_value);
        obj.set_text("name", &rdn_value);
        obj.set_text("distinguishedName", obj.dn.clone().as_str());
        obj.set_text("instanceType", "4");
        let when = now_generalized();
        obj.set_text("whenCreated", &when);
        obj.set_text("whenChanged", &when);
        obj.set_text("uSNCreated", &self.usn.to_string());
        obj.set_text("uSNChanged", &self.usn.to_string());
        obj.attrs.insert(
            "objectguid".into(),
            vec![uuid::Uuid::new_v4().to_bytes_le().to_vec()],
        );
        if let Some(cat) = schema.text("defaultObjectCategory") {
            obj.set_text("objectCategory", &cat);
        }
        let principal = obj.has_class("user") || obj.has_class("group");
        if principal {
            let sam = match obj.text("sAMAccountName") {
                Some(s) => s,
                None => {
                    let g = uuid::Uuid::new_v4()
                        .simple()
                        .to_string()
                        .to_ascii_uppercase();
                    let s = format!("${}-{}$", &g[..8], &g[8..24]);
                    obj.set_text("sAMAccountName", &s);
                    s
                }
            };
            let taken = self.tree.objects.values().any(|o| {
                o.text("sAMAccountName")
                    .is_some_and(|t| t.eq_ignore_ascii_case(&sam))
            });
            if taken {
                return Err(ldap(
                    dc,
                    68,
                    format!("00002071: samldb: samAccountName '{sam}' already in use!"),
                ));
            }
            let sid = self
                .domain_sid
                .with_rid(self.next_rid)
                .map_err(|e| ldap(dc, 80, e.to_string()))?;
            self.next_rid += 1;
            obj.attrs.insert("objectsid".into(), vec![sid.to_bytes()]);
            if obj.has_class("computer") {
                obj.attrs
                    .entry("useraccountcontrol".into())
                    .or_insert_with(|| vec![b"4130".to_vec()]);
                obj.set_text("primaryGroupID", "515");
                obj.set_text("sAMAccountType", "805306369");
            } else if obj.has_class("user") {
                obj.attrs
                    .entry("useraccountcontrol".into())
                    .or_insert_with(|| vec![b"546".to_vec()]);
                obj.set_text("primaryGroupID", "513");
                obj.set_text("sAMAccountType", "805306368");
            } else {
                obj.attrs
                    .entry("grouptype".into())
                    .or_insert_with(|| vec![b"-2147483646".to_vec()]);
                obj.set_text("sAMAccountType", "268435456");
            }
            if obj.has_class("user") {
                obj.set_text("pwdLastSet", "0");
            }
        }
        if obj.get("nTSecurityDescriptor").is_empty() {
            let sd = self.default_sd(&parent_obj, &chain)?;
            obj.attrs.insert("ntsecuritydescriptor".into(), vec![sd]);
        } else if SecurityDescriptor::parse(&obj.get("nTSecurityDescriptor")[0]).is_err() {
            return Err(ldap(
                dc,
                21,
                "nTSecurityDescriptor: invalid security descriptor",
            ));
        }
        self.tree.insert(obj);
        self.record(dc, WriteOp::Add, dn);
        Ok(())
    }

    /// A new object's descriptor: Domain Admins owner, a small explicit
    /// DACL, and the parent's inheritable ACEs applying to the new class.
    fn default_sd(&self, parent: &Obj, chain: &[String]) -> Result<Vec<u8>, DirectoryError> {
        let da = self
            .domain_sid
            .with_rid(512)
            .map_err(|e| ldap("", 80, e.to_string()))?;
        let mut dacl = Acl::new();
        dacl.aces.push(Ace::allowed(0, 0x000f_01ff, da));
        dacl.aces
            .push(Ace::allowed(0, 0x000f_01ff, Sid::local_system()));
        dacl.aces
            .push(Ace::allowed(0, 0x0002_0094, Sid::authenticated_users()));
        let class_guids: Vec<uuid::Uuid> = chain
            .iter()
            .filter_map(|c| self.tree.schema_class(c))
            .filter_map(|c| c.get("schemaIDGUID").first().cloned())
            .filter_map(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .map(uuid::Uuid::from_bytes_le)
            .collect();
        if let Some(parent_sd) = parent
            .get("nTSecurityDescriptor")
            .first()
            .and_then(|b| SecurityDescriptor::parse(b).ok())
            && let Some(pdacl) = parent_sd.dacl
        {
            for ace in pdacl.aces {
                if ace.flags & (CONTAINER_INHERIT_ACE | OBJECT_INHERIT_ACE) == 0 {
                    continue;
                }
                if let Some(t) = ace.inherited_object_type()
                    && !class_guids.contains(&t)
                {
                    continue;
                }
                let mut child = ace.clone();
                child.flags = if ace.flags & NO_PROPAGATE_INHERIT_ACE != 0 {
                    INHERITED_ACE
                } else {
                    (ace.flags & !INHERIT_ONLY_ACE) | INHERITED_ACE
                };
                dacl.aces.push(child);
            }
        }
        let mut sd = SecurityDescriptor::new();
        sd.owner = Some(da);
        sd.group = Some(da);
        sd.set_dacl(Some(dacl));
        sd.control |= SE_DACL_AUTO_INHERITED;
        sd.to_bytes().map_err(|e| ldap("", 80, e.to_string()))
    }

    pub fn modify(&mut self, dc: &str, dn: &str, changes: &[Change]) -> Result<(), DirectoryError> {
        let Some(current) = self.tree.get(dn).cloned() else {
            return Err(no_such_object(dc, dn));
        };
        self.injected(dc, dn, WriteOp::Modify)?;
        let mut obj = current.clone();
        let rdn_type = rdns(&obj.dn)
            .first()
            .and_then(|r| {
                r.split_once('=')
                    .map(|(t, _)| t.trim().to_ascii_lowercase())
            })
            .unwrap_or_default();
        let mut new_password = None;
        for change in changes {
            let (name, values) = match change {
                Change::Replace(a, v) | Change::Add(a, v) | Change::Delete(a, v) => {
                    (a.to_ascii_lowercase(), v)
                }
            };
            if name == rdn_type || name == "name" {
                return Err(ldap(
                    dc,
                    67,
                    format!("00002016: Cannot change the RDN attribute {name} of {dn} with modify"),
                ));
            }
            if matches!(
                name.as_str(),
                "objectsid" | "objectguid" | "whencreated" | "objectcategory"
            ) {
                return Err(ldap(
                    dc,
                    19,
                    format!(
                        "0000202F: attribute '{name}' on entry '{dn}' can only be modified as system"
                    ),
                ));
            }
            if name == "msds-managedpasswordinterval"
                && obj.has_class("msDS-GroupManagedServiceAccount")
            {
                return Err(ldap(
                    dc,
                    19,
                    format!(
                        "0000202F: objectclass_attrs: attribute 'msDS-ManagedPasswordInterval' on entry '{dn}' can only be modified as system"
                    ),
                ));
            }
            if name == "unicodepwd" {
                if obj.has_class("msDS-GroupManagedServiceAccount") {
                    return Err(DirectoryError::InsufficientAccess {
                        dc: dc.into(),
                        reason:
                            "error in module acl: insufficient access rights during LDB_MODIFY (50)"
                                .into(),
                    });
                }
                let Some(raw) = values.first() else {
                    return Err(ldap(dc, 19, "unicodePwd needs a value"));
                };
                let units: Vec<u16> = raw
                    .chunks(2)
                    .map(|c| u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                    .collect();
                let text = String::from_utf16_lossy(&units);
                let Some(pw) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
                    return Err(ldap(
                        dc,
                        19,
                        "0000216D: unicodePwd must be a quoted UTF-16LE string",
                    ));
                };
                new_password = Some(pw.to_owned());
                continue;
            }
            if name == "ntsecuritydescriptor" {
                let Some(bytes) = values.first() else {
                    return Err(ldap(dc, 19, "nTSecurityDescriptor cannot be deleted"));
                };
                let merged = merge_sd(
                    dc,
                    obj.get("nTSecurityDescriptor").first().map(Vec::as_slice),
                    bytes,
                    0xf,
                )?;
                obj.attrs.insert(name, vec![merged]);
                continue;
            }
            let have = obj.attrs.entry(name.clone()).or_default();
            match change {
                Change::Replace(..) => *have = values.clone(),
                Change::Add(..) => {
                    if values.is_empty() {
                        return Err(ldap(dc, 21, format!("no values to add to {name}")));
                    }
                    for v in values {
                        if have.iter().any(|h| super::filter::value_eq(h, v)) {
                            return Err(ldap(
                                dc,
                                20,
                                format!("00002083: attribute or value exists: {name}"),
                            ));
                        }
                        have.push(v.clone());
                    }
                }
                Change::Delete(..) => {
                    if have.is_empty() {
                        return Err(ldap(
                            dc,
                            16,
                            format!("00002085: no such attribute {name} on {dn}"),
                        ));
                    }
                    if values.is_empty() {
                        have.clear();
                    }
                    for v in values {
                        let before = have.len();
                        have.retain(|h| !super::filter::value_eq(h, v));
                        if have.len() == before {
                            return Err(ldap(
                                dc,
                                16,
                                format!("00002085: no such value of {name} on {dn}"),
                            ));
                        }
                    }
                }
            }
            if have.is_empty() {
                obj.attrs.remove(&name);
            }
        }
        obj.set_text("whenChanged", &now_generalized());
        obj.set_text("uSNChanged", &self.usn.to_string());
        if let (Some(pw), Some(sam)) = (new_password, obj.text("sAMAccountName")) {
            self.passwords.insert(sam.to_ascii_lowercase(), pw);
            obj.set_text("pwdLastSet", &filetime_now().to_string());
        }
        self.tree.insert(obj);
        self.record(dc, WriteOp::Modify, dn);
        Ok(())
    }

    pub fn delete(&mut self, dc: &str, dn: &str) -> Result<(), DirectoryError> {
        if self.tree.get(dn).is_none() {
            return Err(no_such_object(dc, dn));
        }
        self.injected(dc, dn, WriteOp::Delete)?;
        if self.tree.has_children(dn) {
            return Err(ldap(
                dc,
                66,
                format!(
                    "00002015: subtree_delete: Unable to delete a non-leaf node (it has children) {dn}"
                ),
            ));
        }
        self.tree.objects.remove(&norm(dn));
        self.record(dc, WriteOp::Delete, dn);
        Ok(())
    }

    /// The stored descriptor cut down to the parts `sd_flags` names (0
    /// means all, as AD treats it).
    pub fn read_sd(&self, dn: &str, sd_flags: u32) -> Option<Result<Vec<u8>, String>> {
        let obj = self.tree.get(dn)?;
        let bytes = obj.get("nTSecurityDescriptor").first()?.clone();
        let flags = if sd_flags & 0xf == 0 {
            0xf
        } else {
            sd_flags & 0xf
        };
        if flags == 0xf {
            return Some(Ok(bytes));
        }
        Some(
            SecurityDescriptor::parse(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|mut sd| {
                    if flags & 1 == 0 {
                        sd.owner = None;
                    }
                    if flags & 2 == 0 {
                        sd.group = None;
                    }
                    if flags & 4 == 0 {
                        sd.dacl = None;
                        sd.control &= !DACL_BITS;
                    }
                    if flags & 8 == 0 {
                        sd.sacl = None;
                        sd.control &= !SACL_BITS;
                    }
                    sd.to_bytes().map_err(|e| e.to_string())
                }),
        )
    }

    pub fn write_sd(
        &mut self,
        dc: &str,
        dn: &str,
        sd_flags: u32,
        bytes: &[u8],
    ) -> Result<(), DirectoryError> {
        let Some(obj) = self.tree.get(dn) else {
            return Err(no_such_object(dc, dn));
        };
        self.injected(dc, dn, WriteOp::WriteSecurityDescriptor)?;
        let old = obj.get("nTSecurityDescriptor").first().cloned();
        let flags = if sd_flags & 0xf == 0 {
            0xf
        } else {
            sd_flags & 0xf
        };
        let merged = merge_sd(dc, old.as_deref(), bytes, flags)?;
        let undone = self.undone.iter().position(|d| *d == norm(dn));
        if let Some(i) = undone {
            self.undone.remove(i);
        }
        if let Some(obj) = self.tree.get_mut(dn).filter(|_| undone.is_none()) {
            obj.attrs
                .insert("ntsecuritydescriptor".into(), vec![merged]);
        }
        self.record(dc, WriteOp::WriteSecurityDescriptor, dn);
        Ok(())
    }
}

/// `new`'s parts named by `flags` over `old`'s others.
fn merge_sd(
    dc: &str,
    old: Option<&[u8]>,
    new: &[u8],
    flags: u32,
) -> Result<Vec<u8>, DirectoryError> {
    let new = SecurityDescriptor::parse(new).map_err(|e| {
        ldap(
            dc,
            21,
            format!("0000057A: invalid nTSecurityDescriptor: {e}"),
        )
    })?;
    let mut sd = match old.map(SecurityDescriptor::parse) {
        Some(Ok(sd)) => sd,
        _ => SecurityDescriptor::new(),
    };
    if flags & 1 != 0 {
        sd.owner = new.owner;
    }
    if flags & 2 != 0 {
        sd.group = new.group;
    }
    if flags & 4 != 0 {
        sd.dacl = new.dacl.clone();
        sd.control = (sd.control & !DACL_BITS) | (new.control & DACL_BITS);
    }
    if flags & 8 != 0 {
        sd.sacl = new.sacl.clone();
        sd.control = (sd.control & !SACL_BITS) | (new.control & SACL_BITS);
    }
    sd.to_bytes().map_err(|e| {
        ldap(
            dc,
            21,
            format!("cannot encode the security descriptor: {e}"),
        )
    })
}

pub fn filetime_now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (i64::try_from(secs).unwrap_or(0) + 11_644_473_600) * 10_000_000
}
