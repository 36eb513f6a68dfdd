"""What the result store keeps in its own folder: for tests of the copies it makes on request."""

from __future__ import annotations

from pathlib import Path

from webapp.store import STORE_DIR


def store_files(output_dir: Path, sub: str) -> list[Path]:
    """The files in one subfolder of the store's folder (`before`, `thumbs`, `sources`, ...)."""
    folder = Path(output_dir) / STORE_DIR / sub
    return sorted(folder.iterdir()) if folder.is_dir() else []
