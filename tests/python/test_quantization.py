"""Quantization with the official client's models: scalar / binary / product configs at creation and by
update (including `Disabled`), collection info, search parameters with re-scoring checked against numpy,
and bad input answered with 400."""

import time

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

DIM = 16


def _points(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_configs_are_stored_and_reported(client, collection_name):
    client.create_collection(
        collection_name,
        vectors_config=models.VectorParams(
            size=DIM,
            distance=models.Distance.COSINE,
            quantization_config=models.BinaryQuantization(
                binary=models.BinaryQuantizationConfig(
                    always_ram=True,
                    encoding=models.BinaryQuantizationEncoding.TWO_BITS,
                    query_encoding=models.BinaryQuantizationQueryEncoding.SCALAR8BITS,
                )
            ),
        ),
        quantization_config=models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99, always_ram=True)
        ),
    )
    config = client.get_collection(collection_name).config
    assert isinstance(config.quantization_config, models.ScalarQuantization)
    assert config.quantization_config.scalar.quantile == pytest.approx(0.99)
    vq = config.params.vectors.quantization_config
    assert isinstance(vq, models.BinaryQuantization)
    assert vq.binary.encoding == models.BinaryQuantizationEncoding.TWO_BITS

    client.update_collection(
        collection_name,
        quantization_config=models.ProductQuantization(
            product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X8)
        ),
    )
    assert isinstance(client.get_collection(collection_name).config.quantization_config, models.ProductQuantization)
    client.update_collection(collection_name, quantization_config=models.Disabled.DISABLED)
    assert client.get_collection(collection_name).config.quantization_config is None


@pytest.mark.parametrize(
    ("quantization", "oversampling"),
    [
        (models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8)), 2.0),
        # One bit per dimension of random 16-d vectors is coarse: take many more candidates.
        (models.BinaryQuantization(binary=models.BinaryQuantizationConfig()), 20.0),
        (
            models.ProductQuantization(
                product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X4)
            ),
            4.0,
        ),
    ],
    ids=["scalar", "binary", "product"],
)
def test_rescored_search_matches_numpy(client, collection_name, quantization, oversampling):
    client.create_collection(
        collection_name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.DOT),
        hnsw_config=models.HnswConfigDiff(full_scan_threshold=1),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
        quantization_config=quantization,
    )
    vectors = _points(600)
    client.upsert(
        collection_name,
        points=[models.PointStruct(id=i, vector=v.tolist()) for i, v in enumerate(vectors)],
        wait=True,
    )
    # The optimizer indexes (and quantizes) in the background; search once it has.
    for _ in range(300):
        if client.get_collection(collection_name).indexed_vectors_count == len(vectors):
            break
        time.sleep(0.1)
    assert client.get_collection(collection_name).indexed_vectors_count == len(vectors)
    params = models.SearchParams(
        hnsw_ef=64, quantization=models.QuantizationSearchParams(ignore=False, rescore=True, oversampling=oversampling)
    )
    found_total = 0
    for q in _points(10, seed=8):
        exact = vectors @ q
        hits = client.query_points(collection_name, query=q.tolist(), limit=5, search_params=params).points
        assert len(hits) == 5
        for h in hits:
            # Re-scored: the reported score is the exact one.
            assert h.score == pytest.approx(float(exact[h.id]), abs=1e-4)
        found_total += len({h.id for h in hits} & set(np.argsort(-exact)[:5].tolist()))
    assert found_total / 50 >= 0.8


def test_bad_quantization_input_is_400(client, collection_name):
    with pytest.raises(UnexpectedResponse) as e:
        client.create_collection(
            collection_name,
            vectors_config=models.VectorParams(size=12, distance=models.Distance.DOT),
            quantization_config=models.ProductQuantization(
                product=models.ProductQuantizationConfig(compression=models.CompressionRatio.X64)
            ),
        )
    assert e.value.status_code == 400
    assert not client.collection_exists(collection_name)
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=12, distance=models.Distance.DOT))
    client.upsert(collection_name, points=[models.PointStruct(id=1, vector=[1.0] * 12)], wait=True)
    with pytest.raises(UnexpectedResponse) as e:
        client.query_points(
            collection_name,
            query=[1.0] * 12,
            search_params=models.SearchParams(quantization=models.QuantizationSearchParams(oversampling=0.5)),
        )
    assert e.value.status_code == 400
    assert "oversampling" in e.value.content.decode()
