"""The operations endpoints through the official client's generated REST API: the issues report
(`beta_api`), resource quotas (`quotas_api`) and cluster telemetry / recovery (`distributed_api`). The
client validates every answer against its pydantic models, so a shape that differs from Qdrant's fails
here."""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from harness import make_client

UNINDEXED_POINTS_THRESHOLD = 10_000


def _fill(client, name: str, n: int) -> None:
    client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    client.upload_collection(
        name,
        vectors=vectors,
        payload=[{"color": ["red", "green"][i % 2], "rank": i} for i in range(n)],
        ids=list(range(n)),
        batch_size=2_500,
        wait=True,
    )


def _issues(client) -> dict:
    return {i["id"]: i for i in client.http.beta_api.get_issues()["result"]["issues"]}


def test_unindexed_field_issue_appears_and_is_resolved_by_the_index(client, collection_name):
    client.http.beta_api.clear_issues()
    _fill(client, collection_name, UNINDEXED_POINTS_THRESHOLD)
    issue_id = f"UNINDEXED_FIELD/{collection_name}/color"

    client.query_points(collection_name, query=[0.1, 0.2, 0.3, 0.4], limit=3)
    assert issue_id not in _issues(client), "an unfiltered read reports nothing"

    color = models.Filter(must=[models.FieldCondition(key="color", match=models.MatchValue(value="red"))])
    hits = client.query_points(collection_name, query=[0.1, 0.2, 0.3, 0.4], query_filter=color, limit=3).points
    assert hits
    issue = _issues(client)[issue_id]
    assert issue["related_collection"] == collection_name
    action = issue["solution"]["immediate"]["action"]
    assert action["method"] == "PUT"
    assert action["uri"] == f"/collections/{collection_name}/index"
    assert action["body"] == {"field_name": "color", "field_schema": "keyword"}

    client.create_payload_index(collection_name, "color", models.PayloadSchemaType.KEYWORD, wait=True)
    assert issue_id not in _issues(client)

    client.count(collection_name, count_filter=models.Filter(must=[models.FieldCondition(key="rank", range=models.Range(gt=3))]))
    assert f"UNINDEXED_FIELD/{collection_name}/rank" in _issues(client)
    assert client.http.beta_api.clear_issues().result is True
    assert _issues(client) == {}


def test_quotas_round_trip_and_enforcement(server_factory):
    srv = server_factory()
    client = make_client(srv)
    status = client.http.quotas_api.get_quotas().result
    assert isinstance(status, models.QuotaStatus)
    assert status.config.enabled is False
    assert status.usage.disk_usage_percent is not None and 0 <= status.usage.disk_usage_percent <= 100
    assert status.usage.resident_memory_percent is not None
    assert status.peers is None

    with pytest.raises(UnexpectedResponse) as bad:
        client.http.quotas_api.update_quotas(quota_config=models.QuotaConfig(enabled=True, max_disk_usage_percent=0))
    assert bad.value.status_code == 400
    assert b"max_disk_usage_percent" in bad.value.content

    ok = models.QuotaConfig(enabled=True, max_disk_usage_percent=100, release_margin_percent=0)
    assert client.http.quotas_api.update_quotas(wait=True, quota_config=ok).result is True
    assert client.http.quotas_api.get_quotas().result.config == ok
    client.create_collection("q", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert("q", [models.PointStruct(id=1, vector=[1.0, 0.0]), models.PointStruct(id=2, vector=[0.0, 1.0])])

    full = models.QuotaConfig(enabled=True, max_disk_usage_percent=1)
    client.http.quotas_api.update_quotas(quota_config=full)
    with pytest.raises(UnexpectedResponse) as refused:
        client.upsert("q", [models.PointStruct(id=3, vector=[1.0, 1.0])])
    assert refused.value.status_code == 400
    assert b"max_disk_usage_percent" in refused.value.content
    client.delete("q", points_selector=models.PointIdsList(points=[2]))
    assert client.count("q").count == 1

    srv.stop()
    srv.start()
    client = make_client(srv)
    assert client.http.quotas_api.get_quotas().result.config == full


def test_cluster_telemetry_and_recover_on_a_single_node(client):
    telemetry = client.http.distributed_api.cluster_telemetry(details_level=2).result
    assert isinstance(telemetry, models.DistributedTelemetryData)
    assert telemetry.collections == {}
    assert telemetry.cluster is not None and telemetry.cluster.enabled is False and telemetry.cluster.peers == {}
    with pytest.raises(UnexpectedResponse) as err:
        client.http.distributed_api.recover_current_peer()
    assert err.value.status_code == 500
    assert b"standalone" in err.value.content
