#!/usr/bin/env bash
# The load test's Rust peer, messense/fasttext-serving, built on the host from
# crates.io (Rust is the load test's need: no image carries a toolchain) and
# copied into OUTDIR for loadtest/rust-peer.Dockerfile. The host is bookworm, like
# the image, so the binary's glibc and libstdc++ match.
#
#   loadtest/build-rust-peer.sh OUTDIR
#
# Built once (minutes: the crate and its dependencies) into a cache outside the clone
# (RUST_PEER_CACHE, default ~/.cache/reviewrating), so a fresh clone on the same
# machine (CI) reuses it.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
OUT="$1"
VERSION=0.7.0
CACHE="${RUST_PEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/reviewrating}/fasttext-serving-$VERSION"
BIN="$CACHE/bin/fasttext-serving"

command -v cargo >/dev/null || { echo "build-rust-peer: cargo is missing (https://rustup.rs, or apt-get install cargo)" >&2; exit 1; }
if [ ! -x "$BIN" ]; then
    echo "[build-rust-peer] cargo install fasttext-serving $VERSION (once, a few minutes)" >&2
    # --locked: the crate's own Cargo.lock, so the build is the published one.
    # Only the HTTP server (the gRPC one needs protoc).
    cargo install --quiet --locked --root "$CACHE" --version "=$VERSION" \
        --no-default-features --features http fasttext-serving
fi
mkdir -p "$OUT"
cmp -s "$BIN" "$OUT/fasttext-serving" || cp "$BIN" "$OUT/fasttext-serving"
