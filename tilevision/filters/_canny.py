"""Canny edge detection in 2-D and 3-D with hysteresis resolved across tiles."""

from __future__ import annotations

__all__: list[str] = []
