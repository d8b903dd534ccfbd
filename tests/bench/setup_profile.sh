#!/bin/sh
# Where dcmfd's CPU goes during bootstrap set-ups: perf records dcmfd's
# process tree (the control process and its media worker processes, with
# call graphs) while dcmf-ue runs FETCHES whole set-ups (context create,
# ICE, DTLS, SCTP, GET /, delete), CONCURRENCY at a time, then
# setup_profile.py sorts the samples into the parts of a set-up and
# prints them as Markdown rows, in µs of CPU per set-up.
#
# Usage: tests/bench/setup_profile.sh [BUILD_DIR]   (default: build-release)
# Needs perf (Debian: linux-perf) and the right to trace (root, or
# kernel.perf_event_paranoid <= 1). A release build profiles what runs in
# production; OpenSSL's own symbols are stripped in Debian, so its time
# is named by its exported entry points only.
# Environment: FETCHES (1000), CONCURRENCY (20), FREQ (samples/s per
# CPU, 1000), DCMFD_ARGS (default "--workers 1 --hello-rate 0
# --stun-rate 0": one worker, and no ClientHello limit to stall the
# run), PERF_DATA (keep the recording there; default: a temporary file).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build-release}
fetches=${FETCHES:-1000}
concurrency=${CONCURRENCY:-20}
freq=${FREQ:-1000}
port=${PORT:-18960}
api="http://127.0.0.1:$port"
tmp=$(mktemp -d)
data=${PERF_DATA:-$tmp/perf.data}

"$build/dcmf/dcmfd" --control "127.0.0.1:$port" --ports 30000-32999 --log-level warn \
  ${DCMFD_ARGS:---workers 1 --hello-rate 0 --stun-rate 0} >"$tmp/dcmfd.log" 2>&1 &
pid=$!
perfpid=""
cleanup() {
  [ -z "$perfpid" ] || kill -INT "$perfpid" 2>/dev/null || true
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 1 50); do
  curl -sf --http2-prior-knowledge "$api/healthz" >/dev/null && break
  sleep 0.1
done
# Warm-up: the workers' first sessions load code and fill caches.
"$build/dcmf/dcmf-ue" bench --api "$api" --count 100 --concurrency "$concurrency" >/dev/null

tree() {
  echo "$1"
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree "$c"; done
}
pids=$(tree $pid | paste -sd, -)
perf record -F "$freq" --call-graph dwarf,16384 -o "$data" -p "$pids" >/dev/null 2>&1 &
perfpid=$!
# perf attaches in the background; its file appears once it has.
for _ in $(seq 1 50); do [ -s "$data" ] && break; sleep 0.1; done
"$build/dcmf/dcmf-ue" bench --api "$api" --count "$fetches" --concurrency "$concurrency" >&2
kill -INT "$perfpid"
wait "$perfpid" || true
perfpid=""
perf script -i "$data" 2>/dev/null | python3 "$here/setup_profile.py" "$fetches" "$freq"
