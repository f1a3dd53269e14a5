#!/bin/sh
# Print nginx's `upstream workers` block for the given worker addresses
# (host:port or unix:/path), for the include in nginx.conf. Used by the local
# mode and by the nginx container, so both balance the same way.
#   render-upstream.sh 127.0.0.1:8001 127.0.0.1:8002 > upstream.conf
set -eu
[ "$#" -gt 0 ] || { echo "usage: $0 ADDRESS..." >&2; exit 2; }
echo "upstream workers {"
for address in "$@"; do
    # One failure takes a worker out for 2 s; nginx then retries it.
    echo "    server $address max_fails=1 fail_timeout=2s;"
done
# Idle connections kept open to the workers, per nginx process.
echo "    keepalive ${UPSTREAM_KEEPALIVE:-64};"
echo "}"
