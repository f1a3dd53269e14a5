#!/bin/sh
# Start nginx with the upstream list made from the worker containers' addresses.
#
# Compose gives every replica of the `worker` service an address under that
# one DNS name; nginx (open source, 1.22) resolves upstream names only when it
# starts. So this script resolves them itself, writes upstream.conf, and keeps
# watching: when the set of addresses changes (a worker scaled, recreated or
# restarted elsewhere), it rewrites the list and reloads nginx gracefully.
#
# Env: WORKER_HOST (worker), WORKER_PORT (8000), WORKERS (how many to wait
# for at start, default 1), NGINX_WORKER_PROCESSES (auto: one per core),
# NGINX_RUN_DIR (/tmp/nginx, a tmpfs: the root file system is read-only).
set -eu
WORKER_HOST="${WORKER_HOST:-worker}"
WORKER_PORT="${WORKER_PORT:-8000}"
WORKERS="${WORKERS:-1}"
RUN_DIR="${NGINX_RUN_DIR:-/tmp/nginx}"
CONF=/etc/reviewrating

resolve() {
    getent ahostsv4 "$WORKER_HOST" | awk '{ print $1 }' | sort -u | tr '\n' ' '
}

render() {
    # shellcheck disable=SC2046
    "$CONF/render-upstream.sh" $(for ip in $1; do echo "$ip:$WORKER_PORT"; done) > "$RUN_DIR/upstream.conf.new"
    mv "$RUN_DIR/upstream.conf.new" "$RUN_DIR/upstream.conf"
}

mkdir -p "$RUN_DIR/tmp"
sed "s/^worker_processes .*;/worker_processes ${NGINX_WORKER_PROCESSES:-auto};/" \
    "$CONF/nginx.conf" > "$RUN_DIR/nginx.conf"

waited=0
addresses="$(resolve)"
while [ "$(echo $addresses | wc -w)" -lt "$WORKERS" ] && [ "$waited" -lt 60 ]; do
    sleep 1; waited=$((waited + 1)); addresses="$(resolve)"
done
[ -n "$addresses" ] || { echo "nginx-entrypoint: no address for '$WORKER_HOST'" >&2; exit 1; }
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
        for ip in $1; do
            if curl -fsS -o /dev/null -m 2 "http://$ip:$WORKER_PORT/readyz" 2>/dev/null; then up=1; else up=0; fi
            echo "nginx_upstream_up{address=\"$ip:$WORKER_PORT\"} $up"
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
