//! Permission profiles: the ACE sets cloud-sync features need
//! ([`profiles`]), resolved against the domain's schema at run time, the
//! presence / exact-match rules over a DACL, and the engine that plans and
//! writes them ([`grant`]). Used by GrantPermissions, UseCustomGmsa,
//! GetServiceAccount and password writeback.

mod grant;
mod profiles;
mod targets;

use std::collections::BTreeMap;

use uuid::Uuid;

use super::Error;
use crate::backends::directory::{DirectorySession, Entry, SD_FLAGS_DACL, Scope, escape};
use provd_sd::{
    Ace, AceBody, AceType, Acl, CONTAINER_INHERIT_ACE, INHERIT_ONLY_ACE, INHERITED_ACE,
    NO_PROPAGATE_INHERIT_ACE, OBJECT_INHERIT_ACE, SecurityDescriptor, Sid,
};

pub use grant::{AceChange, GrantMode, GrantPermissionsRequest, ProfileChoice, ProfileStatus};
pub(crate) use grant::{grant_in_session, profile_statuses, status_of};
pub use profiles::Profile;
pub(crate) use profiles::{SchemaRef, specs};
pub(crate) use targets::{record as record_ou_grants, recorded_ous};

/// Schema GUIDs resolved from one domain; a missing name maps to `None`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolved {
    guids: BTreeMap<SchemaRef, Option<Uuid>>,
}

impl Resolved {
    /// Looks up every GUID any profile needs: one search for the schemaIDGUIDs under `schema_dn`, one
    /// for the rightsGuids under CN=Extended-Rights of `configuration_dn`.
    /// Always the same two reads, so an operation's sections read them once
    /// (the shared session keeps them, see `domain_controllers::memo`).
    pub async fn resolve(
        session: &mut dyn DirectorySession,
        schema_dn: &str,
        configuration_dn: &str,
    ) -> Result<Resolved, Error> {
        let mut refs: Vec<SchemaRef> = Profile::ALL
            .iter()
            .flat_map(|p| specs(*p))
            .flat_map(|s| [s.object, s.inherited])
            .flatten()
            .collect();
        refs.sort();
        refs.dedup();
        let (mut schema_names, mut rights) = (Vec::new(), Vec::new());
        for r in &refs {
            match r {
                SchemaRef::Class(name) | SchemaRef::Attribute(name) => schema_names.push(*name),
                SchemaRef::Right(cn) => rights.push(*cn),
            }
        }
        let schema = lookup(
            session,
            schema_dn,
            "lDAPDisplayName",
            &schema_names,
            "schemaIDGUID",
        )
        .await?;
        let rights_dn = format!("CN=Extended-Rights,{configuration_dn}");
        let rights = lookup(session, &rights_dn, "cn", &rights, "rightsGuid").await?;
        let guids = refs
            .into_iter()
            .map(|r| {
                let guid = match r {
                    SchemaRef::Class(name) | SchemaRef::Attribute(name) => schema
                        .get(&name.to_ascii_lowercase())
                        .and_then(|e| e.first_bin("schemaIDGUID"))
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map(Uuid::from_bytes_le),
                    SchemaRef::Right(cn) => rights
                        .get(&cn.to_ascii_lowercase())
                        .and_then(|e| e.first("rightsGuid"))
                        .and_then(|g| Uuid::parse_str(g).ok()),
                };
                (r, guid)
            })
            .collect();
        Ok(Resolved { guids })
    }

    fn guid(&self, r: Option<SchemaRef>) -> Result<Option<Uuid>, &'static str> {
        match r {
            None => Ok(None),
            Some(r) => match self.guids.get(&r) {
                Some(Some(g)) => Ok(Some(*g)),
                _ => Err(r.name()),
            },
        }
    }
}

/// The children of `base` whose `key` is one of `names`, in one search,
/// by lower-case `key`.
async fn lookup(
    session: &mut dyn DirectorySession,
    base: &str,
    key: &str,
    names: &[&str],
    value: &str,
) -> Result<BTreeMap<String, Entry>, Error> {
    let filter = format!(
        "(|{})",
        names.iter().map(|n| escape::eq(key, n)).collect::<String>()
    );
    let found = session
        .search(base, Scope::OneLevel, &filter, &[key, value])
        .await?;
    Ok(found
        .into_iter()
        .filter_map(|e| Some((e.first(key)?.to_ascii_lowercase(), e)))
        .collect())
}

/// A concrete ACE on a concrete object, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub object_dn: String,
    pub ace: Ace,
    pub description: String,
    pub profiles: Vec<Profile>,
}

/// The ACEs `profiles` need for `trustee` on `targets` (the domain root
/// first). Specs whose schema names do not exist are returned apart, with
/// the missing name, so callers can warn.
pub(crate) fn wanted(
    profiles: &[Profile],
    resolved: &Resolved,
    trustee: Sid,
    domain_root: &str,
    targets: &[String],
) -> (Vec<Wanted>, Vec<(Profile, &'static str, &'static str)>) {
    let mut out: Vec<Wanted> = Vec::new();
    let mut dropped = Vec::new();
    for profile in profiles {
        for spec in specs(*profile) {
            let (object, inherited) =
                match (resolved.guid(spec.object), resolved.guid(spec.inherited)) {
                    (Ok(o), Ok(i)) => (o, i),
                    (Err(missing), _) | (_, Err(missing)) => {
                        dropped.push((*profile, spec.description, missing));
                        continue;
                    }
                };
            let ace = if object.is_some() || inherited.is_some() {
                Ace::allowed_object(spec.flags, spec.mask, object, inherited, trustee)
            } else {
                Ace::allowed(spec.flags, spec.mask, trustee)
            };
            let objects: Vec<String> = if spec.root_only || targets.is_empty() {
                vec![domain_root.to_owned()]
            } else {
                targets.to_vec()
            };
            for object_dn in objects {
                match out
                    .iter_mut()
                    .find(|w| w.object_dn.eq_ignore_ascii_case(&object_dn) && w.ace == ace)
                {
                    Some(existing) => {
                        if !existing.profiles.contains(profile) {
                            existing.profiles.push(*profile);
                        }
                    }
                    None => out.push(Wanted {
                        object_dn,
                        ace: ace.clone(),
                        description: spec.description.to_owned(),
                        profiles: vec![*profile],
                    }),
                }
            }
        }
    }
    (out, dropped)
}

const INHERITANCE_FLAGS: u8 =
    OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | NO_PROPAGATE_INHERIT_ACE | INHERIT_ONLY_ACE;

fn parts(ace: &Ace) -> Option<(u32, Option<Uuid>, Option<Uuid>, Sid)> {
    match &ace.body {
        AceBody::Basic { mask, sid, .. } => Some((*mask, None, None, *sid)),
        AceBody::Object {
            mask,
            object_type,
            inherited_object_type,
            sid,
            ..
        } => Some((*mask, *object_type, *inherited_object_type, *sid)),
        AceBody::Opaque(_) => None,
    }
}

/// An explicit Allow ACE for the same trustee, object type, inherited object
/// type and inheritance flags, whose mask includes the wanted rights.
pub(crate) fn is_present(dacl: &Acl, wanted: &Ace) -> bool {
    let Some((mask, object, inherited, sid)) = parts(wanted) else {
        return false;
    };
    dacl.aces.iter().any(|a| {
        let allow =
            a.ace_type == AceType::ACCESS_ALLOWED || a.ace_type == AceType::ACCESS_ALLOWED_OBJECT;
        allow
            && a.flags & INHERITED_ACE == 0
            && a.flags & INHERITANCE_FLAGS == wanted.flags & INHERITANCE_FLAGS
            && parts(a).is_some_and(|(m, o, i, s)| {
                s == sid && o == object && i == inherited && m & mask == mask
            })
    })
}

/// An explicit ACE exactly equal to `wanted` (what REMOVE takes).
pub(crate) fn is_exactly_present(dacl: &Acl, wanted: &Ace) -> bool {
    dacl.aces.iter().any(|a| {
        a.flags & INHERITED_ACE == 0
            && a.ace_type == wanted.ace_type
            && a.flags == wanted.flags
            && parts(a) == parts(wanted)
    })
}

/// Reads the DACL-only descriptor of `dn`.
pub(crate) async fn read_dacl(
    session: &mut dyn DirectorySession,
    dn: &str,
) -> Result<SecurityDescriptor, Error> {
    let bytes = session
        .read_security_descriptor(dn, SD_FLAGS_DACL)
        .await?
        .ok_or_else(|| Error::NotFound(format!("object {dn}")))?;
    SecurityDescriptor::parse(&bytes)
        .map_err(|e| Error::internal(format!("the security descriptor of {dn}"), e))
}

/// The SDDL of one ACE with the trustee as a SID string (never an alias).
pub(crate) fn ace_sddl(ace: &Ace) -> String {
    ace.to_sddl(None).unwrap_or_else(|e| format!("<{e}>"))
}

#[cfg(test)]
mod tests {
    use super::profiles::DESCENDANTS;
    use super::*;
    use provd_sd::rights;

    fn resolved_all() -> Resolved {
        let mut guids = BTreeMap::new();
        for p in Profile::ALL {
            for s in specs(p) {
                for r in [s.object, s.inherited].into_iter().flatten() {
                    let n = guids.len() as u128 + 1;
                    guids.entry(r).or_insert(Some(Uuid::from_u128(n)));
                }
            }
        }
        Resolved { guids }
    }

    #[test]
    fn shared_aces_are_merged_and_root_only_goes_to_the_root() {
        let sid: Sid = "S-1-5-21-1-2-3-1105".parse().unwrap();
        let (wanted, dropped) = wanted(
            &[Profile::BasicRead, Profile::PasswordHashSync],
            &resolved_all(),
            sid,
            "DC=lab",
            &["OU=A,DC=lab".into()],
        );
        assert!(dropped.is_empty());
        let changes = wanted
            .iter()
            .filter(|w| {
                w.description
                    .starts_with("Replicating Directory Changes on")
            })
            .collect::<Vec<_>>();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].object_dn, "DC=lab");
        assert_eq!(
            changes[0].profiles,
            [Profile::BasicRead, Profile::PasswordHashSync]
        );
        assert!(
            wanted
                .iter()
                .filter(|w| w.description.starts_with("Read all"))
                .all(|w| w.object_dn == "OU=A,DC=lab")
        );
    }

    #[test]
    fn presence_allows_a_wider_mask_but_not_other_flags_or_inherited() {
        let sid: Sid = "S-1-5-21-1-2-3-1105".parse().unwrap();
        let want = Ace::allowed_object(
            DESCENDANTS,
            rights::WRITE_PROPERTY,
            Some(Uuid::from_u128(7)),
            Some(Uuid::from_u128(9)),
            sid,
        );
        let mut dacl = Acl::new();
        assert!(!is_present(&dacl, &want));
        let mut wider = want.clone();
        if let AceBody::Object { mask, .. } = &mut wider.body {
            *mask |= rights::READ_PROPERTY;
        }
        dacl.aces.push(wider);
        assert!(is_present(&dacl, &want));
        assert!(!is_exactly_present(&dacl, &want));
        let mut inherited = want.clone();
        inherited.flags |= INHERITED_ACE;
        let dacl2 = Acl {
            aces: vec![inherited],
            ..Acl::new()
        };
        assert!(!is_present(&dacl2, &want));
        let mut other_flags = want.clone();
        other_flags.flags = CONTAINER_INHERIT_ACE;
        let dacl3 = Acl {
            aces: vec![other_flags],
            ..Acl::new()
        };
        assert!(!is_present(&dacl3, &want));
    }

    #[test]
    fn missing_schema_names_are_reported() {
        let mut r = resolved_all();
        r.guids.insert(SchemaRef::Class("publicFolder"), None);
        let sid: Sid = "S-1-5-21-1-2-3-1105".parse().unwrap();
        let (w, dropped) = wanted(&[Profile::ExchangeMailPublicFolder], &r, sid, "DC=lab", &[]);
        assert!(w.is_empty());
        assert_eq!(dropped[0].2, "publicFolder");
    }
}
