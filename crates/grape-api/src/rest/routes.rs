//! The route table: every served endpoint with its handler and its OpenAPI description. The router
//! ([`super::router`]) and the document ([`super::openapi`]) are both built from it, so nothing is served
//! undocumented.

use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use grape::{
    CollectionInfo, CreateCollection, NewVector, Record, ScoredPoint, SnapshotDescription, UpdateCollection,
    UpdateResult,
};

use super::explore_wire::{
    DiscoverBatchBody, DiscoverBody, FacetBody, FacetResponse, GroupsResult, MatrixBody, MatrixOffsets,
    MatrixPairs, QueryGroupsBody, RecommendGroupsBody, SearchGroupsBody,
};
use super::openapi::Operation;
use super::snapshots::{SnapshotRecover, UploadParams, WaitParams};
use super::wire::{
    AliasActions, AliasList, BatchUpdate, CollectionList, CountBody, CountResult, CreateFieldIndex,
    DeletePayload, DeleteVectorsBody, Exists, PointInsert, PointRequest, QueryBatchBody, QueryBody,
    QueryResponse, ReadParams, RecommendBatchBody, RecommendBody, ScrollAnswer, ScrollBody, SearchBatchBody,
    SearchBody, Selector, SetPayload, TimeoutParams, UpdateVectorsBody, WriteParams,
};
use super::{beta, collections, explore, points, shard_keys, snapshots, system, AppState};
use crate::service::cluster::{ClusterOperation, CollectionClusterInfo};
use crate::service::issues::IssuesReport;
use crate::service::optimizations::{OptimizationsParams, OptimizationsResponse};
use crate::service::quotas::{QuotaConfig, QuotaStatus};

/// One served endpoint.
pub(crate) struct Route {
    pub method: Method,
    pub path: String,
    pub handler: MethodRouter<AppState>,
    pub doc: Operation,
}

/// `GET /openapi.json`: the document built from this table when the router was.
async fn openapi(State(s): State<AppState>) -> Response {
    axum::Json(s.openapi.as_ref().clone()).into_response()
}

/// Every endpoint Grape serves (Qdrant's not built yet are in [`super::not_built_routes`]).
pub(crate) fn table() -> Vec<Route> {
    let c = "/collections/{collection}";
    let p = "/collections/{collection}/points";
    let mut t = Table(Vec::new());
    let op = Operation::new;

    // service
    t.get(system::root, "/", op("service", "root").raw_json::<system::VersionInfo>());
    t.get(system::healthz, "/healthz", op("service", "healthz").text().public());
    t.get(system::healthz, "/livez", op("service", "livez").text().public());
    t.get(system::readyz, "/readyz", op("service", "readyz").text().public());
    t.get(system::metrics, "/metrics", op("service", "metrics").text());
    t.get(system::telemetry, "/telemetry", op("service", "telemetry").reply::<system::Telemetry>());
    t.get(system::cluster, "/cluster", op("cluster", "cluster_status").reply::<system::ClusterStatus>());
    let remove_peer = op("cluster", "remove_peer").query::<system::RemovePeerParams>().reply::<bool>();
    t.delete(system::remove_peer, "/cluster/peer/{peer_id}", remove_peer);
    let cluster_telemetry = op("cluster", "cluster_telemetry")
        .query::<system::ClusterTelemetryParams>()
        .reply::<system::DistributedTelemetry>();
    t.get(system::cluster_telemetry, "/cluster/telemetry", cluster_telemetry);
    t.post(system::recover, "/cluster/recover", op("cluster", "recover_current_peer").reply::<bool>());
    t.get(beta::issues, "/issues", op("beta", "get_issues").reply::<IssuesReport>());
    t.delete(beta::clear_issues, "/issues", op("beta", "clear_issues").reply::<bool>());
    t.get(beta::quotas, "/quotas", op("quotas", "get_quotas").reply::<QuotaStatus>());
    let update_quotas =
        op("quotas", "update_quotas").query::<beta::QuotaParams>().body::<QuotaConfig>().reply::<bool>();
    t.put(beta::update_quotas, "/quotas", update_quotas);
    t.get(openapi, "/openapi.json", op("service", "openapi").raw_json::<serde_json::Value>());

    // collections and aliases
    t.get(collections::list, "/collections", op("collections", "get_collections").reply::<CollectionList>());
    t.get(collections::all_aliases, "/aliases", op("aliases", "get_aliases").reply::<AliasList>());
    let update_aliases = op("aliases", "update_aliases").query::<TimeoutParams>().body::<AliasActions>();
    t.post(collections::update_aliases, "/collections/aliases", update_aliases);
    t.get(collections::info, c, op("collections", "get_collection").reply::<CollectionInfo>());
    let create = op("collections", "create_collection").query::<TimeoutParams>().body::<CreateCollection>();
    t.put(collections::create, c, create);
    let update = op("collections", "update_collection").query::<TimeoutParams>().body::<UpdateCollection>();
    t.patch(collections::update, c, update);
    t.delete(collections::delete, c, op("collections", "delete_collection").query::<TimeoutParams>());
    t.get(
        collections::exists,
        &format!("{c}/exists"),
        op("collections", "collection_exists").reply::<Exists>(),
    );
    let index = op("indexes", "create_field_index").query::<WriteParams>().body::<CreateFieldIndex>();
    t.put(collections::create_index, &format!("{c}/index"), index.reply::<UpdateResult>());
    let drop_index = op("indexes", "delete_field_index").query::<WriteParams>().reply::<UpdateResult>();
    t.delete(collections::delete_index, &format!("{c}/index/{{field}}"), drop_index);
    let optimizations = op("collections", "get_optimizations")
        .query::<OptimizationsParams>()
        .reply::<OptimizationsResponse>();
    t.get(collections::optimizations, &format!("{c}/optimizations"), optimizations);
    let vector = format!("{c}/vectors/{{vector_name}}");
    let create_vector = op("collections", "create_vector_name").query::<WriteParams>().body::<NewVector>();
    t.put(collections::create_vector, &vector, create_vector.reply::<UpdateResult>());
    let delete_vector =
        op("collections", "delete_vector_name").query::<WriteParams>().reply::<UpdateResult>();
    t.delete(collections::delete_vector, &vector, delete_vector);
    let aliases = op("aliases", "get_collection_aliases").reply::<AliasList>();
    t.get(collections::aliases, &format!("{c}/aliases"), aliases);
    let cluster = op("cluster", "collection_cluster_info").reply::<CollectionClusterInfo>();
    t.get(collections::cluster_info, &format!("{c}/cluster"), cluster);
    let update_cluster = op("cluster", "update_collection_cluster")
        .query::<TimeoutParams>()
        .body::<ClusterOperation>()
        .reply::<bool>();
    t.post(collections::update_cluster, &format!("{c}/cluster"), update_cluster);
    let create_key =
        op("cluster", "create_shard_key").query::<TimeoutParams>().body::<grape::CreateShardKey>();
    t.put(shard_keys::create, &format!("{c}/shards"), create_key.reply::<bool>());
    let drop_key =
        op("cluster", "delete_shard_key").query::<TimeoutParams>().body::<shard_keys::DropShardingKey>();
    t.post(shard_keys::delete, &format!("{c}/shards/delete"), drop_key.reply::<bool>());
    let list_keys = op("cluster", "list_shard_keys").reply::<shard_keys::ShardKeysResponse>();
    t.get(shard_keys::list, &format!("{c}/shards"), list_keys);

    // point writes
    let write = |id| op("points", id).query::<WriteParams>().reply::<UpdateResult>();
    t.put(points::upsert, p, write("upsert_points").body::<PointInsert>());
    t.post(points::delete, &format!("{p}/delete"), write("delete_points").body::<Selector>());
    t.post(points::set_payload, &format!("{p}/payload"), write("set_payload").body::<SetPayload>());
    t.put(
        points::overwrite_payload,
        &format!("{p}/payload"),
        write("overwrite_payload").body::<SetPayload>(),
    );
    let delete_payload = write("delete_payload").body::<DeletePayload>();
    t.post(points::delete_payload, &format!("{p}/payload/delete"), delete_payload);
    t.post(points::clear_payload, &format!("{p}/payload/clear"), write("clear_payload").body::<Selector>());
    let batch = write("batch_update").body::<BatchUpdate>().reply::<Vec<UpdateResult>>();
    t.post(points::batch_update, &format!("{p}/batch"), batch);
    let vectors = write("update_vectors").body::<UpdateVectorsBody>();
    t.put(points::update_vectors, &format!("{p}/vectors"), vectors);
    let delete_vectors = write("delete_vectors").body::<DeleteVectorsBody>();
    t.post(points::delete_vectors, &format!("{p}/vectors/delete"), delete_vectors);

    // point reads
    let read = |id| op("points", id).query::<ReadParams>();
    t.post(points::retrieve, p, read("get_points").body::<PointRequest>().reply::<Vec<Record>>());
    t.get(points::get_one, &format!("{p}/{{id}}"), read("get_point").reply::<Record>());
    t.post(
        points::scroll,
        &format!("{p}/scroll"),
        read("scroll_points").body::<ScrollBody>().reply::<ScrollAnswer>(),
    );
    t.post(
        points::count,
        &format!("{p}/count"),
        read("count_points").body::<CountBody>().reply::<CountResult>(),
    );
    let search = read("search_points").body::<SearchBody>().reply::<Vec<ScoredPoint>>();
    t.post(points::search, &format!("{p}/search"), search);
    let search_batch = read("search_batch_points").body::<SearchBatchBody>().reply::<Vec<Vec<ScoredPoint>>>();
    t.post(points::search_batch, &format!("{p}/search/batch"), search_batch);
    let query = read("query_points").body::<QueryBody>().reply::<QueryResponse>();
    t.post(points::query, &format!("{p}/query"), query);
    let query_batch = read("query_batch_points").body::<QueryBatchBody>().reply::<Vec<QueryResponse>>();
    t.post(points::query_batch, &format!("{p}/query/batch"), query_batch);
    let recommend = read("recommend_points").body::<RecommendBody>().reply::<Vec<ScoredPoint>>();
    t.post(points::recommend, &format!("{p}/recommend"), recommend);
    let recommend_batch =
        read("recommend_batch_points").body::<RecommendBatchBody>().reply::<Vec<Vec<ScoredPoint>>>();
    t.post(points::recommend_batch, &format!("{p}/recommend/batch"), recommend_batch);
    let query_groups = read("query_points_groups").body::<QueryGroupsBody>().reply::<GroupsResult>();
    t.post(explore::query_groups, &format!("{p}/query/groups"), query_groups);
    let search_groups = read("search_point_groups").body::<SearchGroupsBody>().reply::<GroupsResult>();
    t.post(explore::search_groups, &format!("{p}/search/groups"), search_groups);
    let recommend_groups =
        read("recommend_point_groups").body::<RecommendGroupsBody>().reply::<GroupsResult>();
    t.post(explore::recommend_groups, &format!("{p}/recommend/groups"), recommend_groups);
    let discover = read("discover_points").body::<DiscoverBody>().reply::<Vec<ScoredPoint>>();
    t.post(explore::discover, &format!("{p}/discover"), discover);
    let discover_batch =
        read("discover_batch_points").body::<DiscoverBatchBody>().reply::<Vec<Vec<ScoredPoint>>>();
    t.post(explore::discover_batch, &format!("{p}/discover/batch"), discover_batch);
    let pairs = read("search_matrix_pairs").body::<MatrixBody>().reply::<MatrixPairs>();
    t.post(explore::matrix_pairs, &format!("{p}/search/matrix/pairs"), pairs);
    let offsets = read("search_matrix_offsets").body::<MatrixBody>().reply::<MatrixOffsets>();
    t.post(explore::matrix_offsets, &format!("{p}/search/matrix/offsets"), offsets);
    let facet = read("facet").body::<FacetBody>().reply::<FacetResponse>();
    t.post(explore::facet, &format!("{c}/facet"), facet);

    // snapshots
    let s = |id| op("snapshots", id);
    let list = s("list_snapshots").reply::<Vec<SnapshotDescription>>();
    t.get(snapshots::list, &format!("{c}/snapshots"), list);
    let create = s("create_snapshot").query::<WaitParams>().reply::<SnapshotDescription>().accepted();
    t.post(snapshots::create, &format!("{c}/snapshots"), create);
    let recover = s("recover_from_snapshot").query::<WaitParams>().body::<SnapshotRecover>().accepted();
    t.put(snapshots::recover, &format!("{c}/snapshots/recover"), recover);
    let upload = s("recover_from_uploaded_snapshot").query::<UploadParams>().upload().accepted();
    let upload_handler = post(snapshots::upload).layer(DefaultBodyLimit::disable());
    t.route(Method::POST, upload_handler, &format!("{c}/snapshots/upload"), upload);
    t.get(snapshots::download, &format!("{c}/snapshots/{{name}}"), s("get_snapshot").file());
    let delete_snapshot = s("delete_snapshot").query::<WaitParams>().accepted();
    t.delete(snapshots::delete, &format!("{c}/snapshots/{{name}}"), delete_snapshot);
    let shard = format!("{c}/shards/{{shard_id}}");
    let list_shard = s("list_shard_snapshots").reply::<Vec<SnapshotDescription>>();
    t.get(snapshots::list_shard, &format!("{shard}/snapshots"), list_shard);
    let create_shard =
        s("create_shard_snapshot").query::<WaitParams>().reply::<SnapshotDescription>().accepted();
    t.post(snapshots::create_shard, &format!("{shard}/snapshots"), create_shard);
    let recover_shard =
        s("recover_shard_from_snapshot").query::<WaitParams>().body::<SnapshotRecover>().accepted();
    t.put(snapshots::recover_shard, &format!("{shard}/snapshots/recover"), recover_shard);
    let upload_shard = s("recover_shard_from_uploaded_snapshot").query::<UploadParams>().upload().accepted();
    let upload_shard_handler = post(snapshots::upload_shard).layer(DefaultBodyLimit::disable());
    t.route(Method::POST, upload_shard_handler, &format!("{shard}/snapshots/upload"), upload_shard);
    t.get(snapshots::download_shard, &format!("{shard}/snapshots/{{name}}"), s("get_shard_snapshot").file());
    let delete_shard = s("delete_shard_snapshot").query::<WaitParams>().accepted();
    t.delete(snapshots::delete_shard, &format!("{shard}/snapshots/{{name}}"), delete_shard);
    t.get(snapshots::stream_shard, &format!("{shard}/snapshot"), s("stream_shard_snapshot").file());
    let list_full = s("list_full_snapshots").reply::<Vec<SnapshotDescription>>();
    t.get(snapshots::list_full, "/snapshots", list_full);
    let create_full =
        s("create_full_snapshot").query::<WaitParams>().reply::<SnapshotDescription>().accepted();
    t.post(snapshots::create_full, "/snapshots", create_full);
    t.get(snapshots::download_full, "/snapshots/{name}", s("get_full_snapshot").file());
    let delete_full = s("delete_full_snapshot").query::<WaitParams>().accepted();
    t.delete(snapshots::delete_full, "/snapshots/{name}", delete_full);
    t.0
}

struct Table(Vec<Route>);

macro_rules! by_method {
    ($($name:ident => $method:ident),*) => {
        $(
            fn $name<H: Handler<T, AppState>, T: 'static>(&mut self, handler: H, path: &str, doc: Operation) {
                self.route(Method::$method, axum::routing::$name(handler), path, doc);
            }
        )*
    };
}

impl Table {
    /// Adds `handler`, which serves `method` only, at `path`.
    fn route(&mut self, method: Method, handler: MethodRouter<AppState>, path: &str, doc: Operation) {
        self.0.push(Route { method, path: path.to_string(), handler, doc });
    }

    by_method!(get => GET, put => PUT, post => POST, patch => PATCH, delete => DELETE);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::metrics::Metrics;
    use crate::rest::{router, RestConfig};
    use crate::service::Service;

    /// Every served route is in the served document, with nothing else in it, and the router built
    /// from the same table answers each one (no 404 fallback, no 405).
    #[tokio::test]
    async fn every_route_is_served_and_documented() {
        let dir = tempfile::tempdir().unwrap();
        let db = grape::Database::open(dir.path()).unwrap();
        let app = router(Service::new(db), Metrics::new(), RestConfig::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();

        let doc: serde_json::Value =
            client.get(format!("http://{addr}/openapi.json")).send().await.unwrap().json().await.unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(|m| (m.to_uppercase(), path.clone())))
            .collect();
        let table = table();
        let served: BTreeSet<(String, String)> =
            table.iter().map(|r| (r.method.to_string(), r.path.clone())).collect();
        assert_eq!(served.len(), table.len(), "a (method, path) is in the table twice");
        assert_eq!(documented, served);
        // Every `$ref` resolves.
        let text = doc.to_string();
        for name in text.split("\"#/components/schemas/").skip(1).map(|s| &s[..s.find('"').unwrap()]) {
            assert!(doc["components"]["schemas"].get(name).is_some(), "dangling $ref {name}");
        }

        // Grape's `filter_expr` is documented next to request filters (a body's own, a prefetch's), never
        // inside a filter (a `nested` condition's).
        let schemas = &doc["components"]["schemas"];
        let body = |path: &str| {
            let r = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"]
                .as_str()
                .unwrap();
            schemas[r.rsplit('/').next().unwrap()].clone()
        };
        for path in ["/collections/{collection}/points/scroll", "/collections/{collection}/points/count"] {
            assert_eq!(body(path)["properties"]["filter_expr"]["type"], "string", "{path}");
        }
        let documented_in: Vec<&String> = schemas
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, s)| s["properties"].get("filter_expr").is_some())
            .map(|(name, _)| name)
            .collect();
        assert!(
            documented_in.len() > 5 && !documented_in.iter().any(|n| n.as_str() == "Nested"),
            "{documented_in:?}"
        );
        assert!(documented_in.iter().any(|n| n.contains("Prefetch")), "{documented_in:?}");

        for (method, path) in &served {
            let concrete = path
                .replace("{collection}", "missing")
                .replace("{id}", "1")
                .replace("{field}", "f")
                .replace("{name}", "s.snapshot")
                .replace("{vector_name}", "v")
                .replace("{shard_id}", "0");
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let response =
                client.request(method.clone(), format!("http://{addr}{concrete}")).send().await.unwrap();
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert!(
                status != axum::http::StatusCode::METHOD_NOT_ALLOWED && !body.contains("no such endpoint"),
                "{method} {path} is not routed: {status} {body}"
            );
        }
    }
}
