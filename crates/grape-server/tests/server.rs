//! The `grape` binary as users run it: a real process, real sockets, checked with reqwest.
//! Error cases (status codes and Qdrant's error body), API keys, configuration sources, concurrent
//! writers and readers against a model, graceful shutdown and durability across `kill -9`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::{json, Value};

mod common;

use common::{assert_error, create, free_port, Server};

#[test]
fn error_answers_match_qdrant() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &["--max-request-size-mb", "1"], &[]);
    create(&s, "c", 4);

    // Malformed JSON and wrong types.
    let raw = s
        .client
        .put(s.url("/collections/c/points"))
        .header("content-type", "application/json")
        .body("{\"points\": [");
    let r = raw.send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().unwrap();
    assert!(body["status"]["error"].as_str().unwrap().contains("Json deserialize error"));
    // A valid body followed by more than whitespace is malformed too.
    let r = s
        .client
        .post(s.url("/collections/c/points/query"))
        .header("content-type", "application/json")
        .body("{\"query\": [1, 2, 3, 4]} {}")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().unwrap();
    assert!(body["status"]["error"].as_str().unwrap().contains("trailing characters"), "{body}");
    assert_error(
        s.call(
            "PUT",
            "/collections/c/points",
            Some(json!({"points": [{"id": "x", "vector": [1, 2, 3, 4]}]})),
        ),
        StatusCode::BAD_REQUEST,
        "Json deserialize error",
    );
    assert_error(
        s.call("POST", "/collections/c/points/scroll", Some(json!({"limit": "ten"}))),
        StatusCode::BAD_REQUEST,
        "limit",
    );
    // Unknown collection.
    assert_error(
        s.call("GET", "/collections/nope", None),
        StatusCode::NOT_FOUND,
        "Collection `nope` doesn't exist",
    );
    assert_error(
        s.call("POST", "/collections/nope/points/query", Some(json!({"query": [1, 2, 3, 4]}))),
        StatusCode::NOT_FOUND,
        "nope",
    );
    // Wrong dimension, on write and on search; nothing is written.
    assert_error(
        s.call(
            "PUT",
            "/collections/c/points?wait=true",
            Some(json!({"points": [
            {"id": 1, "vector": [1, 2, 3, 4]}, {"id": 2, "vector": [1, 2, 3]}]})),
        ),
        StatusCode::BAD_REQUEST,
        "expected dim: 4, got 3",
    );
    assert_eq!(s.ok("POST", "/collections/c/points/count", Some(json!({})))["count"], 0);
    assert_error(
        s.call("POST", "/collections/c/points/query", Some(json!({"query": [1, 2]}))),
        StatusCode::BAD_REQUEST,
        "expected dim: 4, got 2",
    );
    // Duplicate collection, bad query parameter, missing point, unknown path.
    assert_error(
        s.call("PUT", "/collections/c", Some(json!({"vectors": {"size": 4, "distance": "Dot"}}))),
        StatusCode::CONFLICT,
        "already exists",
    );
    assert_error(
        s.call("PUT", "/collections/c/points?wait=maybe", Some(json!({"points": []}))),
        StatusCode::BAD_REQUEST,
        "wait",
    );
    assert_error(s.call("GET", "/collections/c/points/77", None), StatusCode::NOT_FOUND, "77");
    assert_error(
        s.call("GET", "/collections/c/points/not-an-id", None),
        StatusCode::BAD_REQUEST,
        "not-an-id",
    );
    assert_error(s.call("GET", "/no/such/path", None), StatusCode::NOT_FOUND, "");
    // A Query API feature that is not built is refused by name, not ignored.
    assert_error(
        s.call("POST", "/collections/c/points/query", Some(json!({"query": {"fusion": "rrf"}}))),
        StatusCode::BAD_REQUEST,
        "fusion",
    );
    // Oversized body: 413 with Qdrant's body.
    let big = json!({"points": (0..40_000).map(|i| json!({"id": i, "vector": [0.5, 0.5, 0.5, 0.5]})).collect::<Vec<_>>()});
    assert_error(
        s.call("PUT", "/collections/c/points", Some(big)),
        StatusCode::PAYLOAD_TOO_LARGE,
        "too large",
    );
    // The server is still healthy after all of that.
    assert_eq!(s.ok("POST", "/collections/c/points/count", Some(json!({})))["count"], 0);
}

#[test]
fn quantization_config_and_search_params() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let scalar = json!({"scalar": {"type": "int8", "quantile": 0.99, "always_ram": true}});
    let body = json!({
        "vectors": {"size": 8, "distance": "Cosine", "quantization_config": {"binary": {"encoding": "one_and_half_bits"}}},
        "quantization_config": scalar,
    });
    assert_eq!(s.ok("PUT", "/collections/q", Some(body)), json!(true));
    let config = s.ok("GET", "/collections/q", None)["config"].clone();
    assert_eq!(config["quantization_config"], scalar);
    assert_eq!(
        config["params"]["vectors"]["quantization_config"],
        json!({"binary": {"encoding": "one_and_half_bits"}})
    );
    let points: Vec<Value> =
        (0..50).map(|i| json!({"id": i, "vector": (0..8).map(|d| ((i * 3 + d) % 7) as f32 - 3.0).collect::<Vec<_>>()})).collect();
    s.ok("PUT", "/collections/q/points?wait=true", Some(json!({"points": points})));

    // PATCH: a new collection-level config; a bad one (x64 needs a dimension divisible by 16) is a 400 and
    // changes nothing; "Disabled" removes it.
    let binary =
        json!({"binary": {"always_ram": true, "encoding": "two_bits", "query_encoding": "scalar8bits"}});
    // The vector's own config wins over the collection's; "Disabled" removes it.
    s.ok(
        "PATCH",
        "/collections/q",
        Some(json!({"quantization_config": binary, "vectors": {"": {"quantization_config": "Disabled"}}})),
    );
    let config = s.ok("GET", "/collections/q", None)["config"].clone();
    assert_eq!(config["quantization_config"], binary);
    assert!(config["params"]["vectors"].get("quantization_config").is_none(), "{config}");
    assert_error(
        s.call(
            "PATCH",
            "/collections/q",
            Some(json!({"quantization_config": {"product": {"compression": "x64"}}})),
        ),
        StatusCode::BAD_REQUEST,
        "does not divide the dimension 8",
    );
    assert_error(
        s.call(
            "PATCH",
            "/collections/q",
            Some(json!({"quantization_config": {"scalar": {"type": "int8", "quantile": 0.1}}})),
        ),
        StatusCode::BAD_REQUEST,
        "quantile",
    );
    assert_eq!(s.ok("GET", "/collections/q", None)["config"]["quantization_config"], binary);
    s.ok("PATCH", "/collections/q", Some(json!({"quantization_config": "Disabled"})));
    assert_eq!(s.ok("GET", "/collections/q", None)["config"]["quantization_config"], Value::Null);
    assert_error(
        s.call("PUT", "/collections/q2", Some(json!({"vectors": {"size": 8, "distance": "Dot"}, "quantization_config": {"binary": {"encoding": "three_bits"}}}))),
        StatusCode::BAD_REQUEST,
        "three_bits",
    );

    // Search parameters: oversampling below 1 is refused; the others are accepted by both search APIs.
    let query = json!([1, 0, 0, 0, 0, 0, 0, 1]);
    assert_error(
        s.call(
            "POST",
            "/collections/q/points/search",
            Some(json!({"vector": query, "limit": 3, "params": {"quantization": {"oversampling": 0.5}}})),
        ),
        StatusCode::BAD_REQUEST,
        "oversampling",
    );
    let params = json!({"quantization": {"ignore": false, "rescore": true, "oversampling": 2.0}});
    let found = s.ok(
        "POST",
        "/collections/q/points/search",
        Some(json!({"vector": query, "limit": 3, "params": params})),
    );
    assert_eq!(found.as_array().unwrap().len(), 3);
    let found = s.ok(
        "POST",
        "/collections/q/points/query",
        Some(json!({"query": query, "limit": 3, "params": params})),
    );
    assert_eq!(found["points"].as_array().unwrap().len(), 3);
    let metrics = s.client.get(s.url("/metrics")).send().unwrap().text().unwrap();
    assert!(
        metrics.contains(r#"collection_vector_data_bytes{collection="q",kind="vectors",place="ram"} 1600"#),
        "{metrics}"
    );
}

#[test]
fn api_keys_full_and_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &["--read-only-api-key", "reader"],
        &[("GRAPE__SERVICE__API_KEY", "secret".into())],
    );
    let call = |key: Option<(&str, &str)>, method: &str, path: &str, body: Option<Value>| {
        let mut req = s.client.request(method.parse().unwrap(), s.url(path));
        if let Some((h, v)) = key {
            req = req.header(h, v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        let status = r.status();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let create_body = json!({"vectors": {"size": 2, "distance": "Euclid"}});
    // Probes need no key.
    assert_eq!(call(None, "GET", "/healthz", None).0, StatusCode::OK);
    assert_error(call(None, "GET", "/collections", None), StatusCode::UNAUTHORIZED, "API key");
    assert_error(
        call(Some(("api-key", "wrong")), "GET", "/collections", None),
        StatusCode::UNAUTHORIZED,
        "Invalid",
    );
    assert_eq!(
        call(Some(("api-key", "secret")), "PUT", "/collections/k", Some(create_body.clone())).0,
        StatusCode::OK
    );
    let bearer = ("authorization", "Bearer secret");
    let upsert = json!({"points": [{"id": 1, "vector": [0.0, 1.0]}]});
    assert_eq!(
        call(Some(bearer), "PUT", "/collections/k/points?wait=true", Some(upsert.clone())).0,
        StatusCode::OK
    );
    // The read-only key reads (GET and read POSTs) but cannot write.
    let ro = ("api-key", "reader");
    assert_eq!(call(Some(ro), "GET", "/collections/k", None).0, StatusCode::OK);
    let (st, body) =
        call(Some(ro), "POST", "/collections/k/points/query", Some(json!({"query": [0.0, 1.0]})));
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["result"]["points"][0]["id"], 1);
    assert_eq!(call(Some(ro), "POST", "/collections/k/points/count", Some(json!({}))).0, StatusCode::OK);
    assert_error(
        call(Some(ro), "PUT", "/collections/k/points", Some(upsert)),
        StatusCode::FORBIDDEN,
        "read-only",
    );
    assert_error(call(Some(ro), "DELETE", "/collections/k", None), StatusCode::FORBIDDEN, "read-only");
    assert_error(
        call(Some(ro), "POST", "/collections/k/points/delete", Some(json!({"points": [1]}))),
        StatusCode::FORBIDDEN,
        "",
    );
}

#[test]
fn config_file_env_and_flags_combine() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let file_port = free_port();
    let env_port = free_port();
    std::fs::write(
        &config,
        format!("log_level: warn\nservice:\n  http_port: {file_port}\n  api_key: from-file\nstorage:\n  storage_path: {}\n", dir.path().join("data").display()),
    )
    .unwrap();
    // The environment overrides the file's port; the file's key and storage path apply.
    let mut cmd_env = vec![("GRAPE__SERVICE__HTTP_PORT", env_port.to_string())];
    cmd_env.push(("GRAPE__SERVICE__GRPC_PORT", free_port().to_string()));
    let port = env_port;
    let mut child = Command::new(env!("CARGO_BIN_EXE_grape"))
        .args(["serve", "--host", "127.0.0.1", "--config-path"])
        .arg(&config)
        .envs(cmd_env)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let client = Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        match client.get(format!("http://127.0.0.1:{port}/collections")).send() {
            Ok(r) => break r.status(),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("server did not start: {e}"),
        }
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the api_key of the file applies");
    let r = client
        .get(format!("http://127.0.0.1:{port}/collections"))
        .header("api-key", "from-file")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(dir.path().join("data").exists(), "storage_path of the file is used");
    child.kill().unwrap();
    child.wait().unwrap();

    // An unknown key in the file is an error at start, not ignored.
    std::fs::write(&config, "service:\n  htp_port: 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grape"))
        .args(["serve", "--config-path"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("htp_port"));
}

/// Writers and readers at once; afterwards the stored state equals a model of the acknowledged writes.
#[test]
fn concurrent_writers_and_readers_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    create(&s, "m", 3);
    let writers = 4;
    let per_writer = 150u64;
    let model: BTreeMap<u64, Value> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for w in 0..writers {
            let s = &s;
            handles.push(scope.spawn(move || {
                let mut mine = BTreeMap::new();
                for i in 0..per_writer {
                    let id = w * 1000 + i;
                    let body = json!({"points": [{"id": id, "vector": [1.0, id as f32, 0.5], "payload": {"w": w, "i": i}}]});
                    s.ok("PUT", "/collections/m/points?wait=true", Some(body));
                    mine.insert(id, json!({"w": w, "i": i}));
                    if i % 10 == 0 {
                        s.ok("POST", "/collections/m/points/delete?wait=true", Some(json!({"points": [id]})));
                        mine.remove(&id);
                    }
                }
                mine
            }));
        }
        for _ in 0..2 {
            let s = &s;
            scope.spawn(move || {
                for _ in 0..100 {
                    let r = s.ok(
                        "POST",
                        "/collections/m/points/query",
                        Some(json!({"query": [1.0, 0.0, 0.0], "limit": 5})),
                    );
                    assert!(r["points"].as_array().unwrap().len() <= 5);
                    s.ok("POST", "/collections/m/points/count", Some(json!({})));
                }
            });
        }
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut stored = BTreeMap::new();
    let mut offset = Value::Null;
    loop {
        let page =
            s.ok("POST", "/collections/m/points/scroll", Some(json!({"limit": 100, "offset": offset})));
        for p in page["points"].as_array().unwrap() {
            stored.insert(p["id"].as_u64().unwrap(), p["payload"].clone());
        }
        offset = page["next_page_offset"].clone();
        if offset.is_null() {
            break;
        }
    }
    assert_eq!(stored, model);
    assert_eq!(s.ok("POST", "/collections/m/points/count", Some(json!({})))["count"], model.len());
}

#[test]
fn sigterm_flushes_and_acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    create(&s, "d", 2);
    for i in 0..50 {
        s.ok(
            "PUT",
            "/collections/d/points?wait=true",
            Some(json!({"points": [{"id": i, "vector": [i as f32, 1.0]}]})),
        );
    }
    let status = s.sigterm();
    assert!(status.success(), "graceful shutdown exits 0, got {status:?}");

    let s = Server::start(dir.path(), &[], &[]);
    assert_eq!(s.ok("POST", "/collections/d/points/count", Some(json!({})))["count"], 50);
    // Acknowledged, then killed without a chance to flush.
    for i in 50..120 {
        s.ok("PUT", "/collections/d/points", Some(json!({"points": [{"id": i, "vector": [i as f32, 1.0]}]})));
    }
    s.kill9();
    let s = Server::start(dir.path(), &[], &[]);
    assert_eq!(s.ok("POST", "/collections/d/points/count", Some(json!({})))["count"], 120);
    let p = s.ok("GET", "/collections/d/points/119", None);
    assert_eq!(p["vector"], json!([119.0, 1.0]));
}

#[test]
fn serves_https_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_grape"))
        .args(["serve", "--host", "127.0.0.1", "--http-port", &port.to_string(), "--storage-path"])
        .arg(dir.path().join("data"))
        .arg("--tls-cert")
        .arg(&cert_path)
        .arg("--tls-key")
        .arg(&key_path)
        .env("GRAPE__LOG_LEVEL", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let client = Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let r = loop {
        match client.get(format!("{url}/readyz")).send() {
            Ok(r) => break r,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("https server did not start: {e}"),
        }
    };
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .put(format!("{url}/collections/tls"))
        .json(&json!({"vectors": {"size": 2, "distance": "Dot"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Plain HTTP on the TLS port gets no answer, and an untrusting client refuses the certificate.
    let plain = Client::new().get(format!("http://127.0.0.1:{port}/readyz")).send();
    assert!(plain.map_or(true, |r| !r.status().is_success()));
    assert!(Client::new().get(format!("{url}/readyz")).send().is_err());
    // SIGTERM still shuts down gracefully.
    // SAFETY: kill with a valid pid of our own child and a standard signal.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}
