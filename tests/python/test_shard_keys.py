"""Custom sharding through the official client, over REST and over gRPC (`prefer_grpc=True`): a
collection with `sharding_method: custom`, shard keys created, listed and deleted, points written under
keys and read with and without selectors. The client's local mode does not implement shard keys (its
`create_shard_key` raises NotImplementedError), so results are compared with a brute-force model: one
dict of points per key; a read through several keys sees each id once (its best copy), count counts
every copy.
"""

from __future__ import annotations

import math
import random
import uuid

import pytest
from qdrant_client import QdrantClient, models

from harness import make_grpc_client, status_of

DIM = 8
KEYS = ["eu", "us", 7]


@pytest.fixture(scope="module", params=["rest", "grpc"])
def api(request, server):
    if request.param == "rest":
        c = QdrantClient(url=server.url, timeout=30, prefer_grpc=False)
    else:
        c = make_grpc_client(server)
    yield c
    c.close()


@pytest.fixture
def name(api):
    n = f"sk_{uuid.uuid4().hex[:12]}"
    yield n
    try:
        api.delete_collection(n)
    except Exception:
        pass


def vec(rng: random.Random) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def create_custom(api: QdrantClient, name: str, shards: int = 2):
    api.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
        sharding_method=models.ShardingMethod.CUSTOM,
        shard_number=shards,
    )


def l2(a, b) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def brute(model: dict, keys: list, q: list[float], limit: int) -> list[tuple[int, float]]:
    best: dict[int, float] = {}
    for k in keys:
        for pid, (v, _) in model.get(k, {}).items():
            d = l2(v, q)
            best[pid] = min(d, best.get(pid, math.inf))
    return sorted(((pid, d) for pid, d in best.items()), key=lambda t: (t[1], t[0]))[:limit]


def scroll_all(api, name, selector=None) -> dict[int, dict]:
    out, offset = {}, None
    while True:
        points, offset = api.scroll(name, limit=7, offset=offset, with_payload=True, shard_key_selector=selector)
        for p in points:
            assert p.id not in out, "scroll pages overlap"
            out[p.id] = p.payload
        if offset is None:
            return out


def check(api, name, model, rng):
    present = list(model)
    assert sorted(map(str, (d.key for d in api.list_shard_keys(name).shard_keys or []))) == sorted(map(str, present))
    selections = [(None, present)] + [(k, [k]) for k in present]
    if len(present) >= 2:
        selections.append(([present[0], present[-1]], [present[0], present[-1]]))
    q = vec(rng)
    for selector, keys in selections:
        want_ids = set().union(*[set(model[k]) for k in keys]) if keys else set()
        got = scroll_all(api, name, selector)
        assert set(got) == want_ids, selector
        for pid, payload in got.items():
            assert any(model[k].get(pid, (None, None))[1] == payload for k in keys), (selector, pid)
        copies = sum(len(model[k]) for k in keys)
        assert api.count(name, exact=True, shard_key_selector=selector).count == copies, selector
        hits = api.query_points(name, query=q, limit=6, shard_key_selector=selector,
                                search_params=models.SearchParams(exact=True)).points
        expected = brute(model, keys, q, 6)
        assert [h.id for h in hits] == [pid for pid, _ in expected], selector
        for h, (_, d) in zip(hits, expected):
            assert abs(h.score - d) < 1e-4
        if keys:
            got_one = api.retrieve(name, ids=sorted(want_ids)[:5], shard_key_selector=selector)
            assert sorted(p.id for p in got_one) == sorted(want_ids)[:5]


def test_custom_sharding_matches_a_model(api, name):
    rng = random.Random(7)
    create_custom(api, name, shards=2)
    info = api.get_collection(name)
    assert info.config.params.sharding_method == models.ShardingMethod.CUSTOM
    assert api.list_shard_keys(name).shard_keys == []
    model: dict = {}
    for step in range(40):
        key = rng.choice(KEYS)
        action = rng.randrange(8)
        if action <= 1:
            if key in model:
                with pytest.raises(Exception) as e:
                    api.create_shard_key(name, key)
                assert "already exists" in str(e.value)
            else:
                assert api.create_shard_key(name, key, shards_number=rng.randint(1, 3))
                model[key] = {}
        elif action == 2:
            if key in model:
                assert api.delete_shard_key(name, key)
                del model[key]
            else:
                with pytest.raises(Exception) as e:
                    api.delete_shard_key(name, key)
                assert "not found" in str(e.value)
        elif action <= 5:
            points = [models.PointStruct(id=rng.randrange(25), vector=vec(rng), payload={"s": step})
                      for _ in range(rng.randint(1, 6))]
            if key in model:
                api.upsert(name, points=points, shard_key_selector=key, wait=True)
                for p in points:
                    model[key][p.id] = (p.vector, p.payload)
            else:
                with pytest.raises(Exception) as e:
                    api.upsert(name, points=points, shard_key_selector=key, wait=True)
                assert status_of(e.value) in (400, None) and "not found" in str(e.value)
        elif action == 6 and key in model and model[key]:
            pid = rng.choice(sorted(model[key]))
            api.delete(name, points_selector=models.PointIdsList(points=[pid]), shard_key_selector=key, wait=True)
            del model[key][pid]
        elif key in model and model[key]:
            pid = rng.choice(sorted(model[key]))
            api.set_payload(name, payload={"x": step}, points=[pid], shard_key_selector=key, wait=True)
            model[key][pid][1]["x"] = step
        check(api, name, model, rng)


def test_writes_without_a_key_and_keys_on_auto_collections_are_refused(api, name):
    create_custom(api, name, shards=1)
    point = models.PointStruct(id=1, vector=[0.0] * DIM)
    with pytest.raises(Exception) as e:
        api.upsert(name, points=[point], wait=True)
    assert "Shard key not specified" in str(e.value)
    api.create_shard_key(name, "a")
    with pytest.raises(Exception) as e:
        api.upsert(name, points=[point], shard_key_selector="b", wait=True)
    assert "Shard key b not found" in str(e.value)
    api.upsert(name, points=[point], shard_key_selector="a", wait=True)
    assert api.count(name, exact=True).count == 1
    # The batch endpoint takes a key per operation.
    api.batch_update_points(name, update_operations=[
        models.UpsertOperation(upsert=models.PointsList(points=[models.PointStruct(id=2, vector=[1.0] * DIM)],
                                                        shard_key="a")),
        models.DeleteOperation(delete=models.PointIdsList(points=[1], shard_key="a")),
    ], wait=True)
    assert sorted(scroll_all(api, name, "a")) == [2]

    auto = f"{name}_auto"
    api.create_collection(auto, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT))
    try:
        with pytest.raises(Exception) as e:
            api.create_shard_key(auto, "a")
        assert "cannot be created with Auto sharding method" in str(e.value)
        with pytest.raises(Exception) as e:
            api.count(auto, shard_key_selector="a")
        assert "not found" in str(e.value)
    finally:
        api.delete_collection(auto)


def test_cluster_info_names_the_key_of_each_shard(name, server):
    api = QdrantClient(url=server.url, timeout=30)
    create_custom(api, name, shards=2)
    api.create_shard_key(name, "a")
    api.create_shard_key(name, 5, shards_number=1)
    info = api.http.distributed_api.collection_cluster_info(name).result
    keys = sorted((s.shard_id, s.shard_key) for s in info.local_shards)
    assert keys == [(0, "a"), (1, "a"), (2, 5)]
    api.delete_shard_key(name, "a")
    info = api.http.distributed_api.collection_cluster_info(name).result
    assert [(s.shard_id, s.shard_key) for s in info.local_shards] == [(2, 5)]
    api.close()
