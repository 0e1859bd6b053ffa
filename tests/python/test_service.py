"""Service endpoints: version info and health probes."""

import urllib.request

import pytest


def test_info_returns_version(client):
    info = client.info()
    assert info.version, f"GET / returned no version: {info!r}"
    parts = info.version.split(".")
    assert len(parts) >= 2 and all(p.isdigit() for p in parts[:2]), f"version {info.version!r} is not x.y[.z]"
    assert info.title, "GET / returned no title"


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
def test_health_probes(server, path):
    with urllib.request.urlopen(server.url + path, timeout=10) as r:
        assert r.status == 200, f"GET {path} -> {r.status}"
        r.read()
