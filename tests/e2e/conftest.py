"""The stacks, as fixtures. Both serve :9000, so never two at once: each is
module-scoped (a module's stack is down before the next module's comes up),
and `stack`, over both, finishes one before it starts the other."""

from pathlib import Path

import pytest

from . import stacks

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    """Every test in this folder is of the e2e tier (pyproject.toml's markers)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def local_stack():
    """`make local-up` (supervisord, nginx and the bjoern workers, no Docker) for the module."""
    with stacks.local_stack() as stack:
        yield stack


@pytest.fixture(scope="module")
def compose_stack():
    """`make up` (the product's containers, images built locally) for the module."""
    with stacks.compose_stack() as stack:
        yield stack


@pytest.fixture(scope="module", params=list(stacks.STACKS))
def stack(request):
    """Each stack in turn, for the checks every stack must pass (test_smoke.py)."""
    with stacks.STACKS[request.param]() as up:
        yield up
