//! Bad input and deadlines get Qdrant's status codes; TLS with the HTTPS certificate; read-only keys.

use super::*;

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
