//! The gRPC API through the official Rust client (`qdrant-client`) against a real `grape serve`
//! process: collections, aliases, writes, retrieval, search and query checked against a brute-force
//! oracle, scroll and count with a filter, payload operations, error codes and API keys; sparse vectors
//! (with IDF), multivectors, prefetch with RRF / DBSF fusion, recommend and query batches checked
//! against brute force and fusion by hand.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::{
    vector_output, vectors_config, ClearPayloadPointsBuilder, Condition, CountPointsBuilder,
    CreateAliasBuilder, CreateCollectionBuilder, DeletePayloadPointsBuilder, DeletePointsBuilder, Distance,
    Filter, Fusion, GetPointsBuilder, Modifier, MultiVectorComparator, MultiVectorConfig,
    MultiVectorConfigBuilder, NamedVectors, PointId, PointStruct, PointsIdsList, PrefetchQueryBuilder, Query,
    QueryBatchPointsBuilder, QueryPointsBuilder, RecommendInputBuilder, RecommendStrategy, RrfBuilder,
    ScoredPoint, ScrollPointsBuilder, SearchBatchPointsBuilder, SearchParamsBuilder, SearchPointsBuilder,
    SetPayloadPointsBuilder, SparseIndexConfigBuilder, SparseIndices, SparseVectorParamsBuilder,
    SparseVectorsConfigBuilder, TurboQuantizationBuilder, UpsertPointsBuilder, Vector, VectorInput,
    VectorParamsBuilder, VectorsConfigBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::json;

const DIM: usize = 8;
const POINTS: u64 = 300;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `grape serve` child process; killed on drop.
struct Server {
    child: Child,
    grpc: String,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let (http, grpc) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_grape"))
            .args(["serve", "--host", "127.0.0.1", "--http-port", &http.to_string()])
            .args(["--grpc-port", &grpc.to_string(), "--storage-path"])
            .arg(dir)
            .args(extra)
            .env("GRAPE__LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start grape");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", grpc)).is_err() {
            assert!(Instant::now() < deadline, "gRPC port did not open");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, grpc: format!("http://127.0.0.1:{grpc}") }
    }

    fn client(&self, key: Option<&str>) -> Qdrant {
        let mut b = Qdrant::from_url(&self.grpc).skip_compatibility_check();
        if let Some(k) = key {
            b = b.api_key(k.to_owned());
        }
        b.build().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A deterministic pseudo-random stream (xorshift; no dependency on a generator crate's stream).
fn stream(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Deterministic pseudo-random vectors with components in [-1, 1).
fn vector(seed: u64) -> Vec<f32> {
    let mut next = stream(seed);
    (0..DIM).map(|_| (next() % 2000) as f32 / 1000.0 - 1.0).collect()
}

fn group(i: u64) -> &'static str {
    ["a", "b", "c"][(i % 3) as usize]
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The exact top `k` ids by cosine similarity among `ids`, best first.
fn oracle(query: &[f32], ids: impl Iterator<Item = u64>, k: usize) -> Vec<(u64, f32)> {
    let mut scored: Vec<(u64, f32)> = ids.map(|i| (i, cosine(query, &vector(i)))).collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

fn num(id: &Option<PointId>) -> u64 {
    match id.as_ref().and_then(|p| p.point_id_options.clone()) {
        Some(PointIdOptions::Num(n)) => n,
        other => panic!("expected a numeric id, got {other:?}"),
    }
}

fn code(e: QdrantError) -> tonic::Code {
    match e {
        QdrantError::ResponseError { status } => status.code(),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

fn message(e: QdrantError) -> String {
    match e {
        QdrantError::ResponseError { status } => status.message().to_owned(),
        other => panic!("expected a gRPC status, got {other}"),
    }
}

fn assert_same_hits(got: &[(u64, f32)], want: &[(u64, f32)]) {
    assert_eq!(got.iter().map(|h| h.0).collect::<Vec<_>>(), want.iter().map(|h| h.0).collect::<Vec<_>>());
    for (g, w) in got.iter().zip(want) {
        assert!((g.1 - w.1).abs() < 1e-4, "score of {}: {} vs {}", g.0, g.1, w.1);
    }
}

fn ids(list: &[u64]) -> PointsIdsList {
    PointsIdsList { ids: list.iter().map(|&i| i.into()).collect() }
}

#[tokio::test]
async fn official_client_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = server.client(None);

    let health = client.health_check().await.unwrap();
    assert_eq!(health.version, "1.19.0");

    // Collections and aliases.
    client
        .create_collection(
            CreateCollectionBuilder::new("c")
                .vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine)),
        )
        .await
        .unwrap();
    let e = client
        .create_collection(
            CreateCollectionBuilder::new("c")
                .vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine)),
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), tonic::Code::AlreadyExists);
    assert!(client.collection_exists("c").await.unwrap());
    assert!(!client.collection_exists("nope").await.unwrap());
    let names: Vec<String> =
        client.list_collections().await.unwrap().collections.into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["c".to_owned()]);
    client.create_alias(CreateAliasBuilder::new("c", "al")).await.unwrap();
    let aliases = client.list_aliases().await.unwrap().aliases;
    assert_eq!(aliases.len(), 1);
    assert_eq!((aliases[0].alias_name.as_str(), aliases[0].collection_name.as_str()), ("al", "c"));
    assert_eq!(client.list_collection_aliases("c").await.unwrap().aliases.len(), 1);

    // Upsert, then the collection reports the points.
    let points: Vec<PointStruct> = (0..POINTS)
        .map(|i| {
            let payload =
                Payload::try_from(json!({"group": group(i), "n": i, "half": i as f64 / 2.0})).unwrap();
            PointStruct::new(i, vector(i), payload)
        })
        .collect();
    client.upsert_points(UpsertPointsBuilder::new("c", points).wait(true)).await.unwrap();
    let info = client.collection_info("c").await.unwrap().result.unwrap();
    assert_eq!(info.points_count, Some(POINTS));
    let params = info.config.unwrap().params.unwrap();
    assert!(format!("{:?}", params.vectors_config).contains("size: 8"));

    // Get: payload (integers stay integers, floats floats) and vectors.
    let got = client
        .get_points(
            GetPointsBuilder::new("c", vec![7.into(), 1000.into()]).with_payload(true).with_vectors(true),
        )
        .await
        .unwrap();
    assert_eq!(got.result.len(), 1, "unknown ids are skipped");
    let p = &got.result[0];
    assert_eq!(num(&p.id), 7);
    let payload = serde_json::Value::from(Payload::from(p.payload.clone()));
    assert_eq!(payload, json!({"group": "b", "half": 3.5, "n": 7}));
    let stored = format!("{:?}", p.vectors);
    let norm = vector(7).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(stored.contains(&format!("{:?}", vector(7)[0] / norm)), "normalised cosine vector: {stored}");

    // Search, search batch and query (by vector and by point id) equal brute force.
    let q = vector(10_000);
    let want = oracle(&q, 0..POINTS, 10);
    let hits = client.search_points(SearchPointsBuilder::new("c", q.clone(), 10)).await.unwrap().result;
    assert_same_hits(&hits.iter().map(|h| (num(&h.id), h.score)).collect::<Vec<_>>(), &want);
    assert!(hits[0].payload.is_empty(), "search returns no payload unless asked");
    let batch = client
        .search_batch_points(SearchBatchPointsBuilder::new(
            "c",
            vec![
                SearchPointsBuilder::new("c", q.clone(), 10).build(),
                SearchPointsBuilder::new("c", vector(20_000), 5)
                    .filter(Filter::must([Condition::matches("group", "a".to_owned())]))
                    .params(SearchParamsBuilder::default().exact(true))
                    .build(),
            ],
        ))
        .await
        .unwrap()
        .result;
    assert_same_hits(&batch[0].result.iter().map(|h| (num(&h.id), h.score)).collect::<Vec<_>>(), &want);
    let want_a = oracle(&vector(20_000), (0..POINTS).filter(|i| group(*i) == "a"), 5);
    assert_same_hits(&batch[1].result.iter().map(|h| (num(&h.id), h.score)).collect::<Vec<_>>(), &want_a);
    let queried = client
        .query(QueryPointsBuilder::new("al").query(q.clone()).limit(10).with_payload(true))
        .await
        .unwrap()
        .result;
    assert_same_hits(&queried.iter().map(|h| (num(&h.id), h.score)).collect::<Vec<_>>(), &want);
    assert!(!queried[0].payload.is_empty());
    let by_id = client
        .query(QueryPointsBuilder::new("c").query(Query::new_nearest(PointId::from(5))).limit(5))
        .await
        .unwrap()
        .result;
    let want_by_id = oracle(&vector(5), (0..POINTS).filter(|&i| i != 5), 5);
    assert_same_hits(&by_id.iter().map(|h| (num(&h.id), h.score)).collect::<Vec<_>>(), &want_by_id);

    // Scroll and count with a filter.
    let in_a: Vec<u64> = (0..POINTS).filter(|i| group(*i) == "a").collect();
    let filter = Filter::must([Condition::matches("group", "a".to_owned())]);
    let mut seen = Vec::new();
    let mut offset: Option<PointId> = None;
    loop {
        let mut req = ScrollPointsBuilder::new("c").filter(filter.clone()).limit(40);
        if let Some(o) = offset.take() {
            req = req.offset(o);
        }
        let page = client.scroll(req).await.unwrap();
        seen.extend(page.result.iter().map(|p| num(&p.id)));
        match page.next_page_offset {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, in_a);
    let count = client.count(CountPointsBuilder::new("c").filter(filter.clone()).exact(true)).await.unwrap();
    assert_eq!(count.result.unwrap().count, in_a.len() as u64);
    let ranged = Filter::must([Condition::range(
        "n",
        qdrant_client::qdrant::Range { gte: Some(100.0), lt: Some(110.0), ..Default::default() },
    )]);
    let count = client.count(CountPointsBuilder::new("c").filter(ranged)).await.unwrap();
    assert_eq!(count.result.unwrap().count, 10);

    // Payload operations.
    let tag = Payload::try_from(json!({"tag": "x"})).unwrap();
    client
        .set_payload(SetPayloadPointsBuilder::new("c", tag).points_selector(ids(&[1, 2])).wait(true))
        .await
        .unwrap();
    let only = Payload::try_from(json!({"only": 1})).unwrap();
    client
        .overwrite_payload(SetPayloadPointsBuilder::new("c", only).points_selector(ids(&[1])).wait(true))
        .await
        .unwrap();
    client
        .delete_payload(
            DeletePayloadPointsBuilder::new("c", vec!["tag".to_owned(), "half".to_owned()])
                .points_selector(ids(&[2]))
                .wait(true),
        )
        .await
        .unwrap();
    client.clear_payload(ClearPayloadPointsBuilder::new("c").points(ids(&[3])).wait(true)).await.unwrap();
    let got = client
        .get_points(GetPointsBuilder::new("c", vec![1.into(), 2.into(), 3.into()]).with_payload(true))
        .await
        .unwrap()
        .result;
    let payloads: BTreeMap<u64, serde_json::Value> =
        got.iter().map(|p| (num(&p.id), serde_json::Value::from(Payload::from(p.payload.clone())))).collect();
    assert_eq!(payloads[&1], json!({"only": 1}));
    assert_eq!(payloads[&2], json!({"group": "c", "n": 2}));
    assert_eq!(payloads[&3], json!({}));
    let tagged = client
        .count(CountPointsBuilder::new("c").filter(Filter::must([Condition::matches("tag", "x".to_owned())])))
        .await
        .unwrap();
    assert_eq!(tagged.result.unwrap().count, 0, "1 was overwritten, 2 lost its tag");

    // Deletes by ids and by filter.
    client.delete_points(DeletePointsBuilder::new("c").points(ids(&[0, 1, 2])).wait(true)).await.unwrap();
    client.delete_points(DeletePointsBuilder::new("c").points(filter).wait(true)).await.unwrap();
    let left = client.count(CountPointsBuilder::new("c").exact(true)).await.unwrap().result.unwrap().count;
    // Point 3 lost its payload (cleared above), so the filter no longer matches it.
    let expected = (0..POINTS).filter(|&i| i > 2 && (group(i) != "a" || i == 3)).count() as u64;
    assert_eq!(left, expected);

    // Errors: codes as Qdrant's.
    let e = client.collection_info("nope").await.unwrap_err();
    assert_eq!(code(e), tonic::Code::NotFound);
    let e = client.search_points(SearchPointsBuilder::new("nope", q.clone(), 3)).await.unwrap_err();
    assert_eq!(code(e), tonic::Code::NotFound);
    let e = client
        .upsert_points(
            UpsertPointsBuilder::new("c", vec![PointStruct::new(1, vec![1.0; DIM + 1], Payload::new())])
                .wait(true),
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), tonic::Code::InvalidArgument);
    let sparse = PointStruct::new(1, Vector::new_sparse(vec![1u32], vec![0.5]), Payload::new());
    let e = client.upsert_points(UpsertPointsBuilder::new("c", vec![sparse]).wait(true)).await.unwrap_err();
    let text = message(e);
    assert!(text.contains("Sparse vector must be named"), "{text}");
    // Turbo quantization is not built: refused by name, and nothing is created.
    let e = client
        .create_collection(
            CreateCollectionBuilder::new("q")
                .vectors_config(VectorParamsBuilder::new(4, Distance::Dot))
                .quantization_config(TurboQuantizationBuilder::default()),
        )
        .await
        .unwrap_err();
    let text = message(e);
    assert!(text.contains("turboquant"), "{text}");
    assert!(!client.collection_exists("q").await.unwrap(), "a refused create creates nothing");

    // Delete the collection.
    assert!(client.delete_collection("c").await.unwrap().result);
    assert!(!client.collection_exists("c").await.unwrap());
}

#[tokio::test]
async fn api_keys_guard_rpcs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--api-key", "full", "--read-only-api-key", "reader"]);
    let create =
        || CreateCollectionBuilder::new("k").vectors_config(VectorParamsBuilder::new(2, Distance::Dot));

    let e = server.client(None).list_collections().await.unwrap_err();
    assert_eq!(code(e), tonic::Code::Unauthenticated);
    let e = server.client(Some("wrong")).list_collections().await.unwrap_err();
    assert_eq!(code(e), tonic::Code::Unauthenticated);
    let reader = server.client(Some("reader"));
    assert!(reader.list_collections().await.unwrap().collections.is_empty());
    let e = reader.create_collection(create()).await.unwrap_err();
    assert_eq!(code(e), tonic::Code::PermissionDenied);
    let full = server.client(Some("full"));
    full.create_collection(create()).await.unwrap();
    assert!(reader.collection_exists("k").await.unwrap());
    // The health checks are public, as the REST probes are.
    assert!(server.client(None).health_check().await.is_ok());
    let channel =
        tonic::transport::Channel::from_shared(server.grpc.clone()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let reply = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(
        reply.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

// ---- sparse vectors, multivectors and the Query API ----

const HYBRID_POINTS: u64 = 300;
const SPARSE_DIM: u64 = 40;
const MULTI_DIM: usize = 4;

type Sparse = (Vec<u32>, Vec<f32>);

/// A sparse vector with 2..8 positive values, its indices in no particular order.
fn sparse(seed: u64) -> Sparse {
    let mut next = stream(seed + 1_000_000);
    let n = 2 + (next() % 6) as usize;
    let mut indices = Vec::new();
    while indices.len() < n {
        let index = (next() % SPARSE_DIM) as u32;
        if !indices.contains(&index) {
            indices.push(index);
        }
    }
    let values = indices.iter().map(|_| (next() % 1000 + 1) as f32 / 500.0).collect();
    (indices, values)
}

/// The sparse vector as the server stores it: sorted by index.
fn sorted(v: Sparse) -> Sparse {
    let mut pairs: Vec<(u32, f32)> = v.0.into_iter().zip(v.1).collect();
    pairs.sort_by_key(|p| p.0);
    pairs.into_iter().unzip()
}

/// A multivector of 1..3 rows.
fn multi(seed: u64) -> Vec<Vec<f32>> {
    let mut next = stream(seed + 2_000_000);
    let rows = 1 + next() % 3;
    (0..rows).map(|_| (0..MULTI_DIM).map(|_| (next() % 2000) as f32 / 1000.0 - 1.0).collect()).collect()
}

/// The dot product over shared indices, each query value scaled by `weight(index)`; `None` when no index
/// is shared (such a point is no match).
fn sparse_dot(query: &Sparse, point: &Sparse, weight: &dyn Fn(u32) -> f32) -> Option<f32> {
    let mut score = None;
    for (qi, qv) in query.0.iter().zip(&query.1) {
        if let Some(pos) = point.0.iter().position(|i| i == qi) {
            *score.get_or_insert(0.0) += qv * weight(*qi) * point.1[pos];
        }
    }
    score
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// ColBERT's MaxSim: for each query row, its best dot product with a stored row, summed.
fn max_sim(query: &[Vec<f32>], point: &[Vec<f32>]) -> f32 {
    query.iter().map(|q| point.iter().map(|p| dot(q, p)).fold(f32::NEG_INFINITY, f32::max)).sum()
}

/// The best `k`, best first (ties by id).
fn top(mut scored: Vec<(u64, f32)>, k: usize) -> Vec<(u64, f32)> {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

/// Sums per-list scores per point; equal sums keep the order of first appearance (list by list).
fn fuse_by_hand(lists: Vec<Vec<(u64, f64)>>, limit: usize) -> Vec<(u64, f32)> {
    let mut order: Vec<(u64, f64)> = Vec::new();
    for (id, score) in lists.into_iter().flatten() {
        match order.iter_mut().find(|e| e.0 == id) {
            Some(e) => e.1 += score,
            None => order.push((id, score)),
        }
    }
    order.sort_by(|a, b| b.1.total_cmp(&a.1)); // stable
    order.into_iter().take(limit).map(|(id, s)| (id, s as f32)).collect()
}

/// Reciprocal rank fusion: 0-based position `p` in a list of weight `w` earns `1 / ((p + 1) / w + k - 1)`
/// (with k = 2 and w = 1: `1 / (p + 2)`).
fn rrf(lists: &[Vec<(u64, f32)>], k: f64, weights: &[f64], limit: usize) -> Vec<(u64, f32)> {
    let scored = lists
        .iter()
        .zip(weights)
        .map(|(list, &w)| {
            list.iter()
                .enumerate()
                .map(|(p, &(id, _))| (id, 1.0 / ((p as f64 + 1.0) / w + k - 1.0)))
                .collect()
        })
        .collect();
    fuse_by_hand(scored, limit)
}

/// Distribution-based score fusion: per list `(s - (mean - 3σ)) / 6σ` with σ the sample standard
/// deviation; a list of one point or of equal scores maps to 0.5.
fn dbsf(lists: &[Vec<(u64, f32)>], limit: usize) -> Vec<(u64, f32)> {
    let scored = lists
        .iter()
        .map(|list| {
            let n = list.len() as f64;
            let scores: Vec<f64> = list.iter().map(|p| p.1 as f64).collect();
            let mean = scores.iter().sum::<f64>() / n;
            let variance = scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let sd = variance.sqrt();
            list.iter()
                .zip(&scores)
                .map(|(p, s)| {
                    let normalized = if list.len() <= 1 || variance == 0.0 {
                        0.5
                    } else {
                        (s - (mean - 3.0 * sd)) / (6.0 * sd)
                    };
                    (p.0, normalized)
                })
                .collect()
        })
        .collect();
    fuse_by_hand(scored, limit)
}

fn hits(points: &[ScoredPoint]) -> Vec<(u64, f32)> {
    points.iter().map(|h| (num(&h.id), h.score)).collect()
}

/// Point `i`'s vectors as the official client builds them (the `vector` oneof).
fn named_vectors(i: u64) -> NamedVectors {
    let (indices, values) = sparse(i);
    NamedVectors::default()
        .add_vector("dense", Vector::new_dense(vector(i)))
        .add_vector("multi", Vector::new_multi(multi(i)))
        .add_vector("sparse", Vector::new_sparse(indices.clone(), values.clone()))
        .add_vector("idf", Vector::new_sparse(indices, values))
}

/// Point `i`'s vectors in the deprecated fields older clients send: `data` alone (dense), with
/// `indices` (sparse), with `vectors_count` (a multivector's rows concatenated).
#[allow(deprecated)]
fn deprecated_named_vectors(i: u64) -> NamedVectors {
    let (indices, values) = sparse(i);
    let old_sparse = Vector {
        data: values,
        indices: Some(SparseIndices { data: indices }),
        vectors_count: None,
        vector: None,
    };
    let rows = multi(i);
    let old_multi =
        Vector { vectors_count: Some(rows.len() as u32), data: rows.concat(), indices: None, vector: None };
    NamedVectors::default()
        .add_vector("dense", Vector { data: vector(i), indices: None, vectors_count: None, vector: None })
        .add_vector("multi", old_multi)
        .add_vector("sparse", old_sparse.clone())
        .add_vector("idf", old_sparse)
}

#[tokio::test]
async fn sparse_multivector_and_hybrid_queries() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = server.client(None);
    const N: u64 = HYBRID_POINTS;

    // A dense vector, a multivector (max_sim) and two sparse vectors (one weighted by IDF), over gRPC.
    let mut dense = VectorsConfigBuilder::default();
    dense.add_named_vector_params("dense", VectorParamsBuilder::new(DIM as u64, Distance::Cosine));
    dense.add_named_vector_params(
        "multi",
        VectorParamsBuilder::new(MULTI_DIM as u64, Distance::Dot)
            .multivector_config(MultiVectorConfigBuilder::new(MultiVectorComparator::MaxSim)),
    );
    let mut sparse_config = SparseVectorsConfigBuilder::default();
    sparse_config.add_named_vector_params(
        "sparse",
        SparseVectorParamsBuilder::default()
            .index(SparseIndexConfigBuilder::default().full_scan_threshold(5000u64)),
    );
    sparse_config
        .add_named_vector_params("idf", SparseVectorParamsBuilder::default().modifier(Modifier::Idf));
    client
        .create_collection(
            CreateCollectionBuilder::new("h").vectors_config(dense).sparse_vectors_config(sparse_config),
        )
        .await
        .unwrap();
    let params = client.collection_info("h").await.unwrap().result.unwrap().config.unwrap().params.unwrap();
    let sparse_params = params.sparse_vectors_config.unwrap().map;
    assert_eq!(sparse_params["idf"].modifier, Some(Modifier::Idf as i32));
    assert_eq!(sparse_params["sparse"].index.and_then(|i| i.full_scan_threshold), Some(5000));
    let Some(vectors_config::Config::ParamsMap(dense_params)) = params.vectors_config.and_then(|c| c.config)
    else {
        panic!("named vectors expected")
    };
    assert_eq!(
        dense_params.map["multi"].multivector_config,
        Some(MultiVectorConfig { comparator: MultiVectorComparator::MaxSim as i32 })
    );

    // Upsert all three kinds; every 50th point in the deprecated fields.
    let points: Vec<PointStruct> = (0..N)
        .map(|i| {
            let vectors = if i % 50 == 0 { deprecated_named_vectors(i) } else { named_vectors(i) };
            PointStruct::new(i, vectors, Payload::new())
        })
        .collect();
    client.upsert_points(UpsertPointsBuilder::new("h", points).wait(true)).await.unwrap();

    // Retrieve: the vectors come back in the oneof, sparse sorted by index.
    let got = client
        .get_points(GetPointsBuilder::new("h", vec![7.into(), 50.into()]).with_vectors(true))
        .await
        .unwrap()
        .result;
    assert_eq!(got.len(), 2);
    for p in &got {
        let i = num(&p.id);
        let vectors = p.vectors.as_ref().unwrap();
        let Some(vector_output::Vector::Sparse(s)) = vectors.get_vector_by_name("sparse") else {
            panic!("sparse vector of {i}: {vectors:?}")
        };
        assert_eq!((s.indices, s.values), sorted(sparse(i)), "point {i}");
        let Some(vector_output::Vector::MultiDense(m)) = vectors.get_vector_by_name("multi") else {
            panic!("multivector of {i}: {vectors:?}")
        };
        assert_eq!(m.vectors.into_iter().map(|r| r.data).collect::<Vec<_>>(), multi(i), "point {i}");
        let Some(vector_output::Vector::Dense(d)) = vectors.get_vector_by_name("dense") else {
            panic!("dense vector of {i}: {vectors:?}")
        };
        assert_eq!(d.data.len(), DIM);
    }

    // Sparse queries equal the brute-force dot product (Query API and legacy search with sparse_indices).
    let sq = sparse(100_000);
    let sparse_top =
        |k| top((0..N).filter_map(|i| Some((i, sparse_dot(&sq, &sparse(i), &|_| 1.0)?))).collect(), k);
    let sparse_query = || Query::new_nearest(VectorInput::new_sparse(sq.0.clone(), sq.1.clone()));
    let want_sparse = sparse_top(10);
    assert_eq!(want_sparse.len(), 10, "enough points share an index with the query");
    let got = client
        .query(QueryPointsBuilder::new("h").query(sparse_query()).using("sparse").limit(10))
        .await
        .unwrap();
    assert_same_hits(&hits(&got.result), &want_sparse);
    let legacy = client
        .search_points(
            SearchPointsBuilder::new("h", sq.1.clone(), 10)
                .vector_name("sparse")
                .sparse_indices(sq.0.clone()),
        )
        .await
        .unwrap();
    assert_same_hits(&hits(&legacy.result), &want_sparse);

    // IDF: each query value weighted by ln((n - df + 0.5) / (df + 0.5) + 1) of its index.
    let idf: BTreeMap<u32, f32> =
        sq.0.iter()
            .map(|&index| {
                let df = (0..N).filter(|&i| sparse(i).0.contains(&index)).count() as f64;
                (index, ((N as f64 - df + 0.5) / (df + 0.5) + 1.0).ln() as f32)
            })
            .collect();
    let want_idf =
        top((0..N).filter_map(|i| Some((i, sparse_dot(&sq, &sparse(i), &|x| idf[&x])?))).collect(), 10);
    let got = client
        .query(QueryPointsBuilder::new("h").query(sparse_query()).using("idf").limit(10))
        .await
        .unwrap();
    assert_same_hits(&hits(&got.result), &want_idf);

    // Multivector MaxSim equals brute force.
    let mq = multi(100_001);
    let want_multi = top((0..N).map(|i| (i, max_sim(&mq, &multi(i)))).collect(), 10);
    let multi_query = || Query::new_nearest(VectorInput::new_multi(mq.clone()));
    let got = client
        .query(QueryPointsBuilder::new("h").query(multi_query()).using("multi").limit(10))
        .await
        .unwrap();
    assert_same_hits(&hits(&got.result), &want_multi);

    // Hybrid: dense and sparse prefetches fused, equal to fusion by hand over the brute-force lists.
    let dq = vector(100_002);
    let lists = [oracle(&dq, 0..N, 20), sparse_top(20)];
    assert_eq!((lists[0].len(), lists[1].len()), (20, 20));
    let hybrid = |fusion: Query| {
        QueryPointsBuilder::new("h")
            .add_prefetch(
                PrefetchQueryBuilder::default()
                    .query(Query::new_nearest(dq.clone()))
                    .using("dense")
                    .limit(20u64),
            )
            .add_prefetch(PrefetchQueryBuilder::default().query(sparse_query()).using("sparse").limit(20u64))
            .query(fusion)
            .limit(10)
    };
    let got = client.query(hybrid(Query::new_fusion(Fusion::Rrf))).await.unwrap();
    assert_same_hits(&hits(&got.result), &rrf(&lists, 2.0, &[1.0, 1.0], 10));
    let got = client.query(hybrid(Query::new_rrf(RrfBuilder::with_k(60)))).await.unwrap();
    assert_same_hits(&hits(&got.result), &rrf(&lists, 60.0, &[1.0, 1.0], 10));
    let got =
        client.query(hybrid(Query::new_rrf(RrfBuilder::with_k(5).weights(vec![3.0, 1.0])))).await.unwrap();
    assert_same_hits(&hits(&got.result), &rrf(&lists, 5.0, &[3.0, 1.0], 10));
    let want_dbsf = dbsf(&lists, 10);
    let got = client.query(hybrid(Query::new_fusion(Fusion::Dbsf))).await.unwrap();
    assert_same_hits(&hits(&got.result), &want_dbsf);

    // QueryBatch answers each query as Query does.
    let batch = client
        .query_batch(QueryBatchPointsBuilder::new(
            "h",
            vec![
                QueryPointsBuilder::new("h").query(sparse_query()).using("sparse").limit(10).build(),
                QueryPointsBuilder::new("h").query(multi_query()).using("multi").limit(10).build(),
                hybrid(Query::new_fusion(Fusion::Dbsf)).build(),
            ],
        ))
        .await
        .unwrap()
        .result;
    assert_eq!(batch.len(), 3);
    assert_same_hits(&hits(&batch[0].result), &want_sparse);
    assert_same_hits(&hits(&batch[1].result), &want_multi);
    assert_same_hits(&hits(&batch[2].result), &want_dbsf);

    // Recommend by point id with best_score on the sparse vector: with one positive example the score
    // is the similarity to it; the example itself is excluded.
    let recommend =
        RecommendInputBuilder::default().add_positive(3u64).strategy(RecommendStrategy::BestScore);
    let got = client
        .query(QueryPointsBuilder::new("h").query(Query::new_recommend(recommend)).using("sparse").limit(10))
        .await
        .unwrap()
        .result;
    assert!(got.iter().all(|p| num(&p.id) != 3), "the example is excluded");
    let example = sparse(3);
    let want = top(
        (0..N)
            .filter(|&i| i != 3)
            .map(|i| (i, sparse_dot(&example, &sparse(i), &|_| 1.0).unwrap_or(0.0)))
            .collect(),
        10,
    );
    assert_eq!(
        hits(&got).iter().map(|h| h.0).collect::<Vec<_>>(),
        want.iter().map(|h| h.0).collect::<Vec<_>>()
    );

    // Bad input is INVALID_ARGUMENT.
    let uneven = || VectorInput::new_sparse(vec![1u32, 2], vec![0.5]);
    let bad = NamedVectors::default().add_vector("sparse", Vector::new_sparse(vec![1u32, 2], vec![0.5]));
    let e = client
        .upsert_points(
            UpsertPointsBuilder::new("h", vec![PointStruct::new(1, bad, Payload::new())]).wait(true),
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), tonic::Code::InvalidArgument);
    let e = client
        .query(QueryPointsBuilder::new("h").query(Query::new_nearest(uneven())).using("sparse"))
        .await
        .unwrap_err();
    assert_eq!(code(e), tonic::Code::InvalidArgument);
    let e =
        client.query(QueryPointsBuilder::new("h").query(Query::new_fusion(Fusion::Rrf))).await.unwrap_err();
    assert_eq!(code(e), tonic::Code::InvalidArgument);
    let e = client.query(hybrid(Query::new_rrf(RrfBuilder::with_k(2).weights(vec![1.0])))).await.unwrap_err();
    assert_eq!(code(e), tonic::Code::InvalidArgument, "one weight for two prefetches");
}

/// Custom sharding through the Rust client: CreateShardKey, ListShardKeys, DeleteShardKey, and
/// `shard_key_selector` on upsert, count, query and scroll, checked against a model of points per key.
#[tokio::test]
async fn shard_keys_through_the_rust_client() {
    use qdrant_client::qdrant::{
        CreateShardKey, CreateShardKeyRequest, DeleteShardKey, DeleteShardKeyRequest, ShardKey,
        ShardingMethod,
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let client = server.client(None);
    let create = CreateCollectionBuilder::new("sk")
        .vectors_config(VectorParamsBuilder::new(2, Distance::Euclid))
        .sharding_method(ShardingMethod::Custom as i32)
        .shard_number(2);
    client.create_collection(create).await.unwrap();
    let new_key = |key: ShardKey, shards: Option<u32>| CreateShardKeyRequest {
        collection_name: "sk".into(),
        request: Some(CreateShardKey { shard_key: Some(key), shards_number: shards, ..Default::default() }),
        timeout: None,
    };
    assert!(client.create_shard_key(new_key("a".into(), None)).await.unwrap().result);
    assert!(client.create_shard_key(new_key(7u64.into(), Some(1))).await.unwrap().result);
    let dup = client.create_shard_key(new_key("a".into(), None)).await.unwrap_err();
    assert!(dup.to_string().contains("Shard key a already exists"), "{dup}");
    assert_eq!(code(dup), tonic::Code::InvalidArgument);
    let listed = client.list_shard_keys("sk").await.unwrap().shard_keys;
    let listed: Vec<ShardKey> = listed.into_iter().filter_map(|d| d.key).collect();
    assert_eq!(listed, vec![ShardKey::from("a"), ShardKey::from(7u64)]);

    // Id 3 is stored under both keys, with different vectors.
    let model: Vec<(&str, u64, [f32; 2])> = vec![
        ("a", 1, [0.0, 0.0]),
        ("a", 2, [1.0, 0.0]),
        ("a", 3, [5.0, 5.0]),
        ("7", 3, [0.5, 0.5]),
        ("7", 4, [2.0, 2.0]),
    ];
    for (key, id, v) in &model {
        let point = PointStruct::new(*id, v.to_vec(), Payload::new());
        let upsert = UpsertPointsBuilder::new("sk", vec![point]).wait(true);
        let upsert = match *key {
            "a" => upsert.shard_key_selector("a".to_string()),
            _ => upsert.shard_key_selector(7u64),
        };
        client.upsert_points(upsert).await.unwrap();
    }
    let refused = client
        .upsert_points(UpsertPointsBuilder::new(
            "sk",
            vec![PointStruct::new(9, vec![0.0, 0.0], Payload::new())],
        ))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Shard key not specified"), "{refused}");

    let count = |sel: Option<u64>, key: Option<&str>| {
        let mut b = CountPointsBuilder::new("sk").exact(true);
        if let Some(k) = key {
            b = b.shard_key_selector(k.to_string());
        }
        if let Some(n) = sel {
            b = b.shard_key_selector(n);
        }
        let client = &client;
        async move { client.count(b).await.unwrap().result.unwrap().count }
    };
    assert_eq!(count(None, Some("a")).await, 3);
    assert_eq!(count(Some(7), None).await, 2);
    assert_eq!(count(None, None).await, 5, "every copy counts");

    // Nearest to (0.5, 0.5): through every key id 3 is found once, by its copy under 7 (distance 0).
    let query = |key: Option<&str>| {
        let mut b = QueryPointsBuilder::new("sk")
            .query(Query::new_nearest(vec![0.5, 0.5]))
            .params(SearchParamsBuilder::default().exact(true))
            .limit(10);
        if let Some(k) = key {
            b = b.shard_key_selector(k.to_string());
        }
        let client = &client;
        async move {
            let points = client.query(b).await.unwrap().result;
            points.into_iter().map(|p| (num(&p.id), p.score)).collect::<Vec<_>>()
        }
    };
    let brute = |keys: &[&str]| {
        let mut best: BTreeMap<u64, f32> = BTreeMap::new();
        for (_, id, v) in model.iter().filter(|(k, _, _)| keys.contains(k)) {
            let d = ((v[0] - 0.5).powi(2) + (v[1] - 0.5).powi(2)).sqrt();
            let e = best.entry(*id).or_insert(f32::INFINITY);
            *e = e.min(d);
        }
        let mut out: Vec<(u64, f32)> = best.into_iter().collect();
        out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out
    };
    for (key, keys) in [(None, vec!["a", "7"]), (Some("a"), vec!["a"])] {
        let got = query(key).await;
        let want = brute(&keys);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), want.iter().map(|w| w.0).collect::<Vec<_>>());
        for (g, w) in got.iter().zip(&want) {
            assert!((g.1 - w.1).abs() < 1e-4, "{got:?} vs {want:?}");
        }
    }

    let delete = |key: ShardKey| DeleteShardKeyRequest {
        collection_name: "sk".into(),
        request: Some(DeleteShardKey { shard_key: Some(key) }),
        timeout: None,
    };
    assert!(client.delete_shard_key(delete("a".into())).await.unwrap().result);
    let missing = client.delete_shard_key(delete("a".into())).await.unwrap_err();
    assert!(missing.to_string().contains("Shard key a not found"), "{missing}");
    let listed = client.list_shard_keys("sk").await.unwrap().shard_keys;
    assert_eq!(listed.into_iter().filter_map(|d| d.key).collect::<Vec<_>>(), vec![ShardKey::from(7u64)]);
    let page = client.scroll(ScrollPointsBuilder::new("sk").limit(10)).await.unwrap().result;
    assert_eq!(page.iter().map(|p| num(&p.id)).collect::<Vec<_>>(), vec![3, 4]);
}
