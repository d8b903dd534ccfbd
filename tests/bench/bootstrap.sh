#!/bin/sh
# Bootstrap data-channel benchmark on loopback, with dcmf-ue as the phones:
#   1. time from the first STUN check to the first byte of "GET /"
#      (median and p99 over FETCHES fetches, CONCURRENCY at a time);
#   2. dcmfd's resident memory with IDLE connected bootstrap sessions.
# Usage: tests/bench/bootstrap.sh [BUILD_DIR]   (default: build)
# Prints results as Markdown rows for docs/benchmarks.md.
set -eu
build=${1:-build}
fetches=${FETCHES:-2000}
concurrency=${CONCURRENCY:-20}
idle=${IDLE:-1000}
port=${PORT:-18950}
dcmfd="$build/dcmf/dcmfd"
ue="$build/dcmf/dcmf-ue"
api="http://127.0.0.1:$port"

"$dcmfd" --control "127.0.0.1:$port" --ports 30000-32999 --log-level warn ${DCMFD_ARGS:-} \
  >/tmp/dcmf-bench.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -sf --http2-prior-knowledge "$api/healthz" >/dev/null && break
  sleep 0.1
done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

"$ue" bench --api "$api" --count 100 --concurrency "$concurrency" >/dev/null
fetch=$("$ue" bench --api "$api" --count "$fetches" --concurrency "$concurrency")
echo "$fetch" >&2

before=$(rss_kib)
fifo=$(mktemp -u)
mkfifo "$fifo"
"$ue" idle --api "$api" --count "$idle" --seconds 600 >"$fifo" &
uepid=$!
read -r line <"$fifo"
sleep 1
after=$(rss_kib)
kill -INT $uepid
wait $uepid || true
rm -f "$fifo"
sleep 0.5
released=$(rss_kib)

median=$(echo "$fetch" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
p99=$(echo "$fetch" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
rate=$(echo "$fetch" | sed -n 's/.*(\([0-9.]*\)\/s).*/\1/p')
per=$(( (after - before) / idle ))
echo "| first STUN to first byte of GET / ($fetches fetches, $concurrency at a time) | median $median ms, p99 $p99 ms ($rate fetches/s) |"
echo "| dcmfd RSS: idle / with $idle connected bootstrap sessions / after release | $before KiB / $after KiB / $released KiB ($per KiB per session; $line) |"
