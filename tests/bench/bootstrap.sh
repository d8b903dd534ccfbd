#!/bin/sh
# Bootstrap data-channel benchmark on loopback, with dcmf-ue as the phones:
#   1. time from the first STUN check to the first byte of "GET /"
#      (median and p99 over FETCHES fetches, CONCURRENCY at a time);
#   2. dcmfd's CPU time (user + system) per fetch in that run, create
#      and delete included;
#   3. dcmfd's resident memory with IDLE connected bootstrap sessions,
#      and after their release: 0.5 s later and TRIM_WAIT (11) s more
#      later, when the memory trim has run (IDLE=0 skips this part).
# dcmfd's CPU and memory are those of the process started here and every
# live descendant: its media workers are child processes (--workers).
# Usage: tests/bench/bootstrap.sh [BUILD_DIR]   (default: build)
# More dcmfd options in DCMFD_ARGS (e.g. "--workers 1"); UE_CPUS pins
# the dcmf-ue runs with taskset (e.g. 1), leaving dcmfd unpinned.
# Prints results as Markdown rows for docs/benchmarks.md.
set -eu
build=${1:-build}
fetches=${FETCHES:-2000}
concurrency=${CONCURRENCY:-20}
idle=${IDLE:-1000}
port=${PORT:-18950}
dcmfd="$build/dcmf/dcmfd"
ue="$build/dcmf/dcmf-ue"
if [ -n "${UE_CPUS:-}" ]; then ue="taskset -c $UE_CPUS $ue"; fi
log=${DCMFD_LOG:-/tmp/dcmf-bench.log}
api="http://127.0.0.1:$port"

"$dcmfd" --control "127.0.0.1:$port" --ports 30000-32999 --log-level warn ${DCMFD_ARGS:-} \
  >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -sf --http2-prior-knowledge "$api/healthz" >/dev/null && break
  sleep 0.1
done

# The pid and its live descendants, one a line.
tree() {
  echo "$1"
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree "$c"; done
}
# VmRSS (KiB) and utime + stime (clock ticks) summed over the tree; a
# process that ends between listing and reading counts as 0.
rss_kib() {
  for p in $(tree $pid); do awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null; done |
    awk '{ s += $1 } END { print s + 0 }'
}
cpu_ticks() {
  for p in $(tree $pid); do cat "/proc/$p/stat" 2>/dev/null; done |
    sed 's/.*) //' | awk '{ s += $12 + $13 } END { print s + 0 }'
}
hz=$(getconf CLK_TCK)

$ue bench --api "$api" --count 100 --concurrency "$concurrency" >/dev/null
c0=$(cpu_ticks)
fetch=$($ue bench --api "$api" --count "$fetches" --concurrency "$concurrency")
c1=$(cpu_ticks)
echo "$fetch" >&2
median=$(echo "$fetch" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
p99=$(echo "$fetch" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
rate=$(echo "$fetch" | sed -n 's/.*(\([0-9.]*\)\/s).*/\1/p')
echo "| first STUN to first byte of GET / ($fetches fetches, $concurrency at a time) | median $median ms, p99 $p99 ms ($rate fetches/s) |"
echo "| dcmfd CPU per fetch (user + system; create and delete included) | $(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$fetches" 'BEGIN { printf "%.2f ms (%d ticks of 1/%d s)", t * 1000 / hz / n, t, hz }') |"
[ "$idle" -gt 0 ] || exit 0

before=$(rss_kib)
fifo=$(mktemp -u)
mkfifo "$fifo"
$ue idle --api "$api" --count "$idle" --seconds 600 >"$fifo" &
uepid=$!
read -r line <"$fifo"
sleep 1
after=$(rss_kib)
kill -INT $uepid
wait $uepid || true
rm -f "$fifo"
sleep 0.5
released=$(rss_kib)
# The processes give freed memory back once releases pause for
# --mem-trim-delay (1 s by default), or up to 10 times that after an
# earlier trim (README): read again once that has passed.
sleep "${TRIM_WAIT:-11}"
trimmed=$(rss_kib)

per=$(( (after - before) / idle ))
echo "| dcmfd RSS: idle / with $idle connected bootstrap sessions / after release, 0.5 s and ${TRIM_WAIT:-11} s more later | $before KiB / $after KiB / $released KiB / $trimmed KiB ($per KiB per session; $line) |"
