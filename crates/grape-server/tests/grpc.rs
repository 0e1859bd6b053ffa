//! The gRPC API through the official Rust client (`qdrant-client`) against a real `grape serve`
//! process: collections, aliases, writes, retrieval, search and query checked against a brute-force
//! oracle, scroll and count with a filter, payload operations, error codes and API keys.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::{
    ClearPayloadPointsBuilder, Condition, CountPointsBuilder, CreateAliasBuilder, CreateCollectionBuilder,
    DeletePayloadPointsBuilder, DeletePointsBuilder, Distance, Filter, GetPointsBuilder, PointId,
    PointStruct, PointsIdsList, Query, QueryPointsBuilder, ScalarQuantizationBuilder, ScrollPointsBuilder,
    SearchBatchPointsBuilder, SearchParamsBuilder, SearchPointsBuilder, SetPayloadPointsBuilder,
    UpsertPointsBuilder, Vector, VectorParamsBuilder,
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

/// Deterministic pseudo-random vectors (no dependency on a generator crate's stream).
fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect()
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
    assert!(text.contains("sparse"), "{text}");
    let e = client
        .create_collection(
            CreateCollectionBuilder::new("q")
                .vectors_config(VectorParamsBuilder::new(4, Distance::Dot))
                .quantization_config(ScalarQuantizationBuilder::default()),
        )
        .await
        .unwrap_err();
    assert_eq!(code(e), tonic::Code::InvalidArgument);
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
