"""Payload edits (set with and without a nested key, overwrite, delete keys, clear), by ids and by filter,
and batch_update_points mixing every operation kind. Each step is checked against the Python model."""

import numpy as np
from qdrant_client import models

from oracle import Model, as_list, random_payload
from test_points import DIM, _create, _populate, assert_state


def test_set_payload(client, collection_name):
    _create(client, collection_name)
    model = _populate(client, collection_name, 40, seed=11)

    res = client.set_payload(collection_name, payload={"new": 1, "cat": "purple"}, points=[1, 2, 3], wait=True)
    assert res.status == models.UpdateStatus.COMPLETED
    model.set_payload({"new": 1, "cat": "purple"}, points=[1, 2, 3])
    assert_state(client, collection_name, model, with_vectors=False)

    # nested key: merges into the object at `a`
    client.set_payload(collection_name, payload={"c": [1, 2], "b": 99}, points=[4, 5], key="a", wait=True)
    model.set_payload({"c": [1, 2], "b": 99}, points=[4, 5], key="a")
    # nested key through a path that does not exist yet: objects are created
    client.set_payload(collection_name, payload={"z": True}, points=[6], key="x.y", wait=True)
    model.set_payload({"z": True}, points=[6], key="x.y")
    assert_state(client, collection_name, model, with_vectors=False)
    assert model.points[6]["payload"]["x"] == {"y": {"z": True}}

    # by filter
    flt = models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="green"))])
    client.set_payload(collection_name, payload={"was_green": True}, points=flt, wait=True)
    model.set_payload({"was_green": True}, flt=flt)
    assert_state(client, collection_name, model, with_vectors=False)


def test_overwrite_payload(client, collection_name):
    _create(client, collection_name)
    model = _populate(client, collection_name, 30, seed=12)
    client.overwrite_payload(collection_name, payload={"only": {"this": [1]}}, points=[1, 2], wait=True)
    model.overwrite_payload({"only": {"this": [1]}}, points=[1, 2])
    flt = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=30))])
    client.overwrite_payload(
        collection_name, payload={"low": True}, points=models.FilterSelector(filter=flt), wait=True
    )
    model.overwrite_payload({"low": True}, flt=flt)
    assert_state(client, collection_name, model, with_vectors=False)


def test_delete_payload_keys(client, collection_name):
    _create(client, collection_name)
    model = _populate(client, collection_name, 30, seed=13)
    client.delete_payload(collection_name, keys=["cat", "tags", "not_there"], points=[1, 2, 3], wait=True)
    model.delete_payload(["cat", "tags", "not_there"], points=[1, 2, 3])
    # a nested path removes only the leaf
    client.delete_payload(collection_name, keys=["a.b"], points=[4, 5], wait=True)
    model.delete_payload(["a.b"], points=[4, 5])
    assert "name" in model.points[4]["payload"]["a"]
    flt = models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value=True))])
    client.delete_payload(collection_name, keys=["price"], points=flt, wait=True)
    model.delete_payload(["price"], flt=flt)
    assert_state(client, collection_name, model, with_vectors=False)


def test_clear_payload(client, collection_name):
    _create(client, collection_name)
    model = _populate(client, collection_name, 30, seed=14)
    client.clear_payload(collection_name, points_selector=models.PointIdsList(points=[1, 2]), wait=True)
    model.clear_payload(points=[1, 2])
    flt = models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="blue"))])
    client.clear_payload(collection_name, points_selector=models.FilterSelector(filter=flt), wait=True)
    model.clear_payload(flt=flt)
    assert_state(client, collection_name, model, with_vectors=False)
    # vectors are untouched by payload edits
    assert_state(client, collection_name, model, with_vectors=True)


def test_batch_update_points_mixed(client, collection_name):
    _create(client, collection_name)
    model = _populate(client, collection_name, 50, seed=15)
    rng = np.random.default_rng(16)

    new_pts = [
        models.PointStruct(id=i, vector=as_list(rng.standard_normal(DIM)), payload=random_payload(rng, i))
        for i in range(100, 110)
    ]
    replaced = models.PointStruct(id=7, vector=as_list(rng.standard_normal(DIM)), payload={"replaced": True})
    red = models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="red"))])
    high = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=90))])

    ops = [
        models.UpsertOperation(upsert=models.PointsList(points=new_pts + [replaced])),
        models.DeleteOperation(delete=models.PointIdsList(points=[1, 2, 100])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"s": 1}, points=[3, 4, 101])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"deep": "x"}, points=[5], key="a")),
        models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(payload={"o": [1, 2]}, points=[6, 102])),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["tags", "a.name"], points=[8, 9, 103])),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[10, 104])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"was_red": True}, filter=red)),
        models.DeleteOperation(delete=models.FilterSelector(filter=high)),
        # operations apply in order: re-create a deleted id at the end
        models.UpsertOperation(
            upsert=models.PointsList(points=[models.PointStruct(id=1, vector=[0.5] * DIM, payload={"back": 1})])
        ),
    ]
    results = client.batch_update_points(collection_name, update_operations=ops, wait=True)
    assert len(results) == len(ops)
    assert all(r.status == models.UpdateStatus.COMPLETED for r in results)

    for p in new_pts + [replaced]:
        model.upsert_struct(p)
    model.delete([1, 2, 100])
    model.set_payload({"s": 1}, points=[3, 4, 101])
    model.set_payload({"deep": "x"}, points=[5], key="a")
    model.overwrite_payload({"o": [1, 2]}, points=[6, 102])
    model.delete_payload(["tags", "a.name"], points=[8, 9, 103])
    model.clear_payload(points=[10, 104])
    model.set_payload({"was_red": True}, flt=red)
    model.delete(model.ids(high))
    model.upsert(1, [0.5] * DIM, {"back": 1})
    assert_state(client, collection_name, model)


def test_payload_values_roundtrip(client, collection_name):
    """JSON values keep their types: ints stay ints, floats stay floats, nulls stay null."""
    _create(client, collection_name)
    payload = {
        "i": 3,
        "f": 3.0,
        "neg_f": -0.25,
        "big": 2**53,
        "s": "3",
        "b": False,
        "n": None,
        "l": [1, "1", 1.5, None, [2]],
    }
    client.upsert(collection_name, points=[models.PointStruct(id=1, vector=[0.0] * DIM, payload=payload)], wait=True)
    (r,) = client.retrieve(collection_name, ids=[1])
    assert r.payload == payload
    assert type(r.payload["i"]) is int and type(r.payload["f"]) is float
    model = Model(models.Distance.EUCLID)
    model.upsert(1, [0.0] * DIM, payload)
    assert_state(client, collection_name, model)
