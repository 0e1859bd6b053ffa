#!/usr/bin/env python3
"""Puts a grape-bench JSON and an hnswlib_baseline.py JSON side by side: QPS at equal recall.

QPS at a target recall is read off each engine's ef curve by linear interpolation between the two
rows that bracket the target (None when the curve never reaches it).

    python benches/compare.py GRAPE.json HNSWLIB.json [--targets 0.95,0.99]
"""
import argparse
import json


def qps_at(rows, target, key="qps"):
    rows = sorted(rows, key=lambda r: r["recall"])
    for lo, hi in zip(rows, rows[1:]):
        if lo["recall"] <= target <= hi["recall"]:
            if hi["recall"] == lo["recall"]:
                return max(lo[key], hi[key])
            t = (target - lo["recall"]) / (hi["recall"] - lo["recall"])
            return lo[key] + t * (hi[key] - lo[key])
    if rows and rows[0]["recall"] >= target:
        return max(r[key] for r in rows)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("grape")
    ap.add_argument("hnswlib")
    ap.add_argument("--targets", default="0.95,0.99")
    args = ap.parse_args()
    g, h = json.load(open(args.grape)), json.load(open(args.hnswlib))
    print(f"dataset {g['dataset']}  build: grape {g['build_s']:.1f} s, hnswlib {h['build_s']:.1f} s")
    for target in [float(t) for t in args.targets.split(",")]:
        gq = qps_at(g["rows"], target)
        parts = [f"recall {target}: grape {gq:.0f}" if gq else f"recall {target}: grape n/a"]
        for key in ("qps", "qps_batch"):
            hq = qps_at(h["rows"], target, key)
            if hq and gq:
                parts.append(f"hnswlib[{key}] {hq:.0f} ({gq / hq:.2f}x)")
        print("  " + ", ".join(parts))


if __name__ == "__main__":
    main()
