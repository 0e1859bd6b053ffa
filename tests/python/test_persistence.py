"""Durability: what was acknowledged with wait=True survives kill -9 and a restart on the same storage."""

import numpy as np
import pytest
from qdrant_client import models

from harness import make_client
from oracle import Model, as_list, random_payload
from test_points import assert_state

NAME = "persisted"
DIM = 8


# The client checks the server version in a background thread; killing the server can race with it.
@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_restart_after_kill_9(server_factory, tmp_path):
    storage = tmp_path / "storage"
    srv = server_factory(storage)
    client = make_client(srv)
    client.create_collection(
        NAME,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=7),
    )
    rng = np.random.default_rng(51)
    model = Model(models.Distance.COSINE)
    for start in range(0, 500, 100):
        pts = [
            models.PointStruct(id=i, vector=as_list(rng.standard_normal(DIM)), payload=random_payload(rng, i))
            for i in range(start, start + 100)
        ]
        client.upsert(NAME, points=pts, wait=True)
        for p in pts:
            model.upsert_struct(p)
    client.close()

    srv.kill()
    srv.start()  # same storage, new ports
    client = make_client(srv)
    assert client.collection_exists(NAME)
    info = client.get_collection(NAME)
    assert info.config.params.vectors.size == DIM
    assert info.config.params.vectors.distance == models.Distance.COSINE
    assert info.config.optimizer_config.indexing_threshold == 7
    assert info.points_count == 500
    assert_state(client, NAME, model)

    # more acknowledged edits of every kind, then crash again
    client.delete(NAME, points_selector=models.PointIdsList(points=list(range(0, 50))), wait=True)
    model.delete(range(0, 50))
    client.set_payload(NAME, payload={"after": "crash"}, points=list(range(50, 100)), wait=True)
    model.set_payload({"after": "crash"}, points=list(range(50, 100)))
    client.overwrite_payload(NAME, payload={"ow": 1}, points=[100, 101], wait=True)
    model.overwrite_payload({"ow": 1}, points=[100, 101])
    client.delete_payload(NAME, keys=["cat"], points=[102, 103], wait=True)
    model.delete_payload(["cat"], points=[102, 103])
    client.clear_payload(NAME, points_selector=models.PointIdsList(points=[104]), wait=True)
    model.clear_payload(points=[104])
    v = as_list(rng.standard_normal(DIM))
    client.upsert(NAME, points=[models.PointStruct(id=600, vector=v, payload={"new": True})], wait=True)
    model.upsert(600, v, {"new": True})
    client.close()

    srv.kill()
    srv.start()
    client = make_client(srv)
    assert_state(client, NAME, model)

    # a clean shutdown (SIGTERM) keeps everything too
    client.close()
    code = srv.stop()
    srv.start()
    client = make_client(srv)
    assert_state(client, NAME, model)
    client.close()
    assert code == 0, f"grape serve exited with {code} on SIGTERM (expected a graceful exit, code 0)"
