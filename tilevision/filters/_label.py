"""Connected components across tiles, merged by a tree reduction."""

from __future__ import annotations

__all__: list[str] = []
