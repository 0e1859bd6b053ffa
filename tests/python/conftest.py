"""Fixtures for the Qdrant-compatibility suite: a real `grape serve` process and the official client.

One server is shared by the whole session; tests that need their own process (restart/crash tests) use
the `server_factory` fixture. Every HTTP exchange the client makes is recorded; when a test fails, its
report gets the last few requests with the server's answers (status and body) and the tail of the
server's output.
"""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest

from harness import RECORDER, GrapeServer, make_client

# ---------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("grape-session")
    srv = GrapeServer(base / "storage", base / "logs")
    RECORDER.servers.append(srv)
    srv.start()
    yield srv
    code = srv.stop()
    if code not in (0, None, -signal.SIGTERM):
        print(f"\n[grape] session server exited with code {code}\n{srv.stderr_tail()}")


@pytest.fixture(scope="session")
def client(server):
    c = make_client(server)
    yield c
    c.close()


@pytest.fixture
def server_factory(tmp_path):
    """Starts extra servers (own storage and ports) for a test; stops them at its end."""
    started: list[GrapeServer] = []

    def start(storage: Path | None = None) -> GrapeServer:
        srv = GrapeServer(storage or tmp_path / f"storage-{len(started)}", tmp_path / "logs")
        started.append(srv)
        RECORDER.servers.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()
        if srv in RECORDER.servers:
            RECORDER.servers.remove(srv)


@pytest.fixture
def collection_name(client):
    """A fresh collection name for this test; the collection (if created) is dropped afterwards."""
    name = f"t_{uuid.uuid4().hex}"
    yield name
    try:
        client.delete_collection(name)
    except Exception:
        pass


@pytest.fixture(autouse=True)
def _reset_recorder():
    RECORDER.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("call", "setup"):
        rep.sections.append(("HTTP exchanges (oldest first, the failing one is usually last)", RECORDER.format()))
        for srv in RECORDER.servers:
            state = "running" if srv.alive() else "NOT RUNNING"
            rep.sections.append((f"grape server {srv.url} ({state}) output tail", srv.stderr_tail(3000)))
