"""Search through the Query API (`query_points`, `query_batch_points`), checked against the numpy oracle:
exact search for every distance, HNSW recall, named vectors, filters, score_threshold, offset, query by
point id, and recommend (average_vector)."""

import uuid

import numpy as np
import pytest
from qdrant_client import models

from harness import wait_collection_green
from oracle import (
    ALL_DISTANCES,
    HIGHER_IS_BETTER,
    Model,
    as_list,
    assert_hits_match,
    norm_id,
    passes_threshold,
    random_payload,
    random_vectors,
    ranked,
    recall,
)

EXACT = models.SearchParams(exact=True)
N, DIM = 400, 16


class Fixture:
    """A collection populated with random points, plus its oracle."""

    def __init__(self, client, name, distance, n=N, dim=DIM, seed=0, **create_kw):
        self.client, self.name, self.distance, self.dim = client, name, distance, dim
        client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=distance), **create_kw)
        rng = np.random.default_rng(seed)
        self.rng = rng
        vecs = random_vectors(rng, n, dim)
        self.model = Model(distance)
        pts = [models.PointStruct(id=i, vector=as_list(vecs[i]), payload=random_payload(rng, i)) for i in range(n)]
        client.upload_points(name, points=pts, batch_size=256, wait=True)
        for p in pts:
            self.model.upsert_struct(p)

    def oracle(self, query, flt=None, exclude=()):
        ids = self.model.ids(flt)
        stored = np.stack([self.model.points[i]["vector"] for i in ids]) if ids else np.zeros((0, self.dim), np.float32)
        ranking = ranked(self.distance, ids, stored, query, exclude=exclude)
        return ranking, dict(ranking)

    def query_vec(self):
        return self.rng.standard_normal(self.dim).astype(np.float32)


@pytest.mark.parametrize("distance", ALL_DISTANCES, ids=lambda d: d.value)
def test_exact_search_matches_oracle(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, seed=21)
    for k in (1, 10, 25):
        for _ in range(3):
            q = fx.query_vec()
            res = client.query_points(
                collection_name, query=as_list(q), limit=k, with_payload=True, search_params=EXACT
            )
            ranking, scores = fx.oracle(q)
            assert_hits_match(res.points, ranking[:k], scores, distance, what=f"k={k}")
            for h in res.points:
                assert h.payload == fx.model.points[h.id]["payload"]
                assert h.vector is None


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.EUCLID], ids=lambda d: d.value)
def test_with_vectors_in_results(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=50, seed=22)
    q = fx.query_vec()
    res = client.query_points(
        collection_name, query=as_list(q), limit=5, with_payload=False, with_vectors=True, search_params=EXACT
    )
    ranking, scores = fx.oracle(q)
    assert_hits_match(res.points, ranking[:5], scores, distance)
    for h in res.points:
        assert h.payload is None
        assert np.allclose(h.vector, fx.model.points[h.id]["vector"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("distance", ALL_DISTANCES, ids=lambda d: d.value)
def test_hnsw_recall(client, collection_name, distance):
    n, dim = 3000, 32
    # Both thresholds are in KB. indexing_threshold=10 makes the optimizer build an HNSW index for these
    # 375 KB of vectors; full_scan_threshold=10 makes search use it (Qdrant's default of 10,000 KB would
    # answer this small collection by a full scan, which proves nothing about the graph).
    fx = Fixture(
        client,
        collection_name,
        distance,
        n=n,
        dim=dim,
        seed=23,
        hnsw_config=models.HnswConfigDiff(m=16, ef_construct=100, full_scan_threshold=10),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
    )
    info = wait_collection_green(client, collection_name, timeout=30, min_indexed=int(0.9 * n))
    queries = [fx.query_vec() for _ in range(20)]
    recalls = []
    for q in queries:
        res = client.query_points(
            collection_name, query=as_list(q), limit=10, search_params=models.SearchParams(hnsw_ef=128)
        )
        ranking, scores = fx.oracle(q)
        recalls.append(recall([h.id for h in res.points], [i for i, _ in ranking[:10]]))
        assert len(res.points) == 10
        for h in res.points:  # whatever HNSW returns, the scores must be the true ones
            assert abs(h.score - scores[h.id]) <= 1e-4 * max(1.0, abs(scores[h.id])), (h.id, h.score, scores[h.id])
    mean = float(np.mean(recalls))
    print(f"recall@10 {distance.value}: {mean:.3f}")
    assert mean >= 0.9, f"recall@10 = {mean:.3f} over 20 queries (per query: {recalls}); collection: {info}"
    # exact search on the same (now indexed) collection still equals the oracle
    q = queries[0]
    res = client.query_points(collection_name, query=as_list(q), limit=10, search_params=EXACT)
    ranking, scores = fx.oracle(q)
    assert_hits_match(res.points, ranking[:10], scores, distance, what="exact after indexing")
    # Qdrant reports the vectors covered by the index
    assert info.status == models.CollectionStatus.GREEN, f"collection not green after 30 s: {info}"
    assert (info.indexed_vectors_count or 0) >= int(0.9 * n), (
        f"collection reports indexed_vectors_count={info.indexed_vectors_count} for {n} points "
        f"with indexing_threshold=10 KB (Qdrant would have built the index): {info}"
    )


FILTERS = {
    "match_value": models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="red"))]),
    "match_int": models.Filter(must=[models.FieldCondition(key="n", match=models.MatchValue(value=7))]),
    "match_bool": models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value=False))]),
    "match_any": models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchAny(any=["b", "d"]))]),
    "range": models.Filter(must=[models.FieldCondition(key="price", range=models.Range(gt=5.0, lte=25.0))]),
    "has_id": models.Filter(must=[models.HasIdCondition(has_id=list(range(0, 400, 7)))]),
    "is_empty": models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="opt"))]),
    "nested_key": models.Filter(must=[models.FieldCondition(key="a.b", match=models.MatchValue(value=2))]),
    "must_not": models.Filter(must_not=[models.FieldCondition(key="cat", match=models.MatchAny(any=["red", "green"]))]),
    "should": models.Filter(
        should=[
            models.FieldCondition(key="n", range=models.Range(lt=5)),
            models.FieldCondition(key="tags", match=models.MatchValue(value="e")),
        ]
    ),
    "combined": models.Filter(
        must=[
            models.FieldCondition(key="cat", match=models.MatchValue(value="blue")),
            models.Filter(should=[models.FieldCondition(key="a.b", match=models.MatchAny(any=[0, 1]))]),
        ],
        must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key="tags"))],
    ),
}


@pytest.fixture(scope="module")
def filtered_collection(client):
    name = f"t_{uuid.uuid4().hex}"
    fx = Fixture(client, name, models.Distance.DOT, seed=24)
    yield fx
    client.delete_collection(name)


@pytest.mark.parametrize("flt_name", list(FILTERS))
def test_filtered_search(client, filtered_collection, flt_name):
    fx = filtered_collection
    flt = FILTERS[flt_name]
    eligible = fx.model.ids(flt)
    assert 0 < len(eligible) < N, f"filter {flt_name} should be selective on the test data ({len(eligible)})"
    for _ in range(3):
        q = fx.query_vec()
        res = client.query_points(fx.name, query=as_list(q), query_filter=flt, limit=10, search_params=EXACT)
        ranking, scores = fx.oracle(q, flt)
        assert_hits_match(res.points, ranking[:10], scores, fx.distance, what=f"filter {flt_name}")
        # the default (non-exact) path must apply the filter too
        res = client.query_points(fx.name, query=as_list(q), query_filter=flt, limit=10)
        for h in res.points:
            assert h.id in scores, f"filter {flt_name}: non-exact search returned non-matching point {h.id}"


@pytest.mark.parametrize("distance", ALL_DISTANCES, ids=lambda d: d.value)
def test_score_threshold(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=200, seed=25)
    q = fx.query_vec()
    ranking, scores = fx.oracle(q)
    # a threshold half-way between the 7th and 8th best scores: exactly 7 results pass
    thr = (ranking[6][1] + ranking[7][1]) / 2
    res = client.query_points(collection_name, query=as_list(q), limit=20, score_threshold=thr, search_params=EXACT)
    expected = [p for p in ranking[:20] if passes_threshold(distance, p[1], thr)]
    assert len(expected) == 7
    assert_hits_match(
        res.points,
        expected,
        scores,
        distance,
        what=f"score_threshold={thr} (higher_is_better={HIGHER_IS_BETTER[distance]})",
    )


def test_offset(client, collection_name):
    fx = Fixture(client, collection_name, models.Distance.EUCLID, n=200, seed=26)
    q = fx.query_vec()
    ranking, scores = fx.oracle(q)
    for offset, limit in ((0, 5), (5, 5), (17, 10), (195, 10)):
        res = client.query_points(collection_name, query=as_list(q), limit=limit, offset=offset, search_params=EXACT)
        assert_hits_match(res.points, ranking[offset : offset + limit], scores, fx.distance, what=f"offset={offset}")


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.EUCLID], ids=lambda d: d.value)
def test_query_by_point_id(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=200, seed=27)
    for pid in (0, 57, 199):
        res = client.query_points(collection_name, query=pid, limit=10, search_params=EXACT)
        ranking, scores = fx.oracle(fx.model.points[pid]["vector"], exclude=[pid])
        assert pid not in [h.id for h in res.points], "query by id must exclude the point itself"
        assert_hits_match(res.points, ranking[:10], scores, distance, what=f"query=point {pid}")
    # also as an explicit NearestQuery with a filter
    flt = FILTERS["match_value"]
    res = client.query_points(
        collection_name, query=models.NearestQuery(nearest=57), query_filter=flt, limit=5, search_params=EXACT
    )
    ranking, scores = fx.oracle(fx.model.points[57]["vector"], flt, exclude=[57])
    assert_hits_match(res.points, ranking[:5], scores, distance, what="NearestQuery(57) + filter")


def test_query_by_uuid_point_id(client, collection_name):
    client.create_collection(
        collection_name, vectors_config=models.VectorParams(size=3, distance=models.Distance.EUCLID)
    )
    u = [str(uuid.uuid4()) for _ in range(4)]
    vecs = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    client.upsert(collection_name, points=[models.PointStruct(id=i, vector=v) for i, v in zip(u, vecs)], wait=True)
    res = client.query_points(collection_name, query=u[0], limit=10, search_params=EXACT)
    assert [(h.id, round(h.score, 5)) for h in res.points] == [(u[1], 1.0), (u[3], 2.0), (u[2], 3.0)]


def test_named_vectors_search(client, collection_name):
    client.create_collection(
        collection_name,
        vectors_config={
            "img": models.VectorParams(size=4, distance=models.Distance.DOT),
            "txt": models.VectorParams(size=8, distance=models.Distance.COSINE),
        },
    )
    rng = np.random.default_rng(28)
    model = Model({"img": models.Distance.DOT, "txt": models.Distance.COSINE})
    pts = []
    for i in range(150):
        vec = {"img": as_list(rng.standard_normal(4))}
        if i % 5 != 0:  # every 5th point has no "txt" vector
            vec["txt"] = as_list(rng.standard_normal(8))
        pts.append(models.PointStruct(id=i, vector=vec, payload={"i": i}))
        model.upsert(i, vec, {"i": i})
    client.upsert(collection_name, points=pts, wait=True)

    for name, dist, dim in (("img", models.Distance.DOT, 4), ("txt", models.Distance.COSINE, 8)):
        ids = [i for i in model.ids() if name in model.points[i]["vector"]]
        stored = np.stack([model.points[i]["vector"][name] for i in ids])
        for _ in range(3):
            q = rng.standard_normal(dim).astype(np.float32)
            res = client.query_points(collection_name, query=as_list(q), using=name, limit=10, search_params=EXACT)
            ranking = ranked(dist, ids, stored, q)
            assert_hits_match(res.points, ranking[:10], dict(ranking), dist, what=f"using={name}")

    # with_vectors on a named collection: a dict of the requested names
    recs = client.retrieve(collection_name, ids=[1, 5], with_vectors=True)
    for r in recs:
        assert set(r.vector) == set(model.points[r.id]["vector"]), r.vector
        for k, v in r.vector.items():
            assert np.allclose(v, model.points[r.id]["vector"][k], rtol=1e-5, atol=1e-6)
    recs = client.retrieve(collection_name, ids=[1], with_vectors=["img"])
    assert set(recs[0].vector) == {"img"}
    # query by point id through a named vector
    res = client.query_points(collection_name, query=3, using="txt", limit=5, search_params=EXACT)
    ids = [i for i in model.ids() if "txt" in model.points[i]["vector"]]
    stored = np.stack([model.points[i]["vector"]["txt"] for i in ids])
    ranking = ranked(models.Distance.COSINE, ids, stored, model.points[3]["vector"]["txt"], exclude=[3])
    assert_hits_match(res.points, ranking[:5], dict(ranking), models.Distance.COSINE, what="query=3 using=txt")


def test_query_batch_points(client, collection_name):
    fx = Fixture(client, collection_name, models.Distance.COSINE, n=300, seed=29)
    qs = [fx.query_vec() for _ in range(3)]
    flt = FILTERS["range"]
    requests = [
        models.QueryRequest(query=as_list(qs[0]), limit=5, params=EXACT, with_payload=True),
        models.QueryRequest(query=as_list(qs[1]), limit=8, filter=flt, params=EXACT),
        models.QueryRequest(query=as_list(qs[2]), limit=3, offset=2, params=EXACT, with_vector=True),
    ]
    responses = client.query_batch_points(collection_name, requests=requests)
    assert len(responses) == 3
    r0, s0 = fx.oracle(qs[0])
    assert_hits_match(responses[0].points, r0[:5], s0, fx.distance, what="batch[0]")
    assert all(h.payload == fx.model.points[h.id]["payload"] for h in responses[0].points)
    r1, s1 = fx.oracle(qs[1], flt)
    assert_hits_match(responses[1].points, r1[:8], s1, fx.distance, what="batch[1] filter")
    r2, s2 = fx.oracle(qs[2])
    assert_hits_match(responses[2].points, r2[2:5], s2, fx.distance, what="batch[2] offset")
    assert all(h.vector is not None for h in responses[2].points)


def _recommend_vector(model, distance, pos, neg):
    """Qdrant's average_vector strategy over *stored* vectors: avg(pos) + (avg(pos) - avg(neg))."""
    p = np.mean([np.asarray(model.points[norm_id(i)]["vector"], np.float64) for i in pos], axis=0)
    if not neg:
        return p
    n = np.mean([np.asarray(model.points[norm_id(i)]["vector"], np.float64) for i in neg], axis=0)
    return p + (p - n)


@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.EUCLID], ids=lambda d: d.value)
def test_recommend_average_vector(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=300, seed=30)
    cases = [([3, 17], [42]), ([5], []), ([10, 20, 30], [40, 50])]
    for pos, neg in cases:
        target = _recommend_vector(fx.model, distance, pos, neg)
        q = models.RecommendQuery(
            recommend=models.RecommendInput(
                positive=pos, negative=neg or None, strategy=models.RecommendStrategy.AVERAGE_VECTOR
            )
        )
        res = client.query_points(collection_name, query=q, limit=10, search_params=EXACT)
        ranking, scores = fx.oracle(target, exclude=pos + neg)
        got = [h.id for h in res.points]
        assert not set(got) & set(pos + neg), f"recommend must exclude the examples {pos + neg}: {got}"
        assert_hits_match(res.points, ranking[:10], scores, distance, what=f"recommend pos={pos} neg={neg}")
    # with a raw vector as a positive example alongside an id (for Cosine the raw vector is given already
    # normalised, so whether the server normalises raw examples before averaging does not matter)
    raw_vec = fx.query_vec()
    if distance == models.Distance.COSINE:
        raw_vec = raw_vec / np.linalg.norm(raw_vec)
    raw = as_list(raw_vec)
    q = models.RecommendQuery(
        recommend=models.RecommendInput(positive=[7, raw], strategy=models.RecommendStrategy.AVERAGE_VECTOR)
    )
    res = client.query_points(collection_name, query=q, limit=10, search_params=EXACT)
    target = np.mean([np.asarray(fx.model.points[7]["vector"], np.float64), np.asarray(raw, np.float64)], axis=0)
    ranking, scores = fx.oracle(target, exclude=[7])
    assert_hits_match(res.points, ranking[:10], scores, distance, what="recommend pos=[7, raw vector]")


def test_search_after_updates_on_indexed_collection(client, collection_name):
    """Deletes, re-upserts and new points after the HNSW index was built are seen by every search path."""
    n, dim = 3000, 32
    fx = Fixture(
        client,
        collection_name,
        models.Distance.EUCLID,
        n=n,
        dim=dim,
        seed=31,
        hnsw_config=models.HnswConfigDiff(m=16, ef_construct=100, full_scan_threshold=10),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
    )
    wait_collection_green(client, collection_name, timeout=30, min_indexed=int(0.9 * n))
    queries = [fx.query_vec() for _ in range(5)]
    # delete every query's current top-3, move 20 other points right next to the queries, add new points
    doomed = set()
    for q in queries:
        ranking, _ = fx.oracle(q)
        doomed.update(i for i, _ in ranking[:3])
    client.delete(collection_name, points_selector=models.PointIdsList(points=sorted(doomed)), wait=True)
    fx.model.delete(doomed)
    moved = [i for i in range(100, 120)]
    new = list(range(n, n + 20))
    pts = []
    for k, pid in enumerate(moved + new):
        v = queries[k % len(queries)] + fx.rng.standard_normal(dim).astype(np.float32) * 0.01
        pts.append(models.PointStruct(id=pid, vector=as_list(v), payload={"moved": pid}))
    client.upsert(collection_name, points=pts, wait=True)
    for p in pts:
        fx.model.upsert_struct(p)
    assert client.count(collection_name, exact=True).count == len(fx.model.points)

    for q in queries:
        ranking, scores = fx.oracle(q)
        res = client.query_points(collection_name, query=as_list(q), limit=10, search_params=EXACT)
        assert_hits_match(res.points, ranking[:10], scores, fx.distance, what="exact after updates")
        res = client.query_points(
            collection_name, query=as_list(q), limit=10, search_params=models.SearchParams(hnsw_ef=128)
        )
        got = [h.id for h in res.points]
        assert not set(got) & doomed, f"deleted points returned: {set(got) & doomed}"
        for h in res.points:
            assert h.id in scores and abs(h.score - scores[h.id]) <= 1e-4 * max(1.0, scores[h.id]), (h.id, h.score)
            assert h.payload == fx.model.points[h.id]["payload"]
        # the 8 moved/new points next to this query are its true top-8
        assert recall(got[:8], [i for i, _ in ranking[:8]]) >= 0.875, (got, ranking[:10])
