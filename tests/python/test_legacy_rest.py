"""Qdrant's legacy REST search endpoints (`/points/search`, `/points/search/batch`, `/points/recommend`,
`/points/recommend/batch`). qdrant-client 1.19 no longer has `search`/`recommend` methods nor
`search_api.search_points`, so these go through the client's own HTTP layer (same transport, same error
type) with Qdrant's documented request bodies, and are compared with the numpy oracle."""

import numpy as np
import pytest
from qdrant_client import models

from oracle import ALL_DISTANCES, as_list, assert_hits_match
from test_search import FILTERS, Fixture, _recommend_vector

EXACT = {"exact": True}


def post(client, name, path, body):
    """POSTs to /collections/{name}{path} and returns the parsed `result` (raises UnexpectedResponse)."""
    resp = client.http.client.request(
        type_=dict,
        method="POST",
        url="/collections/{collection_name}" + path,
        path_params={"collection_name": name},
        json=body,
    )
    assert resp.get("status") == "ok", resp
    return resp["result"]


def hits(raw):
    return [models.ScoredPoint(**h) for h in raw]


@pytest.mark.parametrize("distance", ALL_DISTANCES, ids=lambda d: d.value)
def test_legacy_search(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=300, seed=41)
    q = fx.query_vec()
    res = hits(post(client, collection_name, "/points/search", {"vector": as_list(q), "limit": 10, "params": EXACT}))
    ranking, scores = fx.oracle(q)
    assert_hits_match(res, ranking[:10], scores, distance, what="legacy search")
    assert all(h.payload is None for h in res), "legacy search returns no payload unless asked"

    flt = FILTERS["match_any"]
    body = {
        "vector": as_list(q),
        "limit": 5,
        "offset": 2,
        "filter": flt.model_dump(exclude_none=True),
        "params": EXACT,
        "with_payload": True,
    }
    res = hits(post(client, collection_name, "/points/search", body))
    ranking, scores = fx.oracle(q, flt)
    assert_hits_match(res, ranking[2:7], scores, distance, what="legacy search filter+offset")
    assert all(h.payload == fx.model.points[h.id]["payload"] for h in res)


def test_legacy_search_named_vector_and_batch(client, collection_name):
    client.create_collection(
        collection_name,
        vectors_config={
            "a": models.VectorParams(size=3, distance=models.Distance.EUCLID),
            "b": models.VectorParams(size=2, distance=models.Distance.DOT),
        },
    )
    client.upsert(
        collection_name,
        points=[
            models.PointStruct(id=1, vector={"a": [0.0, 0.0, 0.0], "b": [1.0, 0.0]}),
            models.PointStruct(id=2, vector={"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0]}),
            models.PointStruct(id=3, vector={"a": [5.0, 0.0, 0.0], "b": [2.0, 2.0]}),
        ],
        wait=True,
    )
    res = hits(
        post(client, collection_name, "/points/search", {"vector": {"name": "a", "vector": [0.9, 0, 0]}, "limit": 3})
    )
    assert [h.id for h in res] == [2, 1, 3]
    assert np.allclose([h.score for h in res], [0.1, 0.9, 4.1], rtol=1e-4)

    batch = post(
        client,
        collection_name,
        "/points/search/batch",
        {
            "searches": [
                {"vector": {"name": "b", "vector": [1.0, 0.0]}, "limit": 2},
                {"vector": {"name": "a", "vector": [5.0, 0.0, 0.0]}, "limit": 1, "with_payload": True},
            ]
        },
    )
    assert len(batch) == 2
    assert [(h.id, round(h.score, 4)) for h in hits(batch[0])] == [(3, 2.0), (1, 1.0)]
    assert [(h.id, round(h.score, 4)) for h in hits(batch[1])] == [(3, 0.0)]


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.DOT], ids=lambda d: d.value)
def test_legacy_recommend(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=300, seed=42)
    for pos, neg, strategy in (([3, 17], [42], "average_vector"), ([5, 6], [], None), ([10], [40, 50], None)):
        body = {"positive": pos, "negative": neg, "limit": 10, "params": EXACT}
        if strategy:
            body["strategy"] = strategy
        res = hits(post(client, collection_name, "/points/recommend", body))
        target = _recommend_vector(fx.model, distance, pos, neg)
        ranking, scores = fx.oracle(target, exclude=pos + neg)
        assert not {h.id for h in res} & set(pos + neg), "recommend must exclude the examples"
        assert_hits_match(res, ranking[:10], scores, distance, what=f"legacy recommend pos={pos} neg={neg}")

    batch = post(
        client,
        collection_name,
        "/points/recommend/batch",
        {
            "searches": [
                {"positive": [1], "limit": 3, "params": EXACT},
                {"positive": [2], "negative": [3], "limit": 4, "params": EXACT},
            ]
        },
    )
    assert len(batch) == 2
    for raw, (pos, neg, k) in zip(batch, (([1], [], 3), ([2], [3], 4))):
        ranking, scores = fx.oracle(_recommend_vector(fx.model, distance, pos, neg), exclude=pos + neg)
        assert_hits_match(hits(raw), ranking[:k], scores, distance, what=f"legacy recommend batch pos={pos} neg={neg}")
