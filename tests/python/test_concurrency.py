"""Concurrent writers and readers through the REST API: nothing lost, nothing corrupted."""

import threading

import numpy as np
from qdrant_client import models

from harness import make_client
from oracle import Model, as_list, assert_hits_match, ranked
from test_points import assert_state

DIM = 8


def test_concurrent_upserts_and_queries(server, client, collection_name):
    client.create_collection(
        collection_name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT)
    )
    rng = np.random.default_rng(61)
    writers, per_writer, batch = 4, 250, 25
    vecs = rng.standard_normal((writers * per_writer, DIM)).astype(np.float32)
    model = Model(models.Distance.DOT)
    for i, v in enumerate(vecs):
        model.upsert(i, v, {"w": i // per_writer, "i": i})
    errors = []
    done = threading.Event()

    def write(w):
        c = make_client(server)
        try:
            for start in range(w * per_writer, (w + 1) * per_writer, batch):
                pts = [
                    models.PointStruct(id=i, vector=as_list(vecs[i]), payload={"w": w, "i": i})
                    for i in range(start, start + batch)
                ]
                c.upsert(collection_name, points=pts, wait=True)
        except Exception as e:  # reported below
            errors.append(f"writer {w}: {e!r}")
        finally:
            c.close()

    def read():
        c = make_client(server)
        qrng = np.random.default_rng(62)
        try:
            while not done.is_set():
                res = c.query_points(collection_name, query=as_list(qrng.standard_normal(DIM)), limit=5)
                assert len(res.points) <= 5
                c.count(collection_name, exact=True)
        except Exception as e:
            errors.append(f"reader: {e!r}")
        finally:
            c.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    reader.join(timeout=30)
    assert not errors, errors
    assert_state(client, collection_name, model)
    q = rng.standard_normal(DIM).astype(np.float32)
    ids = model.ids()
    ranking = ranked(models.Distance.DOT, ids, np.stack([model.points[i]["vector"] for i in ids]), q)
    res = client.query_points(
        collection_name, query=as_list(q), limit=10, search_params=models.SearchParams(exact=True)
    )
    assert_hits_match(res.points, ranking[:10], dict(ranking), models.Distance.DOT)
