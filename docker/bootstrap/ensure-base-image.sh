#!/usr/bin/env bash
# Make sure a Debian base image (default: debian:bookworm-slim) exists locally.
#
#   docker/bootstrap/ensure-base-image.sh [IMAGE_NAME]
#
# Idempotent:
#   1. image already present            -> nothing to do
#   2. `docker pull IMAGE` works        -> use the real image (Docker Hub reachable)
#   3. otherwise build a bookworm root with `debootstrap --variant=minbase`,
#      make it look like the official slim image (deb822 sources, the
#      docker-* apt/dpkg tweaks, no docs/man/locales) and `docker import` it
#      under IMAGE_NAME, so Dockerfiles keep `FROM debian:bookworm-slim`
#      unchanged.
#
# Env:
#   SUITE            Debian suite to bootstrap (default: bookworm)
#   MIRROR           Debian mirror   (default: taken from the host's apt sources, else http://deb.debian.org/debian)
#   SECURITY_MIRROR  security mirror (default: taken from the host's apt sources, else http://deb.debian.org/debian-security)
#   PULL_TIMEOUT     seconds allowed for `docker pull` (default 60)
#   NO_PULL=1        skip the `docker pull` attempt
#   FORCE=1          rebuild even if the image exists (the old tag is replaced)
#   VERIFY_APT=1     after import, run `apt-get update` in a throw-away container
#   WORKDIR          where the temporary root is made (default /var/tmp)
set -euo pipefail

IMAGE="${1:-debian:bookworm-slim}"
SUITE="${SUITE:-bookworm}"
PULL_TIMEOUT="${PULL_TIMEOUT:-60}"
WORKDIR="${WORKDIR:-/var/tmp}"

log() { printf '[ensure-base-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE already present ($(docker image inspect -f '{{.Id}}' "$IMAGE" | cut -c1-19))"
    exit 0
fi

if [ "${NO_PULL:-0}" != 1 ] && [ "${FORCE:-0}" != 1 ]; then
    log "trying: docker pull $IMAGE (timeout ${PULL_TIMEOUT}s)"
    if timeout "$PULL_TIMEOUT" docker pull "$IMAGE" >&2; then
        log "pulled $IMAGE"
        exit 0
    fi
    log "pull failed; building $IMAGE from debootstrap ($SUITE, minbase)"
fi

case "$IMAGE" in
    *"$SUITE"*) ;;
    *) log "WARNING: image name '$IMAGE' does not mention suite '$SUITE'" ;;
esac

[ "$(id -u)" = 0 ] || die "debootstrap needs root"
start=$SECONDS

# --- tools ------------------------------------------------------------------
export PATH="$PATH:/usr/sbin:/sbin"
if ! command -v debootstrap >/dev/null 2>&1; then
    log "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2
fi
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
if [ ! -s "$KEYRING" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debian-archive-keyring >&2
fi

# --- mirrors: reuse whatever the host's apt uses ----------------------------
host_uris() {  # print every URI from the host's apt sources (one-line and deb822)
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] && awk '$1 ~ /^deb$/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] && awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
    done
    return 0
}
uris="$(host_uris | sed 's:/*$::' | awk '!seen[$0]++')"
if [ -z "${MIRROR:-}" ]; then
    MIRROR="$(printf '%s\n' "$uris" | grep -E '/debian$' | head -n1 || true)"
    MIRROR="${MIRROR:-http://deb.debian.org/debian}"
fi
if [ -z "${SECURITY_MIRROR:-}" ]; then
    SECURITY_MIRROR="$(printf '%s\n' "$uris" | grep -E '/debian-security$' | head -n1 || true)"
    SECURITY_MIRROR="${SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
fi
log "mirror: $MIRROR  security: $SECURITY_MIRROR"

# Host apt proxy settings (if any) go into debootstrap's environment
# (debootstrap downloads with wget, which ignores apt.conf), not into the image.
proxy_conf="$( { cat /etc/apt/apt.conf 2>/dev/null; cat /etc/apt/apt.conf.d/* 2>/dev/null; } \
    | grep -iE '^[[:space:]]*Acquire::(https?::)?Proxy' || true)"
if [ -n "$proxy_conf" ]; then
    log "host apt proxy config found: $(printf '%s' "$proxy_conf" | tr '\n' ' ')"
    if printf '%s' "$proxy_conf" | grep -qE '(localhost|127\.[0-9]+\.[0-9]+\.[0-9]+|\[::1\])'; then
        log "WARNING: the proxy is on the host's loopback; containers cannot reach it as-is"
    fi
    if [ -z "${http_proxy:-}" ]; then
        p="$(printf '%s\n' "$proxy_conf" | grep -iE 'Acquire::(http::)?Proxy[[:space:]]' | sed -nE 's/.*"([^"]+)".*/\1/p' | head -n1)"
        [ -n "$p" ] && [ "$p" != DIRECT ] && export http_proxy="$p"
    fi
fi

# --- debootstrap ------------------------------------------------------------
tmp="$(mktemp -d "$WORKDIR/base-image.XXXXXX")"
root="$tmp/root"
cleanup() {
    # debootstrap mounts proc/sys inside the target; never rm -rf through a mount
    if [ -d "$root" ]; then
        awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts \
            | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
    fi
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

t0=$SECONDS
log "debootstrap --variant=minbase $SUITE into $root"
if ! debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1; then
    tail -n 30 "$tmp/debootstrap.log" >&2
    [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
fi
log "debootstrap took $((SECONDS - t0))s"

# --- make it look like debian:bookworm-slim ---------------------------------
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# The host's apt proxy is not written into the image: it is this machine's
# setting, not the image's (`make images` passes it to the builds as the
# http_proxy build argument, which Docker keeps out of the image).

# the same apt/dpkg tweaks the official images ship (debuerreotype)
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
echo 'force-unsafe-io' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# "slim" variant: files normally unneeded in containers are excluded
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
# apply the exclusions to what debootstrap already installed
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/groff/* \
       "$root"/usr/share/linda/* "$root"/usr/share/lintian/overrides/*

# drop caches, logs and host-specific files (Docker provides resolv.conf, hosts, hostname)
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old \
       "$root"/var/lib/dpkg/*-old "$root"/var/log/apt/* "$root"/debootstrap
find "$root/var/log" -type f -exec truncate -s 0 {} +
: >"$root/etc/resolv.conf"
: >"$root/etc/machine-id"
echo localhost >"$root/etc/hostname"

# --- import -------------------------------------------------------------------
t0=$SECONDS
log "importing as $IMAGE ($(du -sh --one-file-system "$root" | cut -f1) root)"
tar -C "$root" --numeric-owner --one-file-system -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.opencontainers.image.description=\"$SUITE minbase via debootstrap+docker import (local stand-in for $IMAGE)\"" \
    --message "debootstrap --variant=minbase $SUITE $MIRROR" \
    - "$IMAGE" >/dev/null
log "import took $((SECONDS - t0))s"

docker run --rm "$IMAGE" sh -c '. /etc/os-release && echo "$PRETTY_NAME"' >&2 \
    || die "a container from $IMAGE does not start"
if [ "${VERIFY_APT:-0}" = 1 ]; then
    log "verifying apt-get update inside a container"
    docker run --rm "$IMAGE" apt-get update >&2 || die "apt-get update fails inside $IMAGE"
fi
log "done: $IMAGE ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')) in $((SECONDS - start))s"
