"""gRPC parity: one representative scenario run twice against the same server, once through the
official client with `prefer_grpc=True` and once over REST, each on its own collection with the same
data; every observable result must be the same (ids, scores to 1e-4, payloads, vectors, counts,
collection configuration). Error codes of bad requests are compared too.
"""

from __future__ import annotations

import math
import random
import uuid

import grpc
import pytest
from qdrant_client import QdrantClient, models

from harness import make_grpc_client, status_of

DIM = 16
N = 200
GROUPS = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def clients(server):
    rest = QdrantClient(url=server.url, timeout=30, prefer_grpc=False)
    over_grpc = make_grpc_client(server)
    yield rest, over_grpc
    rest.close()
    over_grpc.close()


def dense(seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def sparse(seed: int) -> models.SparseVector:
    rng = random.Random(10_000 + seed)
    indices = sorted(rng.sample(range(50), 5))
    return models.SparseVector(indices=indices, values=[rng.uniform(0.1, 1) for _ in indices])


def payload(i: int) -> dict:
    return {"group": GROUPS[i % 4], "n": i, "tags": [GROUPS[i % 4], f"t{i % 3}"], "nested": {"even": i % 2 == 0}}


def hits(points) -> list[tuple]:
    return [(p.id, p.score, p.payload or {}) for p in points]


def records(points) -> list[tuple]:
    return [(p.id, p.payload or {}, p.vector) for p in points]


def scenario(client: QdrantClient, name: str) -> dict:
    """The scenario; returns every observable result by step name."""
    out: dict = {}
    client.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"sparse": models.SparseVectorParams()},
    )
    points = [
        models.PointStruct(id=i, vector={"dense": dense(i), "sparse": sparse(i)}, payload=payload(i))
        for i in range(N)
    ]
    out["upsert"] = client.upsert(name, points=points, wait=True).status
    cluster = client.collection_cluster_info(name)
    out["cluster"] = (
        cluster.peer_id,
        cluster.shard_count,
        [(s.shard_id, s.points_count, s.state) for s in cluster.local_shards],
        cluster.remote_shards,
    )
    q = dense(9999)
    f = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchAny(any=["a", "c"]))])

    out["search"] = hits(client.query_points(name, query=q, using="dense", limit=10, with_payload=True).points)
    out["search_filtered"] = hits(
        client.query_points(name, query=q, using="dense", query_filter=f, limit=5, with_payload=True).points
    )
    out["hybrid_rrf"] = hits(
        client.query_points(
            name,
            prefetch=[
                models.Prefetch(query=q, using="dense", limit=20),
                models.Prefetch(query=sparse(9999), using="sparse", limit=20),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=10,
            with_payload=True,
        ).points
    )
    out["hybrid_dbsf"] = hits(
        client.query_points(
            name,
            prefetch=[
                models.Prefetch(query=q, using="dense", limit=20),
                models.Prefetch(query=sparse(9999), using="sparse", limit=20),
            ],
            query=models.FusionQuery(fusion=models.Fusion.DBSF),
            limit=10,
        ).points
    )
    out["recommend"] = hits(
        client.query_points(
            name,
            query=models.RecommendQuery(recommend=models.RecommendInput(positive=[1, 2], negative=[3])),
            using="dense",
            limit=8,
            with_payload=True,
        ).points
    )
    out["recommend_best"] = hits(
        client.query_points(
            name,
            query=models.RecommendQuery(
                recommend=models.RecommendInput(
                    positive=[4], negative=[5], strategy=models.RecommendStrategy.BEST_SCORE
                )
            ),
            using="dense",
            limit=8,
        ).points
    )
    out["discover"] = hits(
        client.query_points(
            name,
            query=models.DiscoverQuery(
                discover=models.DiscoverInput(target=6, context=[models.ContextPair(positive=7, negative=8)])
            ),
            using="dense",
            limit=8,
            with_payload=True,
        ).points
    )
    out["context"] = hits(
        client.query_points(
            name,
            query=models.ContextQuery(context=[models.ContextPair(positive=9, negative=10)]),
            using="dense",
            limit=5,
        ).points
    )
    groups = client.query_points_groups(
        name, query=q, using="dense", group_by="group", limit=3, group_size=2, with_payload=True
    )
    out["groups"] = [(g.id, hits(g.hits)) for g in groups.groups]
    page, next_offset = client.scroll(name, scroll_filter=f, limit=7, with_payload=True)
    out["scroll"] = (records(page), next_offset)
    out["count"] = client.count(name, count_filter=f, exact=True).count
    out["facet"] = [(h.value, h.count) for h in client.facet(name, key="tags", limit=10).hits]
    matrix_filter = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=12))])
    pairs = client.search_matrix_pairs(name, query_filter=matrix_filter, sample=12, limit=2, using="dense")
    out["matrix"] = [(p.a, p.b, p.score) for p in pairs.pairs]

    # Payload operations.
    client.set_payload(name, payload={"x": 1, "group": "z"}, points=[1, 2], wait=True)
    client.set_payload(name, payload={"deep": 5}, key="nested", points=[3], wait=True)
    client.overwrite_payload(name, payload={"only": True}, points=[4], wait=True)
    client.delete_payload(name, keys=["tags"], points=[5, 6], wait=True)
    client.clear_payload(name, points_selector=[7], wait=True)
    out["payloads"] = records(client.retrieve(name, ids=[1, 2, 3, 4, 5, 6, 7, 8], with_payload=True))

    # Payload index.
    client.create_payload_index(
        name, field_name="group", field_schema=models.KeywordIndexParams(type="keyword", is_tenant=True), wait=True
    )
    client.create_payload_index(
        name,
        field_name="n",
        field_schema=models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, lookup=True, range=True),
        wait=True,
    )
    schema = client.get_collection(name).payload_schema
    out["index"] = sorted((k, str(v.data_type), v.params, v.points) for k, v in schema.items())
    out["indexed_count"] = client.count(
        name, count_filter=models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value="b"))])
    ).count
    client.delete_payload_index(name, "n", wait=True)
    out["index_after_delete"] = sorted(client.get_collection(name).payload_schema)

    # Vectors of existing points, then a batch of mixed operations.
    client.update_vectors(name, points=[models.PointVectors(id=11, vector={"dense": dense(5000)})], wait=True)
    client.delete_vectors(name, vectors=["sparse"], points=[12], wait=True)
    out["vectors"] = records(client.retrieve(name, ids=[11, 12], with_vectors=True, with_payload=False))
    batch = client.batch_update_points(
        name,
        update_operations=[
            models.UpsertOperation(
                upsert=models.PointsList(
                    points=[models.PointStruct(id=500, vector={"dense": dense(500)}, payload={"group": "new"})]
                )
            ),
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={"batched": 1}, points=[13])),
            models.DeleteOperation(delete=models.PointIdsList(points=[14])),
        ],
        wait=True,
    )
    out["batch"] = [r.status for r in batch]
    out["after_batch"] = records(client.retrieve(name, ids=[13, 14, 500], with_payload=True))

    # Deletes.
    client.delete(
        name,
        points_selector=models.FilterSelector(
            filter=models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value="d"))])
        ),
        wait=True,
    )
    client.delete(name, points_selector=models.PointIdsList(points=[0]), wait=True)
    out["count_after_delete"] = client.count(name, exact=True).count

    # Collection update: quantization and HNSW, read back.
    client.update_collection(
        name,
        quantization_config=models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
        ),
        hnsw_config=models.HnswConfigDiff(ef_construct=50),
    )
    config = client.get_collection(name).config
    out["config"] = (config.quantization_config, config.hnsw_config.ef_construct, config.params.vectors)
    out["search_quantized"] = hits(
        client.query_points(
            name,
            query=q,
            using="dense",
            limit=5,
            search_params=models.SearchParams(quantization=models.QuantizationSearchParams(rescore=True)),
        ).points
    )
    client.update_collection(name, quantization_config=models.Disabled.DISABLED)
    out["config_disabled"] = client.get_collection(name).config.quantization_config

    # Snapshots (names carry the collection name, so shapes are compared).
    snap = client.create_snapshot(name)
    listed = client.list_snapshots(name)
    out["snapshots"] = [(s.name == snap.name, s.size == snap.size, s.checksum == snap.checksum) for s in listed]
    assert snap.size > 0 and snap.checksum
    client.delete_snapshot(name, snap.name, wait=True)
    out["snapshots_after_delete"] = client.list_snapshots(name)
    return out


def same(a, b, path: str) -> None:
    """Structural equality with floats compared to 1e-4."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), f"{path}: {a!r} vs {b!r}"
        assert math.isclose(a, b, rel_tol=0, abs_tol=1e-4), f"{path}: {a} vs {b}"
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: {a!r} vs {b!r}"
        for k in a:
            same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, models.BaseModel):
        assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
        same(a.model_dump(), b.model_dump(), path)
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def test_grpc_and_rest_answer_the_same(clients):
    rest, over_grpc = clients
    names = (f"parity_rest_{uuid.uuid4().hex[:8]}", f"parity_grpc_{uuid.uuid4().hex[:8]}")
    try:
        by_rest = scenario(rest, names[0])
        by_grpc = scenario(over_grpc, names[1])
    finally:
        for name in names:
            rest.delete_collection(name)
    assert by_rest.keys() == by_grpc.keys()
    for step in by_rest:
        same(by_grpc[step], by_rest[step], step)
    # The scenario found something at every read step.
    for step in ("search", "hybrid_rrf", "recommend", "discover", "context", "groups", "facet", "matrix"):
        assert by_rest[step], step
    # 200 points, +500, -14 (batch), -49 of group "d" (point 7's payload was cleared), -0.
    assert by_rest["count_after_delete"] == N + 1 - 1 - (N // 4 - 1) - 1


def grpc_code(exc: BaseException):
    return exc.code() if isinstance(exc, grpc.RpcError) else None


def test_errors_map_to_the_same_kinds(clients):
    rest, over_grpc = clients
    name = f"parity_err_{uuid.uuid4().hex[:8]}"
    rest.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    try:
        cases = [
            (lambda c: c.get_collection(f"missing_{name}"), 404, grpc.StatusCode.NOT_FOUND),
            (lambda c: c.query_points(name, query=[1.0, 2.0], limit=3), 400, grpc.StatusCode.INVALID_ARGUMENT),
            (
                lambda c: c.upsert(name, points=[models.PointStruct(id=1, vector=[1.0])], wait=True),
                400,
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (lambda c: c.delete_snapshot(name, "nope.snapshot", wait=True), 404, grpc.StatusCode.NOT_FOUND),
            (
                lambda c: c.create_collection(
                    name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
                ),
                409,
                grpc.StatusCode.ALREADY_EXISTS,
            ),
        ]
        for i, (call, http_status, code) in enumerate(cases):
            with pytest.raises(Exception) as by_rest:
                call(rest)
            assert status_of(by_rest.value) == http_status, f"case {i}: {by_rest.value}"
            with pytest.raises(grpc.RpcError) as by_grpc:
                call(over_grpc)
            assert grpc_code(by_grpc.value) == code, f"case {i}: {by_grpc.value}"
    finally:
        rest.delete_collection(name)
