//! Nodes seen: every node that announced itself over MQTT, kept after it goes away so the
//! dashboard can show a node that died, and since when the cluster has known it.
//!
//! Live state (load, health) stays in memory on the nodes; the catalog keeps only what
//! should outlive a restart. Every broadcast node hears every presence message and records
//! it, so writes repeat and arrive out of order; the upsert keeps the newest sighting.

use serde::Serialize;

use crate::catalog::with_pool;
use crate::{sql, Catalog, CatalogError};

/// A node the cluster has seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct NodeRecord {
    /// The node's id (`broadcast1`, `ingest1`), unique in the cluster.
    pub id: String,
    /// What it runs as (`ingest`, `broadcast`, ...), as it announced.
    pub role: String,
    /// Where its HTTP server answers, if it has one.
    pub url: Option<String>,
    /// When the cluster first saw it, in unix seconds; never changes.
    pub first_seen: i64,
    /// When it was last seen, in unix seconds.
    pub last_seen: i64,
    /// Its membership state at the last sighting (`joining`, `ready`, `offline`, ...).
    pub state: String,
}

impl Catalog {
    /// Records that node `id` was seen at `at` (unix seconds) with this role, URL and
    /// state. The first sighting sets `first_seen`, which later ones keep; a sighting older
    /// than the last one recorded changes nothing, so a late, out-of-order message cannot
    /// roll a node's state back.
    pub async fn node_seen(
        &self,
        id: &str,
        role: &str,
        url: Option<&str>,
        state: &str,
        at: i64,
    ) -> Result<(), CatalogError> {
        with_pool!(&self.pool, |p| sqlx::query(sql::NODE_UPSERT)
            .bind(id)
            .bind(role)
            .bind(url)
            .bind(at)
            .bind(state)
            .execute(p)
            .await
            .map(drop))?;
        tracing::trace!(node = id, role, state, "node seen");
        Ok(())
    }

    /// Every node seen, ordered by id (byte order, the same on both backends).
    pub async fn list_nodes(&self) -> Result<Vec<NodeRecord>, CatalogError> {
        let mut nodes: Vec<NodeRecord> =
            with_pool!(&self.pool, |p| sqlx::query_as(sql::NODE_LIST)
                .fetch_all(p)
                .await)?;
        nodes.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        Ok(nodes)
    }
}
