"""The load test's fixtures: the product's local stack (the same as the
product's end-to-end tests use) and one short `make loadtest` run."""

import contextlib
import subprocess

import pytest

from tests.e2e import stacks
from tests.e2e.conftest import local_stack  # noqa: F401 - the product's fixture, here too
from tests.paths import ROOT


@contextlib.contextmanager
def _make_loadtest(env: dict, what: str = "make loadtest"):
    """`make loadtest` with `env` (RATES, DURATION, LOADTEST_RESULTS, ...), short:
    yields its output; `make down` afterwards, whatever happened."""
    stacks.assert_port_free()
    try:
        done = subprocess.run(["make", "loadtest"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=1500)
        assert done.returncode == 0, f"{what}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        yield done.stdout
    finally:
        subprocess.run(["make", "down"], cwd=ROOT, env=env, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def loadtest_results(tmp_path_factory):
    """Where a module's `make loadtest` writes (LOADTEST_RESULTS)."""
    return tmp_path_factory.mktemp("loadtest-results")


@pytest.fixture(scope="session")
def make_loadtest():
    """`with make_loadtest(env) as output:` a short `make loadtest` run, then `make down`."""
    return _make_loadtest
