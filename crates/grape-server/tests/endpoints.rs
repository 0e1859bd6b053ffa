//! The endpoints of Qdrant's operations surface through the real binary: the issues report
//! (`/issues`), resource quotas (`/quotas`) and their enforcement, cluster telemetry and recovery on a
//! single node and on a (one-node) cluster node.

mod common;

use common::{assert_error, create, free_port, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Upserts `n` points of dimension 2 with payload `{"city": "a"|"b", "n": i}`.
fn fill(s: &Server, name: &str, n: usize) {
    for start in (0..n).step_by(2_500) {
        let points: Vec<Value> = (start..n.min(start + 2_500))
            .map(|i| {
                let city = if i % 2 == 0 { "a" } else { "b" };
                json!({"id": i, "vector": [1.0, i as f32], "payload": {"city": city, "n": i}})
            })
            .collect();
        s.ok("PUT", &format!("/collections/{name}/points?wait=true"), Some(json!({ "points": points })));
    }
}

fn issue_ids(s: &Server) -> Vec<String> {
    let report = s.ok("GET", "/issues", None);
    report["issues"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn unindexed_filtered_reads_are_reported_until_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    create(&s, "big", 2);
    fill(&s, "big", 10_000);
    create(&s, "small", 2);
    fill(&s, "small", 100);
    assert!(issue_ids(&s).is_empty());

    // Unfiltered reads and reads on a small collection report nothing.
    s.ok("POST", "/collections/big/points/query", Some(json!({"query": [1.0, 0.0], "limit": 3})));
    let city = json!({"must": [{"key": "city", "match": {"value": "a"}}]});
    s.ok("POST", "/collections/small/points/query", Some(json!({"query": [1.0, 0.0], "filter": city})));
    s.ok("POST", "/collections/small/points/count", Some(json!({"filter": city})));
    assert!(issue_ids(&s).is_empty());

    // A filtered search on the big collection reports its key, with Qdrant's shape.
    s.ok("POST", "/collections/big/points/query", Some(json!({"query": [1.0, 0.0], "filter": city})));
    let report = s.ok("GET", "/issues", None);
    let issues = report["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{report}");
    let issue = &issues[0];
    assert_eq!(issue["id"], "UNINDEXED_FIELD/big/city");
    assert_eq!(issue["related_collection"], "big");
    assert!(issue["description"].as_str().unwrap().contains("city"));
    assert!(chrono_like(issue["timestamp"].as_str().unwrap()), "{issue}");
    let action = &issue["solution"]["immediate"]["action"];
    assert_eq!(action["method"], "PUT");
    assert_eq!(action["uri"], "/collections/big/index");
    assert_eq!(action["body"], json!({"field_name": "city", "field_schema": "keyword"}));
    assert!(issue["solution"]["immediate"]["message"].as_str().unwrap().contains("city"));

    // A range on `n` through scroll: float or integer index, a choice.
    let range = json!({"must": [{"key": "n", "range": {"gte": 10, "lt": 20}}]});
    s.ok("POST", "/collections/big/points/scroll", Some(json!({"filter": range, "limit": 5})));
    let report = s.ok("GET", "/issues", None);
    let n = report["issues"].as_array().unwrap().iter().find(|i| i["id"] == "UNINDEXED_FIELD/big/n").unwrap();
    let choices = n["solution"]["immediate_choice"].as_array().unwrap();
    let schemas: Vec<&Value> = choices.iter().map(|c| &c["action"]["body"]["field_schema"]).collect();
    assert_eq!(schemas, [&json!("float"), &json!("integer")]);

    // Applying the suggested action resolves the issue; the other stays.
    let body = action["body"].clone();
    s.ok("PUT", "/collections/big/index?wait=true", Some(body));
    assert_eq!(issue_ids(&s), ["UNINDEXED_FIELD/big/n"]);
    // An indexed key is not reported again.
    s.ok("POST", "/collections/big/points/count", Some(json!({"filter": city})));
    assert_eq!(issue_ids(&s), ["UNINDEXED_FIELD/big/n"]);

    // DELETE clears everything; a new filtered read (facet, nested in a should) reports again.
    assert_eq!(s.ok("DELETE", "/issues", None), json!(true));
    assert!(issue_ids(&s).is_empty());
    let nested = json!({"should": [{"must": [{"key": "n", "range": {"gt": 5}}]}]});
    s.ok("POST", "/collections/big/facet", Some(json!({"key": "city", "filter": nested})));
    assert_eq!(issue_ids(&s), ["UNINDEXED_FIELD/big/n"]);

    // Deleting the collection resolves its issues.
    s.ok("DELETE", "/collections/big", None);
    assert!(issue_ids(&s).is_empty());
}

/// `2026-12-07T18:04:18.123456Z`-like.
fn chrono_like(t: &str) -> bool {
    t.len() >= 20 && t.as_bytes()[4] == b'-' && t.contains('T') && t.ends_with('Z')
}

#[test]
fn quotas_round_trip_validate_persist_and_enforce() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let status = s.ok("GET", "/quotas", None);
    assert_eq!(status["config"], json!({"enabled": false}), "{status}");
    let usage = &status["usage"];
    for key in ["resident_memory_percent", "disk_usage_percent"] {
        let p = usage[key].as_u64().unwrap_or_else(|| panic!("{key}: {status}"));
        assert!(p <= 100, "{status}");
    }
    assert!(status.get("peers").is_none(), "no peers outside cluster mode: {status}");

    // Out-of-range values and unknown fields are refused naming the field; nothing changes.
    for (body, field) in [
        (json!({"enabled": true, "max_disk_usage_percent": 0}), "max_disk_usage_percent"),
        (json!({"max_disk_usage_percent": 101}), "max_disk_usage_percent"),
        (json!({"max_resident_memory_percent": 0}), "max_resident_memory_percent"),
        (json!({"max_resident_memory_percent": -5}), "max_resident_memory_percent"),
        (json!({"release_margin_percent": 101}), "release_margin_percent"),
        (json!({"enabled": true, "max_disk": 5}), "max_disk"),
    ] {
        assert_error(s.call("PUT", "/quotas", Some(body)), StatusCode::BAD_REQUEST, field);
    }
    assert_eq!(s.ok("GET", "/quotas", None)["config"], json!({"enabled": false}));

    // A limit that is not exceeded lets every write through.
    create(&s, "q", 2);
    let limits = json!({"enabled": true, "max_disk_usage_percent": 100, "max_resident_memory_percent": 100});
    assert_eq!(s.ok("PUT", "/quotas?wait=true", Some(limits.clone())), json!(true));
    assert_eq!(s.ok("GET", "/quotas", None)["config"], limits);
    let upsert = json!({"points": [{"id": 1, "vector": [1.0, 0.0]}, {"id": 2, "vector": [0.0, 1.0]}]});
    s.ok("PUT", "/collections/q/points?wait=true", Some(upsert.clone()));

    // A disk limit already exceeded: writes that add data are refused, deletes are not.
    let full = json!({"enabled": true, "max_disk_usage_percent": 1, "release_margin_percent": 0});
    s.ok("PUT", "/quotas", Some(full.clone()));
    let refused = [
        ("PUT", "/collections/q/points?wait=true", upsert.clone()),
        ("POST", "/collections/q/points/payload?wait=true", json!({"points": [1], "payload": {"a": 1}})),
        (
            "PUT",
            "/collections/q/points/vectors?wait=true",
            json!({"points": [{"id": 1, "vector": [0.5, 0.5]}]}),
        ),
        (
            "POST",
            "/collections/q/points/batch?wait=true",
            json!({"operations": [{"upsert": upsert.clone()}]}),
        ),
        ("PUT", "/collections/q2", json!({"vectors": {"size": 2, "distance": "Dot"}})),
    ];
    for (method, path, body) in refused {
        assert_error(s.call(method, path, Some(body)), StatusCode::BAD_REQUEST, "max_disk_usage_percent");
    }
    s.ok("POST", "/collections/q/points/payload/clear?wait=true", Some(json!({"points": [1]})));
    s.ok("POST", "/collections/q/points/delete?wait=true", Some(json!({"points": [2]})));
    let count = s.ok("POST", "/collections/q/points/count", Some(json!({"exact": true})));
    assert_eq!(count["count"], 1);
    s.ok("POST", "/collections/q/points/query", Some(json!({"query": [1.0, 0.0]})));

    // The configuration survives a restart.
    assert!(s.sigterm().success());
    let s = Server::start(dir.path(), &[], &[]);
    assert_eq!(s.ok("GET", "/quotas", None)["config"], full);
    assert_error(
        s.call("PUT", "/collections/q/points?wait=true", Some(upsert.clone())),
        StatusCode::BAD_REQUEST,
        "max_disk_usage_percent",
    );
    s.ok("DELETE", "/collections/q", None);
    // Disabled: nothing enforced.
    s.ok("PUT", "/quotas", Some(json!({"enabled": false, "max_disk_usage_percent": 1})));
    create(&s, "q", 2);
}

#[test]
fn storage_quotas_setting_is_the_default_until_a_put() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GRAPE__STORAGE__QUOTAS__ENABLED", "true".to_string()),
        ("GRAPE__STORAGE__QUOTAS__MAX_DISK_USAGE_PERCENT", "1".to_string()),
    ];
    let s = Server::start(dir.path(), &[], &env);
    assert_eq!(s.ok("GET", "/quotas", None)["config"], json!({"enabled": true, "max_disk_usage_percent": 1}));
    assert_error(
        s.call("PUT", "/collections/c", Some(json!({"vectors": {"size": 2, "distance": "Dot"}}))),
        StatusCode::BAD_REQUEST,
        "max_disk_usage_percent",
    );
    s.ok("PUT", "/quotas", Some(json!({"enabled": true, "max_disk_usage_percent": 100})));
    drop(s);
    // The persisted configuration wins over the setting after a restart.
    let s = Server::start(dir.path(), &[], &env);
    assert_eq!(
        s.ok("GET", "/quotas", None)["config"],
        json!({"enabled": true, "max_disk_usage_percent": 100})
    );
    create(&s, "c", 2);
}

#[test]
fn cluster_telemetry_and_recover_on_a_single_node() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    create(&s, "c", 2);
    let t = s.ok("GET", "/cluster/telemetry?details_level=3", None);
    assert_eq!(
        t,
        json!({"collections": {}, "cluster": {"enabled": false, "number_of_peers": null, "peers": {}}})
    );
    assert_error(s.call("POST", "/cluster/recover", None), StatusCode::INTERNAL_SERVER_ERROR, "standalone");
}

#[test]
fn cluster_telemetry_quotas_and_recover_on_a_cluster_node() {
    let dir = tempfile::tempdir().unwrap();
    let p2p = free_port();
    let uri = format!("http://127.0.0.1:{p2p}");
    let env = [("GRAPE__CLUSTER__P2P__PORT", p2p.to_string())];
    let s = Server::start(dir.path(), &["--uri", &uri], &env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let peer = loop {
        let status = s.ok("GET", "/cluster", None);
        if status["raft_info"]["role"] == "Leader" {
            break status["peer_id"].as_u64().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no leader: {status}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let body = json!({"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 2});
    s.ok("PUT", "/collections/c", Some(body));
    let points: Vec<Value> = (0..10).map(|i| json!({"id": i, "vector": [1.0, i as f32]})).collect();
    s.ok("PUT", "/collections/c/points?wait=true", Some(json!({ "points": points })));

    let t = s.ok("GET", "/cluster/telemetry", None);
    let cluster = &t["cluster"];
    assert_eq!(cluster["enabled"], true, "{t}");
    assert_eq!(cluster["number_of_peers"], 1, "{t}");
    let me = &cluster["peers"][peer.to_string()];
    assert_eq!(me["responsive"], true, "{t}");
    assert_eq!(me["uri"], format!("{uri}/"));
    assert_eq!(me["details"]["role"], "Leader");
    assert_eq!(me["details"]["is_voter"], true);
    assert!(me["details"]["commit"].as_u64().unwrap() > 0, "{t}");
    let c = &t["collections"]["c"];
    assert_eq!(c["id"], "c");
    let shards = c["shards"].as_array().unwrap();
    assert_eq!(shards.iter().map(|s| s["id"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1], "{t}");
    let mut points = 0;
    for shard in shards {
        let replicas = shard["replicas"].as_array().unwrap();
        assert_eq!(replicas.len(), 1, "{t}");
        assert_eq!(replicas[0]["peer_id"], peer);
        assert_eq!(replicas[0]["state"], "Active");
        points += replicas[0]["num_points"].as_u64().unwrap();
    }
    assert_eq!(points, 10, "{t}");

    let quotas = s.ok("GET", "/quotas", None);
    assert_eq!(quotas["peers"][peer.to_string()]["exceeded"], false, "{quotas}");

    assert_error(s.call("POST", "/cluster/recover", None), StatusCode::NOT_IMPLEMENTED, "automatically");
}
