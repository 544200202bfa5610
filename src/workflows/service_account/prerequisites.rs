//! What a gMSA needs in the directory before it can be made and used, read
//! the one way CreateGmsa, AddDirectory and Verify all read it: the KDS
//! root keys (`msKds-ProvRootKey` under the forest's Master Root Keys
//! container) and the Managed Service Accounts container with the domain
//! root's well-known reference to it.

use crate::backends::directory::{DirectoryError, DirectorySession, Entry, Scope};

/// The well-known GUID of the Managed Service Accounts container
/// (`GUID_MANAGED_SERVICE_ACCOUNTS_CONTAINER_W`), held in the domain root's
/// `otherWellKnownObjects` as `B:32:<guid>:<container DN>`. The agent's
/// installer binds to `<WKGUID=…,domain>`: without the value it fails with
/// "There is no such object on the server".
pub(crate) const MSA_CONTAINER_WKGUID: &str = "1EB93889E40C45DF9F0C64D23BBB6237";

/// Where AD puts managed service accounts unless told otherwise.
pub(crate) fn default_msa_container(domain_dn: &str) -> String {
    format!("CN=Managed Service Accounts,{domain_dn}")
}

/// The `otherWellKnownObjects` value AD provisions for the container.
pub(crate) fn msa_reference_value(domain_dn: &str) -> String {
    format!(
        "B:32:{MSA_CONTAINER_WKGUID}:{}",
        default_msa_container(domain_dn)
    )
}

/// The DN the domain root's well-known reference gives the Managed Service
/// Accounts container, if it holds one.
pub(crate) fn msa_reference(domain_root: &Entry) -> Option<String> {
    let prefix = format!("B:32:{MSA_CONTAINER_WKGUID}:");
    domain_root
        .all("otherWellKnownObjects")
        .iter()
        .find(|v| {
            v.get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(&prefix))
        })
        .map(|v| v[prefix.len()..].to_owned())
}

/// True when a DN names a deleted object (`\0ADEL:` in its RDN, or under
/// `CN=Deleted Objects`): what a reference to a deleted, unrestored
/// container looks like.
pub(crate) fn is_deleted_dn(dn: &str) -> bool {
    let lower = dn.to_ascii_lowercase();
    lower.contains("\\0adel:") || lower.contains(",cn=deleted objects,")
}

/// The forest's KDS root key container.
pub(crate) fn kds_container(config_dn: &str) -> String {
    format!("CN=Master Root Keys,CN=Group Key Distribution Service,CN=Services,{config_dn}")
}

/// One KDS root key as a DC shows it.
#[derive(Debug, Clone)]
pub(crate) struct KdsRootKey {
    /// `msKds-UseStartTime`, ms since 1970: the key may be used from then
    /// on. `None` when it could not be read (a confidential attribute:
    /// Domain Admins and Enterprise Admins read it).
    pub use_start_ms: Option<i64>,
    /// `msKds-CreateTime`, ms since 1970.
    pub create_ms: Option<i64>,
}

/// Every KDS root key the session's DC holds (none when the container is
/// missing, as on a fresh forest).
pub(crate) async fn read_kds_keys(
    session: &mut dyn DirectorySession,
    config_dn: &str,
) -> Result<Vec<KdsRootKey>, DirectoryError> {
    let keys = match session
        .search(
            &kds_container(config_dn),
            Scope::OneLevel,
            "(objectClass=msKds-ProvRootKey)",
            &["msKds-UseStartTime", "msKds-CreateTime", "cn"],
        )
        .await
    {
        Ok(k) => k,
        Err(DirectoryError::NoSuchObject { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    let time = |e: &Entry, name: &str| {
        e.first(name)
            .and_then(|v| v.parse::<i64>().ok())
            .map(filetime_ms)
    };
    Ok(keys
        .iter()
        .map(|k| KdsRootKey {
            use_start_ms: time(k, "msKds-UseStartTime"),
            create_ms: time(k, "msKds-CreateTime"),
        })
        .collect())
}

/// FILETIME (100 ns since 1601) to milliseconds since 1970.
pub(crate) fn filetime_ms(value: i64) -> i64 {
    value / 10_000 - 11_644_473_600_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_is_found_by_guid_whatever_its_case() {
        let mut root = Entry::default();
        root.attrs.insert(
            "otherwellknownobjects".into(),
            vec![
                "B:32:683A24E2E8164BD3AF86AC3C2CF3F981:CN=Keys,DC=lab".into(),
                "B:32:1eb93889e40c45df9f0c64d23bbb6237:CN=Managed Service Accounts,DC=lab".into(),
            ],
        );
        assert_eq!(
            msa_reference(&root).as_deref(),
            Some("CN=Managed Service Accounts,DC=lab")
        );
        assert_eq!(
            msa_reference_value("DC=lab"),
            "B:32:1EB93889E40C45DF9F0C64D23BBB6237:CN=Managed Service Accounts,DC=lab"
        );
        assert!(msa_reference(&Entry::default()).is_none());
    }

    #[test]
    fn a_deleted_container_is_recognised() {
        assert!(is_deleted_dn(
            "CN=Managed Service Accounts\\0ADEL:8b637607-65e8-4a80-b194-f738b26b9414,CN=Deleted Objects,DC=lab,DC=example"
        ));
        assert!(!is_deleted_dn("CN=Managed Service Accounts,DC=lab"));
    }

    #[test]
    fn filetime_converts_to_unix_ms() {
        // 2026-11-27T00:00:00Z
        assert_eq!(filetime_ms(134_402_112_000_000_000), 1_795_737_600_000);
    }
}
