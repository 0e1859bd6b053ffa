//! Prometheus metrics served at `/metrics`: per-endpoint request counts and latency, and gauges read
//! from the database at scrape time (collections, points, segments, WAL, optimizer, memory).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use grape::Database;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    endpoint: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    method: String,
    endpoint: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionLabels {
    collection: String,
}

/// Vector data of a collection by kind (`vectors`, `quantized`, `graphs`) and place (`ram`, `disk`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VectorDataLabels {
    collection: String,
    kind: String,
    place: String,
}

/// Every metric of one server. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<EndpointLabels, Histogram>,
    collections: Gauge,
    points: Family<CollectionLabels, Gauge>,
    segments: Family<CollectionLabels, Gauge>,
    indexed_vectors: Family<CollectionLabels, Gauge>,
    wal_bytes: Family<CollectionLabels, Gauge>,
    disk_bytes: Family<CollectionLabels, Gauge>,
    vector_ram_bytes: Family<CollectionLabels, Gauge>,
    vector_data_bytes: Family<VectorDataLabels, Gauge>,
    optimizing: Family<CollectionLabels, Gauge>,
    optimizer_errors: Family<CollectionLabels, Gauge>,
    resident_memory: Gauge,
    uptime: Gauge,
    cluster: ClusterGauges,
}

/// `grape_cluster_*`: set only in cluster mode (`cluster_enabled` says which).
#[derive(Default)]
struct ClusterGauges {
    enabled: Gauge,
    peers: Gauge,
    term: Gauge,
    commit: Gauge,
    pending: Gauge,
    is_leader: Gauge,
    is_voter: Gauge,
    shard_replicas: Gauge,
    shard_leaders: Gauge,
}

impl ClusterGauges {
    fn register(registry: &mut Registry) -> ClusterGauges {
        let g = ClusterGauges::default();
        for (name, help, gauge) in [
            ("cluster_enabled", "1 when this node runs in cluster mode", &g.enabled),
            ("cluster_peers", "Peers in the cluster metadata", &g.peers),
            ("cluster_term", "Raft term of the metadata group", &g.term),
            ("cluster_commit", "Applied index of the metadata group on this node", &g.commit),
            ("cluster_pending_operations", "Metadata log entries not applied yet on this node", &g.pending),
            ("cluster_is_leader", "1 when this node leads the metadata group", &g.is_leader),
            ("cluster_is_voter", "1 when this node votes in the metadata group", &g.is_voter),
            ("cluster_shard_replicas", "Shard replicas held by this node", &g.shard_replicas),
            ("cluster_shard_leaders", "Shard replica groups this node leads", &g.shard_leaders),
        ] {
            registry.register(name, help, gauge.clone());
        }
        g
    }

    fn set(&self, m: Option<&crate::service::ClusterMetrics>) {
        let v = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        self.enabled.set(i64::from(m.is_some()));
        let m = m.cloned().unwrap_or_default();
        self.peers.set(v(m.peers));
        self.term.set(v(m.term));
        self.commit.set(v(m.commit));
        self.pending.set(v(m.pending_operations));
        self.is_leader.set(i64::from(m.is_leader));
        self.is_voter.set(i64::from(m.is_voter));
        self.shard_replicas.set(v(m.shard_replicas));
        self.shard_leaders.set(v(m.shard_leaders));
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("grape");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("rest_requests", "REST requests by endpoint, method and status", requests.clone());
        let latency = Family::<EndpointLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
        });
        registry.register("rest_request_duration_seconds", "REST request latency", latency.clone());
        let collections = Gauge::default();
        registry.register("collections", "Number of collections", collections.clone());
        let per = |registry: &mut Registry, name: &str, help: &str| {
            let f = Family::<CollectionLabels, Gauge>::default();
            registry.register(name, help, f.clone());
            f
        };
        let points = per(&mut registry, "collection_points", "Live points per collection");
        let segments = per(&mut registry, "collection_segments", "Segments per collection");
        let indexed_vectors = per(&mut registry, "collection_indexed_vectors", "Vectors in HNSW graphs");
        let wal_bytes = per(&mut registry, "collection_wal_bytes", "Write-ahead log size in bytes");
        let disk_bytes = per(&mut registry, "collection_disk_bytes", "Bytes on disk per collection");
        let vector_ram_bytes = per(&mut registry, "collection_ram_bytes", "Bytes of vectors held in RAM");
        let vector_data_bytes = Family::<VectorDataLabels, Gauge>::default();
        registry.register(
            "collection_vector_data_bytes",
            "Bytes of original vectors, quantized codes and HNSW graphs, in RAM or memory-mapped from disk",
            vector_data_bytes.clone(),
        );
        let optimizing = per(&mut registry, "collection_optimizing", "1 while an optimization runs");
        let optimizer_errors =
            per(&mut registry, "collection_optimizer_error", "1 when the optimizer has failed");
        let resident_memory = Gauge::default();
        registry.register("process_resident_memory_bytes", "Resident set size", resident_memory.clone());
        let uptime = Gauge::default();
        registry.register("uptime_seconds", "Seconds since the server started", uptime.clone());
        let cluster = ClusterGauges::register(&mut registry);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                collections,
                points,
                segments,
                indexed_vectors,
                wal_bytes,
                disk_bytes,
                vector_ram_bytes,
                vector_data_bytes,
                optimizing,
                optimizer_errors,
                resident_memory,
                uptime,
                cluster,
            }),
        }
    }

    /// Records one finished request. `endpoint` is the route pattern, not the concrete path.
    pub fn observe(&self, method: &str, endpoint: &str, status: u16, elapsed: Duration) {
        let i = &self.inner;
        i.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                endpoint: endpoint.to_string(),
                status,
            })
            .inc();
        i.latency
            .get_or_create(&EndpointLabels { method: method.to_string(), endpoint: endpoint.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    /// Reads the database's state into the gauges and renders the text exposition format.
    pub fn render(
        &self,
        db: &Database,
        uptime: Duration,
        cluster: Option<&crate::service::ClusterMetrics>,
    ) -> String {
        let i = &self.inner;
        i.cluster.set(cluster);
        let health = db.health();
        i.collections.set(health.collections.len() as i64);
        for family in [
            &i.points,
            &i.segments,
            &i.indexed_vectors,
            &i.wal_bytes,
            &i.disk_bytes,
            &i.vector_ram_bytes,
            &i.optimizing,
            &i.optimizer_errors,
        ] {
            family.clear();
        }
        i.vector_data_bytes.clear();
        for c in &health.collections {
            let l = CollectionLabels { collection: c.name.clone() };
            i.points.get_or_create(&l).set(c.points as i64);
            i.segments.get_or_create(&l).set(c.segments as i64);
            i.indexed_vectors.get_or_create(&l).set(c.indexed_vectors as i64);
            i.wal_bytes.get_or_create(&l).set(c.wal_bytes as i64);
            i.disk_bytes.get_or_create(&l).set(c.disk_bytes as i64);
            i.vector_ram_bytes.get_or_create(&l).set(c.ram_bytes as i64);
            let m = &c.memory;
            for (kind, place, bytes) in [
                ("vectors", "ram", m.vectors_ram_bytes),
                ("vectors", "disk", m.vectors_disk_bytes),
                ("quantized", "ram", m.quantized_ram_bytes),
                ("quantized", "disk", m.quantized_disk_bytes),
                ("graphs", "ram", m.graphs_ram_bytes),
            ] {
                let labels =
                    VectorDataLabels { collection: c.name.clone(), kind: kind.into(), place: place.into() };
                i.vector_data_bytes.get_or_create(&labels).set(bytes as i64);
            }
            i.optimizing.get_or_create(&l).set(i64::from(c.optimizing));
            i.optimizer_errors.get_or_create(&l).set(i64::from(c.optimizer_error.is_some()));
        }
        i.resident_memory.set(resident_memory_bytes().unwrap_or(0) as i64);
        i.uptime.set(uptime.as_secs() as i64);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &i.registry);
        out
    }
}

/// Resident set size from /proc/self/statm (Linux); `None` elsewhere.
fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
