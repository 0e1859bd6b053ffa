#!/usr/bin/env bash
# Upsert throughput through gRPC (official client, batches of 256, wait=true, 4 in parallel):
# one grape serve vs three grape serve processes in cluster mode with replication_factor 3.
S=${S:-target/release/grape}; B=${B:-target/release/grape-bench}
DS=${DS:?dataset directory, e.g. random-clustered-128-100k}
OUT=${OUT:-/tmp/grape-upsert}; rm -rf $OUT; mkdir -p $OUT
$S serve --storage-path $OUT/single --http-port 16601 --grpc-port 16602 --log-level warn > $OUT/single.log 2>&1 &
SP=$!
for i in $(seq 50); do curl -sf localhost:16601/healthz >/dev/null && break; sleep 0.2; done
echo "single: $($B load --grpc --grpc-url http://127.0.0.1:16602 --dataset $DS --duration 1s --concurrency 4 --json $OUT/single.json 2>&1 | grep uploaded)"
kill $SP; wait $SP 2>/dev/null
PIDS=()
for n in 1 2 3; do
  boot=""; [ $n -gt 1 ] && boot="--bootstrap http://127.0.0.1:17121"
  env GRAPE__CLUSTER__ENABLED=true GRAPE__CLUSTER__P2P__PORT=1712$n $S serve --host 127.0.0.1 --storage-path $OUT/node$n \
    --http-port 1710$n --grpc-port 1711$n --uri http://127.0.0.1:1712$n $boot --log-level warn > $OUT/node$n.log 2>&1 &
  PIDS+=($!)
  for i in $(seq 100); do curl -sf localhost:1710$n/healthz >/dev/null && break; sleep 0.2; done
done
sleep 3
curl -s localhost:17101/cluster | head -c 300; echo
echo "rf3: $($B load --grpc --grpc-url http://127.0.0.1:17111 --dataset $DS --duration 1s --concurrency 4 --replication-factor 3 --json $OUT/rf3.json 2>&1 | grep -E 'uploaded|error|Error' | head -3)"
curl -s localhost:17101/collections/bench/cluster | head -c 600; echo
for p in "${PIDS[@]}"; do kill $p; done; wait 2>/dev/null
