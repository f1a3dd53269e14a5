#!/usr/bin/env bash
# Replace every worker container, one at a time, while traffic flows: start a
# new worker from the current image (a new model or new code, after
# `make images`), wait until it is healthy and nginx routes to it (nginx's
# upstream metric, written once its reload has taken effect), then stop
# one old worker. The old worker drains (app/server.py: it stops accepting,
# finishes what it has, closes keep-alive connections) and nginx retries
# anything it refused on another worker, so no request fails.
#
#   docker/rollout.sh            (make rollout; COMPOSE overrides the command)
set -euo pipefail
COMPOSE=${COMPOSE:-docker compose}
TIMEOUT=${ROLLOUT_TIMEOUT:-90}

log() { printf '[rollout] %s\n' "$*" >&2; }
workers() { $COMPOSE ps -q worker | sort; }
health() { docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null || echo gone; }
# How nginx's upstream metric names a worker: its unix socket (the compose
# stack: <hostname>.sock in the shared directory), or its IP and port (Swarm).
address() {
    local ip
    ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" | awk '{print $1}')
    if [ -n "$ip" ]; then echo "$ip:8000"; else echo "unix:/run/workers/$(docker inspect -f '{{.Config.Hostname}}' "$1").sock"; fi
}
# nginx's status page, written by its entrypoint once a reload has taken effect
# (nginx/entrypoint.sh): the workers the running nginx routes to, and
# whether each answered /readyz.
nginx_metrics() { docker exec "$($COMPOSE ps -q nginx | head -1)" curl -fsS -m 2 http://127.0.0.1:9001/metrics; }
healthy() { test "$(health "$1")" = healthy; }
routed() { nginx_metrics | grep -qF "nginx_upstream_up{address=\"$1\"} 1"; }
routes_to() { nginx_metrics | grep -qx "nginx_upstream_workers $1"; }

wait_for() {  # wait_for DESCRIPTION COMMAND...: until COMMAND succeeds, or fail after TIMEOUT
    local what=$1 start=$SECONDS; shift
    until "$@"; do
        [ $((SECONDS - start)) -lt "$TIMEOUT" ] || { log "timed out waiting for $what"; exit 1; }
        sleep 0.5
    done
}

old=$(workers)
count=$(echo "$old" | wc -w)
[ "$count" -gt 0 ] || { log "no worker is running: make up first"; exit 1; }
[ -n "$($COMPOSE ps -q nginx)" ] || { log "nginx is not running: make up first"; exit 1; }
log "replacing $count workers, one at a time"

for victim in $old; do
    before=$(workers)
    # One more worker, from the current image; the running ones are left as they are.
    $COMPOSE up --detach --no-deps --no-recreate --scale worker=$((count + 1)) worker >/dev/null
    new=$(comm -13 <(echo "$before") <(workers) | head -1)
    [ -n "$new" ] || { log "no new worker container appeared"; exit 1; }
    wait_for "worker ${new:0:12} to be healthy" healthy "$new"
    ip=$(address "$new")
    wait_for "nginx to route to ${new:0:12} ($ip)" routed "$ip"
    log "worker ${new:0:12} ($ip) is in; draining ${victim:0:12}"
    docker stop --time 15 "$victim" >/dev/null
    docker rm "$victim" >/dev/null
done
wait_for "nginx to drop the old workers" routes_to "$count"
log "done: $(workers | wc -w) workers, all new"
