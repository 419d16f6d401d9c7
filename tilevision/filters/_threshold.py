"""Global-then-local thresholds from a distributed histogram, and threshold_local."""

from __future__ import annotations

__all__: list[str] = []
