"""Read-side Query features beyond nearest search, checked against numpy / pure-Python oracles:
recommend `best_score` and `sum_scores`, grouped queries (`query_points_groups`, legacy
`/search/groups` and `/recommend/groups`, `with_lookup`), discovery and context queries (Query API and
legacy `/points/discover`), facets, the distance matrix (pairs and offsets) and scroll `order_by`.

Custom scores follow Qdrant's definitions over the metric's internal similarity (cosine: dot of
normalised vectors, dot: dot, Euclid: minus the squared L2 distance, Manhattan: minus the L1 distance),
reported as is with larger better for every metric."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from harness import status_of
from oracle import ALL_DISTANCES, D, HIGHER_IS_BETTER, Model, as_list, assert_hits_match, id_sort_key, norm_id
from oracle import random_vectors, ranked, values_at
from test_legacy_rest import post

EXACT = models.SearchParams(exact=True)
F32_EPS = float(np.finfo(np.float32).eps)


# ---------------------------------------------------------------------------------------------------
# Oracles


def similarities(distance, stored: np.ndarray, example) -> np.ndarray:
    """Internal similarity (larger is better) of every stored row to one example, in float64."""
    m = np.asarray(stored, dtype=np.float64)
    e = np.asarray(example, dtype=np.float64)
    if distance == D.COSINE:
        n = np.linalg.norm(e)
        return m @ (e / n if n > 0 else e)
    if distance == D.DOT:
        return m @ e
    if distance == D.EUCLID:
        return -((m - e) ** 2).sum(axis=1)
    if distance == D.MANHATTAN:
        return -np.abs(m - e).sum(axis=1)
    raise ValueError(distance)


def fast_sigmoid(x):
    return x / (1.0 + np.abs(x))


def scaled_fast_sigmoid(x):
    return 0.5 * (fast_sigmoid(x) + 1.0)


def best_score(pos: list[np.ndarray], neg: list[np.ndarray], n: int) -> np.ndarray:
    p = np.max(pos, axis=0) if pos else np.full(n, -np.inf)
    q = np.max(neg, axis=0) if neg else np.full(n, -np.inf)
    with np.errstate(invalid="ignore"):
        return np.where(p > q, scaled_fast_sigmoid(p), -scaled_fast_sigmoid(q))


def sum_scores(pos: list[np.ndarray], neg: list[np.ndarray], n: int) -> np.ndarray:
    p = np.sum(pos, axis=0) if pos else np.zeros(n)
    q = np.sum(neg, axis=0) if neg else np.zeros(n)
    return p - q


def context_score(pairs: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    total = np.zeros(n)
    for p, q in pairs:
        total += fast_sigmoid(np.minimum(p - q - F32_EPS, 0.0))
    return total


def discover_score(target: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    rank = np.zeros(len(target))
    for p, q in pairs:
        rank += np.sign(p - q)
    return rank + scaled_fast_sigmoid(target)


def custom_ranking(ids: list, scores: np.ndarray, exclude=(), threshold=None) -> list[tuple]:
    """(id, score) best first (larger is better), ties by id."""
    excl = {norm_id(x) for x in exclude}
    pairs = [(i, float(s)) for i, s in zip(ids, scores) if i not in excl and (threshold is None or s >= threshold)]
    pairs.sort(key=lambda p: (-p[1], id_sort_key(p[0])))
    return pairs


class Fixture:
    """A collection of random points with a payload built by `payload(rng, i)`, and its model."""

    def __init__(self, client, name, distance, n, dim=8, seed=0, payload=None):
        self.client, self.name, self.distance, self.dim = client, name, distance, dim
        client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=distance))
        self.rng = np.random.default_rng(seed)
        vecs = random_vectors(self.rng, n, dim)
        self.model = Model(distance)
        pts = [
            models.PointStruct(id=i, vector=as_list(vecs[i]), payload=payload(self.rng, i) if payload else {})
            for i in range(n)
        ]
        client.upload_points(name, points=pts, batch_size=256, wait=True)
        for p in pts:
            self.model.upsert_struct(p)

    def ids(self, flt=None):
        return self.model.ids(flt)

    def stored(self, ids):
        return np.stack([self.model.points[i]["vector"] for i in ids])

    def vec(self, example):
        """An example: a point id (its stored vector) or a raw vector."""
        if isinstance(example, list):
            return np.asarray(example, np.float64)
        return np.asarray(self.model.points[norm_id(example)]["vector"], np.float64)

    def sims(self, ids, example):
        return similarities(self.distance, self.stored(ids), self.vec(example))

    def query_vec(self):
        return as_list(self.rng.standard_normal(self.dim))


def example_ids(*groups):
    return [x for g in groups for x in g if not isinstance(x, list)]


# ---------------------------------------------------------------------------------------------------
# Recommend: best_score and sum_scores


RECOMMEND_CASES = [
    # (positive, negative): ids and raw vectors mixed
    ([3, 17], [42]),
    ([5, "raw"], [11, 12]),
    ([8], []),
    ([], [1, 2]),
]


def _examples(fx, items):
    return [fx.query_vec() if x == "raw" else x for x in items]


@pytest.mark.parametrize("strategy", ["best_score", "sum_scores"])
@pytest.mark.parametrize("distance", ALL_DISTANCES, ids=lambda d: d.value)
def test_recommend_strategies_match_oracle(client, collection_name, distance, strategy):
    fx = Fixture(client, collection_name, distance, n=300, seed=101)
    ids = fx.ids()
    score_fn = best_score if strategy == "best_score" else sum_scores
    for pos, neg in RECOMMEND_CASES:
        pos, neg = _examples(fx, pos), _examples(fx, neg)
        res = client.query_points(
            collection_name,
            query=models.RecommendQuery(recommend=models.RecommendInput(positive=pos, negative=neg, strategy=strategy)),
            limit=12,
            with_payload=True,
        )
        expected = score_fn([fx.sims(ids, p) for p in pos], [fx.sims(ids, q) for q in neg], len(ids))
        ranking = custom_ranking(ids, expected, exclude=example_ids(pos, neg))
        what = f"{strategy} {distance.value} pos={pos} neg={neg}"
        # Larger is better for custom scores, whatever the metric.
        assert_hits_match(res.points, ranking[:12], dict(ranking), D.DOT, what=what)
        assert not {h.id for h in res.points} & set(example_ids(pos, neg)), f"examples must be excluded; {what}"
        for h in res.points:
            assert h.payload == fx.model.points[h.id]["payload"]
        if strategy == "best_score":
            # Points won by a positive score in (0, 1), by a negative in (-1, 0).
            assert all(-1.0 < h.score < 1.0 for h in res.points), what


def test_recommend_strategies_filter_offset_threshold_and_legacy(client, collection_name):
    distance = D.COSINE
    fx = Fixture(client, collection_name, distance, n=300, seed=102, payload=lambda rng, i: {"k": i % 3})
    flt = models.Filter(must=[models.FieldCondition(key="k", match=models.MatchValue(value=1))])
    ids = fx.ids(flt)
    pos, neg = [4, 7], [10]
    expected = best_score([fx.sims(ids, p) for p in pos], [fx.sims(ids, q) for q in neg], len(ids))
    ranking = custom_ranking(ids, expected, exclude=pos + neg)
    res = client.query_points(
        collection_name,
        query=models.RecommendQuery(recommend=models.RecommendInput(positive=pos, negative=neg, strategy="best_score")),
        query_filter=flt,
        limit=5,
        offset=3,
    )
    assert_hits_match(res.points, ranking[3:8], dict(ranking), D.DOT, what="best_score filter+offset")

    # Between the 7th and the 8th score, so float32 rounding cannot move a point across it.
    threshold = (ranking[6][1] + ranking[7][1]) / 2
    assert ranking[6][1] - ranking[7][1] > 1e-5
    res = client.query_points(
        collection_name,
        query=models.RecommendQuery(recommend=models.RecommendInput(positive=pos, negative=neg, strategy="best_score")),
        query_filter=flt,
        limit=50,
        score_threshold=threshold,
    )
    assert_hits_match(res.points, ranking[:7], dict(ranking), D.DOT, what="best_score threshold")

    # Legacy /points/recommend with a strategy.
    all_ids = fx.ids()
    expected = sum_scores([fx.sims(all_ids, p) for p in pos], [fx.sims(all_ids, q) for q in neg], len(all_ids))
    ranking = custom_ranking(all_ids, expected, exclude=pos + neg)
    body = {"positive": pos, "negative": neg, "strategy": "sum_scores", "limit": 7}
    got = [models.ScoredPoint(**h) for h in post(client, collection_name, "/points/recommend", body)]
    assert_hits_match(got, ranking[:7], dict(ranking), D.DOT, what="legacy sum_scores")

    # Neither positives nor negatives: refused.
    nothing = models.RecommendInput(positive=[], negative=[], strategy="best_score")
    with pytest.raises(UnexpectedResponse) as e:
        client.query_points(collection_name, query=models.RecommendQuery(recommend=nothing))
    assert status_of(e.value) == 400


def test_custom_queries_on_named_vectors_and_lookup_from(client, collection_name):
    """`using` picks the vector (points without it are skipped); `lookup_from` reads examples elsewhere
    (and then does not exclude them)."""
    client.create_collection(
        collection_name,
        vectors_config={
            "a": models.VectorParams(size=4, distance=D.COSINE),
            "b": models.VectorParams(size=3, distance=D.EUCLID),
        },
    )
    rng = np.random.default_rng(150)
    va, vb = random_vectors(rng, 120, 4), random_vectors(rng, 120, 3)
    # Every fourth point has no vector "b".
    vectors = [{"a": as_list(va[i])} if i % 4 == 0 else {"a": as_list(va[i]), "b": as_list(vb[i])} for i in range(120)]
    points = [models.PointStruct(id=i, vector=v) for i, v in enumerate(vectors)]
    client.upsert(collection_name, points=points, wait=True)
    with_b = [i for i in range(120) if i % 4 != 0]
    stored_b = np.stack([vb[i] for i in with_b])

    pos, neg = [1, 2], [3]
    res = client.query_points(
        collection_name,
        query=models.RecommendQuery(recommend=models.RecommendInput(positive=pos, negative=neg, strategy="best_score")),
        using="b",
        limit=10,
    )
    def sims(i):
        return similarities(D.EUCLID, stored_b, vb[i])

    expected = best_score([sims(p) for p in pos], [sims(q) for q in neg], len(with_b))
    ranking = custom_ranking(with_b, expected, exclude=pos + neg)
    assert_hits_match(res.points, ranking[:10], dict(ranking), D.DOT, what="best_score using b")
    assert all(h.id % 4 != 0 for h in res.points), "points without vector b are skipped"

    other = f"{collection_name}_examples"
    client.create_collection(other, vectors_config={"b": models.VectorParams(size=3, distance=D.EUCLID)})
    try:
        ex = random_vectors(rng, 3, 3)
        client.upsert(other, points=[models.PointStruct(id=i, vector={"b": as_list(ex[i])}) for i in range(3)])
        res = client.query_points(
            collection_name,
            query=models.DiscoverQuery(
                discover=models.DiscoverInput(target=0, context=[models.ContextPair(positive=1, negative=2)])
            ),
            using="b",
            lookup_from=models.LookupLocation(collection=other, vector="b"),
            limit=120,
        )

        def ex_sims(i):
            return similarities(D.EUCLID, stored_b, ex[i])

        expected = discover_score(ex_sims(0), [(ex_sims(1), ex_sims(2))])
        ranking = custom_ranking(with_b, expected)
        assert_hits_match(res.points, ranking, dict(ranking), D.DOT, what="discover with lookup_from")
    finally:
        client.delete_collection(other)


# ---------------------------------------------------------------------------------------------------
# Groups

GROUP_KEYS = [f"g{i}" for i in range(15)]


def group_payload(rng, i):
    r = rng.random()
    if r < 0.55:
        doc = GROUP_KEYS[int(rng.integers(0, len(GROUP_KEYS)))]
    elif r < 0.70:
        doc = int(rng.integers(0, 10))
    elif r < 0.82:
        doc = [GROUP_KEYS[int(rng.integers(0, len(GROUP_KEYS)))] for _ in range(int(rng.integers(1, 4)))]
    elif r < 0.88:
        doc = None  # key missing
    elif r < 0.94:
        doc = bool(rng.integers(0, 2))  # not a group id
    else:
        doc = 1.5  # not a group id
    p = {"doc_id": int(rng.integers(0, 10)), "i": i}
    if doc is not None:
        p["doc"] = doc
    return p


def group_ids(value):
    """Distinct group ids of a payload value, or None when the point is left out."""
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            return None
        if v not in out:
            out.append(v)
    return out or None


def groups_oracle(ranking, model, key, group_size, limit):
    groups: list[tuple] = []
    index: dict = {}
    for pid, score in ranking:
        vals = values_at(model.points[pid]["payload"], key)
        ids = group_ids(vals) if vals else None
        if ids is None:
            continue
        for g in ids:
            if (type(g), g) not in index:
                if len(groups) >= limit:
                    continue
                index[(type(g), g)] = len(groups)
                groups.append((g, []))
            hits = groups[index[(type(g), g)]][1]
            if len(hits) < group_size:
                hits.append((pid, score))
    return groups


def assert_groups_match(got, expected, what=""):
    shown_got = [(g.id, [h.id for h in g.hits]) for g in got]
    shown_expected = [(g, [h[0] for h in hs]) for g, hs in expected]
    ctx = f"{what}\n got: {shown_got}\n expected: {shown_expected}"
    assert len(got) == len(expected), f"number of groups {len(got)} != {len(expected)}; {ctx}"
    for g, (eid, ehits) in zip(got, expected):
        assert g.id == eid and type(g.id) is type(eid), f"group id {g.id!r} != {eid!r}; {ctx}"
        assert [norm_id(h.id) for h in g.hits] == [h[0] for h in ehits], f"hits of group {eid!r}; {ctx}"
        for h, (_, es) in zip(g.hits, ehits):
            assert abs(h.score - es) <= 1e-4 * max(1.0, abs(es)), f"score of {h.id} in {eid!r}; {ctx}"


@pytest.mark.parametrize("distance", [D.COSINE, D.EUCLID], ids=lambda d: d.value)
def test_query_groups_match_oracle(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=400, seed=201, payload=group_payload)
    ids = fx.ids()
    for group_size, limit in ((3, 5), (2, 40), (40, 3), (1, 1)):
        q = fx.query_vec()
        res = client.query_points_groups(
            collection_name,
            group_by="doc",
            query=q,
            group_size=group_size,
            limit=limit,
            search_params=EXACT,
            with_payload=True,
        )
        ranking = ranked(distance, ids, fx.stored(ids), q)
        expected = groups_oracle(ranking, fx.model, "doc", group_size, limit)
        assert_groups_match(res.groups, expected, what=f"size={group_size} limit={limit}")
        for g in res.groups:
            for h in g.hits:
                assert h.payload == fx.model.points[h.id]["payload"]
                assert h.vector is None
            assert g.lookup is None

    # A filter and with_vectors; the integer key.
    flt = models.Filter(must=[models.FieldCondition(key="i", range=models.Range(gte=100))])
    q = fx.query_vec()
    res = client.query_points_groups(
        collection_name,
        group_by="doc_id",
        query=q,
        group_size=4,
        limit=6,
        query_filter=flt,
        search_params=EXACT,
        with_payload=False,
        with_vectors=True,
    )
    fids = fx.ids(flt)
    expected = groups_oracle(ranked(distance, fids, fx.stored(fids), q), fx.model, "doc_id", 4, 6)
    assert_groups_match(res.groups, expected, what="filter doc_id")
    for g in res.groups:
        for h in g.hits:
            assert h.payload is None
            assert np.allclose(h.vector, fx.model.points[h.id]["vector"], atol=1e-6)


def test_groups_with_lookup_custom_query_and_legacy(client, collection_name):
    distance = D.DOT
    fx = Fixture(client, collection_name, distance, n=300, seed=202, payload=group_payload)
    ids = fx.ids()
    lookup = f"{collection_name}_docs"
    client.create_collection(lookup, vectors_config=models.VectorParams(size=2, distance=D.DOT))
    try:
        client.upsert(
            lookup,
            points=[models.PointStruct(id=i, vector=[1.0, float(i)], payload={"title": f"doc {i}"}) for i in range(8)],
            wait=True,
        )
        q = fx.query_vec()
        res = client.query_points_groups(
            collection_name, group_by="doc_id", query=q, group_size=2, limit=10, search_params=EXACT, with_lookup=lookup
        )
        expected = groups_oracle(ranked(distance, ids, fx.stored(ids), q), fx.model, "doc_id", 2, 10)
        assert_groups_match(res.groups, expected, what="with_lookup")
        for g in res.groups:
            if g.id < 8:
                assert g.lookup is not None and g.lookup.id == g.id
                assert g.lookup.payload == {"title": f"doc {g.id}"} and g.lookup.vector is None
            else:
                assert g.lookup is None, "ids 8 and 9 are not in the lookup collection"

        vectors_only = models.WithLookup(collection=lookup, with_payload=False, with_vectors=True)
        res = client.query_points_groups(
            collection_name, group_by="doc_id", query=q, group_size=1, limit=3, with_lookup=vectors_only
        )
        for g in res.groups:
            if g.id < 8:
                assert g.lookup.payload is None and g.lookup.vector == [1.0, float(g.id)]
    finally:
        client.delete_collection(lookup)

    # Groups over a custom-scored query (best_score recommend).
    pos, neg = [3, 9], [4]
    res = client.query_points_groups(
        collection_name,
        group_by="doc",
        query=models.RecommendQuery(recommend=models.RecommendInput(positive=pos, negative=neg, strategy="best_score")),
        group_size=3,
        limit=4,
    )
    scores = best_score([fx.sims(ids, p) for p in pos], [fx.sims(ids, x) for x in neg], len(ids))
    expected = groups_oracle(custom_ranking(ids, scores, exclude=pos + neg), fx.model, "doc", 3, 4)
    assert_groups_match(res.groups, expected, what="best_score groups")

    # Legacy endpoints.
    q = fx.query_vec()
    body = {"vector": q, "group_by": "doc", "group_size": 2, "limit": 4, "with_payload": True}
    body["params"] = {"exact": True}
    raw = post(client, collection_name, "/points/search/groups", body)
    got = models.GroupsResult(**raw).groups
    expected = groups_oracle(ranked(distance, ids, fx.stored(ids), q), fx.model, "doc", 2, 4)
    assert_groups_match(got, expected, "legacy search")
    assert all(h.payload == fx.model.points[h.id]["payload"] for g in got for h in g.hits)

    body = {"positive": [5], "negative": [6], "strategy": "sum_scores", "group_by": "doc", "group_size": 3, "limit": 3}
    raw = post(client, collection_name, "/points/recommend/groups", body)
    scores = sum_scores([fx.sims(ids, 5)], [fx.sims(ids, 6)], len(ids))
    expected = groups_oracle(custom_ranking(ids, scores, exclude=[5, 6]), fx.model, "doc", 3, 3)
    assert_groups_match(models.GroupsResult(**raw).groups, expected, "legacy recommend sum_scores")

    with pytest.raises(UnexpectedResponse) as e:
        client.query_points_groups(collection_name, group_by="doc", query=q, group_size=0)
    assert status_of(e.value) in (400, 422)


# ---------------------------------------------------------------------------------------------------
# Discover and context


@pytest.mark.parametrize("distance", ALL_DISTANCES, ids=lambda d: d.value)
def test_discover_and_context_match_oracle(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=300, seed=301)
    ids = fx.ids()
    raw = fx.query_vec()
    cases = [
        (7, [(1, 2)]),
        (raw, [(3, 4), (5, 6), (fx.query_vec(), 8)]),
        (11, [(12, 13), (14, 15), (16, 17), (18, 19)]),
    ]
    for target, pairs in cases:
        res = client.query_points(
            collection_name,
            query=models.DiscoverQuery(
                discover=models.DiscoverInput(
                    target=target, context=[models.ContextPair(positive=p, negative=n) for p, n in pairs]
                )
            ),
            limit=10,
            with_payload=True,
        )
        sim_pairs = [(fx.sims(ids, p), fx.sims(ids, n)) for p, n in pairs]
        expected = discover_score(fx.sims(ids, target), sim_pairs)
        examples = example_ids([target], [x for pair in pairs for x in pair])
        ranking = custom_ranking(ids, expected, exclude=examples)
        what = f"discover {distance.value} target={target if not isinstance(target, list) else 'raw'}"
        assert_hits_match(res.points, ranking[:10], dict(ranking), D.DOT, what=what)
        for h in res.points:
            assert h.payload == fx.model.points[h.id]["payload"]

        res = client.query_points(
            collection_name,
            query=models.ContextQuery(context=[models.ContextPair(positive=p, negative=n) for p, n in pairs]),
            limit=200,
        )
        expected = context_score(sim_pairs, len(ids))
        ranking = custom_ranking(ids, expected, exclude=example_ids([x for pair in pairs for x in pair]))
        # Deep enough to reach past the points with no loss (score 0, ordered by id).
        assert any(s < 0 for _, s in ranking[:200]), "the check must cover non-zero losses"
        assert_hits_match(res.points, ranking[:200], dict(ranking), D.DOT, what=f"context {distance.value}")
        assert all(h.score <= 0.0 for h in res.points)

    # A single pair, not in a list.
    res = client.query_points(
        collection_name, query=models.ContextQuery(context=models.ContextPair(positive=1, negative=2)), limit=5
    )
    ranking = custom_ranking(ids, context_score([(fx.sims(ids, 1), fx.sims(ids, 2))], len(ids)), exclude=[1, 2])
    assert_hits_match(res.points, ranking[:5], dict(ranking), D.DOT, what="context single pair")


def test_legacy_discover_and_batch(client, collection_name):
    distance = D.EUCLID
    fx = Fixture(client, collection_name, distance, n=250, seed=302, payload=lambda rng, i: {"k": i % 4})
    ids = fx.ids()
    body = {"target": 5, "context": [{"positive": 6, "negative": 7}, {"positive": 8, "negative": 9}], "limit": 6}
    got = [models.ScoredPoint(**h) for h in post(client, collection_name, "/points/discover", body)]
    sim_pairs = [(fx.sims(ids, 6), fx.sims(ids, 7)), (fx.sims(ids, 8), fx.sims(ids, 9))]
    ranking = custom_ranking(ids, discover_score(fx.sims(ids, 5), sim_pairs), exclude=[5, 6, 7, 8, 9])
    assert_hits_match(got, ranking[:6], dict(ranking), D.DOT, what="legacy discover")

    flt = models.Filter(must=[models.FieldCondition(key="k", match=models.MatchValue(value=2))])
    fids = fx.ids(flt)
    batch = post(
        client,
        collection_name,
        "/points/discover/batch",
        {
            "searches": [
                {
                    "context": [{"positive": 6, "negative": 7}],
                    "limit": 4,
                    "offset": 1,
                    "filter": flt.model_dump(exclude_none=True),
                },
                {"target": 5, "context": [], "limit": 3},
            ]
        },
    )
    assert len(batch) == 2
    ranking = custom_ranking(fids, context_score([(fx.sims(fids, 6), fx.sims(fids, 7))], len(fids)), exclude=[6, 7])
    got = [models.ScoredPoint(**h) for h in batch[0]]
    assert_hits_match(got, ranking[1:5], dict(ranking), D.DOT, what="context batch")
    # Discovery without context orders by the target alone.
    ranking = custom_ranking(ids, discover_score(fx.sims(ids, 5), []), exclude=[5])
    assert_hits_match([models.ScoredPoint(**h) for h in batch[1]], ranking[:3], dict(ranking), D.DOT, what="no context")


# ---------------------------------------------------------------------------------------------------
# Facets


def facet_payload(rng, i):
    p = {
        "cat": ["red", "green", "blue", "cyan"][int(rng.integers(0, 4))],
        "tags": [["a", "b", "c", "d", "e"][int(t)] for t in rng.integers(0, 5, size=int(rng.integers(0, 4)))],
        "n": int(rng.integers(0, 6)),
        "flag": bool(rng.integers(0, 2)),
        "nested": {"level": ["low", "high"][i % 2]},
    }
    if i % 5 == 0:
        p["mixed"] = "x"
    elif i % 5 == 1:
        p["mixed"] = 3
    elif i % 5 == 2:
        p["mixed"] = 2.5  # a float is not a facet value
    return p


def facet_oracle(model, key, flt=None, limit=10):
    counts = Counter()
    for pid in model.ids(flt):
        vals = values_at(model.points[pid]["payload"], key)
        distinct = set()
        for v in vals:
            if isinstance(v, bool):
                distinct.add((2, v))
            elif isinstance(v, int):
                distinct.add((1, v))
            elif isinstance(v, str):
                distinct.add((0, v))
        counts.update(distinct)
    hits = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(v, c) for (_, v), c in hits[:limit]]


def test_facet_counts_match_counter(client, collection_name):
    fx = Fixture(client, collection_name, D.DOT, n=500, seed=401, payload=facet_payload)
    flt = models.Filter(must=[models.FieldCondition(key="flag", match=models.MatchValue(value=True))])
    for key, f, limit in (
        ("cat", None, 10),
        ("cat", flt, 2),
        ("tags", None, 10),  # an array counts once per distinct value
        ("tags", flt, 3),
        ("n", None, 10),
        ("flag", None, 10),
        ("mixed", None, 10),
        ("nested.level", None, 10),
        ("no_such_key", None, 10),
    ):
        res = client.facet(collection_name, key=key, facet_filter=f, limit=limit, exact=True)
        got = [(h.value, h.count) for h in res.hits]
        expected = facet_oracle(fx.model, key, f, limit)
        assert got == expected, f"facet {key} filter={f is not None} limit={limit}"
        assert all(type(g[0]) is type(e[0]) for g, e in zip(got, expected)), f"value types of {key}"
    # Default limit is 10; not exact gives the same exact counts.
    res = client.facet(collection_name, key="n")
    assert [(h.value, h.count) for h in res.hits] == facet_oracle(fx.model, "n")


# ---------------------------------------------------------------------------------------------------
# Distance matrix


def matrix_oracle(fx, sample_ids, limit):
    """Per sampled id (ascending): its `limit` nearest other sampled points, as (id, score)."""
    rows = []
    stored = fx.stored(sample_ids)
    for i, a in enumerate(sample_ids):
        others = [x for x in sample_ids if x != a]
        others_stored = np.stack([stored[j] for j, x in enumerate(sample_ids) if x != a])
        rows.append((a, ranked(fx.distance, others, others_stored, fx.model.points[a]["vector"])[:limit]))
    return rows


@pytest.mark.parametrize("distance", [D.COSINE, D.EUCLID, D.MANHATTAN], ids=lambda d: d.value)
def test_search_matrix_full_sample_matches_oracle(client, collection_name, distance):
    fx = Fixture(client, collection_name, distance, n=30, seed=501, payload=lambda rng, i: {"k": i % 3})
    ids = fx.ids()
    expected = matrix_oracle(fx, ids, 4)
    pairs = client.search_matrix_pairs(collection_name, sample=100, limit=4).pairs
    flat = [(a, b, s) for a, row in expected for b, s in row]
    assert len(pairs) == len(flat)
    true_score = {(a, b): s for a, row in matrix_oracle(fx, ids, 100) for b, s in row}
    for p, (ea, eb, es) in zip(pairs, flat):
        assert p.a == ea, f"pairs come row by row in id order: {p} vs {(ea, eb, es)}"
        assert abs(p.score - es) <= 1e-4 * max(1.0, abs(es)), f"{p} vs {(ea, eb, es)}"
        assert abs(p.score - true_score[(p.a, p.b)]) <= 1e-4 * max(1.0, abs(es)), f"{p} is not its true score"

    off = client.search_matrix_offsets(collection_name, sample=100, limit=4)
    assert off.ids == ids
    assert len(off.offsets_row) == len(off.offsets_col) == len(off.scores) == len(flat)
    for r, c, s, p in zip(off.offsets_row, off.offsets_col, off.scores, pairs):
        assert (off.ids[r], off.ids[c]) == (p.a, p.b)
        assert abs(s - p.score) <= 1e-6 * max(1.0, abs(s))

    # A filter restricts the sample.
    flt = models.Filter(must=[models.FieldCondition(key="k", match=models.MatchValue(value=1))])
    fids = fx.ids(flt)
    pairs = client.search_matrix_pairs(collection_name, sample=50, limit=2, query_filter=flt).pairs
    expected = [(a, b, s) for a, row in matrix_oracle(fx, fids, 2) for b, s in row]
    assert [(p.a, p.b) for p in pairs] == [(a, b) for a, b, _ in expected]


def test_search_matrix_sampling(client, collection_name):
    fx = Fixture(client, collection_name, D.DOT, n=200, seed=502)
    off = client.search_matrix_offsets(collection_name, sample=12, limit=3)
    assert len(off.ids) == 12 and len(set(off.ids)) == 12
    assert off.ids == sorted(off.ids)
    expected = dict(matrix_oracle(fx, [norm_id(i) for i in off.ids], 3))
    rows: dict = {}
    for r, c, s in zip(off.offsets_row, off.offsets_col, off.scores):
        assert r != c
        rows.setdefault(off.ids[r], []).append((off.ids[c], s))
    assert sorted(rows) == off.ids
    for a, row in rows.items():
        assert [b for b, _ in row] == [b for b, _ in expected[a]], f"neighbours of {a}"
        assert all(abs(s - es) <= 1e-4 * max(1.0, abs(es)) for (_, s), (_, es) in zip(row, expected[a]))
    # Defaults: sample 10, limit 3; two different calls sample at random.
    pairs = client.search_matrix_pairs(collection_name).pairs
    assert len(pairs) == 30 and len({p.a for p in pairs}) == 10
    samples = {tuple(client.search_matrix_offsets(collection_name, sample=5).ids) for _ in range(5)}
    assert len(samples) > 1, "samples are random"


# ---------------------------------------------------------------------------------------------------
# Scroll order_by

EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def order_payload(values):
    def make(rng, i):
        p = {"price": float(values[i]), "rank": int(values[i] * 2), "group": i % 3}
        if i % 10 == 0:
            del p["price"]  # skipped when ordering by price
        if i % 7 == 0:
            p["multi"] = [float(values[i]), float(values[i]) + 1000.0]
        elif i % 7 == 1:
            p["multi"] = float(values[i])
        ts = EPOCH + dt.timedelta(minutes=int(values[i] * 4))
        p["ts"] = ts.isoformat().replace("+00:00", "Z")
        return p

    return make


def order_oracle(model, key, direction="asc", start=None, flt=None):
    entries = []
    for pid in model.ids(flt):
        vals = values_at(model.points[pid]["payload"], key)
        out = set()
        for v in vals:
            if isinstance(v, bool):
                continue
            if isinstance(v, (int, float)):
                out.add(v)
            elif isinstance(v, str):
                t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
                out.add(int((t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)).total_seconds() * 1_000_000))
        for v in out:
            if start is None or (v >= start if direction == "asc" else v <= start):
                entries.append((v, pid))
    entries.sort(reverse=direction == "desc")
    return entries


def test_scroll_order_by_matches_sorted_model(client, collection_name):
    n = 120
    values = np.random.default_rng(601).permutation(n) * 1.5 + 0.25  # unique
    fx = Fixture(client, collection_name, D.DOT, n=n, seed=601, payload=order_payload(values))
    # As in Qdrant, the key needs a range-capable index; without one the request is refused.
    with pytest.raises(UnexpectedResponse) as e:
        client.scroll(collection_name, order_by="price")
    assert status_of(e.value) == 400 and b"No range index for `order_by` key" in e.value.content
    for key, schema in [("price", "float"), ("rank", "integer"), ("multi", "float"), ("ts", "datetime")]:
        client.create_payload_index(collection_name, key, field_schema=schema, wait=True)

    def check(order_by, limit=10, flt=None, expected=None, what=""):
        points, next_offset = client.scroll(
            collection_name, order_by=order_by, limit=limit, scroll_filter=flt, with_payload=True
        )
        assert next_offset is None, "no next page offset with order_by"
        got = [(p.order_value, norm_id(p.id)) for p in points]
        assert got == expected[:limit], f"{what}\n got: {got}\n expected: {expected[:limit]}"
        for p in points:
            assert p.payload == fx.model.points[norm_id(p.id)]["payload"]

    check("price", expected=order_oracle(fx.model, "price"), what="asc by key string")
    check(models.OrderBy(key="price", direction="desc"), limit=25, expected=order_oracle(fx.model, "price", "desc"),
          what="desc")
    start = float(values[17])
    check(models.OrderBy(key="price", direction="asc", start_from=start), limit=15,
          expected=order_oracle(fx.model, "price", "asc", start), what="asc start_from")
    check(models.OrderBy(key="price", direction="desc", start_from=start), limit=15,
          expected=order_oracle(fx.model, "price", "desc", start), what="desc start_from")
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
    check(models.OrderBy(key="rank", direction="desc"), limit=200, flt=flt,
          expected=order_oracle(fx.model, "rank", "desc", flt=flt), what="integers, filter, all")
    check(models.OrderBy(key="multi"), limit=200, expected=order_oracle(fx.model, "multi"),
          what="a point appears once per value")
    check(models.OrderBy(key="ts", direction="desc"), limit=12, expected=order_oracle(fx.model, "ts", "desc"),
          what="date-times")
    ts_start = (EPOCH + dt.timedelta(minutes=100)).isoformat()
    start_micros = int((EPOCH + dt.timedelta(minutes=100)).timestamp() * 1_000_000)
    check(models.OrderBy(key="ts", start_from=ts_start), limit=12,
          expected=order_oracle(fx.model, "ts", "asc", start_micros), what="date-time start_from")

    points, _ = client.scroll(collection_name, order_by="price", limit=5, with_payload=False, with_vectors=True)
    for p in points:
        assert p.payload is None and np.allclose(p.vector, fx.model.points[norm_id(p.id)]["vector"], atol=1e-6)

    with pytest.raises(UnexpectedResponse) as e:
        client.scroll(collection_name, order_by="price", offset=3)
    assert status_of(e.value) == 400
