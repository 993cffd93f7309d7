#!/usr/bin/env bash
# Rewrites the project's nginx config (nginx/nginx-8gpu.conf) for an nginx started on this machine, outside
# docker: the k-th upstream `server host:port` line points at 127.0.0.1:<k-th port>, `listen` becomes
# 127.0.0.1:<listen port>, and the pid, log and temp files go under DIR. Everything else is left as written,
# so `nginx -t` and the nginx pool test exercise the real file. Used by `make check-deploy` and
# test/integration/nginx-pool.test.ts.
#
#   scripts/nginx-loopback-conf.sh SRC DIR LISTEN_PORT UPSTREAM_PORT...   -> writes DIR/nginx.conf
set -euo pipefail

if [ "$#" -lt 4 ]; then
  echo "usage: $0 SRC DIR LISTEN_PORT UPSTREAM_PORT..." >&2
  exit 2
fi
src=$1 dir=$2 listen=$3
shift 3
mkdir -p "$dir/logs" "$dir/tmp"
dir=$(cd "$dir" && pwd)

awk -v dir="$dir" -v listen="$listen" -v ports="$*" '
  BEGIN { n = split(ports, port, " "); k = 0 }
  # The master runs as whoever starts it; pid and temp files under dir (root or not).
  /^[[:space:]]*user[[:space:]]/ { next }
  /^[[:space:]]*pid[[:space:]]/ { next }
  /^[[:space:]]*(error_log|access_log)[[:space:]]+\// { sub(/\/var\/log\/nginx\//, dir "/logs/") }
  /^[[:space:]]*listen[[:space:]]+[0-9]+[[:space:]]*;/ { sub(/listen[[:space:]]+[0-9]+/, "listen 127.0.0.1:" listen) }
  /^[[:space:]]*server[[:space:]]+[A-Za-z0-9._-]+:[0-9]+/ {
    k++
    if (k > n) { print "more upstream servers than ports given (" n ")" > "/dev/stderr"; exit 3 }
    sub(/server[[:space:]]+[A-Za-z0-9._-]+:[0-9]+/, "server 127.0.0.1:" port[k])
  }
  { print }
  /^http[[:space:]]*\{/ {
    print "    client_body_temp_path " dir "/tmp/body;"
    print "    proxy_temp_path " dir "/tmp/proxy;"
    print "    fastcgi_temp_path " dir "/tmp/fastcgi;"
    print "    uwsgi_temp_path " dir "/tmp/uwsgi;"
    print "    scgi_temp_path " dir "/tmp/scgi;"
  }
  END {
    if (k != n) { print "found " k " upstream servers, but " n " ports were given" > "/dev/stderr"; exit 3 }
    print "pid " dir "/nginx.pid;"
  }
' "$src" >"$dir/nginx.conf"

if grep -nE '/var/log/nginx|listen[[:space:]]+[0-9]+;' "$dir/nginx.conf" >&2; then
  echo "$0: the lines above were not rewritten" >&2
  exit 3
fi
