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

fn named(vectors: &[(&str, Vec<f32>)]) -> Option<pb::Vectors> {
    Some(pb::Vectors {
        vectors_options: Some(pb::vectors::VectorsOptions::Vectors(pb::NamedVectors {
            vectors: vectors.iter().map(|(k, v)| ((*k).to_owned(), pb::Vector::from(v.clone()))).collect(),
        })),
    })
}

fn ids_selector(list: &[u64]) -> Option<pb::PointsSelector> {
    Some(pb::PointsSelector {
        points_selector_one_of: Some(pb::points_selector::PointsSelectorOneOf::Points(pb::PointsIdsList {
            ids: list.iter().map(|&n| id(n)).collect(),
        })),
    })
}

// `always_ram` and `on_disk` are deprecated in the client for `memory` (storage tiers), which Grape has not
// built; the deprecated fields are the ones it reads.
#[allow(deprecated)]
#[tokio::test]
async fn writes_indexes_and_collection_updates() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let client = s.client();
    let binary = pb::QuantizationConfig {
        quantization: Some(quantization_config::Quantization::Binary(pb::BinaryQuantization {
            always_ram: Some(true),
            encoding: Some(pb::BinaryQuantizationEncoding::TwoBits as i32),
            ..Default::default()
        })),
    };
    let mut params = pb::VectorParamsMap::default();
    params.map.insert("a".into(), VectorParamsBuilder::new(4, Distance::Dot).build());
    let mut b = VectorParamsBuilder::new(4, Distance::Euclid).build();
    b.quantization_config = Some(binary);
    params.map.insert("b".into(), b);
    client
        .create_collection(CreateCollectionBuilder::new("w").vectors_config(pb::VectorsConfig {
            config: Some(pb::vectors_config::Config::ParamsMap(params)),
        }))
        .await
        .unwrap();
    let rest = s.get("/collections/w").await;
    assert_eq!(
        rest["config"]["params"]["vectors"]["b"]["quantization_config"],
        json!({"binary": {"always_ram": true, "encoding": "two_bits"}})
    );

    // Update batch: upsert, set payload, vector update and deletion, one result per operation.
    let upsert = pb::PointsUpdateOperation {
        operation: Some(pb::points_update_operation::Operation::Upsert(
            pb::points_update_operation::PointStructList {
                points: (0..10)
                    .map(|i| PointStruct {
                        id: Some(id(i)),
                        vectors: named(&[
                            ("a", vec![i as f32, 1.0, 0.0, 0.0]),
                            ("b", vec![0.0, i as f32, 0.0, 1.0]),
                        ]),
                        payload: payload(i).into(),
                    })
                    .collect(),
                ..Default::default()
            },
        )),
    };
    let set = pb::PointsUpdateOperation {
        operation: Some(pb::points_update_operation::Operation::SetPayload(
            pb::points_update_operation::SetPayload {
                payload: Payload::try_from(json!({"x": 1})).unwrap().into(),
                points_selector: ids_selector(&[1, 2]),
                ..Default::default()
            },
        )),
    };
    let batch = pb::UpdateBatchPoints {
        collection_name: "w".into(),
        wait: Some(true),
        operations: vec![upsert, set],
        ..Default::default()
    };
    let results = client.update_points_batch(batch).await.unwrap().result;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.status == pb::UpdateStatus::Completed as i32));
    let rest = s.post("/collections/w/points", json!({"ids": [1, 3], "with_payload": true})).await;
    assert_eq!(rest[0]["payload"]["x"], json!(1));
    assert_eq!(rest[1]["payload"].get("x"), None);

    // UpdateVectors replaces one named vector, DeleteVectors removes one.
    let update = pb::UpdatePointVectors {
        collection_name: "w".into(),
        wait: Some(true),
        points: vec![pb::PointVectors {
            id: Some(id(4)),
            vectors: named(&[("a", vec![9.0, 9.0, 9.0, 9.0])]),
        }],
        ..Default::default()
    };
    client.update_vectors(update).await.unwrap();
    let delete = pb::DeletePointVectors {
        collection_name: "w".into(),
        wait: Some(true),
        points_selector: ids_selector(&[5]),
        vectors: Some(pb::VectorsSelector { names: vec!["b".into()] }),
        ..Default::default()
    };
    client.delete_vectors(delete).await.unwrap();
    let rest = s.post("/collections/w/points", json!({"ids": [4, 5], "with_vector": true})).await;
    assert_eq!(rest[0]["vector"], json!({"a": [9.0, 9.0, 9.0, 9.0], "b": [0.0, 4.0, 0.0, 1.0]}));
    assert_eq!(rest[1]["vector"], json!({"a": [5.0, 1.0, 0.0, 0.0]}));

    // Payload indexes: keyword with is_tenant, integer; visible in collection info; then dropped.
    let keyword = pb::CreateFieldIndexCollection {
        collection_name: "w".into(),
        wait: Some(true),
        field_name: "group".into(),
        field_type: Some(pb::FieldType::Keyword as i32),
        field_index_params: Some(pb::PayloadIndexParams {
            index_params: Some(pb::payload_index_params::IndexParams::KeywordIndexParams(
                pb::KeywordIndexParams { is_tenant: Some(true), ..Default::default() },
            )),
        }),
        ..Default::default()
    };
    let r = client.create_field_index(keyword).await.unwrap();
    assert_eq!(r.result.unwrap().status, pb::UpdateStatus::Completed as i32);
    let integer = pb::CreateFieldIndexCollection {
        collection_name: "w".into(),
        wait: Some(true),
        field_name: "n".into(),
        field_type: Some(pb::FieldType::Integer as i32),
        ..Default::default()
    };
    client.create_field_index(integer).await.unwrap();
    let rest = s.get("/collections/w").await;
    assert_eq!(rest["payload_schema"]["group"]["data_type"], "keyword");
    assert_eq!(rest["payload_schema"]["group"]["params"]["is_tenant"], true);
    assert_eq!(rest["payload_schema"]["n"]["data_type"], "integer");
    let info = client.collection_info("w").await.unwrap().result.unwrap();
    assert_eq!(info.payload_schema["group"].data_type, pb::PayloadSchemaType::Keyword as i32);
    let Some(pb::payload_index_params::IndexParams::KeywordIndexParams(keyword)) =
        info.payload_schema["group"].params.clone().and_then(|p| p.index_params)
    else {
        panic!("expected keyword index parameters over gRPC")
    };
    assert_eq!(keyword.is_tenant, Some(true));
    assert!(info.payload_schema["n"].params.is_none(), "an index created by type alone has no parameters");
    let drop = pb::DeleteFieldIndexCollection {
        collection_name: "w".into(),
        wait: Some(true),
        field_name: "n".into(),
        ..Default::default()
    };
    client.delete_field_index(drop).await.unwrap();
    assert!(s.get("/collections/w").await["payload_schema"].get("n").is_none());

    // Collection update: hnsw, optimizers, a vector's diff, collection quantization, then Disabled.
    let scalar = pb::QuantizationConfigDiff {
        quantization: Some(quantization_config_diff::Quantization::Scalar(pb::ScalarQuantization {
            r#type: pb::QuantizationType::Int8 as i32,
            quantile: Some(0.95),
            ..Default::default()
        })),
    };
    let mut diffs = pb::VectorParamsDiffMap::default();
    diffs.map.insert(
        "a".into(),
        pb::VectorParamsDiff {
            on_disk: Some(true),
            hnsw_config: Some(pb::HnswConfigDiff { m: Some(8), ..Default::default() }),
            ..Default::default()
        },
    );
    let update = pb::UpdateCollection {
        collection_name: "w".into(),
        hnsw_config: Some(pb::HnswConfigDiff { ef_construct: Some(64), ..Default::default() }),
        optimizers_config: Some(pb::OptimizersConfigDiff {
            indexing_threshold: Some(5000),
            ..Default::default()
        }),
        vectors_config: Some(pb::VectorsConfigDiff {
            config: Some(vectors_config_diff::Config::ParamsMap(diffs)),
        }),
        quantization_config: Some(scalar),
        ..Default::default()
    };
    assert!(client.update_collection(update).await.unwrap().result);
    let rest = s.get("/collections/w").await;
    let config = &rest["config"];
    assert_eq!(config["hnsw_config"]["ef_construct"], 64);
    assert_eq!(config["optimizer_config"]["indexing_threshold"], 5000);
    assert_eq!(config["params"]["vectors"]["a"]["on_disk"], true);
    assert_eq!(config["params"]["vectors"]["a"]["hnsw_config"]["m"], 8);
    assert_eq!(config["quantization_config"], json!({"scalar": {"type": "int8", "quantile": 0.95}}));
    let info = client.collection_info("w").await.unwrap().result.unwrap().config.unwrap();
    let Some(quantization_config::Quantization::Scalar(sq)) = info.quantization_config.unwrap().quantization
    else {
        panic!("expected scalar quantization over gRPC")
    };
    assert_eq!(sq.quantile, Some(0.95));
    let disable = pb::UpdateCollection {
        collection_name: "w".into(),
        quantization_config: Some(pb::QuantizationConfigDiff {
            quantization: Some(quantization_config_diff::Quantization::Disabled(pb::Disabled {})),
        }),
        ..Default::default()
    };
    client.update_collection(disable).await.unwrap();
    assert_eq!(s.get("/collections/w").await["config"]["quantization_config"], Value::Null);
    // Changing collection parameters is not built: refused by name.
    let params = pb::UpdateCollection {
        collection_name: "w".into(),
        params: Some(pb::CollectionParamsDiff { replication_factor: Some(2), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(code(client.update_collection(params).await.unwrap_err()), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn snapshots_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let client = filled(&s, "snap").await;
    let created = client.create_snapshot("snap").await.unwrap().snapshot_description.unwrap();
    assert!(created.size > 0 && created.creation_time.is_some() && created.checksum.is_some());
    let listed = client.list_snapshots("snap").await.unwrap().snapshot_descriptions;
    let rest = s.get("/collections/snap/snapshots").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(json!(listed[0].name), rest[0]["name"]);
    assert_eq!(json!(listed[0].size), rest[0]["size"]);
    assert_eq!(json!(listed[0].checksum), rest[0]["checksum"]);
    client
        .delete_snapshot(pb::DeleteSnapshotRequest {
            collection_name: "snap".into(),
            snapshot_name: created.name.clone(),
        })
        .await
        .unwrap();
    assert!(client.list_snapshots("snap").await.unwrap().snapshot_descriptions.is_empty());
    let missing = pb::DeleteSnapshotRequest { collection_name: "snap".into(), snapshot_name: created.name };
    assert_eq!(code(client.delete_snapshot(missing).await.unwrap_err()), tonic::Code::NotFound);
    assert_eq!(code(client.list_snapshots("nope").await.unwrap_err()), tonic::Code::NotFound);

    let full = client.create_full_snapshot().await.unwrap().snapshot_description.unwrap();
    let listed = client.list_full_snapshots().await.unwrap().snapshot_descriptions;
    assert_eq!(listed.iter().map(|d| d.name.clone()).collect::<Vec<_>>(), vec![full.name.clone()]);
    assert_eq!(s.get("/snapshots").await[0]["name"], json!(full.name));
    client.delete_full_snapshot(full.name).await.unwrap();
    assert!(client.list_full_snapshots().await.unwrap().snapshot_descriptions.is_empty());
}

#[tokio::test]
async fn bad_input_gets_qdrant_codes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let client = filled(&s, "e").await;
    let e = "e".to_owned();
    // Missing collection.
    let recommend = pb::RecommendPoints {
        collection_name: "nope".into(),
        positive: vec![id(1)],
        limit: 3,
        ..Default::default()
    };
    assert_eq!(code(client.recommend(recommend).await.unwrap_err()), tonic::Code::NotFound);
    // Missing required fields and empty oneofs.
    let no_examples = pb::RecommendPoints { collection_name: e.clone(), limit: 3, ..Default::default() };
    assert_eq!(code(client.recommend(no_examples).await.unwrap_err()), tonic::Code::InvalidArgument);
    let half = pb::DiscoverPoints {
        collection_name: e.clone(),
        context: vec![pb::ContextExamplePair { positive: example(1), negative: None }],
        limit: 3,
        ..Default::default()
    };
    assert_eq!(code(client.discover(half).await.unwrap_err()), tonic::Code::InvalidArgument);
    let empty_op = pb::UpdateBatchPoints {
        collection_name: e.clone(),
        operations: vec![pb::PointsUpdateOperation { operation: None }],
        ..Default::default()
    };
    assert_eq!(code(client.update_points_batch(empty_op).await.unwrap_err()), tonic::Code::InvalidArgument);
    let no_type = pb::CreateFieldIndexCollection {
        collection_name: e.clone(),
        field_name: "n".into(),
        ..Default::default()
    };
    assert_eq!(code(client.create_field_index(no_type).await.unwrap_err()), tonic::Code::InvalidArgument);
    let no_selector = pb::DeletePointVectors {
        collection_name: e.clone(),
        vectors: Some(pb::VectorsSelector { names: vec![String::new()] }),
        ..Default::default()
    };
    assert_eq!(code(client.delete_vectors(no_selector).await.unwrap_err()), tonic::Code::InvalidArgument);
    let no_group_by = pb::SearchPointGroups {
        collection_name: e.clone(),
        vector: vector(1),
        limit: 2,
        group_size: 1,
        ..Default::default()
    };
    assert_eq!(code(client.search_groups(no_group_by).await.unwrap_err()), tonic::Code::InvalidArgument);
    let zero_groups = pb::SearchPointGroups { group_by: "group".into(), group_size: 0, ..Default::default() };
    let zero_groups =
        pb::SearchPointGroups { collection_name: e.clone(), vector: vector(1), limit: 2, ..zero_groups };
    assert_eq!(code(client.search_groups(zero_groups).await.unwrap_err()), tonic::Code::InvalidArgument);
    let wrong_dim = pb::RecommendPoints {
        collection_name: e.clone(),
        positive_vectors: vec![vec![1.0].into()],
        limit: 3,
        ..Default::default()
    };
    assert_eq!(code(client.recommend(wrong_dim).await.unwrap_err()), tonic::Code::InvalidArgument);
    let turbo = pb::UpdateCollection {
        collection_name: e.clone(),
        quantization_config: Some(pb::QuantizationConfigDiff { quantization: None }),
        ..Default::default()
    };
    assert_eq!(code(client.update_collection(turbo).await.unwrap_err()), tonic::Code::InvalidArgument);
    let zero_timeout = pb::FacetCounts {
        collection_name: e.clone(),
        key: "group".into(),
        timeout: Some(0),
        ..Default::default()
    };
    assert_eq!(code(client.facet(zero_timeout).await.unwrap_err()), tonic::Code::InvalidArgument);
    // A vector to add needs its configuration.
    let add_vector = pb::CreateVectorNameRequest {
        collection_name: e.clone(),
        vector_name: "x".into(),
        ..Default::default()
    };
    assert_eq!(code(client.create_vector_name(add_vector).await.unwrap_err()), tonic::Code::InvalidArgument);
    // A large request is accepted, as Qdrant sets no message size limit (8 MiB of vectors, over tonic's
    // default 4 MiB).
    client
        .create_collection(
            CreateCollectionBuilder::new("big").vectors_config(VectorParamsBuilder::new(1024, Distance::Dot)),
        )
        .await
        .unwrap();
    let big: Vec<PointStruct> =
        (0..2048u64).map(|i| PointStruct::new(i, vec![i as f32; 1024], Payload::new())).collect();
    client.upsert_points(UpsertPointsBuilder::new("big", big).wait(true)).await.unwrap();
    let rest = s.post("/collections/big/points/count", json!({})).await;
    assert_eq!(rest["count"], json!(2048));
    // The server is still up after every refusal.
    assert!(client.health_check().await.is_ok());
}

#[tokio::test]
async fn grpc_over_tls_with_the_https_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let (http, grpc) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_grape"))
        .args(["serve", "--host", "127.0.0.1", "--http-port", &http.to_string()])
        .args(["--grpc-port", &grpc.to_string(), "--storage-path"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .env("GRAPE__LOG_LEVEL", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", grpc)).is_err() {
        assert!(Instant::now() < deadline, "gRPC port did not open");
        std::thread::sleep(Duration::from_millis(50));
    }
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert.cert.pem()))
        .domain_name("localhost");
    let channel = tonic::transport::Channel::from_shared(format!("https://localhost:{grpc}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut root = pb::qdrant_client::QdrantClient::new(channel.clone());
    let reply = root.health_check(pb::HealthCheckRequest {}).await.unwrap().into_inner();
    assert!(reply.version.starts_with("1."));
    let mut collections = pb::collections_client::CollectionsClient::new(channel);
    let create = CreateCollectionBuilder::new("tls")
        .vectors_config(VectorParamsBuilder::new(2, Distance::Dot))
        .build();
    assert!(collections.create(create).await.unwrap().into_inner().result);
    // A plaintext client gets no answer from the TLS port.
    let plain = Qdrant::from_url(&format!("http://127.0.0.1:{grpc}"))
        .skip_compatibility_check()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(plain.health_check().await.is_err());
    // Clients close their connections, then SIGTERM shuts down at once (an open idle connection would
    // hold the graceful shutdown for its grace period).
    drop((plain, root, collections));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // SAFETY: kill with a valid pid of our own child and a standard signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

#[tokio::test]
async fn read_only_keys_read_but_do_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--api-key", "full", "--read-only-api-key", "reader"]);
    let with_key = |key: &str| {
        Qdrant::from_url(&s.grpc).skip_compatibility_check().api_key(key.to_owned()).build().unwrap()
    };
    let (full, reader) = (with_key("full"), with_key("reader"));
    full.create_collection(
        CreateCollectionBuilder::new("k").vectors_config(VectorParamsBuilder::new(2, Distance::Dot)),
    )
    .await
    .unwrap();
    full.upsert_points(
        UpsertPointsBuilder::new("k", vec![PointStruct::new(1, vec![1.0, 0.0], payload(1))]).wait(true),
    )
    .await
    .unwrap();
    let k = "k".to_owned();
    // Reads pass.
    let facet = pb::FacetCounts { collection_name: k.clone(), key: "group".into(), ..Default::default() };
    assert_eq!(reader.facet(facet).await.unwrap().hits.len(), 1);
    let recommend = pb::RecommendPoints {
        collection_name: k.clone(),
        positive: vec![id(1)],
        limit: 1,
        ..Default::default()
    };
    reader.recommend(recommend).await.unwrap();
    assert!(reader.list_snapshots("k").await.unwrap().snapshot_descriptions.is_empty());
    // Writes are refused.
    let denied = |e: QdrantError| assert_eq!(code(e), tonic::Code::PermissionDenied);
    denied(reader.create_snapshot("k").await.unwrap_err());
    denied(reader.create_full_snapshot().await.unwrap_err());
    let index = pb::CreateFieldIndexCollection {
        collection_name: k.clone(),
        field_name: "group".into(),
        field_type: Some(pb::FieldType::Keyword as i32),
        ..Default::default()
    };
    denied(reader.create_field_index(index).await.unwrap_err());
    let batch = pb::UpdateBatchPoints {
        collection_name: k.clone(),
        operations: vec![pb::PointsUpdateOperation {
            operation: Some(pb::points_update_operation::Operation::ClearPayload(
                pb::points_update_operation::ClearPayload {
                    points: ids_selector(&[1]),
                    shard_key_selector: None,
                },
            )),
        }],
        ..Default::default()
    };
    denied(reader.update_points_batch(batch).await.unwrap_err());
    let update = pb::UpdateCollection {
        collection_name: k.clone(),
        hnsw_config: Some(pb::HnswConfigDiff { m: Some(8), ..Default::default() }),
        ..Default::default()
    };
    denied(reader.update_collection(update).await.unwrap_err());
    let vectors = pb::DeletePointVectors {
        collection_name: k,
        points_selector: ids_selector(&[1]),
        vectors: Some(pb::VectorsSelector { names: vec![String::new()] }),
        ..Default::default()
    };
    denied(reader.delete_vectors(vectors).await.unwrap_err());
    // Nothing changed.
    let info = full.collection_info("k").await.unwrap().result.unwrap();
    assert!(info.payload_schema.is_empty());
    assert_ne!(info.config.unwrap().hnsw_config.unwrap().m, Some(8));
    let point = full.get_points(pb::GetPoints {
        collection_name: "k".into(),
        ids: vec![id(1)],
        ..Default::default()
    });
    assert_eq!(point.await.unwrap().result[0].payload["group"], "b".into());
    assert!(full.list_full_snapshots().await.unwrap().snapshot_descriptions.is_empty());
}

/// CreateVectorName / DeleteVectorName change the collection as REST reports it and refuse what REST
/// refuses; UpdateCollectionClusterSetup answers a single node as REST's `POST /collections/{c}/cluster`
/// does; `GET /collections/{c}/optimizations` has Qdrant's shape and refuses unknown `with` fields.
#[tokio::test]
async fn vector_names_cluster_setup_and_optimizations() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let client = filled(&s, "vn").await;
    let mut points = pb::points_client::PointsClient::connect(s.grpc.clone()).await.unwrap();
    let create =
        |name: &str, config: pb::create_vector_name_request::VectorConfig| pb::CreateVectorNameRequest {
            collection_name: "vn".into(),
            wait: Some(true),
            vector_name: name.into(),
            vector_config: Some(config),
            ..Default::default()
        };
    let dense = pb::create_vector_name_request::VectorConfig::DenseConfig(pb::DenseVectorCreationConfig {
        size: 3,
        distance: Distance::Euclid as i32,
        ..Default::default()
    });
    let sparse = pb::create_vector_name_request::VectorConfig::SparseConfig(pb::SparseVectorCreationConfig {
        modifier: Some(pb::Modifier::Idf as i32),
        ..Default::default()
    });
    let r = points.create_vector_name(create("x", dense)).await.unwrap().into_inner();
    assert_eq!(r.result.unwrap().status, pb::UpdateStatus::Completed as i32);
    points.create_vector_name(create("s", sparse)).await.unwrap();
    let params = &s.get("/collections/vn").await["config"]["params"];
    assert_eq!(params["vectors"]["x"], json!({"size": 3, "distance": "Euclid"}));
    assert_eq!(params["vectors"][""]["size"], json!(DIM));
    assert_eq!(params["sparse_vectors"]["s"], json!({"modifier": "idf"}));
    // The new vector takes values; only points that have one are found by it.
    s.rest(
        reqwest::Method::PUT,
        "/collections/vn/points?wait=true",
        json!({"points": [
            {"id": 1, "vector": {"": vector(1), "x": [1.0, 2.0, 3.0]}}
        ]}),
    )
    .await;
    let hits = s
        .post("/collections/vn/points/query", json!({"query": [1.0, 2.0, 2.0], "using": "x", "limit": 10}))
        .await;
    assert_eq!(hits["points"].as_array().unwrap().len(), 1);
    assert_eq!(hits["points"][0]["id"], json!(1));

    let status = points.create_vector_name(create("x", dense)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let rest = s
        .http
        .put(format!("{}/collections/vn/vectors/x", s.rest))
        .json(&json!({"dense": {"size": 3, "distance": "Euclid"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 400);
    let delete = |collection: &str, name: &str| pb::DeleteVectorNameRequest {
        collection_name: collection.into(),
        wait: Some(true),
        vector_name: name.into(),
        ..Default::default()
    };
    points.delete_vector_name(delete("vn", "x")).await.unwrap();
    assert!(s.get("/collections/vn").await["config"]["params"]["vectors"].get("x").is_none());
    let status = points.delete_vector_name(delete("vn", "x")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let status = points.delete_vector_name(delete("nope", "x")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    let status = points
        .create_vector_name(pb::CreateVectorNameRequest { vector_config: None, ..create("y", dense) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    // Replica changes on a single node: refused as REST refuses them.
    let setup = |op| pb::UpdateCollectionClusterSetupRequest {
        collection_name: "vn".into(),
        operation: Some(op),
        timeout: None,
    };
    let mv = pb::update_collection_cluster_setup_request::Operation::MoveShard(pb::MoveShard {
        shard_id: 0,
        from_peer_id: 1,
        to_peer_id: 2,
        ..Default::default()
    });
    let e = client.update_collection_cluster_setup(setup(mv)).await.unwrap_err();
    assert_eq!(code(e), tonic::Code::InvalidArgument);
    let rest = s
        .http
        .post(format!("{}/collections/vn/cluster", s.rest))
        .json(&json!({"move_shard": {"shard_id": 0, "from_peer_id": 1, "to_peer_id": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 400);
    assert!(rest.text().await.unwrap().contains("Distributed mode disabled"));

    // Optimizations: Qdrant's shape; the optional parts only on request.
    let o = s.get("/collections/vn/optimizations").await;
    assert!(o["running"].is_array() && o.get("queued").is_none() && o.get("completed").is_none());
    for key in ["queued_optimizations", "queued_segments", "queued_points", "idle_segments"] {
        assert!(o["summary"][key].is_u64(), "{key}: {o}");
    }
    let o =
        s.get("/collections/vn/optimizations?with=queued,completed,idle_segments&completed_limit=3").await;
    assert!(o["queued"].is_array() && o["completed"].is_array() && o["idle_segments"].is_array(), "{o}");
    assert_eq!(
        o["idle_segments"].as_array().unwrap().len() as u64,
        o["summary"]["idle_segments"].as_u64().unwrap()
    );
    let bad = s.http.get(format!("{}/collections/vn/optimizations?with=bogus", s.rest)).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let missing = s.http.get(format!("{}/collections/nope/optimizations", s.rest)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}
