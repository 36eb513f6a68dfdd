"""Process-wide memory settings of the server (`webapp.memory`), applied in this process and put
back after each test."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest

from webapp.memory import COLLECTOR_THRESHOLDS, calm_collector, return_large_buffers


@pytest.fixture
def collector():
    """Python's collector settings as they were, put back after the test."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Node:
    """Something that can sit in a reference cycle."""

    other: Node | None = None


def test_the_collector_leaves_start_up_alone_and_still_frees_new_cycles(collector):
    calm_collector()
    assert gc.get_threshold() == COLLECTOR_THRESHOLDS
    assert gc.get_freeze_count() > 1000  # the imported modules, out of the collector's walk
    a, b = Node(), Node()
    a.other, b.other = b, a
    freed = []
    weakref.finalize(a, freed.append, "a")
    del a, b
    gc.collect()
    assert freed == ["a"]  # a cycle made after start-up is still collected


@pytest.mark.subprocess  # ctypes.util.find_library runs ldconfig
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_buffers_go_back_to_the_system_on_glibc():
    assert return_large_buffers() is True
