"""Errors come back as Qdrant's status codes: 404 for unknown collections/points, 400 for bad input."""

import uuid

import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from harness import error_text


def _missing():
    return f"missing_{uuid.uuid4().hex}"


@pytest.mark.parametrize(
    "call",
    [
        lambda c, n: c.get_collection(n),
        lambda c, n: c.upsert(n, points=[models.PointStruct(id=1, vector=[0.0, 1.0])], wait=True),
        lambda c, n: c.query_points(n, query=[0.0, 1.0], limit=3),
        lambda c, n: c.retrieve(n, ids=[1]),
        lambda c, n: c.scroll(n, limit=3),
        lambda c, n: c.count(n),
        lambda c, n: c.delete(n, points_selector=models.PointIdsList(points=[1]), wait=True),
        lambda c, n: c.update_collection(n, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=5)),
    ],
    ids=["get_collection", "upsert", "query_points", "retrieve", "scroll", "count", "delete", "update_collection"],
)
def test_unknown_collection_is_404(client, call):
    with pytest.raises(UnexpectedResponse) as ei:
        call(client, _missing())
    assert ei.value.status_code == 404, f"status {ei.value.status_code}: {error_text(ei.value)}"
    body = ei.value.structured()
    assert body.get("status", {}).get("error"), f"Qdrant error body has status.error: {body}"


def _make(client, name, dim=4):
    client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))
    client.upsert(name, points=[models.PointStruct(id=1, vector=[0.1] * dim)], wait=True)


def test_wrong_dimension_upsert_is_400(client, collection_name):
    _make(client, collection_name)
    with pytest.raises(UnexpectedResponse) as ei:
        client.upsert(collection_name, points=[models.PointStruct(id=2, vector=[0.1, 0.2, 0.3])], wait=True)
    assert ei.value.status_code == 400, f"status {ei.value.status_code}: {error_text(ei.value)}"
    assert "dim" in error_text(ei.value).lower(), error_text(ei.value)
    # nothing was written
    assert client.count(collection_name).count == 1


def test_wrong_dimension_query_is_400(client, collection_name):
    _make(client, collection_name)
    with pytest.raises(UnexpectedResponse) as ei:
        client.query_points(collection_name, query=[0.1] * 5, limit=3)
    assert ei.value.status_code == 400, f"status {ei.value.status_code}: {error_text(ei.value)}"
    assert "dim" in error_text(ei.value).lower(), error_text(ei.value)


def test_unknown_vector_name_is_400(client, collection_name):
    client.create_collection(
        collection_name, vectors_config={"img": models.VectorParams(size=2, distance=models.Distance.DOT)}
    )
    with pytest.raises(UnexpectedResponse) as ei:
        client.query_points(collection_name, query=[0.1, 0.2], using="nope", limit=3)
    assert ei.value.status_code == 400, f"status {ei.value.status_code}: {error_text(ei.value)}"
    with pytest.raises(UnexpectedResponse) as ei:
        client.upsert(collection_name, points=[models.PointStruct(id=1, vector={"nope": [0.1, 0.2]})], wait=True)
    assert ei.value.status_code == 400, f"status {ei.value.status_code}: {error_text(ei.value)}"


def test_query_by_missing_point_id_is_404(client, collection_name):
    _make(client, collection_name)
    with pytest.raises(UnexpectedResponse) as ei:
        client.query_points(collection_name, query=12345, limit=3)
    assert ei.value.status_code == 404, f"status {ei.value.status_code}: {error_text(ei.value)}"


@pytest.mark.parametrize(
    "call",
    [
        lambda c, n: c.set_payload(n, payload={"a": 1}, points=[999], wait=True),
        lambda c, n: c.overwrite_payload(n, payload={"a": 1}, points=[999], wait=True),
        lambda c, n: c.delete_payload(n, keys=["a"], points=[999], wait=True),
        lambda c, n: c.clear_payload(n, points_selector=models.PointIdsList(points=[999]), wait=True),
    ],
    ids=["set_payload", "overwrite_payload", "delete_payload", "clear_payload"],
)
def test_payload_edit_of_missing_point_is_404(client, collection_name, call):
    """Qdrant: payload edits by id fail with 404 "No point with id 999 found" (deletes of missing ids do not)."""
    _make(client, collection_name)
    with pytest.raises(UnexpectedResponse) as ei:
        call(client, collection_name)
    assert ei.value.status_code == 404, f"status {ei.value.status_code}: {error_text(ei.value)}"


def test_delete_missing_collection_returns_false(client):
    """Qdrant answers 200 with `result: false` when the collection to delete does not exist."""
    assert client.delete_collection(_missing()) is False


def test_malformed_body_is_4xx(client, collection_name):
    _make(client, collection_name)
    with pytest.raises(UnexpectedResponse) as ei:
        client.http.client.request(
            type_=dict,
            method="PUT",
            url="/collections/{collection_name}/points",
            path_params={"collection_name": collection_name},
            content=b'{"points": [{"id": 1, "vector": "not a vector"}]}',
            headers={"content-type": "application/json"},
        )
    assert 400 <= ei.value.status_code < 500, f"status {ei.value.status_code}: {error_text(ei.value)}"
