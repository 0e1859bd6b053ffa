"""The Query API's `order_by`, `formula` (score boosting) and `nearest` with `mmr`, with qdrant-client's
local mode as the oracle.

Every test builds the same random collection in Grape (through the client, REST) and in local mode
(`QdrantClient(":memory:")`, Qdrant's query semantics in plain Python), sends both the same queries and
compares the answers: ids and scores (within 1e-4; points of equal score may come in either order), and
for `order_by` the `order_value` of each point too.

Covered: order by float, integer and date-time keys, ascending and descending, `start_from`, filters,
offsets, inside prefetches, the shorthand key form; random formulas over prefetch scores (`$score`,
`$score[i]`), payload variables with and without defaults, conditions, arithmetic (sum, mult, neg, abs,
div with `by_zero_default`, sqrt, pow, exp, log10, ln), `geo_distance`, `datetime` / `datetime_key` and
the three decays; MMR over cosine, Euclid and sparse vectors with several diversities, candidate limits,
filters, offsets and score thresholds. Errors: no range index for `order_by`, a formula reading a value
that is not a number, a formula without prefetches, MMR diversity out of range.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from harness import wait_collection_green
from test_hybrid_oracle import assert_same

DIM = 6
CITIES = ["paris", "rome", "oslo", "lima"]
EPOCH = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)


def build(client: QdrantClient, name: str, seed: int, n: int = 200, sealed: bool = False) -> random.Random:
    """The collection: a cosine and a Euclid dense vector, a sparse vector, and a payload with unique
    `rating` (float, missing on some points), `rank` (integer) and `ts` (date-time) values.

    `sealed`: a tiny indexing threshold makes Grape seal its segments as points arrive, so filters
    and conditions go through sealed segments and their payload indexes."""
    rng = random.Random(seed)
    client.create_collection(
        name,
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=2) if sealed else None,
        vectors_config={
            "dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE),
            "euc": models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
        },
        sparse_vectors_config={"text": models.SparseVectorParams()},
    )
    ratings = rng.sample(range(10 * n), n)
    ranks = rng.sample(range(-n, 4 * n), n)
    minutes = rng.sample(range(60 * 24 * 90), n)
    points = []
    for i in range(n):
        vectors: dict = {"euc": [rng.gauss(0, 1) for _ in range(DIM)]}
        if rng.random() < 0.9:
            vectors["dense"] = [rng.gauss(0, 1) for _ in range(DIM)]
        if rng.random() < 0.85:
            terms = rng.sample(range(30), rng.randint(1, 6))
            vectors["text"] = models.SparseVector(indices=terms, values=[round(rng.uniform(0.1, 2), 3) for _ in terms])
        payload = {
            "city": rng.choice(CITIES),
            "price": rng.randint(0, 100),
            "rank": ranks[i],
            "ts": (EPOCH + dt.timedelta(minutes=minutes[i])).isoformat().replace("+00:00", "Z"),
            "loc": {"lon": round(rng.uniform(-10, 30), 4), "lat": round(rng.uniform(35, 60), 4)},
            "label": rng.choice(["a", "b"]),
        }
        if rng.random() < 0.8:
            payload["rating"] = ratings[i] / 7.0
        points.append(models.PointStruct(id=i, vector=vectors, payload=payload))
    for start in range(0, n, 64):
        client.upsert(name, points[start : start + 64], wait=True)
    for key, schema in [("rating", "float"), ("rank", "integer"), ("ts", "datetime"), ("city", "keyword")]:
        client.create_payload_index(name, key, field_schema=schema, wait=True)
    if sealed:
        info = wait_collection_green(client, name)
        assert info.segments_count > 1, info
    return rng


@pytest.fixture
def pair(client, collection_name):
    local = QdrantClient(":memory:")
    yield client, local, collection_name
    local.close()


def dense(rng: random.Random) -> list[float]:
    return [rng.gauss(0, 1) for _ in range(DIM)]


def random_filter(rng: random.Random) -> models.Filter | None:
    roll = rng.random()
    if roll < 0.5:
        return None
    if roll < 0.75:
        return models.Filter(must=[models.FieldCondition(key="city", match=models.MatchAny(any=rng.sample(CITIES, 2)))])
    return models.Filter(must=[models.FieldCondition(key="price", range=models.Range(gte=rng.randint(0, 60)))])


# ---- order_by ----


def assert_same_order(got, want, what: str) -> None:
    g = [(p.id, p.order_value, p.score) for p in got]
    w = [(p.id, p.order_value, p.score) for p in want]
    assert [x[0] for x in g] == [x[0] for x in w], f"{what}\n got: {g}\nwant: {w}"
    assert [x[2] for x in g] == [x[2] for x in w], f"{what}\n got: {g}\nwant: {w}"
    # Floats may differ in the last bit (JSON number parsing); integers and date-times are exact.
    for (_, gv, _), (_, wv, _) in zip(g, w):
        assert type(gv) is type(wv) and abs(gv - wv) <= 1e-12 * max(1.0, abs(wv)), f"{what}\n got: {g}\nwant: {w}"


@pytest.mark.parametrize("sealed", [False, True])
def test_order_by_matches_local_mode(pair, sealed):
    grape, local, name = pair
    rng = build(grape, name, 11, sealed=sealed)
    build(local, name, 11)
    starts = {"rating": lambda: rng.uniform(0, 1400), "rank": lambda: rng.randint(-200, 800),
              "ts": lambda: (EPOCH + dt.timedelta(days=rng.uniform(0, 90))).isoformat()}
    for trial in range(40):
        key = rng.choice(["rating", "rank", "ts"])
        direction = rng.choice([None, models.Direction.ASC, models.Direction.DESC])
        start = starts[key]() if rng.random() < 0.4 else None
        order = key if direction is None and start is None and rng.random() < 0.5 else models.OrderBy(
            key=key, direction=direction, start_from=start
        )
        kwargs = dict(
            query=models.OrderByQuery(order_by=order),
            query_filter=random_filter(rng),
            limit=rng.choice([1, 5, 10, 30]),
            offset=rng.choice([0, 0, 3]),
        )
        if rng.random() < 0.3:
            # Ordering the points of a prefetch.
            kwargs["prefetch"] = models.Prefetch(query=dense(rng), using="dense", limit=rng.choice([5, 40]))
        got = grape.query_points(name, with_payload=False, **kwargs).points
        want = local.query_points(name, with_payload=False, **kwargs).points
        assert_same_order(got, want, f"trial {trial}: {kwargs}")
    # Payloads come with the ordered points when asked for.
    got = grape.query_points(name, query=models.OrderByQuery(order_by="rank"), limit=3, with_payload=True).points
    want = local.query_points(name, query=models.OrderByQuery(order_by="rank"), limit=3, with_payload=True).points
    assert [p.id for p in got] == [p.id for p in want]
    for g, w in zip(got, want):
        assert {k: v for k, v in g.payload.items() if k != "rating"} == {k: v for k, v in w.payload.items() if k != "rating"}


def test_order_by_needs_a_range_index(pair):
    grape, _, name = pair
    build(grape, name, 12, n=20)
    for key in ["price", "city"]:  # no index; a keyword index cannot order
        with pytest.raises(UnexpectedResponse) as e:
            grape.query_points(name, query=models.OrderByQuery(order_by=key))
        assert e.value.status_code == 400, e.value.content
        assert b"No range index for `order_by` key" in e.value.content


# ---- formula ----


def leaf(rng: random.Random):
    roll = rng.randrange(9)
    if roll == 0:
        return round(rng.uniform(-3, 3), 3)
    if roll == 1:
        return "$score"
    if roll == 2:
        return "$score[1]"
    if roll == 3:
        return "price"
    if roll == 4:
        return "rating"  # missing on some points: the formula's defaults give it
    if roll == 5:
        return models.FieldCondition(key="city", match=models.MatchValue(value=rng.choice(CITIES)))
    if roll == 6:
        return models.HasVectorCondition(has_vector="text")
    if roll == 7:
        # Kilometres from a fixed origin.
        return models.MultExpression(mult=[0.001, models.GeoDistance(
            geo_distance=models.GeoDistanceParams(origin=models.GeoPoint(lon=10.0, lat=50.0), to="loc"))])
    # Days since the start of the data.
    return models.DivExpression(div=models.DivParams(
        left=models.SumExpression(sum=[models.DatetimeKeyExpression(datetime_key="ts"),
                                       models.NegExpression(neg=models.DatetimeExpression(datetime=EPOCH.isoformat()))]),
        right=86400.0,
    ))


def expression(rng: random.Random, depth: int):
    if depth == 0 or rng.random() < 0.25:
        return leaf(rng)
    sub = lambda: expression(rng, depth - 1)  # noqa: E731
    roll = rng.randrange(13)
    if roll == 0:
        return models.SumExpression(sum=[sub() for _ in range(rng.randint(2, 3))])
    if roll == 1:
        return models.MultExpression(mult=[sub() for _ in range(rng.randint(2, 3))])
    if roll == 2:
        return models.NegExpression(neg=sub())
    if roll == 3:
        return models.AbsExpression(abs=sub())
    if roll == 4:
        return models.DivExpression(div=models.DivParams(left=sub(), right=sub(), by_zero_default=rng.choice([0.0, 5.0])))
    if roll == 5:
        return models.SqrtExpression(sqrt=models.AbsExpression(abs=sub()))
    if roll == 6:
        return models.PowExpression(pow=models.PowParams(
            base=models.SumExpression(sum=[1.0, models.AbsExpression(abs=leaf(rng))]), exponent=rng.choice([0.5, 2.0, -1.0])))
    if roll == 7:
        return models.ExpExpression(exp=models.MultExpression(mult=[0.01, leaf(rng)]))
    if roll == 8:
        return models.Log10Expression(log10=models.SumExpression(sum=[1.0, models.AbsExpression(abs=sub())]))
    if roll == 9:
        return models.LnExpression(ln=models.SumExpression(sum=[1.0, models.AbsExpression(abs=sub())]))
    params = models.DecayParamsExpression(
        x=leaf(rng),
        target=rng.choice([None, round(rng.uniform(-2, 50), 2), leaf(rng)]),
        scale=rng.choice([None, 0.5, 10.0, 40.0]),
        midpoint=rng.choice([None, 0.1, 0.5, 0.9]),
    )
    if roll == 10:
        return models.LinDecayExpression(lin_decay=params)
    if roll == 11:
        return models.ExpDecayExpression(exp_decay=params)
    return models.GaussDecayExpression(gauss_decay=params)


@pytest.mark.parametrize("sealed", [False, True])
def test_formula_matches_local_mode(pair, sealed):
    grape, local, name = pair
    rng = build(grape, name, 21, sealed=sealed)
    build(local, name, 21)
    compared = 0
    for trial in range(80):
        formula = models.SumExpression(sum=["$score", expression(rng, 3)])
        defaults = {"rating": rng.choice([0.0, 2.5])}
        if rng.random() < 0.5:
            defaults["$score[1]"] = rng.choice([0.0, -1.0, 0.3])
        prefetch = [
            models.Prefetch(query=dense(rng), using="dense", limit=rng.choice([10, 40])),
            models.Prefetch(query=dense(rng), using="euc", limit=rng.choice([10, 40]), filter=random_filter(rng)),
        ]
        kwargs = dict(
            prefetch=prefetch[: rng.choice([1, 2])],
            query=models.FormulaQuery(formula=formula, defaults=defaults),
            query_filter=random_filter(rng),
            limit=rng.choice([5, 10, 20]),
            offset=rng.choice([0, 0, 2]),
        )
        try:
            want = local.query_points(name, with_payload=False, **kwargs).points
        except (ValueError, OverflowError) as e:
            # An expression local mode refuses (e.g. a non-finite value): Grape refuses it too.
            with pytest.raises(UnexpectedResponse) as ge:
                grape.query_points(name, **kwargs)
            assert ge.value.status_code == 400, (e, ge.value.content)
            continue
        got = grape.query_points(name, with_payload=False, **kwargs).points
        assert_same(got, want, f"trial {trial}: {kwargs}")
        compared += 1
    assert compared >= 60


def test_formula_with_nested_prefetch_and_threshold(pair):
    grape, local, name = pair
    rng = build(grape, name, 22)
    build(local, name, 22)
    inner = models.Prefetch(
        prefetch=[models.Prefetch(query=dense(rng), using="dense", limit=50),
                  models.Prefetch(query=models.SparseVector(indices=[1, 2, 3], values=[1.0, 0.5, 0.2]), using="text", limit=50)],
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=30,
    )
    formula = models.FormulaQuery(
        formula=models.SumExpression(sum=[
            models.MultExpression(mult=["$score", 10.0]),
            models.ExpDecayExpression(exp_decay=models.DecayParamsExpression(
                x=models.DatetimeKeyExpression(datetime_key="ts"),
                target=models.DatetimeExpression(datetime=(EPOCH + dt.timedelta(days=45)).isoformat()),
                scale=86400.0 * 10)),
            models.MultExpression(mult=[0.5, models.FieldCondition(key="label", match=models.MatchValue(value="a"))]),
        ]),
    )
    for threshold in [None, 0.5]:
        kwargs = dict(prefetch=inner, query=formula, limit=15, score_threshold=threshold)
        got = grape.query_points(name, with_payload=False, **kwargs).points
        want = local.query_points(name, with_payload=False, **kwargs).points
        assert_same(got, want, f"{kwargs}")


def test_formula_errors(pair):
    grape, _, name = pair
    build(grape, name, 23, n=30)
    pf = models.Prefetch(query=[1.0] * DIM, using="dense", limit=10)
    bad = [
        # `label` is a string: not a number, and no default
        dict(prefetch=pf, query=models.FormulaQuery(formula=models.SumExpression(sum=["$score", "label"]))),
        # a missing key without a default
        dict(prefetch=pf, query=models.FormulaQuery(formula="no_such_key")),
        # division by zero without by_zero_default
        dict(prefetch=pf, query=models.FormulaQuery(formula=models.DivExpression(div=models.DivParams(left=1.0, right=0.0)))),
        # a midpoint outside (0, 1)
        dict(prefetch=pf, query=models.FormulaQuery(formula=models.LinDecayExpression(
            lin_decay=models.DecayParamsExpression(x="price", midpoint=1.5)))),
        # a formula has nothing to re-score without prefetches
        dict(query=models.FormulaQuery(formula=1.0)),
    ]
    for kwargs in bad:
        with pytest.raises(UnexpectedResponse) as e:
            grape.query_points(name, **kwargs)
        assert e.value.status_code == 400, (kwargs, e.value.content)
    with pytest.raises(UnexpectedResponse) as e:
        grape.query_points(name, **bad[0])
    assert b"Expected number value for label in the payload and/or in the formula defaults" in e.value.content


# ---- MMR ----


@pytest.mark.parametrize("sealed", [False, True])
def test_mmr_matches_local_mode(pair, sealed):
    grape, local, name = pair
    rng = build(grape, name, 31, sealed=sealed)
    build(local, name, 31)
    for trial in range(60):
        using = rng.choice(["dense", "euc", "text"])
        if using == "text":
            terms = rng.sample(range(30), 4)
            vector = models.SparseVector(indices=terms, values=[rng.uniform(0.2, 2) for _ in terms])
        else:
            vector = dense(rng) if rng.random() < 0.85 else rng.randrange(200)
        mmr = models.Mmr(diversity=rng.choice([None, 0.0, 0.3, 0.7, 1.0]), candidates_limit=rng.choice([None, 20, 50]))
        kwargs = dict(
            query=models.NearestQuery(nearest=vector, mmr=mmr),
            using=using,
            query_filter=random_filter(rng),
            limit=rng.choice([3, 10]),
            offset=rng.choice([0, 0, 2]),
        )
        if using == "dense" and rng.random() < 0.2:
            kwargs["score_threshold"] = 0.2
        try:
            want = local.query_points(name, with_payload=False, **kwargs).points
        except Exception as e:  # noqa: BLE001 - e.g. an example point without this vector
            with pytest.raises(UnexpectedResponse):
                grape.query_points(name, **kwargs)
            print("both refused:", e)
            continue
        got = grape.query_points(name, with_payload=False, **kwargs).points
        if using != "text":
            # Sparse scores tie often, and the nearest search may list tied candidates in another
            # order than local mode; dense scores do not tie, so the order must be the same.
            assert [p.id for p in got] == [p.id for p in want], f"trial {trial}: {kwargs}\n{got}\n{want}"
        assert_same(got, want, f"trial {trial}: {kwargs}")
    # MMR as the query over prefetched points.
    kwargs = dict(
        prefetch=models.Prefetch(query=dense(rng), using="euc", limit=60),
        query=models.NearestQuery(nearest=dense(rng), mmr=models.Mmr(diversity=0.6, candidates_limit=30)),
        using="dense",
        limit=8,
    )
    got = grape.query_points(name, with_payload=False, **kwargs).points
    want = local.query_points(name, with_payload=False, **kwargs).points
    assert [p.id for p in got] == [p.id for p in want]
    assert_same(got, want, "mmr over a prefetch")


def test_mmr_bad_input(pair):
    grape, _, name = pair
    build(grape, name, 32, n=20)
    for mmr in [models.Mmr(diversity=1.5), models.Mmr(diversity=-0.1)]:
        with pytest.raises(UnexpectedResponse) as e:
            grape.query_points(name, query=models.NearestQuery(nearest=[1.0] * DIM, mmr=mmr), using="dense")
        assert e.value.status_code == 400, e.value.content


# ---- the same queries over gRPC ----


def test_grpc_queries_match_local_mode(server, client, collection_name):
    """order_by, formula and MMR through the client's gRPC transport (Query and Scroll RPCs)."""
    grpc = QdrantClient(host="127.0.0.1", port=server.http_port, grpc_port=server.grpc_port, prefer_grpc=True)
    local = QdrantClient(":memory:")
    name = collection_name
    try:
        rng = build(client, name, 41)
        build(local, name, 41)
        start = (EPOCH + dt.timedelta(days=30)).isoformat()
        queries = [
            dict(query=models.OrderByQuery(order_by="rank"), limit=12),
            dict(query=models.OrderByQuery(order_by=models.OrderBy(key="ts", direction="desc", start_from=start)),
                 limit=9, query_filter=models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="rome"))])),
            dict(query=models.OrderByQuery(order_by=models.OrderBy(key="rating", start_from=100.5)), limit=7, offset=2),
        ]
        for kwargs in queries:
            got = grpc.query_points(name, with_payload=False, **kwargs).points
            want = local.query_points(name, with_payload=False, **kwargs).points
            assert_same_order(got, want, f"grpc {kwargs}")
        for trial in range(25):
            kwargs = dict(
                prefetch=[models.Prefetch(query=dense(rng), using="dense", limit=30),
                          models.Prefetch(query=dense(rng), using="euc", limit=30)],
                query=models.FormulaQuery(formula=models.SumExpression(sum=["$score", expression(rng, 3)]),
                                          defaults={"rating": 1.5, "$score[1]": 0.25}),
                limit=10,
            )
            try:
                want = local.query_points(name, with_payload=False, **kwargs).points
            except (ValueError, OverflowError):
                with pytest.raises(Exception):
                    grpc.query_points(name, **kwargs)
                continue
            got = grpc.query_points(name, with_payload=False, **kwargs).points
            assert_same(got, want, f"grpc trial {trial}: {kwargs}")
        for diversity in [0.0, 0.5, 1.0]:
            kwargs = dict(query=models.NearestQuery(nearest=dense(rng), mmr=models.Mmr(diversity=diversity, candidates_limit=40)),
                          using="euc", limit=10)
            got = grpc.query_points(name, with_payload=False, **kwargs).points
            want = local.query_points(name, with_payload=False, **kwargs).points
            assert [p.id for p in got] == [p.id for p in want]
            assert_same(got, want, f"grpc mmr {diversity}")
        # Scroll with order_by over gRPC.
        order = models.OrderBy(key="rating", direction="desc")
        got, next_offset = grpc.scroll(name, order_by=order, limit=15, with_payload=False)
        want, _ = local.scroll(name, order_by=order, limit=15, with_payload=False)
        assert next_offset is None
        assert [p.id for p in got] == [p.id for p in want]
        assert all(abs(g.order_value - w.order_value) <= 1e-12 * abs(w.order_value) for g, w in zip(got, want))
    finally:
        grpc.close()
        local.close()
