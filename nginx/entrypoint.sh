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
# The configuration is nginx/render.sh's, from nginx/settings.env and the
# environment (NGINX_LISTEN_ADDR, NGINX_STATUS_ADDR, NGINX_WORKER_PROCESSES,
# NGINX_EXTRA_ROUTE, WORKER_PORT, ...; unset addresses: all of the container's).
# Env of its own: WORKER_HOST (worker), WORKER_SOCKETS (unset: by DNS), WORKERS
# (how many to wait for at start, default 1), NGINX_RUN_DIR (/tmp/nginx, a
# tmpfs: the root file system is read-only).
set -eu
CONF=/etc/reviewrating
WORKER_HOST="${WORKER_HOST:-worker}"
WORKER_PORT="$("$CONF/render.sh" --get WORKER_PORT)"  # and the settings are valid
STATUS_URL="$("$CONF/render.sh" --get NGINX_STATUS_URL)"
WORKER_SOCKETS="${WORKER_SOCKETS:-}"
WORKERS="${WORKERS:-1}"
RUN_DIR="${NGINX_RUN_DIR:-/tmp/nginx}"

resolve() {
    if [ -n "$WORKER_SOCKETS" ]; then
        for s in "$WORKER_SOCKETS"/*.sock; do [ -S "$s" ] && echo "unix:$s"; done | sort | tr '\n' ' '
    else
        getent ahostsv4 "$WORKER_HOST" | awk -v port="$WORKER_PORT" '{ print $1 ":" port }' | sort -u | tr '\n' ' '
    fi
}

# shellcheck disable=SC2086
render() { "$CONF/render.sh" "$RUN_DIR" $1; }

mkdir -p "$RUN_DIR/tmp"

waited=0
addresses="$(resolve)"
while [ "$(echo $addresses | wc -w)" -lt "$WORKERS" ] && [ "$waited" -lt 60 ]; do
    sleep 1; waited=$((waited + 1)); addresses="$(resolve)"
done
[ -n "$addresses" ] || { echo "nginx-entrypoint: no worker at '${WORKER_SOCKETS:-$WORKER_HOST}'" >&2; exit 1; }
echo "nginx-entrypoint: workers $addresses" >&2
render "$addresses"

# The service's one metrics page, /metrics on the status port (nginx.conf):
# the workers in nginx's running configuration and whether each answered
# /readyz at the last probe (every 10 s, and at once after each reload;
# written only once a reload has taken effect, so `make rollout`
# (docker/rollout.sh) reads here when nginx routes to a new worker), then
# every worker's own counters and nginx's (service-metrics.sh), every 2 s.
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
    } > "$RUN_DIR/status/upstreams.prom"
    publish "$1"
}

publish() {
    # shellcheck disable=SC2086
    { cat "$RUN_DIR/status/upstreams.prom"; "$CONF/service-metrics.sh" $1; } > "$RUN_DIR/status/metrics.new"
    mv "$RUN_DIR/status/metrics.new" "$RUN_DIR/status/metrics"
}

# The addresses the running nginx routes to, as its status port says.
serving() {
    curl -fsS -m 2 "$STATUS_URL/upstreams" 2>/dev/null | tr ' ' '\n' | sort -u | tr '\n' ' '
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
        if [ $((ticks % 5)) -eq 0 ]; then probe "$current"; else publish "$current"; fi
        latest="$(resolve)"
        if [ -n "$latest" ] && [ "$latest" != "$current" ]; then
            echo "nginx-entrypoint: workers now $latest; reloading" >&2
            reload_to "$latest" && current="$latest" && probe "$current"
        fi
    done
) &

exec /usr/sbin/nginx -p "$RUN_DIR/" -c "$RUN_DIR/nginx.conf" -e stderr -g "daemon off;"
