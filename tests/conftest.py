from __future__ import annotations

from pathlib import Path

import pytest

import tilevision

DATA = Path(tilevision.__file__).parent / "datasets" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data bundled with the package."""
    return DATA


def no_leftovers(folder: Path) -> list[str]:
    """Names in ``folder`` that an interrupted write could have left behind."""
    return sorted(p.name for p in folder.iterdir() if "tilevision-" in p.name)
