#!/bin/sh
# HTTP-proxy benchmark on loopback: GET / on open bootstrap channels
# (dcmf-ue bench --repeat), served three ways by the same dcmfd:
#   1. from the built-in repository;
#   2. through the proxy from nginx, warm connection pool, not cacheable;
#   3. through the proxy from nginx, cacheable (served from the cache).
# Usage: tests/bench/proxy.sh [BUILD_DIR]   Prints Markdown rows.
set -eu
build=${1:-build}
phones=${PHONES:-20}
repeat=${REPEAT:-200}
port=${PORT:-18960}
ngport=${NGPORT:-18961}
dcmfd="$build/dcmf/dcmfd"
ue="$build/dcmf/dcmf-ue"
api="http://127.0.0.1:$port"
tmp=$(mktemp -d)
mkdir -p "$tmp/www/nocache" "$tmp/www/cache"
cp bootstrap/www/index.html "$tmp/www/nocache/"
cp bootstrap/www/index.html "$tmp/www/cache/"
# nginx workers run as www-data: the tree must be readable to them
chmod -R a+rX "$tmp"
cat >"$tmp/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/b; proxy_temp_path $tmp/p;
  fastcgi_temp_path $tmp/f; uwsgi_temp_path $tmp/u; scgi_temp_path $tmp/s;
  server {
    listen 127.0.0.1:$ngport;
    root $tmp/www;
    location /nocache/ { add_header Cache-Control "no-store"; }
    location /cache/ { add_header Cache-Control "max-age=600"; }
  }
}
CONF
nginx -c "$tmp/nginx.conf" &
ngpid=$!
"$dcmfd" --control "127.0.0.1:$port" --ports 30000-32999 --log-level warn \
  >"$tmp/dcmfd.log" 2>&1 &
pid=$!
trap 'kill $pid $ngpid 2>/dev/null; wait $pid $ngpid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 1 50); do
  curl -sf --http2-prior-knowledge "$api/healthz" >/dev/null &&
    curl -sf -o /dev/null "http://127.0.0.1:$ngport/cache/index.html" && break
  sleep 0.1
done

row() {
  out=$("$ue" bench --api "$api" --count "$phones" --concurrency "$phones" \
        --repeat "$repeat" "$@" / | tail -1)
  echo "$out" >&2
  rate=$(echo "$out" | sed -n 's/.*: \([0-9]*\)\/s;.*/\1/p')
  median=$(echo "$out" | sed -n 's/.*median \([0-9.]*\) ms.*/\1/p')
  p99=$(echo "$out" | sed -n 's/.*p99 \([0-9.]*\) ms.*/\1/p')
  echo "$rate req/s, median $median ms, p99 $p99 ms"
}

# warm-up: connections to nginx, the cache entry, the code paths
"$ue" bench --api "$api" --count 5 --concurrency 5 --repeat 20 \
  --replace-url "http://127.0.0.1:$ngport/cache/" / >/dev/null
"$ue" bench --api "$api" --count 5 --concurrency 5 --repeat 20 \
  --replace-url "http://127.0.0.1:$ngport/nocache/" / >/dev/null
repo=$(row)
nocache=$(row --replace-url "http://127.0.0.1:$ngport/nocache/")
cache=$(row --replace-url "http://127.0.0.1:$ngport/cache/")
n=$((phones * repeat))
echo "| GET / from the built-in repository ($phones channels × $repeat requests) | $repo |"
echo "| GET / proxied to nginx, warm pool, not cacheable ($n requests) | $nocache |"
echo "| GET / proxied to nginx, served from the cache ($n requests) | $cache |"
