"""Aliases: create, rename, delete, atomic switch, and reads/writes through an alias."""

import uuid

import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse


def _aliases(client, names):
    return {(a.alias_name, a.collection_name) for a in client.get_aliases().aliases if a.alias_name in names}


def _make(client, name, points):
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID))
    client.upsert(name, points=[models.PointStruct(id=i, vector=v, payload={"c": name}) for i, v in points], wait=True)


@pytest.fixture
def two_collections(client):
    a, b = f"t_{uuid.uuid4().hex}", f"t_{uuid.uuid4().hex}"
    _make(client, a, [(1, [0.0, 0.0]), (2, [1.0, 1.0])])
    _make(client, b, [(10, [0.0, 0.1]), (11, [5.0, 5.0]), (12, [9.0, 9.0])])
    yield a, b
    for n in (a, b):
        try:
            client.delete_collection(n)
        except Exception:
            pass


def test_alias_lifecycle(client, two_collections):
    col_a, col_b = two_collections
    al1, al2 = f"al_{uuid.uuid4().hex}", f"al_{uuid.uuid4().hex}"

    assert (
        client.update_collection_aliases(
            [models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=col_a, alias_name=al1))]
        )
        is True
    )
    assert _aliases(client, {al1, al2}) == {(al1, col_a)}
    assert {(a.alias_name, a.collection_name) for a in client.get_collection_aliases(col_a).aliases} == {(al1, col_a)}
    assert client.get_collection_aliases(col_b).aliases == []

    # reads through the alias
    hits = client.query_points(al1, query=[0.0, 0.0], limit=5).points
    assert [h.id for h in hits] == [1, 2]
    assert hits[0].payload == {"c": col_a}
    assert [r.id for r in client.retrieve(al1, ids=[2])] == [2]
    assert client.count(al1).count == 2
    # a write through the alias lands in the collection
    client.upsert(al1, points=[models.PointStruct(id=3, vector=[2.0, 2.0], payload={"c": "via-alias"})], wait=True)
    got = client.retrieve(col_a, ids=[3])
    assert len(got) == 1 and got[0].payload == {"c": "via-alias"}

    # rename
    client.update_collection_aliases(
        [models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name=al1, new_alias_name=al2))]
    )
    assert _aliases(client, {al1, al2}) == {(al2, col_a)}
    assert client.count(al2).count == 3

    # atomic switch to the other collection: delete + create in one request
    client.update_collection_aliases(
        [
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=al2)),
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=col_b, alias_name=al2)),
        ]
    )
    assert _aliases(client, {al1, al2}) == {(al2, col_b)}
    hits = client.query_points(al2, query=[0.0, 0.0], limit=2).points
    assert [h.id for h in hits] == [10, 11]

    # delete
    client.update_collection_aliases([models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=al2))])
    assert _aliases(client, {al1, al2}) == set()
    with pytest.raises(UnexpectedResponse) as ei:
        client.query_points(al2, query=[0.0, 0.0], limit=2)
    assert ei.value.status_code == 404
    # the collections themselves are untouched
    assert client.count(col_a).count == 3 and client.count(col_b).count == 3


def test_deleting_collection_drops_its_aliases(client, two_collections):
    col_a, _ = two_collections
    al = f"al_{uuid.uuid4().hex}"
    client.update_collection_aliases(
        [models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=col_a, alias_name=al))]
    )
    client.delete_collection(col_a)
    assert _aliases(client, {al}) == set()
