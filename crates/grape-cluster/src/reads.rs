//! Reads a node runs on a replica for another node. They travel as JSON: points carry free-form
//! payload JSON.

use grape::{
    Error, Filter, MultiSearchRequest, PointId, Result, ScrollRequest, SearchRequest, SparseSearchRequest,
    WithPayload, WithVector,
};
use grape_shard::LocalShard;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ShardRead {
    Search(SearchRequest),
    SearchSparse(SparseSearchRequest),
    SearchMulti(MultiSearchRequest),
    Retrieve { ids: Vec<PointId>, with_payload: WithPayload, with_vector: WithVector },
    Scroll(ScrollRequest),
    Count(Option<Filter>),
    SparseDf { name: String, indices: Vec<u32> },
}

fn json<T: Serialize>(v: T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(format!("encode a read answer: {e}")))
}

impl ShardRead {
    /// Runs the read on a replica; the answer as JSON.
    pub fn run(&self, shard: &LocalShard) -> Result<serde_json::Value> {
        let e = shard.engine();
        match self {
            ShardRead::Search(r) => json(e.search(r)?),
            ShardRead::SearchSparse(r) => json(e.search_sparse(r)?),
            ShardRead::SearchMulti(r) => json(e.search_multi(r)?),
            ShardRead::Retrieve { ids, with_payload, with_vector } => {
                json(e.retrieve(ids, with_payload, with_vector)?)
            }
            ShardRead::Scroll(r) => json(e.scroll(r)?),
            ShardRead::Count(f) => json(e.count(f.as_ref())),
            ShardRead::SparseDf { name, indices } => json(e.sparse_document_frequencies(name, indices)),
        }
    }
}

/// The kind of an engine error, as sent to the node that asked.
pub fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::BadInput(_) | Error::DimensionMismatch { .. } => "bad_input",
        Error::NotFound(_) => "not_found",
        Error::Unavailable(_) | Error::Closed => "unavailable",
        _ => "internal",
    }
}

/// An engine error again from its kind and message.
pub fn error_from(kind: &str, msg: String) -> Error {
    match kind {
        "bad_input" => Error::BadInput(msg),
        "not_found" => Error::NotFound(msg),
        "unavailable" => Error::Unavailable(msg),
        _ => Error::Internal(msg),
    }
}
