//! The gRPC RPCs beyond search and query, through the official Rust client (`qdrant-client`) against a
//! real `grape serve`, each answer compared with what the REST API returns for the same request on the
//! same data (ids, scores to 1e-4, payloads): legacy recommend / discover (single, batch, groups),
//! search and query groups, facet, the distance matrix; vector updates and deletions, batch updates,
//! payload indexes, collection updates with quantization, snapshots; bad input and deadlines; gRPC
//! over TLS with the HTTPS certificate.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qdrant_client::qdrant::point_id::PointIdOptions;
use qdrant_client::qdrant::{
    self as pb, quantization_config, quantization_config_diff, vector_example, vectors_config_diff,
    CreateCollectionBuilder, Distance, PointId, PointStruct, ScoredPoint, UpsertPointsBuilder,
    VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use serde_json::{json, Value};

const DIM: usize = 8;
const POINTS: u64 = 200;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `grape serve` child process with both front ends; killed on drop.
struct Server {
    child: Child,
    grpc: String,
    rest: String,
    http: reqwest::Client,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let (http, grpc) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_grape"))
            .args(["serve", "--host", "127.0.0.1", "--http-port", &http.to_string()])
            .args(["--grpc-port", &grpc.to_string(), "--storage-path"])
            .arg(dir.join("data"))
            .args(extra)
            .env("GRAPE__LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start grape");
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [grpc, http] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "port {port} did not open");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Server {
            child,
            grpc: format!("http://127.0.0.1:{grpc}"),
            rest: format!("http://127.0.0.1:{http}"),
            http: reqwest::Client::new(),
        }
    }

    fn client(&self) -> Qdrant {
        Qdrant::from_url(&self.grpc).skip_compatibility_check().build().unwrap()
    }

    /// A REST call's `result`, asserting success.
    async fn rest(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = self.http.request(method, format!("{}{path}", self.rest)).json(&body).send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {body}");
        body["result"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.rest(reqwest::Method::POST, path, body).await
    }

    async fn get(&self, path: &str) -> Value {
        self.rest(reqwest::Method::GET, path, json!(null)).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic pseudo-random vectors with components in [-1, 1) (xorshift).
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

fn payload(i: u64) -> Payload {
    let group = ["a", "b", "c", "d"][(i % 4) as usize];
    Payload::try_from(
        json!({"group": group, "n": i, "even": i.is_multiple_of(2), "tags": [group, format!("t{}", i % 5)]}),
    )
    .unwrap()
}

fn id(n: u64) -> PointId {
    PointId { point_id_options: Some(PointIdOptions::Num(n)) }
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

/// (id, score, payload) of gRPC hits.
fn grpc_hits(points: &[ScoredPoint]) -> Vec<Hit> {
    points.iter().map(|p| (num(&p.id), p.score, Value::from(Payload::from(p.payload.clone())))).collect()
}

/// (id, score, payload) of REST hits; a missing payload is an empty one, as gRPC has no "none".
fn rest_hits(points: &Value) -> Vec<Hit> {
    points
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let payload = match &p["payload"] {
                Value::Null => json!({}),
                v => v.clone(),
            };
            (p["id"].as_u64().unwrap(), p["score"].as_f64().unwrap() as f32, payload)
        })
        .collect()
}

fn assert_same(grpc: &[Hit], rest: &[Hit], what: &str) {
    assert!(!rest.is_empty(), "{what}: REST found nothing");
    let ids = |h: &[Hit]| h.iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(ids(grpc), ids(rest), "{what}: ids");
    for (g, r) in grpc.iter().zip(rest) {
        assert!((g.1 - r.1).abs() < 1e-4, "{what}: score of {}: {} vs {}", g.0, g.1, r.1);
        assert_eq!(g.2, r.2, "{what}: payload of {}", g.0);
    }
}

/// (id, score, payload) of one hit.
type Hit = (u64, f32, Value);

fn grpc_groups(groups: &Option<pb::GroupsResult>) -> Vec<(Value, Vec<Hit>)> {
    groups
        .as_ref()
        .unwrap()
        .groups
        .iter()
        .map(|g| {
            let gid = match g.id.as_ref().and_then(|i| i.kind.clone()) {
                Some(pb::group_id::Kind::StringValue(s)) => json!(s),
                Some(pb::group_id::Kind::UnsignedValue(u)) => json!(u),
                Some(pb::group_id::Kind::IntegerValue(i)) => json!(i),
                None => Value::Null,
            };
            (gid, grpc_hits(&g.hits))
        })
        .collect()
}

fn assert_same_groups(grpc: &Option<pb::GroupsResult>, rest: &Value, what: &str) {
    let grpc = grpc_groups(grpc);
    let rest: Vec<(Value, Vec<Hit>)> =
        rest["groups"].as_array().unwrap().iter().map(|g| (g["id"].clone(), rest_hits(&g["hits"]))).collect();
    assert!(!rest.is_empty(), "{what}: REST found no groups");
    assert_eq!(grpc.len(), rest.len(), "{what}: number of groups");
    for ((gid, ghits), (rid, rhits)) in grpc.iter().zip(&rest) {
        assert_eq!(gid, rid, "{what}: group id");
        assert_same(ghits, rhits, &format!("{what}: group {gid}"));
    }
}

fn example(n: u64) -> Option<pb::VectorExample> {
    Some(pb::VectorExample { example: Some(vector_example::Example::Id(id(n))) })
}

fn with_payload() -> Option<pb::WithPayloadSelector> {
    Some(pb::WithPayloadSelector {
        selector_options: Some(pb::with_payload_selector::SelectorOptions::Enable(true)),
    })
}

async fn filled(s: &Server, name: &str) -> Qdrant {
    let client = s.client();
    client
        .create_collection(
            CreateCollectionBuilder::new(name)
                .vectors_config(VectorParamsBuilder::new(DIM as u64, Distance::Cosine)),
        )
        .await
        .unwrap();
    let points: Vec<PointStruct> = (0..POINTS).map(|i| PointStruct::new(i, vector(i), payload(i))).collect();
    client.upsert_points(UpsertPointsBuilder::new(name, points).wait(true)).await.unwrap();
    client
}

#[tokio::test]
async fn legacy_and_grouped_reads_equal_rest() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let client = filled(&s, "c").await;
    let c = "c".to_owned();

    // Recommend, each strategy, by ids and by a vector.
    for (strategy, name) in [(0, "average_vector"), (1, "best_score"), (2, "sum_scores")] {
        let req = pb::RecommendPoints {
            collection_name: c.clone(),
            positive: vec![id(1), id(2)],
            negative: vec![id(3)],
            positive_vectors: vec![vector(1000).into()],
            strategy: Some(strategy),
            limit: 7,
            with_payload: with_payload(),
            ..Default::default()
        };
        let got = client.recommend(req.clone()).await.unwrap();
        let rest = s
            .post(
                "/collections/c/points/recommend",
                json!({"positive": [1, 2, vector(1000)], "negative": [3], "strategy": name, "limit": 7,
                       "with_payload": true}),
            )
            .await;
        assert_same(&grpc_hits(&got.result), &rest_hits(&rest), &format!("recommend {name}"));
        let batch = pb::RecommendBatchPoints {
            collection_name: c.clone(),
            recommend_points: vec![req],
            ..Default::default()
        };
        let got = client.recommend_batch(batch).await.unwrap();
        assert_same(&grpc_hits(&got.result[0].result), &rest_hits(&rest), &format!("recommend batch {name}"));
    }

    // Discover with a target, and context search without one.
    let pairs = vec![
        pb::ContextExamplePair { positive: example(10), negative: example(11) },
        pb::ContextExamplePair { positive: example(12), negative: example(13) },
    ];
    let discover = pb::DiscoverPoints {
        collection_name: c.clone(),
        target: Some(pb::TargetVector {
            target: Some(pb::target_vector::Target::Single(example(5).unwrap())),
        }),
        context: pairs.clone(),
        limit: 6,
        with_payload: with_payload(),
        ..Default::default()
    };
    let got = client.discover(discover.clone()).await.unwrap();
    let context_json = json!([{"positive": 10, "negative": 11}, {"positive": 12, "negative": 13}]);
    let rest = s
        .post(
            "/collections/c/points/discover",
            json!({"target": 5, "context": context_json, "limit": 6, "with_payload": true}),
        )
        .await;
    assert_same(&grpc_hits(&got.result), &rest_hits(&rest), "discover");
    let context_only = pb::DiscoverPoints { target: None, ..discover.clone() };
    let batch = pb::DiscoverBatchPoints {
        collection_name: c.clone(),
        discover_points: vec![discover, context_only],
        ..Default::default()
    };
    let got = client.discover_batch(&batch).await.unwrap();
    assert_same(&grpc_hits(&got.result[0].result), &rest_hits(&rest), "discover batch");
    let rest = s
        .post(
            "/collections/c/points/discover",
            json!({"context": context_json, "limit": 6, "with_payload": true}),
        )
        .await;
    assert_same(&grpc_hits(&got.result[1].result), &rest_hits(&rest), "context search");

    // Groups: legacy search and recommend, and the Query API.
    let q = vector(2000);
    let search = pb::SearchPointGroups {
        collection_name: c.clone(),
        vector: q.clone(),
        limit: 3,
        group_size: 2,
        group_by: "group".into(),
        with_payload: with_payload(),
        ..Default::default()
    };
    let got = client.search_groups(search).await.unwrap();
    let rest = s
        .post(
            "/collections/c/points/search/groups",
            json!({"vector": q, "limit": 3, "group_size": 2, "group_by": "group", "with_payload": true}),
        )
        .await;
    assert_same_groups(&got.result, &rest, "search groups");
    let recommend = pb::RecommendPointGroups {
        collection_name: c.clone(),
        positive: vec![id(7)],
        limit: 2,
        group_size: 3,
        group_by: "tags".into(),
        with_payload: with_payload(),
        ..Default::default()
    };
    let got = client.recommend_groups(recommend).await.unwrap();
    let rest = s
        .post(
            "/collections/c/points/recommend/groups",
            json!({"positive": [7], "limit": 2, "group_size": 3, "group_by": "tags", "with_payload": true}),
        )
        .await;
    assert_same_groups(&got.result, &rest, "recommend groups");
    let query = pb::QueryPointGroups {
        collection_name: c.clone(),
        query: Some(pb::Query::new_nearest(q.clone())),
        group_by: "n".into(),
        limit: Some(4),
        group_size: Some(1),
        with_payload: with_payload(),
        with_lookup: Some(pb::WithLookup { collection: c.clone(), ..Default::default() }),
        ..Default::default()
    };
    let got = client.query_groups(query).await.unwrap();
    let rest = s
        .post(
            "/collections/c/points/query/groups",
            json!({"query": q, "group_by": "n", "limit": 4, "group_size": 1, "with_payload": true,
                   "with_lookup": "c"}),
        )
        .await;
    assert_same_groups(&got.result, &rest, "query groups");
    let groups = got.result.unwrap().groups;
    for (g, r) in groups.iter().zip(rest["groups"].as_array().unwrap()) {
        let lookup = g.lookup.as_ref().expect("a lookup point");
        assert_eq!(json!(num(&lookup.id)), r["lookup"]["id"]);
        assert_eq!(Value::from(Payload::from(lookup.payload.clone())), r["lookup"]["payload"]);
    }

    // Cluster information of a single node, as REST reports it.
    let cluster = client.collection_cluster_info("c").await.unwrap();
    let rest = s.get("/collections/c/cluster").await;
    assert_eq!(json!(cluster.peer_id), rest["peer_id"]);
    assert_eq!(json!(cluster.shard_count), rest["shard_count"]);
    let shards: Vec<Value> = cluster
        .local_shards
        .iter()
        .map(|l| json!({"shard_id": l.shard_id, "points_count": l.points_count, "state": "Active"}))
        .collect();
    assert!(cluster.local_shards.iter().all(|l| l.state == pb::ReplicaState::Active as i32));
    assert_eq!(json!(shards), rest["local_shards"]);
    assert_eq!(cluster.local_shards.iter().map(|l| l.points_count).sum::<u64>(), POINTS);
    assert!(cluster.remote_shards.is_empty() && cluster.shard_transfers.is_empty());

    // Facet counts.
    let facet = pb::FacetCounts {
        collection_name: c.clone(),
        key: "tags".into(),
        limit: Some(20),
        ..Default::default()
    };
    let got = client.facet(facet).await.unwrap();
    let rest = s.post("/collections/c/facet", json!({"key": "tags", "limit": 20})).await;
    let got: Vec<(Value, u64)> = got
        .hits
        .iter()
        .map(|h| {
            let v = match h.value.as_ref().and_then(|v| v.variant.clone()) {
                Some(pb::facet_value::Variant::StringValue(s)) => json!(s),
                Some(pb::facet_value::Variant::IntegerValue(i)) => json!(i),
                Some(pb::facet_value::Variant::BoolValue(b)) => json!(b),
                None => Value::Null,
            };
            (v, h.count)
        })
        .collect();
    let want: Vec<(Value, u64)> = rest["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["value"].clone(), h["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got.len(), 9, "4 groups and 5 t-tags");

    // The distance matrix, over all points that pass the filter (sample >= count: deterministic).
    let filter =
        pb::Filter::must([pb::Condition::range("n", pb::Range { lt: Some(30.0), ..Default::default() })]);
    let matrix = pb::SearchMatrixPoints {
        collection_name: c.clone(),
        filter: Some(filter),
        sample: Some(30),
        limit: Some(3),
        ..Default::default()
    };
    let body = json!({"sample": 30, "limit": 3, "filter": {"must": [{"key": "n", "range": {"lt": 30}}]}});
    let pairs = client.search_matrix_pairs(matrix.clone()).await.unwrap().result.unwrap();
    let rest = s.post("/collections/c/points/search/matrix/pairs", body.clone()).await;
    let rest_pairs = rest["pairs"].as_array().unwrap();
    assert_eq!(pairs.pairs.len(), rest_pairs.len());
    assert_eq!(pairs.pairs.len(), 90);
    for (g, r) in pairs.pairs.iter().zip(rest_pairs) {
        assert_eq!((json!(num(&g.a)), json!(num(&g.b))), (r["a"].clone(), r["b"].clone()));
        assert!((g.score - r["score"].as_f64().unwrap() as f32).abs() < 1e-4);
    }
    let offsets = client.search_matrix_offsets(matrix).await.unwrap().result.unwrap();
    let rest = s.post("/collections/c/points/search/matrix/offsets", body).await;
    assert_eq!(json!(offsets.offsets_row), rest["offsets_row"]);
    assert_eq!(json!(offsets.offsets_col), rest["offsets_col"]);
    assert_eq!(json!(offsets.ids.iter().map(|i| num(&Some(i.clone()))).collect::<Vec<_>>()), rest["ids"]);
}

fn ids_selector(list: &[u64]) -> Option<pb::PointsSelector> {
    Some(pb::PointsSelector {
        points_selector_one_of: Some(pb::points_selector::PointsSelectorOneOf::Points(pb::PointsIdsList {
            ids: list.iter().map(|&n| id(n)).collect(),
        })),
    })
}

mod access;
mod admin;
mod writes;
