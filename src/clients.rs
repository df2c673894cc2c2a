//! Registered clients as the core sees them: the per-node cache in front of `ClientStore`
//! (emptied whenever the store's `clients` change counter moves; see `upkeep`), and what the
//! pages show of a client.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::store::{Store, StoreResult};

/// A registered client.
pub use crate::store::ClientRecord as Client;

/// The name a page shows for a client: its `client_name`, or its id when it has none.
pub fn display_name(client: &Client) -> &str {
    if client.metadata.client_name.is_empty() {
        &client.client_id
    } else {
        &client.metadata.client_name
    }
}

/// Client metadata cached per node; emptied whenever the store's `clients` version moves.
#[derive(Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, Arc<Client>>>,
}

/// Upper bound on cached clients, so that lookups of random ids cannot grow memory.
const CLIENT_CACHE_CAPACITY: usize = 10_000;

impl ClientCache {
    pub async fn get(
        &self,
        store: &dyn Store,
        client_id: &str,
    ) -> StoreResult<Option<Arc<Client>>> {
        if let Some(hit) = self.read().get(client_id).cloned() {
            return Ok(Some(hit));
        }
        let Some(record) = store.get_client(client_id).await? else {
            return Ok(None);
        };
        let record = Arc::new(record);
        let mut entries = self.write();
        if entries.len() >= CLIENT_CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(client_id.to_owned(), record.clone());
        Ok(Some(record))
    }

    pub fn clear(&self) {
        self.write().clear();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Client>>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Client>>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}
