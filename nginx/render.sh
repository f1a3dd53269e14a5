#!/bin/sh
# nginx's configuration for every mode, from one place: the nginx container's
# entrypoint, the local stack (docker/stacktools/localstack.py), the load test's
# floors and the tests all run this. It reads settings.env (a non-empty
# environment variable of the same name overrides a value), checks the values
# and fills the templates beside it with envsubst, given the list of names so
# that nginx's own $variables pass through untouched.
#
#   render.sh DIR ADDRESS...  write DIR/nginx.conf, proxy.conf and upstream.conf
#                             for these workers (host:port or unix:/path)
#   render.sh --settings      print the settings in effect as NAME=value, and the
#                             addresses they give (NGINX_LISTEN, NGINX_STATUS_LISTEN:
#                             nginx's listen; NGINX_URL, NGINX_STATUS_URL: this machine's way there)
#   render.sh --get NAME      print one of those
set -eu
case "$0" in */*) HERE=${0%/*} ;; *) HERE=. ;; esac
TEMPLATES="nginx.conf proxy.conf route.conf upstream.conf"
nl='
'

die() { echo "render.sh: $*" >&2; exit 2; }

names=""
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    name=${line%%=*}
    case "$name" in '' | *[!A-Z0-9_]*) die "settings.env: not NAME=value: $line" ;; esac
    eval "[ -n \"\${$name:-}\" ] || $name=\${line#*=}"
    names="$names $name"
done < "$HERE/settings.env"

# Without subshells: the container's healthcheck runs `--get` every few seconds.
get() { eval "v=\${$1}"; }  # v=the value of setting $1

number() {  # number NAME...: positive whole numbers
    for n in "$@"; do
        get "$n"
        case "$v" in '' | 0* | *[!0-9]*) die "$n must be a positive whole number, not '$v'" ;; esac
    done
}
number NGINX_PORT NGINX_STATUS_PORT WORKER_PORT NGINX_CLIENT_IN_FLIGHT NGINX_CLIENT_BATCHES \
    NGINX_WORKER_IN_FLIGHT NGINX_MAX_BODY_BYTES NGINX_UPSTREAM_KEEPALIVE
for n in NGINX_PORT NGINX_STATUS_PORT WORKER_PORT; do
    get "$n"
    [ "$v" -le 65535 ] || die "$n must be a port, not '$v'"
done
case "$NGINX_WORKER_PROCESSES" in
    auto) ;;
    '' | 0* | *[!0-9]*) die "NGINX_WORKER_PROCESSES must be auto or a positive whole number, not '$NGINX_WORKER_PROCESSES'" ;;
esac
for n in NGINX_LISTEN_ADDR NGINX_STATUS_ADDR; do
    get "$n"
    case "$v" in *[!0-9A-Za-z.:-]*) die "$n must be an address, not '$v'" ;; esac
done
for net in $NGINX_STATUS_CLIENTS; do
    case "$net" in *[!0-9A-Fa-f.:/]*) die "NGINX_STATUS_CLIENTS: not an address or network: '$net'" ;; esac
done
case "$NGINX_EXTRA_ROUTE" in
    [!/]* | */ | *//* | *[!A-Za-z0-9._/-]*) die "NGINX_EXTRA_ROUTE must be a path like /predict, not '$NGINX_EXTRA_ROUTE'" ;;
esac
case "$NGINX_ANSWER" in *[\'\\\$]* | *"$nl"*) die "NGINX_ANSWER must hold no quote, backslash, \$ or newline" ;; esac

host() {  # h=an address as nginx's listen and URLs write it: IPv6 in brackets
    case "$1" in *:*) h="[$1]" ;; *) h=$1 ;; esac
}
reach() {  # h=where this machine reaches what listens on an address: unspecified is loopback
    case "$1" in '' | 0.0.0.0) h=127.0.0.1 ;; ::) h='[::1]' ;; *) host "$1" ;; esac
}
lines() {  # lines PREFIX SUFFIX WORD...: one line a word
    prefix=$1 suffix=$2 out=""
    shift 2
    for word in "$@"; do out="$out${out:+$nl}$prefix$word$suffix"; done
    printf '%s' "$out"
}

# What nginx listens on, and where this machine reaches it.
host "$NGINX_LISTEN_ADDR"
NGINX_LISTEN="${h:+$h:}$NGINX_PORT"
host "$NGINX_STATUS_ADDR"
NGINX_STATUS_LISTEN="${h:+$h:}$NGINX_STATUS_PORT"
reach "$NGINX_LISTEN_ADDR"
NGINX_URL="http://$h:$NGINX_PORT"
reach "$NGINX_STATUS_ADDR"
NGINX_STATUS_URL="http://$h:$NGINX_STATUS_PORT"
addresses="NGINX_LISTEN NGINX_STATUS_LISTEN NGINX_URL NGINX_STATUS_URL"

case "${1:-}" in
    --settings)
        for n in $names $addresses; do get "$n"; printf '%s=%s\n' "$n" "$v"; done
        exit 0 ;;
    --get)
        case " $names $addresses " in *" ${2:-} "*) get "$2"; printf '%s\n' "$v"; exit 0 ;; esac
        die "no setting '${2:-}'" ;;
    '' | -*) die "usage: $0 DIR ADDRESS... | --settings | --get NAME" ;;
esac
DIR=$1
shift
[ "$#" -gt 0 ] || die "no worker address given"
for address in "$@"; do
    case "$address" in '' | *[!][0-9A-Za-z.:/_-]*) die "not a worker address: '$address'" ;; esac
done

# What the templates hold beyond the settings and the addresses above.
NGINX_EXTRA_LOCATION="${NGINX_EXTRA_ROUTE:+$nl        location = $NGINX_EXTRA_ROUTE { include route.conf; \}}"
if [ -n "$NGINX_ANSWER" ]; then
    NGINX_HANDLER="return 200 '$NGINX_ANSWER';"
    NGINX_READY_HANDLER=$NGINX_HANDLER
else
    NGINX_HANDLER="proxy_pass http://workers;"
    NGINX_READY_HANDLER="proxy_pass http://workers/healthz;"
fi
b=$NGINX_MAX_BODY_BYTES
if [ $((b % 1048576)) -eq 0 ]; then NGINX_MAX_BODY_TEXT="$((b / 1048576)) MiB"
elif [ $((b % 1024)) -eq 0 ]; then NGINX_MAX_BODY_TEXT="$((b / 1024)) KiB"
else NGINX_MAX_BODY_TEXT="$b bytes"; fi
if [ "$NGINX_CLIENT_BATCHES" = 1 ]; then NGINX_CLIENT_BATCHES_TEXT="1 batch"
else NGINX_CLIENT_BATCHES_TEXT="$NGINX_CLIENT_BATCHES batches"; fi
# shellcheck disable=SC2086
NGINX_STATUS_GEO=$(lines "        " " 1;" $NGINX_STATUS_CLIENTS)
# max_fails and fail_timeout: upstream.conf.template says why.
NGINX_UPSTREAM_SERVERS=$(lines "    server " " max_conns=$NGINX_WORKER_IN_FLIGHT max_fails=1 fail_timeout=5s;" "$@")
NGINX_UPSTREAM_ADDRESSES="$*"

placeholders="$names $addresses NGINX_EXTRA_LOCATION NGINX_HANDLER NGINX_READY_HANDLER NGINX_MAX_BODY_TEXT
    NGINX_CLIENT_BATCHES_TEXT NGINX_STATUS_GEO NGINX_UPSTREAM_SERVERS NGINX_UPSTREAM_ADDRESSES"
list=""
for n in $placeholders; do
    export "$n"
    list="$list \${$n}"
done
mkdir -p "$DIR"
for t in $TEMPLATES; do
    envsubst "$list" < "$HERE/$t.template" > "$DIR/$t.new"
    ! grep -n '\${\?[A-Z][A-Z0-9_]*' "$DIR/$t.new" >&2 || die "$t.template: a placeholder with no setting (above)"
done
for t in $TEMPLATES; do mv "$DIR/$t.new" "$DIR/$t"; done
