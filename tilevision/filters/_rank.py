"""Rank filters: median, minimum, maximum, percentile, and the uniform (mean) filter."""

from __future__ import annotations

__all__: list[str] = []
