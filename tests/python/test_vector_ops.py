"""update_vectors / delete_vectors (and their batch forms) against a model of named vectors."""

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from oracle import norm_id, vectors_equal


def _setup(client, name, n=30):
    client.create_collection(
        name,
        vectors_config={
            "a": models.VectorParams(size=3, distance=models.Distance.EUCLID),
            "b": models.VectorParams(size=2, distance=models.Distance.DOT),
        },
    )
    rng = np.random.default_rng(3)
    model = {}
    points = []
    for i in range(1, n + 1):
        v = {"a": rng.standard_normal(3).round(3).tolist(), "b": rng.standard_normal(2).round(3).tolist()}
        model[i] = {"vectors": v, "payload": {"i": i}}
        points.append(models.PointStruct(id=i, vector=v, payload={"i": i}))
    client.upsert(name, points=points, wait=True)
    return model


def _check(client, name, model):
    got = client.retrieve(name, ids=list(model), with_vectors=True, with_payload=True)
    assert len(got) == len(model)
    for r in got:
        want = model[norm_id(r.id)]
        assert set(r.vector) == set(want["vectors"]), f"point {r.id}: {r.vector} vs {want['vectors']}"
        for k, v in want["vectors"].items():
            assert vectors_equal(r.vector[k], v)
        assert r.payload == want["payload"]
    # Search by "b" finds exactly the points that still have "b", with exact dot scores.
    q = [0.3, -1.2]
    hits = client.query_points(name, query=q, using="b", limit=100, search_params=models.SearchParams(exact=True)).points
    with_b = {pid for pid, p in model.items() if "b" in p["vectors"]}
    assert {norm_id(h.id) for h in hits} == with_b
    for h in hits:
        assert abs(h.score - float(np.dot(q, model[norm_id(h.id)]["vectors"]["b"]))) < 1e-4


def test_update_and_delete_vectors(client, collection_name):
    model = _setup(client, collection_name)
    client.update_vectors(
        collection_name, points=[models.PointVectors(id=3, vector={"b": [1.0, 2.0]}), models.PointVectors(id=4, vector={"a": [0.0, 0.0, 1.0]})], wait=True
    )
    model[3]["vectors"]["b"] = [1.0, 2.0]
    model[4]["vectors"]["a"] = [0.0, 0.0, 1.0]
    _check(client, collection_name, model)

    client.delete_vectors(collection_name, vectors=["b"], points=[5, 6, 7], wait=True)
    for i in (5, 6, 7):
        del model[i]["vectors"]["b"]
    _check(client, collection_name, model)

    flt = models.Filter(must=[models.FieldCondition(key="i", range=models.Range(gte=20))])
    client.delete_vectors(collection_name, vectors=["b"], points=flt, wait=True)
    for i in model:
        if i >= 20:
            model[i]["vectors"].pop("b", None)
    _check(client, collection_name, model)

    # A vector given back to a point that had lost it.
    client.batch_update_points(
        collection_name,
        update_operations=[
            models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(points=[models.PointVectors(id=5, vector={"b": [0.5, 0.5]})])),
            models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[8], vector=["b"])),
        ],
        wait=True,
    )
    model[5]["vectors"]["b"] = [0.5, 0.5]
    del model[8]["vectors"]["b"]
    _check(client, collection_name, model)


def test_vector_ops_errors(client, collection_name):
    model = _setup(client, collection_name, n=5)
    with pytest.raises(UnexpectedResponse) as e:
        client.update_vectors(collection_name, points=[models.PointVectors(id=999, vector={"b": [1.0, 2.0]})], wait=True)
    assert e.value.status_code == 404
    with pytest.raises(UnexpectedResponse) as e:
        client.update_vectors(collection_name, points=[models.PointVectors(id=1, vector={"b": [1.0, 2.0, 3.0]})], wait=True)
    assert e.value.status_code == 400 and b"dim" in e.value.content
    with pytest.raises(UnexpectedResponse) as e:
        client.delete_vectors(collection_name, vectors=["nope"], points=[1], wait=True)
    assert e.value.status_code in (400, 404)
    _check(client, collection_name, model)
