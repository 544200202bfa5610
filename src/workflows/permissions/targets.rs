//! Where GrantPermissions put a trustee's ACEs besides the domain root:
//! the organizational units named in its requests, recorded per domain and
//! trustee SID, so DecommissionAgent can take them out of the same objects
//! (a DACL cannot be searched for a SID without reading every object's).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::GrantMode;
use crate::backends::store::Store;
use crate::workflows::Error;
use crate::workflows::operations::{blocking, read};

const NS: &str = "permissions";

fn key(domain: &str, sid: &str) -> String {
    format!("ou-grants/{}/{sid}", domain.to_ascii_lowercase())
}

/// The OUs (DNs, as the requests named them) where `sid` was granted in
/// `domain` and not removed since.
pub(crate) async fn recorded_ous(
    store: &Arc<dyn Store>,
    domain: &str,
    sid: &str,
) -> Result<Vec<String>, Error> {
    let key = key(domain, sid);
    let bytes = read(store, |s| s.get_config(NS, &key))?;
    match bytes {
        None => Ok(Vec::new()),
        Some(b) => serde_json::from_slice(&b).map_err(|e| Error::internal("stored OU grants", e)),
    }
}

/// After a GrantPermissions on `ous`: APPLY adds them, REMOVE takes them
/// out (the plans change nothing). Nothing is recorded for the root.
pub(crate) async fn record(
    store: &Arc<dyn Store>,
    domain: &str,
    sid: &str,
    ous: &[String],
    mode: GrantMode,
) -> Result<(), Error> {
    if ous.is_empty() || sid.is_empty() || !matches!(mode, GrantMode::Apply | GrantMode::Remove) {
        return Ok(());
    }
    let mut set: BTreeSet<String> = recorded_ous(store, domain, sid)
        .await?
        .into_iter()
        .collect();
    for ou in ous {
        // DNs compare case-insensitively.
        set.retain(|known| !known.eq_ignore_ascii_case(ou));
        if mode == GrantMode::Apply {
            set.insert(ou.clone());
        }
    }
    let key = key(domain, sid);
    let value = if set.is_empty() {
        None
    } else {
        let list: Vec<String> = set.into_iter().collect();
        Some(serde_json::to_vec(&list).map_err(|e| Error::internal("encoding OU grants", e))?)
    };
    blocking(store, move |s| s.put_config(NS, &key, value.as_deref())).await
}
