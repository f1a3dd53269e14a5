#!/bin/sh
# One Prometheus page for the whole service: every worker's own /metrics,
# each sample labelled with its worker, and nginx's connection counters
# (stub_status), so one scrape of the status port sees everything.
#
#   service-metrics.sh ADDRESS...                   the page, on stdout
#   service-metrics.sh --every S --out FILE ADDRESS...  FILE rewritten every S seconds (the local stack)
#
# ADDRESS: a worker's, host:port or unix:/path.sock.
# A worker's label is its address without the socket directory and `.sock`
# (a compose worker's container hostname), or host:port. The families keep
# each worker's HELP and TYPE once, with every worker's samples under them,
# as the text format requires. A worker that does not answer within 1 s adds
# nothing (nginx_upstream_up, from the entrypoint's probe, says which).
# nginx's stub_status is read on its status port (nginx/render.sh's NGINX_STATUS_URL).
# sh, curl and awk: the nginx image has no Python for a Prometheus library.
set -eu
case "$0" in */*) HERE=${0%/*} ;; *) HERE=. ;; esac

if [ "${1:-}" = --every ]; then
    [ "$#" -ge 5 ] && [ "$3" = --out ] || { echo "usage: $0 --every S --out FILE ADDRESS..." >&2; exit 2; }
    every=$2 out=$4
    shift 4
    while :; do
        "$0" "$@" > "$out.new" && mv "$out.new" "$out"
        sleep "$every"
    done
fi
STATUS_URL="$("$HERE/render.sh" --get NGINX_STATUS_URL)/stub_status"

for address in "$@"; do
    case "$address" in
        unix:*) via="--unix-socket ${address#unix:} http://worker"; name="$(basename "${address#unix:}" .sock)" ;;
        *) via="http://$address"; name="$address" ;;
    esac
    echo "#worker $name"
    # shellcheck disable=SC2086
    curl -fsS -m 1 $via/metrics 2>/dev/null || true
done | awk '
    /^#worker / { worker = $2; next }
    /^# (HELP|TYPE) / {
        family = $3
        if (!(family in seen)) { seen[family] = 1; order[++families] = family }
        if ($2 == "HELP") help[family] = $0; else type[family] = $0
        next
    }
    /^[a-zA-Z_]/ {
        split($0, parts, " ")
        if (index(parts[1], "{")) sub(/\{/, "{worker=\"" worker "\",", $0)
        else sub(/ /, "{worker=\"" worker "\"} ", $0)
        samples[family] = samples[family] $0 "\n"
    }
    END {
        for (i = 1; i <= families; i++) {
            f = order[i]
            if (f in help) print help[f]
            if (f in type) print type[f]
            printf "%s", samples[f]
        }
    }'

# nginx's own: stub_status as Prometheus counters and gauges.
curl -fsS -m 1 "$STATUS_URL" 2>/dev/null | awk '
    /^Active connections:/ { active = $3 }
    /^ *[0-9]+ +[0-9]+ +[0-9]+ *$/ { accepted = $1; handled = $2; requests = $3 }
    /^Reading:/ { reading = $2; writing = $4; waiting = $6 }
    END {
        if (active == "") exit
        print "# HELP nginx_connections_accepted_total Client connections nginx accepted."
        print "# TYPE nginx_connections_accepted_total counter"
        print "nginx_connections_accepted_total " accepted
        print "# HELP nginx_connections_handled_total Client connections nginx handled."
        print "# TYPE nginx_connections_handled_total counter"
        print "nginx_connections_handled_total " handled
        print "# HELP nginx_http_requests_total Client requests nginx received."
        print "# TYPE nginx_http_requests_total counter"
        print "nginx_http_requests_total " requests
        print "# HELP nginx_connections Client connections open now, by state."
        print "# TYPE nginx_connections gauge"
        print "nginx_connections{state=\"active\"} " active
        print "nginx_connections{state=\"reading\"} " reading
        print "nginx_connections{state=\"writing\"} " writing
        print "nginx_connections{state=\"waiting\"} " waiting
    }'
