//! Custom sharding on a 3-node in-process cluster against a single-node oracle: shard keys created and
//! dropped through the metadata group from different nodes, their shards placed by rendezvous hashing
//! with their replication factor, writes routed by key through any node, and reads with and without
//! selectors equal to the oracle's on every node.

use grape::{
    Collection, CountRequest, CreateCollection, CreateShardKey, Database, Distance, PointStruct,
    ScrollRequest, SearchRequest, ShardKey, ShardKeySelector, ShardingMethod, VectorParams, VectorsConfig,
    WithPayload, WithVector,
};
use grape_testkit::TestCluster;
use rand::{Rng, SeedableRng};

const DIM: usize = 6;

fn request() -> CreateCollection {
    let mut r = CreateCollection::new(VectorsConfig::Single(VectorParams::new(DIM, Distance::Dot)));
    r.sharding_method = Some(ShardingMethod::Custom);
    r.shard_number = Some(2);
    r.replication_factor = Some(2);
    r
}

fn points(ids: std::ops::Range<u64>, seed: u64) -> Vec<PointStruct> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    ids.map(|i| {
        let mut p = PointStruct::new(i, (0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect::<Vec<f32>>());
        p.payload = serde_json::json!({ "seed": seed }).as_object().cloned();
        p
    })
    .collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

fn one(key: impl Into<ShardKey>) -> Option<ShardKeySelector> {
    Some(ShardKeySelector::One(key.into()))
}

fn write(db: &Database, key: Option<ShardKeySelector>, points: Vec<PointStruct>) -> grape::Result<()> {
    db.collection("c")?.select(key.as_ref())?.upsert(points).map(|_| ())
}

/// Search, scroll and count of `db` through `selector` equal the oracle's.
fn assert_same_reads(db: &Database, oracle: &Database, selector: Option<&ShardKeySelector>) {
    let view = |d: &Database| -> Collection { d.collection("c").unwrap().select(selector).unwrap() };
    let (c, o) = (view(db), view(oracle));
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..5 {
        let mut req = SearchRequest::new((0..DIM).map(|_| rng.gen_range(-1.0..1.0)).collect(), 8);
        req.params.exact = true;
        req.with_payload = WithPayload::Enable(true);
        let (got, want) = (c.search(&req).unwrap(), o.search(&req).unwrap());
        assert_eq!(
            got.iter().map(|p| p.id).collect::<Vec<_>>(),
            want.iter().map(|p| p.id).collect::<Vec<_>>()
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g.score - w.score).abs() < 1e-5, "{selector:?}");
            assert_eq!(g.payload, w.payload, "{selector:?}");
        }
    }
    let scroll = ScrollRequest {
        offset: None,
        limit: 1000,
        with_payload: WithPayload::Enable(true),
        with_vector: WithVector::Enable(false),
        filter: None,
    };
    assert_eq!(c.scroll(&scroll).unwrap(), o.scroll(&scroll).unwrap(), "{selector:?}");
    let count = CountRequest { filter: None, exact: true };
    assert_eq!(c.count(&count).unwrap(), o.count(&count).unwrap(), "{selector:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shard_keys_through_the_metadata_group() {
    let cluster = TestCluster::start(3).await;
    let dbs: Vec<Database> = cluster.nodes.iter().map(|n| n.db()).collect();
    let odir = tempfile::tempdir().unwrap();
    let oracle = Database::open(odir.path()).unwrap();
    oracle.create_collection("c", request()).unwrap();

    let d0 = dbs[0].clone();
    blocking(move || d0.create_collection("c", request()).unwrap()).await;
    let mut seven = CreateShardKey::new(7.into());
    seven.shards_number = Some(1);
    seven.replication_factor = Some(3);
    for (node, req) in [(0, CreateShardKey::new("a".into())), (1, seven)] {
        let (db, r, o) = (dbs[node].clone(), req.clone(), oracle.clone());
        blocking(move || db.create_shard_key("c", &r).unwrap()).await;
        o.create_shard_key("c", &req).unwrap();
    }
    let want_keys = vec![ShardKey::from("a"), ShardKey::from(7)];
    cluster
        .wait_until("every node has both keys", |c| {
            c.running().all(|n| n.db().list_shard_keys("c").ok().as_ref() == Some(&want_keys))
        })
        .await;
    // "a" has the collection's 2 shards with 2 replicas each, 7 one shard on all three nodes.
    let placement = cluster.nodes[2].handle().placement("c").unwrap();
    assert_eq!(placement.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 3]);
    let e = blocking({
        let db = dbs[2].clone();
        move || db.create_shard_key("c", &CreateShardKey::new("a".into())).unwrap_err()
    })
    .await;
    assert_eq!(e.to_string(), "Wrong input: Shard key a already exists");

    // Writes through every node, routed by key; id 10..20 exist under both keys with other vectors.
    let writes =
        [(0, one("a"), points(0..20, 1)), (1, one(7), points(10..40, 2)), (2, one("a"), points(40..60, 3))];
    for (node, key, batch) in writes {
        let (db, k, b) = (dbs[node].clone(), key.clone(), batch.clone());
        blocking(move || write(&db, k, b).unwrap()).await;
        write(&oracle, key, batch).unwrap();
    }
    let db = dbs[1].clone();
    let e = blocking(move || write(&db, None, points(0..1, 9)).unwrap_err()).await;
    assert_eq!(e.to_string(), "Wrong input: Shard key not specified");
    let db = dbs[1].clone();
    let e = blocking(move || write(&db, one("zz"), points(0..1, 9)).unwrap_err()).await;
    assert_eq!(e.to_string(), "Wrong input: Shard key zz not found");

    cluster.wait_replicated("c").await;
    let both = Some(ShardKeySelector::Many(vec!["a".into(), 7.into()]));
    for db in &dbs {
        for sel in [None, one("a"), one(7), both.clone()] {
            let (db, o) = (db.clone(), oracle.clone());
            blocking(move || assert_same_reads(&db, &o, sel.as_ref())).await;
        }
    }

    // Dropping "a" through a third node: every node loses its shards and their replicas.
    let db = dbs[2].clone();
    blocking(move || db.delete_shard_key("c", &"a".into()).unwrap()).await;
    oracle.delete_shard_key("c", &"a".into()).unwrap();
    cluster
        .wait_until("every node dropped key a and its replicas", |c| {
            c.running().all(|n| {
                n.db().list_shard_keys("c").ok() == Some(vec![ShardKey::from(7)])
                    && n.handle().shard_applied("c", 0).is_none()
                    && n.handle().shard_applied("c", 1).is_none()
            })
        })
        .await;
    let placement = cluster.nodes[0].handle().placement("c").unwrap();
    assert_eq!(placement.iter().map(Vec::len).collect::<Vec<_>>(), vec![0, 0, 3]);
    for db in &dbs {
        for sel in [None, one(7)] {
            let (db, o) = (db.clone(), oracle.clone());
            blocking(move || assert_same_reads(&db, &o, sel.as_ref())).await;
        }
        let db = db.clone();
        let e = blocking(move || db.collection("c").unwrap().select(one("a").as_ref()).err().unwrap()).await;
        assert_eq!(e.to_string(), "Wrong input: Shard key a not found");
    }
    // A key created again gets new shard ids (and so new replica groups), starting empty.
    let db = dbs[0].clone();
    blocking(move || db.create_shard_key("c", &CreateShardKey::new("a".into())).unwrap()).await;
    let placement = cluster.nodes[0].handle().placement("c").unwrap();
    assert_eq!(placement.iter().map(Vec::len).collect::<Vec<_>>(), vec![0, 0, 3, 2, 2]);
    let db = dbs[0].clone();
    let n = blocking(move || {
        let c = db.collection("c").unwrap().select(one("a").as_ref()).unwrap();
        c.count(&CountRequest { filter: None, exact: true }).unwrap()
    })
    .await;
    assert_eq!(n, 0);
}
