"""Collections: create (single and named vectors, every distance, config diffs), exists, get, list, update,
delete, and creating a collection twice."""

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from oracle import ALL_DISTANCES, as_list


@pytest.mark.parametrize("distance", ALL_DISTANCES, ids=lambda d: d.value)
def test_create_single_vector_each_distance(client, collection_name, distance):
    assert client.collection_exists(collection_name) is False
    assert (
        client.create_collection(collection_name, vectors_config=models.VectorParams(size=7, distance=distance)) is True
    )
    assert client.collection_exists(collection_name) is True

    info = client.get_collection(collection_name)
    vp = info.config.params.vectors
    assert isinstance(vp, models.VectorParams), f"expected a single unnamed VectorParams, got {vp!r}"
    assert vp.size == 7
    assert vp.distance == distance
    assert info.status == models.CollectionStatus.GREEN
    assert info.points_count == 0


def test_create_named_vectors(client, collection_name):
    client.create_collection(
        collection_name,
        vectors_config={
            "image": models.VectorParams(size=4, distance=models.Distance.DOT),
            "text": models.VectorParams(size=8, distance=models.Distance.COSINE),
        },
    )
    vp = client.get_collection(collection_name).config.params.vectors
    assert isinstance(vp, dict), f"expected named vectors, got {vp!r}"
    assert set(vp) == {"image", "text"}
    assert (vp["image"].size, vp["image"].distance) == (4, models.Distance.DOT)
    assert (vp["text"].size, vp["text"].distance) == (8, models.Distance.COSINE)


def test_create_with_config_diffs(client, collection_name):
    client.create_collection(
        collection_name,
        vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID),
        hnsw_config=models.HnswConfigDiff(m=8, ef_construct=64),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=500, default_segment_number=2),
    )
    cfg = client.get_collection(collection_name).config
    assert cfg.hnsw_config.m == 8
    assert cfg.hnsw_config.ef_construct == 64
    assert cfg.optimizer_config.indexing_threshold == 500
    assert cfg.optimizer_config.default_segment_number == 2


def test_points_count_after_upserts(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    rng = np.random.default_rng(1)
    pts = [models.PointStruct(id=i, vector=as_list(rng.standard_normal(3))) for i in range(37)]
    client.upsert(collection_name, points=pts, wait=True)
    assert client.get_collection(collection_name).points_count == 37
    # re-upserting existing ids does not add points
    client.upsert(collection_name, points=pts[:10], wait=True)
    assert client.get_collection(collection_name).points_count == 37


def test_get_collections_lists_it(client, collection_name):
    client.create_collection(
        collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
    )
    names = [c.name for c in client.get_collections().collections]
    assert collection_name in names


def test_update_collection_optimizers(client, collection_name):
    client.create_collection(
        collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
    )
    assert (
        client.update_collection(
            collection_name, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1234)
        )
        is True
    )
    cfg = client.get_collection(collection_name).config
    assert cfg.optimizer_config.indexing_threshold == 1234


def test_update_collection_hnsw(client, collection_name):
    client.create_collection(
        collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
    )
    assert client.update_collection(collection_name, hnsw_config=models.HnswConfigDiff(ef_construct=77)) is True
    cfg = client.get_collection(collection_name).config
    assert cfg.hnsw_config.ef_construct == 77


def test_delete_collection(client, collection_name):
    client.create_collection(
        collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
    )
    client.upsert(collection_name, points=[models.PointStruct(id=1, vector=[0.1, 0.2])], wait=True)
    assert client.delete_collection(collection_name) is True
    assert client.collection_exists(collection_name) is False
    assert collection_name not in [c.name for c in client.get_collections().collections]
    # a new collection under the same name starts empty
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    info = client.get_collection(collection_name)
    assert info.points_count == 0
    assert info.config.params.vectors.size == 3


def test_create_existing_collection_fails(client, collection_name):
    client.create_collection(
        collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
    )
    with pytest.raises(UnexpectedResponse) as ei:
        client.create_collection(
            collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.COSINE)
        )
    assert 400 <= ei.value.status_code < 500, f"status {ei.value.status_code}: {ei.value.content!r}"
    # the original collection is untouched
    assert client.get_collection(collection_name).config.params.vectors.size == 2
