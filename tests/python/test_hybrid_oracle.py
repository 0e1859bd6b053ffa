"""Sparse vectors and the Query API's prefetch / fusion, with qdrant-client's local mode as the oracle.

The official client's `QdrantClient(":memory:")` implements Qdrant's query semantics in plain Python.
Every test builds the same random collection in Grape (through the client, REST) and in local mode,
sends both the same queries and compares the answers: same length, scores equal within 1e-4 position
by position, and the same ids (points of equal score may come in a different order, and a tie at the
end of a list may be cut differently).

Covered: sparse nearest search (plain and with the `idf` modifier, filtered, offsets, score thresholds,
by point id), points without some of their vectors, prefetches (dense, sparse, nested, each with its own
filter and the parent's filter inherited), fusion (RRF, DBSF, RRF with `k` and weights), re-scoring the
prefetched points with a dense or sparse query, and IDF statistics after deletes.
"""

from __future__ import annotations

import random

import pytest
from qdrant_client import QdrantClient, models

from harness import wait_collection_green

DIM = 8
TOL = 1e-4
CITIES = ["paris", "rome", "oslo", "lima"]


def sparse(rng: random.Random, vocab: int = 40, max_terms: int = 7) -> models.SparseVector:
    terms = rng.sample(range(vocab), rng.randint(1, max_terms))
    return models.SparseVector(indices=terms, values=[round(rng.uniform(0.1, 3.0), 3) for _ in terms])


def dense(rng: random.Random) -> list[float]:
    return [rng.gauss(0.0, 1.0) for _ in range(DIM)]


def build(client: QdrantClient, name: str, seed: int, n: int = 240, sealed: bool = False) -> random.Random:
    """Creates the collection and upserts `n` random points; returns the generator for the queries.

    `sealed`: a tiny indexing threshold makes Grape seal its appendable segment every few kilobytes, so
    the points end up in several sealed, indexed segments (HNSW graphs, sparse inverted indexes)."""
    rng = random.Random(seed)
    client.create_collection(
        name,
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=2) if sealed else None,
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={
            "text": models.SparseVectorParams(),
            "bm": models.SparseVectorParams(modifier=models.Modifier.IDF),
        },
    )
    points = []
    for i in range(n):
        vectors: dict = {}
        if rng.random() < 0.9:
            vectors["dense"] = dense(rng)
        if rng.random() < 0.85:
            vectors["text"] = sparse(rng)
        if rng.random() < 0.85:
            vectors["bm"] = sparse(rng)
        payload = {"city": rng.choice(CITIES), "price": rng.randint(0, 100)}
        points.append(models.PointStruct(id=i, vector=vectors, payload=payload))
    for start in range(0, n, 64):
        client.upsert(name, points[start : start + 64], wait=True)
    if sealed:
        info = wait_collection_green(client, name)
        assert info.status == models.CollectionStatus.GREEN
        assert info.segments_count > 1, info
    return rng


def random_filter(rng: random.Random) -> models.Filter | None:
    roll = rng.random()
    if roll < 0.4:
        return None
    if roll < 0.7:
        return models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value=rng.choice(CITIES)))])
    return models.Filter(
        must=[models.FieldCondition(key="price", range=models.Range(gte=rng.randint(0, 50)))],
        should=[models.FieldCondition(key="city", match=models.MatchAny(any=rng.sample(CITIES, 2)))],
    )


def assert_same(got: list[models.ScoredPoint], want: list[models.ScoredPoint], what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} hits, oracle {len(want)}\n{got}\n{want}"
    want_scores = {p.id: p.score for p in want}
    edges = [want[0].score, want[-1].score] if want else []
    for i, (g, w) in enumerate(zip(got, want)):
        assert abs(g.score - w.score) <= TOL * max(1.0, abs(w.score)), f"{what}: score {i}: {g} vs {w}"
        if g.id != w.id:
            # Equal scores may come in either order; an id missing from the oracle must sit on a tie
            # with the oracle's first or last hit (the offset or the limit cut a tie elsewhere).
            if g.id in want_scores:
                assert abs(want_scores[g.id] - g.score) <= TOL, f"{what}: position {i}: {g} vs {w}"
            else:
                assert any(abs(g.score - e) <= TOL for e in edges), f"{what}: {g.id} not in the oracle's answer\n{got}\n{want}"


def both(grape: QdrantClient, local: QdrantClient, name: str, what: str, **kwargs) -> None:
    got = grape.query_points(name, with_payload=False, **kwargs).points
    want = local.query_points(name, with_payload=False, **kwargs).points
    assert_same(got, want, f"{what} {kwargs}")


@pytest.fixture
def pair(client, collection_name):
    local = QdrantClient(":memory:")
    yield client, local, collection_name
    local.close()


@pytest.mark.parametrize("seed,sealed", [(1, False), (2, False), (3, True)])
def test_sparse_nearest_matches_local_mode(pair, seed, sealed):
    grape, local, name = pair
    rng = build(grape, name, seed, sealed=sealed)
    build(local, name, seed)
    for _ in range(25):
        using = rng.choice(["text", "bm"])
        q = sparse(rng)
        kwargs = dict(query=q, using=using, limit=rng.randint(1, 15), query_filter=random_filter(rng))
        if rng.random() < 0.3:
            kwargs["offset"] = rng.randint(1, 5)
        if rng.random() < 0.2:
            kwargs["score_threshold"] = rng.uniform(0.5, 4.0)
        both(grape, local, name, "sparse nearest", **kwargs)
    # By point id: the stored sparse vector of the point is the query; the point itself is excluded.
    having = [p.id for p in local.retrieve(name, ids=list(range(240)), with_vectors=["text"]) if p.vector]
    for pid in rng.sample(having, 5):
        both(grape, local, name, "sparse by id", query=pid, using="text", limit=5)


def test_sparse_vectors_are_stored_and_returned(pair):
    grape, local, name = pair
    build(grape, name, 7, n=30)
    build(local, name, 7, n=30)
    got = grape.retrieve(name, ids=list(range(30)), with_vectors=True)
    want = {p.id: p for p in local.retrieve(name, ids=list(range(30)), with_vectors=True)}
    assert len(got) == 30
    for p in got:
        w = want[p.id].vector
        assert set(p.vector) == set(w), p.id
        for key in ("text", "bm"):
            if key in w:
                # Stored sorted by index, as Qdrant stores them.
                assert p.vector[key].indices == sorted(w[key].indices)
                by_index = dict(zip(w[key].indices, w[key].values))
                assert p.vector[key].values == pytest.approx([by_index[i] for i in p.vector[key].indices])


@pytest.mark.parametrize("seed,sealed", [(11, False), (12, True)])
def test_fusion_and_prefetch_match_local_mode(pair, seed, sealed):
    grape, local, name = pair
    rng = build(grape, name, seed, sealed=sealed)
    build(local, name, seed)
    fusions = [
        models.FusionQuery(fusion=models.Fusion.RRF),
        models.FusionQuery(fusion=models.Fusion.DBSF),
        models.RrfQuery(rrf=models.Rrf(k=60)),
        models.RrfQuery(rrf=models.Rrf(k=5, weights=[2.0, 0.5])),
    ]
    for round_ in range(24):
        prefetch = [
            models.Prefetch(query=dense(rng), using="dense", limit=rng.randint(5, 30), filter=random_filter(rng)),
            models.Prefetch(query=sparse(rng), using=rng.choice(["text", "bm"]), limit=rng.randint(5, 30)),
        ]
        top_filter = random_filter(rng) if rng.random() < 0.4 else None
        kind = round_ % 6
        if kind < 4:
            query = fusions[kind]
        elif kind == 4:
            query = dense(rng)  # re-score the prefetched points with a dense query
        else:
            query = sparse(rng)  # ... or with a sparse one
        kwargs = dict(prefetch=prefetch, query=query, limit=rng.randint(1, 12), query_filter=top_filter)
        if kind == 4:
            kwargs["using"] = "dense"
        if kind == 5:
            kwargs["using"] = "text"
        if rng.random() < 0.25:
            kwargs["offset"] = rng.randint(1, 4)
        both(grape, local, name, f"round {round_}", **kwargs)


def test_nested_prefetch_matches_local_mode(pair):
    grape, local, name = pair
    rng = build(grape, name, 21)
    build(local, name, 21)
    for _ in range(8):
        inner = models.Prefetch(
            prefetch=[
                models.Prefetch(query=dense(rng), using="dense", limit=40),
                models.Prefetch(query=sparse(rng), using="bm", limit=40, filter=random_filter(rng)),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=25,
        )
        other = models.Prefetch(query=sparse(rng), using="text", limit=20)
        both(
            grape,
            local,
            name,
            "nested",
            prefetch=[inner, other],
            query=models.FusionQuery(fusion=models.Fusion.DBSF),
            limit=10,
            query_filter=random_filter(rng),
        )
        both(grape, local, name, "nested re-scored", prefetch=inner, query=dense(rng), using="dense", limit=7)


def test_idf_follows_deletes(pair):
    grape, local, name = pair
    rng = build(grape, name, 31, sealed=True)
    build(local, name, 31)
    doomed = rng.sample(range(240), 60)
    for c in (grape, local):
        c.delete(name, points_selector=models.PointIdsList(points=doomed), wait=True)
    for _ in range(10):
        both(grape, local, name, "idf after deletes", query=sparse(rng), using="bm", limit=10)


def test_hybrid_bad_input(pair):
    from qdrant_client.http.exceptions import UnexpectedResponse

    grape, _, name = pair
    build(grape, name, 41, n=20)
    bad = [
        # indices and values of different lengths
        dict(query=models.SparseVector(indices=[1, 2], values=[1.0]), using="text"),
        # an index given twice
        dict(query=models.SparseVector(indices=[3, 3], values=[1.0, 2.0]), using="text"),
        # a sparse query against a dense vector, and a dense query against a sparse one
        dict(query=models.SparseVector(indices=[1], values=[1.0]), using="dense"),
        dict(query=dense(random.Random(0)), using="text"),
        # an unknown vector name
        dict(query=models.SparseVector(indices=[1], values=[1.0]), using="nope"),
        # fusion without prefetches
        dict(query=models.FusionQuery(fusion=models.Fusion.RRF)),
        # prefetches without a query to combine them
        dict(prefetch=[models.Prefetch(query=[0.0] * DIM, using="dense")]),
        # RRF weights that do not match the prefetches
        dict(
            prefetch=[models.Prefetch(query=[1.0] * DIM, using="dense")],
            query=models.RrfQuery(rrf=models.Rrf(weights=[1.0, 2.0])),
        ),
    ]
    for kwargs in bad:
        with pytest.raises(UnexpectedResponse) as e:
            grape.query_points(name, **kwargs)
        assert e.value.status_code == 400, (kwargs, e.value.content)
    with pytest.raises(UnexpectedResponse) as e:
        grape.upsert(
            name,
            [models.PointStruct(id=1, vector={"text": models.SparseVector(indices=[1, 1], values=[1.0, 1.0])})],
        )
    assert e.value.status_code == 400
    assert b"more than once" in e.value.content


def build_multi(client: QdrantClient, name: str, seed: int, n: int = 200, sealed: bool = False) -> random.Random:
    """A collection with a dense vector and two multivectors (cosine and Euclid, MaxSim)."""
    rng = random.Random(seed)
    client.create_collection(
        name,
        vectors_config={
            "dense": models.VectorParams(size=DIM, distance=models.Distance.DOT),
            "mc": models.VectorParams(
                size=4,
                distance=models.Distance.COSINE,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            ),
            "me": models.VectorParams(
                size=3,
                distance=models.Distance.EUCLID,
                multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
            ),
        },
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=2) if sealed else None,
    )
    points = []
    for i in range(n):
        vectors: dict = {"dense": dense(rng)}
        if rng.random() < 0.9:
            vectors["mc"] = [[rng.gauss(0, 1) for _ in range(4)] for _ in range(rng.randint(1, 5))]
        if rng.random() < 0.9:
            vectors["me"] = [[rng.gauss(0, 1) for _ in range(3)] for _ in range(rng.randint(1, 4))]
        points.append(models.PointStruct(id=i, vector=vectors, payload={"city": rng.choice(CITIES)}))
    for start in range(0, n, 50):
        client.upsert(name, points[start : start + 50], wait=True)
    if sealed:
        assert wait_collection_green(client, name).status == models.CollectionStatus.GREEN
    return rng


@pytest.mark.parametrize("sealed", [False, True])
def test_multivectors_match_local_mode(pair, sealed):
    grape, local, name = pair
    rng = build_multi(grape, name, 51, sealed=sealed)
    build_multi(local, name, 51)
    for _ in range(12):
        mq = [[rng.gauss(0, 1) for _ in range(4)] for _ in range(rng.randint(1, 3))]
        eq = [[rng.gauss(0, 1) for _ in range(3)] for _ in range(rng.randint(1, 3))]
        both(grape, local, name, "maxsim cosine", query=mq, using="mc", limit=7, query_filter=random_filter(rng))
        both(grape, local, name, "maxsim euclid", query=eq, using="me", limit=5)
        # The usual late-interaction pattern: dense candidates re-ranked by the multivector.
        both(
            grape,
            local,
            name,
            "rerank",
            prefetch=models.Prefetch(query=dense(rng), using="dense", limit=30),
            query=mq,
            using="mc",
            limit=6,
        )
    got = {p.id: p.vector for p in grape.retrieve(name, ids=list(range(20)), with_vectors=["me"])}
    want = {p.id: p.vector for p in local.retrieve(name, ids=list(range(20)), with_vectors=["me"])}
    for pid, w in want.items():
        if w and "me" in w:
            assert len(got[pid]["me"]) == len(w["me"]), pid
            for g_row, w_row in zip(got[pid]["me"], w["me"]):
                assert g_row == pytest.approx(w_row, rel=1e-6), pid
        else:
            assert not got[pid], pid


@pytest.mark.parametrize("strategy", list(models.RecommendStrategy))
def test_sparse_and_multi_examples_match_local_mode(pair, strategy):
    """Recommend (every strategy), discover and context over sparse vectors (with and without IDF) and
    multivectors, examples given by value and by point id."""
    grape, local, name = pair
    rng = build(grape, name, 61)
    build(local, name, 61)
    having = {
        key: [p.id for p in local.retrieve(name, ids=list(range(240)), with_vectors=[key]) if p.vector]
        for key in ("text", "bm")
    }
    for _ in range(6):
        using = rng.choice(["text", "bm"])
        ids = rng.sample(having[using], 3)
        positive = [ids[0], sparse(rng)]
        negative = [ids[1]] if rng.random() < 0.7 else []
        both(
            grape,
            local,
            name,
            f"sparse recommend {strategy}",
            query=models.RecommendQuery(
                recommend=models.RecommendInput(positive=positive, negative=negative, strategy=strategy)
            ),
            using=using,
            limit=8,
        )
        pairs = [models.ContextPair(positive=sparse(rng), negative=ids[2])]
        both(
            grape,
            local,
            name,
            "sparse discover",
            query=models.DiscoverQuery(discover=models.DiscoverInput(target=sparse(rng), context=pairs)),
            using=using,
            limit=6,
        )
        both(grape, local, name, "sparse context", query=models.ContextQuery(context=pairs), using=using, limit=6)


@pytest.mark.parametrize("strategy", list(models.RecommendStrategy))
def test_multivector_examples_match_local_mode(pair, strategy):
    grape, local, name = pair
    rng = build_multi(grape, name, 71)
    build_multi(local, name, 71)
    having = [p.id for p in local.retrieve(name, ids=list(range(200)), with_vectors=["mc"]) if p.vector]
    for _ in range(5):
        ids = rng.sample(having, 2)
        mq = [[rng.gauss(0, 1) for _ in range(4)] for _ in range(2)]
        both(
            grape,
            local,
            name,
            f"multi recommend {strategy}",
            query=models.RecommendQuery(
                recommend=models.RecommendInput(positive=[ids[0], mq], negative=[ids[1]], strategy=strategy)
            ),
            using="mc",
            limit=6,
        )
    pairs = [models.ContextPair(positive=having[0], negative=having[1])]
    both(grape, local, name, "multi context", query=models.ContextQuery(context=pairs), using="mc", limit=6)


def test_queryless_and_sample_match_local_mode(pair):
    """Without `query` points come in id order, and sampled points, each with score 1, as current Qdrant answers."""
    grape, local, name = pair
    build(grape, name, 81, n=60)
    build(local, name, 81, n=60)
    f = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="oslo"))])
    for kwargs in (dict(limit=7), dict(limit=5, offset=3, query_filter=f)):
        got = grape.query_points(name, with_payload=False, **kwargs).points
        want = local.query_points(name, with_payload=False, **kwargs).points
        assert [(p.id, p.score) for p in got] == [(p.id, p.score) for p in want]
    got = grape.query_points(name, query=models.SampleQuery(sample=models.Sample.RANDOM), limit=9, query_filter=f).points
    oslo = {p.id for p in local.scroll(name, scroll_filter=f, limit=100)[0]}
    assert len(got) == min(9, len(oslo)) and {p.id for p in got} <= oslo
    assert all(p.score == 1.0 for p in got)
