"""`juhe.__all__` is the package's public surface: every public name, sorted, and nothing else."""

from __future__ import annotations

import types

import juhe


def test_all_lists_every_public_name_and_only_those():
    public = {
        name
        for name, value in vars(juhe).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)  # juhe.cli once imported
    }
    assert set(juhe.__all__) == public | {"__version__"}


def test_all_is_sorted_without_repeats():
    def isort_order(name: str) -> tuple[int, str]:  # CONSTANTS, then Classes, then functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert juhe.__all__ == sorted(set(juhe.__all__), key=isort_order)
