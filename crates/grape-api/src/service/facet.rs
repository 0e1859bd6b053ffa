//! Facet counts (Qdrant's `/facet`) for REST and gRPC: the engine's
//! [`grape::query::facet`](grape::query::facet) over the shards the selector names.

pub use grape::query::facet::{FacetHit, FacetQuery, FacetValue};

use crate::error::ApiError;
use crate::Service;

impl Service {
    /// Counts points per value of a payload key in one collection.
    pub async fn facet(
        &self,
        collection: String,
        req: FacetQuery,
        consistency: grape::ReadConsistency,
    ) -> Result<Vec<FacetHit>, ApiError> {
        let keys = req.shard_key.clone();
        self.with_shards_at(collection, keys, consistency, move |_, c| grape::query::facet::facet(c, &req))
            .await
    }
}
