"""A real three-process Grape cluster on the shared fault harness (`netns-cluster.sh`: network
namespaces when the machine allows, loopback addresses otherwise), driven by the official client.

The harness is found through `GRAPE_CLUSTER_HARNESS`, else `<repo>/../shared/cluster/netns-cluster.sh`,
else `/work/shared/cluster/netns-cluster.sh`; the tests are skipped, saying so, when none exists.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from harness import REPO, grape_bin

P2P_PORT = 6335
HTTP_PORT = 6333


def harness_path() -> Path | None:
    candidates = [
        os.environ.get("GRAPE_CLUSTER_HARNESS"),
        REPO.parent / "shared" / "cluster" / "netns-cluster.sh",
        Path("/work/shared/cluster/netns-cluster.sh"),
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


class Cluster:
    def __init__(self, script: Path, workdir: Path, size: int):
        self.script = script
        self.workdir = workdir
        self.size = size
        self.env = dict(os.environ, GV_CLUSTER_NAME="grapet", GV_CLUSTER_DIR=str(workdir / "harness"))
        self.addrs: dict[str, str] = {}

    def sh(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(
            ["bash", str(self.script), *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"harness {args}: {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r.stdout

    def up(self) -> None:
        self.sh("down", check=False)
        self.sh("up", str(self.size))
        for line in self.sh("env").splitlines():
            # GV_NODE1_ADDR=10.77.0.11 (or 127.0.77.11 in loopback mode)
            key, _, value = line.partition("=")
            if key.startswith("GV_NODE") and key.endswith("_ADDR"):
                self.addrs["node" + key[len("GV_NODE") : -len("_ADDR")]] = value.strip("'\"")
        assert len(self.addrs) == self.size, self.addrs

    def start(self, node: str, bootstrap: str | None) -> None:
        addr = self.addrs[node]
        storage = self.workdir / node
        storage.mkdir(parents=True, exist_ok=True)
        cmd = [
            "env",
            f"GRAPE__CLUSTER__P2P__PORT={P2P_PORT}",
            "GRAPE__CLUSTER__ENABLED=true",
            str(grape_bin()),
            "serve",
            "--host",
            addr,
            "--storage-path",
            str(storage),
            "--uri",
            f"http://{addr}:{P2P_PORT}",
        ]
        if bootstrap:
            cmd += ["--bootstrap", f"http://{self.addrs[bootstrap]}:{P2P_PORT}"]
        self.sh("run", node, *cmd)
        self.sh("wait-tcp", node, str(HTTP_PORT))

    def client(self, node: str) -> QdrantClient:
        return QdrantClient(url=f"http://{self.addrs[node]}:{HTTP_PORT}", timeout=30)

    def down(self) -> None:
        self.sh("down", check=False)


@pytest.fixture
def cluster3(tmp_path):
    script = harness_path()
    if script is None:
        pytest.skip("the cluster fault harness netns-cluster.sh is not available")
    c = Cluster(script, tmp_path, 3)
    c.up()
    try:
        c.start("node1", None)
        for n in ("node2", "node3"):
            c.start(n, "node1")
        wait_for(lambda: peers_known(c) == 3, "every node to know all three peers")
        yield c
    finally:
        c.down()


def peers_known(c: Cluster) -> int:
    try:
        import urllib.request, json

        with urllib.request.urlopen(f"http://{c.addrs['node2']}:{HTTP_PORT}/cluster", timeout=2) as r:
            return len(json.load(r)["result"]["peers"])
    except Exception:
        return 0


def wait_for(cond, what: str, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_cluster_status_and_placement_through_the_client(cluster3):
    client = cluster3.client("node1")
    client.create_collection(
        "c",
        vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
        shard_number=3,
        replication_factor=2,
    )
    info = cluster3.client("node3").get_collection("c")
    assert info.config.params.shard_number == 3
    assert info.config.params.replication_factor == 2
    import json, urllib.request

    with urllib.request.urlopen(f"http://{cluster3.addrs['node2']}:{HTTP_PORT}/collections/c/cluster") as r:
        shards = json.load(r)["result"]
    assert shards["shard_count"] == 3
    # Every shard has two replicas, on two different nodes.
    assert len(shards["local_shards"]) + len(shards["remote_shards"]) == 6
    # Prometheus: every node reports the cluster; together they hold the six replicas, and exactly one
    # leads the metadata group.
    def cluster_figures() -> list[dict[str, float]]:
        figures = []
        for node in ("node1", "node2", "node3"):
            with urllib.request.urlopen(f"http://{cluster3.addrs[node]}:{HTTP_PORT}/metrics") as r:
                text = r.read().decode()
            figures.append(
                {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if l.startswith("grape_cluster_")}
            )
        return figures

    for values in cluster_figures():
        assert values["grape_cluster_enabled"] == 1
        assert values["grape_cluster_peers"] == 3
        assert values["grape_cluster_is_voter"] == 1
    wait_for(
        lambda: sum(f["grape_cluster_shard_replicas"] for f in cluster_figures()) == 6
        and sum(f["grape_cluster_is_leader"] for f in cluster_figures()) == 1,
        "metrics to show six replicas and one metadata leader",
    )


def test_kill_9_during_quorum_writes_loses_no_acknowledged_write(cluster3):
    """kill -9 one node while another writes with wait=true: every acknowledged point is readable
    afterwards from every node, the killed one included once restarted."""
    setup = cluster3.client("node1")
    setup.create_collection(
        "w",
        vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID),
        shard_number=2,
        replication_factor=3,
    )
    wait_for(lambda: all(_has(cluster3.client(n), "w") for n in cluster3.addrs), "the collection on every node")
    writer = cluster3.client("node2")
    acked: list[int] = []
    failed: list[str] = []
    stop = threading.Event()

    def write():
        i = 0
        while not stop.is_set():
            try:
                writer.upsert(
                    "w",
                    points=[models.PointStruct(id=i, vector=[float(i), 1.0, 0.0, 0.0], payload={"i": i})],
                    wait=True,
                )
                acked.append(i)
            except Exception as e:  # refused while the cluster elects: not acknowledged, so not counted
                failed.append(str(e)[:200])
            i += 1

    t = threading.Thread(target=write)
    t.start()
    time.sleep(1.5)
    cluster3.sh("kill", "node1")  # SIGKILL: the metadata group's first leader, a replica of every shard
    killed_at = len(acked)
    time.sleep(2.0)
    stop.set()
    t.join(timeout=60)
    assert len(acked) > killed_at, f"no write was acknowledged after the kill (failures: {failed[-3:]})"
    print(f"acknowledged {len(acked)} writes ({len(acked) - killed_at} after the kill), {len(failed)} refused")

    cluster3.start("node1", None)  # restarted on its data: rejoins as a member and catches up
    expected = sorted(acked)
    for node in ("node1", "node2", "node3"):
        c = cluster3.client(node)

        def has_all():
            try:
                got = c.retrieve("w", ids=expected, with_payload=True)
            except Exception:
                return False
            return sorted(p.id for p in got) == expected

        wait_for(has_all, f"{node} to return every acknowledged point", timeout=60)
        got = {p.id: p.payload for p in c.retrieve("w", ids=expected, with_payload=True)}
        assert all(got[i] == {"i": i} for i in expected)


def _has(client: QdrantClient, name: str) -> bool:
    try:
        return client.collection_exists(name)
    except Exception:
        return False


def test_replicate_and_drop_a_replica_through_the_official_client(cluster3):
    client = cluster3.client("node2")
    client.create_collection(
        "r", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT), shard_number=1, replication_factor=1
    )
    client.upsert("r", points=[models.PointStruct(id=i, vector=[1.0, float(i), 0.0, 0.0]) for i in range(50)], wait=True)
    api = client.http.distributed_api
    info = api.collection_cluster_info("r").result
    holder = (info.local_shards and info.peer_id) or info.remote_shards[0].peer_id
    peers = [int(p) for p in api.cluster_status().result.peers]
    target = next(p for p in peers if p != holder)
    ok = api.update_collection_cluster(
        "r",
        cluster_operations=models.ReplicateShardOperation(
            replicate_shard=models.ReplicateShard(shard_id=0, from_peer_id=holder, to_peer_id=target)
        ),
    ).result
    assert ok is True

    def replicas() -> int:
        i = api.collection_cluster_info("r").result
        return len(i.local_shards) + len(i.remote_shards)

    wait_for(lambda: replicas() == 2, "the second replica")
    # Dropping the original leaves the copy, which has every point.
    api.update_collection_cluster(
        "r", cluster_operations=models.DropReplicaOperation(drop_replica=models.Replica(shard_id=0, peer_id=holder))
    )
    wait_for(lambda: replicas() == 1, "the replica to be dropped")
    for node in ("node1", "node2", "node3"):
        wait_for(lambda: cluster3.client(node).count("r").count == 50, f"50 points through {node}")
    # The last replica cannot be dropped.
    with pytest.raises(Exception) as e:
        api.update_collection_cluster(
            "r", cluster_operations=models.DropReplicaOperation(drop_replica=models.Replica(shard_id=0, peer_id=target))
        )
    assert "last replica" in str(e.value)


def test_cluster_operations_on_a_single_node_say_distributed_mode_is_off(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    with pytest.raises(Exception) as e:
        client.http.distributed_api.update_collection_cluster(
            collection_name,
            cluster_operations=models.DropReplicaOperation(drop_replica=models.Replica(shard_id=0, peer_id=1)),
        )
    assert "Distributed mode disabled" in str(e.value)
