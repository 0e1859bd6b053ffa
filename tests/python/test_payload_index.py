"""Payload indexes through the official client: create/delete, payload_schema in collection info, and
filtered count / scroll / search that agree with the Python filter oracle once segments are sealed and
indexed."""

import time

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from oracle import matches, norm_id, ranked
from test_points import DIM, _populate

INDEXES = {
    "cat": models.PayloadSchemaType.KEYWORD,
    "n": models.PayloadSchemaType.INTEGER,
    "price": models.PayloadSchemaType.FLOAT,
    "flag": models.PayloadSchemaType.BOOL,
    "tags": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=False),
}

FILTERS = [
    models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="red"))]),
    models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchAny(any=["b", "z"]))]),
    models.Filter(must=[models.FieldCondition(key="n", range=models.Range(gte=10, lt=35))]),
    models.Filter(
        must=[
            models.FieldCondition(key="price", range=models.Range(gt=12.5, lte=30)),
            models.FieldCondition(key="flag", match=models.MatchValue(value=True)),
        ]
    ),
    models.Filter(
        must=[models.FieldCondition(key="n", match=models.MatchValue(value=7))],
        must_not=[models.FieldCondition(key="cat", match=models.MatchValue(value="blue"))],
    ),
    models.Filter(
        should=[
            models.FieldCondition(key="cat", match=models.MatchValue(value="green")),
            models.HasIdCondition(has_id=[1, 2, 3]),
        ]
    ),
]


def _check_filters(client, name, model, what):
    stored = {pid: p for pid, p in model.points.items()}
    ids = list(stored)
    vectors = np.array([stored[i]["vector"] for i in ids], dtype=np.float32)
    query = np.random.default_rng(5).standard_normal(DIM).astype(np.float32)
    for flt in FILTERS:
        passing = [pid for pid in ids if matches(flt, pid, stored[pid]["payload"])]
        assert passing, f"{what}: filter passes nothing: {flt}"
        assert client.count(name, count_filter=flt, exact=True).count == len(passing), f"{what}: count {flt}"
        seen, offset = [], None
        while True:
            page, offset = client.scroll(name, scroll_filter=flt, limit=37, offset=offset, with_payload=False)
            seen += [norm_id(p.id) for p in page]
            if offset is None:
                break
        assert seen == sorted(passing), f"{what}: scroll {flt}"
        mask = [i for i, pid in enumerate(ids) if pid in set(passing)]
        want = ranked(model.distance, [ids[i] for i in mask], vectors[mask], query)[:10]
        hits = client.query_points(
            name, query=query.tolist(), query_filter=flt, limit=10, search_params=models.SearchParams(exact=True)
        ).points
        assert [norm_id(h.id) for h in hits] == [pid for pid, _ in want], f"{what}: exact search {flt}"


def test_payload_indexes_answer_like_the_oracle(client, collection_name):
    client.create_collection(
        collection_name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
        optimizers_config=models.OptimizersConfigDiff(flush_interval_sec=1),
    )
    model = _populate(client, collection_name, 600, seed=31)
    _check_filters(client, collection_name, model, "no index")
    for field, schema in INDEXES.items():
        res = client.create_payload_index(collection_name, field_name=field, field_schema=schema, wait=True)
        assert res.status == models.UpdateStatus.COMPLETED
    # The flush interval seals the written points into a segment, where the indexes are used.
    time.sleep(2.5)
    info = client.get_collection(collection_name)
    assert set(info.payload_schema) == set(INDEXES)
    assert info.payload_schema["cat"].data_type == models.PayloadSchemaType.KEYWORD
    assert info.payload_schema["cat"].points == 600
    with_tags = sum(1 for p in model.points.values() if p["payload"]["tags"])
    assert info.payload_schema["tags"].points == with_tags
    assert info.payload_schema["tags"].params.is_tenant is False
    _check_filters(client, collection_name, model, "indexed")

    # Writes after indexing land in the appendable segment and are found as well.
    client.set_payload(collection_name, payload={"cat": "red", "n": 20}, points=[5, 6, 7], wait=True)
    model.set_payload({"cat": "red", "n": 20}, points=[5, 6, 7])
    client.delete(collection_name, points_selector=models.PointIdsList(points=[8, 9]), wait=True)
    model.delete([8, 9])
    _check_filters(client, collection_name, model, "indexed + writes")

    client.delete_payload_index(collection_name, field_name="cat", wait=True)
    assert "cat" not in client.get_collection(collection_name).payload_schema
    _check_filters(client, collection_name, model, "index dropped")


def test_payload_index_errors(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    # Geo indexes are built now (bad index declarations: tests/python/test_geo_text_oracle.py).
    result = client.create_payload_index(collection_name, field_name="loc", field_schema=models.PayloadSchemaType.GEO)
    assert result.status == models.UpdateStatus.COMPLETED
    with pytest.raises(UnexpectedResponse) as e:
        client.create_payload_index("no-such-collection", field_name="x", field_schema="keyword")
    assert e.value.status_code == 404
