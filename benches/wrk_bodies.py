#!/usr/bin/env python3
"""Query bodies for benches/wrk-query.lua: one Qdrant `points/query` JSON per line, from a dataset's
query.fvecs.

    python benches/wrk_bodies.py DATASET_DIR --ef 64 --limit 10 > bodies.txt
"""
import argparse
import json

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("dataset")
ap.add_argument("--ef", type=int, default=64)
ap.add_argument("--limit", type=int, default=10)
args = ap.parse_args()
raw = np.fromfile(f"{args.dataset}/query.fvecs", dtype=np.int32)
dim = int(raw[0])
queries = raw.reshape(-1, dim + 1)[:, 1:].view(np.float32)
for q in queries:
    body = {"query": [float(x) for x in q], "limit": args.limit, "params": {"hnsw_ef": args.ef}}
    print(json.dumps(body))
