#!/usr/bin/env bash
# Upsert throughput through gRPC (official client, batches of 256, wait=true, 4 in parallel):
# one grape serve vs three grape serve processes in cluster mode with replication_factor 3, each with
# the servers' CPU per point (benches/upsert-cpu.sh does one of the two).
# usage: DS=<dataset dir, e.g. random-clustered-128-100k> [BIN=target/release] [OUT=/tmp/grape-upsert] benches/cluster-upsert.sh
BIN=${BIN:-target/release}
DS=${DS:?dataset directory, e.g. random-clustered-128-100k}
OUT=${OUT:-/tmp/grape-upsert}
here=$(dirname "$0")
echo "single: $(SINGLE=1 DS=$DS "$here/upsert-cpu.sh" "$BIN" "$OUT/single" | tr '\n' ' ')"
echo "rf3:    $(DS=$DS "$here/upsert-cpu.sh" "$BIN" "$OUT/rf3" | tr '\n' ' ')"
