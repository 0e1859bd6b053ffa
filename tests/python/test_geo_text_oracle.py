"""Geo and full-text filters through the official client, with qdrant-client's local mode as the oracle.

The same random points (locations, arrays of locations, texts with case and punctuation, several strings
per point) go to Grape and to `QdrantClient(":memory:")`; random geo_radius / geo_bounding_box /
geo_polygon (with holes) and match text / text_any / phrase filters must select the same ids through
scroll and count: before any index, sealed, and after geo and text payload indexes are declared (local
mode builds no indexes; a text index with the default `word` tokenizer and lowercasing tokenizes as
Qdrant does without one, so both must still agree). The same indexes declared over gRPC, their
parameters reported back, bad declarations, and Grape's `filter_expr` REST field are checked too.
"""

from __future__ import annotations

import random

import httpx
import pytest
from qdrant_client import QdrantClient, models

from harness import free_port, make_client, wait_collection_green

WORDS = ["Red", "fox", "quick", "brown", "jumps", "over", "lazy", "dog", "cat", "Paris", "rome", "café"]


def sentence(rng: random.Random) -> str:
    parts = [rng.choice(WORDS) for _ in range(rng.randint(0, 6))]
    out = ""
    for i, w in enumerate(parts):
        out += ("" if i == 0 else rng.choice([" ", ", ", "-", "! "])) + w
    return out


def location(rng: random.Random) -> dict:
    if rng.random() < 0.1:
        return {"lon": rng.uniform(178.0, 180.0), "lat": rng.uniform(-5.0, 5.0)}
    return {"lon": rng.uniform(-20.0, 20.0), "lat": rng.uniform(30.0, 60.0)}


def payload(rng: random.Random) -> dict:
    p: dict = {"n": rng.randint(0, 4)}
    r = rng.random()
    if r < 0.15:
        p["loc"] = [location(rng), location(rng)]
    elif r < 0.95:
        p["loc"] = location(rng)
    if rng.random() < 0.9:
        p["title"] = sentence(rng)
    p["tags"] = [sentence(rng) for _ in range(rng.randint(0, 2))]
    return p


def geo_condition(rng: random.Random) -> models.FieldCondition:
    lon, lat = rng.uniform(-25.0, 25.0), rng.uniform(25.0, 65.0)
    kind = rng.randrange(4)
    if kind == 0:
        return models.FieldCondition(
            key="loc",
            geo_radius=models.GeoRadius(center=models.GeoPoint(lon=lon, lat=lat), radius=rng.uniform(1e4, 2e6)),
        )
    if kind == 1:
        return models.FieldCondition(
            key="loc",
            geo_radius=models.GeoRadius(center=models.GeoPoint(lon=-179.5, lat=0.0), radius=300_000.0),
        )
    if kind == 2:
        return models.FieldCondition(
            key="loc",
            geo_bounding_box=models.GeoBoundingBox(
                top_left=models.GeoPoint(lon=lon, lat=lat),
                bottom_right=models.GeoPoint(lon=lon + rng.uniform(1, 15), lat=lat - rng.uniform(1, 15)),
            ),
        )
    d = rng.uniform(2.0, 15.0)

    def ring(pts):
        return models.GeoLineString(points=[models.GeoPoint(lon=x, lat=y) for x, y in pts])

    return models.FieldCondition(
        key="loc",
        geo_polygon=models.GeoPolygon(
            exterior=ring([(lon, lat), (lon + d, lat), (lon + d, lat + d), (lon, lat + d), (lon, lat)]),
            interiors=[
                ring(
                    [
                        (lon + d / 4, lat + d / 4),
                        (lon + d / 2, lat + d / 4),
                        (lon + d / 2, lat + d / 2),
                        (lon + d / 4, lat + d / 4),
                    ]
                )
            ],
        ),
    )


def text_condition(rng: random.Random) -> models.FieldCondition:
    key = "title" if rng.random() < 0.7 else "tags"
    query = rng.choice(WORDS).lower()
    if rng.random() < 0.6:
        query += " " + rng.choice(WORDS)
    kind = rng.randrange(4)
    if kind == 2:
        match = models.MatchTextAny(text_any=query)
    elif kind == 3:
        match = models.MatchPhrase(phrase=query)
    else:
        match = models.MatchText(text=query)
    return models.FieldCondition(key=key, match=match)


def random_filter(rng: random.Random) -> models.Filter:
    def leaf():
        return geo_condition(rng) if rng.random() < 0.5 else text_condition(rng)

    kind = rng.randrange(5)
    if kind == 0:
        return models.Filter(must=[leaf()])
    if kind == 1:
        return models.Filter(must=[leaf(), leaf()])
    if kind == 2:
        return models.Filter(should=[leaf(), leaf()])
    if kind == 3:
        return models.Filter(must=[leaf()], must_not=[leaf()])
    return models.Filter(must=[leaf(), models.FieldCondition(key="n", match=models.MatchAny(any=[1, 2, 3]))])


def ids(client: QdrantClient, name: str, flt: models.Filter) -> list:
    points, _ = client.scroll(name, scroll_filter=flt, limit=10_000, with_payload=False)
    return sorted(p.id for p in points)


def fill(client: QdrantClient, name: str, payloads: list[dict], sealed: bool) -> None:
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=2) if sealed else None,
    )
    points = [models.PointStruct(id=i, vector=[1.0, float(i)], payload=p) for i, p in enumerate(payloads)]
    for start in range(0, len(points), 200):
        client.upsert(name, points=points[start : start + 200], wait=True)


@pytest.mark.parametrize("seed", [3, 17])
def test_geo_and_text_filters_match_local_mode(client, collection_name, seed):
    rng = random.Random(seed)
    payloads = [payload(rng) for _ in range(700)]
    local = QdrantClient(":memory:")
    fill(local, collection_name, payloads, sealed=False)
    fill(client, collection_name, payloads, sealed=True)
    filters = [random_filter(rng) for _ in range(50)]
    selective = 0
    for stage in ["unindexed", "indexed"]:
        if stage == "indexed":
            wait_collection_green(client, collection_name)
            client.create_payload_index(collection_name, "loc", models.PayloadSchemaType.GEO, wait=True)
            for key in ["title", "tags"]:
                client.create_payload_index(
                    collection_name,
                    key,
                    models.TextIndexParams(
                        type=models.TextIndexType.TEXT,
                        tokenizer=models.TokenizerType.WORD,
                        lowercase=True,
                        phrase_matching=True,
                    ),
                    wait=True,
                )
            info = client.get_collection(collection_name)
            assert info.payload_schema["loc"].data_type == models.PayloadSchemaType.GEO
            assert info.payload_schema["title"].params.phrase_matching is True
        for flt in filters:
            expected = ids(local, collection_name, flt)
            if 0 < len(expected) < len(payloads):
                selective += 1
            assert ids(client, collection_name, flt) == expected, f"{stage}: {flt.model_dump_json(exclude_none=True)}"
            count = client.count(collection_name, count_filter=flt, exact=True).count
            assert count == len(expected), f"{stage} count: {flt.model_dump_json(exclude_none=True)}"
    assert selective > len(filters), f"filters too trivial ({selective})"


def test_text_index_params_over_grpc_and_rest(server, collection_name):
    # The gRPC client's REST port is a closed one, so no call falls back to REST unnoticed.
    grpc = QdrantClient(
        host="127.0.0.1",
        port=free_port(),
        grpc_port=server.grpc_port,
        prefer_grpc=True,
        timeout=30,
        check_compatibility=False,
    )
    grpc.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    grpc.upsert(
        collection_name,
        points=[
            models.PointStruct(id=1, vector=[1.0, 0.0], payload={"t": "The runners were running", "g": {"lon": 2.35, "lat": 48.85}}),
            models.PointStruct(id=2, vector=[0.0, 1.0], payload={"t": "a run in the park", "g": {"lon": 13.4, "lat": 52.5}}),
            models.PointStruct(id=3, vector=[1.0, 1.0], payload={"t": "Prefixes everywhere", "g": {"lon": 2.30, "lat": 48.80}}),
        ],
        wait=True,
    )
    params = models.TextIndexParams(
        type=models.TextIndexType.TEXT,
        tokenizer=models.TokenizerType.WORD,
        lowercase=True,
        min_token_len=2,
        max_token_len=20,
        stopwords=models.StopwordsSet(languages=[models.Language.ENGLISH], custom=["park"]),
        stemmer=models.SnowballParams(type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH),
        phrase_matching=True,
    )
    grpc.create_payload_index(collection_name, "t", params, wait=True)
    grpc.create_payload_index(collection_name, "g", models.GeoIndexParams(type=models.GeoIndexType.GEO), wait=True)
    for c in [grpc, make_client(server)]:
        info = c.get_collection(collection_name)
        t = info.payload_schema["t"]
        assert t.data_type == models.PayloadSchemaType.TEXT
        assert t.params.min_token_len == 2 and t.params.phrase_matching is True
        assert info.payload_schema["g"].data_type == models.PayloadSchemaType.GEO
        # Stemming makes "run" match "running" and "runners"... only through the index's tokenizer.
        flt = models.Filter(must=[models.FieldCondition(key="t", match=models.MatchText(text="run"))])
        assert sorted(p.id for p in c.scroll(collection_name, scroll_filter=flt)[0]) == [1, 2]
        # Stopwords ("the", "were", and the custom "park") leave no gap; both sides are stemmed.
        flt = models.Filter(must=[models.FieldCondition(key="t", match=models.MatchPhrase(phrase="runner runs"))])
        assert [p.id for p in c.scroll(collection_name, scroll_filter=flt)[0]] == [1]
        near_paris = models.Filter(
            must=[
                models.FieldCondition(
                    key="g", geo_radius=models.GeoRadius(center=models.GeoPoint(lon=2.35, lat=48.85), radius=10_000.0)
                )
            ]
        )
        assert sorted(p.id for p in c.scroll(collection_name, scroll_filter=near_paris)[0]) == [1, 3]
    # Bad declarations are refused with the option named.
    for bad, says in [
        ({"type": "text", "tokenizer": "bpe"}, "bpe"),
        ({"type": "text", "stopwords": "klingon"}, "klingon"),
        ({"type": "keyword", "tokenizer": "word"}, "option of text indexes"),
        ({"type": "geo", "lookup": True}, "lookup"),
    ]:
        r = httpx.put(
            f"{server.url}/collections/{collection_name}/index",
            json={"field_name": "x", "field_schema": bad},
            timeout=10,
        )
        assert r.status_code == 400, r.text
        assert says in r.json()["status"]["error"], r.text
    grpc.close()


def test_filter_expr_over_rest(server, client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    points = [
        models.PointStruct(id=i, vector=[1.0, float(i)], payload={"city": ["Paris", "Rome"][i % 2], "n": i})
        for i in range(20)
    ]
    client.upsert(collection_name, points=points, wait=True)
    base = f"{server.url}/collections/{collection_name}"

    def post(path: str, body: dict) -> httpx.Response:
        return httpx.post(f"{base}/{path}", json=body, timeout=10)

    r = post("points/scroll", {"filter_expr": 'city = "Paris" AND n < 10', "limit": 100})
    assert r.status_code == 200, r.text
    assert sorted(p["id"] for p in r.json()["result"]["points"]) == [0, 2, 4, 6, 8]
    # With `filter` too, both hold.
    r = post("points/count", {"filter": {"must": [{"key": "n", "range": {"gte": 4}}]}, "filter_expr": 'city = "Paris" AND n < 10', "exact": True})
    assert r.json()["result"]["count"] == 3, r.text
    # In a prefetch of the Query API.
    r = post("points/query", {"prefetch": [{"query": [1.0, 1.0], "filter_expr": "n IN [3, 5]", "limit": 10}], "query": {"fusion": "rrf"}})
    assert r.status_code == 200, r.text
    assert sorted(p["id"] for p in r.json()["result"]["points"]) == [3, 5]
    # A malformed expression: 400 in Qdrant's error body with line:column.
    r = post("points/scroll", {"filter_expr": "city = \n AND"})
    assert r.status_code == 400
    assert "filter_expr: 2:2:" in r.json()["status"]["error"], r.text
    # Delete by filter expression.
    r = post("points/delete?wait=true", {"filter_expr": "n >= 15"})
    assert r.status_code == 200, r.text
    assert client.count(collection_name, exact=True).count == 15
