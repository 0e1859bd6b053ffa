"""Points: upsert (int and UUID ids, nested payloads), upload in batches, retrieve with selectors, delete
by ids and by filter, count, scroll pagination. Every result is compared with a Python model."""

import time
import uuid

import numpy as np
import pytest
from qdrant_client import models

from oracle import Model, as_list, id_sort_key, norm_id, random_payload, random_vectors, stored_vector, vectors_equal

DIM = 6


def _create(client, name, distance=models.Distance.EUCLID, dim=DIM):
    client.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=distance))


def _populate(client, name, n, seed=0, distance=models.Distance.EUCLID, uuids=0):
    """Upserts n int-id points (+ `uuids` UUID-id points) and returns the model."""
    rng = np.random.default_rng(seed)
    model = Model(distance)
    vecs = random_vectors(rng, n + uuids, DIM)
    ids = list(range(1, n + 1)) + [str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i)) for i in range(uuids)]
    pts = [
        models.PointStruct(id=pid, vector=as_list(v), payload=random_payload(rng, k))
        for k, (pid, v) in enumerate(zip(ids, vecs))
    ]
    for chunk in range(0, len(pts), 200):
        res = client.upsert(name, points=pts[chunk : chunk + 200], wait=True)
        assert res.status == models.UpdateStatus.COMPLETED
    for p in pts:
        model.upsert_struct(p)
    return model


def assert_state(client, name, model: Model, with_vectors=True):
    ids = list(model.points)
    got = client.retrieve(name, ids=ids, with_payload=True, with_vectors=with_vectors) if ids else []
    got_by_id = {norm_id(r.id): r for r in got}
    missing = sorted(set(ids) - set(got_by_id), key=id_sort_key)
    extra = sorted(set(got_by_id) - set(ids), key=id_sort_key)
    assert not missing and not extra, f"retrieve: missing ids {missing[:20]}, unexpected ids {extra[:20]}"
    for pid, want in model.points.items():
        r = got_by_id[pid]
        assert r.payload == want["payload"], f"point {pid!r}: payload {r.payload!r} != model {want['payload']!r}"
        if with_vectors:
            assert vectors_equal(r.vector, want["vector"]), f"point {pid!r}: vector {r.vector!r} != {want['vector']!r}"
    assert client.count(name, exact=True).count == len(model.points)


def test_upsert_int_and_uuid_ids_with_nested_payloads(client, collection_name):
    _create(client, collection_name)
    u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
    payloads = {
        1: {"title": "one", "nested": {"deep": {"x": 1, "list": [1, 2, {"y": "z"}]}}, "tags": ["a", "b"]},
        2: {"empty_obj": {}, "empty_list": [], "null": None, "f": 1.5, "neg": -7, "t": True, "unicode": "héllo ✓"},
        u1: {"kind": "uuid", "arr": [{"k": 1}, {"k": 2}]},
        u2: {},
        10**12: {"big_id": True},
    }
    model = Model(models.Distance.EUCLID)
    rng = np.random.default_rng(5)
    pts = []
    for pid, pl in payloads.items():
        v = as_list(rng.standard_normal(DIM))
        pts.append(models.PointStruct(id=pid, vector=v, payload=pl))
        model.upsert(pid, v, pl)
    client.upsert(collection_name, points=pts, wait=True)
    assert_state(client, collection_name, model)

    # UUID ids come back in canonical (lowercase, hyphenated) form
    got = client.retrieve(collection_name, ids=[u1])
    assert got[0].id == u1

    # re-upsert replaces the payload entirely (no merge) and the vector
    v = as_list(rng.standard_normal(DIM))
    client.upsert(collection_name, points=[models.PointStruct(id=1, vector=v, payload={"only": "this"})], wait=True)
    model.upsert(1, v, {"only": "this"})
    # upsert with no payload leaves an empty payload
    client.upsert(collection_name, points=[models.PointStruct(id=u2, vector=v)], wait=True)
    model.upsert(u2, v, None)
    assert_state(client, collection_name, model)


def test_upsert_batch_form(client, collection_name):
    """The columnar `Batch` form of upsert."""
    _create(client, collection_name)
    rng = np.random.default_rng(9)
    vecs = random_vectors(rng, 5, DIM)
    ids = [5, 6, 7, 8, 9]
    payloads = [{"i": i} for i in ids]
    client.upsert(
        collection_name, points=models.Batch(ids=ids, vectors=[as_list(v) for v in vecs], payloads=payloads), wait=True
    )
    model = Model(models.Distance.EUCLID)
    for i, v, p in zip(ids, vecs, payloads):
        model.upsert(i, v, p)
    assert_state(client, collection_name, model)


def test_cosine_vectors_are_stored_normalised(client, collection_name):
    _create(client, collection_name, distance=models.Distance.COSINE, dim=3)
    client.upsert(collection_name, points=[models.PointStruct(id=1, vector=[3.0, 0.0, 4.0])], wait=True)
    (r,) = client.retrieve(collection_name, ids=[1], with_vectors=True)
    assert vectors_equal(r.vector, stored_vector(models.Distance.COSINE, [3.0, 0.0, 4.0])), r.vector
    assert vectors_equal(r.vector, [0.6, 0.0, 0.8])


def test_upload_points_in_batches(client, collection_name):
    _create(client, collection_name, dim=16)
    rng = np.random.default_rng(2)
    vecs = random_vectors(rng, 2000, 16)
    pts = [models.PointStruct(id=i, vector=as_list(vecs[i]), payload={"i": i, "even": i % 2 == 0}) for i in range(2000)]
    client.upload_points(collection_name, points=pts, batch_size=256, wait=True)
    assert client.count(collection_name, exact=True).count == 2000
    assert client.get_collection(collection_name).points_count == 2000
    sample = [int(x) for x in rng.choice(2000, size=50, replace=False)]
    got = {r.id: r for r in client.retrieve(collection_name, ids=sample, with_vectors=True)}
    assert set(got) == set(sample)
    for i in sample:
        assert got[i].payload == {"i": i, "even": i % 2 == 0}
        assert vectors_equal(got[i].vector, vecs[i])
    even = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    assert client.count(collection_name, count_filter=even, exact=True).count == 1000


def test_retrieve_selectors(client, collection_name):
    _create(client, collection_name)
    model = _populate(client, collection_name, 20, seed=3)
    ids = [1, 5, 7]

    recs = client.retrieve(collection_name, ids=ids, with_payload=False, with_vectors=False)
    assert sorted(r.id for r in recs) == ids
    for r in recs:
        assert r.payload is None, f"with_payload=False returned payload {r.payload!r}"
        assert r.vector is None, f"with_vectors=False returned vector {r.vector!r}"

    recs = client.retrieve(collection_name, ids=ids, with_payload=True, with_vectors=True)
    for r in recs:
        assert r.payload == model.points[r.id]["payload"]
        assert vectors_equal(r.vector, model.points[r.id]["vector"])

    # include selector, as a list of keys and as an explicit PayloadSelectorInclude
    for sel in (["cat", "n"], models.PayloadSelectorInclude(include=["cat", "n"])):
        for r in client.retrieve(collection_name, ids=ids, with_payload=sel):
            full = model.points[r.id]["payload"]
            assert r.payload == {k: full[k] for k in ("cat", "n")}, f"selector {sel!r}: {r.payload!r}"

    # exclude selector
    for r in client.retrieve(
        collection_name, ids=ids, with_payload=models.PayloadSelectorExclude(exclude=["tags", "a"])
    ):
        full = model.points[r.id]["payload"]
        assert r.payload == {k: v for k, v in full.items() if k not in ("tags", "a")}

    # missing ids are simply absent
    recs = client.retrieve(collection_name, ids=[1, 999, 7])
    assert sorted(r.id for r in recs) == [1, 7]


def test_delete_by_ids_and_filter(client, collection_name):
    _create(client, collection_name)
    model = _populate(client, collection_name, 300, seed=4, uuids=20)
    some_uuid = [i for i in model.points if isinstance(i, str)][:5]

    res = client.delete(
        collection_name, points_selector=models.PointIdsList(points=[1, 2, 3, 1000] + some_uuid), wait=True
    )
    assert res.status == models.UpdateStatus.COMPLETED
    model.delete([1, 2, 3] + some_uuid)
    assert_state(client, collection_name, model, with_vectors=False)

    flt = models.Filter(
        must=[models.FieldCondition(key="cat", match=models.MatchValue(value="red"))],
        must_not=[models.FieldCondition(key="n", range=models.Range(gte=50))],
    )
    doomed = model.ids(flt)
    assert doomed, "test data should match the filter"
    client.delete(collection_name, points_selector=models.FilterSelector(filter=flt), wait=True)
    model.delete(doomed)
    assert_state(client, collection_name, model, with_vectors=False)
    assert client.count(collection_name, count_filter=flt, exact=True).count == 0


@pytest.mark.parametrize(
    "flt",
    [
        models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchValue(value="green"))]),
        models.Filter(must=[models.FieldCondition(key="tags", match=models.MatchAny(any=["a", "e"]))]),
        models.Filter(must=[models.FieldCondition(key="price", range=models.Range(gte=10.0, lt=20.0))]),
        models.Filter(must=[models.FieldCondition(key="a.b", match=models.MatchValue(value=3))]),
        models.Filter(must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="opt"))]),
        models.Filter(must=[models.HasIdCondition(has_id=[3, 4, 5, 6, 400])]),
        models.Filter(
            should=[
                models.FieldCondition(key="flag", match=models.MatchValue(value=True)),
                models.FieldCondition(key="n", range=models.Range(lt=10)),
            ],
            must_not=[models.FieldCondition(key="cat", match=models.MatchValue(value="blue"))],
        ),
    ],
    ids=["match", "match_any", "range", "nested_key", "is_empty", "has_id", "should_must_not"],
)
def test_count_with_filter(client, collection_name, flt):
    _create(client, collection_name)
    model = _populate(client, collection_name, 250, seed=6)
    want = len(model.ids(flt))
    assert 0 < want < 250, "filter should be selective on the test data"
    assert client.count(collection_name, count_filter=flt, exact=True).count == want


def _scroll_all(client, name, flt=None, limit=100):
    seen, pages, offset = [], 0, None
    while True:
        recs, nxt = client.scroll(name, scroll_filter=flt, limit=limit, offset=offset, with_payload=True)
        pages += 1
        assert len(recs) <= limit
        seen.extend(recs)
        if nxt is None:
            return seen, pages
        assert recs, "a page with a next_page_offset must not be empty"
        assert id_sort_key(nxt) > id_sort_key(recs[-1].id), (
            f"next_page_offset {nxt!r} not after last id {recs[-1].id!r}"
        )
        offset = nxt
        assert pages < 1000, "scroll does not terminate"


def test_scroll_pagination(client, collection_name):
    _create(client, collection_name)
    rng = np.random.default_rng(7)
    ids = sorted({int(x) for x in rng.choice(100_000, size=550, replace=False)})
    pts = [
        models.PointStruct(id=i, vector=as_list(rng.standard_normal(DIM)), payload=random_payload(rng, i)) for i in ids
    ]
    rng.shuffle(pts)  # insertion order differs from id order
    client.upsert(collection_name, points=pts, wait=True)
    model = Model(models.Distance.EUCLID)
    for p in pts:
        model.upsert_struct(p)

    seen, pages = _scroll_all(client, collection_name)
    assert [r.id for r in seen] == ids, "scroll must visit every point once, in id order"
    assert pages == 6
    for r in seen:
        assert r.payload == model.points[r.id]["payload"]

    flt = models.Filter(must=[models.FieldCondition(key="cat", match=models.MatchAny(any=["red", "blue"]))])
    seen, _ = _scroll_all(client, collection_name, flt=flt)
    assert [r.id for r in seen] == model.ids(flt)

    # starting from an offset that is not an existing id: the page starts at the next id after it
    start = ids[10] + 1
    recs, _ = client.scroll(collection_name, limit=5, offset=start)
    assert [r.id for r in recs] == [i for i in ids if i >= start][:5]


def test_scroll_mixed_int_and_uuid_ids(client, collection_name):
    """Qdrant orders integer ids before UUIDs, UUIDs by value."""
    _create(client, collection_name)
    model = _populate(client, collection_name, 130, seed=8, uuids=90)
    seen, _ = _scroll_all(client, collection_name)
    assert [norm_id(r.id) for r in seen] == sorted(model.points, key=id_sort_key)


def test_upsert_without_wait_is_eventually_visible(client, collection_name):
    _create(client, collection_name)
    rng = np.random.default_rng(10)
    pts = [models.PointStruct(id=i, vector=as_list(rng.standard_normal(DIM)), payload={"i": i}) for i in range(300)]
    statuses = [client.upsert(collection_name, points=pts[s : s + 100], wait=False).status for s in range(0, 300, 100)]
    # Qdrant answers "acknowledged" without wait; a server that applied the write already may say "completed"
    assert all(s in (models.UpdateStatus.ACKNOWLEDGED, models.UpdateStatus.COMPLETED) for s in statuses), statuses
    deadline = time.monotonic() + 10
    while client.count(collection_name, exact=True).count < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    model = Model(models.Distance.EUCLID)
    for p in pts:
        model.upsert_struct(p)
    assert_state(client, collection_name, model)
