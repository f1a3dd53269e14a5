#!/bin/sh
# Print nginx's upstream blocks for the given worker addresses (host:port or
# unix:/path), for the include in nginx.conf. Used by the local mode and by
# the nginx container, so both balance the same way.
#   render-upstream.sh 127.0.0.1:8001 127.0.0.1:8002 > upstream.conf
set -eu
[ "$#" -gt 0 ] || { echo "usage: $0 ADDRESS..." >&2; exit 2; }
# A worker takes at most 64 requests at once (max_conns, counted over every
# nginx process: zone); when every worker is at its bound nginx answers 503
# with Retry-After at once, instead of queueing until proxy_read_timeout. One failure (refused, reset, 3 s without
# an answer: a hung worker) takes a worker out for 5 s; nginx then tries it
# again. A hung worker costs one request proxy_read_timeout (3 s, then retried
# elsewhere) per 8 s. Longer would keep a restarted worker idle longer, and
# while every worker is out nginx answers 503. least_conn: a request goes to
# the worker with the fewest in flight, not behind a heavy one by turn.
echo "upstream workers {"
echo "    zone workers 64k;"
echo "    least_conn;"
for address in "$@"; do
    echo "    server $address max_conns=64 max_fails=1 fail_timeout=5s;"
done
# Idle connections kept open to the workers, per nginx process.
echo "    keepalive ${UPSTREAM_KEEPALIVE:-64};"
echo "}"
# The same list as the running nginx holds it, for its status port (/upstreams):
# after a reload, it shows once the new configuration is the one answering.
echo "map \$server_port \$upstream_addresses {"
echo "    default \"$*\";"
echo "}"
