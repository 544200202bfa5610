//! The permission profiles as ACE specs: what each cloud-sync feature needs,
//! naming schema objects by name (their GUIDs differ per forest and are
//! resolved at run time, see [`super::Resolved`]).

use provd_sd::{CONTAINER_INHERIT_ACE, INHERIT_ONLY_ACE, rights};

/// A permission profile, as `Set-AADCloudSyncPermissions -PermissionType`
/// names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    BasicRead,
    PasswordHashSync,
    PasswordWriteBack,
    HybridExchange,
    ExchangeMailPublicFolder,
    UserGroupCreateDelete,
    ConsistencyGuid,
}

impl Profile {
    pub const ALL: [Profile; 7] = [
        Profile::BasicRead,
        Profile::PasswordHashSync,
        Profile::PasswordWriteBack,
        Profile::HybridExchange,
        Profile::ExchangeMailPublicFolder,
        Profile::UserGroupCreateDelete,
        Profile::ConsistencyGuid,
    ];

    /// The inverse of [`Profile::name`].
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::BasicRead => "PERMISSION_PROFILE_BASIC_READ",
            Profile::PasswordHashSync => "PERMISSION_PROFILE_PASSWORD_HASH_SYNC",
            Profile::PasswordWriteBack => "PERMISSION_PROFILE_PASSWORD_WRITE_BACK",
            Profile::HybridExchange => "PERMISSION_PROFILE_HYBRID_EXCHANGE",
            Profile::ExchangeMailPublicFolder => "PERMISSION_PROFILE_EXCHANGE_MAIL_PUBLIC_FOLDER",
            Profile::UserGroupCreateDelete => "PERMISSION_PROFILE_USER_GROUP_CREATE_DELETE",
            Profile::ConsistencyGuid => "PERMISSION_PROFILE_CONSISTENCY_GUID",
        }
    }
}

/// A schema object an ACE names, resolved to its GUID at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum SchemaRef {
    /// A class, by lDAPDisplayName (schemaIDGUID).
    Class(&'static str),
    /// An attribute, by lDAPDisplayName (schemaIDGUID).
    Attribute(&'static str),
    /// An extended right, by its cn under CN=Extended-Rights (rightsGuid).
    Right(&'static str),
}

impl SchemaRef {
    pub(super) fn name(self) -> &'static str {
        match self {
            SchemaRef::Class(n) | SchemaRef::Attribute(n) | SchemaRef::Right(n) => n,
        }
    }
}

/// One ACE a profile needs (trustee and GUIDs filled in later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AceSpec {
    pub object: Option<SchemaRef>,
    pub inherited: Option<SchemaRef>,
    pub flags: u8,
    pub mask: u32,
    /// Meaningful on the domain root only ("this object only").
    pub root_only: bool,
    pub description: &'static str,
}

pub(super) const DESCENDANTS: u8 = CONTAINER_INHERIT_ACE | INHERIT_ONLY_ACE;
/// Generic write as AD stores it once mapped: RC | WP | SW. Using the
/// mapped bits keeps what provd writes equal to what it reads back.
const DS_GENERIC_WRITE: u32 = rights::READ_CONTROL | rights::WRITE_PROPERTY | rights::SELF_WRITE;

const fn read_on(class: &'static str, description: &'static str) -> AceSpec {
    AceSpec {
        object: None,
        inherited: Some(SchemaRef::Class(class)),
        flags: DESCENDANTS,
        mask: rights::READ_PROPERTY,
        root_only: false,
        description,
    }
}

const fn root_right(right: &'static str, description: &'static str) -> AceSpec {
    AceSpec {
        object: Some(SchemaRef::Right(right)),
        inherited: None,
        flags: 0,
        mask: rights::CONTROL_ACCESS,
        root_only: true,
        description,
    }
}

const fn on_descendants(
    object: Option<SchemaRef>,
    class: &'static str,
    mask: u32,
    description: &'static str,
) -> AceSpec {
    AceSpec {
        object,
        inherited: Some(SchemaRef::Class(class)),
        flags: DESCENDANTS,
        mask,
        root_only: false,
        description,
    }
}

const GET_CHANGES: AceSpec = root_right(
    "DS-Replication-Get-Changes",
    "Replicating Directory Changes on the domain root",
);

/// The documented ACE set of each profile.
pub(crate) fn specs(profile: Profile) -> Vec<AceSpec> {
    use SchemaRef::{Attribute, Class, Right};
    match profile {
        Profile::BasicRead => vec![
            read_on(
                "msDS-Device",
                "Read all properties on descendant device objects",
            ),
            read_on(
                "inetOrgPerson",
                "Read all properties on descendant inetOrgPerson objects",
            ),
            read_on(
                "computer",
                "Read all properties on descendant computer objects",
            ),
            read_on(
                "foreignSecurityPrincipal",
                "Read all properties on descendant foreignSecurityPrincipal objects",
            ),
            read_on("group", "Read all properties on descendant group objects"),
            read_on("user", "Read all properties on descendant user objects"),
            read_on(
                "contact",
                "Read all properties on descendant contact objects",
            ),
            GET_CHANGES,
        ],
        Profile::PasswordHashSync => vec![
            GET_CHANGES,
            root_right(
                "DS-Replication-Get-Changes-All",
                "Replicating Directory Changes All on the domain root",
            ),
        ],
        Profile::PasswordWriteBack => vec![
            on_descendants(
                Some(Right("User-Force-Change-Password")),
                "user",
                rights::CONTROL_ACCESS,
                "Reset Password on descendant user objects",
            ),
            on_descendants(
                Some(Attribute("lockoutTime")),
                "user",
                rights::WRITE_PROPERTY,
                "Write lockoutTime on descendant user objects",
            ),
            on_descendants(
                Some(Attribute("pwdLastSet")),
                "user",
                rights::WRITE_PROPERTY,
                "Write pwdLastSet on descendant user objects",
            ),
            root_right("Unexpire-Password", "Unexpire Password on the domain root"),
        ],
        Profile::HybridExchange => ["user", "inetOrgPerson", "group", "contact"]
            .into_iter()
            .map(|class| {
                on_descendants(
                    None,
                    class,
                    rights::READ_PROPERTY | rights::WRITE_PROPERTY,
                    match class {
                        "user" => "Read and write all properties on descendant user objects",
                        "inetOrgPerson" => {
                            "Read and write all properties on descendant inetOrgPerson objects"
                        }
                        "group" => "Read and write all properties on descendant group objects",
                        _ => "Read and write all properties on descendant contact objects",
                    },
                )
            })
            .collect(),
        Profile::ExchangeMailPublicFolder => vec![read_on(
            "publicFolder",
            "Read all properties on descendant publicFolder objects",
        )],
        Profile::UserGroupCreateDelete => vec![
            AceSpec {
                object: Some(Class("user")),
                inherited: None,
                flags: CONTAINER_INHERIT_ACE,
                mask: rights::CREATE_CHILD | rights::DELETE_CHILD,
                root_only: false,
                description: "Create and delete user objects here and below",
            },
            AceSpec {
                object: Some(Class("group")),
                inherited: None,
                flags: CONTAINER_INHERIT_ACE,
                mask: rights::CREATE_CHILD | rights::DELETE_CHILD,
                root_only: false,
                description: "Create and delete group objects here and below",
            },
            on_descendants(
                None,
                "user",
                DS_GENERIC_WRITE,
                "Write descendant user objects",
            ),
            on_descendants(
                None,
                "group",
                DS_GENERIC_WRITE,
                "Write descendant group objects",
            ),
        ],
        Profile::ConsistencyGuid => vec![
            on_descendants(
                Some(Attribute("mS-DS-ConsistencyGuid")),
                "user",
                rights::WRITE_PROPERTY,
                "Write mS-DS-ConsistencyGuid on descendant user objects",
            ),
            on_descendants(
                Some(Attribute("mS-DS-ConsistencyGuid")),
                "group",
                rights::WRITE_PROPERTY,
                "Write mS-DS-ConsistencyGuid on descendant group objects",
            ),
        ],
    }
}
