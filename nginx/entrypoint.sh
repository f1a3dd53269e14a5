#!/bin/sh
# Start nginx with the upstream list made from the worker containers' addresses.
#
# Compose gives every replica of the `worker` service an address under that
# one DNS name; nginx (open source, 1.22) resolves upstream names only when it
# starts. So this script resolves them itself, writes upstream.conf, and keeps
# watching: when the set of addresses changes (a worker scaled, recreated or
# restarted elsewhere), it rewrites the list and reloads nginx gracefully.
#
# With WORKER_SOCKETS=DIR (the compose stack), the workers are the unix
# sockets in DIR, a volume they share with nginx (app/server.py: one socket
# per container, removed when it drains), and the list follows that directory.
#
# Env: WORKER_HOST (worker), WORKER_PORT (8000), WORKER_SOCKETS (unset: by
# DNS), WORKERS (how many to wait for at start, default 1),
# NGINX_WORKER_PROCESSES (auto: one per core), NGINX_LISTEN_ADDR and
# NGINX_STATUS_ADDR (the addresses :9000 and :9001 bind; unset: all of the
# container's, right in its own network namespace, not on the host's),
# NGINX_RUN_DIR (/tmp/nginx, a tmpfs: the root file system is read-only),
# NGINX_EXTRA_ROUTE (one more public path, for the load test's Rust peer: /predict).
set -eu
WORKER_HOST="${WORKER_HOST:-worker}"
WORKER_PORT="${WORKER_PORT:-8000}"
WORKER_SOCKETS="${WORKER_SOCKETS:-}"
WORKERS="${WORKERS:-1}"
RUN_DIR="${NGINX_RUN_DIR:-/tmp/nginx}"
CONF=/etc/reviewrating

resolve() {
    if [ -n "$WORKER_SOCKETS" ]; then
        for s in "$WORKER_SOCKETS"/*.sock; do [ -S "$s" ] && echo "unix:$s"; done | sort | tr '\n' ' '
    else
        getent ahostsv4 "$WORKER_HOST" | awk -v port="$WORKER_PORT" '{ print $1 ":" port }' | sort -u | tr '\n' ' '
    fi
}

render() {
    # shellcheck disable=SC2086
    "$CONF/render-upstream.sh" $1 > "$RUN_DIR/upstream.conf.new"
    mv "$RUN_DIR/upstream.conf.new" "$RUN_DIR/upstream.conf"
}

mkdir -p "$RUN_DIR/tmp"
EXTRA_ROUTE="${NGINX_EXTRA_ROUTE:-}"
echo "$EXTRA_ROUTE" | grep -qE '^(/[A-Za-z0-9._-]+)*$' ||
    { echo "nginx-entrypoint: NGINX_EXTRA_ROUTE must be a path like /predict, not '$EXTRA_ROUTE'" >&2; exit 1; }
sed -e "s#^\( *\)/inferreview 1;#\1/inferreview 1;${EXTRA_ROUTE:+ $EXTRA_ROUTE 1;}#" \
    -e "s/^worker_processes .*;/worker_processes ${NGINX_WORKER_PROCESSES:-auto};/" \
    -e "s/^\( *listen \)9000\b/\1${NGINX_LISTEN_ADDR:+$NGINX_LISTEN_ADDR:}9000/" \
    -e "s/^\( *listen \)9001\b/\1${NGINX_STATUS_ADDR:+$NGINX_STATUS_ADDR:}9001/" \
    "$CONF/nginx.conf" > "$RUN_DIR/nginx.conf"

waited=0
addresses="$(resolve)"
while [ "$(echo $addresses | wc -w)" -lt "$WORKERS" ] && [ "$waited" -lt 60 ]; do
    sleep 1; waited=$((waited + 1)); addresses="$(resolve)"
done
[ -n "$addresses" ] || { echo "nginx-entrypoint: no worker at '${WORKER_SOCKETS:-$WORKER_HOST}'" >&2; exit 1; }
echo "nginx-entrypoint: workers $addresses" >&2
render "$addresses"

# Upstream health for /metrics on the status port (nginx.conf, 9001): the
# workers in nginx's running configuration and whether each answered /readyz
# at the last probe (every 10 s, and at once after each reload). Written only
# once a reload has taken effect, so `make rollout` (docker/rollout.sh) reads
# here when nginx routes to a new worker.
probe() {
    mkdir -p "$RUN_DIR/status"
    {
        echo "# HELP nginx_upstream_workers Workers in nginx's upstream list."
        echo "# TYPE nginx_upstream_workers gauge"
        echo "nginx_upstream_workers $(echo $1 | wc -w)"
        echo "# HELP nginx_upstream_up 1 if the worker answered /readyz with 200 at the last probe."
        echo "# TYPE nginx_upstream_up gauge"
        for address in $1; do
            case "$address" in
                unix:*) via="--unix-socket ${address#unix:} http://worker" ;;
                *) via="http://$address" ;;
            esac
            # shellcheck disable=SC2086
            if curl -fsS -o /dev/null -m 2 $via/readyz 2>/dev/null; then up=1; else up=0; fi
            echo "nginx_upstream_up{address=\"$address\"} $up"
        done
    } > "$RUN_DIR/status/metrics.new"
    mv "$RUN_DIR/status/metrics.new" "$RUN_DIR/status/metrics"
}

# The addresses the running nginx routes to, as its status port says.
serving() {
    curl -fsS -m 2 http://127.0.0.1:9001/upstreams 2>/dev/null | tr ' ' '\n' | sed 's/:[0-9]*$//' | sort -u | tr '\n' ' '
}

reload_to() {  # reload_to ADDRESSES: until nginx's running configuration has them (<= 10 s)
    render "$1" && run_nginx -s reload || return 1
    tries=0
    while [ "$(serving)" != "$1" ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 100 ] || { echo "nginx-entrypoint: the reload did not take effect" >&2; return 1; }
        sleep 0.1
    done
}

run_nginx() { /usr/sbin/nginx -p "$RUN_DIR/" -c "$RUN_DIR/nginx.conf" -e stderr "$@"; }
run_nginx -t -q

probe "$addresses"
(
    current="$addresses"
    ticks=0
    while sleep 2; do
        ticks=$((ticks + 1))
        [ $((ticks % 5)) -ne 0 ] || probe "$current"
        latest="$(resolve)"
        if [ -n "$latest" ] && [ "$latest" != "$current" ]; then
            echo "nginx-entrypoint: workers now $latest; reloading" >&2
            reload_to "$latest" && current="$latest" && probe "$current"
        fi
    done
) &

exec /usr/sbin/nginx -p "$RUN_DIR/" -c "$RUN_DIR/nginx.conf" -e stderr -g "daemon off;"
