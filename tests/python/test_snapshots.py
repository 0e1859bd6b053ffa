"""Snapshots: collection snapshots (create, list, download, delete, recover from a file:// or http://
location or an upload) and full snapshots, through the official client's REST calls and plain HTTP."""

import copy
import hashlib
import io
import json
import tarfile
import time
import uuid

import httpx
import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from harness import status_of
from oracle import Model, as_list, random_payload
from test_points import assert_state

DIM = 6
DIST = models.Distance.DOT


def _fill(client, name, model: Model, rng, ids, shards=None):
    if not client.collection_exists(name):
        client.create_collection(
            name,
            vectors_config=models.VectorParams(size=DIM, distance=DIST),
            shard_number=shards,
            optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1),
        )
    pts = [
        models.PointStruct(id=i, vector=as_list(rng.standard_normal(DIM)), payload=random_payload(rng, i))
        for i in ids
    ]
    client.upsert(name, points=pts, wait=True)
    for p in pts:
        model.upsert_struct(p)


def _snapshot_file(server, collection, name):
    return server.storage.resolve() / "snapshots" / collection / name


def _download(server, path: str) -> bytes:
    r = httpx.get(server.url + path, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    return r.content


def _changed_model_after_edits(client, name, model: Model, rng) -> None:
    """Writes that come after the snapshot: new points, overwritten points, deletes, payload edits."""
    _fill(client, name, model, rng, range(150, 260))
    client.delete(name, points_selector=models.PointIdsList(points=[0, 1, 2, 3]), wait=True)
    model.delete([0, 1, 2, 3])
    client.set_payload(name, payload={"after": True}, points=[10, 11], wait=True)
    model.set_payload({"after": True}, points=[10, 11])


def test_create_list_download_delete(client, server, collection_name):
    model = Model(DIST)
    _fill(client, collection_name, model, np.random.default_rng(1), range(50))
    snap = client.create_snapshot(collection_name)
    assert snap is not None
    assert snap.name.startswith(collection_name + "-") and snap.name.endswith(".snapshot")
    assert snap.size > 0
    assert snap.creation_time
    assert len(snap.checksum) == 64

    listed = client.list_snapshots(collection_name)
    assert [s.name for s in listed] == [snap.name]
    assert listed[0].size == snap.size and listed[0].checksum == snap.checksum

    data = _download(server, f"/collections/{collection_name}/snapshots/{snap.name}")
    assert len(data) == snap.size
    assert hashlib.sha256(data).hexdigest() == snap.checksum
    assert _snapshot_file(server, collection_name, snap.name).read_bytes() == data
    # A tar holding the config and one nested tar per shard.
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["snapshot.json", "shards/0.tar"]

    assert client.delete_snapshot(collection_name, snap.name) is True
    assert client.list_snapshots(collection_name) == []
    with pytest.raises(UnexpectedResponse) as e:
        client.delete_snapshot(collection_name, snap.name)
    assert status_of(e.value) == 404
    r = httpx.get(f"{server.url}/collections/{collection_name}/snapshots/{snap.name}")
    assert r.status_code == 404 and "error" in r.json()["status"]


def test_unknown_collection_is_404(client):
    name = f"missing_{uuid.uuid4().hex}"
    for call in (lambda: client.create_snapshot(name), lambda: client.list_snapshots(name)):
        with pytest.raises(UnexpectedResponse) as e:
            call()
        assert status_of(e.value) == 404


def test_create_without_wait_is_accepted(client, collection_name):
    _fill(client, collection_name, Model(DIST), np.random.default_rng(2), range(10))
    assert client.create_snapshot(collection_name, wait=False) is None
    deadline = time.monotonic() + 30
    while not client.list_snapshots(collection_name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(client.list_snapshots(collection_name)) == 1


def test_recover_from_file_restores_the_snapshot_state(client, server, collection_name):
    rng = np.random.default_rng(3)
    model = Model(DIST)
    _fill(client, collection_name, model, rng, range(150), shards=2)
    snap = client.create_snapshot(collection_name)
    at_snapshot = copy.deepcopy(model)

    _changed_model_after_edits(client, collection_name, model, rng)
    assert client.count(collection_name, exact=True).count == len(model.points)
    assert client.count(collection_name, exact=True).count != len(at_snapshot.points)

    location = f"file://{_snapshot_file(server, collection_name, snap.name)}"
    assert client.recover_snapshot(collection_name, location=location, checksum=snap.checksum) is True
    assert_state(client, collection_name, at_snapshot)
    info = client.get_collection(collection_name)
    assert info.config.params.shard_number == 2
    # The recovered collection answers searches and takes writes.
    q = as_list(rng.standard_normal(DIM))
    hits = client.query_points(collection_name, query=q, limit=5).points
    assert len(hits) == 5
    _fill(client, collection_name, at_snapshot, rng, range(500, 510))
    assert_state(client, collection_name, at_snapshot)


def test_recover_creates_a_missing_collection_and_checks_inputs(client, server, collection_name):
    source = f"src_{uuid.uuid4().hex}"
    try:
        model = Model(DIST)
        _fill(client, source, model, np.random.default_rng(4), range(40))
        snap = client.create_snapshot(source)
        path = _snapshot_file(server, source, snap.name)

        assert client.collection_exists(collection_name) is False
        assert client.recover_snapshot(collection_name, location=f"file://{path}", priority="snapshot") is True
        assert_state(client, collection_name, model)

        bad = [
            ({"location": f"file://{path}", "checksum": "0" * 64}, 400),
            ({"location": "file://relative/x.snapshot"}, 400),
            ({"location": f"file://{path.parent}/../{source}/{snap.name}"}, 400),
            ({"location": str(path)}, 400),
            ({"location": f"file://{path.parent}/absent.snapshot"}, 404),
            ({"location": f"file://{path}", "priority": "sometimes"}, 400),
        ]
        for body, status in bad:
            r = httpx.put(f"{server.url}/collections/{collection_name}/snapshots/recover", json=body)
            assert r.status_code == status, (body, r.text)
            assert r.json()["status"]["error"], body
        assert_state(client, collection_name, model)
    finally:
        client.delete_collection(source)


def test_recover_from_http_url(client, server, collection_name):
    source = f"src_{uuid.uuid4().hex}"
    try:
        model = Model(DIST)
        _fill(client, source, model, np.random.default_rng(5), range(60))
        snap = client.create_snapshot(source)
        url = f"{server.url}/collections/{source}/snapshots/{snap.name}"
        assert client.recover_snapshot(collection_name, location=url, checksum=snap.checksum) is True
        assert_state(client, collection_name, model)
        r = httpx.put(
            f"{server.url}/collections/{collection_name}/snapshots/recover",
            json={"location": f"{server.url}/collections/{source}/snapshots/nope.snapshot"},
        )
        assert r.status_code == 400, r.text
        assert_state(client, collection_name, model)
    finally:
        client.delete_collection(source)


def test_recover_from_upload(client, server, collection_name):
    rng = np.random.default_rng(6)
    model = Model(DIST)
    _fill(client, collection_name, model, rng, range(80))
    snap = client.create_snapshot(collection_name)
    data = _download(server, f"/collections/{collection_name}/snapshots/{snap.name}")
    at_snapshot = copy.deepcopy(model)
    _changed_model_after_edits(client, collection_name, model, rng)

    # Through the client's generated REST API.
    result = client.http.snapshots_api.recover_from_uploaded_snapshot(
        collection_name=collection_name, wait=True, checksum=snap.checksum, snapshot=io.BytesIO(data)
    )
    assert result.result is True
    assert_state(client, collection_name, at_snapshot)

    # Plain multipart into a new collection; then a wrong checksum and a form without the field.
    other = f"up_{uuid.uuid4().hex}"
    try:
        url = f"{server.url}/collections/{other}/snapshots/upload"
        r = httpx.post(url, params={"priority": "replica"}, files={"snapshot": ("s.snapshot", data)}, timeout=30)
        assert r.status_code == 200 and r.json()["result"] is True, r.text
        assert_state(client, other, at_snapshot)
        r = httpx.post(url, params={"checksum": "ab" * 32}, files={"snapshot": ("s.snapshot", data)})
        assert r.status_code == 400, r.text
        r = httpx.post(url, files={"other": ("s.snapshot", data)})
        assert r.status_code == 400, r.text
        r = httpx.post(url, files={"snapshot": ("s.snapshot", data[: len(data) // 2])})
        assert r.status_code == 400, r.text
        assert_state(client, other, at_snapshot)
    finally:
        client.delete_collection(other)
    # Spooled uploads are removed.
    leftovers = [p.name for p in (server.storage / "snapshots").iterdir() if p.name.startswith("upload-")]
    assert leftovers == []


def test_full_snapshots(client, server, collection_name):
    model = Model(DIST)
    _fill(client, collection_name, model, np.random.default_rng(7), range(30))
    alias = f"al_{uuid.uuid4().hex}"
    client.update_collection_aliases(
        change_aliases_operations=[
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection_name, alias_name=alias)
            )
        ]
    )
    snap = client.create_full_snapshot()
    assert snap.name.startswith("full-") and snap.name.endswith(".snapshot")
    assert snap.name in [s.name for s in client.list_full_snapshots()]

    data = _download(server, f"/snapshots/{snap.name}")
    assert len(data) == snap.size and hashlib.sha256(data).hexdigest() == snap.checksum
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert f"collections/{collection_name}.snapshot" in names
        assert names[-1] == "full.json"
        header = json.load(tar.extractfile("full.json"))
    assert header["aliases"][alias] == collection_name
    entry = header["collections"][collection_name]
    assert len(entry["checksum"]) == 64

    assert client.delete_full_snapshot(snap.name) is True
    assert snap.name not in [s.name for s in client.list_full_snapshots()]
    with pytest.raises(UnexpectedResponse) as e:
        client.delete_full_snapshot(snap.name)
    assert status_of(e.value) == 404
    client.delete_collection(collection_name)  # drops the alias too


def _shard_snapshot_file(server, collection, shard, name):
    return server.storage.resolve() / "snapshots" / collection / "shards" / str(shard) / name


def test_shard_snapshots_recover_one_shard_at_a_time(client, server, collection_name):
    rng = np.random.default_rng(11)
    model = Model(DIST)
    _fill(client, collection_name, model, rng, range(150), shards=2)
    snaps = [client.create_shard_snapshot(collection_name, shard) for shard in (0, 1)]
    at_snapshot = copy.deepcopy(model)
    for shard, snap in enumerate(snaps):
        assert snap.name.startswith(f"{collection_name}-shard-{shard}-") and len(snap.checksum) == 64
        assert [s.name for s in client.list_shard_snapshots(collection_name, shard)] == [snap.name]
        data = _download(server, f"/collections/{collection_name}/shards/{shard}/snapshots/{snap.name}")
        assert hashlib.sha256(data).hexdigest() == snap.checksum
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names = tar.getnames()
        assert "manifest.bin" in names and all(n == "manifest.bin" or n.startswith("segments") for n in names)
    # The streamed form is a fresh shard snapshot of the same shape, not stored.
    streamed = _download(server, f"/collections/{collection_name}/shards/1/snapshot")
    with tarfile.open(fileobj=io.BytesIO(streamed)) as tar:
        assert "manifest.bin" in tar.getnames()
    assert len(client.list_shard_snapshots(collection_name, 1)) == 1

    _changed_model_after_edits(client, collection_name, model, rng)
    now = copy.deepcopy(model)

    # Shard 1 from its file: each point is as it is now (shard 0) or as it was (shard 1), both occur.
    location = f"file://{_shard_snapshot_file(server, collection_name, 1, snaps[1].name)}"
    assert client.recover_shard_snapshot(collection_name, 1, location=location, checksum=snaps[1].checksum)
    got = {
        r.id: (r.payload or {}, r.vector)
        for r in client.scroll(collection_name, limit=1000, with_payload=True, with_vectors=True)[0]
    }
    as_now = as_then = 0
    for pid in set(now.points) | set(at_snapshot.points) | set(got):
        want_now = (now.points[pid]["payload"], now.points[pid]["vector"]) if pid in now.points else None
        then = at_snapshot.points.get(pid)
        want_then = (then["payload"], then["vector"]) if then else None
        if _close(want_now, want_then):
            continue
        state = got.get(pid)
        assert _close(state, want_now) or _close(state, want_then), pid
        as_now += _close(state, want_now)
        as_then += _close(state, want_then)
    assert as_now > 0 and as_then > 0, (as_now, as_then)

    # Shard 0 from an upload: the whole collection is the snapshots' state again.
    path = _shard_snapshot_file(server, collection_name, 0, snaps[0].name)
    with open(path, "rb") as f:
        r = httpx.post(
            f"{server.url}/collections/{collection_name}/shards/0/snapshots/upload",
            params={"checksum": snaps[0].checksum},
            files={"snapshot": (snaps[0].name, f, "application/octet-stream")},
            timeout=60,
        )
    assert r.status_code == 200 and r.json()["result"] is True, r.text
    assert_state(client, collection_name, at_snapshot)
    # Writes go on after the recoveries.
    _fill(client, collection_name, at_snapshot, rng, range(900, 920))
    assert_state(client, collection_name, at_snapshot)

    assert client.delete_shard_snapshot(collection_name, 0, snaps[0].name) is True
    assert client.list_shard_snapshots(collection_name, 0) == []


def _close(state, want):
    if state is None or want is None:
        return state is None and want is None
    return state[0] == want[0] and np.allclose(state[1], want[1], atol=1e-5)


def test_shard_snapshot_errors(client, server, collection_name):
    _fill(client, collection_name, Model(DIST), np.random.default_rng(5), range(20))
    base = f"{server.url}/collections/{collection_name}/shards"
    r = httpx.post(f"{base}/7/snapshots")
    assert r.status_code == 404 and "error" in r.json()["status"]
    r = httpx.post(f"{base}/x/snapshots")
    assert r.status_code == 400
    snap = client.create_snapshot(collection_name)  # a collection snapshot is no shard snapshot
    location = f"file://{_snapshot_file(server, collection_name, snap.name)}"
    with pytest.raises(UnexpectedResponse) as e:
        client.recover_shard_snapshot(collection_name, 0, location=location)
    assert status_of(e.value) == 400
    shard = client.create_shard_snapshot(collection_name, 0)
    location = f"file://{_shard_snapshot_file(server, collection_name, 0, shard.name)}"
    with pytest.raises(UnexpectedResponse) as e:
        client.recover_shard_snapshot(collection_name, 0, location=location, checksum="0" * 64)
    assert status_of(e.value) == 400 and "checksum" in str(e.value.content)
    # Its vectors must be the collection's: a shard of another collection with other vectors is refused.
    other = f"{collection_name}_other"
    client.create_collection(other, vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    try:
        with pytest.raises(UnexpectedResponse) as e:
            client.recover_shard_snapshot(other, 0, location=location)
        assert status_of(e.value) == 400
    finally:
        client.delete_collection(other)
    assert client.count(collection_name).count == 20
