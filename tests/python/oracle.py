"""Oracles for the compatibility suite: numpy brute-force search with Qdrant's scoring conventions, a
Python model of stored points and payloads, and a filter evaluator with Qdrant's semantics.

Qdrant's conventions checked here:
- Cosine: stored vectors are normalised on write; score = cosine similarity (higher is better).
- Dot: score = dot product (higher is better).
- Euclid: score = L2 distance (lower is better, results ascending).
- Manhattan: score = L1 distance (lower is better, results ascending).
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, Iterable

import numpy as np
from qdrant_client import models

D = models.Distance
HIGHER_IS_BETTER = {D.COSINE: True, D.DOT: True, D.EUCLID: False, D.MANHATTAN: False}
ALL_DISTANCES = [D.COSINE, D.DOT, D.EUCLID, D.MANHATTAN]


def norm_id(pid: Any) -> Any:
    """Point ids as the server returns them: ints, or lowercase hyphenated UUID strings."""
    if isinstance(pid, str):
        return str(uuid.UUID(pid))
    return int(pid)


def id_sort_key(pid: Any):
    """Qdrant's point-id order: every integer id before every UUID, UUIDs by their 128-bit value."""
    pid = norm_id(pid)
    if isinstance(pid, int):
        return (0, pid)
    return (1, uuid.UUID(pid).int)


def stored_vector(distance, v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    if distance == D.COSINE:
        n = np.linalg.norm(v.astype(np.float64))
        return (v / np.float32(n)).astype(np.float32) if n > 0 else v
    return v


def scores(distance, stored: np.ndarray, query) -> np.ndarray:
    """Scores of every stored row (already in stored form) against `query`, in float64."""
    m = np.asarray(stored, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if distance == D.COSINE:
        n = np.linalg.norm(q)
        q = q / n if n > 0 else q
        return m @ q
    if distance == D.DOT:
        return m @ q
    if distance == D.EUCLID:
        return np.sqrt(((m - q) ** 2).sum(axis=1))
    if distance == D.MANHATTAN:
        return np.abs(m - q).sum(axis=1)
    raise ValueError(distance)


def ranked(distance, ids: list, stored: np.ndarray, query, exclude: Iterable = ()) -> list[tuple[Any, float]]:
    """All (id, score) pairs, best first, ties by id."""
    s = scores(distance, stored, query)
    excl = {norm_id(x) for x in exclude}
    pairs = [(norm_id(i), float(sc)) for i, sc in zip(ids, s) if norm_id(i) not in excl]
    sign = -1.0 if HIGHER_IS_BETTER[distance] else 1.0
    pairs.sort(key=lambda p: (sign * p[1], id_sort_key(p[0])))
    return pairs


def passes_threshold(distance, score: float, threshold: float | None) -> bool:
    if threshold is None:
        return True
    return score >= threshold if HIGHER_IS_BETTER[distance] else score <= threshold


def close(a: float, b: float, rtol: float = 1e-4) -> bool:
    return abs(a - b) <= rtol * max(1.0, abs(a), abs(b))


def assert_hits_match(hits, expected: list[tuple[Any, float]], all_scores: dict, distance, what: str = "") -> None:
    """Compares server hits with the oracle's expected (id, score) list.

    - same number of results;
    - the i-th score equals the oracle's i-th score (rel tol 1e-4);
    - every returned id's true score equals the score returned for it;
    - ids equal the oracle's, except where the oracle itself has a near-tie at that rank;
    - no duplicate ids.
    """
    got = [(norm_id(h.id), float(h.score)) for h in hits]
    ctx = f"{what}\n got: {got[:20]}\n expected: {expected[:20]}"
    assert len(got) == len(expected), f"number of hits {len(got)} != {len(expected)}; {ctx}"
    assert len({g[0] for g in got}) == len(got), f"duplicate ids in hits; {ctx}"
    for i, ((gid, gs), (eid, es)) in enumerate(zip(got, expected)):
        assert gid in all_scores, f"hit {i}: id {gid!r} is not an eligible point; {ctx}"
        true = all_scores[gid]
        assert close(gs, true), f"hit {i}: id {gid!r} returned score {gs} but its true score is {true}; {ctx}"
        assert close(gs, es), f"hit {i}: score {gs} != oracle score {es}; {ctx}"
        if gid != eid:
            assert close(true, es), f"hit {i}: id {gid!r} (score {true}) where oracle has {eid!r} ({es}); {ctx}"
    sign = -1.0 if HIGHER_IS_BETTER[distance] else 1.0
    for i in range(1, len(got)):
        assert sign * got[i - 1][1] <= sign * got[i][1] + 1e-4 * max(1.0, abs(got[i][1])), f"hits not sorted; {ctx}"


def recall(found_ids, true_ids) -> float:
    true = {norm_id(x) for x in true_ids}
    return len(true & {norm_id(x) for x in found_ids}) / max(1, len(true))


# ---------------------------------------------------------------------------------------------------
# Payload model


def set_payload(target: dict, update: dict, key: str | None = None) -> None:
    """Qdrant's set_payload: merge `update` into the object at dotted `key` (created if missing)."""
    obj = target
    if key:
        for part in key.split("."):
            slot = obj.get(part)
            if not isinstance(slot, dict):
                slot = {}
                obj[part] = slot
            obj = slot
    for k, v in update.items():
        obj[k] = copy.deepcopy(v)


def delete_key(target: dict, path: str) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        target.pop(head, None)
        return
    inner = target.get(head)
    if isinstance(inner, dict):
        delete_key(inner, rest)
    elif isinstance(inner, list):
        for item in inner:
            if isinstance(item, dict):
                delete_key(item, rest)


class Model:
    """What the collection should hold: id -> {"vector": ..., "payload": dict}."""

    def __init__(self, distance=None):
        self.distance = distance
        self.points: dict[Any, dict] = {}

    def upsert(self, pid, vector, payload: dict | None) -> None:
        if isinstance(vector, dict):
            vec = {
                k: (stored_vector(self.distance[k], v) if isinstance(self.distance, dict) else v)
                for k, v in vector.items()
            }
        else:
            vec = stored_vector(self.distance, vector) if self.distance is not None else np.asarray(vector, np.float32)
        self.points[norm_id(pid)] = {"vector": vec, "payload": copy.deepcopy(payload or {})}

    def upsert_struct(self, p: models.PointStruct) -> None:
        self.upsert(p.id, p.vector, p.payload)

    def delete(self, ids) -> None:
        for i in ids:
            self.points.pop(norm_id(i), None)

    def ids(self, flt: models.Filter | None = None) -> list:
        out = [i for i, p in self.points.items() if flt is None or matches(flt, i, p["payload"])]
        return sorted(out, key=id_sort_key)

    def select(self, points=None, flt=None) -> list:
        if points is not None:
            return [norm_id(i) for i in points if norm_id(i) in self.points]
        return self.ids(flt)

    def set_payload(self, payload, points=None, flt=None, key=None) -> None:
        for i in self.select(points, flt):
            set_payload(self.points[i]["payload"], payload, key)

    def overwrite_payload(self, payload, points=None, flt=None) -> None:
        for i in self.select(points, flt):
            self.points[i]["payload"] = copy.deepcopy(payload)

    def delete_payload(self, keys, points=None, flt=None) -> None:
        for i in self.select(points, flt):
            for k in keys:
                delete_key(self.points[i]["payload"], k)

    def clear_payload(self, points=None, flt=None) -> None:
        for i in self.select(points, flt):
            self.points[i]["payload"] = {}


# ---------------------------------------------------------------------------------------------------
# Filters


def values_at(payload: dict, key: str) -> list:
    """Values at a dotted path through nested objects; a final array contributes its elements."""
    cur = [payload]
    for part in key.split("."):
        nxt = []
        for v in cur:
            if isinstance(v, dict) and part in v:
                nxt.append(v[part])
        cur = nxt
    out = []
    for v in cur:
        if isinstance(v, list):
            out.extend(v)
        else:
            out.append(v)
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return False


def _field_matches(c: models.FieldCondition, payload: dict) -> bool:
    vals = values_at(payload, c.key)
    if c.match is not None:
        m = c.match
        if isinstance(m, models.MatchValue):
            return any(_same(v, m.value) for v in vals)
        if isinstance(m, models.MatchAny):
            return any(_same(v, a) for v in vals for a in m.any)
        if isinstance(m, models.MatchExcept):
            return any(not any(_same(v, a) for a in m.except_) for v in vals)
        raise NotImplementedError(m)
    if c.range is not None:
        r = c.range
        nums = [v for v in vals if _is_number(v)]

        def ok(v):
            return (
                (r.gt is None or v > r.gt)
                and (r.gte is None or v >= r.gte)
                and (r.lt is None or v < r.lt)
                and (r.lte is None or v <= r.lte)
            )

        return any(ok(v) for v in nums)
    raise NotImplementedError(c)


def _condition(c, pid, payload: dict) -> bool:
    if isinstance(c, models.Filter):
        return matches(c, pid, payload)
    if isinstance(c, models.FieldCondition):
        return _field_matches(c, payload)
    if isinstance(c, models.HasIdCondition):
        return norm_id(pid) in {norm_id(x) for x in c.has_id}
    if isinstance(c, models.IsEmptyCondition):
        return all(v is None for v in values_at(payload, c.is_empty.key))
    raise NotImplementedError(type(c))


def _as_list(x):
    if x is None:
        return None
    return x if isinstance(x, list) else [x]


def matches(f: models.Filter, pid, payload: dict) -> bool:
    must = _as_list(f.must)
    should = _as_list(f.should)
    must_not = _as_list(f.must_not)
    if must and not all(_condition(c, pid, payload) for c in must):
        return False
    if should and not any(_condition(c, pid, payload) for c in should):
        return False
    if must_not and any(_condition(c, pid, payload) for c in must_not):
        return False
    return True


# ---------------------------------------------------------------------------------------------------
# Data generation

CATS = ["red", "green", "blue"]
TAGS = ["a", "b", "c", "d", "e"]


def random_payload(rng: np.random.Generator, i: int) -> dict:
    p = {
        "cat": CATS[int(rng.integers(0, len(CATS)))],
        "n": int(rng.integers(0, 100)),
        "price": round(float(rng.uniform(0, 50)), 3),
        "tags": sorted({TAGS[int(t)] for t in rng.integers(0, len(TAGS), size=int(rng.integers(0, 4)))}),
        "a": {"b": int(rng.integers(0, 5)), "name": f"item-{i}"},
        "flag": bool(rng.integers(0, 2)),
    }
    r = int(rng.integers(0, 4))
    if r == 0:
        p["opt"] = None
    elif r == 1:
        p["opt"] = []
    elif r == 2:
        p["opt"] = int(rng.integers(0, 10))
    # r == 3: no "opt" key at all
    return p


def random_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.standard_normal((n, dim)).astype(np.float32)


def as_list(v) -> list[float]:
    return np.asarray(v, dtype=np.float32).tolist()


def vectors_equal(got, want, rtol: float = 1e-5) -> bool:
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    return g.shape == w.shape and bool(np.allclose(g, w, rtol=rtol, atol=1e-6))
