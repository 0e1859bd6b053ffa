"""Named vectors added to and dropped from an existing collection (`create_vector_name` /
`delete_vector_name`), over REST and gRPC, compared with the official client's local mode, which
implements the same operations in Python."""

import numpy as np
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from harness import free_port, status_of
from oracle import norm_id

DENSE_X = models.DenseVectorNameConfig(dense=models.DenseVectorConfig(size=2, distance=models.Distance.EUCLID))
SPARSE_S = models.SparseVectorNameConfig(sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF))


@pytest.fixture(scope="module")
def grpc_client(server):
    c = QdrantClient(
        host="127.0.0.1",
        port=free_port(),
        grpc_port=server.grpc_port,
        prefer_grpc=True,
        timeout=30,
        check_compatibility=False,
    )
    yield c
    c.close()


def _scenario(c: QdrantClient, name: str) -> dict:
    """Runs the same calls against a client; returns what they answered."""
    rng = np.random.default_rng(5)
    out = {}
    c.create_collection(name, vectors_config={"a": models.VectorParams(size=3, distance=models.Distance.DOT)})
    c.upsert(name, points=[models.PointStruct(id=i, vector={"a": rng.standard_normal(3).round(3).tolist()}) for i in range(20)])
    c.create_vector_name(name, "x", DENSE_X)
    c.create_vector_name(name, "s", SPARSE_S)
    info = c.get_collection(name).config.params
    out["dense"] = {k: (v.size, v.distance) for k, v in info.vectors.items()}
    out["sparse"] = {k: v.modifier for k, v in (info.sparse_vectors or {}).items()}
    pts = []
    for i in range(10, 18):
        s = models.SparseVector(indices=[int(i % 3), 5], values=[1.0, float(i)])
        pts.append(models.PointStruct(id=i, vector={"a": rng.standard_normal(3).round(3).tolist(), "x": rng.standard_normal(2).round(3).tolist(), "s": s}))
    c.upsert(name, points=pts)
    q = [0.5, -1.0]
    out["by_x"] = [(norm_id(p.id), round(p.score, 4)) for p in c.query_points(name, query=q, using="x", limit=20).points]
    sq = models.SparseVector(indices=[1, 5], values=[1.0, 0.5])
    out["by_s"] = [(norm_id(p.id), round(p.score, 3)) for p in c.query_points(name, query=sq, using="s", limit=20).points]
    c.delete_vector_name(name, "a")
    records = c.retrieve(name, ids=list(range(20)), with_vectors=True)
    out["vectors"] = {norm_id(r.id): sorted((r.vector or {}).keys()) for r in records}
    info = c.get_collection(name).config.params
    out["dense_after"] = sorted(info.vectors.keys())
    return out


def test_add_and_drop_match_local_mode(client, collection_name):
    local = QdrantClient(":memory:")
    want = _scenario(local, collection_name)
    got = _scenario(client, collection_name)
    assert got["dense"] == want["dense"] and got["sparse"] == want["sparse"]
    assert [i for i, _ in got["by_x"]] == [i for i, _ in want["by_x"]]
    assert len(got["by_x"]) == 8, "only the points given an x are found by it"
    for (_, a), (_, b) in zip(got["by_x"], want["by_x"]):
        assert abs(a - b) < 1e-3
    assert got["by_s"] == want["by_s"]
    assert got["vectors"] == want["vectors"]
    assert got["dense_after"] == want["dense_after"] == ["x"]


def test_grpc_answers_as_rest(client, grpc_client, collection_name):
    rest = _scenario(client, collection_name)
    other = collection_name + "_grpc"
    try:
        over_grpc = _scenario(grpc_client, other)
    finally:
        client.delete_collection(other)
    assert over_grpc == rest


def test_refusals(client, grpc_client, collection_name):
    client.create_collection(collection_name, vectors_config={"a": models.VectorParams(size=3, distance=models.Distance.DOT)})
    local = QdrantClient(":memory:")
    local.create_collection(collection_name, vectors_config={"a": models.VectorParams(size=3, distance=models.Distance.DOT)})
    for call in (
        lambda c: c.create_vector_name(collection_name, "a", DENSE_X),
        lambda c: c.delete_vector_name(collection_name, "nope"),
    ):
        with pytest.raises(ValueError):
            call(local)
        with pytest.raises(UnexpectedResponse) as e:
            call(client)
        assert status_of(e.value) == 400, e.value.content
        with pytest.raises(Exception) as e:
            call(grpc_client)
        assert "INVALID_ARGUMENT" in str(e.value)
    # The last vector stays; a missing collection is 404.
    with pytest.raises(UnexpectedResponse) as e:
        client.delete_vector_name(collection_name, "a")
    assert status_of(e.value) == 400 and "last vector" in str(e.value.content)
    with pytest.raises(UnexpectedResponse) as e:
        client.create_vector_name(collection_name + "_missing", "x", DENSE_X)
    assert status_of(e.value) == 404
    # Upserting a vector that was dropped is refused again.
    client.create_vector_name(collection_name, "x", DENSE_X)
    client.delete_vector_name(collection_name, "x")
    with pytest.raises(UnexpectedResponse) as e:
        client.upsert(collection_name, points=[models.PointStruct(id=1, vector={"a": [1, 2, 3], "x": [1, 2]})])
    assert status_of(e.value) == 400


def test_survives_restart(server_factory, tmp_path):
    srv = server_factory(tmp_path / "vn-storage")
    c = QdrantClient(url=srv.url, timeout=30)
    c.create_collection("vn", vectors_config={"a": models.VectorParams(size=3, distance=models.Distance.DOT)})
    c.upsert("vn", points=[models.PointStruct(id=i, vector={"a": [float(i), 1.0, 0.0]}) for i in range(10)])
    c.create_vector_name("vn", "x", DENSE_X)
    c.upsert("vn", points=[models.PointStruct(id=3, vector={"a": [3.0, 1.0, 0.0], "x": [1.0, 2.0]})])
    c.delete_vector_name("vn", "a")
    srv.kill()
    srv.start()
    c = QdrantClient(url=srv.url, timeout=30)
    params = c.get_collection("vn").config.params
    assert sorted(params.vectors) == ["x"]
    hits = c.query_points("vn", query=[1.0, 2.0], using="x", limit=10).points
    assert [norm_id(h.id) for h in hits] == [3]
    assert c.count("vn").count == 10
