"""Property-based tests of the whole REST API from the OpenAPI document the server serves.

Schemathesis reads `GET /openapi.json` (generated from Grape's Rust types), generates requests for every
operation and checks that none answers 5xx and that every answer matches the documented schema (the
envelope `{result, status, time}` for 200, the error body for 4xx). Every request goes to one collection
with known data, so generated filters, ids and vectors reach real points; the data is restored before
each operation. Hypothesis is derandomized, so a run is reproducible.

Schemathesis' pytest loader (`schemathesis.pytest.from_fixture`) does not run under pytest 9 (4.32.5 sets
`node._nodeid`, which pytest 9 no longer has), so the operations are driven through its Python API
(`APIOperation.as_strategy`) inside one test that reports every failing operation at the end.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

COLLECTION = "fuzzed"
DIM = 4
POINTS = 24


def _call(server, method: str, path: str, body: dict | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _seed(server) -> None:
    """The collection (created unless it exists), points 0..POINTS with keyword, integer, bool and array
    payloads (written again, undoing generated writes) and a keyword index."""
    # Generated quota configurations may enforce a limit the disk already exceeds: lift it first.
    assert _call(server, "PUT", "/quotas", {"enabled": False}) == 200
    _call(server, "PUT", f"/collections/{COLLECTION}", {"vectors": {"size": DIM, "distance": "Cosine"}})
    points = [
        {
            "id": i,
            "vector": [float((i * 7 + k) % 11) + 0.5 for k in range(DIM)],
            "payload": {
                "city": ["Berlin", "Paris", "Rome"][i % 3],
                "n": i,
                "ok": i % 2 == 0,
                "tags": ["a", "b"][: i % 3],
            },
        }
        for i in range(POINTS)
    ]
    assert _call(server, "PUT", f"/collections/{COLLECTION}/points?wait=true", {"points": points}) == 200
    index = {"field_name": "city", "field_schema": "keyword"}
    assert _call(server, "PUT", f"/collections/{COLLECTION}/index?wait=true", index) == 200


# Operations not run, and why.
EXCLUDED = {
    # Deleting the collection would leave every later operation a 404 to test.
    "delete_collection",
    # A recovery location is fetched (http, https) or read (file://): generated locations must not make
    # the server reach other hosts or read arbitrary files. Recovery is covered by test_snapshots.py.
    "recover_from_snapshot",
    # A single node answers 500, as Qdrant in standalone mode (test_endpoints.py checks it).
    "recover_current_peer",
}
EXAMPLES = {GenerationMode.POSITIVE: 15, GenerationMode.NEGATIVE: 4}


def _run(operation, mode: GenerationMode) -> int:
    """Runs the checks on generated requests; returns how many were sent."""
    sent = 0
    fixed = {"collection": COLLECTION} if "{collection}" in operation.path else None
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        nonlocal sent
        sent += 1
        case.call_and_validate(checks=[not_a_server_error, response_schema_conformance], timeout=30)

    try:
        check()
    except Unsatisfiable:
        # Nothing of the operation can be made invalid (no parameters, no body): no negative case.
        if mode is not GenerationMode.NEGATIVE:
            raise
    return sent


def test_every_operation(server):
    """Every documented operation with schema-valid (positive) and invalid (negative) requests."""
    _seed(server)
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    failures, ran, sent = [], 0, 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.definition.raw.get("operationId") in EXCLUDED:
            continue
        for mode in EXAMPLES:
            _seed(server)  # undo the deletes and payload writes of the previous operation
            ran += 1
            try:
                sent += _run(operation, mode)
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                failures.append(f"{operation.label} ({mode.value}): {e}")
    _seed(server)
    assert ran > 100 and sent > 400, (ran, sent)
    print(f"{ran} operation runs, {sent} requests")
    assert not failures, f"{len(failures)} failing operation(s):\n\n" + "\n\n".join(failures)
