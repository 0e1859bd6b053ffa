//! Snapshots, named vectors, cluster setup and optimizations over gRPC.

use super::*;

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
