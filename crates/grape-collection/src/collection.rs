//! [`Collection`]: configuration plus shards, with validation, routing and merging.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use grape_shard::local_shard::OptimizerStatus;
use grape_shard::{LocalShard, ShardOptions};
use grape_types::{
    CollectionConfig, CountRequest, Error, Filter, Modifier, MultiSearchRequest, NamedVectorSearch,
    NewVector, OpNum, Operation, Payload, PointId, PointStruct, ReadConsistency, Record, Result, ScoredPoint,
    ScrollRequest, ScrollResult, SearchRequest, ShardKey, ShardKeySelector, SparseSearchRequest,
    SparseVector, UpdateCollection, VectorShape, WithPayload, WithVector, WriteAck,
};
use parking_lot::RwLock;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::info::{CollectionInfo, CollectionStats, CollectionStatus, OkTag, OptimizerStatusInfo};
use crate::shard_access::ShardAccess;
use crate::{slots, validate};

/// Result of a write, as Qdrant reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpdateResult {
    pub operation_id: Option<OpNum>,
    pub status: UpdateStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    Acknowledged,
    Completed,
}

/// A collection: configuration and shards. A handle either reaches every shard (as the database hands
/// it out) or, made by [`Collection::select`], only the shards of some shard keys; handles are cheap
/// to clone and share one state.
#[derive(Clone)]
pub struct Collection {
    inner: Arc<Inner>,
    /// `None`: every shard of the current layout (looked up at each call); `Some`: a fixed selection.
    scope: Option<Arc<Route>>,
    /// How up to date this handle's reads must be ([`Collection::with_consistency`]).
    read: ReadConsistency,
    /// When this handle's writes are acknowledged; `None`: the collection's default.
    ack: Option<WriteAck>,
    /// Told of this handle's filtered reads ([`Collection::watched`]).
    watch: Option<Arc<dyn FilterWatch>>,
}

/// Told of every filtered read (search, scroll, count and what is built on them) of a handle made by
/// [`Collection::watched`], before it runs: the API layer's unindexed-field report uses it. Called on
/// the reading thread, so an implementation must be cheap.
pub trait FilterWatch: Send + Sync {
    fn filtered_read(&self, collection: &Collection, filter: &Filter);
}

struct Inner {
    name: String,
    dir: PathBuf,
    config: RwLock<CollectionConfig>,
    /// Every shard, replaced whole when shard keys come and go (under the config's write lock).
    layout: RwLock<Arc<Route>>,
}

/// One shard as the collection holds it.
#[derive(Clone)]
pub struct ShardHandle {
    pub id: u32,
    /// The shard key owning the shard (custom sharding).
    pub key: Option<ShardKey>,
    pub shard: Arc<dyn ShardAccess>,
}

/// Shards that take writes together: all shards (auto sharding) or the shards of one key. A point
/// goes to the group's shard its slot falls in.
#[derive(Clone)]
struct ShardGroup {
    key: Option<ShardKey>,
    shards: Vec<Arc<dyn ShardAccess>>,
}

impl ShardGroup {
    fn shard_for(&self, id: &PointId) -> usize {
        slots::contiguous_shard(self.shards.len() as u32, id) as usize
    }
}

/// Where a request goes: its shard groups, and the flat list of their shards for reads.
struct Route {
    groups: Vec<ShardGroup>,
    shards: Vec<Arc<dyn ShardAccess>>,
    /// Writes without a shard key are refused (an unscoped handle of a custom-sharded collection).
    needs_key: bool,
}

impl Route {
    fn new(groups: Vec<ShardGroup>, needs_key: bool) -> Route {
        let shards = groups.iter().flat_map(|g| g.shards.iter().cloned()).collect();
        Route { groups, shards, needs_key }
    }
}

/// Every shard of `config`, grouped: one group of all shards, or one per shard key.
fn layout_of(config: &CollectionConfig, handles: &[ShardHandle]) -> Result<Route> {
    let by_id = |id: u32| {
        handles
            .iter()
            .find(|h| h.id == id)
            .map(|h| Arc::clone(&h.shard))
            .ok_or_else(|| Error::Internal(format!("no handle for shard {id}")))
    };
    if !config.params.is_custom_sharded() {
        let shards = (0..config.params.shard_number).map(by_id).collect::<Result<Vec<_>>>()?;
        return Ok(Route::new(vec![ShardGroup { key: None, shards }], false));
    }
    let groups = config
        .shard_keys
        .keys
        .iter()
        .map(|k| {
            let shards = k.shards.iter().map(|&id| by_id(id)).collect::<Result<Vec<_>>>()?;
            Ok(ShardGroup { key: Some(k.key.clone()), shards })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Route::new(groups, true))
}

impl Collection {
    /// Opens (or creates) the collection's shards under `dir`. Shard directories the configuration
    /// does not name (left by a shard key creation or deletion a crash interrupted) are removed.
    pub fn open(
        name: &str,
        dir: &Path,
        config: CollectionConfig,
        options: ShardOptions,
    ) -> Result<Collection> {
        config.validate()?;
        let ids = config.shard_ids();
        remove_unlisted_shards(dir, &ids)?;
        let shards = Self::open_local_shards(dir, &config, &options, &ids)?
            .into_iter()
            .map(|(_, shard)| shard)
            .collect();
        let collection = Self::with_shards(name, dir, config, shards)?;
        collection.converge_vectors()?;
        Ok(collection)
    }

    /// Opens the local shards `ids` of a collection in `dir` (created when missing).
    pub fn open_local_shards(
        dir: &Path,
        config: &CollectionConfig,
        options: &ShardOptions,
        ids: &[u32],
    ) -> Result<Vec<(u32, Arc<dyn ShardAccess>)>> {
        ids.iter()
            .map(|&i| {
                let shard = LocalShard::open(&shard_dir(dir, i), config.clone(), options.clone())?;
                Ok((i, Arc::new(Arc::new(shard)) as Arc<dyn ShardAccess>))
            })
            .collect()
    }

    /// A collection over shards opened elsewhere (cluster mode: one handle per shard, routed through
    /// its replica group). `shards` are in the order of [`CollectionConfig::shard_ids`].
    pub fn with_shards(
        name: &str,
        dir: &Path,
        config: CollectionConfig,
        shards: Vec<Arc<dyn ShardAccess>>,
    ) -> Result<Collection> {
        config.validate()?;
        let ids = config.shard_ids();
        if shards.len() != ids.len() {
            return Err(Error::Internal(format!(
                "collection {name}: {} shard handles for {} shards",
                shards.len(),
                ids.len()
            )));
        }
        let handles: Vec<ShardHandle> = ids
            .into_iter()
            .zip(shards)
            .map(|(id, shard)| ShardHandle { id, key: config.shard_keys.key_of(id).cloned(), shard })
            .collect();
        let layout = layout_of(&config, &handles)?;
        Ok(Collection {
            inner: Arc::new(Inner {
                name: name.to_string(),
                dir: dir.to_path_buf(),
                config: RwLock::new(config),
                layout: RwLock::new(Arc::new(layout)),
            }),
            read: ReadConsistency::default(),
            ack: None,
            scope: None,
            watch: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn config(&self) -> CollectionConfig {
        self.inner.config.read().clone()
    }

    /// Every shard with its id and key, in id order (for snapshots, cluster information and tools).
    pub fn shards(&self) -> Vec<ShardHandle> {
        self.config_and_shards().1
    }

    /// The configuration and the shards, taken together (a snapshot needs both to agree).
    pub fn config_and_shards(&self) -> (CollectionConfig, Vec<ShardHandle>) {
        let config = self.inner.config.read();
        let shards = self.shards_locked(&config);
        (config.clone(), shards)
    }

    fn shards_locked(&self, config: &CollectionConfig) -> Vec<ShardHandle> {
        let layout = self.inner.layout.read();
        let mut all: Vec<ShardHandle> = layout
            .groups
            .iter()
            .flat_map(|g| g.shards.iter().map(move |s| (g.key.clone(), s)))
            .zip(config.shard_ids())
            .map(|((key, shard), id)| ShardHandle { id, key, shard: Arc::clone(shard) })
            .collect();
        all.sort_by_key(|h| h.id);
        all
    }

    /// A handle on the shards of the keys `selector` names (`None`: this handle). Reads through it
    /// see only those shards; writes go to each named key (to the fallback when the target key does
    /// not exist). An unknown key, or a key on a collection without custom sharding, is an error.
    pub fn select(&self, selector: Option<&ShardKeySelector>) -> Result<Collection> {
        let Some(selector) = selector else { return Ok(self.clone()) };
        let layout = self.route();
        let find = |key: &ShardKey| layout.groups.iter().find(|g| g.key.as_ref() == Some(key));
        let keys: Vec<&ShardKey> = match selector {
            ShardKeySelector::One(key) => vec![key],
            ShardKeySelector::Many(keys) => keys.iter().collect(),
            ShardKeySelector::WithFallback(f) => {
                vec![if find(&f.target).is_some() { &f.target } else { &f.fallback }]
            }
        };
        if keys.is_empty() {
            return Err(Error::bad_input("shard_key: at least one shard key is required"));
        }
        let mut groups: Vec<ShardGroup> = Vec::new();
        for key in keys {
            let group = find(key).ok_or_else(|| grape_types::shard_key::not_found(key))?;
            if !groups.iter().any(|g| g.key.as_ref() == Some(key)) {
                groups.push(group.clone());
            }
        }
        Ok(Collection { scope: Some(Arc::new(Route::new(groups, false))), ..self.clone() })
    }

    /// A handle whose reads are as up to date as `read` asks and whose writes are acknowledged per
    /// `ack` (`None`: the collection's `write_consistency_factor`). Only replicated shards (cluster mode)
    /// behave differently: a local shard's reads always see every acknowledged write, and its writes
    /// are durable and applied when acknowledged.
    pub fn with_consistency(&self, read: ReadConsistency, ack: Option<WriteAck>) -> Collection {
        Collection { read, ack: ack.or(self.ack), ..self.clone() }
    }

    /// A handle whose filtered reads are reported to `watch` (writes selecting points by filter are not).
    pub fn watched(&self, watch: Arc<dyn FilterWatch>) -> Collection {
        Collection { watch: Some(watch), ..self.clone() }
    }

    /// Validates a read's filter and tells the watch, if any.
    fn check_read_filter(&self, filter: Option<&Filter>) -> Result<()> {
        let Some(filter) = filter else { return Ok(()) };
        filter.validate()?;
        if let Some(watch) = &self.watch {
            watch.filtered_read(self, filter);
        }
        Ok(())
    }

    /// The declared payload index of `key`, if any.
    pub fn payload_index(&self, key: &str) -> Option<grape_types::PayloadFieldSchema> {
        self.inner.config.read().payload_schema.get(key).cloned()
    }

    /// The answer to a write of this handle: `acknowledged` when the shards took it asynchronously
    /// (no op_num yet), else `completed`.
    fn written(&self, last: Option<OpNum>) -> UpdateResult {
        let status = if last.is_none() && self.write_ack() == WriteAck::Async {
            UpdateStatus::Acknowledged
        } else {
            UpdateStatus::Completed
        };
        UpdateResult { operation_id: last, status }
    }

    /// When this handle's writes are acknowledged.
    fn write_ack(&self) -> WriteAck {
        self.ack.unwrap_or_else(|| {
            let c = self.inner.config.read();
            WriteAck::of_collection(c.params.write_consistency_factor, c.params.replication_factor)
        })
    }

    /// Where this handle's requests go (for linearizable reads: the shards' leader-reading handles).
    fn route(&self) -> Arc<Route> {
        let route = match &self.scope {
            Some(route) => Arc::clone(route),
            None => Arc::clone(&self.inner.layout.read()),
        };
        if !self.read.linearizable() {
            return route;
        }
        let groups = route
            .groups
            .iter()
            .map(|g| ShardGroup {
                key: g.key.clone(),
                shards: g.shards.iter().map(|s| s.linearizable().unwrap_or_else(|| Arc::clone(s))).collect(),
            })
            .collect();
        Arc::new(Route::new(groups, route.needs_key))
    }

    /// The shard groups a write goes to.
    fn write_groups(&self) -> Result<Vec<ShardGroup>> {
        let route = self.route();
        if route.needs_key {
            return Err(Error::bad_input("Shard key not specified"));
        }
        Ok(route.groups.clone())
    }

    /// The replicas of this collection's shards held by this process.
    fn local_shards(&self) -> Vec<Arc<LocalShard>> {
        self.inner.layout.read().shards.iter().filter_map(|s| s.local()).collect()
    }

    // ---- shard keys ----

    /// The shard keys in creation order (custom sharding; empty otherwise).
    pub fn shard_keys(&self) -> Vec<ShardKey> {
        self.inner.config.read().shard_keys.keys.iter().map(|k| k.key.clone()).collect()
    }

    /// Adopts `next` (the current configuration with shard keys added or removed) and the handles of
    /// its new shards. Returns the handles of the shards `next` no longer has: the caller closes them
    /// and deletes their data.
    pub fn apply_layout(
        &self,
        next: CollectionConfig,
        added: Vec<(u32, Arc<dyn ShardAccess>)>,
    ) -> Result<Vec<ShardHandle>> {
        next.validate()?;
        let mut config = self.inner.config.write();
        let mut handles = self.shards_locked(&config);
        handles.extend(added.into_iter().map(|(id, shard)| ShardHandle {
            id,
            key: next.shard_keys.key_of(id).cloned(),
            shard,
        }));
        let keep = next.shard_ids();
        let (kept, removed): (Vec<_>, Vec<_>) = handles.into_iter().partition(|h| keep.contains(&h.id));
        let layout = layout_of(&next, &kept)?;
        for s in layout.shards.iter().filter_map(|s| s.local()) {
            s.set_config(next.clone());
        }
        *self.inner.layout.write() = Arc::new(layout);
        *config = next;
        Ok(removed)
    }

    // ---- writes ----

    /// Inserts or replaces points. The whole batch is validated first: on error nothing is written.
    pub fn upsert(&self, points: Vec<PointStruct>) -> Result<UpdateResult> {
        let groups = self.write_groups()?;
        let mut writes = validate::prepare_points(&self.inner.config.read(), points)?;
        let mut last = None;
        for (i, group) in groups.iter().enumerate() {
            // The same points go to every named key; the last key takes them without a copy.
            let batch = if i + 1 == groups.len() { std::mem::take(&mut writes) } else { writes.clone() };
            let mut per_shard: Vec<Vec<_>> = vec![Vec::new(); group.shards.len()];
            for w in batch {
                per_shard[group.shard_for(&w.id)].push(w);
            }
            last = write_split(group, per_shard, self.write_ack(), Operation::Upsert)?.operation_id.max(last);
        }
        Ok(self.written(last))
    }

    pub fn delete(&self, ids: Vec<PointId>) -> Result<UpdateResult> {
        self.write_ids(ids, Operation::Delete)
    }

    /// Deletes every point that passes `filter` (on every shard).
    pub fn delete_by_filter(&self, filter: Filter) -> Result<UpdateResult> {
        filter.validate()?;
        self.write_all_shards(&Operation::DeleteByFilter { filter })
    }

    /// Merges `payload` into the payload of every point that passes `filter`.
    pub fn set_payload_by_filter(
        &self,
        filter: Filter,
        payload: Payload,
        key: Option<String>,
    ) -> Result<UpdateResult> {
        filter.validate()?;
        self.write_all_shards(&Operation::SetPayloadByFilter { filter, payload, key })
    }

    /// Replaces the given named vectors of existing points (their other vectors and payload stay).
    /// Every id must be stored (404 otherwise) and every vector valid; on error nothing is written.
    pub fn update_vectors(&self, points: Vec<(PointId, grape_types::VectorStruct)>) -> Result<UpdateResult> {
        let ids: Vec<PointId> = points.iter().map(|(id, _)| *id).collect();
        let prepared = validate::prepare_points(
            &self.inner.config.read(),
            points.into_iter().map(|(id, vectors)| PointStruct { id, vectors, payload: None }).collect(),
        )?;
        if prepared.iter().any(|p| p.vectors.is_empty()) {
            return Err(Error::bad_input("points: every point needs at least one vector to update"));
        }
        self.require_existing(&ids)?;
        let by_id: std::collections::HashMap<PointId, grape_types::NamedVectors> =
            prepared.into_iter().map(|p| (p.id, p.vectors)).collect();
        self.write_ids(ids, |ids| Operation::UpdateVectors {
            points: ids.into_iter().map(|id| (id, by_id[&id].clone())).collect(),
        })
    }

    /// Removes the named vectors from existing points.
    pub fn delete_vectors(&self, ids: Vec<PointId>, names: Vec<String>) -> Result<UpdateResult> {
        if names.is_empty() {
            return Err(Error::bad_input("vector: at least one vector name is required"));
        }
        {
            let config = self.inner.config.read();
            if let Some(name) =
                names.iter().find(|n| config.params.vectors.get(n).is_none() && config.sparse(n).is_none())
            {
                return Err(grape_types::VectorsConfig::missing(name));
            }
        }
        self.require_existing(&ids)?;
        self.write_ids(ids, |points| Operation::DeleteVectors { points, names: names.clone() })
    }

    /// Adds the vector `name` (Qdrant's `PUT /collections/{c}/vectors/{name}`): every shard applies it
    /// through its log, then the configuration gains it. No point has a value for it yet; upserts may
    /// carry one from now on. Returns the new configuration, for the caller to persist.
    pub fn create_vector(&self, name: &str, vector: &NewVector) -> Result<(UpdateResult, CollectionConfig)> {
        let mut config = self.inner.config.write();
        let next = config.with_vector(name, vector)?;
        let op = Operation::CreateVector { name: name.to_string(), vector: vector.clone() };
        let result = self.write_every_shard(&op)?;
        *config = next.clone();
        Ok((result, next))
    }

    /// Drops the vector `name` and every value stored for it (Qdrant's
    /// `DELETE /collections/{c}/vectors/{name}`). Returns the new configuration, for the caller to persist.
    pub fn delete_vector(&self, name: &str) -> Result<(UpdateResult, CollectionConfig)> {
        let mut config = self.inner.config.write();
        let next = config.without_vector(name)?;
        let result = self.write_every_shard(&Operation::DeleteVector { name: name.to_string() })?;
        *config = next.clone();
        Ok((result, next))
    }

    /// After an open: a vector change that a crash interrupted (some shards logged it, the stored
    /// configuration does not have it yet) is finished. The shards' logs are the record of it: the
    /// first shard whose vectors differ from the configuration's has the change, the others get it
    /// through their logs and the configuration adopts it.
    fn converge_vectors(&self) -> Result<()> {
        let shapes = |schema: &[(String, NewVector)]| -> std::collections::BTreeMap<String, VectorShape> {
            schema.iter().map(|(n, v)| (n.clone(), v.shape())).collect()
        };
        let mut config = self.inner.config.write();
        let declared = config.vector_shapes();
        let schemas: Vec<_> =
            self.local_shards().iter().map(|s| s.engine().config().vector_schema()).collect();
        let Some(target) = schemas.iter().find(|s| shapes(s) != declared).cloned() else { return Ok(()) };
        let wanted = shapes(&target);
        let shards = self.inner.layout.read().shards.clone();
        for shard in &shards {
            let Some(local) = shard.local() else { continue };
            let have = local.engine().config().vector_shapes();
            for name in have.keys().filter(|n| !wanted.contains_key(*n)) {
                shard.update(&Operation::DeleteVector { name: name.clone() }, WriteAck::Quorum)?;
            }
            for (name, vector) in target.iter().filter(|(n, v)| have.get(n) != Some(&v.shape())) {
                shard.update(
                    &Operation::CreateVector { name: name.clone(), vector: vector.clone() },
                    WriteAck::Quorum,
                )?;
            }
        }
        tracing::info!(collection = self.name(), "finished an interrupted change of vectors");
        *config = config.with_schema(&target);
        Ok(())
    }

    /// Applies `op` to every shard of the collection, whatever this handle's scope or shard keys
    /// (a change of the collection's vectors).
    fn write_every_shard(&self, op: &Operation) -> Result<UpdateResult> {
        // Called under the configuration's write lock: acknowledged on commit, whatever this handle's
        // level (which would read the configuration).
        let shards = self.inner.layout.read().shards.clone();
        let mut last = None;
        for shard in &shards {
            last = shard.update(op, WriteAck::Quorum)?.max(last);
        }
        Ok(UpdateResult { operation_id: last, status: UpdateStatus::Completed })
    }

    fn write_all_shards(&self, op: &Operation) -> Result<UpdateResult> {
        let ack = self.write_ack();
        let mut pending = Vec::new();
        for group in self.write_groups()? {
            pending.extend(group.shards.iter().map(|shard| shard.start_update(op, ack)));
        }
        let last = crate::shard_access::wait_all(pending)?;
        Ok(self.written(last))
    }

    /// Merges `payload` into each point's payload (at the dotted path `key` when given).
    pub fn set_payload(
        &self,
        ids: Vec<PointId>,
        payload: Payload,
        key: Option<String>,
    ) -> Result<UpdateResult> {
        self.require_existing(&ids)?;
        self.write_ids(ids, |points| Operation::SetPayload {
            points,
            payload: payload.clone(),
            key: key.clone(),
        })
    }

    pub fn overwrite_payload(&self, ids: Vec<PointId>, payload: Payload) -> Result<UpdateResult> {
        self.require_existing(&ids)?;
        self.write_ids(ids, |points| Operation::OverwritePayload { points, payload: payload.clone() })
    }

    pub fn delete_payload(&self, ids: Vec<PointId>, keys: Vec<String>) -> Result<UpdateResult> {
        if keys.is_empty() {
            return Err(Error::bad_input("keys: at least one payload key is required"));
        }
        self.require_existing(&ids)?;
        self.write_ids(ids, |points| Operation::DeletePayloadKeys { points, keys: keys.clone() })
    }

    pub fn clear_payload(&self, ids: Vec<PointId>) -> Result<UpdateResult> {
        self.require_existing(&ids)?;
        self.write_ids(ids, |points| Operation::ClearPayload { points })
    }

    /// Payload edits by id name their points: an id that is not stored is an error (404), as in Qdrant,
    /// and nothing is written. A point deleted concurrently after this check is skipped by the apply.
    fn require_existing(&self, ids: &[PointId]) -> Result<()> {
        self.write_groups()?;
        let found = self.retrieve(ids, &WithPayload::Enable(false), &WithVector::Enable(false))?;
        if found.len() == ids.len() {
            return Ok(());
        }
        let present: std::collections::HashSet<PointId> = found.iter().map(|r| r.id).collect();
        match ids.iter().find(|id| !present.contains(id)) {
            Some(missing) => Err(Error::not_found(format!("No point with id {missing} found"))),
            None => Ok(()), // the same id listed twice
        }
    }

    fn write_ids(&self, ids: Vec<PointId>, make: impl Fn(Vec<PointId>) -> Operation) -> Result<UpdateResult> {
        if ids.is_empty() {
            return Err(Error::bad_input("points: at least one point id is required"));
        }
        let mut last = None;
        for group in &self.write_groups()? {
            let mut per_shard: Vec<Vec<PointId>> = vec![Vec::new(); group.shards.len()];
            for id in &ids {
                per_shard[group.shard_for(id)].push(*id);
            }
            last = write_split(group, per_shard, self.write_ack(), &make)?.operation_id.max(last);
        }
        Ok(self.written(last))
    }

    // ---- reads ----

    pub fn retrieve(
        &self,
        ids: &[PointId],
        with_payload: &WithPayload,
        with_vector: &WithVector,
    ) -> Result<Vec<Record>> {
        let route = self.route();
        if route.shards.len() == 1 {
            return route.shards[0].retrieve(ids, with_payload, with_vector);
        }
        let mut found = Vec::new();
        for shard in &route.shards {
            found.extend(shard.retrieve(ids, with_payload, with_vector)?);
        }
        // Request order, as a single shard returns it; an id stored under two shard keys once.
        let position = |id: &PointId| ids.iter().position(|x| x == id).unwrap_or(usize::MAX);
        found.sort_by_key(|r| position(&r.id));
        found.dedup_by_key(|r| r.id);
        Ok(found)
    }

    pub fn scroll(&self, req: &ScrollRequest) -> Result<ScrollResult> {
        if req.limit == 0 {
            return Err(Error::bad_input("limit: must be at least 1"));
        }
        self.check_read_filter(req.filter.as_ref())?;
        let route = self.route();
        if route.shards.len() == 1 {
            return route.shards[0].scroll(req);
        }
        let mut points = Vec::new();
        for shard in &route.shards {
            points.extend(shard.scroll(req)?.points);
        }
        points.sort_by_key(|r| r.id);
        points.dedup_by_key(|r| r.id);
        let next_page_offset = points.get(req.limit).map(|r| r.id);
        // Shards returned up to `limit` points each; one more point is needed to know the next offset.
        let next_page_offset = match next_page_offset {
            Some(id) => Some(id),
            None if points.len() == req.limit => {
                next_id_after(&route.shards, points.last().map(|r| r.id), req.filter.as_ref())?
            }
            None => None,
        };
        points.truncate(req.limit);
        Ok(ScrollResult { points, next_page_offset })
    }

    /// Exact number of points passing the request's filter.
    pub fn count(&self, req: &CountRequest) -> Result<usize> {
        self.check_read_filter(req.filter.as_ref())?;
        self.route().shards.iter().map(|s| s.count(req.filter.as_ref())).sum()
    }

    /// Nearest-neighbour search. Scores follow Qdrant's convention for the metric.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        if req.limit == 0 {
            return Err(Error::bad_input("limit: must be at least 1"));
        }
        self.check_read_filter(req.filter.as_ref())?;
        req.params.quantization.as_ref().map_or(Ok(()), |q| q.validate())?;
        let (query, distance) = {
            let config = self.inner.config.read();
            let query = validate::prepare_query(&config, &req.using, &req.vector)?;
            let distance = config.params.vectors.get(&req.using).map(|p| p.distance);
            (query, distance)
        };
        let mut prepared = req.clone();
        prepared.vector = query;
        let route = self.route();
        if route.shards.len() == 1 {
            return route.shards[0].search(&prepared);
        }
        prepared.limit = req.limit.saturating_add(req.offset);
        prepared.offset = 0;
        let per_shard = route.shards.par_iter().map(|s| s.search(&prepared)).collect::<Result<Vec<_>>>()?;
        Ok(merge_scored(per_shard, distance.is_some_and(|d| d.is_distance_like()), req.offset, req.limit))
    }

    /// Search by a sparse vector: points sharing at least one index with the query, by dot product
    /// (query values weighted by IDF over all shards when the vector's modifier is `idf`).
    pub fn search_sparse(&self, req: &SparseSearchRequest) -> Result<Vec<ScoredPoint>> {
        if req.limit == 0 {
            return Err(Error::bad_input("limit: must be at least 1"));
        }
        self.check_read_filter(req.filter.as_ref())?;
        let mut prepared = req.clone();
        let modifier = {
            let config = self.inner.config.read();
            prepared.vector = validate::prepare_sparse_query(&config, &req.using, req.vector.clone())?;
            config.sparse(&req.using).map(|p| p.modifier()).unwrap_or_default()
        };
        if modifier == Modifier::Idf {
            prepared.vector = self.weight_by_idf(&req.using, prepared.vector)?;
        }
        self.fan_out(prepared, false, |shard, r| shard.search_sparse(r))
    }

    /// Search by a multivector (MaxSim, exact). Scores follow the metric's convention.
    pub fn search_multi(&self, req: &MultiSearchRequest) -> Result<Vec<ScoredPoint>> {
        if req.limit == 0 {
            return Err(Error::bad_input("limit: must be at least 1"));
        }
        self.check_read_filter(req.filter.as_ref())?;
        let mut prepared = req.clone();
        let distance = {
            let config = self.inner.config.read();
            prepared.vector = validate::prepare_multi(&config, &req.using, req.vector.clone())?;
            config.params.vectors.get(&req.using).map(|p| p.distance)
        };
        self.fan_out(prepared, distance.is_some_and(|d| d.is_distance_like()), |shard, r| {
            shard.search_multi(r)
        })
    }

    /// Runs a prepared named-vector search on every shard (each returns its best `limit + offset`)
    /// and merges the answers.
    fn fan_out<V: Sync>(
        &self,
        mut req: NamedVectorSearch<V>,
        smaller_is_better: bool,
        search: impl Fn(&dyn ShardAccess, &NamedVectorSearch<V>) -> Result<Vec<ScoredPoint>> + Sync,
    ) -> Result<Vec<ScoredPoint>> {
        let route = self.route();
        if route.shards.len() == 1 {
            return search(route.shards[0].as_ref(), &req);
        }
        let (limit, offset) = (req.limit, req.offset);
        req.limit = limit.saturating_add(offset);
        req.offset = 0;
        let per_shard =
            route.shards.par_iter().map(|s| search(s.as_ref(), &req)).collect::<Result<Vec<_>>>()?;
        Ok(merge_scored(per_shard, smaller_is_better, offset, limit))
    }

    /// Whether `name` is a multivector.
    pub fn is_multivector(&self, name: &str) -> bool {
        self.inner.config.read().params.vectors.get(name).is_some_and(|p| p.is_multi())
    }

    /// Multiplies each query value by the inverse document frequency of its index among the live
    /// points that have the vector `name` (all shards).
    pub fn weight_by_idf(&self, name: &str, mut query: SparseVector) -> Result<SparseVector> {
        let mut docs = 0;
        let mut df = vec![0u64; query.indices.len()];
        for shard in &self.route().shards {
            let (n, d) = shard.sparse_document_frequencies(name, &query.indices)?;
            docs += n;
            df.iter_mut().zip(d).for_each(|(a, b)| *a += b);
        }
        query.values.iter_mut().zip(df).for_each(|(v, d)| *v *= grape_types::sparse::idf(d, docs));
        Ok(query)
    }

    pub fn search_batch(&self, reqs: &[SearchRequest]) -> Result<Vec<Vec<ScoredPoint>>> {
        reqs.iter().map(|r| self.search(r)).collect()
    }

    // ---- lifecycle and info ----

    /// Changes HNSW / optimizer parameters. Existing graphs keep their build parameters until rebuilt.
    pub fn update_params(&self, update: &UpdateCollection) -> Result<CollectionConfig> {
        let mut config = self.inner.config.write();
        let next = update.apply_to(&config)?;
        for s in self.local_shards() {
            s.set_config(next.clone());
        }
        *config = next.clone();
        Ok(next)
    }

    /// Adopts a whole new configuration (cluster mode, where configuration changes arrive committed):
    /// parameters and payload indexes of the replicas held here follow it.
    pub fn replace_config(&self, next: CollectionConfig) -> Result<()> {
        next.validate()?;
        {
            let mut config = self.inner.config.write();
            if config.shard_ids() != next.shard_ids() {
                return Err(Error::Internal(format!(
                    "collection {}: a configuration with other shards needs apply_layout",
                    self.inner.name
                )));
            }
            for s in self.local_shards() {
                s.set_config(next.clone());
            }
            *config = next;
        }
        for s in self.local_shards() {
            s.engine().sync_payload_indexes();
            s.wake();
        }
        Ok(())
    }

    /// Replaces the declared payload indexes; every sealed segment builds the new ones before this returns.
    pub fn set_payload_schema(
        &self,
        schema: std::collections::BTreeMap<String, grape_types::PayloadFieldSchema>,
    ) -> Result<CollectionConfig> {
        let mut next = self.config();
        next.payload_schema = schema;
        self.replace_config(next.clone())?;
        Ok(next)
    }

    pub fn flush(&self) -> Result<()> {
        self.local_shards().iter().try_for_each(|s| s.flush().map(|_| ()))
    }

    /// Seals pending writes and runs every pending optimization now, in this thread.
    pub fn optimize_now(&self) -> Result<()> {
        self.local_shards().iter().try_for_each(|s| s.optimize_now())
    }

    /// The optimizer state of every shard held by this process, by shard index.
    pub fn optimizations(&self) -> Vec<(u32, grape_shard::tracker::OptimizationsReport)> {
        self.shards().iter().filter_map(|h| Some((h.id, h.shard.local()?.engine().optimizations()))).collect()
    }

    pub fn close(&self) -> Result<()> {
        self.local_shards().iter().try_for_each(|s| s.close())
    }

    pub fn info(&self) -> Result<CollectionInfo> {
        let stats = self.stats();
        let config = self.config();
        let status = match (&stats.optimizer_error, stats.optimizing) {
            (Some(_), _) => CollectionStatus::Red,
            (None, true) => CollectionStatus::Yellow,
            (None, false) => CollectionStatus::Green,
        };
        Ok(CollectionInfo {
            status,
            optimizer_status: match stats.optimizer_error {
                Some(error) => OptimizerStatusInfo::Error { error },
                None => OptimizerStatusInfo::Ok(OkTag::Ok),
            },
            indexed_vectors_count: stats.indexed_vectors,
            points_count: stats.points,
            segments_count: stats.segments,
            config: CollectionConfig {
                payload_schema: Default::default(),
                shard_keys: Default::default(),
                ..config.clone()
            },
            payload_schema: config
                .payload_schema
                .iter()
                .map(|(key, schema)| {
                    let kind = schema.data_type();
                    let points: usize =
                        self.local_shards().iter().map(|s| s.engine().indexed_points(key, kind)).sum();
                    let mut info = serde_json::Map::new();
                    info.insert("data_type".into(), serde_json::json!(kind));
                    if let Some(p) = schema.params() {
                        info.insert("params".into(), serde_json::json!(p));
                    }
                    info.insert("points".into(), serde_json::json!(points));
                    (key.clone(), serde_json::Value::Object(info))
                })
                .collect(),
        })
    }

    pub fn stats(&self) -> CollectionStats {
        let mut s = CollectionStats {
            name: self.inner.name.clone(),
            points: 0,
            segments: 0,
            indexed_vectors: 0,
            ram_bytes: 0,
            disk_bytes: dir_size(&self.inner.dir),
            wal_bytes: 0,
            optimizing: false,
            optimizer_error: None,
            memory: Default::default(),
        };
        for handle in self.inner.layout.read().shards.iter() {
            let Some(shard) = handle.local() else {
                // A shard held only by other nodes: its points count, its storage is theirs.
                s.points += handle.count(None).unwrap_or(0);
                continue;
            };
            for seg in shard.engine().segment_stats() {
                s.points += seg.live_points;
                s.segments += 1;
                s.indexed_vectors += seg.indexed_vectors;
                s.ram_bytes += seg.ram_bytes;
                s.memory.add(&seg.memory);
            }
            s.wal_bytes += shard.wal_bytes();
            s.optimizing |= shard.is_optimizing();
            if let OptimizerStatus::Error(e) = shard.optimizer_status() {
                s.optimizer_error = Some(e);
            }
        }
        s
    }
}

/// Writes each shard's items of a group (empty ones skipped), the shards' writes in flight together.
fn write_split<T>(
    group: &ShardGroup,
    per_shard: Vec<Vec<T>>,
    ack: WriteAck,
    make: impl Fn(Vec<T>) -> Operation,
) -> Result<UpdateResult> {
    let pending: Vec<_> = per_shard
        .into_iter()
        .enumerate()
        .filter(|(_, items)| !items.is_empty())
        .map(|(i, items)| group.shards[i].start_update(&make(items), ack))
        .collect();
    let last = crate::shard_access::wait_all(pending)?;
    Ok(UpdateResult { operation_id: last, status: UpdateStatus::Completed })
}

/// The first id after `last` passing `filter` on any of `shards`.
fn next_id_after(
    shards: &[Arc<dyn ShardAccess>],
    last: Option<PointId>,
    filter: Option<&Filter>,
) -> Result<Option<PointId>> {
    let Some(last) = last else { return Ok(None) };
    let probe = ScrollRequest {
        offset: Some(last),
        limit: 2,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Enable(false),
        filter: filter.cloned(),
    };
    let mut next = None;
    for shard in shards {
        for r in shard.scroll(&probe)?.points {
            if r.id > last && next.is_none_or(|n| r.id < n) {
                next = Some(r.id);
            }
        }
    }
    Ok(next)
}

/// Merges the per-shard answers of a search best first, an id found in several shards (stored under
/// several shard keys) once with its best score, then applies `offset` and `limit`.
fn merge_scored(
    per_shard: Vec<Vec<ScoredPoint>>,
    smaller_is_better: bool,
    offset: usize,
    limit: usize,
) -> Vec<ScoredPoint> {
    let mut all: Vec<ScoredPoint> = per_shard.into_iter().flatten().collect();
    all.sort_by(|a, b| compare_scored(a, b, smaller_is_better));
    let mut seen = std::collections::HashSet::new();
    all.into_iter().filter(|p| seen.insert(p.id)).skip(offset).take(limit).collect()
}

fn shard_dir(dir: &Path, id: u32) -> PathBuf {
    dir.join("shards").join(id.to_string())
}

/// Removes shard directories of `dir` whose id is not in `ids`.
fn remove_unlisted_shards(dir: &Path, ids: &[u32]) -> Result<()> {
    let shards = dir.join("shards");
    let Ok(entries) = std::fs::read_dir(&shards) else { return Ok(()) };
    for entry in entries.flatten() {
        let id = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok());
        if id.is_some_and(|id| !ids.contains(&id)) {
            tracing::warn!(dir = %entry.path().display(), "removing a shard directory the collection does not list");
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| Error::io(format!("remove {}", entry.path().display()), e))?;
        }
    }
    Ok(())
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Orders scored points best first for a metric.
pub fn compare_scored(a: &ScoredPoint, b: &ScoredPoint, smaller_is_better: bool) -> Ordering {
    let by_score = a.score.total_cmp(&b.score);
    let by_score = if smaller_is_better { by_score } else { by_score.reverse() };
    by_score.then_with(|| a.id.cmp(&b.id))
}
