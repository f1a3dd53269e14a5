#!/bin/sh
# Print nginx's `upstream workers` block for the given worker addresses
# (host:port or unix:/path), for the include in nginx.conf. Used by the local
# mode and by the nginx container, so both balance the same way.
#   render-upstream.sh 127.0.0.1:8001 127.0.0.1:8002 > upstream.conf
set -eu
[ "$#" -gt 0 ] || { echo "usage: $0 ADDRESS..." >&2; exit 2; }
echo "upstream workers {"
for address in "$@"; do
    # One failure takes a worker out for 5 s; nginx then tries it again. A
    # hung worker (stopped, stuck) costs one request proxy_read_timeout (3 s,
    # then retried elsewhere) per 8 s; 2 s made that one request in 5 s.
    # Longer would keep a restarted worker idle longer, and while every
    # worker is out nginx answers 502.
    echo "    server $address max_fails=1 fail_timeout=5s;"
done
# Idle connections kept open to the workers, per nginx process.
echo "    keepalive ${UPSTREAM_KEEPALIVE:-64};"
echo "}"
