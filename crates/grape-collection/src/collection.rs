//! [`Collection`]: configuration plus shards, with validation, routing and merging.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use grape_shard::local_shard::OptimizerStatus;
use grape_shard::{LocalShard, ShardOptions};
use grape_types::{
    CollectionConfig, CountRequest, Error, Filter, Modifier, MultiSearchRequest, NamedVectorSearch,
    NewVector, OpNum, Operation, Payload, PointId, PointStruct, Record, Result, ScoredPoint, ScrollRequest,
    ScrollResult, SearchRequest, SparseSearchRequest, SparseVector, UpdateCollection, VectorShape,
    WithPayload, WithVector,
};
use parking_lot::RwLock;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::info::{CollectionInfo, CollectionStats, CollectionStatus, OkTag, OptimizerStatusInfo};
use crate::shard_access::ShardAccess;
use crate::slots::SlotTable;
use crate::validate;

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

pub struct Collection {
    name: String,
    dir: PathBuf,
    config: RwLock<CollectionConfig>,
    slots: SlotTable,
    shards: Vec<Arc<dyn ShardAccess>>,
}

impl Collection {
    /// Opens (or creates) the collection's shards under `dir`.
    pub fn open(
        name: &str,
        dir: &Path,
        config: CollectionConfig,
        options: ShardOptions,
    ) -> Result<Collection> {
        config.validate()?;
        let n = config.params.shard_number;
        let shards = (0..n)
            .map(|i| {
                let shard = LocalShard::open(
                    &dir.join("shards").join(i.to_string()),
                    config.clone(),
                    options.clone(),
                )?;
                Ok(Arc::new(Arc::new(shard)) as Arc<dyn ShardAccess>)
            })
            .collect::<Result<Vec<_>>>()?;
        let collection = Self::with_shards(name, dir, config, shards)?;
        collection.converge_vectors()?;
        Ok(collection)
    }

    /// A collection over shards opened elsewhere (cluster mode: one handle per shard, routed through
    /// its replica group). `shards[i]` holds the slots [`SlotTable::contiguous`] gives shard `i`.
    pub fn with_shards(
        name: &str,
        dir: &Path,
        config: CollectionConfig,
        shards: Vec<Arc<dyn ShardAccess>>,
    ) -> Result<Collection> {
        config.validate()?;
        if shards.len() != config.params.shard_number as usize {
            return Err(Error::Internal(format!(
                "collection {name}: {} shard handles for shard_number {}",
                shards.len(),
                config.params.shard_number
            )));
        }
        Ok(Collection {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            slots: SlotTable::contiguous(config.params.shard_number),
            config: RwLock::new(config),
            shards,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> CollectionConfig {
        self.config.read().clone()
    }

    /// Directly addressable shards (for tests and tools).
    pub fn shards(&self) -> &[Arc<dyn ShardAccess>] {
        &self.shards
    }

    /// The replicas of this collection's shards held by this process.
    fn local_shards(&self) -> impl Iterator<Item = Arc<LocalShard>> + '_ {
        self.shards.iter().filter_map(|s| s.local())
    }

    // ---- writes ----

    /// Inserts or replaces points. The whole batch is validated first: on error nothing is written.
    pub fn upsert(&self, points: Vec<PointStruct>) -> Result<UpdateResult> {
        let writes = validate::prepare_points(&self.config.read(), points)?;
        if self.shards.len() == 1 {
            return self.write_to(0, &Operation::Upsert(writes));
        }
        let mut per_shard: Vec<Vec<_>> = vec![Vec::new(); self.shards.len()];
        for w in writes {
            per_shard[self.slots.shard_for(&w.id) as usize].push(w);
        }
        self.write_split(per_shard, Operation::Upsert)
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
            &self.config.read(),
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
            let config = self.config.read();
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
        let mut config = self.config.write();
        let next = config.with_vector(name, vector)?;
        let op = Operation::CreateVector { name: name.to_string(), vector: vector.clone() };
        let result = self.write_all_shards(&op)?;
        *config = next.clone();
        Ok((result, next))
    }

    /// Drops the vector `name` and every value stored for it (Qdrant's
    /// `DELETE /collections/{c}/vectors/{name}`). Returns the new configuration, for the caller to persist.
    pub fn delete_vector(&self, name: &str) -> Result<(UpdateResult, CollectionConfig)> {
        let mut config = self.config.write();
        let next = config.without_vector(name)?;
        let result = self.write_all_shards(&Operation::DeleteVector { name: name.to_string() })?;
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
        let mut config = self.config.write();
        let declared = config.vector_shapes();
        let schemas: Vec<_> = self.local_shards().map(|s| s.engine().config().vector_schema()).collect();
        let Some(target) = schemas.iter().find(|s| shapes(s) != declared).cloned() else { return Ok(()) };
        let wanted = shapes(&target);
        for (i, shard) in self.shards.iter().enumerate() {
            let Some(local) = shard.local() else { continue };
            let have = local.engine().config().vector_shapes();
            for name in have.keys().filter(|n| !wanted.contains_key(*n)) {
                self.write_to(i, &Operation::DeleteVector { name: name.clone() })?;
            }
            for (name, vector) in target.iter().filter(|(n, v)| have.get(n) != Some(&v.shape())) {
                self.write_to(i, &Operation::CreateVector { name: name.clone(), vector: vector.clone() })?;
            }
        }
        tracing::info!(collection = self.name, "finished an interrupted change of vectors");
        *config = config.with_schema(&target);
        Ok(())
    }

    fn write_all_shards(&self, op: &Operation) -> Result<UpdateResult> {
        let mut last = None;
        for i in 0..self.shards.len() {
            last = self.write_to(i, op)?.operation_id.max(last);
        }
        Ok(UpdateResult { operation_id: last, status: UpdateStatus::Completed })
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
        if self.shards.len() == 1 {
            return self.write_to(0, &make(ids));
        }
        let mut per_shard: Vec<Vec<PointId>> = vec![Vec::new(); self.shards.len()];
        for id in ids {
            per_shard[self.slots.shard_for(&id) as usize].push(id);
        }
        self.write_split(per_shard, make)
    }

    fn write_split<T>(
        &self,
        per_shard: Vec<Vec<T>>,
        make: impl Fn(Vec<T>) -> Operation,
    ) -> Result<UpdateResult> {
        let mut last = None;
        for (i, items) in per_shard.into_iter().enumerate() {
            if !items.is_empty() {
                last = self.write_to(i, &make(items))?.operation_id.max(last);
            }
        }
        Ok(UpdateResult { operation_id: last, status: UpdateStatus::Completed })
    }

    fn write_to(&self, shard: usize, op: &Operation) -> Result<UpdateResult> {
        let op_num = self.shards[shard].update(op)?;
        Ok(UpdateResult { operation_id: Some(op_num), status: UpdateStatus::Completed })
    }

    // ---- reads ----

    pub fn retrieve(
        &self,
        ids: &[PointId],
        with_payload: &WithPayload,
        with_vector: &WithVector,
    ) -> Result<Vec<Record>> {
        if self.shards.len() == 1 {
            return self.shards[0].retrieve(ids, with_payload, with_vector);
        }
        let mut found = Vec::new();
        for shard in &self.shards {
            found.extend(shard.retrieve(ids, with_payload, with_vector)?);
        }
        // Request order, as a single shard returns it.
        let position = |id: &PointId| ids.iter().position(|x| x == id).unwrap_or(usize::MAX);
        found.sort_by_key(|r| position(&r.id));
        Ok(found)
    }

    pub fn scroll(&self, req: &ScrollRequest) -> Result<ScrollResult> {
        if req.limit == 0 {
            return Err(Error::bad_input("limit: must be at least 1"));
        }
        req.filter.as_ref().map_or(Ok(()), Filter::validate)?;
        if self.shards.len() == 1 {
            return self.shards[0].scroll(req);
        }
        let mut points = Vec::new();
        for shard in &self.shards {
            points.extend(shard.scroll(req)?.points);
        }
        points.sort_by_key(|r| r.id);
        let next_page_offset = points.get(req.limit).map(|r| r.id);
        // Shards returned up to `limit` points each; one more point is needed to know the next offset.
        let next_page_offset = match next_page_offset {
            Some(id) => Some(id),
            None if points.len() == req.limit => {
                self.next_id_after(points.last().map(|r| r.id), req.filter.as_ref())?
            }
            None => None,
        };
        points.truncate(req.limit);
        Ok(ScrollResult { points, next_page_offset })
    }

    fn next_id_after(&self, last: Option<PointId>, filter: Option<&Filter>) -> Result<Option<PointId>> {
        let Some(last) = last else { return Ok(None) };
        let probe = ScrollRequest {
            offset: Some(last),
            limit: 2,
            with_payload: WithPayload::Enable(false),
            with_vector: WithVector::Enable(false),
            filter: filter.cloned(),
        };
        let mut next = None;
        for shard in &self.shards {
            for r in shard.scroll(&probe)?.points {
                if r.id > last && next.is_none_or(|n| r.id < n) {
                    next = Some(r.id);
                }
            }
        }
        Ok(next)
    }

    /// Exact number of points passing the request's filter.
    pub fn count(&self, req: &CountRequest) -> Result<usize> {
        req.filter.as_ref().map_or(Ok(()), Filter::validate)?;
        self.shards.iter().map(|s| s.count(req.filter.as_ref())).sum()
    }

    /// Nearest-neighbour search. Scores follow Qdrant's convention for the metric.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<ScoredPoint>> {
        if req.limit == 0 {
            return Err(Error::bad_input("limit: must be at least 1"));
        }
        req.filter.as_ref().map_or(Ok(()), Filter::validate)?;
        req.params.quantization.as_ref().map_or(Ok(()), |q| q.validate())?;
        let (query, distance) = {
            let config = self.config.read();
            let query = validate::prepare_query(&config, &req.using, &req.vector)?;
            let distance = config.params.vectors.get(&req.using).map(|p| p.distance);
            (query, distance)
        };
        let mut prepared = req.clone();
        prepared.vector = query;
        if self.shards.len() == 1 {
            return self.shards[0].search(&prepared);
        }
        prepared.limit = req.limit.saturating_add(req.offset);
        prepared.offset = 0;
        let per_shard = self.shards.par_iter().map(|s| s.search(&prepared)).collect::<Result<Vec<_>>>()?;
        let mut all: Vec<ScoredPoint> = per_shard.into_iter().flatten().collect();
        let smaller_is_better = distance.is_some_and(|d| d.is_distance_like());
        all.sort_by(|a, b| compare_scored(a, b, smaller_is_better));
        Ok(all.into_iter().skip(req.offset).take(req.limit).collect())
    }

    /// Search by a sparse vector: points sharing at least one index with the query, by dot product
    /// (query values weighted by IDF over all shards when the vector's modifier is `idf`).
    pub fn search_sparse(&self, req: &SparseSearchRequest) -> Result<Vec<ScoredPoint>> {
        if req.limit == 0 {
            return Err(Error::bad_input("limit: must be at least 1"));
        }
        req.filter.as_ref().map_or(Ok(()), Filter::validate)?;
        let mut prepared = req.clone();
        let modifier = {
            let config = self.config.read();
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
        req.filter.as_ref().map_or(Ok(()), Filter::validate)?;
        let mut prepared = req.clone();
        let distance = {
            let config = self.config.read();
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
        if self.shards.len() == 1 {
            return search(self.shards[0].as_ref(), &req);
        }
        let (limit, offset) = (req.limit, req.offset);
        req.limit = limit.saturating_add(offset);
        req.offset = 0;
        let per_shard =
            self.shards.par_iter().map(|s| search(s.as_ref(), &req)).collect::<Result<Vec<_>>>()?;
        let mut all: Vec<ScoredPoint> = per_shard.into_iter().flatten().collect();
        all.sort_by(|a, b| compare_scored(a, b, smaller_is_better));
        Ok(all.into_iter().skip(offset).take(limit).collect())
    }

    /// Whether `name` is a multivector.
    pub fn is_multivector(&self, name: &str) -> bool {
        self.config.read().params.vectors.get(name).is_some_and(|p| p.is_multi())
    }

    /// Multiplies each query value by the inverse document frequency of its index among the live
    /// points that have the vector `name` (all shards).
    pub fn weight_by_idf(&self, name: &str, mut query: SparseVector) -> Result<SparseVector> {
        let mut docs = 0;
        let mut df = vec![0u64; query.indices.len()];
        for shard in &self.shards {
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
        let mut config = self.config.write();
        let next = update.apply_to(&config)?;
        for s in self.local_shards() {
            s.engine().set_config(next.clone());
        }
        *config = next.clone();
        Ok(next)
    }

    /// Adopts a whole new configuration (cluster mode, where configuration changes arrive committed):
    /// parameters and payload indexes of the replicas held here follow it.
    pub fn replace_config(&self, next: CollectionConfig) -> Result<()> {
        next.validate()?;
        {
            let mut config = self.config.write();
            for s in self.local_shards() {
                s.engine().set_config(next.clone());
            }
            *config = next;
        }
        for s in self.local_shards() {
            s.engine().sync_payload_indexes();
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
        self.local_shards().try_for_each(|s| s.flush().map(|_| ()))
    }

    /// Seals pending writes and runs every pending optimization now, in this thread.
    pub fn optimize_now(&self) -> Result<()> {
        self.local_shards().try_for_each(|s| s.optimize_now())
    }

    /// The optimizer state of every shard held by this process, by shard index.
    pub fn optimizations(&self) -> Vec<(u32, grape_shard::tracker::OptimizationsReport)> {
        self.shards
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i as u32, s.local()?.engine().optimizations())))
            .collect()
    }

    pub fn close(&self) -> Result<()> {
        self.local_shards().try_for_each(|s| s.close())
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
            config: CollectionConfig { payload_schema: Default::default(), ..config.clone() },
            payload_schema: config
                .payload_schema
                .iter()
                .map(|(key, schema)| {
                    let kind = schema.data_type();
                    let points: usize =
                        self.local_shards().map(|s| s.engine().indexed_points(key, kind)).sum();
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
            name: self.name.clone(),
            points: 0,
            segments: 0,
            indexed_vectors: 0,
            ram_bytes: 0,
            disk_bytes: dir_size(&self.dir),
            wal_bytes: 0,
            optimizing: false,
            optimizer_error: None,
            memory: Default::default(),
        };
        for handle in &self.shards {
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
