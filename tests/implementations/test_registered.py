"""Every registered implementation, every check: the harness run the way users run it.

Parametrized by the parity pytest plugin (ids ``naive-output``, ``fused-gradients``...);
``pytest --parity-impl mypkg:MyLSTM`` runs these for another implementation instead.
"""

import pytest


def test_parity(parity_target):
    parity_target.verify()


@pytest.mark.xdist_group("grouping")
def test_under_xdist_an_implementations_items_reach_one_worker(request):
    """The plugin marks each implementation's items with one xdist group, so that one worker
    runs its check once (tox -e test: `--dist loadgroup`). xdist groups by a suffix it writes
    into the node id, which pytest 9.2 no longer keeps (pytest-dev/pytest-xdist#1386): then
    every worker that gets one of the items runs the whole check again, silently."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not an xdist worker under --dist loadgroup")
    assert request.node.nodeid.endswith("@grouping"), (
        f"{request.node.nodeid}: xdist's group is not in the node id (pytest "
        f"{pytest.__version__}; the test extra pins pytest < 9.2)")
