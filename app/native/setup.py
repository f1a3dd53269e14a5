"""Builds reviewrating_native against fastText's own C++ sources.

The sources come from the pinned fasttext-wheel sdist (fasttext-sdist.txt,
hash-checked by pip), downloaded into the build directory at build time, or
from FASTTEXT_SDIST=/path/to/fasttext-wheel-0.9.2.tar.gz where there is no
network. No -march=native and no FMA contraction: the same float arithmetic
as fastText's CLI, whose figures the tests compare with ours.
"""
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

HERE = Path(__file__).resolve().parent
PIN = HERE / "fasttext-sdist.txt"
SDIST_NAME = "fasttext-wheel-0.9.2"
SHA256 = PIN.read_text().split("--hash=sha256:")[1].split()[0]


def _sdist() -> Path:
    given = os.environ.get("FASTTEXT_SDIST")
    if given:
        return Path(given)
    out = Path(tempfile.mkdtemp(prefix="fasttext-sdist-"))
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_NO_INDEX")}
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--no-binary", "fasttext-wheel", "--require-hashes", "-r", str(PIN),
                    "--dest", str(out)], check=True, env=env)
    return out / f"{SDIST_NAME}.tar.gz"


def fasttext_sources() -> Path:
    """fastText's src/ directory, extracted once into build/."""
    src = HERE / "build" / SDIST_NAME / "src"
    if (src / "fasttext.cc").exists():
        return src
    sdist = _sdist()
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SHA256:
        sys.exit(f"{sdist}: sha256 {digest}, expected {SHA256}")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(f"{SDIST_NAME}/src/") and m.isfile()]
        # filter= where this Python has it (3.11.4+); the members are plain files anyway
        tar.extractall(HERE / "build", members=members,
                       **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return src


src = fasttext_sources()
ParallelCompile("NPY_NUM_BUILD_JOBS", default=2).install()
setup(
    ext_modules=[
        Pybind11Extension(
            "reviewrating_native",
            ["reviewrating_native.cpp", *sorted(str(p) for p in src.glob("*.cc") if p.name != "main.cc")],
            include_dirs=[str(src)],
            cxx_std=17,
            extra_compile_args=["-O3", "-ffp-contract=off", "-pthread"],
            extra_link_args=["-pthread"],
        )
    ],
    cmdclass={"build_ext": build_ext},
)
