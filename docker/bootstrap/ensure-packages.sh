#!/usr/bin/env bash
# Make sure the Debian packages a make target needs are installed: install the
# missing ones (as root, with apt-get), or stop at once with the exact command.
#
#   docker/bootstrap/ensure-packages.sh build   # make install: the venv, bjoern's and app/native's builds
#   docker/bootstrap/ensure-packages.sh run     # make local-up: + nginx, envsubst (nginx/render.sh)
#   docker/bootstrap/ensure-packages.sh check   # make check: build + fastText's CLI, envsubst
#   docker/bootstrap/ensure-packages.sh test    # make test: run + check + wrk, valgrind, curl
#   docker/bootstrap/ensure-packages.sh perf    # make perf-analyzer: build + libb64 (perf_analyzer loads it)
#
# Env: PYTHON (python3), NO_INSTALL=1 (only say what is missing and how to install it).
# Docker Engine is not installed here (see docker/bootstrap/README.md); Compose v2 is, by docker/bootstrap/ensure-compose.sh.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
missing=()
need() {  # need PACKAGE CHECK...: PACKAGE is missing when CHECK fails
    local package=$1; shift
    "$@" >/dev/null 2>&1 || missing+=("$package")
}
has() { PATH="$PATH:/usr/sbin:/sbin" command -v "$1"; }

case "${1:-}" in
    build|run|check|test|perf) ;;
    *) echo "usage: $0 build|run|check|test|perf" >&2; exit 2 ;;
esac

need make has make
need gcc has gcc
need libc6-dev test -e /usr/include/stdio.h
need libev-dev test -e /usr/include/ev.h          # bjoern is built from source
need g++ has g++                                   # app/native: fastText's C++
need python3-dev test -e /usr/include/python3.11/Python.h  # app/native's wheel for the image (Debian's python3)
need python3-venv "$PYTHON" -c "import ensurepip, venv"
if [ "$1" = run ] || [ "$1" = test ]; then
    need nginx-light has nginx
fi
if [ "$1" = perf ]; then
    need libb64-0d test -e /usr/lib/x86_64-linux-gnu/libb64.so.0d  # Triton's perf_analyzer links it
fi
if [ "$1" != build ] && [ "$1" != perf ]; then
    need gettext-base has envsubst                 # nginx/render.sh fills the templates with it
fi
if [ "$1" = check ] || [ "$1" = test ]; then
    need fasttext has fasttext                     # the service must answer what fastText's CLI does
fi
if [ "$1" = test ]; then
    need wrk has wrk                               # the load generator's tests
    need valgrind has valgrind                     # the micro-benchmark's instruction counts
    need curl has curl                             # the README's example
fi

[ ${#missing[@]} -gt 0 ] || exit 0
command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "${NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing packages: ${missing[*]}. Install them (as root) with:" >&2
    echo "    $command" >&2
    exit 1
fi
echo "[ensure-packages] installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
