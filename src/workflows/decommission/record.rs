//! provd's record that it decommissioned this host's agent: written by a
//! DecommissionAgent run that changed something, cleared by a successful
//! Install. While it is there, Verify expects no agent on this host and
//! says whether anything is left (`host.agent.decommissioned`) instead of
//! failing every agent check.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backends::store::Store;
use crate::workflows::Error;
use crate::workflows::operations::{blocking, now_ms, read};

const NS: &str = "decommission";
const KEY: &str = "record";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecommissionRecord {
    /// The DecommissionAgent operation that took the agent away.
    pub operation_id: String,
    /// When it did, in ms since the Unix epoch.
    pub at_ms: i64,
}

pub(crate) async fn load(store: &Arc<dyn Store>) -> Result<Option<DecommissionRecord>, Error> {
    match read(store, |s| s.get_config(NS, KEY))? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::internal("stored decommission record", e)),
    }
}

pub(super) async fn save(store: &Arc<dyn Store>, operation_id: &str) -> Result<(), Error> {
    let record = DecommissionRecord {
        operation_id: operation_id.to_owned(),
        at_ms: now_ms(),
    };
    let bytes = serde_json::to_vec(&record)
        .map_err(|e| Error::internal("encoding a record for the store", e))?;
    blocking(store, move |s| s.put_config(NS, KEY, Some(&bytes))).await
}

/// Install took the agent back: Verify checks it as installed again.
pub(crate) async fn clear(store: &Arc<dyn Store>) -> Result<(), Error> {
    if load(store).await?.is_some() {
        blocking(store, |s| s.put_config(NS, KEY, None)).await?;
    }
    Ok(())
}
