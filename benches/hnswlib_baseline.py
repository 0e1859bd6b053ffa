#!/usr/bin/env python3
"""hnswlib baseline for `grape-bench ann`: same dataset files, same M / ef_construct / ef list, same
report shape, so that both can be put side by side.

Queries are measured two ways:
  * "qps"       : one query per knn_query call, as a server answers them (includes the Python call);
  * "qps_batch" : all queries in one knn_query call on one thread (hnswlib's own C++ loop, no Python
                  per query) -- the stricter figure for comparisons.
Both report the best of --passes passes.

With --filter-ids FILE (the passing base ids, one per line, as `grape-bench ann --filter-ids-out` writes
them; repeatable, the index is built once) the queries are also run as filtered searches through
hnswlib's filter callback (`knn_query(..., filter=fn)`, the set's `__contains__`, called for the nodes
the search visits), and recall is measured against the exact filtered top-k computed here with numpy.

    python benches/hnswlib_baseline.py --dataset DIR --m 16 --ef-construct 100 \
        --ef 16,32,64,128,256 --k 10 --threads 1 [--filter-ids FILE ...] --json OUT
"""
import argparse
import importlib.metadata
import json
import time

import hnswlib
import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    return np.ascontiguousarray(rows.view(dtype) if dtype == np.float32 else rows)


def filtered_truth(base, queries, passing, k, space):
    """Exact top-k among the passing points (nearest first; ties by smaller id), in query chunks."""
    sub = base[passing]
    out = []
    for start in range(0, len(queries), 64):
        q = queries[start:start + 64]
        if space == "ip":
            scores = q @ sub.T
        else:
            scores = -(np.sum(q * q, axis=1)[:, None] - 2 * q @ sub.T + np.sum(sub * sub, axis=1)[None, :])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        out.append(passing[top])
    return np.concatenate(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construct", type=int, default=100)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="build threads")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--filter-ids", action="append", default=[],
                    help="file of passing base ids, one per line; repeatable (one report per file, "
                         "after the unfiltered one unless --no-unfiltered)")
    ap.add_argument("--no-unfiltered", action="store_true")
    ap.add_argument("--json", help="report file; with --filter-ids a JSON list of reports")
    args = ap.parse_args()

    manifest = json.load(open(f"{args.dataset}/manifest.json"))
    base = read_vecs(f"{args.dataset}/base.fvecs", np.float32)
    queries = read_vecs(f"{args.dataset}/query.fvecs", np.float32)
    truth = read_vecs(f"{args.dataset}/gt.ivecs", np.int32)[:, : args.k]
    # Cosine datasets are unit-normalised, so inner product ranks them the same way.
    space = {"cosine": "ip", "l2": "l2", "dot": "ip"}[manifest["metric"]]

    index = hnswlib.Index(space=space, dim=base.shape[1])
    index.init_index(max_elements=len(base), M=args.m, ef_construction=args.ef_construct, random_seed=1)
    index.set_num_threads(args.threads)
    started = time.perf_counter()
    index.add_items(base, np.arange(len(base)))
    build_s = time.perf_counter() - started
    version = importlib.metadata.version("hnswlib")
    print(f"hnswlib {version} build: {build_s:.2f} s "
          f"({args.threads} threads)")
    index.set_num_threads(1)

    runs = [] if args.no_unfiltered and args.filter_ids else [(None, None, truth)]
    for path in args.filter_ids:
        passing = np.loadtxt(path, dtype=np.int64, ndmin=1)
        runs.append((path, passing, filtered_truth(base, queries, passing, args.k, space)))
    reports = []
    for path, passing, run_truth in runs:
        accept, selectivity = None, None
        if path is not None:
            selectivity = len(passing) / len(base)
            accept = set(int(i) for i in passing).__contains__
            print(f"filter {path} passes {len(passing)} of {len(base)} points ({100 * selectivity:.3f}%)")
        rows = [measure(index, queries, run_truth, ef, args.k, args.passes, accept)
                for ef in [int(e) for e in args.ef.split(",")]]
        report = {"engine": "hnswlib", "version": version, "dataset": manifest["name"] + f"-{len(base)}",
                  "points": len(base), "m": args.m, "ef_construct": args.ef_construct, "k": args.k,
                  "threads": args.threads, "passes": args.passes, "rows": rows, "build_s": build_s}
        if path is not None:
            report["filter_ids"] = path
            report["selectivity"] = selectivity
        reports.append(report)
    if args.json:
        json.dump(reports if args.filter_ids else reports[0], open(args.json, "w"), indent=1)


def measure(index, queries, truth, ef, k, passes, accept):
    """One row: recall and the best of `passes` passes, one query per call and all in one call."""
    index.set_ef(ef)
    best_single, best_lat, best_batch = 0.0, None, 0.0
    for _ in range(passes):
        lat = []
        found = []
        t0 = time.perf_counter()
        for q in queries:
            t = time.perf_counter()
            labels, _ = index.knn_query(q.reshape(1, -1), k=k, filter=accept)
            lat.append(time.perf_counter() - t)
            found.append(labels[0])
        qps = len(queries) / (time.perf_counter() - t0)
        if qps > best_single:
            best_single, best_lat = qps, sorted(lat)
        t0 = time.perf_counter()
        index.knn_query(queries, k=k, num_threads=1, filter=accept)
        best_batch = max(best_batch, len(queries) / (time.perf_counter() - t0))
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
    row = {
        "ef": ef,
        "recall": hits / (len(queries) * k),
        "qps": best_single,
        "qps_batch": best_batch,
        "p50_ms": best_lat[len(best_lat) // 2] * 1e3,
        "p99_ms": best_lat[min(len(best_lat) - 1, int(len(best_lat) * 0.99))] * 1e3,
    }
    print(f"ef={ef:<4} recall@{k}={row['recall']:.4f} qps={row['qps']:>8.0f} "
          f"qps_batch={row['qps_batch']:>8.0f} p50={row['p50_ms']:.3f}ms p99={row['p99_ms']:.3f}ms")
    return row


if __name__ == "__main__":
    main()
