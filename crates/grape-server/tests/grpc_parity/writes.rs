//! Vector updates and deletions, batch updates, payload indexes, collection updates with quantization.

use super::*;

fn named(vectors: &[(&str, Vec<f32>)]) -> Option<pb::Vectors> {
    Some(pb::Vectors {
        vectors_options: Some(pb::vectors::VectorsOptions::Vectors(pb::NamedVectors {
            vectors: vectors.iter().map(|(k, v)| ((*k).to_owned(), pb::Vector::from(v.clone()))).collect(),
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
