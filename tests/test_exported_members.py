"""The package's public face, checked once (as httpx's test_exported_members does): `__all__`
lists exactly what `juhe` exposes, and every error it exports is a documented `JuheError`."""

from __future__ import annotations

import inspect
import types

import juhe
from juhe import JuheError

# exported although private-looking
PRIVATE_EXPORTS = {"__version__"}


def isort_order(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions, each alphabetically: the order ruff keeps imports in."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_all_is_every_public_member_once_in_order():
    public = [
        name
        for name, value in vars(juhe).items()
        if (not name.startswith("_") or name in PRIVATE_EXPORTS) and not isinstance(value, types.ModuleType)
    ]
    assert juhe.__all__ == sorted(public, key=isort_order)


def test_every_error_is_exported_documented_and_a_juhe_error():
    defined = {
        name: cls
        for name, cls in inspect.getmembers(juhe._exceptions, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == juhe._exceptions.__name__
    }
    assert set(defined) == {name for name in juhe.__all__ if name.endswith("Error")}
    for name, cls in defined.items():
        assert issubclass(cls, JuheError), name  # `except JuheError` catches everything juhe raises
        assert cls.__doc__ and cls.__doc__.strip(), name
