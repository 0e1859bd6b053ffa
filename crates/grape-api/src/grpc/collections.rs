//! `qdrant.Collections`: collections (create, get, update, delete, exists), aliases, shard keys, cluster
//! information and replica changes.

use std::collections::BTreeMap;
use std::time::Instant;

use grape::{
    AliasOperation, CollectionConfig, CollectionInfo, CollectionStatus, CreateCollection, Datatype, Distance,
    HnswConfig, HnswConfigDiff, Modifier, MultiVectorComparator, MultiVectorConfig, NewDenseVector,
    NewSparseVector, NewVector, OptimizersConfig, OptimizersConfigDiff, SparseIndexParams,
    SparseVectorParams, UpdateCollection, VectorParams, VectorParamsDiff, VectorsConfig, WalConfig,
    WalConfigDiff, DEFAULT_VECTOR_NAME,
};
use grape_proto::qdrant as pb;
use grape_proto::qdrant::collections_server::Collections;
use tonic::{Request, Response, Status};

use super::convert::{proto_shard_key, shard_key};
use super::quantization::{quantization_config, quantization_diff, quantization_out};
use super::{elapsed, invalid, status, unsupported, within, Access, State};
use crate::service::cluster::{ClusterOperation, DropReplica, DropShardingKey, ShardTransfer};

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Collections for State {
    async fn get(
        &self,
        request: Request<pb::GetCollectionInfoRequest>,
    ) -> Reply<pb::GetCollectionInfoResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let name = request.into_inner().collection_name;
        let info = self.service.run(move |db| db.collection_info(&name)).await.map_err(status)?;
        Ok(Response::new(pb::GetCollectionInfoResponse {
            result: Some(collection_info(info)),
            time: elapsed(start),
        }))
    }

    async fn list(&self, request: Request<pb::ListCollectionsRequest>) -> Reply<pb::ListCollectionsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let names = self.service.run(|db| db.list_collections()).await.map_err(status)?;
        Ok(Response::new(pb::ListCollectionsResponse {
            collections: names.into_iter().map(|name| pb::CollectionDescription { name }).collect(),
            time: elapsed(start),
        }))
    }

    async fn create(&self, request: Request<pb::CreateCollection>) -> Reply<pb::CollectionOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let (name, timeout) = (req.collection_name.clone(), req.timeout);
        let create = create_collection(req)?;
        let work = async { self.service.create_collection(name, create).await.map_err(status) };
        within(timeout, work).await?;
        Ok(Response::new(pb::CollectionOperationResponse { result: true, time: elapsed(start) }))
    }

    async fn update(&self, request: Request<pb::UpdateCollection>) -> Reply<pb::CollectionOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let (name, timeout) = (req.collection_name.clone(), req.timeout);
        let update = update_collection(req)?;
        let work =
            async { self.service.run(move |db| db.update_collection(&name, &update)).await.map_err(status) };
        within(timeout, work).await?;
        Ok(Response::new(pb::CollectionOperationResponse { result: true, time: elapsed(start) }))
    }

    async fn delete(&self, request: Request<pb::DeleteCollection>) -> Reply<pb::CollectionOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let name = req.collection_name;
        let work = async { self.service.delete_collection(name).await.map_err(status) };
        let deleted = within(req.timeout, work).await?;
        Ok(Response::new(pb::CollectionOperationResponse { result: deleted, time: elapsed(start) }))
    }

    async fn update_aliases(
        &self,
        request: Request<pb::ChangeAliases>,
    ) -> Reply<pb::CollectionOperationResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let actions = req.actions.into_iter().map(alias_operation).collect::<Result<Vec<_>, _>>()?;
        let work = async { self.service.run(move |db| db.update_aliases(&actions)).await.map_err(status) };
        within(req.timeout, work).await?;
        Ok(Response::new(pb::CollectionOperationResponse { result: true, time: elapsed(start) }))
    }

    async fn list_collection_aliases(
        &self,
        request: Request<pb::ListCollectionAliasesRequest>,
    ) -> Reply<pb::ListAliasesResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let name = request.into_inner().collection_name;
        let aliases = self.service.run(move |db| db.collection_aliases(&name)).await.map_err(status)?;
        Ok(Response::new(aliases_response(aliases, start)))
    }

    async fn list_aliases(&self, request: Request<pb::ListAliasesRequest>) -> Reply<pb::ListAliasesResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let aliases = self.service.run(|db| db.list_aliases()).await.map_err(status)?;
        Ok(Response::new(aliases_response(aliases, start)))
    }

    async fn collection_cluster_info(
        &self,
        request: Request<pb::CollectionClusterInfoRequest>,
    ) -> Reply<pb::CollectionClusterInfoResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let name = request.into_inner().collection_name;
        let info = self.service.collection_cluster_info(name).await.map_err(status)?;
        Ok(Response::new(pb::CollectionClusterInfoResponse {
            peer_id: info.peer_id,
            shard_count: info.shard_count as u64,
            local_shards: info
                .local_shards
                .into_iter()
                .map(|l| pb::LocalShardInfo {
                    shard_id: l.shard_id,
                    points_count: l.points_count as u64,
                    state: replica_state(&l.state),
                    shard_key: l.shard_key.as_ref().map(proto_shard_key),
                })
                .collect(),
            remote_shards: info
                .remote_shards
                .into_iter()
                .map(|r| pb::RemoteShardInfo {
                    shard_id: r.shard_id,
                    peer_id: r.peer_id,
                    state: replica_state(&r.state),
                    shard_key: r.shard_key.as_ref().map(proto_shard_key),
                })
                .collect(),
            shard_transfers: info
                .shard_transfers
                .into_iter()
                .map(|t| pb::ShardTransferInfo {
                    shard_id: t.shard_id,
                    to_shard_id: None,
                    from: t.from,
                    to: t.to,
                    sync: t.sync,
                })
                .collect(),
            resharding_operations: Vec::new(),
            time: elapsed(start),
        }))
    }

    async fn update_collection_cluster_setup(
        &self,
        request: Request<pb::UpdateCollectionClusterSetupRequest>,
    ) -> Reply<pb::UpdateCollectionClusterSetupResponse> {
        use pb::update_collection_cluster_setup_request::Operation as Op;
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let transfer = |shard_id, from_peer_id, to_peer_id| ShardTransfer {
            shard_id,
            from_peer_id,
            to_peer_id,
            method: None,
        };
        let op = match req.operation {
            None => return Err(invalid("operation: one of move_shard, replicate_shard, abort_transfer, drop_replica, create_shard_key, delete_shard_key, restart_transfer is required")),
            Some(Op::MoveShard(m)) => ClusterOperation::MoveShard(transfer(m.shard_id, m.from_peer_id, m.to_peer_id)),
            Some(Op::ReplicateShard(m)) => {
                ClusterOperation::ReplicateShard(transfer(m.shard_id, m.from_peer_id, m.to_peer_id))
            }
            Some(Op::AbortTransfer(m)) => {
                ClusterOperation::AbortTransfer(transfer(m.shard_id, m.from_peer_id, m.to_peer_id))
            }
            Some(Op::RestartTransfer(m)) => {
                ClusterOperation::RestartTransfer(transfer(m.shard_id, m.from_peer_id, m.to_peer_id))
            }
            Some(Op::DropReplica(r)) => ClusterOperation::DropReplica(DropReplica { shard_id: r.shard_id, peer_id: r.peer_id }),
            Some(Op::CreateShardKey(c)) => ClusterOperation::CreateShardingKey(create_shard_key(Some(c))?),
            Some(Op::DeleteShardKey(d)) => ClusterOperation::DropShardingKey(DropShardingKey {
                shard_key: shard_key(d.shard_key.ok_or_else(|| invalid("delete_shard_key.shard_key is required"))?)?,
            }),
            Some(Op::ReplicatePoints(_)) => return Err(unsupported("replicate_points (custom shard keys)")),
        };
        let work = async { self.service.update_cluster(req.collection_name, op).await.map_err(status) };
        let result = within(req.timeout, work).await?;
        Ok(Response::new(pb::UpdateCollectionClusterSetupResponse { result, time: elapsed(start) }))
    }

    async fn collection_exists(
        &self,
        request: Request<pb::CollectionExistsRequest>,
    ) -> Reply<pb::CollectionExistsResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let name = request.into_inner().collection_name;
        let exists = self.service.run(move |db| db.collection_exists(&name)).await.map_err(status)?;
        Ok(Response::new(pb::CollectionExistsResponse {
            result: Some(pb::CollectionExists { exists }),
            time: elapsed(start),
        }))
    }

    async fn create_shard_key(
        &self,
        request: Request<pb::CreateShardKeyRequest>,
    ) -> Reply<pb::CreateShardKeyResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let create = create_shard_key(req.request)?;
        let work = async { self.service.create_shard_key(req.collection_name, create).await.map_err(status) };
        let result = within(req.timeout, work).await?;
        Ok(Response::new(pb::CreateShardKeyResponse { result, time: elapsed(start) }))
    }

    async fn delete_shard_key(
        &self,
        request: Request<pb::DeleteShardKeyRequest>,
    ) -> Reply<pb::DeleteShardKeyResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Write)?;
        let req = request.into_inner();
        let key =
            req.request.and_then(|r| r.shard_key).ok_or_else(|| invalid("request.shard_key is required"))?;
        let key = shard_key(key)?;
        let work = async { self.service.delete_shard_key(req.collection_name, key).await.map_err(status) };
        let result = within(req.timeout, work).await?;
        Ok(Response::new(pb::DeleteShardKeyResponse { result, time: elapsed(start) }))
    }

    async fn list_shard_keys(
        &self,
        request: Request<pb::ListShardKeysRequest>,
    ) -> Reply<pb::ListShardKeysResponse> {
        let start = Instant::now();
        self.authorize(request.metadata(), Access::Read)?;
        let keys = self.service.shard_keys(request.into_inner().collection_name).await.map_err(status)?;
        Ok(Response::new(pb::ListShardKeysResponse {
            shard_keys: keys
                .unwrap_or_default()
                .iter()
                .map(|k| pb::ShardKeyDescription { key: Some(proto_shard_key(k)) })
                .collect(),
            time: elapsed(start),
        }))
    }
}

fn create_shard_key(req: Option<pb::CreateShardKey>) -> Result<grape::CreateShardKey, Status> {
    let req = req.ok_or_else(|| invalid("request is required"))?;
    let key = shard_key(req.shard_key.ok_or_else(|| invalid("request.shard_key is required"))?)?;
    let initial_state = match req.initial_state.map(pb::ReplicaState::try_from) {
        None => None,
        Some(Ok(state)) => Some(state.as_str_name().to_string()),
        Some(Err(_)) => return Err(invalid("initial_state: unknown replica state")),
    };
    Ok(grape::CreateShardKey {
        shard_key: key,
        shards_number: req.shards_number,
        replication_factor: req.replication_factor,
        placement: (!req.placement.is_empty()).then_some(req.placement),
        initial_state,
    })
}

/// A replica state by Qdrant's name (as REST reports it).
fn replica_state(name: &str) -> i32 {
    let state = match name {
        "Dead" => pb::ReplicaState::Dead,
        "Partial" => pb::ReplicaState::Partial,
        "Initializing" => pb::ReplicaState::Initializing,
        "Listener" => pb::ReplicaState::Listener,
        "PartialSnapshot" => pb::ReplicaState::PartialSnapshot,
        "Recovery" => pb::ReplicaState::Recovery,
        _ => pb::ReplicaState::Active,
    };
    state as i32
}

fn aliases_response(aliases: Vec<grape::AliasDescription>, start: Instant) -> pb::ListAliasesResponse {
    pb::ListAliasesResponse {
        aliases: aliases
            .into_iter()
            .map(|a| pb::AliasDescription { alias_name: a.alias_name, collection_name: a.collection_name })
            .collect(),
        time: elapsed(start),
    }
}

fn alias_operation(op: pb::AliasOperations) -> Result<AliasOperation, Status> {
    use pb::alias_operations::Action;
    Ok(
        match op
            .action
            .ok_or_else(|| invalid("actions: each action needs create_alias, rename_alias or delete_alias"))?
        {
            Action::CreateAlias(a) => {
                AliasOperation::CreateAlias { collection_name: a.collection_name, alias_name: a.alias_name }
            }
            Action::RenameAlias(a) => AliasOperation::RenameAlias {
                old_alias_name: a.old_alias_name,
                new_alias_name: a.new_alias_name,
            },
            Action::DeleteAlias(a) => AliasOperation::DeleteAlias { alias_name: a.alias_name },
        },
    )
}

// ---- create ----

fn create_collection(req: pb::CreateCollection) -> Result<CreateCollection, Status> {
    if req.strict_mode_config.is_some() {
        return Err(unsupported("strict_mode_config (strict mode)"));
    }
    if req.payload.is_some() {
        return Err(unsupported("payload (payload storage parameters)"));
    }
    if !req.metadata.is_empty() {
        return Err(unsupported("metadata (collection metadata)"));
    }
    let vectors = match req.vectors_config.and_then(|v| v.config) {
        Some(pb::vectors_config::Config::Params(p)) => VectorsConfig::Single(vector_params(p)?),
        Some(pb::vectors_config::Config::ParamsMap(m)) => VectorsConfig::Multi(
            m.map
                .into_iter()
                .map(|(k, p)| Ok((k, vector_params(p)?)))
                .collect::<Result<BTreeMap<_, _>, Status>>()?,
        ),
        None => VectorsConfig::Multi(BTreeMap::new()),
    };
    let mut create = CreateCollection::new(vectors);
    create.sparse_vectors = req.sparse_vectors_config.map(sparse_vectors_config).transpose()?;
    create.shard_number = req.shard_number;
    create.replication_factor = req.replication_factor;
    create.write_consistency_factor = req.write_consistency_factor;
    create.on_disk_payload = req.on_disk_payload;
    create.sharding_method = match req.sharding_method.map(pb::ShardingMethod::try_from) {
        None => None,
        Some(Ok(pb::ShardingMethod::Auto)) => Some(grape::ShardingMethod::Auto),
        Some(Ok(pb::ShardingMethod::Custom)) => Some(grape::ShardingMethod::Custom),
        Some(Err(_)) => return Err(invalid("sharding_method: unknown value")),
    };
    create.hnsw_config = req.hnsw_config.map(hnsw_diff).transpose()?;
    create.wal_config = req.wal_config.map(wal_diff).transpose()?;
    create.optimizers_config = req.optimizers_config.map(optimizers_diff).transpose()?;
    create.quantization_config = req.quantization_config.map(quantization_config).transpose()?;
    Ok(create)
}

// ---- update ----

fn update_collection(req: pb::UpdateCollection) -> Result<UpdateCollection, Status> {
    if req.strict_mode_config.is_some() {
        return Err(unsupported("strict_mode_config (strict mode)"));
    }
    if !req.metadata.is_empty() {
        return Err(unsupported("metadata (collection metadata)"));
    }
    if req.params.is_some_and(|p| p != pb::CollectionParamsDiff::default()) {
        return Err(unsupported("params (changing collection parameters)"));
    }
    let vectors = match req.vectors_config.and_then(|v| v.config) {
        None => None,
        Some(pb::vectors_config_diff::Config::Params(p)) => {
            Some([(DEFAULT_VECTOR_NAME.to_owned(), vector_params_diff(p)?)].into())
        }
        Some(pb::vectors_config_diff::Config::ParamsMap(m)) => Some(
            m.map
                .into_iter()
                .map(|(k, p)| Ok((k, vector_params_diff(p)?)))
                .collect::<Result<BTreeMap<_, _>, Status>>()?,
        ),
    };
    Ok(UpdateCollection {
        vectors,
        optimizers_config: req.optimizers_config.map(optimizers_diff).transpose()?,
        hnsw_config: req.hnsw_config.map(hnsw_diff).transpose()?,
        quantization_config: req.quantization_config.map(quantization_diff).transpose()?,
        sparse_vectors: req.sparse_vectors_config.map(sparse_vectors_config).transpose()?,
    })
}

fn vector_params_diff(p: pb::VectorParamsDiff) -> Result<VectorParamsDiff, Status> {
    no_memory(p.memory)?;
    Ok(VectorParamsDiff {
        hnsw_config: p.hnsw_config.map(hnsw_diff).transpose()?,
        on_disk: p.on_disk,
        quantization_config: p.quantization_config.map(quantization_diff).transpose()?,
    })
}

fn vector_params(p: pb::VectorParams) -> Result<VectorParams, Status> {
    no_memory(p.memory)?;
    let distance = match pb::Distance::try_from(p.distance) {
        Ok(pb::Distance::Cosine) => Distance::Cosine,
        Ok(pb::Distance::Euclid) => Distance::Euclid,
        Ok(pb::Distance::Dot) => Distance::Dot,
        Ok(pb::Distance::Manhattan) => Distance::Manhattan,
        _ => return Err(invalid(format!("vectors_config: unknown distance {}", p.distance))),
    };
    let multivector_config =
        match p.multivector_config.map(|m| pb::MultiVectorComparator::try_from(m.comparator)) {
            None => None,
            Some(Ok(pb::MultiVectorComparator::MaxSim)) => {
                Some(MultiVectorConfig { comparator: MultiVectorComparator::MaxSim })
            }
            Some(Err(_)) => return Err(invalid("multivector_config: unknown comparator")),
        };
    let size = usize::try_from(p.size).map_err(|_| invalid("vectors_config: size too large"))?;
    Ok(VectorParams {
        size,
        distance,
        hnsw_config: p.hnsw_config.map(hnsw_diff).transpose()?,
        on_disk: p.on_disk,
        datatype: datatype(p.datatype, "vectors_config")?,
        quantization_config: p.quantization_config.map(quantization_config).transpose()?,
        multivector_config,
    })
}

/// The vector of a `CreateVectorName` request, checked as collection creation checks its parameters.
pub(super) fn new_vector(config: pb::create_vector_name_request::VectorConfig) -> Result<NewVector, Status> {
    use pb::create_vector_name_request::VectorConfig;
    match config {
        VectorConfig::DenseConfig(d) => {
            let p = vector_params(pb::VectorParams {
                size: d.size,
                distance: d.distance,
                multivector_config: d.multivector_config,
                datatype: d.datatype,
                ..Default::default()
            })?;
            let dense = NewDenseVector {
                size: p.size,
                distance: p.distance,
                multivector_config: p.multivector_config,
                datatype: p.datatype,
            };
            Ok(NewVector::Dense(dense))
        }
        VectorConfig::SparseConfig(s) => {
            let index = s.datatype.map(|d| pb::SparseIndexConfig { datatype: Some(d), ..Default::default() });
            let p = sparse_vector_params(pb::SparseVectorParams { index, modifier: s.modifier })?;
            let sparse = NewSparseVector { modifier: p.modifier, datatype: p.index.and_then(|i| i.datatype) };
            Ok(NewVector::Sparse(sparse))
        }
    }
}

fn datatype(d: Option<i32>, what: &str) -> Result<Option<Datatype>, Status> {
    match d.map(pb::Datatype::try_from) {
        None | Some(Ok(pb::Datatype::Default)) => Ok(None),
        Some(Ok(pb::Datatype::Float32)) => Ok(Some(Datatype::Float32)),
        Some(Ok(pb::Datatype::Float16)) => Ok(Some(Datatype::Float16)),
        Some(Ok(pb::Datatype::Uint8)) => Ok(Some(Datatype::Uint8)),
        Some(Ok(pb::Datatype::Turbo4)) => Err(unsupported("datatype Turbo4")),
        Some(Err(_)) => Err(invalid(format!("{what}: unknown datatype"))),
    }
}

fn sparse_vectors_config(c: pb::SparseVectorConfig) -> Result<BTreeMap<String, SparseVectorParams>, Status> {
    c.map.into_iter().map(|(name, p)| Ok((name, sparse_vector_params(p)?))).collect()
}

fn sparse_vector_params(p: pb::SparseVectorParams) -> Result<SparseVectorParams, Status> {
    let index = match p.index {
        Some(i) => {
            no_memory(i.memory)?;
            Some(SparseIndexParams {
                full_scan_threshold: size(i.full_scan_threshold),
                on_disk: i.on_disk,
                datatype: datatype(i.datatype, "sparse_vectors_config")?,
            })
        }
        None => None,
    };
    let modifier = match p.modifier.map(pb::Modifier::try_from) {
        None => None,
        Some(Ok(pb::Modifier::None)) => Some(Modifier::None),
        Some(Ok(pb::Modifier::Idf)) => Some(Modifier::Idf),
        Some(Err(_)) => return Err(invalid("sparse_vectors_config: unknown modifier")),
    };
    Ok(SparseVectorParams { index, modifier })
}

fn no_memory(memory: Option<i32>) -> Result<(), Status> {
    match memory {
        None => Ok(()),
        Some(m) if m == pb::Memory::Unknown as i32 => Ok(()),
        Some(_) => Err(unsupported("memory (storage tier)")),
    }
}

fn size(v: Option<u64>) -> Option<usize> {
    v.map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

fn hnsw_diff(h: pb::HnswConfigDiff) -> Result<HnswConfigDiff, Status> {
    if h.inline_storage == Some(true) {
        return Err(unsupported("hnsw_config.inline_storage"));
    }
    no_memory(h.memory)?;
    Ok(HnswConfigDiff {
        m: size(h.m),
        ef_construct: size(h.ef_construct),
        full_scan_threshold: size(h.full_scan_threshold),
        max_indexing_threads: size(h.max_indexing_threads),
        on_disk: h.on_disk,
        payload_m: size(h.payload_m),
    })
}

fn wal_diff(w: pb::WalConfigDiff) -> Result<WalConfigDiff, Status> {
    if w.wal_retain_closed.is_some() {
        return Err(unsupported("wal_config.wal_retain_closed"));
    }
    Ok(WalConfigDiff {
        wal_capacity_mb: size(w.wal_capacity_mb),
        wal_segments_ahead: size(w.wal_segments_ahead),
    })
}

fn optimizers_diff(o: pb::OptimizersConfigDiff) -> Result<OptimizersConfigDiff, Status> {
    if o.prevent_unoptimized == Some(true) {
        return Err(unsupported("optimizers_config.prevent_unoptimized"));
    }
    let threads = match o.max_optimization_threads.and_then(|t| t.variant) {
        Some(pb::max_optimization_threads::Variant::Value(n)) => size(Some(n)),
        Some(pb::max_optimization_threads::Variant::Setting(_)) => None,
        None => size(o.deprecated_max_optimization_threads),
    };
    Ok(OptimizersConfigDiff {
        deleted_threshold: o.deleted_threshold,
        vacuum_min_vector_number: size(o.vacuum_min_vector_number),
        default_segment_number: size(o.default_segment_number),
        max_segment_size: size(o.max_segment_size),
        memmap_threshold: size(o.memmap_threshold),
        indexing_threshold: size(o.indexing_threshold),
        flush_interval_sec: o.flush_interval_sec,
        max_optimization_threads: threads,
    })
}

// ---- info ----

fn collection_info(info: CollectionInfo) -> pb::CollectionInfo {
    let status = match info.status {
        CollectionStatus::Green => pb::CollectionStatus::Green,
        CollectionStatus::Yellow => pb::CollectionStatus::Yellow,
        CollectionStatus::Grey => pb::CollectionStatus::Grey,
        CollectionStatus::Red => pb::CollectionStatus::Red,
    };
    let optimizer_status = match info.optimizer_status {
        grape_collection::info::OptimizerStatusInfo::Ok(_) => {
            pb::OptimizerStatus { ok: true, error: String::new() }
        }
        grape_collection::info::OptimizerStatusInfo::Error { error } => {
            pb::OptimizerStatus { ok: false, error }
        }
    };
    let payload_schema = info
        .payload_schema
        .into_iter()
        .map(|(key, v)| {
            let data_type = v
                .get("data_type")
                .and_then(|t| t.as_str())
                .map_or(pb::PayloadSchemaType::UnknownType, schema_type);
            let points = v.get("points").and_then(serde_json::Value::as_u64);
            let params = v.get("params").and_then(super::updates::index_params_out);
            (key, pb::PayloadSchemaInfo { data_type: data_type as i32, params, points })
        })
        .collect();
    pb::CollectionInfo {
        status: status as i32,
        optimizer_status: Some(optimizer_status),
        segments_count: info.segments_count as u64,
        config: Some(collection_config(info.config)),
        payload_schema,
        points_count: Some(info.points_count as u64),
        indexed_vectors_count: Some(info.indexed_vectors_count as u64),
        warnings: Vec::new(),
        update_queue: None,
    }
}

fn schema_type(name: &str) -> pb::PayloadSchemaType {
    use pb::PayloadSchemaType as T;
    match name {
        "keyword" => T::Keyword,
        "integer" => T::Integer,
        "float" => T::Float,
        "geo" => T::Geo,
        "text" => T::Text,
        "bool" => T::Bool,
        "datetime" => T::Datetime,
        "uuid" => T::Uuid,
        _ => T::UnknownType,
    }
}

fn collection_config(c: CollectionConfig) -> pb::CollectionConfig {
    let params = c.params;
    pb::CollectionConfig {
        params: Some(pb::CollectionParams {
            shard_number: params.shard_number,
            on_disk_payload: params.on_disk_payload,
            vectors_config: Some(vectors_config_out(params.vectors)),
            sparse_vectors_config: params.sparse_vectors.map(sparse_vectors_config_out),
            replication_factor: Some(params.replication_factor),
            write_consistency_factor: Some(params.write_consistency_factor),
            sharding_method: params.sharding_method.map(|m| match m {
                grape::ShardingMethod::Auto => pb::ShardingMethod::Auto as i32,
                grape::ShardingMethod::Custom => pb::ShardingMethod::Custom as i32,
            }),
            ..Default::default()
        }),
        hnsw_config: Some(hnsw_out(&c.hnsw_config)),
        optimizer_config: Some(optimizers_out(&c.optimizer_config)),
        wal_config: Some(wal_out(&c.wal_config)),
        quantization_config: c.quantization_config.map(quantization_out),
        ..Default::default()
    }
}

fn vectors_config_out(v: VectorsConfig) -> pb::VectorsConfig {
    use pb::vectors_config::Config;
    let config = match v {
        VectorsConfig::Single(p) => Config::Params(vector_params_out(p)),
        VectorsConfig::Multi(m) => Config::ParamsMap(pb::VectorParamsMap {
            map: m.into_iter().map(|(k, p)| (k, vector_params_out(p))).collect(),
        }),
    };
    pb::VectorsConfig { config: Some(config) }
}

fn vector_params_out(p: VectorParams) -> pb::VectorParams {
    let distance = match p.distance {
        Distance::Cosine => pb::Distance::Cosine,
        Distance::Euclid => pb::Distance::Euclid,
        Distance::Dot => pb::Distance::Dot,
        Distance::Manhattan => pb::Distance::Manhattan,
    };
    pb::VectorParams {
        size: p.size as u64,
        distance: distance as i32,
        hnsw_config: p.hnsw_config.map(|h| pb::HnswConfigDiff {
            m: h.m.map(|v| v as u64),
            ef_construct: h.ef_construct.map(|v| v as u64),
            full_scan_threshold: h.full_scan_threshold.map(|v| v as u64),
            max_indexing_threads: h.max_indexing_threads.map(|v| v as u64),
            on_disk: h.on_disk,
            payload_m: h.payload_m.map(|v| v as u64),
            ..Default::default()
        }),
        on_disk: p.on_disk,
        datatype: p.datatype.map(datatype_out),
        quantization_config: p.quantization_config.map(quantization_out),
        multivector_config: p.multivector_config.map(|m| pb::MultiVectorConfig {
            comparator: match m.comparator {
                MultiVectorComparator::MaxSim => pb::MultiVectorComparator::MaxSim as i32,
            },
        }),
        ..Default::default()
    }
}

fn datatype_out(d: Datatype) -> i32 {
    let d = match d {
        Datatype::Float32 => pb::Datatype::Float32,
        Datatype::Float16 => pb::Datatype::Float16,
        Datatype::Uint8 => pb::Datatype::Uint8,
    };
    d as i32
}

fn sparse_vectors_config_out(m: BTreeMap<String, SparseVectorParams>) -> pb::SparseVectorConfig {
    let params = |p: SparseVectorParams| pb::SparseVectorParams {
        index: p.index.map(|i| pb::SparseIndexConfig {
            full_scan_threshold: i.full_scan_threshold.map(|v| v as u64),
            on_disk: i.on_disk,
            datatype: i.datatype.map(datatype_out),
            memory: None,
        }),
        modifier: p.modifier.map(|m| match m {
            Modifier::None => pb::Modifier::None as i32,
            Modifier::Idf => pb::Modifier::Idf as i32,
        }),
    };
    pb::SparseVectorConfig { map: m.into_iter().map(|(k, p)| (k, params(p))).collect() }
}

fn hnsw_out(h: &HnswConfig) -> pb::HnswConfigDiff {
    pb::HnswConfigDiff {
        m: Some(h.m as u64),
        ef_construct: Some(h.ef_construct as u64),
        full_scan_threshold: Some(h.full_scan_threshold as u64),
        max_indexing_threads: Some(h.max_indexing_threads as u64),
        on_disk: h.on_disk,
        payload_m: h.payload_m.map(|v| v as u64),
        ..Default::default()
    }
}

fn optimizers_out(o: &OptimizersConfig) -> pb::OptimizersConfigDiff {
    use pb::max_optimization_threads::{Setting, Variant};
    let threads = match o.max_optimization_threads {
        Some(n) => Variant::Value(n as u64),
        None => Variant::Setting(Setting::Auto as i32),
    };
    pb::OptimizersConfigDiff {
        deleted_threshold: Some(o.deleted_threshold),
        vacuum_min_vector_number: Some(o.vacuum_min_vector_number as u64),
        default_segment_number: Some(o.default_segment_number as u64),
        max_segment_size: o.max_segment_size.map(|v| v as u64),
        memmap_threshold: o.memmap_threshold.map(|v| v as u64),
        indexing_threshold: o.indexing_threshold.map(|v| v as u64),
        flush_interval_sec: Some(o.flush_interval_sec),
        max_optimization_threads: Some(pb::MaxOptimizationThreads { variant: Some(threads) }),
        ..Default::default()
    }
}

fn wal_out(w: &WalConfig) -> pb::WalConfigDiff {
    pb::WalConfigDiff {
        wal_capacity_mb: Some(w.wal_capacity_mb as u64),
        wal_segments_ahead: Some(w.wal_segments_ahead as u64),
        ..Default::default()
    }
}
