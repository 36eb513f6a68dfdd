"""Process-wide settings of the server's processes (`webapp.memory`), applied in this process and put
back after each test."""

from __future__ import annotations

import gc
import importlib.util
import io
import sys
import warnings
import weakref

import pytest
from helpers.images import png_header
from PIL import Image

from juhe import MAX_INPUT_PIXELS
from webapp.memory import (
    COLLECTOR_THRESHOLDS,
    bound_decoding,
    calm_collector,
    install_fast_failed_imports,
    return_large_buffers,
)


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


# --- failed imports ------------------------------------------------------------------------------


@pytest.fixture
def no_matplotlib_module(monkeypatch):
    """`sys.modules` without matplotlib and sniffio for this test, restored afterwards."""
    for name in ("matplotlib", "sniffio"):
        monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.delitem(sys.modules, name)


def test_a_missing_matplotlib_fails_at_once(monkeypatch, no_matplotlib_module):
    searches = []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: searches.append(name))
    install_fast_failed_imports()
    assert searches == ["matplotlib", "sniffio"]
    assert sys.modules["matplotlib"] is None and sys.modules["sniffio"] is None
    for _ in range(3):
        with pytest.raises(ImportError):
            import matplotlib  # noqa: F401
        with pytest.raises(ImportError):
            import sniffio  # noqa: F401  (httpcore's import, on every request)
    assert searches == ["matplotlib", "sniffio"]  # the path was searched once each, at install


def test_an_installed_matplotlib_is_left_alone(monkeypatch, no_matplotlib_module):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object())
    install_fast_failed_imports()
    assert "matplotlib" not in sys.modules and "sniffio" not in sys.modules


# --- bounded decoding ------------------------------------------------------------------------------


@pytest.fixture
def bounded(monkeypatch):
    """Pillow's bound as the app sets it, restored afterwards (warning filters too)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bound_decoding()
        yield caught


def test_pillow_refuses_more_than_the_input_bound(bounded):
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(png_header(10_001, 5_000)))
    with Image.open(io.BytesIO(png_header(10_000, 5_000))) as exactly:  # 50 MP, juhe's bound
        assert exactly.size == (10_000, 5_000)
    assert MAX_INPUT_PIXELS == 50_000_000


def test_an_image_within_the_bound_opens_without_a_warning(bounded):
    with Image.open(io.BytesIO(png_header(6_000, 5_000))) as image:  # 30 MP: over Pillow's warning
        assert image.size == (6_000, 5_000)
    assert not [w for w in bounded if issubclass(w.category, Image.DecompressionBombWarning)]
