#!/usr/bin/env bash
# Build a wheelhouse on the host for the image's Python (Debian bookworm's
# CPython 3.11, glibc 2.36, libev 4.33), so images can install with
#   pip install --no-index --find-links /wheels --require-hashes -r /wheels/requirements.txt
# (pip inside build containers cannot reach PyPI here: TLS verification fails).
#
# Hashes: every file pip downloads is checked against the sha256 committed in
# the requirements files (pip wheel in hash-checking mode). A wheel built here
# from an sdist (bjoern) has no published hash: its sdist was checked, and the
# wheel's own sha256 is added to a copy of each requirements file in OUTDIR,
# which the images install from with --require-hashes. So a wheel changed in
# the wheelhouse after it was built or downloaded is refused. (The build
# tools pip fetches to build an sdist, setuptools for bjoern, are not
# hash-checked by pip.)
#
#   docker/bootstrap/build-wheelhouse.sh OUTDIR REQUIREMENTS_FILE...
#
# Cached: when OUTDIR already satisfies every requirement (checked with an
# offline `pip install --dry-run --no-index`), nothing is rebuilt.
# The worker's own compiled part, app/native (fastText's C++ from its pinned
# sdist, and POST /inferreview), is built into OUTDIR too, again whenever its
# sources change (a stamp file holds their hash).
# sdists (bjoern) are compiled on the host; this is fine because the host is
# bookworm too (same glibc, same libev4 soname, same CPython ABI cp311).
#
# Env:
#   PYTHON      interpreter that runs `pip wheel` (default: /usr/bin/python3, Debian's, like the image)
#   TARGET_PY   Python X.Y the image uses (default 3.11); PYTHON must match it
#   FORCE=1     rebuild even if the wheelhouse looks complete
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 OUTDIR REQUIREMENTS_FILE..." >&2; exit 2; }
OUT="$1"; shift
TARGET_PY="${TARGET_PY:-3.11}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ] && /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
        PYTHON=/usr/bin/python3
    else
        PYTHON=python3
    fi
fi

log() { printf '[build-wheelhouse] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for r in "$@"; do [ -f "$r" ] || die "no such requirements file: $r"; done
py_ver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$py_ver" = "$TARGET_PY" ] || die "$PYTHON is $py_ver but the image's python is $TARGET_PY (wheel ABI tags would not match)"
[ "$(uname -m)" = x86_64 ] || log "WARNING: host is $(uname -m); the wheels are for this architecture only"

req_args=()
for r in "$@"; do req_args+=(-r "$r"); done

# Deterministic pip: ignore find-links/index settings of the environment
# (this machine sets PIP_FIND_LINKS=/opt/wheels); no version-check noise.
pip_() {
    env -u PIP_FIND_LINKS -u PIP_NO_INDEX PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
        "$PYTHON" -m pip "$@"
}

# The requirements files as the images read them: copies in OUT, with the
# sha256 of each wheel built here added to its package's hashes.
copies=()
for r in "$@"; do copies+=(-r "$OUT/$(basename "$r")"); done

satisfied() {  # is every requirement (with its dependencies) installable from OUT alone, hashes checked?
    [ -d "$OUT" ] || return 1
    for r in "$@"; do [ -f "$OUT/$(basename "$r")" ] || return 1; done
    local t; t="$(mktemp -d)"
    # --target: no venv needed and no PEP 668 "externally managed" refusal
    if pip_ install --dry-run --quiet --no-index --find-links "$OUT" --require-hashes --target "$t" \
        "${copies[@]}" >/dev/null 2>&1; then
        rm -rf "$t"; return 0
    fi
    rm -rf "$t"; return 1
}

# Build dependencies: bjoern's, and g++ for app/native.
need_pkgs=()
if cat "$@" | grep -qiE '^[[:space:]]*bjoern'; then
    [ -e /usr/include/ev.h ] || need_pkgs+=(libev-dev)
    command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc libc6-dev)
fi
command -v g++ >/dev/null 2>&1 || need_pkgs+=(g++)
inc="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
[ -e "$inc/Python.h" ] || need_pkgs+=("python$TARGET_PY-dev")
if [ ${#need_pkgs[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing build packages (${need_pkgs[*]}); install them as root"
    log "installing build packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

mkdir -p "$OUT"
native="$(cd "$(dirname "$0")/../.." && pwd)/app/native"
stamp="$OUT/.reviewrating-native-$(cat "$native"/pyproject.toml "$native"/setup.py "$native"/*.cpp \
    "$native"/fasttext-sdist.txt | sha256sum | cut -c1-16)"
if [ "${FORCE:-0}" = 1 ] || [ ! -e "$stamp" ] || ! ls "$OUT"/reviewrating_native-*.whl >/dev/null 2>&1; then
    log "building app/native (fastText's C++ and the compiled /inferreview) into $OUT"
    rm -f "$OUT"/reviewrating_native-*.whl "$OUT"/.reviewrating-native-*
    rm -rf "$native/build/lib."* "$native/build/temp."*  # objects of another Python, if any
    pip_ wheel --no-deps --wheel-dir "$OUT" "$native" >&2
    touch "$stamp"
fi

if [ "${FORCE:-0}" != 1 ] && satisfied "$@"; then
    log "wheelhouse $OUT already satisfies $* ($(find "$OUT" -maxdepth 1 -name "*.whl" | wc -l) wheels, hashes checked); nothing to do"
    exit 0
fi

log "pip wheel into $OUT with $PYTHON ($py_ver), hashes checked"
start=$SECONDS
# No --find-links OUT: what is already there was built here, and has no published hash.
pip_ wheel --require-hashes --prefer-binary --wheel-dir "$OUT" "${req_args[@]}" >&2
"$PYTHON" - "$OUT" "$@" <<'PY'
import hashlib, re, sys
from pathlib import Path

out, files = Path(sys.argv[1]), [Path(f) for f in sys.argv[2:]]
texts = {f: f.read_text() for f in files}
published = set(re.findall(r"--hash=sha256:([0-9a-f]{64})", "".join(texts.values())))
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
local = {}  # package -> sha256 of the wheel built here
for wheel in sorted(out.glob("*.whl")):
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest not in published:
        local.setdefault(norm(wheel.name.split("-")[0]), []).append(digest)
for f, text in texts.items():
    lines = []
    for line in text.splitlines():
        lines.append(line)
        m = re.match(r"^([A-Za-z0-9._-]+)==\S+ \\$", line)
        for digest in local.get(norm(m[1]), []) if m else []:
            lines.append(f"    --hash=sha256:{digest} \\")
    (out / f.name).write_text("\n".join(lines) + "\n")
for name, digests in local.items():
    print(f"[build-wheelhouse] built here, from its checked sdist: {name} (sha256 {digests[0][:16]}...)", file=sys.stderr)
PY
satisfied "$@" || die "wheelhouse $OUT still does not satisfy the requirements"
log "done in $((SECONDS - start))s: $(find "$OUT" -maxdepth 1 -name "*.whl" | wc -l) wheels, $(du -sh "$OUT" | cut -f1)"
