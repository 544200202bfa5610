//! What apply last put in place, kept in the store for the drift watch's
//! re-apply (`[drift] reapply`) and cleared by DecommissionAgent's
//! `forget`: one JSON value per key under the `apply` namespace.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backends::store::Store;
use crate::workflows::Error;
use crate::workflows::operations::{blocking, read};

const NAMESPACE: &str = "apply";

/// One kept record: its key, and what it is called in errors.
pub(super) struct Stored {
    pub key: &'static str,
    pub what: &'static str,
}

impl Stored {
    pub async fn save<T: Serialize>(&self, store: &Arc<dyn Store>, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::internal(format!("encoding {} for the store", self.what), e))?;
        let key = self.key;
        blocking(store, move |st| st.put_config(NAMESPACE, key, Some(&bytes))).await
    }

    pub async fn load<T: DeserializeOwned>(
        &self,
        store: &Arc<dyn Store>,
    ) -> Result<Option<T>, Error> {
        let key = self.key;
        let Some(bytes) = read(store, |st| st.get_config(NAMESPACE, key))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("stored {}", self.what), e))
    }

    /// Whether a record is kept; cleared unless `dry`.
    pub async fn forget(&self, store: &Arc<dyn Store>, dry: bool) -> Result<bool, Error> {
        let key = self.key;
        let had = read(store, |st| st.get_config(NAMESPACE, key))?.is_some();
        if had && !dry {
            blocking(store, move |st| st.put_config(NAMESPACE, key, None)).await?;
        }
        Ok(had)
    }
}
