//! The service layer: what every front end (REST now, gRPC and the cluster router later) calls.
//!
//! Front ends convert their wire types into the request types of this module and delegate. Every
//! engine call runs on tokio's blocking pool, so the engine (synchronous, may fsync) never stalls
//! the async reactor.

use std::sync::Arc;
use std::time::Instant;

use grape::{
    Collection, CountRequest, CreateShardKey, Database, Error, Filter, Payload, PointId, PointStruct,
    ReadConsistency, Result, ScoredPoint, ScrollRequest, ShardKey, ShardKeySelector, UpdateResult,
    WithPayload, WithVector, WriteAck,
};

use crate::error::ApiError;

pub mod cluster;
pub mod facet;
pub mod groups;
pub mod issues;
pub mod matrix;
pub mod optimizations;
pub mod order_by;
pub mod quotas;

use issues::Issues;
use quotas::{QuotaConfig, Quotas};

pub use grape::query::{
    fusion, run_query, scoring, vector_of, ContextPair, Expression, Formula, Fusion, LookupLocation, Mmr,
    PointsQuery, Prefetch, QueryInput, RecommendStrategy, VectorInput,
};

/// Shared state of a running server: the database, when the service started, the cluster view of a
/// cluster node, the issues noticed and the resource quotas.
#[derive(Clone)]
pub struct Service {
    db: Database,
    started: Instant,
    cluster: Option<Arc<dyn ClusterView>>,
    issues: Arc<Issues>,
    quotas: Arc<Quotas>,
}

pub use grape::ClusterMetrics;

/// What the API reports about the cluster a node belongs to (cluster mode). Implemented by the
/// cluster layer; the answers are Qdrant's JSON shapes.
pub trait ClusterView: Send + Sync {
    /// `GET /cluster`.
    fn status(&self) -> serde_json::Value;
    /// What `/metrics` reports of this node's cluster state.
    fn metrics(&self) -> ClusterMetrics;
    /// `GET /collections/{name}/cluster`.
    fn collection_info(&self, name: &str) -> grape::Result<serde_json::Value>;
    /// `POST /collections/{name}/cluster`: `shard` gets a replica on `add` and/or loses the one on
    /// `remove` (move = both, replicate = add, drop = remove). Returns once the placement is committed;
    /// the shard group follows it while the collection keeps serving.
    fn change_replicas(
        &self,
        name: &str,
        shard: u32,
        add: Option<u64>,
        remove: Option<u64>,
    ) -> grape::Result<()>;
    /// `DELETE /cluster/peer/{id}`.
    fn remove_peer(&self, id: u64, force: bool) -> grape::Result<()>;
    /// This node's peer id.
    fn peer_id(&self) -> u64;
    /// `GET /cluster/telemetry`: Qdrant's `DistributedTelemetryData` as this node sees the cluster.
    fn telemetry(&self) -> serde_json::Value;
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("path", &self.db.path()).finish()
    }
}

impl Service {
    /// The service of `db`, with the quotas its directory holds (else none enforced). A quota file
    /// that cannot be read is logged and no quota enforced; [`Service::with_quotas`] refuses it instead.
    pub fn new(db: Database) -> Self {
        let quotas = Quotas::load(db.path(), QuotaConfig::default()).unwrap_or_else(|e| {
            tracing::error!("{e}; quotas are not enforced");
            Quotas::with_config(db.path(), QuotaConfig::default())
        });
        Service {
            db,
            started: Instant::now(),
            cluster: None,
            issues: Arc::new(Issues::default()),
            quotas: Arc::new(quotas),
        }
    }

    /// A service of a cluster node.
    pub fn with_cluster(db: Database, cluster: Arc<dyn ClusterView>) -> Self {
        Service { cluster: Some(cluster), ..Service::new(db) }
    }

    /// The quotas of the database directory: its `quota.json` when a `PUT /quotas` wrote one, else
    /// `default` (the server's `storage.quotas`). Fails when the file cannot be read or a value is out
    /// of range.
    pub fn with_quotas(self, default: QuotaConfig) -> std::result::Result<Self, String> {
        let quotas = Quotas::load(self.db.path(), default)?;
        Ok(Service { quotas: Arc::new(quotas), ..self })
    }

    pub fn issues(&self) -> &Arc<Issues> {
        &self.issues
    }

    pub fn quotas(&self) -> &Arc<Quotas> {
        &self.quotas
    }

    /// A read handle on a collection: its filtered reads feed the issues report.
    fn read_handle(&self, db: &Database, name: &str) -> Result<Collection> {
        let watch: Arc<dyn grape_collection::FilterWatch> = self.issues.clone();
        Ok(db.collection(name)?.watched(watch))
    }

    pub fn cluster(&self) -> Option<&Arc<dyn ClusterView>> {
        self.cluster.as_ref()
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Runs `f` against the database on the blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || f(&db)).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(join) => Err(ApiError::from(Error::Internal(format!("request task failed: {join}")))),
        }
    }

    /// Runs `f` against one collection (by name or alias) on the blocking pool.
    pub async fn with_collection<T, F>(&self, name: String, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Database, &Collection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let service = self.clone();
        self.run(move |db| {
            let collection = service.read_handle(db, &name)?;
            f(db, &collection)
        })
        .await
    }

    /// Runs `f` against the shards of the keys `shard_key` names (custom sharding; `None`: the whole
    /// collection) on the blocking pool.
    pub async fn with_shards<T, F>(
        &self,
        name: String,
        shard_key: Option<ShardKeySelector>,
        f: F,
    ) -> Result<T, ApiError>
    where
        F: FnOnce(&Database, &Collection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |db| {
            let collection = db.collection(&name)?.select(shard_key.as_ref())?;
            f(db, &collection)
        })
        .await
    }

    /// [`Service::with_shards`] for reads that must be as up to date as `read` asks (Qdrant's read
    /// consistency; see `grape::consistency`).
    pub async fn with_shards_at<T, F>(
        &self,
        name: String,
        shard_key: Option<ShardKeySelector>,
        read: ReadConsistency,
        f: F,
    ) -> Result<T, ApiError>
    where
        F: FnOnce(&Database, &Collection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let service = self.clone();
        self.run(move |db| {
            let collection =
                service.read_handle(db, &name)?.select(shard_key.as_ref())?.with_consistency(read, None);
            f(db, &collection)
        })
        .await
    }

    /// Applies a list of writes in order to the shard keys `shard_key` names (`None`: no key, as an
    /// auto-sharded collection needs); stops at the first failure (earlier ones stay applied, as in
    /// Qdrant's batch update).
    pub async fn update(
        &self,
        collection: String,
        ops: Vec<UpdateOperation>,
        shard_key: Option<ShardKeySelector>,
        wait: bool,
        ack: Option<WriteAck>,
    ) -> Result<UpdateResult, ApiError> {
        if ops.iter().any(UpdateOperation::adds_data) {
            self.quotas.check_write()?;
        }
        let result = self
            .with_shards(collection, shard_key, move |_, c| {
                let c = c.with_consistency(ReadConsistency::default(), ack);
                let mut last = UpdateResult { operation_id: None, status: grape::UpdateStatus::Completed };
                for op in ops {
                    let r = apply_update(&c, op)?;
                    last.operation_id = r.operation_id.max(last.operation_id);
                    if r.status == grape::UpdateStatus::Acknowledged {
                        last.status = r.status;
                    }
                }
                Ok(last)
            })
            .await?;
        Ok(acknowledged_unless(wait, result))
    }

    /// Applies the operations of a batch update one by one and answers one result per operation, as
    /// Qdrant does; stops at the first failure (earlier operations stay applied).
    pub async fn update_each(
        &self,
        collection: String,
        ops: Vec<(UpdateOperation, Option<ShardKeySelector>)>,
        wait: bool,
        ack: Option<WriteAck>,
    ) -> Result<Vec<UpdateResult>, ApiError> {
        let mut results = Vec::with_capacity(ops.len());
        for (op, shard_key) in ops {
            results.push(self.update(collection.clone(), vec![op], shard_key, wait, ack).await?);
        }
        Ok(results)
    }

    /// Creates a shard key (custom sharding) with its shards.
    pub async fn create_shard_key(
        &self,
        collection: String,
        request: CreateShardKey,
    ) -> Result<bool, ApiError> {
        self.run(move |db| db.create_shard_key(&collection, &request).map(|()| true)).await
    }

    /// Drops a shard key and its shards' data.
    pub async fn delete_shard_key(&self, collection: String, key: ShardKey) -> Result<bool, ApiError> {
        self.run(move |db| db.delete_shard_key(&collection, &key).map(|()| true)).await
    }

    /// The shard keys of a collection in creation order; `None` when it is not custom-sharded.
    pub async fn shard_keys(&self, collection: String) -> Result<Option<Vec<ShardKey>>, ApiError> {
        self.with_collection(collection, |_, c| {
            Ok(c.config().params.is_custom_sharded().then(|| c.shard_keys()))
        })
        .await
    }

    /// Declares a payload index; sealed segments build it before the answer. Index changes are
    /// collection metadata, not operations of the point log, so the result has no operation id.
    pub async fn create_payload_index(
        &self,
        collection: String,
        field: String,
        schema: grape::PayloadFieldSchema,
        wait: bool,
    ) -> Result<UpdateResult, ApiError> {
        let issues = self.issues.clone();
        self.run(move |db| {
            db.create_payload_index(&collection, &field, schema)?;
            if let Ok(c) = db.collection(&collection) {
                issues.index_created(c.name(), &field);
            }
            Ok(())
        })
        .await?;
        Ok(index_result(wait))
    }

    /// Drops a payload index.
    pub async fn delete_payload_index(
        &self,
        collection: String,
        field: String,
        wait: bool,
    ) -> Result<UpdateResult, ApiError> {
        self.run(move |db| db.delete_payload_index(&collection, &field)).await?;
        Ok(index_result(wait))
    }

    /// Adds a named vector to a collection (through every shard's log, then the configuration).
    pub async fn create_vector(
        &self,
        collection: String,
        vector: String,
        params: grape::NewVector,
        wait: bool,
    ) -> Result<UpdateResult, ApiError> {
        self.quotas.check_write()?;
        let result = self.run(move |db| db.create_vector(&collection, &vector, &params)).await?;
        Ok(acknowledged_unless(wait, result))
    }

    /// Drops a named vector of a collection with all its values.
    pub async fn delete_vector(
        &self,
        collection: String,
        vector: String,
        wait: bool,
    ) -> Result<UpdateResult, ApiError> {
        let result = self.run(move |db| db.delete_vector(&collection, &vector)).await?;
        Ok(acknowledged_unless(wait, result))
    }

    /// Creates a collection, unless a resource quota is exceeded.
    pub async fn create_collection(
        &self,
        name: String,
        request: grape::CreateCollection,
    ) -> Result<bool, ApiError> {
        self.quotas.check_write()?;
        self.run(move |db| db.create_collection(&name, request).map(|_| true)).await
    }

    /// Deletes a collection (by name) and the issues reported about it.
    pub async fn delete_collection(&self, name: String) -> Result<bool, ApiError> {
        let issues = self.issues.clone();
        self.run(move |db| {
            let deleted = db.delete_collection(&name)?;
            issues.collection_deleted(&name);
            Ok(deleted)
        })
        .await
    }

    /// Runs a batch of queries against one collection.
    pub async fn query_batch(
        &self,
        collection: String,
        queries: Vec<PointsQuery>,
        consistency: ReadConsistency,
    ) -> Result<Vec<Vec<ScoredPoint>>, ApiError> {
        let service = self.clone();
        let f = move |db: &Database| {
            let c = service.read_handle(db, &collection)?.with_consistency(consistency, None);
            queries.into_iter().map(|q| run_query(db, &c, q)).collect::<Result<Vec<_>>>()
        };
        // A single node runs queries right here on the async worker that decoded the request: a search
        // is a fraction of a millisecond of CPU, and the hand-off to the blocking pool and back cost
        // two thread wake-ups per request (A/B in one quiet window: gRPC 5,200 / 5,278 -> 6,745 / 6,974
        // QPS, REST 5,942 / 5,376 -> 5,853 / 6,424; benches/README). A cluster node's queries may wait
        // on other nodes, so they keep the blocking pool.
        if self.cluster.is_none() {
            return f(&self.db).map_err(ApiError::from);
        }
        self.run(f).await
    }
}

/// A write is durable and applied when it returns; Qdrant reports it "acknowledged" to a caller that
/// did not ask to wait.
fn acknowledged_unless(wait: bool, mut result: UpdateResult) -> UpdateResult {
    if !wait {
        result.status = grape::UpdateStatus::Acknowledged;
    }
    result
}

fn index_result(wait: bool) -> UpdateResult {
    let status = if wait { grape::UpdateStatus::Completed } else { grape::UpdateStatus::Acknowledged };
    UpdateResult { operation_id: None, status }
}

/// Which points a write touches.
#[derive(Debug, Clone, PartialEq)]
pub enum PointsSelector {
    Ids(Vec<PointId>),
    Filter(Filter),
}

/// One write of a batch update.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOperation {
    Upsert(Vec<PointStruct>),
    Delete(PointsSelector),
    SetPayload {
        selector: PointsSelector,
        payload: Payload,
        key: Option<String>,
    },
    OverwritePayload {
        selector: PointsSelector,
        payload: Payload,
    },
    DeletePayload {
        selector: PointsSelector,
        keys: Vec<String>,
    },
    ClearPayload(PointsSelector),
    /// Replace the given named vectors of existing points.
    UpdateVectors(Vec<(PointId, grape::VectorStruct)>),
    /// Remove named vectors from points.
    DeleteVectors {
        selector: PointsSelector,
        names: Vec<String>,
    },
}

impl UpdateOperation {
    /// Whether the write stores more data (resource quotas refuse those when a limit is crossed;
    /// deletions always pass, so a full node can be emptied).
    pub fn adds_data(&self) -> bool {
        matches!(
            self,
            UpdateOperation::Upsert(_)
                | UpdateOperation::SetPayload { .. }
                | UpdateOperation::OverwritePayload { .. }
                | UpdateOperation::UpdateVectors(_)
        )
    }
}

fn apply_update(c: &Collection, op: UpdateOperation) -> Result<UpdateResult> {
    match op {
        UpdateOperation::Upsert(points) => c.upsert(points),
        UpdateOperation::Delete(PointsSelector::Ids(ids)) => c.delete(ids),
        UpdateOperation::Delete(PointsSelector::Filter(f)) => c.delete_by_filter(f),
        UpdateOperation::SetPayload { selector: PointsSelector::Ids(ids), payload, key } => {
            c.set_payload(ids, payload, key)
        }
        UpdateOperation::SetPayload { selector: PointsSelector::Filter(f), payload, key } => {
            c.set_payload_by_filter(f, payload, key)
        }
        UpdateOperation::OverwritePayload { selector, payload } => {
            with_ids(c, selector, |ids| c.overwrite_payload(ids, payload))
        }
        UpdateOperation::DeletePayload { selector, keys } => {
            with_ids(c, selector, |ids| c.delete_payload(ids, keys))
        }
        UpdateOperation::ClearPayload(selector) => with_ids(c, selector, |ids| c.clear_payload(ids)),
        UpdateOperation::UpdateVectors(points) => c.update_vectors(points),
        UpdateOperation::DeleteVectors { selector, names } => {
            with_ids(c, selector, |ids| c.delete_vectors(ids, names))
        }
    }
}

/// Resolves a selector to ids (a filter is evaluated now) and runs `f`; nothing matching is a no-op.
fn with_ids(
    c: &Collection,
    selector: PointsSelector,
    f: impl FnOnce(Vec<PointId>) -> Result<UpdateResult>,
) -> Result<UpdateResult> {
    let ids = match selector {
        PointsSelector::Ids(ids) => ids,
        PointsSelector::Filter(filter) => matching_ids(c, filter)?,
    };
    if ids.is_empty() {
        return Ok(UpdateResult { operation_id: None, status: grape::UpdateStatus::Completed });
    }
    f(ids)
}

fn matching_ids(c: &Collection, filter: Filter) -> Result<Vec<PointId>> {
    let mut ids = Vec::new();
    let mut req = ScrollRequest {
        offset: None,
        limit: 10_000,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Enable(false),
        filter: Some(filter),
    };
    loop {
        let page = c.scroll(&req)?;
        ids.extend(page.points.iter().map(|r| r.id));
        match page.next_page_offset {
            Some(next) => req.offset = Some(next),
            None => return Ok(ids),
        }
    }
}

/// Counts points, exactly.
pub fn count(c: &Collection, filter: Option<Filter>) -> Result<usize> {
    c.count(&CountRequest { exact: true, filter })
}
