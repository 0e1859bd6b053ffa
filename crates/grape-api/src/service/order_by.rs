//! Scroll ordered by a payload value (Qdrant's scroll `order_by`): the engine's
//! [`grape::query::order_by`] on the blocking pool.

use grape::{Record, Result};

pub use grape::query::OrderedScroll;
pub use grape::{Direction, OrderBy, OrderValue};

use crate::error::ApiError;
use crate::Service;

impl Service {
    /// Scrolls one collection in the order of a payload value.
    pub async fn scroll_ordered(
        &self,
        collection: String,
        shard_key: Option<grape::ShardKeySelector>,
        req: OrderedScroll,
        consistency: grape::ReadConsistency,
    ) -> Result<Vec<(Record, OrderValue)>, ApiError> {
        self.with_shards_at(collection, shard_key, consistency, move |_, c| {
            grape::query::order_by::scroll_ordered(c, &req)
        })
        .await
    }
}
