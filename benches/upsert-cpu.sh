#!/usr/bin/env bash
# 3-node RF3 upload (gRPC, batch 256, 4 parallel) with per-process CPU over the upload; PERF=1 records perf.
# usage: benches/upsert-cpu.sh BIN_DIR OUT   (SINGLE=1: one node; DS=dataset dir; PERF=1 [PERFHZ, PERFG, PERFSECS]: perf record -a during the upload)
BIN=$1; OUT=$2; S=$BIN/grape; B=$BIN/grape-bench
DS=${DS:?dataset directory, e.g. random-clustered-128-100k}
rm -rf $OUT; mkdir -p $OUT
PIDS=()
if [ -n "$SINGLE" ]; then
  $S serve --storage-path $OUT/single --http-port 17101 --grpc-port 17111 --log-level warn > $OUT/single.log 2>&1 &
  PIDS+=($!); RF=1
  for i in $(seq 100); do curl -sf localhost:17101/healthz >/dev/null && break; sleep 0.2; done
else
  RF=3
  for n in 1 2 3; do
    boot=""; [ $n -gt 1 ] && boot="--bootstrap http://127.0.0.1:17121"
    env GRAPE__CLUSTER__ENABLED=true GRAPE__CLUSTER__P2P__PORT=1712$n $S serve --host 127.0.0.1 --storage-path $OUT/node$n \
      --http-port 1710$n --grpc-port 1711$n --uri http://127.0.0.1:1712$n $boot --log-level warn > $OUT/node$n.log 2>&1 &
    PIDS+=($!)
    for i in $(seq 100); do curl -sf localhost:1710$n/healthz >/dev/null && break; sleep 0.2; done
  done
  sleep 3
fi
ticks() { local t=0; for p in "$@"; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t+$1+$2)); done; echo $t; }
( while sleep 0.1; do echo "$(date +%s.%N) $(ticks ${PIDS[@]})"; done ) > $OUT/cpu.log 2>/dev/null &
SAMP=$!
if [ -n "$PERF" ]; then (sleep 0.7; perf record -F ${PERFHZ:-499} -a ${PERFG:--g} -o $OUT/perf.data -- sleep ${PERFSECS:-1.5} > /dev/null 2>&1) & fi
t0=$(date +%s.%N)
$B load --grpc --grpc-url http://127.0.0.1:17111 --dataset $DS --duration 1s --concurrency 4 --replication-factor $RF --json $OUT/load.json > $OUT/load.out 2>&1
kill $SAMP
up=$(grep -o "uploaded .* points in [0-9.]* s ([0-9]* points/s)" $OUT/load.out)
secs=$(echo "$up" | sed 's/.* in \([0-9.]*\) s.*/\1/')
n=$(echo "$up" | sed 's/uploaded \([0-9]*\) .*/\1/')
python3 - "$t0" "$secs" $OUT/cpu.log "$n" <<'PY'
import sys
t0=float(sys.argv[1]); secs=float(sys.argv[2]); n=int(sys.argv[4])
rows=[tuple(map(float,l.split())) for l in open(sys.argv[3]) if len(l.split())==2]
def at(t): return min(rows,key=lambda r:abs(r[0]-t))[1]
c=(at(t0+secs)-at(t0))/100.0
print(f"server CPU over the upload: {c:.2f} s in {secs:.2f} s = {c/secs*100:.0f}% of one core; {c/n*1e6:.1f} us per point")
PY
echo "$up"
for p in "${PIDS[@]}"; do kill $p; done; wait 2>/dev/null
